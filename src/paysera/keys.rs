//! The gateway's RSA public key(s): parsed once from PEM, never fetched per callback.
//!
//! Merchants meet the key in three shapes (SPKI `PUBLIC KEY`, PKCS#1 `RSA PUBLIC KEY`,
//! an X.509 `CERTIFICATE`); only the key counts, so certificate dates are ignored
//! when verifying (Paysera's first certificate expired in 2017 while the key
//! stayed in use). They are kept for `payhook check`, which reports them.

use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::{DecodePublicKey, EncodePublicKey};
use rsa::Pkcs1v15Sign;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use x509_cert::der::{Decode, Encode};
use x509_cert::Certificate;

/// Paysera's production key (RSA-1024), pinned: the same key is inside the 2009
/// mokejimai.lt certificate and the 2025 "Paysera LT" certificate.
pub const PAYSERA_PRODUCTION_PEM: &str = include_str!("../../keys/paysera-production.pem");

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("no PEM block found")]
    NoPem,
    #[error("PEM is not readable: {0}")]
    Pem(String),
    #[error("unsupported PEM block {0:?} (expected PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE)")]
    UnsupportedBlock(String),
    #[error("{block} does not hold an RSA public key: {detail}")]
    NotRsa { block: String, detail: String },
}

/// The digest a signature parameter uses: `ss2`/`_ss2` SHA-1, `ss3` SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlg {
    Sha1,
    Sha256,
}

/// A certificate's validity period, in unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: u64,
    pub not_after: u64,
}

#[derive(Clone)]
pub struct PublicKey {
    key: rsa::PublicKey,
    fingerprint: [u8; 32],
    /// `Some` when the key came in a certificate.
    certificate: Option<Validity>,
}

impl PublicKey {
    fn new(key: rsa::PublicKey, certificate: Option<Validity>) -> Result<Self, KeyError> {
        let der = key.to_public_key_der().map_err(|e| KeyError::NotRsa {
            block: "key".into(),
            detail: e.to_string(),
        })?;
        Ok(Self {
            fingerprint: Sha256::digest(der.as_bytes()).into(),
            key,
            certificate,
        })
    }

    /// The validity dates of the certificate the key came in (`None`: a bare
    /// key). Not used to verify: only the key counts.
    pub fn certificate(&self) -> Option<Validity> {
        self.certificate
    }

    /// SHA-256 of the key's SubjectPublicKeyInfo DER, lower-case hex.
    pub fn fingerprint(&self) -> String {
        hex::encode(self.fingerprint)
    }

    pub fn bits(&self) -> usize {
        use rsa::traits::PublicKeyParts;
        self.key.size() * 8
    }

    fn verify(&self, digest: HashAlg, message: &[u8], signature: &[u8]) -> bool {
        match digest {
            HashAlg::Sha1 => self
                .key
                .verify(
                    Pkcs1v15Sign::new::<Sha1>(),
                    &Sha1::digest(message),
                    signature,
                )
                .is_ok(),
            HashAlg::Sha256 => self
                .key
                .verify(
                    Pkcs1v15Sign::new::<Sha256>(),
                    &Sha256::digest(message),
                    signature,
                )
                .is_ok(),
        }
    }
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PublicKey(rsa-{}, sha256:{})",
            self.bits(),
            self.fingerprint()
        )
    }
}

/// Every key a callback may be signed with; one verifying is enough (key rotation).
#[derive(Clone, Debug)]
pub struct KeySet(Vec<PublicKey>);

impl KeySet {
    /// Paysera's production key, compiled in.
    pub fn paysera_production() -> Self {
        Self::from_pem(PAYSERA_PRODUCTION_PEM).expect("the compiled-in Paysera key parses")
    }

