//! The gateway's side of a callback: signs fields the way Paysera does, for the
//! demo mode's simulator and for tests. It holds a private key, so it is only ever
//! given throw-away keys (the RSA timing advisory RUSTSEC-2023-0071 concerns
//! exactly such private-key operations, never payhook's verification path).

use aes_gcm::aead::Aead;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::{Pkcs1v15Sign, PrivateKey};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::paysera::digest::{gcm_key, legacy_password, md5_hex};
use crate::paysera::{base64url, php};

/// Which callback form to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackForm {
    /// `data` + `ss1` only.
    Ss1,
    /// `data` + `ss2` only.
    Ss2,
    /// `data` + `ss3` only.
    Ss3,
    /// `data` + `ss1` + `ss2` + `ss3`, as current projects receive it.
    AllSignatures,
    /// AES-256-GCM encrypted `data` alone.
    Encrypted,
    /// Spec 1.4 `wp_` parameters with `_ss1` and `_ss2`.
    Legacy,
}

#[derive(Debug, thiserror::Error)]
#[error("gateway private key: {0}")]
pub struct SignerKeyError(String);

pub struct GatewaySigner {
    key: PrivateKey,
    password: String,
}

impl GatewaySigner {
    pub fn from_pem(private_key_pem: &str, password: &str) -> Result<Self, SignerKeyError> {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        let key = PrivateKey::from_pkcs8_pem(private_key_pem)
            .or_else(|_| PrivateKey::from_pkcs1_pem(private_key_pem))
            .map_err(|e| SignerKeyError(e.to_string()))?;
        Ok(Self {
            key,
            password: password.to_string(),
        })
    }

    /// A fresh key pair (2048 bits), for a demo or a test.
    pub fn generate(password: &str) -> Result<Self, SignerKeyError> {
        let key = PrivateKey::new(&mut rsa::rand_core::UnwrapErr(getrandom::SysRng), 2048)
            .map_err(|e| SignerKeyError(e.to_string()))?;
        Ok(Self {
            key,
            password: password.to_string(),
        })
    }

    pub fn private_key_pem(&self) -> Result<String, SignerKeyError> {
        self.key
            .to_pkcs8_pem(LineEnding::LF)
            .map(|pem| pem.to_string())
            .map_err(|e| SignerKeyError(e.to_string()))
    }

    pub fn public_key_pem(&self) -> Result<String, SignerKeyError> {
        self.key
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| SignerKeyError(e.to_string()))
    }

    fn rsa_sign_sha1(&self, message: &[u8]) -> Vec<u8> {
        self.key
            .sign(Pkcs1v15Sign::new::<Sha1>(), &Sha1::digest(message))
            .expect("signing with a valid key and a SHA-1 digest")
    }

    fn rsa_sign_sha256(&self, message: &[u8]) -> Vec<u8> {
        self.key
            .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(message))
            .expect("signing with a valid key and a SHA-256 digest")
    }

    /// The query string the gateway would send to `callbackurl` for these fields.
    pub fn callback_query(&self, fields: &[(&str, &str)], form: CallbackForm) -> String {
        if form == CallbackForm::Legacy {
            return self.legacy_query(fields);
        }
        let query = php::build_query(fields.iter().copied());
        if form == CallbackForm::Encrypted {
            let data = base64url::encode(&self.encrypt(query.as_bytes()));
            return php::build_query([("data", data.as_str())]);
        }
        let data = base64url::encode(query.as_bytes());
        let ss1 = || md5_hex(format!("{data}{}", self.password).as_bytes());
        let ss2 = || base64url::encode(&self.rsa_sign_sha1(data.as_bytes()));
        let ss3 = || base64url::encode(&self.rsa_sign_sha256(data.as_bytes()));
        let signatures = match form {
            CallbackForm::Ss1 => vec![("ss1", ss1())],
            CallbackForm::Ss2 => vec![("ss2", ss2())],
            CallbackForm::Ss3 => vec![("ss3", ss3())],
            _ => vec![("ss1", ss1()), ("ss2", ss2()), ("ss3", ss3())],
        };
        let mut params = vec![("data", data.as_str())];
        params.extend(signatures.iter().map(|(k, v)| (*k, v.as_str())));
        php::build_query(params)
    }

    fn encrypt(&self, plain: &[u8]) -> Vec<u8> {
        let iv: [u8; 12] = rand::random();
        let cipher = Aes256Gcm::new(&gcm_key(&self.password).into());
        let sealed = cipher
            .encrypt(&Nonce::from(iv), plain)
            .expect("AES-GCM encryption of an in-memory buffer");
        [iv.as_slice(), &sealed].concat()
    }

    fn legacy_query(&self, fields: &[(&str, &str)]) -> String {
        let p = legacy_password(&self.password);
        let find = |name: &str| fields.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        let order = find("orderid").or_else(|| find("id")).unwrap_or_default();
        let test = if find("test") == Some("1") { "1" } else { "0" };
        let ss1 = md5_hex(format!("{p}|{order}|{test}|1").as_bytes());
        // Where real legacy callbacks carry it: before `status` and the pay*
        // fields, or in an SMS callback right after `test` and `country`
        // (protocol.md g.2).
        let micro =
            ["to", "from", "sms"].iter().all(|k| find(k).is_some()) && find("projectid").is_none();
        let mut signed: Vec<(&str, &str)> = fields.to_vec();
        let at = signed
            .iter()
            .position(|(k, _)| match micro {
                true => !matches!(*k, "test" | "country"),
                false => matches!(*k, "status" | "payamount" | "paycurrency"),
            })
            .unwrap_or(signed.len());
        signed.insert(at, ("_ss1", &ss1));
        let buffer: String = signed.iter().map(|(_, v)| format!("{v}|")).collect();
        let ss2 =
            base64::engine::general_purpose::STANDARD.encode(self.rsa_sign_sha1(buffer.as_bytes()));
        signed.push(("_ss2", &ss2));
        let prefixed: Vec<(String, &str)> = signed
            .iter()
            .map(|(k, v)| (format!("wp_{k}"), *v))
            .collect();
        php::build_query(prefixed.iter().map(|(k, v)| (k.as_str(), *v)))
    }
}

impl std::fmt::Debug for GatewaySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GatewaySigner([redacted])")
    }
}
