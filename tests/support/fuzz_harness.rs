//! The fuzz targets' checks, shared: `fuzz/fuzz_targets/*.rs` include this file
//! (`#[path = "../../tests/support/fuzz_harness.rs"]`) and so does every test
//! binary (through `tests/support/mod.rs`), so `tests/protocol/fuzz_regressions.rs`
//! replays inputs through exactly the checks the fuzzers run. It depends only
//! on crates both have (payhook, md-5, aes-gcm, hex, secrecy, serde_json).
//!
//! * [`check_callback`] (`verify_callback`): `RequestParams::parse` then
//!   `Verifier::verify` under four policies. Every input is checked three more
//!   ways, with the same bytes taken as the *decoded content* of a callback and
//!   a valid proof forged for it (the fuzzer cannot forge RSA or MD5, so without
//!   this the accept path is out of reach):
//!     * `data` + `ss1` (MD5 with a configured password),
//!     * `data` encrypted with AES-256-GCM under a configured password,
//!     * legacy `wp_` parameters with `_ss1v2` (never enough without `_ss2`,
//!       which the fuzzer cannot forge: every such callback must be rejected).
//! * [`check_decoders`] (`decode`): `base64url::decode`, `php::parse_str`,
//!   `RequestParams::from_query_or_url` on arbitrary bytes.
//! * [`check_payment_request`] (`payment_request`): `build_payment_request`
//!   read back the way the gateway reads it.
//!
//! Any panic is a bug; so is a broken invariant.
#![allow(dead_code)]

use std::sync::OnceLock;

use aes_gcm::aead::Aead;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use md5::{Digest, Md5};
use payhook::domain::{PaymentKind, Proof, VerifiedCallback};
use payhook::paysera::{
    base64url, build_payment_request, php, validate_request, CallbackError, KeySet, Policy,
    Project, RequestError, RequestParams, Verifier,
};
use secrecy::SecretString;

// ---- verify_callback ----

/// The vectors' test key, as the fuzz target has it (a copy in `fuzz/keys/`).
pub const TEST_PUBLIC_PEM: &str = include_str!("../../fuzz/keys/test-public.pem");

/// The two configured projects: the vectors' test project and the real 1.6 one.
pub const PROJECTS: [(u64, &str); 2] = [
    (123, "pass-1f2e3d"),
    (31530, "8c5ebe834bb61a2e5ab8ef38f8d940f3"),
];

/// accept_ss1 × strict, in this order: (F,F), (F,T), (T,F), (T,T).
pub const POLICIES: [Policy; 4] = [
    Policy {
        accept_ss1: false,
        strict: false,
        accept_legacy: true,
    },
    Policy {
        accept_ss1: false,
        strict: true,
        accept_legacy: true,
    },
    Policy {
        accept_ss1: true,
        strict: false,
        accept_legacy: true,
    },
    Policy {
        accept_ss1: true,
        strict: true,
        accept_legacy: true,
    },
];

/// An error message must stay a single, short log line whatever the request held.
pub const MAX_ERROR_TEXT: usize = 600;

/// The fuzz target's configuration under `policy`: both projects, the test
/// key and Paysera's production key.
pub fn verifier(policy: Policy) -> Verifier {
    let mut keys = KeySet::from_pem(TEST_PUBLIC_PEM).expect("test key parses");
    keys.extend(KeySet::paysera_production());
    assert_eq!(keys.keys().len(), 2);
    let projects: Vec<Project> = PROJECTS
        .iter()
        .map(|(id, pw)| Project::new(*id, Some(SecretString::from(pw.to_string()))))
        .collect();
    Verifier::new(projects, keys, policy).unwrap()
}

pub fn verifiers() -> &'static [Verifier; 4] {
    static V: OnceLock<[Verifier; 4]> = OnceLock::new();
    V.get_or_init(|| POLICIES.map(verifier))
}

/// Whether to check the text of this error. `PAYHOOK_FUZZ_SKIP_KNOWN=1` skips
/// the two variants that carried raw request names when fuzzing found it
/// (`NotAValue`, `NotUtf8`; see docs/fuzzing.md), so a long run can look for
/// anything else.
fn check_error_text(e: &CallbackError) -> bool {
    static SKIP_KNOWN: OnceLock<bool> = OnceLock::new();
    let skip = *SKIP_KNOWN.get_or_init(|| std::env::var_os("PAYHOOK_FUZZ_SKIP_KNOWN").is_some());
    !(skip && matches!(e, CallbackError::NotAValue(_) | CallbackError::NotUtf8(_)))
}

