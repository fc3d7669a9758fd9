//! Spec 1.6+ callbacks: `data` with `ss1`/`ss2`/`ss3`, or encrypted `data` alone
//! (protocol.md c.2–c.6).

use aes_gcm::aead::Aead;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};

use super::base64url;
use super::context::Context;
use super::digest::{gcm_key, md5_matches};
use super::error::CallbackError;
use super::keys::HashAlg;
use super::params::{to_fields, RequestParams};
use super::php;
use crate::domain::{FieldValue, Fields, PaymentKind, Proof, VerifiedCallback};

/// IV (12) + tag (16): anything shorter cannot hold a single byte of query.
const GCM_MIN_LEN: usize = 12 + 16;

impl Context {
    pub(super) fn verify_current(
        &self,
        params: &RequestParams,
    ) -> Result<VerifiedCallback, CallbackError> {
        let data = params
            .str_param("data")?
            .ok_or(CallbackError::MissingData)?;
        let (proof, proved_by, query) = if ["ss1", "ss2", "ss3"].iter().any(|k| params.has(k)) {
            let (proof, proved_by) = self.check_signatures(params, data)?;
            let query = base64url::decode(data).map_err(|_| CallbackError::BadBase64("data"))?;
            (proof, proved_by, query)
        } else {
            let raw = base64url::decode(data).map_err(|_| CallbackError::BadBase64("data"))?;
            let (project, plain) = self.decrypt(&raw)?;
            (Proof::Aes256Gcm, Some(project), plain)
        };

        let mut fields = to_fields(php::parse_str(&query))?;
        let project = self.project_for(&fields, proved_by)?;
        let kind = detect_kind(&mut fields);
        self.finish(project, proof, kind, fields)
    }

    /// The library's rule: `ss3` decides whenever its key exists (even empty),
    /// else `ss2`; no fallback from a failing `ss3` to `ss2`.
    fn check_signatures(
        &self,
        params: &RequestParams,
        data: &[u8],
    ) -> Result<(Proof, Option<usize>), CallbackError> {
        let decisive = if params.has("ss3") {
            Some((Proof::Ss3, Proof::Ss3))
        } else if params.has("ss2") {
            Some((Proof::Ss2, Proof::Ss2))
        } else {
            None
        };
        let policy = self.policy();
        match decisive {
            Some((param, proof)) => {
                self.check_rsa(params, param, data)?;
                let mut proved_by = None;
                if policy.strict {
                    if param == Proof::Ss3 && params.has("ss2") {
                        self.check_rsa(params, Proof::Ss2, data)?;
                    }
                    if params.has("ss1") {
                        proved_by = Some(self.check_ss1(params, data)?);
                    }
                }
                Ok((proof, proved_by))
            }
            None if policy.accept_ss1 => Ok((Proof::Ss1, Some(self.check_ss1(params, data)?))),
            None => Err(CallbackError::NoRsaSignature),
        }
    }

    fn check_rsa(
        &self,
        params: &RequestParams,
        param: Proof,
        data: &[u8],
    ) -> Result<(), CallbackError> {
        let (name, hash) = match param {
            Proof::Ss3 => ("ss3", HashAlg::Sha256),
            _ => ("ss2", HashAlg::Sha1),
        };
        let encoded = params.str_param(name)?.unwrap_or_default();
        // A signature that does not even decode is a failed signature, not a decoding issue.
        let signature =
            base64url::decode(encoded).map_err(|_| CallbackError::SignatureMismatch(param))?;
        if self.keys().verify(hash, data, &signature) {
            Ok(())
        } else {
            Err(CallbackError::SignatureMismatch(param))
        }
    }

    /// `ss1 = md5_hex(data + password)`; returns the project whose password matched.
    fn check_ss1(&self, params: &RequestParams, data: &[u8]) -> Result<usize, CallbackError> {
        let received = params.str_param("ss1")?.unwrap_or_default();
        self.passwords("ss1")?
            .find(|(_, password)| md5_matches(&[data, password.as_bytes()], received))
            .map(|(i, _)| i)
            .ok_or(CallbackError::SignatureMismatch(Proof::Ss1))
    }

    /// AES-256-GCM, `IV(12) || ciphertext || tag(16)`, keyed with the project
    /// password (`gcm_key`).
    fn decrypt(&self, raw: &[u8]) -> Result<(usize, Vec<u8>), CallbackError> {
        let passwords = self.passwords("encrypted data")?;
        if raw.len() < GCM_MIN_LEN {
            return Err(CallbackError::DecryptionFailed);
        }
        let (iv, sealed) = raw.split_at(12);
        let iv = Nonce::try_from(iv).map_err(|_| CallbackError::DecryptionFailed)?;
        for (project, password) in passwords {
            let cipher = Aes256Gcm::new(&gcm_key(password).into());
            if let Ok(plain) = cipher.decrypt(&iv, sealed) {
                return Ok((project, plain));
            }
        }
        Err(CallbackError::DecryptionFailed)
    }
}

/// The library keeps `type` when it is exactly `micro` or `macro`, and otherwise
/// overwrites it: micro when `to`, `from` and `sms` are all present.
fn detect_kind(fields: &mut Fields) -> PaymentKind {
    match fields.text("type") {
        Some("micro") => PaymentKind::Micro,
        Some("macro") => PaymentKind::Macro,
        _ => {
            let kind = if ["to", "from", "sms"].iter().all(|k| fields.contains(k)) {
                PaymentKind::Micro
            } else {
                PaymentKind::Macro
            };
            fields.set("type", FieldValue::Text(kind.as_str().to_string()));
            kind
        }
    }
}
