//! Fuzzes `build_payment_request` with arbitrary fields, then reads the signed
//! request back the way the gateway does: base64url-decode `data`, `parse_str` it.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use md5::{Digest, Md5};
use payhook::paysera::{base64url, build_payment_request, php, validate_request, RequestError};

#[derive(Arbitrary, Debug)]
struct Input {
    /// Put the four required fields first (so most inputs build).
    required: bool,
    project_id: u64,
    password: String,
    version: String,
    params: Vec<(String, String)>,
}

const RESERVED: &[&str] = &["projectid", "version", "sign", "repeat_request", "data"];

/// A name PHP keeps as it is.
fn plain(name: &str) -> bool {
    !name.is_empty() && !name.starts_with(' ') && !name.bytes().any(|b| b"\0 .[".contains(&b))
}

/// The part of PHP's variable name every form of mangling starts with.
fn mangled_base(name: &str) -> Vec<u8> {
    let name = name.split('\0').next().unwrap_or_default();
    let name = name.trim_start_matches(' ');
    let base = name.split('[').next().unwrap_or_default();
    base.bytes()
        .map(|b| if b == b' ' || b == b'.' { b'_' } else { b })
        .collect()
}

fuzz_target!(|input: Input| {
    let mut params: Vec<(String, String)> = Vec::new();
    if input.required {
        for (k, v) in [
            ("orderid", "A-1"),
            ("accepturl", "https://shop.example/ok"),
            ("cancelurl", "https://shop.example/cancel"),
            ("callbackurl", "https://shop.example/cb"),
        ] {
            params.push((k.into(), v.into()));
        }
    }
    params.extend(input.params);

    let built = build_payment_request(input.project_id, &input.password, &params, &input.version);
    assert_eq!(
        built.as_ref().err(),
        validate_request(&params).err().as_ref()
    );
    let request = match built {
        Ok(request) => request,
        Err(RequestError::Reserved(name)) => {
            assert!(RESERVED.contains(&name.as_str()));
            return;
        }
        Err(e) => {
            let _ = (e.to_string(), e.field());
            return;
        }
    };
    assert!(!params.iter().any(|(k, _)| RESERVED.contains(&k.as_str())));

    // sign = md5(data + password)
    let mut h = Md5::new();
    h.update(request.data.as_bytes());
    h.update(input.password.as_bytes());
    assert_eq!(request.sign, hex::encode(h.finalize()));

    // What the gateway reads.
    let query = base64url::decode(request.data.as_bytes()).expect("data is base64url");
    let parsed = php::parse_str(&query);

    // Expected: the fields in first-seen order with their last value, then version, projectid.
    let mut expected: Vec<(&str, &str)> = Vec::new();
    for (k, v) in &params {
        match expected.iter_mut().find(|(ek, _)| ek == k) {
            Some(slot) => slot.1 = v,
            None => expected.push((k, v)),
        }
    }
    let project = input.project_id.to_string();
    expected.push(("version", &input.version));
    expected.push(("projectid", &project));
    if expected.len() > php::MAX_INPUT_VARS {
        return; // PHP keeps only the first 1000 (see docs/fuzzing.md)
    }

    if expected.iter().all(|(k, _)| plain(k)) {
        // Exactly the given fields, in order, then version and projectid.
        let got: Vec<(&[u8], &php::Value)> = parsed.iter().collect();
        assert_eq!(got.len(), expected.len(), "{parsed:?}");
        for ((gk, gv), (ek, ev)) in got.iter().zip(&expected) {
            assert_eq!(*gk, ek.as_bytes());
            assert_eq!(*gv, &php::Value::Str(ev.as_bytes().to_vec()));
        }
    } else {
        // Every plain name no other name can be mangled into keeps its value.
        for (k, v) in &expected {
            if !plain(k) {
                continue;
            }
            let shadowed = expected.iter().any(|(m, _)| {
                let base = mangled_base(m);
                // An empty base is dropped by PHP, so it shadows nothing.
                m != k && !plain(m) && !base.is_empty() && k.as_bytes().starts_with(&base)
            });
            if !shadowed {
                assert_eq!(
                    parsed.get(k.as_bytes()),
                    Some(&php::Value::Str(v.as_bytes().to_vec())),
                    "{k:?}"
                );
            }
        }
    }
    // version and projectid are assigned last, so they always hold payhook's values.
    assert_eq!(
        parsed.get_str(b"version"),
        Some(Ok(input.version.as_bytes()))
    );
    assert_eq!(parsed.get_str(b"projectid"), Some(Ok(project.as_bytes())));
});
