//! The request headers a webhook carries, and the §3.1 checks on the five
//! `X-Paysera-*` ones. Section numbers (§) are those of
//! `docs/checkout-modern.md`.

use super::error::{printable, CheckoutError, HeaderName};

/// Request headers as plain name/value pairs, in the order received. Names
/// compare ASCII case-insensitively; values are raw bytes (a header value need
/// not be UTF-8, and a hostile one will not be).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    pairs: Vec<(String, Vec<u8>)>,
}

impl Headers {
    pub fn new() -> Self {
        Headers::default()
    }

    pub fn push(&mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) {
        self.pairs.push((name.into(), value.into()));
    }

    /// `push`, for building a set in one expression.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.push(name, value);
        self
    }

    /// Drops every value of `name`.
    pub fn remove(&mut self, name: &str) {
        self.pairs.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    /// Replaces every value of `name` by one.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) {
        let name = name.into();
        self.remove(&name);
        self.push(name, value);
    }

    /// The first value of `name`. Like PSR-7 in the SDK, a header sent twice
    /// is judged by its first value only.
    pub fn first(&self, name: &str) -> Option<&[u8]> {
        self.pairs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_slice()))
    }

    /// The `X-Paysera-*` headers, the ones worth journaling with the body.
    pub fn paysera(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.iter().filter(|(n, _)| {
            n.len() >= 10 && n.as_bytes()[..10].eq_ignore_ascii_case(b"x-paysera-")
        })
    }

    /// The headers the verifier reads ([`HeaderName::ALL`]), each by its
    /// first value as [`Headers::first`] gives it, in the order received.
    pub fn read_by_verifier(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.iter()
            .enumerate()
            .filter_map(move |(i, (name, value))| {
                let read = HeaderName::ALL
                    .iter()
                    .any(|h| h.as_str().eq_ignore_ascii_case(name));
                let first = !self.pairs[..i]
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case(name));
                (read && first).then_some((name, value))
            })
    }

    /// The `X-Paysera-*` headers are exactly the ones the verifier reads, each
    /// once.
    pub fn paysera_all_read(&self) -> bool {
        self.paysera().count() == self.read_by_verifier().count()
    }
}

impl<N: Into<String>, V: Into<Vec<u8>>> FromIterator<(N, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (N, V)>>(iter: I) -> Self {
        Headers {
            pairs: iter
                .into_iter()
                .map(|(n, v)| (n.into(), v.into()))
                .collect(),
        }
    }
}

/// The five headers once they have passed §3.1's format checks. None of them
/// is covered by the signature (§3.2), so they identify a delivery for logs
/// and journals, and prove nothing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WebhookHeaders {
    /// The claimed HMAC: exactly 64 lowercase hex characters.
    pub signature: String,
    /// `HMAC-SHA256` in whatever case it was sent.
    pub signature_alg: String,
    /// Unix seconds, > 0. Deliberately no freshness window: retries arrive up
    /// to ~31 h late (§3.3), and the header is unsigned anyway.
    pub created_at: i64,
    pub request_id: String,
    pub callback_id: String,
}

impl WebhookHeaders {
    /// §3.1, in the SDK's order: signature present → signature format →
    /// algorithm → created-at → request id → callback id. The first failure wins.
    pub fn parse(headers: &Headers) -> Result<Self, CheckoutError> {
        let get = |h: HeaderName| {
            headers
                .first(h.as_str())
                .ok_or(CheckoutError::MissingHeader(h))
        };

        let signature = get(HeaderName::Signature)?;
        if !is_lower_hex64(signature) {
            return Err(CheckoutError::SignatureFormat(printable(signature)));
        }
        let alg = get(HeaderName::SignatureAlg)?;
        if !alg.eq_ignore_ascii_case(b"HMAC-SHA256") {
            return Err(CheckoutError::UnsupportedAlgorithm(printable(alg)));
        }
        let created = get(HeaderName::CreatedAt)?;
        let created_at = parse_created_at(created)
            .ok_or_else(|| CheckoutError::CreatedAt(printable(created)))?;
        let uuid = |h: HeaderName| -> Result<String, CheckoutError> {
            let value = get(h)?;
            if is_uuid(value) {
                Ok(ascii(value))
            } else {
                Err(CheckoutError::NotUuid(h, printable(value)))
            }
        };
        let request_id = uuid(HeaderName::RequestId)?;
        let callback_id = uuid(HeaderName::CallbackId)?;
        Ok(WebhookHeaders {
            signature: ascii(signature),
            signature_alg: ascii(alg),
            created_at,
            request_id,
            callback_id,
        })
    }