pub fn md5_hex(parts: &[&[u8]]) -> String {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    hex::encode(h.finalize())
}

fn gcm_key(password: &str) -> [u8; 32] {
    let mut key = [0u8; 32];
    let n = password.len().min(32);
    key[..n].copy_from_slice(&password.as_bytes()[..n]);
    key
}

fn legacy_password(password: &str) -> String {
    if password.len() == 32 {
        password.to_string()
    } else {
        md5_hex(&[password.as_bytes()])
    }
}

fn same(a: &VerifiedCallback, b: &VerifiedCallback) -> bool {
    a.project_id() == b.project_id()
        && a.proof() == b.proof()
        && a.kind() == b.kind()
        && a.fields() == b.fields()
        && a.identity() == b.identity()
}

/// Invariants of any single result.
pub fn check_result(
    verifier: &Verifier,
    params: &RequestParams,
    r: &Result<VerifiedCallback, CallbackError>,
) {
    let policy = verifier.policy();
    match r {
        Err(e) => {
            let text = e.to_string();
            assert!(!text.is_empty());
            let _ = e.class().as_str();
            if check_error_text(e) {
                assert!(
                    text.len() <= MAX_ERROR_TEXT,
                    "error text of {} bytes: {:?}…",
                    text.len(),
                    &text[..text.char_indices().nth(80).map_or(text.len(), |(i, _)| i)]
                );
                assert!(
                    !text.chars().any(char::is_control),
                    "control character in error text: {text:?}"
                );
            }
        }
        Ok(v) => {
            // Fields serialise (the receiver stores them as JSON).
            let json = serde_json::to_string(v.fields()).expect("fields serialise to JSON");
            let back: serde_json::Value = serde_json::from_str(&json).expect("JSON reads back");
            assert!(back.is_object());
            // Identity is a pure function of project and content.
            assert_eq!(v.identity(), v.identity());
            assert!(PROJECTS
                .iter()
                .any(|(id, _)| id.to_string() == v.project_id()));
            // Re-verifying the same parameters gives the same callback.
            let again = verifier.verify(params).expect("second verify accepts too");
            assert!(same(v, &again), "re-verify differs");
            // ss1-only proofs only when the policy allows them.
            if !policy.accept_ss1 {
                assert!(
                    matches!(
                        v.proof(),
                        Proof::Ss2 | Proof::Ss3 | Proof::Aes256Gcm | Proof::LegacySs2
                    ),
                    "{:?} accepted without accept_ss1",
                    v.proof()
                );
            }
            // The typed fields agree with the raw ones.
            assert_eq!(v.orderid(), v.fields().text("orderid"));
            if !v.proof().is_legacy() {
                assert_eq!(v.fields().text("type"), Some(v.kind().as_str()));
            }
            let legacy_micro = v.proof().is_legacy() && v.kind() == PaymentKind::Micro;
            if !legacy_micro {
                assert_eq!(v.fields().text("projectid"), Some(v.project_id()));
            }
        }
    }
}

/// Runs all four policies and checks each result and how they relate.
pub fn verify_all(params: &RequestParams) -> [Result<VerifiedCallback, CallbackError>; 4] {
    let vs = verifiers();
    let results = [0, 1, 2, 3].map(|i| vs[i].verify(params));
    for (v, r) in vs.iter().zip(&results) {
        check_result(v, params, r);
    }
    // Monotone: strict only removes, accept_ss1 only adds; what both accept is the same callback.
    for (narrow, wide) in [(1, 0), (3, 2), (0, 2), (1, 3)] {
        if let Ok(n) = &results[narrow] {
            match &results[wide] {
                Ok(w) => assert!(
                    same(n, w),
                    "{:?} and {:?} accept differently",
                    POLICIES[narrow],
                    POLICIES[wide]
                ),
                Err(e) => panic!(
                    "{:?} accepts but {:?} rejects: {e}",
                    POLICIES[narrow], POLICIES[wide]
                ),
            }
        }
    }
    results
}

fn all_utf8(a: &php::Array) -> bool {
    a.iter().all(|(k, v)| {
        std::str::from_utf8(k).is_ok()
            && match v {
                php::Value::Str(s) => std::str::from_utf8(s).is_ok(),
                php::Value::Array(inner) => all_utf8(inner),
            }
    })
}

