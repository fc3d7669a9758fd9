//! Why a Checkout webhook was not accepted, precisely enough to act on.
//!
//! Two families, because they call for different answers: a header or
//! signature failure means "not proven to come from Paysera" (the secret may be
//! wrong on our side, so the gateway should keep retrying); a body failure
//! means "authentic but unusable" (a retry cannot fix it).
//!
//! Section numbers (§) are those of `docs/checkout-modern.md`.

use std::fmt;

use crate::paysera::RejectClass;

/// The five headers §3.1 requires, named as the gateway spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HeaderName {
    Signature,
    SignatureAlg,
    CreatedAt,
    RequestId,
    CallbackId,
}

impl HeaderName {
    /// In the order the SDK checks them, which is the order failures are reported in.
    pub const ALL: [HeaderName; 5] = [
        HeaderName::Signature,
        HeaderName::SignatureAlg,
        HeaderName::CreatedAt,
        HeaderName::RequestId,
        HeaderName::CallbackId,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HeaderName::Signature => "X-Paysera-Signature",
            HeaderName::SignatureAlg => "X-Paysera-Signature-Alg",
            HeaderName::CreatedAt => "X-Paysera-Created-At",
            HeaderName::RequestId => "X-Paysera-Request-Id",
            HeaderName::CallbackId => "X-Paysera-Callback-Id",
        }
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every way a webhook can be refused. Texts quote request data only through
/// [`printable`]: at most 40 characters, control characters escaped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckoutError {
    #[error("header {0} is missing")]
    MissingHeader(HeaderName),
    #[error("header X-Paysera-Signature is not 64 lowercase hex characters: \"{0}\"")]
    SignatureFormat(String),
    #[error("header X-Paysera-Signature-Alg is \"{0}\", not HMAC-SHA256")]
    UnsupportedAlgorithm(String),
    #[error("header X-Paysera-Created-At is not a positive Unix time: \"{0}\"")]
    CreatedAt(String),
    #[error("header {0} is not a UUID: \"{1}\"")]
    NotUuid(HeaderName, String),
    #[error("the body's HMAC-SHA256 matches none of the {0} configured secret(s)")]
    SignatureMismatch(usize),
    #[error("authentic webhook with a malformed body: {0}")]
    Malformed(#[from] BodyError),
}

impl CheckoutError {
    /// The class rejections are counted by, shared with classic callbacks.
    pub fn class(&self) -> RejectClass {
        if self.is_verification() {
            RejectClass::Signature
        } else {
            RejectClass::Malformed
        }
    }

    /// Not proven to come from Paysera: a header or the signature failed.
    /// (The body was not even parsed.)
    pub fn is_verification(&self) -> bool {
        !matches!(self, CheckoutError::Malformed(_))
    }

    /// The header a verification failure is about, if any.
    pub fn header(&self) -> Option<HeaderName> {
        match self {
            CheckoutError::MissingHeader(h) | CheckoutError::NotUuid(h, _) => Some(*h),
            CheckoutError::SignatureFormat(_) | CheckoutError::SignatureMismatch(_) => {
                Some(HeaderName::Signature)
            }
            CheckoutError::UnsupportedAlgorithm(_) => Some(HeaderName::SignatureAlg),
            CheckoutError::CreatedAt(_) => Some(HeaderName::CreatedAt),
            CheckoutError::Malformed(_) => None,
        }
    }
}

/// An authentic body that cannot be used (§4.1: the SDK's build failure, 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// serde_json's own wording: a category and a position, never the input.
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("the body is not a JSON object")]
    NotAnObject,
    #[error("{path}: {problem}")]
    Field { path: String, problem: Problem },
}

impl BodyError {
    pub(crate) fn field(path: impl Into<String>, problem: Problem) -> Self {
        BodyError::Field {
            path: path.into(),
            problem,
        }
    }

    /// The JSON path of the offending field (`order.amount`,
    /// `order.payment_links[0].payments[1].payment_amount`), when there is one.
    pub fn path(&self) -> Option<&str> {
        match self {
            BodyError::Field { path, .. } => Some(path),
            _ => None,
        }
    }
}

/// What is wrong with one field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("missing")]
    Missing,
    #[error("empty or blank")]
    Blank,
    #[error("expected {0}")]
    WrongType(&'static str),
    #[error("must be greater than 0")]
    NotPositive,
    #[error("must not be negative")]
    Negative,
    #[error("not a whole number of minor units: \"{0}\"")]
    NotWhole(String),
    #[error("out of range")]
    OutOfRange,
    #[error("not a three-letter currency code: \"{0}\"")]
    NotCurrency(String),
}

/// Shortens and escapes text that came from the request before it goes into a
/// message, so a hostile value can neither flood nor forge a log line.
pub(crate) fn printable(bytes: &[u8]) -> String {
    const MAX: usize = 40;
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    for c in text.chars().take(MAX) {
        if c.is_control() || c == '"' || c == '\\' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if text.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_bounds_and_escapes() {
        assert_eq!(printable(b"abc"), "abc");
        assert_eq!(printable(b"a\nb\"c"), "a\\nb\\\"c");
        let long = printable(&[b'x'; 500]);
        assert_eq!(long.chars().count(), 41);
        assert!(long.ends_with('…'));
        assert_eq!(printable(&[0xff, b'a']), "\u{fffd}a");
    }

    #[test]
    fn families_map_to_classes() {
        assert_eq!(
            CheckoutError::SignatureMismatch(2).class(),
            RejectClass::Signature
        );
        assert_eq!(
            CheckoutError::MissingHeader(HeaderName::CallbackId).class(),
            RejectClass::Signature
        );
        assert_eq!(
            CheckoutError::Malformed(BodyError::NotAnObject).class(),
            RejectClass::Malformed
        );
    }
}
