//! One notification read by its gateway's recipe: the signature verified,
//! then the fields a decision reads (order, amount in minor units, currency,
//! paid or not, test, the gateway's payment id), and the reply it wants.

use secrecy::ExposeSecret;
use sha2::{Digest as _, Sha256};

use super::profile::{Charset, CurrencyRule, Recipe, StatusRule, TestRule};
use super::signature::{Digest, Output, SignatureError};
use super::Request;
use crate::domain::{Amount, Currency};

/// What a notification proved, read by its recipe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayPayment {
    /// The signature verified. `false` only for a gateway without a recipe
    /// (`weboplata`): then nothing below is proven, and it is never a payment.
    pub verified: bool,
    pub orderid: Option<String>,
    pub amount: Option<Amount>,
    pub currency: Option<Currency>,
    /// A payment (a notification that says it is not one yet is not).
    pub paid: bool,
    pub test: bool,
    /// The gateway's own payment id, when it sends one.
    pub dedup: Option<String>,
    /// The fields the signature covers, signature included, as form text:
    /// stored whole.
    pub signed: String,
    /// The other fields, as form text: the sender's choice, stored bounded.
    pub unsigned: String,
    /// What makes two notifications the same delivery: the gateway's name and
    /// the signed fields (never a field the sender could change alone).
    pub identity: [u8; 32],
    /// The accepting reply's body.
    pub reply: String,
}

/// Why a notification proves nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("field {field}: {reason}")]
    Field { field: String, reason: &'static str },
}

fn bad(field: &str, reason: &'static str) -> NotificationError {
    NotificationError::Field {
        field: field.to_string(),
        reason,
    }
}

/// How long a signature written `output` of `digest` is.
fn encoded_len(digest: Digest, output: Output) -> usize {
    let bytes = match digest {
        Digest::Md5 => 16,
        Digest::Sha1 => 20,
        Digest::Sha256 => 32,
        Digest::Sha384 => 48,
        Digest::Sha512 => 64,
    };
    match output {
        Output::HexLower | Output::HexUpper => bytes * 2,
        Output::Base64 => bytes.div_ceil(3) * 4,
    }
}

/// ISO 4217 numbers of the currencies these gateways use (YooMoney sends 643).
const NUMERIC: &[(&str, &str)] = &[
    ("643", "RUB"),
    ("810", "RUB"),
    ("840", "USD"),
    ("978", "EUR"),
    ("980", "UAH"),
    ("398", "KZT"),
    ("933", "BYN"),
    ("826", "GBP"),
    ("985", "PLN"),
    ("949", "TRY"),
    ("156", "CNY"),
];

/// WebMoney purses by their first letter.
const PURSES: &[(char, &str)] = &[('Z', "USD"), ('R', "RUB"), ('E', "EUR"), ('U', "UAH")];

impl Recipe {
    /// Reads `request` by this recipe: verified, or why not.
    pub fn read(&self, request: &Request) -> Result<GatewayPayment, NotificationError> {
        if !self.verifies() {
            return self.captured(request);
        }
        let signature = self
            .signatures
            .iter()
            .find(|s| {
                request
                    .single(&s.field)
                    .ok()
                    .flatten()
                    .is_some_and(|v| v.len() == encoded_len(s.digest, s.output))
            })
            .or_else(|| {
                self.signatures
                    .iter()
                    .find(|s| matches!(request.single(&s.field), Ok(Some(_)) | Err(_)))
            })
            .ok_or_else(|| SignatureError::Missing(self.signatures[0].field.clone()))?;
        let secrets: Vec<&[u8]> = self
            .secrets
            .iter()
            .map(|s| s.expose_secret().as_bytes())
            .collect();
        signature.verify(request, &secrets)?;

        let orderid = self
            .order_field
            .as_deref()
            .map(|f| self.required_text(request, f))
            .transpose()?;
        if let Some(id) = &orderid {
            if id.is_empty() || id.len() > 40 || id.chars().any(char::is_control) {
                return Err(bad(
                    self.order_field.as_deref().unwrap_or_default(),
                    "not an order id (1 to 40 bytes, no control character)",
                ));
            }
        }
        let amount = match self.amount_field.as_deref() {
            None => None,
            Some(field) => Some(
                major_to_minor(&self.required_text(request, field)?, self.amount_decimal)
                    .ok_or_else(|| {
                        bad(field, "not an amount in major units (e.g. 99 or 300.00)")
                    })?,
            ),
        };
        let currency = self.currency_of(request)?;
        let paid = match &self.status {
            StatusRule::Always => true,
            StatusRule::Field { name, paid } => {
                let value = self.required_text(request, name)?;
                paid.contains(&value)
            }
            StatusRule::Unless(markers) => !markers.iter().any(|(field, value)| {
                self.text(request, field).ok().flatten().as_deref() == Some(value)
            }),
        };
        let test = match &self.test {
            TestRule::Never => false,
            TestRule::Field { name, values, .. } => self
                .text(request, name)?
                .is_some_and(|v| values.contains(&v)),
        };
        let dedup = self
            .dedup_field
            .as_deref()
            .map(|f| self.text(request, f))
            .transpose()?
            .flatten();
        let covered = signature.covered(request);
        let signed = request.to_urlencoded(|name| covered.contains(name));
        let unsigned = request.to_urlencoded(|name| !covered.contains(name));
        Ok(GatewayPayment {
            verified: true,
            orderid,
            amount,
            currency,
            paid,
            test,
            dedup,
            identity: self.identity(&signed),
            reply: self.reply_for(request),
            signed,
            unsigned,
        })
    }

