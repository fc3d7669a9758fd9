//! A callback whose authenticity has been proven, with its fields typed.

use serde::ser::{Serialize, SerializeMap, Serializer};
use sha2::{Digest, Sha256};

use super::{Amount, Currency, Status};

/// A signature or proof of the gateway's: how a callback proved where it came
/// from, or which signature a rejection is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// `ss1`: MD5 of `data` and the project password (only under `accept_ss1`).
    Ss1,
    /// `ss2`: RSA PKCS#1 v1.5 with SHA-1 over `data`.
    Ss2,
    /// `ss3`: RSA PKCS#1 v1.5 with SHA-256 over `data`.
    Ss3,
    /// Encrypted `data` that AES-256-GCM authenticated with the project password.
    Aes256Gcm,
    /// Legacy 1.x `_ss2`: RSA with SHA-1 over the `wp_` values, always with a
    /// valid `_ss1` or `_ss1v2` beside it.
    LegacySs2,
    /// Legacy 1.2–1.4 `_ss1`: MD5 over the password, `orderid` and `test`.
    /// Never a proof on its own; a rejection can be about it.
    LegacySs1,
    /// Legacy 1.5 `_ss1v2`: MD5 over the password and the values. Never a
    /// proof on its own; a rejection can be about it.
    LegacySs1v2,
    /// A hash-signed gateway's notification, verified by its recipe
    /// (`crate::gateways`).
    Recipe,
    /// An operator confirmed a gateway notification that nothing could
    /// verify (`payhook orders confirm`), after reviewing it.
    Operator,
}

impl std::fmt::Display for Proof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Proof {
    pub fn as_str(self) -> &'static str {
        match self {
            Proof::Ss1 => "ss1",
            Proof::Ss2 => "ss2",
            Proof::Ss3 => "ss3",
            Proof::Aes256Gcm => "aes-256-gcm",
            Proof::LegacySs2 => "_ss2",
            Proof::LegacySs1 => "_ss1",
            Proof::LegacySs1v2 => "_ss1v2",
            Proof::Recipe => "recipe",
            Proof::Operator => "operator",
        }
    }

    pub fn is_legacy(self) -> bool {
        matches!(
            self,
            Proof::LegacySs2 | Proof::LegacySs1 | Proof::LegacySs1v2
        )
    }
}

/// Macro (bank, card…) or micro (SMS keyword) payment, as the library tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentKind {
    Macro,
    Micro,
}

impl PaymentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentKind::Macro => "macro",
            PaymentKind::Micro => "micro",
        }
    }
}

/// A decoded field: text, or (only from hostile or odd input) a PHP array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldValue {
    Text(String),
    List(Fields),
}

/// Every decoded field in the order received, unknown ones included.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fields(Vec<(String, FieldValue)>);

impl Fields {
    pub fn new(entries: Vec<(String, FieldValue)>) -> Self {
        Fields(entries)
    }

    pub fn get(&self, name: &str) -> Option<&FieldValue> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets a field, keeping its position when it already exists (PHP assignment).
    pub fn set(&mut self, name: &str, value: FieldValue) {
        match self.0.iter_mut().find(|(k, _)| k == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_string(), value)),
        }
    }

    pub fn text(&self, name: &str) -> Option<&str> {
        match self.get(name)? {
            FieldValue::Text(t) => Some(t),
            FieldValue::List(_) => None,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &FieldValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            match v {
                FieldValue::Text(t) => map.serialize_entry(k, t)?,
                FieldValue::List(l) => map.serialize_entry(k, l)?,
            }
        }
        map.end()
    }
}

/// A field the gateway defines held a value of the wrong shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field {field} is malformed: {reason}")]
pub struct FieldError {
    pub field: &'static str,
    pub reason: &'static str,
}

/// A callback proven authentic by the protocol core; nothing else can make one.
#[derive(Debug, Clone)]
pub struct VerifiedCallback {
    project_id: String,
    proof: Proof,
    kind: PaymentKind,
    fields: Fields,
    /// For formats whose signature binds values but not names (legacy `_ss2`):
    /// the signed values, which then identify the callback instead of the fields.
    signed_values: Option<Vec<u8>>,
    orderid: Option<String>,
    status: Option<Status>,
    test: bool,
    amount: Option<Amount>,
    currency: Option<Currency>,
    payamount: Option<Amount>,
    paycurrency: Option<Currency>,
    refund_amount: Option<Amount>,
    refund_currency: Option<Currency>,
}

impl VerifiedCallback {
    /// Types the fields the gateway defines.
    pub(crate) fn new(
        project_id: String,
        proof: Proof,
        kind: PaymentKind,
        fields: Fields,
    ) -> Result<Self, FieldError> {
        Ok(Self {
            orderid: stored_text(&fields, "orderid")?.map(str::to_string),
            status: parsed(&fields, "status", Status::parse, "not a status code")?,
            test: match text_field(&fields, "test")? {
                None | Some("") | Some("0") => false,
                Some("1") => true,
                Some(_) => {
                    return Err(FieldError {
                        field: "test",
                        reason: "neither 0 nor 1",
                    })
                }
            },
            amount: amount(&fields, "amount")?,
            currency: currency(&fields, "currency")?,
            payamount: amount(&fields, "payamount")?,
            paycurrency: currency(&fields, "paycurrency")?,
            refund_amount: amount(&fields, "refund_amount")?,
            refund_currency: currency(&fields, "refund_currency")?,
            project_id,
            proof,
            kind,
            fields,
            signed_values: None,
        })
    }

