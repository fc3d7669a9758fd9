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

/// Every field of a classic callback that carries the buyer's personal data
/// (protocol.md: the payer fields echoed back, the payment system's names,
/// the account paid from), each with a value found nowhere else.
pub const BUYER_DATA: &[(&str, &str)] = &[
    ("p_email", "pii.buyer@example.com"),
    ("name", "Pii-Jonas"),
    ("surename", "Pii-Jonaitis"),
    ("p_firstname", "Pii-Firstname"),
    ("p_lastname", "Pii-Lastname"),
    ("p_phone", "37069900011"),
    ("p_street", "Pii-Gatve-7"),
    ("p_city", "Pii-Vilnius"),
    ("p_state", "Pii-State"),
    ("p_zip", "LT-99001"),
    ("p_countrycode", "XQ"),
    ("p_countryname", "Pii-Countryland"),
    ("account", "LT601010012345678901"),
];

/// The payer fields of a Checkout snapshot's payment link, each with a value
/// found nowhere else.
pub const CHECKOUT_PAYER: &[(&str, &str)] = &[
    ("payer_name", "Pii-Checkout-Name"),
    ("payer_email", "pii.checkout@example.com"),
    ("payer_ip_country", "XQ"),
    ("payer_country", "XQ"),
];

/// A fully paid Checkout snapshot of `orderid` carrying [`CHECKOUT_PAYER`]
/// (spec vector V1's shape), unsigned.
pub fn checkout_paid_with_payer(orderid: &str, amount: i64) -> Vec<u8> {
    let mut link = serde_json::json!({
        "id": "link-1", "name": format!("Order {orderid}"),
        "payments": [{"id": "pay-1", "method": "card", "status": "settled",
                      "payment_currency": "EUR", "payment_amount": amount}]
    });
    for (name, value) in CHECKOUT_PAYER {
        link[*name] = (*value).into();
    }
    serde_json::json!({
        "event": {"name": "amount_paid_updated", "type": "order"},
        "order": {
            "paysera_order_id": "019ed03a-84f0-7ba0-874a-f7473738875b",
            "merchant_order_id": orderid, "amount": amount, "amount_paid": amount,
            "currency": "EUR", "status": "paid", "updated_at": 1736433570,
            "payment_links": [link]
        }
    })
    .to_string()
    .into_bytes()
}