/// What a callback whose proof holds must give for decoded content `content`
/// proved by project `chosen`: exactly the content errors, in the verifier's order.
pub fn check_content(
    r: &Result<VerifiedCallback, CallbackError>,
    content: &[u8],
    chosen: usize,
    proof: Proof,
) {
    let parsed = php::parse_str(content);
    let id = PROJECTS[chosen].0.to_string();
    match r {
        Ok(v) => {
            assert_eq!(v.proof(), proof);
            assert_eq!(v.project_id(), id);
            assert!(all_utf8(&parsed));
            assert_eq!(parsed.get_str(b"projectid"), Some(Ok(id.as_bytes())));
        }
        Err(CallbackError::NotUtf8(_)) => assert!(!all_utf8(&parsed)),
        Err(e) => {
            assert!(all_utf8(&parsed), "{e} although content is not UTF-8");
            match (parsed.get(b"projectid"), e) {
                (None, CallbackError::ProjectMissing) => {}
                (Some(php::Value::Array(_)), CallbackError::ProjectNotConfigured(s)) => {
                    assert_eq!(s, "Array")
                }
                (Some(php::Value::Str(s)), CallbackError::ProjectNotConfigured(_)) => {
                    assert_ne!(s.as_slice(), id.as_bytes())
                }
                (Some(php::Value::Str(s)), CallbackError::Malformed(_)) => {
                    assert_eq!(s.as_slice(), id.as_bytes())
                }
                (p, e) => panic!("{proof:?}-proved content rejected with {e:?} (projectid {p:?})"),
            }
        }
    }
}

/// `data` carrying `content`, with a valid `ss1` of project `chosen`.
pub fn ss1_query(content: &[u8], chosen: usize) -> String {
    let data = base64url::encode(content);
    let ss1 = md5_hex(&[data.as_bytes(), PROJECTS[chosen].1.as_bytes()]);
    php::build_query([("data", data.as_str()), ("ss1", ss1.as_str())])
}

/// `data` + a valid `ss1` for the content.
pub fn forged_ss1(content: &[u8], chosen: usize) {
    let query = ss1_query(content, chosen);
    let params = RequestParams::parse(query.as_bytes(), b"");
    let results = verify_all(&params);
    for (policy, r) in POLICIES.iter().zip(&results) {
        if policy.accept_ss1 {
            check_content(r, content, chosen, Proof::Ss1);
        } else {
            assert_eq!(r.as_ref().err(), Some(&CallbackError::NoRsaSignature));
        }
    }
}

/// Encrypted `data` (IV ‖ ciphertext ‖ tag) for the content.
pub fn forged_gcm(content: &[u8], chosen: usize) {
    let iv: [u8; 12] = Md5::digest(content)[..12].try_into().unwrap();
    let cipher = Aes256Gcm::new(&gcm_key(PROJECTS[chosen].1).into());
    let sealed = cipher.encrypt(&Nonce::from(iv), content).unwrap();
    let data = base64url::encode(&[iv.as_slice(), &sealed].concat());
    let query = php::build_query([("data", data.as_str())]);
    let params = RequestParams::parse(query.as_bytes(), b"");
    for r in &verify_all(&params) {
        check_content(r, content, chosen, Proof::Aes256Gcm);
    }
}

/// Every `&`-segment of the content prefixed `wp_`, signed with `_ss1v2`.
pub fn forged_legacy(content: &[u8], chosen: usize) {
    const PLACEHOLDER: &[u8; 32] = b"00000000000000000000000000000000";
    let mut query = b"wp__ss1v2=".to_vec();
    query.extend_from_slice(PLACEHOLDER);
    for segment in content.split(|&b| b == b'&').filter(|s| !s.is_empty()) {
        query.extend_from_slice(b"&wp_");
        query.extend_from_slice(segment);
    }
    // Sign what PHP's parsing makes of it, whatever the segments were.
    let parsed = php::parse_str(&query);
    let pairs: Vec<(&[u8], &php::Value)> = parsed
        .iter()
        .filter(|(k, _)| k.len() > 3 && k.starts_with(b"wp_"))
        .collect();
    let values: Option<Vec<&[u8]>> = pairs
        .iter()
        .filter(|(k, _)| *k != b"wp__ss2" && *k != b"wp__ss1v2")
        .map(|(k, v)| match v {
            php::Value::Str(s) if std::str::from_utf8(k).is_ok() => Some(s.as_slice()),
            _ => None,
        })
        .collect();
    let p = legacy_password(PROJECTS[chosen].1);
    let signature = values.as_ref().map(|values| {
        let mut input: Vec<&[u8]> = vec![p.as_bytes()];
        for v in values {
            input.push(b"|");
            input.push(v);
        }
        md5_hex(&input)
    });
    if let Some(sig) = &signature {
        query[10..42].copy_from_slice(sig.as_bytes());
    }
    let params = RequestParams::parse(&query, b"");
    // `_ss1v2` alone, however well made, is never a legacy callback's proof.
    for r in &verify_all(&params) {
        assert!(r.is_err(), "legacy callback accepted without _ss2");
    }
}

