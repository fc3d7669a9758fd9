//! Spec 1.2–1.5 callbacks: `wp_`-prefixed parameters signed with `_ss2`,
//! `_ss1v2` or `_ss1` (protocol.md section g).

use super::base64url;
use super::context::Context;
use super::digest::{legacy_password, md5_matches};
use super::error::{printable, CallbackError};
use super::keys::HashAlg;
use super::params::{to_fields, RequestParams};
use super::php;
use crate::domain::{FieldValue, PaymentKind, Proof, VerifiedCallback};

const PREFIX: &[u8] = b"wp_";

pub(super) fn is_legacy(params: &RequestParams) -> bool {
    params
        .array
        .iter()
        .any(|(k, _)| k.len() > PREFIX.len() && k.starts_with(PREFIX))
}

/// The fields the decision reads, in the relative order every real legacy
/// macro callback carries them. `_ss2` binds values but not names, so a value
/// could be moved under another name; fixing the order of the names that
/// matter leaves no such move that keeps the signature.
const MACRO_IN_ORDER: [&str; 10] = [
    "projectid",
    "orderid",
    "amount",
    "currency",
    "test",
    "version",
    "_ss1",
    "status",
    "payamount",
    "paycurrency",
];

/// The gateway's own order for a legacy SMS (micro) callback, the same in
/// spec 1.3 and 1.4 (protocol.md g.2, `vectors/real/legacy-1.*-micro-*`):
/// every field it sends, so that no two of them (`from` and `to`, `sms` and
/// `key`, ...) can trade values and keep `_ss2`. It puts `amount` after `test`
/// and `_ss1`, so the macro order cannot apply to it.
const MICRO_IN_ORDER: [&str; 13] = [
    "test", "country", "_ss1", "amount", "currency", "id", "key", "sms", "from", "to", "provider",
    "operator", "version",
];

/// What every real legacy macro callback carries and the decision reads; `test`
/// may be absent (it means 0, and `_ss1` binds it), so may the `pay*` fields.
const MACRO_REQUIRED: [&str; 6] = [
    "projectid",
    "orderid",
    "amount",
    "currency",
    "version",
    "status",
];

/// The `wp_` parameters with the prefix cut, in the order received; the
/// merchant's own parameters are ignored, signatures included.
struct Pairs(Vec<(String, Vec<u8>)>);

impl Pairs {
    fn from_params(params: &RequestParams) -> Result<Self, CallbackError> {
        if let Some(name) = params
            .repeated
            .iter()
            .find(|k| k.len() > PREFIX.len() && k.starts_with(PREFIX))
        {
            return Err(CallbackError::RepeatedName(printable(name)));
        }
        params
            .array
            .iter()
            .filter(|(k, _)| k.len() > PREFIX.len() && k.starts_with(PREFIX))
            .map(|(k, v)| {
                let name = String::from_utf8(k[PREFIX.len()..].to_vec())
                    .map_err(|_| CallbackError::NotUtf8(printable(k)))?;
                match v {
                    php::Value::Str(s) => Ok((name, s.clone())),
                    php::Value::Array(_) => Err(CallbackError::NotAValue(printable(k))),
                }
            })
            .collect::<Result<_, _>>()
            .map(Pairs)
    }

    fn get(&self, name: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    }

    fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The values every legacy signature covers: all but `_ss2` and `_ss1v2`
    /// (so `_ss1`, when sent, is signed by `_ss2`).
    fn signed_values(&self) -> impl Iterator<Item = &[u8]> {
        self.0
            .iter()
            .filter(|(k, _)| k != "_ss2" && k != "_ss1v2")
            .map(|(_, v)| v.as_slice())
    }

    /// The signed values, length-prefixed so that no two sequences share an encoding.
    fn signed_identity(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for value in self.signed_values() {
            out.extend_from_slice(&(value.len() as u64).to_be_bytes());
            out.extend_from_slice(value);
        }
        out
    }

    /// Micro iff `to`, `from` and `sms` are present and `projectid` is not
    /// (protocol.md g.1): what the library decided, and the order that applies.
    fn is_micro(&self) -> bool {
        ["to", "from", "sms"].iter().all(|k| self.has(k)) && !self.has("projectid")
    }

