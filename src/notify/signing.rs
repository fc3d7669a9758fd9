//! Standard Webhooks signatures (<https://www.standardwebhooks.com>): the
//! `webhook-signature` header is `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`,
//! keyed with the bytes of a `whsec_<base64>` secret, so that shops verify with
//! the spec's libraries instead of code of their own.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretSlice};
use sha2::Sha256;

const PREFIX: &str = "whsec_";
/// Fewer bytes are guessable; the spec's libraries accept up to 64.
pub const MIN_SECRET_BYTES: usize = 24;
pub const MAX_SECRET_BYTES: usize = 64;
/// What `payhook notify-secret` generates.
const GENERATED_BYTES: usize = 32;

/// The key of a `whsec_` secret. Never displayed: `Debug` shows neither the
/// text nor the bytes.
#[derive(Clone)]
pub struct WebhookSecret(SecretSlice<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

/// Why a secret was refused; says what is expected, never what was given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("must start with whsec_")]
    Prefix,
    #[error("must be whsec_ followed by standard base64 (A-Z a-z 0-9 + /, = padding)")]
    Base64,
    #[error(
        "must hold {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes after whsec_ (it holds {0})"
    )]
    Length(usize),
}

impl WebhookSecret {
    pub fn parse(text: &str) -> Result<WebhookSecret, SecretError> {
        let encoded = text
            .trim()
            .strip_prefix(PREFIX)
            .ok_or(SecretError::Prefix)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| SecretError::Base64)?;
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&bytes.len()) {
            return Err(SecretError::Length(bytes.len()));
        }
        Ok(WebhookSecret(SecretSlice::from(bytes)))
    }

    /// A new secret from the operating system's generator, in `whsec_` form.
    pub fn generate() -> String {
        let bytes: [u8; GENERATED_BYTES] = rand::random();
        format!("{PREFIX}{}", STANDARD.encode(bytes))
    }

    /// `v1,<base64 signature>` of one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.expose_secret())
            .expect("HMAC takes a key of any length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` value: one signature per secret, space-separated
/// (the current one first; the previous one while shops rotate).
pub fn signature_header(
    secrets: &[&WebhookSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| s.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks reference libraries.
    #[test]
    fn the_specifications_example_signs_the_same() {
        let secret = WebhookSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        assert_eq!(
            secret.sign(
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1649367553,
                br#"{"email":"test@example.com","username":"test_user"}"#
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn both_signatures_during_a_rotation() {
        let current = WebhookSecret::parse(&WebhookSecret::generate()).unwrap();
        let previous = WebhookSecret::parse(&WebhookSecret::generate()).unwrap();
        let header = signature_header(&[&current, &previous], "7", 1700000000, b"{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(
            parts,
            [
                current.sign("7", 1700000000, b"{}"),
                previous.sign("7", 1700000000, b"{}")
            ]
        );
        assert_ne!(parts[0], parts[1]);
    }

    #[test]
    fn generated_secrets_parse_and_differ() {
        let a = WebhookSecret::generate();
        let b = WebhookSecret::generate();
        assert!(a.starts_with("whsec_") && a != b);
        assert!(WebhookSecret::parse(&a).is_ok());
    }

    #[test]
    fn bad_secrets_are_refused_without_quoting_them() {
        let short = format!("whsec_{}", STANDARD.encode([7u8; 23]));
        let long = format!("whsec_{}", STANDARD.encode([7u8; 65]));
        let cases = [
            ("C2FVsBQIhrscChlQIMV+b5sSYspob7oD", SecretError::Prefix),
            ("whsec_not base64!", SecretError::Base64),
            (short.as_str(), SecretError::Length(23)),
            (long.as_str(), SecretError::Length(65)),
        ];
        for (text, want) in cases {
            let err = WebhookSecret::parse(text).unwrap_err();
            assert_eq!(err, want, "{text}");
            assert!(!err.to_string().contains(&text[text.len() - 8..]));
        }
        for bytes in [24, 64] {
            let ok = format!("whsec_{}", STANDARD.encode(vec![1u8; bytes]));
            assert!(WebhookSecret::parse(&ok).is_ok(), "{bytes} bytes");
        }
        let secret = WebhookSecret::parse(&WebhookSecret::generate()).unwrap();
        assert_eq!(format!("{secret:?}"), "WebhookSecret(***)");
    }
}