/// Everything `fuzz/verify_callback` checks for one input: `query`
/// [`\0` `form body`] (split at the first NUL byte, so a plain callback query
/// string is a valid input). Panics on a broken invariant.
pub fn check_callback(input: &[u8]) {
    let (query, body) = match input.iter().position(|&b| b == 0) {
        Some(nul) => (&input[..nul], &input[nul + 1..]),
        None => (input, &b""[..]),
    };

    // 1. The input as a callback, as received.
    let params = RequestParams::parse(query, body);
    let _ = verify_all(&params);

    // 2. The query taken as decoded content, with forged proofs.
    let chosen = query.len() % 2;
    forged_ss1(query, chosen);
    forged_gcm(query, 1 - chosen);
    forged_legacy(query, chosen);
}

// ---- decode ----

/// PHP's `max_input_nesting_level`.
pub const MAX_NESTING: usize = 64;

fn depth(v: &php::Value) -> usize {
    match v {
        php::Value::Str(_) => 0,
        php::Value::Array(a) => 1 + a.iter().map(|(_, v)| depth(v)).max().unwrap_or(0),
    }
}

/// Keys are unique at every level (PHP assignment replaces in place).
fn unique_keys(a: &php::Array) -> bool {
    let keys: Vec<&[u8]> = a.iter().map(|(k, _)| k).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    sorted.dedup();
    sorted.len() == keys.len()
        && a.iter().all(|(_, v)| match v {
            php::Value::Array(inner) => unique_keys(inner),
            php::Value::Str(_) => true,
        })
}

