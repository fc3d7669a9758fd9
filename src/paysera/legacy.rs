//! Spec 1.2–1.5 callbacks: `wp_`-prefixed parameters signed with `_ss2`,
//! `_ss1v2` or `_ss1` (protocol.md section g).

use super::base64url;
use super::error::{printable, CallbackError, SignatureParam};
use super::keys::HashAlg;
use super::verify::{md5_hex, md5_matches, to_fields, RequestParams, Verifier};
use crate::domain::{FieldValue, PaymentKind, Proof, VerifiedCallback};
use crate::paysera::php;

const PREFIX: &[u8] = b"wp_";

pub(super) fn is_legacy(params: &RequestParams) -> bool {
    params
        .0
        .iter()
        .any(|(k, _)| k.len() > PREFIX.len() && k.starts_with(PREFIX))
}

/// The `wp_` parameters with the prefix cut, in the order received; the
/// merchant's own parameters are ignored, signatures included.
struct Pairs(Vec<(String, Vec<u8>)>);

impl Pairs {
    fn from_params(params: &RequestParams) -> Result<Self, CallbackError> {
        params
            .0
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

    /// The signed names and values, length-prefixed so no two different sets of
    /// pairs share an identity. The signatures themselves are left out: a replay
    /// with `_ss2` written another way (padding, alphabet) is the same callback.
    fn identity_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, v) in self.0.iter().filter(|(k, _)| k != "_ss2" && k != "_ss1v2") {
            for part in [k.as_bytes(), v.as_slice()] {
                out.extend_from_slice(&(part.len() as u64).to_be_bytes());
                out.extend_from_slice(part);
            }
        }
        out
    }
}

impl Verifier {
    pub(super) fn verify_legacy(
        &self,
        params: &RequestParams,
    ) -> Result<VerifiedCallback, CallbackError> {
        let pairs = Pairs::from_params(params)?;
        let (proof, proved_by) = self.check_legacy_signatures(&pairs)?;

        let content = pairs.identity_bytes();
        let mut fields = to_fields(legacy_array(&pairs))?;
        let micro = ["to", "from", "sms"].iter().all(|k| fields.contains(k))
            && !fields.contains("projectid");
        let (kind, project) = if micro {
            // Legacy SMS callbacks carry no projectid: the project is the one whose
            // password makes their `_ss1v2`/`_ss1`, whatever the policy checked.
            let project = proved_by
                .or_else(|| self.check_ss1v2(&pairs).ok())
                .or_else(|| self.check_legacy_ss1(&pairs).ok())
                .unwrap_or(0);
            (PaymentKind::Micro, project)
        } else {
            (PaymentKind::Macro, self.project_for(&fields, proved_by)?)
        };
        if !fields.contains("type") {
            fields.set("type", FieldValue::Text(kind.as_str().to_string()));
        }
        self.finish(project, proof, kind, fields, content)
    }

    fn check_legacy_signatures(
        &self,
        pairs: &Pairs,
    ) -> Result<(Proof, Option<usize>), CallbackError> {
        let policy = self.policy();
        if pairs.has("_ss2") {
            self.check_legacy_ss2(pairs)?;
            // `_ss2` signs the values but not their names, so a relabelled
            // callback (`wp_test` renamed) still verifies. The password-based
            // `_ss1`/`_ss1v2` that real legacy callbacks carry beside it binds the
            // order and the test flag by name: checked whenever a password exists,
            // stricter than the legacy library (which ignored it beside `_ss2`).
            let has_password = self.projects().iter().any(|p| p.password().is_some());
            let mut proved_by = None;
            if policy.strict || has_password {
                if pairs.has("_ss1v2") {
                    proved_by = Some(self.check_ss1v2(pairs)?);
                }
                if pairs.has("_ss1") {
                    proved_by = Some(self.check_legacy_ss1(pairs)?);
                }
            }
            return Ok((Proof::LegacySs2, proved_by));
        }
        if !policy.accept_ss1 {
            return Err(CallbackError::NoLegacyRsaSignature);
        }
        if pairs.has("_ss1v2") {
            let project = self.check_ss1v2(pairs)?;
            if policy.strict && pairs.has("_ss1") {
                self.check_legacy_ss1(pairs)?;
            }
            Ok((Proof::LegacySs1v2, Some(project)))
        } else if pairs.has("_ss1") {
            Ok((Proof::LegacySs1, Some(self.check_legacy_ss1(pairs)?)))
        } else {
            Err(CallbackError::NoSignature)
        }
    }

    /// RSA/SHA-1 over `value|` for every signed value, in received order.
    fn check_legacy_ss2(&self, pairs: &Pairs) -> Result<(), CallbackError> {
        let mismatch = CallbackError::SignatureMismatch(SignatureParam::LegacySs2);
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
            .ok_or(CallbackError::SignatureMismatch(
                SignatureParam::LegacySs1v2,
            ))
    }

    /// `_ss1 = md5_hex(P|orderid|intval(test)|1)`, `id` in place of orderid for SMS.
    /// It covers neither amount nor status, hence only under `accept_ss1`.
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
            .ok_or(CallbackError::SignatureMismatch(SignatureParam::LegacySs1))
    }
}

fn legacy_array(pairs: &Pairs) -> php::Array {
    let mut array = php::Array::default();
    for (k, v) in &pairs.0 {
        array.set(k.as_bytes().to_vec(), php::Value::Str(v.clone()));
    }
    array
}

/// The legacy library used a 32-character password as it is, and the MD5 of any other.
fn legacy_password(password: &str) -> String {
    if password.len() == 32 {
        password.to_string()
    } else {
        md5_hex(password.as_bytes())
    }
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
