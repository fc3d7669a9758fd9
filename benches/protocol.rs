//! The protocol core's cost per callback: the RSA verifications alone, the MD5
//! and AES-GCM checks, decoding and `parse_str`, and whole `Verifier::verify`
//! runs on real and test-vector callbacks. `docs/performance.md` has the numbers.
//!
//! Run: `cargo bench --bench protocol` (about one minute once built).

use std::hint::black_box;
use std::time::Duration;

use aes_gcm::aead::Aead;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use criterion::{criterion_group, criterion_main, Criterion};
use payhook::paysera::{base64url, php, HashAlg, KeySet, Policy, Project, RequestParams, Verifier};
use payhook::sim::{CallbackForm, GatewaySigner};
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use secrecy::SecretString;
use serde_json::Value;

#[path = "../tests/support/vectors.rs"]
mod vectors;
use vectors::vectors_dir;

const TEST_PROJECT: u64 = 123;
const TEST_PASSWORD: &str = "pass-1f2e3d";

fn read(rel: &str) -> String {
    let path = vectors_dir().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn json(rel: &str) -> Value {
    serde_json::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The decoded value of one parameter of a query.
fn param(query: &str, name: &str) -> Vec<u8> {
    let params = php::parse_str(query.as_bytes());
    params
        .get_str(name.as_bytes())
        .unwrap_or_else(|| panic!("no {name}"))
        .unwrap()
        .to_vec()
}

fn without(query: &str, name: &str) -> String {
    query
        .split('&')
        .filter(|p| p.split('=').next() != Some(name))
        .collect::<Vec<_>>()
        .join("&")
}

fn test_verifier(keys: KeySet, policy: Policy) -> Verifier {
    Verifier::new(
        vec![Project::new(
            TEST_PROJECT,
            Some(SecretString::from(TEST_PASSWORD.to_string())),
        )],
        keys,
        policy,
    )
    .unwrap()
}

fn test_keys() -> KeySet {
    KeySet::from_pem(&read("current/public.pem")).unwrap()
}

/// The real spec-1.6 callback signed by Paysera's own RSA-1024 key.
struct RealV16 {
    query: String,
    project: u64,
    password: String,
}

fn real_v16() -> RealV16 {
    let case = json("real/v16-paid-test-usd-ss1-ss2.json");
    RealV16 {
        query: case["raw_query"].as_str().unwrap().to_string(),
        project: case["secrets"]["project_id"].as_u64().unwrap(),
        password: case["secrets"]["project_password"]
            .as_str()
            .unwrap()
            .to_string(),
    }
}

/// A typical decoded callback (1072 bytes): the fields a paid bank-link payment carries.
fn typical_query() -> String {
    let paytext = "Užsakymas nr. 2024-118734 parduotuvėje shop.example.lt: \
                   3 prekės, pristatymas per paštomatą (Vilnius, Gedimino pr. 1). \
                   Ačiū, kad perkate! Jei kiltų klausimų, rašykite info@shop.example.lt \
                   arba skambinkite +370 600 00000 darbo dienomis 9–18 val.";
    let fields: Vec<(&str, &str)> = vec![
        ("projectid", "123"),
        ("orderid", "2024-118734"),
        ("lang", "LIT"),
        ("amount", "12599"),
        ("currency", "EUR"),
        ("payment", "hanzaee"),
        ("country", "LT"),
        ("paytext", paytext),
        ("p_firstname", "Jonas"),
        ("p_lastname", "Jonaitis-Petraitis"),
        ("p_email", "jonas.jonaitis+shop@example.com"),
        ("p_street", "Gedimino pr. 1-23"),
        ("p_city", "Vilnius"),
        ("p_state", ""),
        ("p_zip", "LT-01103"),
        ("p_countrycode", "LT"),
        ("test", "0"),
        ("version", "1.6"),
        ("type", "macro"),
        ("status", "1"),
        ("requestid", "1187345521"),
        ("name", "Jonas"),
        ("surename", "Jonaitis-Petraitis"),
        ("payamount", "12599"),
        ("paycurrency", "EUR"),
        ("payment_country", "LT"),
        ("payer_ip_country", "LT"),
        ("payer_country", "LT"),
        ("account", "LT601010012345678901"),
        (
            "callbackurl",
            "https://shop.example.lt/paysera/callback?order=2024-118734",
        ),
        (
            "accepturl",
            "https://shop.example.lt/checkout/thank-you?order=2024-118734",
        ),
        (
            "cancelurl",
            "https://shop.example.lt/checkout/cancelled?order=2024-118734",
        ),
    ];
    php::build_query(fields)
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(2))
        .sample_size(60)
}

/// RSA-1024/SHA-1 verification alone: Paysera's key, the real callback's ss2 over its `data`.
fn verify_ss2(c: &mut Criterion) {
    let real = real_v16();
    let data = param(&real.query, "data");
    let signature = base64url::decode(&param(&real.query, "ss2")).unwrap();
    let keys = KeySet::paysera_production();
    assert!(keys.verify(HashAlg::Sha1, &data, &signature));
    let mut group = c.benchmark_group("verify_ss2");
    group.bench_function("rsa1024_sha1_paysera_key", |b| {
        b.iter(|| keys.verify(HashAlg::Sha1, black_box(&data), black_box(&signature)))
    });
    group.finish();
}

/// RSA/SHA-256 verification alone: the 2048-bit test key on `paid-ss3-only`, and a
/// 1024-bit key (Paysera's size) generated here, signing the same fields.
fn verify_ss3(c: &mut Criterion) {
    let case = json("current/paid-ss3-only.json");
    let query = case["query"].as_str().unwrap();
    let data = param(query, "data");
    let signature = base64url::decode(&param(query, "ss3")).unwrap();
    let keys = test_keys();
    assert!(keys.verify(HashAlg::Sha256, &data, &signature));

    let (keys_1024, query_1024) = ss3_1024_case(&case);
    let data_1024 = param(&query_1024, "data");
    let signature_1024 = base64url::decode(&param(&query_1024, "ss3")).unwrap();
    assert!(keys_1024.verify(HashAlg::Sha256, &data_1024, &signature_1024));

    let mut group = c.benchmark_group("verify_ss3");
    group.bench_function("rsa2048_sha256_test_key", |b| {
        b.iter(|| keys.verify(HashAlg::Sha256, black_box(&data), black_box(&signature)))
    });
    group.bench_function("rsa1024_sha256_generated_key", |b| {
        b.iter(|| {
            keys_1024.verify(
                HashAlg::Sha256,
                black_box(&data_1024),
                black_box(&signature_1024),
            )
        })
    });
    let whole_1024 = test_verifier(keys_1024.clone(), Policy::default());
    whole_1024
        .verify(&RequestParams::from_query_or_url(&query_1024))
        .unwrap();
    group.bench_function("verify_whole_rsa1024_generated_key", |b| {
        b.iter(|| whole_1024.verify(&RequestParams::from_query_or_url(black_box(&query_1024))))
    });
    group.finish();
}

/// A fresh RSA-1024 key and an ss3-only callback of `case`'s fields signed with it.
fn ss3_1024_case(case: &Value) -> (KeySet, String) {
    let key =
        rsa::PrivateKey::new(&mut rsa::rand_core::UnwrapErr(getrandom::SysRng), 1024).unwrap();
    let pem = key.to_pkcs8_pem(LineEnding::LF).unwrap();
    let signer = GatewaySigner::from_pem(&pem, TEST_PASSWORD).unwrap();
    let keys = KeySet::from_pem(&signer.public_key_pem().unwrap()).unwrap();
    let fields: Vec<(String, String)> = case["expect"]["fields"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "type")
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    (keys, signer.callback_query(&pairs, CallbackForm::Ss3))
}

/// The MD5 check: the whole verifier under `accept_ss1` on the real callback
/// with its ss2 removed (decode, parse and typing included).
fn ss1(c: &mut Criterion) {
    let real = real_v16();
    let query = without(&real.query, "ss2");
    let verifier = Verifier::new(
        vec![Project::new(
            real.project,
            Some(SecretString::from(real.password.clone())),
        )],
        KeySet::paysera_production(),
        Policy {
            accept_ss1: true,
            ..Policy::default()
        },
    )
    .unwrap();
    verifier
        .verify(&RequestParams::from_query_or_url(&query))
        .unwrap();
    let mut group = c.benchmark_group("ss1");
    group.bench_function("verify_whole_real_v16_ss1_only", |b| {
        b.iter(|| verifier.verify(&RequestParams::from_query_or_url(black_box(&query))))
    });
    group.finish();
}

/// AES-256-GCM: the decryption alone, and the whole verifier on `paid-gcm-encrypted`.
fn gcm_decrypt(c: &mut Criterion) {
    let case = json("current/paid-gcm-encrypted.json");
    let query = case["query"].as_str().unwrap().to_string();
    let raw = base64url::decode(&param(&query, "data")).unwrap();
    let mut key = [0u8; 32];
    key[..TEST_PASSWORD.len()].copy_from_slice(TEST_PASSWORD.as_bytes());
    let cipher = Aes256Gcm::new(&key.into());
    let (iv, sealed) = raw.split_at(12);
    let iv = Nonce::try_from(iv).unwrap();
    cipher.decrypt(&iv, sealed).unwrap();
    let verifier = test_verifier(test_keys(), Policy::default());
    verifier
        .verify(&RequestParams::from_query_or_url(&query))
        .unwrap();

    let mut group = c.benchmark_group("gcm_decrypt");
    group.bench_function(format!("aes256gcm_only_{}_bytes", raw.len()), |b| {
        b.iter(|| cipher.decrypt(black_box(&iv), black_box(sealed)).unwrap())
    });
    group.bench_function("verify_whole_paid_gcm_encrypted", |b| {
        b.iter(|| verifier.verify(&RequestParams::from_query_or_url(black_box(&query))))
    });
    group.finish();
}

/// Decoding the `data` of a typical callback (1072-byte query, 1432 base64
/// characters, 32 fields) and parsing it like PHP; and
/// parsing the outer query of the real callback into `RequestParams`.
fn decode_parse(c: &mut Criterion) {
    let query = typical_query();
    let data = base64url::encode(query.as_bytes());
    assert_eq!(
        base64url::decode(data.as_bytes()).unwrap(),
        query.as_bytes()
    );
    let fields = php::parse_str(query.as_bytes()).len();
    assert_eq!(fields, 32);
    let mut group = c.benchmark_group("decode_parse");
    let id = |what: &str| format!("{what}_{}b_query_{fields}_fields", query.len());
    group.bench_function(id("base64url_decode"), |b| {
        b.iter(|| base64url::decode(black_box(data.as_bytes())).unwrap())
    });
    group.bench_function(id("parse_str"), |b| {
        b.iter(|| php::parse_str(black_box(query.as_bytes())))
    });
    group.bench_function(id("decode_and_parse"), |b| {
        b.iter(|| {
            let plain = base64url::decode(black_box(data.as_bytes())).unwrap();
            php::parse_str(&plain)
        })
    });
    let real = real_v16();
    group.bench_function("request_params_real_v16_query", |b| {
        b.iter(|| RequestParams::from_query_or_url(black_box(&real.query)))
    });
    group.finish();
}

/// Whole `Verifier::verify` from the query string to a typed `VerifiedCallback`.
fn verify_and_decode(c: &mut Criterion) {
    let real = real_v16();
    let paysera = Verifier::new(
        vec![Project::new(real.project, None)],
        KeySet::paysera_production(),
        Policy::default(),
    )
    .unwrap();
    let ss2_only = without(&real.query, "ss1");
    paysera
        .verify(&RequestParams::from_query_or_url(&ss2_only))
        .unwrap();

    let all = json("current/paid-all-signatures.json");
    let all = all["query"].as_str().unwrap().to_string();
    let lax = test_verifier(test_keys(), Policy::default());
    let strict = test_verifier(
        test_keys(),
        Policy {
            strict: true,
            ..Policy::default()
        },
    );
    lax.verify(&RequestParams::from_query_or_url(&all)).unwrap();
    strict
        .verify(&RequestParams::from_query_or_url(&all))
        .unwrap();

    let mut group = c.benchmark_group("verify_and_decode");
    group.bench_function("real_v16_ss2_paysera_key_rsa1024", |b| {
        b.iter(|| paysera.verify(&RequestParams::from_query_or_url(black_box(&ss2_only))))
    });
    group.bench_function("real_v16_ss1_ss2_as_received_rsa1024", |b| {
        b.iter(|| paysera.verify(&RequestParams::from_query_or_url(black_box(&real.query))))
    });
    group.bench_function("all_signatures_rsa2048_ss3_decides", |b| {
        b.iter(|| lax.verify(&RequestParams::from_query_or_url(black_box(&all))))
    });
    group.bench_function("all_signatures_rsa2048_strict_ss3_ss2_ss1", |b| {
        b.iter(|| strict.verify(&RequestParams::from_query_or_url(black_box(&all))))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = verify_ss2, verify_ss3, ss1, gcm_decrypt, decode_parse, verify_and_decode
}
criterion_main!(benches);