pub fn check_base64(input: &[u8]) {
    let decoded = base64url::decode(input);
    if let Ok(bytes) = &decoded {
        // encode ∘ decode is canonical and decodes back to the same bytes.
        let encoded = base64url::encode(bytes);
        assert_eq!(encoded.len() % 4, 0);
        assert!(encoded
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_=".contains(&b)));
        assert_eq!(base64url::decode(encoded.as_bytes()).as_ref(), Ok(bytes));
        // Never more than 3 bytes per 4 characters.
        assert!(bytes.len() * 4 <= input.len() * 3 + 3);
    }
    // ASCII whitespace is skipped wherever it is.
    let stripped: Vec<u8> = input
        .iter()
        .copied()
        .filter(|b| !b" \t\r\n".contains(b))
        .collect();
    assert_eq!(base64url::decode(&stripped), decoded);
    // Both alphabets mean the same.
    let standard: Vec<u8> = input
        .iter()
        .map(|&b| match b {
            b'-' => b'+',
            b'_' => b'/',
            b => b,
        })
        .collect();
    assert_eq!(base64url::decode(&standard), decoded);
}

pub fn check_parse_str(input: &[u8]) {
    let parsed = php::parse_str(input);
    assert!(parsed.len() <= php::MAX_INPUT_VARS);
    assert!(unique_keys(&parsed));
    for (k, v) in parsed.iter() {
        assert!(!k.is_empty(), "empty top-level name");
        assert!(!k.contains(&0), "NUL in a name");
        assert_ne!(k[0], b' ', "leading space in a name");
        assert!(depth(v) <= MAX_NESTING, "nesting deeper than PHP keeps");
    }
    // Parsing is deterministic, and Debug never panics.
    assert_eq!(php::parse_str(input), parsed);
    let _ = format!("{parsed:?}");
    // A value round-trips through urlencode/urldecode.
    let mut encoded = String::new();
    php::url_encode_into(&mut encoded, input);
    assert_eq!(php::url_decode(encoded.as_bytes()), input);
    assert!(php::url_decode(input).len() <= input.len());
}

pub fn check_from_query_or_url(text: &str) {
    let params = RequestParams::from_query_or_url(text);
    let debug = format!("{params:?}");
    // A bare query and the same query behind a URL give the same parameters.
    if !text.contains('?') && text.trim() == text {
        let url = format!("https://shop.example/callback?{text}");
        let via_url = RequestParams::from_query_or_url(&url);
        assert_eq!(format!("{via_url:?}"), debug);
    }
}

/// Everything `fuzz/decode` checks for one input.
pub fn check_decoders(input: &[u8]) {
    check_base64(input);
    check_parse_str(input);
    check_from_query_or_url(&String::from_utf8_lossy(input));
}

// ---- payment_request ----

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

/// Everything `fuzz/payment_request` checks for one input: the four required
/// fields first when `required`, then `extra`.
pub fn check_payment_request(
    required: bool,
    project_id: u64,
    password: &str,
    version: &str,
    extra: Vec<(String, String)>,
) {
    let mut params: Vec<(String, String)> = Vec::new();
    if required {
        for (k, v) in [
            ("orderid", "A-1"),
            ("accepturl", "https://shop.example/ok"),
            ("cancelurl", "https://shop.example/cancel"),
            ("callbackurl", "https://shop.example/cb"),
        ] {
            params.push((k.into(), v.into()));
        }
    }
    params.extend(extra);

    let built = build_payment_request(project_id, password, &params, version);
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
    h.update(password.as_bytes());
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
    let project = project_id.to_string();
    expected.push(("version", version));
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
    assert_eq!(parsed.get_str(b"version"), Some(Ok(version.as_bytes())));
    assert_eq!(parsed.get_str(b"projectid"), Some(Ok(project.as_bytes())));
}

/// The secret the gateway recipes are fuzzed with.
const GATEWAY_SECRET: &str = "fuzz-secret-9c1e";

/// Every built-in profile that verifies, with `GATEWAY_SECRET`.
fn gateway_recipes() -> &'static Vec<payhook::gateways::Recipe> {
    use payhook::gateways::{GatewaySettings, Recipe};
    static R: OnceLock<Vec<Recipe>> = OnceLock::new();
    R.get_or_init(|| {
        [
            "freekassa",
            "yoomoney",
            "webmoney",
            "robokassa",
            "interkassa",
        ]
        .iter()
        .map(|profile| {
            let settings = GatewaySettings {
                name: profile.to_string(),
                profile: profile.to_string(),
                ..GatewaySettings::default()
            };
            let secret = SecretString::from(GATEWAY_SECRET.to_string());
            Recipe::build(&settings, Some(secret), None).unwrap()
        })
        .collect()
    })
}

/// What a verified gateway payment must be: an order id as the gateway takes
/// it, an amount that is not negative, and a signed part that holds the
/// signature (what is stored whole).
fn check_gateway_read(recipe: &payhook::gateways::Recipe, request: &payhook::gateways::Request) {
    if let Ok(payment) = recipe.read(request) {
        assert!(payment.verified);
        if let Some(id) = &payment.orderid {
            assert!(!id.is_empty() && id.len() <= 40 && !id.chars().any(char::is_control));
        }
        if let Some(amount) = payment.amount {
            assert!(amount.minor_units() >= 0);
        }
        assert!(!payment.signed.is_empty());
        assert!(!payment.reply.chars().any(char::is_control));
    }
}

/// The gateways file's parser on `input` as text, then every built-in
/// profile's reader on `input` as a request, as received and signed with
/// each of the profile's signatures (the fuzzer cannot forge a digest over
/// a secret: without this, what follows the signature check is out of reach).
pub fn check_gateway(input: &[u8]) {
    use payhook::gateways::Request;
    if let Ok(text) = std::str::from_utf8(input) {
        let _ = payhook::config::gateways::parse(text, "fuzz.toml");
    }
    let request = Request::from_urlencoded(input);
    for recipe in gateway_recipes() {
        check_gateway_read(recipe, &request);
        for signature in &recipe.signatures {
            let Ok(sig) = signature.sign(&request, GATEWAY_SECRET.as_bytes()) else {
                continue;
            };
            let mut fields: Vec<(String, Vec<u8>)> = request
                .iter()
                .filter(|(name, _)| *name != signature.field)
                .map(|(k, v)| (k.to_string(), v.to_vec()))
                .collect();
            fields.push((signature.field.clone(), sig.into_bytes()));
            check_gateway_read(recipe, &Request::new(fields));
        }
    }
}