    /// The configured project this callback belongs to.
    pub fn project_id(&self) -> &str {
        &self.project_id
    }
    pub fn proof(&self) -> Proof {
        self.proof
    }
    pub fn kind(&self) -> PaymentKind {
        self.kind
    }
    pub fn fields(&self) -> &Fields {
        &self.fields
    }
    pub fn orderid(&self) -> Option<&str> {
        self.orderid.as_deref()
    }
    pub fn status(&self) -> Option<Status> {
        self.status
    }
    pub fn is_test(&self) -> bool {
        self.test
    }
    pub fn amount(&self) -> Option<Amount> {
        self.amount
    }
    pub fn currency(&self) -> Option<&Currency> {
        self.currency.as_ref()
    }
    pub fn payamount(&self) -> Option<Amount> {
        self.payamount
    }
    pub fn paycurrency(&self) -> Option<&Currency> {
        self.paycurrency.as_ref()
    }
    pub fn refund_amount(&self) -> Option<Amount> {
        self.refund_amount
    }
    pub fn refund_currency(&self) -> Option<&Currency> {
        self.refund_currency.as_ref()
    }
    /// Project plus the verified fields in a canonical form: the same payment
    /// delivered again (a retry, a replay) has the same identity whatever its
    /// encoding: another signature form, GET or POST, the outer parameters or
    /// the decoded fields in another order. Signatures are not content.
    ///
    /// A legacy callback is identified by its signed values in order instead:
    /// `_ss2` does not bind names, so a replay with an unread field renamed is
    /// the same payment, not a second one.
    pub fn identity(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.project_id.as_bytes());
        h.update([0]);
        match &self.signed_values {
            Some(values) => {
                h.update([b'v']);
                h.update(values);
            }
            None => {
                h.update([b'f']);
                hash_canonical(&mut h, &self.fields, &|name| {
                    matches!(name, "_ss1" | "_ss1v2" | "_ss2")
                });
            }
        }
        h.finalize().into()
    }

    /// Received by a hash-signed gateway (or confirmed from one's
    /// notification): its `project_id` is the gateway's name.
    pub fn is_gateway(&self) -> bool {
        matches!(self.proof, Proof::Recipe | Proof::Operator)
    }

    /// See `identity`: the legacy verifier and the gateways' recipes call
    /// this (a recipe's signed part, or what an operator confirmed).
    pub(crate) fn identified_by_signed_values(mut self, values: Vec<u8>) -> Self {
        self.signed_values = Some(values);
        self
    }
}

/// Fields sorted by name, every name and value length-prefixed so that no two
/// different sets of fields hash alike; nested lists the same way.
fn hash_canonical(h: &mut Sha256, fields: &Fields, skip: &dyn Fn(&str) -> bool) {
    let mut sorted: Vec<(&str, &FieldValue)> =
        fields.iter().filter(|(name, _)| !skip(name)).collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    h.update((sorted.len() as u64).to_be_bytes());
    for (name, value) in sorted {
        h.update((name.len() as u64).to_be_bytes());
        h.update(name.as_bytes());
        match value {
            FieldValue::Text(text) => {
                h.update([b't']);
                h.update((text.len() as u64).to_be_bytes());
                h.update(text.as_bytes());
            }
            FieldValue::List(list) => {
                h.update([b'l']);
                hash_canonical(h, list, &|_| false);
            }
        }
    }
}

fn text_field<'a>(fields: &'a Fields, name: &'static str) -> Result<Option<&'a str>, FieldError> {
    match fields.get(name) {
        None => Ok(None),
        Some(FieldValue::Text(t)) => Ok(Some(t)),
        Some(FieldValue::List(_)) => Err(FieldError {
            field: name,
            reason: "an array, not a value",
        }),
    }
}

/// A value written to the database as it is: a NUL byte cannot be stored in
/// PostgreSQL `TEXT`, and no shop's order id holds one, so it is malformed
/// rather than a database error waiting to happen.
fn stored_text<'a>(fields: &'a Fields, name: &'static str) -> Result<Option<&'a str>, FieldError> {
    match text_field(fields, name)? {
        Some(t) if t.contains('\0') => Err(FieldError {
            field: name,
            reason: "holds a NUL byte",
        }),
        other => Ok(other),
    }
}

/// An empty value counts as absent (the gateway sends `lang=` and the like).
fn parsed<T, E>(
    fields: &Fields,
    name: &'static str,
    parse: impl Fn(&str) -> Result<T, E>,
    reason: &'static str,
) -> Result<Option<T>, FieldError> {
    match text_field(fields, name)? {
        None | Some("") => Ok(None),
        Some(text) => parse(text).map(Some).map_err(|_| FieldError {
            field: name,
            reason,
        }),
    }
}

fn amount(fields: &Fields, name: &'static str) -> Result<Option<Amount>, FieldError> {
    parsed(
        fields,
        name,
        Amount::parse,
        "not a whole number of minor units",
    )
}

fn currency(fields: &Fields, name: &'static str) -> Result<Option<Currency>, FieldError> {
    parsed(
        fields,
        name,
        Currency::parse,
        "not a three-letter currency code",
    )
}