    /// The first field of `order` that comes before one it should follow.
    fn out_of_order(&self, order: &[&'static str]) -> Option<&'static str> {
        let mut last = 0;
        for (name, _) in &self.0 {
            if let Some(rank) = order.iter().position(|r| r == name) {
                if rank < last {
                    return Some(order[rank]);
                }
                last = rank;
            }
        }
        None
    }
}

impl Context {
    pub(super) fn verify_legacy(
        &self,
        params: &RequestParams,
    ) -> Result<VerifiedCallback, CallbackError> {
        if !self.policy().accept_legacy {
            return Err(CallbackError::LegacyDisabled);
        }
        let pairs = Pairs::from_params(params)?;
        let micro = pairs.is_micro();
        let order: &[&str] = if micro {
            &MICRO_IN_ORDER
        } else {
            &MACRO_IN_ORDER
        };
        if let Some(name) = pairs.out_of_order(order) {
            return Err(CallbackError::OutOfOrder(name));
        }
        let proved_by = self.check_legacy_signatures(&pairs)?;

        let mut fields = to_fields(legacy_array(&pairs))?;
        let (kind, project) = if micro {
            // Legacy SMS callbacks carry no projectid: the project is the one
            // whose password made their `_ss1v2`/`_ss1`.
            (PaymentKind::Micro, proved_by)
        } else {
            // A renamed field the decision reads would otherwise just be absent.
            if let Some(name) = MACRO_REQUIRED.iter().find(|name| !pairs.has(name)) {
                return Err(CallbackError::LegacyFieldMissing(name));
            }
            (
                PaymentKind::Macro,
                self.project_for(&fields, Some(proved_by))?,
            )
        };
        if !fields.contains("type") {
            fields.set("type", FieldValue::Text(kind.as_str().to_string()));
        }
        Ok(self
            .finish(project, Proof::LegacySs2, kind, fields)?
            .identified_by_signed_values(pairs.signed_identity()))
    }

    /// `_ss2` proves the values came from the gateway; the password-based
    /// `_ss1`/`_ss1v2` beside it binds `orderid` and `test` by name and names
    /// the project. Both are required, whatever the policy: the legacy library
    /// accepted either alone, and neither alone is enough.
    fn check_legacy_signatures(&self, pairs: &Pairs) -> Result<usize, CallbackError> {
        if !pairs.has("_ss2") {
            return Err(CallbackError::NoLegacyRsaSignature);
        }
        if !pairs.has("_ss1") && !pairs.has("_ss1v2") {
            return Err(CallbackError::NoLegacySs1);
        }
        self.check_legacy_ss2(pairs)?;
        let mut proved_by = None;
        if pairs.has("_ss1v2") {
            proved_by = Some(self.check_ss1v2(pairs)?);
        }
        if pairs.has("_ss1") {
            let project = self.check_legacy_ss1(pairs)?;
            if proved_by.is_some_and(|p| p != project) {
                return Err(CallbackError::SignatureMismatch(Proof::LegacySs1));
            }
            proved_by = Some(project);
        }
        proved_by.ok_or(CallbackError::NoLegacySs1)
    }

    /// RSA/SHA-1 over `value|` for every signed value, in received order.
    fn check_legacy_ss2(&self, pairs: &Pairs) -> Result<(), CallbackError> {
        let mismatch = CallbackError::SignatureMismatch(Proof::LegacySs2);
        // Standard base64: a `+` sent unescaped arrives as a space (lib 1.5 repairs it too).
        let encoded: Vec<u8> = pairs
            .get("_ss2")
            .unwrap_or_default()
            .iter()
            .map(|&b| if b == b' ' { b'+' } else { b })
            .collect();
        let signature = base64url::decode(&encoded).map_err(|_| mismatch.clone())?;
        let mut buffer = Vec::new();
        for value in pairs.signed_values() {
            buffer.extend_from_slice(value);
            buffer.push(b'|');
        }
        if self.keys().verify(HashAlg::Sha1, &buffer, &signature) {
            Ok(())
        } else {
            Err(mismatch)
        }
    }

    /// `_ss1v2 = md5_hex(P|v1|v2|…)` over the signed values.
    fn check_ss1v2(&self, pairs: &Pairs) -> Result<usize, CallbackError> {
        let received = pairs.get("_ss1v2").unwrap_or_default();
        let values: Vec<&[u8]> = pairs.signed_values().collect();
        self.passwords("_ss1v2")?
            .find(|(_, password)| {
                let p = legacy_password(password);
                let mut input: Vec<&[u8]> = vec![p.as_bytes()];
                for v in &values {
                    input.push(b"|");
                    input.push(v);
                }
                md5_matches(&input, received)
            })
            .map(|(i, _)| i)
            .ok_or(CallbackError::SignatureMismatch(Proof::LegacySs1v2))
    }

    /// `_ss1 = md5_hex(P|orderid|intval(test)|1)`, `id` in place of orderid for SMS.
    /// It covers neither amount nor status: never enough on its own.
    fn check_legacy_ss1(&self, pairs: &Pairs) -> Result<usize, CallbackError> {
        let received = pairs.get("_ss1").unwrap_or_default();
        let order = pairs
            .get("orderid")
            .or_else(|| pairs.get("id"))
            .unwrap_or_default();
        let test = php_intval(pairs.get("test").unwrap_or_default()).to_string();
        self.passwords("_ss1")?
            .find(|(_, password)| {
                let p = legacy_password(password);
                md5_matches(
                    &[p.as_bytes(), b"|", order, b"|", test.as_bytes(), b"|1"],
                    received,
                )
            })
            .map(|(i, _)| i)
            .ok_or(CallbackError::SignatureMismatch(Proof::LegacySs1))
    }
}

fn legacy_array(pairs: &Pairs) -> php::Array {
    let mut array = php::Array::default();
    for (k, v) in &pairs.0 {
        array.set(k.as_bytes().to_vec(), php::Value::Str(v.clone()));
    }
    array
}

/// PHP `intval` of a string: optional leading whitespace and sign, then digits.
fn php_intval(text: &[u8]) -> i64 {
    let text = std::str::from_utf8(text).unwrap_or("").trim_start();
    let (sign, digits) = match text.as_bytes().first() {
        Some(b'-') => (-1, &text[1..]),
        Some(b'+') => (1, &text[1..]),
        _ => (1, text),
    };
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end]
        .parse::<i64>()
        .map(|n| sign * n)
        .unwrap_or(if end == 0 { 0 } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intval_like_php() {
        for (input, want) in [
            ("1", 1),
            (" 1", 1),
            ("1abc", 1),
            ("abc", 0),
            ("", 0),
            ("-2", -2),
        ] {
            assert_eq!(php_intval(input.as_bytes()), want, "{input:?}");
        }
    }
}
