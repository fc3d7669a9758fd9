//! What the project password and the signed bytes become in each proof: MD5
//! for `ss1`/`_ss1`/`_ss1v2`, the AES key for encrypted callbacks. Crate-visible
//! because the gateway-side signer (`crate::sim`) must produce exactly these.

use subtle::ConstantTimeEq;

/// Lower-case hex MD5, compared in constant time with what was received.
pub(crate) fn md5_matches(input: &[&[u8]], received: &[u8]) -> bool {
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    for part in input {
        h.update(part);
    }
    let expected = hex::encode(h.finalize());
    expected.as_bytes().ct_eq(received).into()
}

/// Lower-case hex MD5, the form every password-based signature takes.
pub(crate) fn md5_hex(input: &[u8]) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(input))
}

/// The AES-256-GCM key, made from the project password the way PHP's OpenSSL
/// takes a string key: NUL-padded or cut to 32 bytes.
pub(crate) fn gcm_key(password: &str) -> [u8; 32] {
    let mut key = [0u8; 32];
    let bytes = password.as_bytes();
    let n = bytes.len().min(32);
    key[..n].copy_from_slice(&bytes[..n]);
    key
}

/// The legacy library used a 32-character password as it is, and the MD5 of any other.
pub(crate) fn legacy_password(password: &str) -> String {
    if password.len() == 32 {
        password.to_string()
    } else {
        md5_hex(password.as_bytes())
    }
}