    /// A notification of a gateway without a recipe: nothing proven; the
    /// order it names (when the configured field does) is only a pointer for
    /// the operator's review.
    fn captured(&self, request: &Request) -> Result<GatewayPayment, NotificationError> {
        let orderid =
            match self.order_field.as_deref() {
                None => None,
                Some(field) => self.text(request, field).ok().flatten().filter(|id| {
                    !id.is_empty() && id.len() <= 40 && !id.chars().any(char::is_control)
                }),
            };
        let unsigned = request.to_urlencoded(|_| true);
        Ok(GatewayPayment {
            verified: false,
            orderid,
            amount: None,
            currency: None,
            paid: false,
            test: false,
            dedup: None,
            identity: self.identity(&unsigned),
            reply: self.reply.clone(),
            signed: String::new(),
            unsigned,
        })
    }

    fn identity(&self, part: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(b"gateway\0");
        h.update(self.name.as_bytes());
        h.update([0]);
        h.update(part.as_bytes());
        h.finalize().into()
    }

    /// A field's text in the recipe's charset; `None` when absent.
    fn text(&self, request: &Request, field: &str) -> Result<Option<String>, NotificationError> {
        let Some(bytes) = request
            .single(field)
            .map_err(|_| bad(field, "appears more than once"))?
        else {
            return Ok(None);
        };
        match self.charset {
            Charset::Utf8 => std::str::from_utf8(bytes)
                .map(|s| Some(s.to_string()))
                .map_err(|_| bad(field, "not UTF-8")),
            Charset::Windows1251 => Ok(Some(
                encoding_rs::WINDOWS_1251
                    .decode_without_bom_handling(bytes)
                    .0
                    .into_owned(),
            )),
        }
    }

    fn required_text(&self, request: &Request, field: &str) -> Result<String, NotificationError> {
        self.text(request, field)?
            .ok_or_else(|| bad(field, "missing"))
    }

    fn currency_of(&self, request: &Request) -> Result<Option<Currency>, NotificationError> {
        let (field, code) = match &self.currency {
            CurrencyRule::Unknown => return Ok(None),
            CurrencyRule::Fixed(c) => return Ok(Some(c.clone())),
            CurrencyRule::Field(field) => {
                let value = self.required_text(request, field)?;
                let code = match NUMERIC.iter().find(|(n, _)| *n == value) {
                    Some((_, code)) => code.to_string(),
                    None => value,
                };
                (field, code)
            }
            CurrencyRule::PurseLetter(field) => {
                let purse = self.required_text(request, field)?;
                let letter = purse.chars().next().map(|c| c.to_ascii_uppercase());
                let code = PURSES
                    .iter()
                    .find(|(l, _)| Some(*l) == letter)
                    .map(|(_, code)| code.to_string())
                    .ok_or_else(|| bad(field, "a purse whose currency payhook does not know"))?;
                (field, code)
            }
        };
        Currency::parse(&code)
            .ok()
            .filter(|c| c.as_str().bytes().all(|b| b.is_ascii_uppercase()))
            .map(Some)
            .ok_or_else(|| bad(field, "not a currency code"))
    }

    /// The reply template with `{Field}` replaced by that field's value
    /// (letters, digits, `.`, `-`, `_` of it only: a reply is no place for
    /// the sender's text).
    fn reply_for(&self, request: &Request) -> String {
        let mut out = String::new();
        let mut rest = self.reply.as_str();
        while let Some(start) = rest.find('{') {
            out.push_str(&rest[..start]);
            let Some(len) = rest[start..].find('}') else {
                out.push_str(&rest[start..]);
                return out;
            };
            let name = &rest[start + 1..start + len];
            let value = self.text(request, name).ok().flatten().unwrap_or_default();
            out.extend(
                value
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                    .take(64),
            );
            rest = &rest[start + len + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// `99`, `300.00`, `0.5` (with `.` or `,`) → minor units, two decimals.
pub(super) fn major_to_minor(text: &str, decimal: char) -> Option<Amount> {
    let (whole, fraction) = match text.split_once(decimal) {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty()
        || !digits(whole)
        || !digits(fraction)
        || fraction.len() > 2 && fraction[2..].bytes().any(|b| b != b'0')
    {
        return None;
    }
    if text.contains(decimal) && fraction.is_empty() {
        return None;
    }
    let cents: i64 = match fraction.len() {
        0 => 0,
        1 => fraction.parse::<i64>().ok()? * 10,
        _ => fraction[..2].parse().ok()?,
    };
    let units = whole
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(cents)?;
    Amount::from_minor(units).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_in_major_units_become_minor_units() {
        for (text, minor) in [
            ("99", 9900),
            ("300.00", 30000),
            ("0.5", 50),
            ("1.230", 123),
            ("0", 0),
        ] {
            assert_eq!(
                major_to_minor(text, '.').map(Amount::minor_units),
                Some(minor),
                "{text}"
            );
        }
        assert_eq!(
            major_to_minor("12,50", ',').map(Amount::minor_units),
            Some(1250)
        );
        for bad in [
            "",
            "1.",
            ".5",
            "-1",
            "1.234",
            "1e3",
            "١٢",
            "99999999999999999999",
            "1,5",
        ] {
            assert_eq!(major_to_minor(bad, '.'), None, "{bad}");
        }
    }
}