    /// The 32 bytes the signature header stands for.
    pub(crate) fn signature_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        // The format check above admits only [0-9a-f]{64}, so this cannot fail;
        // a failure would leave zeros, which no honest MAC equals by chance.
        let _ = hex::decode_to_slice(&self.signature, &mut out);
        out
    }
}

/// Text already checked to be ASCII.
fn ascii(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The SDK's `/^[0-9a-f]{64}\z/`: lowercase only, since the regex rejects
/// uppercase before any comparison.
pub(crate) fn is_lower_hex64(s: &[u8]) -> bool {
    s.len() == 64 && s.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// 8-4-4-4-12 hex digits, any case, any version (the SDK's UUID regex). The
/// trailing newline PCRE's `$` would also let through cannot occur in a
/// well-formed header, so it is refused here.
pub(crate) fn is_uuid(s: &[u8]) -> bool {
    s.len() == 36
        && s.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Plain ASCII digits (surrounding blanks allowed), > 0. Stricter than PHP's
/// `(int)` cast, which would read `17abc` as 17: Paysera sends digits only.
fn parse_created_at(value: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?.trim_matches([' ', '\t']);
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<i64>().ok().filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Headers {
        Headers::new()
            .with("X-Paysera-Signature", "a".repeat(64))
            .with("X-Paysera-Signature-Alg", "HMAC-SHA256")
            .with("X-Paysera-Created-At", "1736433571")
            .with(
                "X-Paysera-Request-Id",
                "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
            )
            .with(
                "X-Paysera-Callback-Id",
                "9b2d6c1e-8f7a-4c3b-a1e2-5d4c3b2a1f00",
            )
    }

    #[test]
    fn names_are_case_insensitive_and_the_first_value_counts() {
        let mut h = good();
        h.push("x-paysera-signature", "b".repeat(64));
        assert_eq!(
            h.first("X-PAYSERA-SIGNATURE"),
            Some("a".repeat(64).as_bytes())
        );
        assert_eq!(WebhookHeaders::parse(&h).unwrap().signature, "a".repeat(64));
        assert_eq!(h.paysera().count(), 6);
        h.push("Content-Type", "application/json");
        assert_eq!(h.paysera().count(), 6);
    }

    #[test]
    fn the_first_failure_in_sdk_order_is_reported() {
        let h = Headers::new()
            .with("X-Paysera-Signature-Alg", "md5")
            .with("X-Paysera-Created-At", "0");
        assert_eq!(
            WebhookHeaders::parse(&h),
            Err(CheckoutError::MissingHeader(HeaderName::Signature))
        );
        let mut h = good();
        h.set("X-Paysera-Signature-Alg", "md5");
        h.set("X-Paysera-Callback-Id", "x");
        assert_eq!(
            WebhookHeaders::parse(&h),
            Err(CheckoutError::UnsupportedAlgorithm("md5".into()))
        );
    }

    #[test]
    fn created_at_is_a_positive_integer_without_freshness_window() {
        for (text, want) in [
            ("1", Some(1)),
            (" 1736433571 ", Some(1736433571)),
            ("0", None),
            ("-5", None),
            ("abc", None),
            ("17abc", None),
            ("", None),
            ("99999999999999999999", None),
        ] {
            assert_eq!(parse_created_at(text.as_bytes()), want, "{text:?}");
        }
    }

    #[test]
    fn uuids_any_case_any_version() {
        assert!(is_uuid(b"3F2504E0-4F89-41D3-9A0C-0305E82C3301"));
        assert!(is_uuid(b"00000000-0000-0000-0000-000000000000"));
        assert!(!is_uuid(b"3f2504e0-4f89-41d3-9a0c-0305e82c3301\n"));
        assert!(!is_uuid(b"3f2504e04f8941d39a0c0305e82c3301"));
        assert!(!is_uuid(b"cb-1"));
        assert!(!is_uuid(b"3f2504e0-4f89-41d3-9a0c-0305e82c330g"));
    }

    #[test]
    fn hostile_values_are_quoted_bounded_and_escaped() {
        let mut h = good();
        let mut evil = b"\r\nX-Forged: 1 ".to_vec();
        evil.extend(std::iter::repeat_n(b'z', 10_000));
        h.set("X-Paysera-Signature", evil);
        let msg = WebhookHeaders::parse(&h).unwrap_err().to_string();
        assert!(msg.contains("\\r\\nX-Forged"), "{msg}");
        assert!(!msg.contains('\n'));
        assert!(msg.len() < 150, "{msg}");
    }
}