    /// Every key in a PEM text; several blocks give several keys.
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let blocks = pem::parse_many(text).map_err(|e| KeyError::Pem(e.to_string()))?;
        if blocks.is_empty() {
            return Err(KeyError::NoPem);
        }
        let keys = blocks
            .iter()
            .map(|block| {
                let tag = block.tag();
                let not_rsa = |detail: String| KeyError::NotRsa {
                    block: tag.to_string(),
                    detail,
                };
                let (key, certificate) = match tag {
                    "PUBLIC KEY" => (
                        rsa::PublicKey::from_public_key_der(block.contents())
                            .map_err(|e| not_rsa(e.to_string()))?,
                        None,
                    ),
                    "RSA PUBLIC KEY" => (
                        rsa::PublicKey::from_pkcs1_der(block.contents())
                            .map_err(|e| not_rsa(e.to_string()))?,
                        None,
                    ),
                    "CERTIFICATE" => {
                        let cert = Certificate::from_der(block.contents())
                            .map_err(|e| not_rsa(e.to_string()))?;
                        let spki = cert
                            .tbs_certificate()
                            .subject_public_key_info()
                            .to_der()
                            .map_err(|e| not_rsa(e.to_string()))?;
                        let validity = cert.tbs_certificate().validity();
                        (
                            rsa::PublicKey::from_public_key_der(&spki)
                                .map_err(|e| not_rsa(e.to_string()))?,
                            Some(Validity {
                                not_before: validity.not_before.to_unix_duration().as_secs(),
                                not_after: validity.not_after.to_unix_duration().as_secs(),
                            }),
                        )
                    }
                    other => return Err(KeyError::UnsupportedBlock(other.to_string())),
                };
                PublicKey::new(key, certificate)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self(keys))
    }

    pub fn extend(&mut self, other: KeySet) {
        for key in other.0 {
            if !self.0.iter().any(|k| k.fingerprint == key.fingerprint) {
                self.0.push(key);
            }
        }
    }

    pub fn keys(&self) -> &[PublicKey] {
        &self.0
    }

    pub fn verify(&self, digest: HashAlg, message: &[u8], signature: &[u8]) -> bool {
        self.0.iter().any(|k| k.verify(digest, message, signature))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYSERA_SPKI_SHA256: &str =
        "457d34b44ac72ee2331c491e5d25ba9ed2839a4409b67c4ea91d02abea73c330";

    #[test]
    fn pinned_key_has_the_published_fingerprint() {
        let keys = KeySet::paysera_production();
        assert_eq!(keys.keys().len(), 1);
        assert_eq!(keys.keys()[0].fingerprint(), PAYSERA_SPKI_SHA256);
        assert_eq!(keys.keys()[0].bits(), 1024);
    }

    #[test]
    fn a_certificate_keeps_its_dates_and_a_bare_key_has_none() {
        assert_eq!(KeySet::paysera_production().keys()[0].certificate(), None);
        let cert = include_str!("../../tests/vectors/real/keys/paysera-2009-mokejimai.crt.pem");
        let keys = KeySet::from_pem(cert).unwrap();
        let validity = keys.keys()[0].certificate().expect("a certificate");
        assert_eq!(keys.keys()[0].fingerprint(), PAYSERA_SPKI_SHA256);
        // 2009-07-24T12:31:15Z to 2017-10-10T12:31:15Z (the key stayed in use).
        assert_eq!(
            validity,
            Validity {
                not_before: 1_248_438_675,
                not_after: 1_507_638_675
            }
        );
    }

    #[test]
    fn rejects_what_is_not_a_key() {
        assert_eq!(KeySet::from_pem("hello").unwrap_err(), KeyError::NoPem);
        let other = "-----BEGIN PRIVATE THING-----\nAAAA\n-----END PRIVATE THING-----\n";
        assert!(matches!(
            KeySet::from_pem(other),
            Err(KeyError::UnsupportedBlock(_))
        ));
        let junk = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
        assert!(matches!(
            KeySet::from_pem(junk),
            Err(KeyError::NotRsa { .. })
        ));
    }
}
