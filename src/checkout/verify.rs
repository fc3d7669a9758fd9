//! §3: proving a webhook authentic from its raw bytes, before anything in the
//! body is parsed. Section numbers (§) are those of `docs/checkout-modern.md`.

use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::body::decode_body;
use super::error::CheckoutError;
use super::event::Body;
use super::headers::{Headers, WebhookHeaders};

/// One client secret the webhooks may be signed with, under a label that
/// logs may show (`current`, `previous`, `project 42 previous`…).
#[derive(Clone)]
pub struct Secret {
    label: String,
    /// The Checkout project (its API client id) this secret signs for.
    project: Option<String>,
    key: SecretString,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookSecretError {
    #[error("no Checkout client secret is configured")]
    NoSecrets,
    /// An empty HMAC key is a key anyone can sign with.
    #[error("the Checkout client secret \"{0}\" is empty")]
    Empty(String),
}

impl Secret {
    /// The key is the secret's UTF-8 bytes as they are: no decoding, no trimming (§3.2).
    pub fn new(label: impl Into<String>, key: SecretString) -> Result<Self, WebhookSecretError> {
        let label = label.into();
        if key.expose_secret().is_empty() {
            return Err(WebhookSecretError::Empty(label));
        }
        Ok(Secret {
            label,
            project: None,
            key,
        })
    }

    /// The secret signs for this project: a match selects it (§3.4).
    pub fn of_project(mut self, client_id: impl Into<String>) -> Self {
        self.project = Some(client_id.into());
        self
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn project(&self) -> Option<&str> {
        self.project.as_deref()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("label", &self.label)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// Which configured secret a webhook's signature matched: its position and
/// label, never the secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MatchedSecret {
    pub index: usize,
    pub label: String,
    pub project: Option<String>,
}

/// The headers passed §3.1 and the body's HMAC matched a secret. The body
/// has not been parsed yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub headers: WebhookHeaders,
    pub secret: MatchedSecret,
}

/// An authentic webhook with its body decoded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifiedWebhook {
    pub headers: WebhookHeaders,
    pub secret: MatchedSecret,
    pub body: Body,
}

/// Verifies webhooks against one or more secrets (current and previous during
/// a rotation, §3.4; or several projects' secrets, the match telling which).
#[derive(Debug, Clone)]
pub struct WebhookVerifier {
    secrets: Vec<Secret>,
}

impl WebhookVerifier {
    pub fn new(secrets: Vec<Secret>) -> Result<Self, WebhookSecretError> {
        if secrets.is_empty() {
            return Err(WebhookSecretError::NoSecrets);
        }
        Ok(WebhookVerifier { secrets })
    }

    pub fn secrets(&self) -> &[Secret] {
        &self.secrets
    }

    /// §3.1 then §3.2: the headers' formats, then the HMAC-SHA256 of the raw
    /// bytes under each secret in turn, compared in constant time. No
    /// freshness window (§3.3).
    pub fn authenticate(
        &self,
        headers: &Headers,
        body: &[u8],
    ) -> Result<Authenticated, CheckoutError> {
        let headers = WebhookHeaders::parse(headers)?;
        let claimed = headers.signature_bytes();
        for (index, secret) in self.secrets.iter().enumerate() {
            let mac = hmac_sha256(secret.key.expose_secret().as_bytes(), body);
            if bool::from(mac.ct_eq(&claimed)) {
                return Ok(Authenticated {
                    headers,
                    secret: MatchedSecret {
                        index,
                        label: secret.label.clone(),
                        project: secret.project.clone(),
                    },
                });
            }
        }
        Err(CheckoutError::SignatureMismatch(self.secrets.len()))
    }

    /// `authenticate`, then the body decoded (§4–§6). A body error here is
    /// about an authentic webhook: the caller answers 400, not a rejection.
    pub fn verify(&self, headers: &Headers, body: &[u8]) -> Result<VerifiedWebhook, CheckoutError> {
        let Authenticated { headers, secret } = self.authenticate(headers, body)?;
        let body: Body = decode_body(body)?;
        Ok(VerifiedWebhook {
            headers,
            secret,
            body,
        })
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The `X-Paysera-Signature` value Paysera would send for `body` under
/// `secret`: lowercase hex of HMAC-SHA256(secret bytes, body bytes). For the
/// simulator and tests.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    hex::encode(hmac_sha256(secret, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4231_case_2() {
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn secrets_are_never_empty_and_never_shown() {
        assert_eq!(
            WebhookVerifier::new(vec![]).unwrap_err(),
            WebhookSecretError::NoSecrets
        );
        assert_eq!(
            Secret::new("current", SecretString::from(String::new())).unwrap_err(),
            WebhookSecretError::Empty("current".into())
        );
        let s = Secret::new("current", SecretString::from("hunter2".to_string())).unwrap();
        let shown = format!("{:?}", WebhookVerifier::new(vec![s]).unwrap());
        assert!(
            !shown.contains("hunter2") && shown.contains("current"),
            "{shown}"
        );
    }
}
