//! The gateway's side of a callback, signed with the shared test key (project
//! 123). The one place tests name the gateway-side signer's module.

use std::sync::OnceLock;

pub use payhook::sim::{CallbackForm, GatewaySigner};

use super::vectors::vectors_dir;

pub const PROJECT: u64 = 123;
pub const PASSWORD: &str = "pass-1f2e3d";

/// The gateway: signs with the vectors' private key and project 123's password.
pub fn gateway() -> &'static GatewaySigner {
    static SIGNER: OnceLock<GatewaySigner> = OnceLock::new();
    SIGNER.get_or_init(|| signer(PASSWORD))
}

/// The same key with another project's password (for `ss1`, `_ss1`, encryption).
pub fn signer(password: &str) -> GatewaySigner {
    let path = vectors_dir().join("current/private.pem");
    let pem =
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    GatewaySigner::from_pem(&pem, password).unwrap()
}

/// A paid macro callback's fields for an order, in the gateway's order.
pub fn paid_fields(orderid: &str, amount: &str, currency: &str) -> Vec<(String, String)> {
    [
        ("projectid", "123"),
        ("orderid", orderid),
        ("lang", "LIT"),
        ("amount", amount),
        ("currency", currency),
        ("payment", "hanza"),
        ("country", "LT"),
        ("status", "1"),
        ("test", "0"),
        ("payamount", amount),
        ("paycurrency", currency),
        ("version", "1.6"),
        ("requestid", "987654321"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// The same, in the order a legacy (`wp_`) callback carries them: `test` and
/// `version` before `status` (the signer puts `_ss1` between them).
pub fn legacy_paid_fields(orderid: &str, amount: &str, currency: &str) -> Vec<(String, String)> {
    let fields = paid_fields(orderid, amount, currency);
    let order = [
        "projectid",
        "orderid",
        "lang",
        "amount",
        "currency",
        "payment",
        "country",
        "test",
        "version",
        "status",
        "requestid",
        "payamount",
        "paycurrency",
    ];
    order
        .iter()
        .filter_map(|name| fields.iter().find(|(k, _)| k == name).cloned())
        .collect()
}

/// `fields` with `key` set to `value` (in place, or appended).
pub fn with(mut fields: Vec<(String, String)>, key: &str, value: &str) -> Vec<(String, String)> {
    match fields.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = value.to_string(),
        None => fields.push((key.to_string(), value.to_string())),
    }
    fields
}

/// `fields` without `key`.
pub fn without(mut fields: Vec<(String, String)>, key: &str) -> Vec<(String, String)> {
    fields.retain(|(k, _)| k != key);
    fields
}

/// The callback query the gateway sends for `fields`, in `form`.
pub fn sign(fields: &[(String, String)], form: CallbackForm) -> String {
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    gateway().callback_query(&pairs, form)
}

/// A paid callback for `orderid` of `amount` EUR (`data` + `ss2`): what most
/// tests send.
pub fn paid(orderid: &str, amount: &str) -> String {
    sign(&paid_fields(orderid, amount, "EUR"), CallbackForm::Ss2)
}
