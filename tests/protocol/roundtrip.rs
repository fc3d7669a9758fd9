//! Property tests of the protocol core: fields signed by the gateway-side signer
//! come back from the verifier exactly, in every callback form, and any change to
//! what the signature or the GCM tag covers is rejected. Plus: the verifier never
//! panics, whatever arrives.
//!
//! One fixed key pair (the shared test vectors' RSA-2048, project 123) is loaded
//! once. Signing is the slow part in a debug build (two RSA-2048 signatures per
//! current-format query), so each property signs one query per case and runs the
//! round trip and all tamper checks on it.

use std::sync::OnceLock;

use aes_gcm::aead::Aead;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::Engine;
use md5::{Digest, Md5};
use payhook::domain::{FieldValue, PaymentKind, Proof, VerifiedCallback};
use payhook::paysera::{
    base64url, php, CallbackError, KeySet, Policy, Project, RequestParams, Verifier,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;
use secrecy::SecretString;

use crate::support;

use support::gateway::{gateway as signer, CallbackForm, PASSWORD, PROJECT};
use support::vectors::vectors_dir;

fn read(name: &str) -> String {
    let path = vectors_dir().join("current").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn keys() -> &'static KeySet {
    static KEYS: OnceLock<KeySet> = OnceLock::new();
    KEYS.get_or_init(|| KeySet::from_pem(&read("public.pem")).unwrap())
}

fn make_verifier(password: &str, policy: Policy) -> Verifier {
    Verifier::new(
        vec![Project::new(
            PROJECT,
            Some(SecretString::from(password.to_string())),
        )],
        keys().clone(),
        policy,
    )
    .unwrap()
}

/// The verifier for a policy, built once.
fn verifier(accept_ss1: bool, strict: bool) -> &'static Verifier {
    static VERIFIERS: OnceLock<Vec<Verifier>> = OnceLock::new();
    let all = VERIFIERS.get_or_init(|| {
        [(false, false), (false, true), (true, false), (true, true)]
            .into_iter()
            .map(|(accept_ss1, strict)| {
                make_verifier(
                    PASSWORD,
                    Policy {
                        accept_ss1,
                        strict,
                        accept_legacy: true,
                    },
                )
            })
            .collect()
    });
    &all[usize::from(accept_ss1) * 2 + usize::from(strict)]
}

const LAX: (bool, bool) = (false, false);
const STRICT: (bool, bool) = (false, true);
const ACCEPT_SS1: (bool, bool) = (true, false);

fn config(cases: u32) -> Config {
    Config {
        cases,
        // Keep the tree clean: a failure prints its minimal input instead.
        failure_persistence: None,
        max_shrink_iters: 256,
        ..Config::default()
    }
}

// ---------------------------------------------------------------- strategies

/// Field values: arbitrary Unicode, and strings rich in what query encoding and
/// `parse_str` treat specially.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        any::<String>(),
        r#"[ a-zA-Z0-9&=+%"'#?;/\\\[\]~.,:@!*()|_\-\x00\t\r\nžėŽ€😀🎉]{0,24}"#,
        prop::collection::vec(
            prop::sample::select(vec![
                "&", "=", "+", "%", "%3D", "%%", "%2", "\"", "'", " ", "😀", "ž", "&amp;", "a=b",
                "==", "+%2B", "|", "\0", "[]", "x[y]", ".",
            ]),
            0..8,
        )
        .prop_map(|parts| parts.concat()),
    ]
}

/// Names that typed checks, kind detection or signatures give a meaning to.
const RESERVED: &[&str] = &[
    "projectid",
    "type",
    "orderid",
    "amount",
    "currency",
    "status",
    "test",
    "payamount",
    "paycurrency",
    "refund_amount",
    "refund_currency",
    "to",
    "from",
    "sms",
    "id",
];

/// Field names PHP takes as they are: no space, `.`, `[` or NUL (those are mangled
/// or cut), everything else allowed, `%`, `+`, `&` and `=` included.
fn name() -> impl Strategy<Value = String> {
    r#"[a-zA-Z0-9_\-~!*()'"%+&=:;,/?@$|#\]žė😀]{1,12}"#.prop_filter("reserved name", |n| {
        !RESERVED.contains(&n.as_str()) && !n.starts_with("_ss")
    })
}

fn optional(s: impl Strategy<Value = String>) -> impl Strategy<Value = Option<String>> {
    prop::option::of(s)
}

/// `projectid=123` first, then the typed fields the gateway defines (valid
/// values, each maybe absent) and arbitrary extra fields, in a random order.
/// `fields` as a legacy callback carries them: the fields the decision reads
/// present (where required) and in the gateway's order, the others between them.
fn legacy_shaped(fields: Vec<(String, String)>) -> Vec<(String, String)> {
    const READ: [&str; 10] = [
        "projectid",
        "orderid",
        "amount",
        "currency",
        "test",
        "version",
        "status",
        "payamount",
        "paycurrency",
        "id",
    ];
    let get = |name: &str, default: Option<&str>| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .or(default.map(str::to_string))
            .map(|v| (name.to_string(), v))
    };
    let extras: Vec<(String, String)> = fields
        .iter()
        .filter(|(k, _)| !READ.contains(&k.as_str()))
        .cloned()
        .collect();
    let half = extras.len() / 2;
    let mut out: Vec<(String, String)> = [
        ("projectid", "1"),
        ("orderid", "1"),
        ("amount", "100"),
        ("currency", "EUR"),
    ]
    .iter()
    .filter_map(|(n, default)| get(n, Some(default)))
    .collect();
    out.extend(extras[..half].iter().cloned());
    out.extend(get("test", None));
    out.extend(get("version", Some("1.4")));
    out.extend(get("status", Some("1")));
    out.extend(extras[half..].iter().cloned());
    out.extend(get("payamount", None));
    out.extend(get("paycurrency", None));
    out
}

fn fields() -> impl Strategy<Value = Vec<(String, String)>> {
    let typed = (
        // An order id is written to the database as it is, so one holding a
        // NUL is malformed (tests/api/hostile_storage.rs).
        optional(value().prop_map(|v| v.replace('\0', ""))),
        optional(prop_oneof![Just(String::new()), "[0-9]{1,18}"]),
        optional(prop_oneof![Just(String::new()), "[A-Za-z]{3}"]),
        optional(prop_oneof![Just(String::new()), "[0-9]{1,9}"]),
        optional(prop::sample::select(vec!["", "0", "1"]).prop_map(str::to_string)),
        optional("[0-9]{1,18}"),
        optional("[A-Z]{3}"),
    );
    let extras = prop::collection::vec((name(), value()), 0..10);
    (typed, extras)
        .prop_map(|(typed, extras)| {
            let (orderid, amount, currency, status, test, payamount, paycurrency) = typed;
            let mut all: Vec<(String, String)> = [
                ("orderid", orderid),
                ("amount", amount),
                ("currency", currency),
                ("status", status),
                ("test", test),
                ("payamount", payamount),
                ("paycurrency", paycurrency),
            ]
            .into_iter()
            .filter_map(|(k, v)| Some((k.to_string(), v?)))
            .collect();
            for (k, v) in extras {
                if !all.iter().any(|(n, _)| *n == k) {
                    all.push((k, v));
                }
            }
            all
        })
        .prop_shuffle()
        .prop_map(|rest| {
            let mut fields = vec![("projectid".to_string(), PROJECT.to_string())];
            fields.extend(rest);
            fields
        })
}

// ---------------------------------------------------------------- helpers

fn as_pairs(fields: &[(String, String)]) -> Vec<(&str, &str)> {
    fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

fn verify(verifier: &Verifier, query: &str) -> Result<VerifiedCallback, CallbackError> {
    verifier.verify(&RequestParams::from_query_or_url(query))
}

/// The decoded fields, in order, all of them text.
fn decoded(callback: &VerifiedCallback) -> Vec<(String, String)> {
    callback
        .fields()
        .iter()
        .map(|(k, v)| match v {
            FieldValue::Text(t) => (k.to_string(), t.clone()),
            FieldValue::List(l) => panic!("{k} decoded as a list: {l:?}"),
        })
        .collect()
}

/// The outer query as decoded pairs, and back (PHP's `urlencode`, any bytes).
type RawPairs = Vec<(Vec<u8>, Vec<u8>)>;

fn split_query(query: &str) -> RawPairs {
    query
        .split('&')
        .map(|segment| {
            let (k, v) = segment.split_once('=').expect("k=v");
            (php::url_decode(k.as_bytes()), php::url_decode(v.as_bytes()))
        })
        .collect()
}

fn join_query(pairs: &RawPairs) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        php::url_encode_into(&mut out, k);
        out.push('=');
        php::url_encode_into(&mut out, v);
    }
    out
}

fn param<'a>(pairs: &'a RawPairs, name: &str) -> &'a [u8] {
    &pairs
        .iter()
        .find(|(k, _)| k == name.as_bytes())
        .unwrap_or_else(|| panic!("no {name}"))
        .1
}

fn replaced(pairs: &RawPairs, name: &str, value: Vec<u8>) -> String {
    let mut pairs = pairs.clone();
    pairs
        .iter_mut()
        .find(|(k, _)| k == name.as_bytes())
        .unwrap_or_else(|| panic!("no {name}"))
        .1 = value;
    join_query(&pairs)
}

/// `bytes` with the byte at `at` changed (xor a non-zero mask).
fn flipped(bytes: &[u8], at: &Index, mask: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let i = at.index(out.len());
    out[i] ^= mask;
    out
}

fn text(field: Option<&(String, String)>) -> Option<&str> {
    field.map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
}

/// The typed accessors agree with the fields that were signed.
fn check_typed(callback: &VerifiedCallback, fields: &[(String, String)]) {
    let find = |name: &str| fields.iter().find(|(k, _)| k == name);
    assert_eq!(callback.project_id(), "123");
    assert_eq!(callback.kind(), PaymentKind::Macro);
    assert_eq!(callback.orderid(), find("orderid").map(|(_, v)| v.as_str()));
    assert_eq!(
        callback.amount().map(|a| a.minor_units()),
        text(find("amount")).map(|v| v.parse::<i64>().unwrap())
    );
    assert_eq!(
        callback.currency().map(|c| c.as_str().to_string()),
        text(find("currency")).map(str::to_string)
    );
    assert_eq!(
        callback.status().map(|s| s.code()),
        text(find("status")).map(|v| v.parse::<u32>().unwrap())
    );
    assert_eq!(callback.is_test(), text(find("test")) == Some("1"));
    assert_eq!(
        callback.payamount().map(|a| a.minor_units()),
        text(find("payamount")).map(|v| v.parse::<i64>().unwrap())
    );
}

fn with_type(fields: &[(String, String)]) -> Vec<(String, String)> {
    let mut want = fields.to_vec();
    want.push(("type".into(), "macro".into()));
    want
}

fn is_mismatch(result: &Result<VerifiedCallback, CallbackError>, param: Proof) -> bool {
    matches!(result, Err(CallbackError::SignatureMismatch(p)) if *p == param)
}

/// Round trip of a current-format signed form, then tampering with `data`
/// (a changed byte of the decoded query, re-encoded, original signatures kept)
/// and with each signature (a changed byte of its decoded value).
fn check_signed_form(
    form: CallbackForm,
    fields: &[(String, String)],
    at: &Index,
    mask: u8,
) -> Result<(), TestCaseError> {
    let query = signer().callback_query(&as_pairs(fields), form);
    let (policy, proof, decisive) = match form {
        CallbackForm::Ss1 => (ACCEPT_SS1, Proof::Ss1, Proof::Ss1),
        CallbackForm::Ss2 => (LAX, Proof::Ss2, Proof::Ss2),
        _ => (LAX, Proof::Ss3, Proof::Ss3),
    };
    let v = verifier(policy.0, policy.1);

    // Round trip, as a GET query and as a POST body.
    let callback = verify(v, &query).map_err(|e| TestCaseError::fail(format!("{e}: {query}")))?;
    prop_assert_eq!(decoded(&callback), with_type(fields));
    prop_assert_eq!(callback.proof(), proof);
    check_typed(&callback, fields);
    let posted = v
        .verify(&RequestParams::parse(b"", query.as_bytes()))
        .map_err(|e| TestCaseError::fail(format!("POST: {e}")))?;
    prop_assert_eq!(posted.identity(), callback.identity());

    let pairs = split_query(&query);
    let data = param(&pairs, "data").to_vec();

    // (a) Any byte of the decoded query changed: the signature no longer covers it.
    let plain = base64url::decode(&data).unwrap();
    let forged = base64url::encode(&flipped(&plain, at, mask));
    let tampered = replaced(&pairs, "data", forged.into_bytes());
    prop_assert!(is_mismatch(&verify(v, &tampered), decisive), "{}", tampered);
    if form == CallbackForm::AllSignatures {
        prop_assert!(verify(verifier(STRICT.0, STRICT.1), &tampered).is_err());
    }

    // (b) Any byte of a signature changed.
    let signatures: &[Proof] = match form {
        CallbackForm::Ss1 => &[Proof::Ss1],
        CallbackForm::Ss2 => &[Proof::Ss2],
        CallbackForm::Ss3 => &[Proof::Ss3],
        _ => &[Proof::Ss1, Proof::Ss2, Proof::Ss3],
    };
    for &sig in signatures {
        let name = sig.to_string();
        let original = param(&pairs, &name);
        let forged = if sig == Proof::Ss1 {
            // Hex text, compared as text.
            flipped(original, at, mask)
        } else {
            base64url::encode(&flipped(&base64url::decode(original).unwrap(), at, mask))
                .into_bytes()
        };
        let tampered = replaced(&pairs, &name, forged);
        let lax = verify(v, &tampered);
        if sig != Proof::Ss1 {
            // The same signature written differently (standard alphabet, no
            // padding, a trailing newline) still verifies, as the same callback.
            let std = base64::engine::general_purpose::STANDARD_NO_PAD;
            let mut text = std.encode(base64url::decode(original).unwrap());
            text.push('\n');
            let rewritten = replaced(&pairs, &name, text.into_bytes());
            let again = verify(verifier(STRICT.0, STRICT.1), &rewritten);
            if form != CallbackForm::Ss1 {
                let again = again.map_err(|e| TestCaseError::fail(format!("{e}: {rewritten}")))?;
                prop_assert_eq!(again.identity(), callback.identity());
            }
        }
        if sig == decisive {
            prop_assert!(is_mismatch(&lax, sig), "{} {:?}", name, lax.map(|_| ()));
        } else {
            // ss3 decides (the library's rule); ss1 and ss2 count only under `strict`.
            prop_assert!(lax.is_ok(), "{} {:?}", name, lax.map(|_| ()));
        }
        if form == CallbackForm::AllSignatures {
            let strict = verify(verifier(STRICT.0, STRICT.1), &tampered);
            prop_assert!(
                is_mismatch(&strict, sig),
                "strict {} {:?}",
                name,
                strict.map(|_| ())
            );
        }
        // The decisive signature cut short, or emptied, never verifies.
        let mut short = pairs.clone();
        short
            .iter_mut()
            .find(|(k, _)| *k == name.as_bytes())
            .unwrap()
            .1
            .pop();
        let emptied = replaced(&pairs, &name, Vec::new());
        for forged in [join_query(&short), emptied] {
            if sig == decisive {
                prop_assert!(is_mismatch(&verify(v, &forged), sig), "{}", forged);
            }
            if form == CallbackForm::AllSignatures {
                let strict = verify(verifier(STRICT.0, STRICT.1), &forged);
                prop_assert!(is_mismatch(&strict, sig), "{}", forged);
            }
        }
    }

    match form {
        // Without accept_ss1, ss1 alone is never enough.
        CallbackForm::Ss1 => prop_assert_eq!(
            verify(verifier(LAX.0, LAX.1), &query).err(),
            Some(CallbackError::NoRsaSignature)
        ),
        // Under `strict` every signature present must verify, and they all do.
        CallbackForm::AllSignatures => {
            for (accept_ss1, strict) in [STRICT, (true, true)] {
                let callback = verify(verifier(accept_ss1, strict), &query)
                    .map_err(|e| TestCaseError::fail(format!("strict: {e}")))?;
                prop_assert_eq!(decoded(&callback), with_type(fields));
                prop_assert_eq!(callback.proof(), Proof::Ss3);
            }
        }
        _ => {}
    }
    Ok(())
}

// ---------------------------------------------------------------- round trips

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn ss1_round_trips_under_accept_ss1_and_resists_tampering(
        fields in fields(), at in any::<Index>(), mask in 1u8..=255,
    ) {
        check_signed_form(CallbackForm::Ss1, &fields, &at, mask)?;
    }

    #[test]
    fn ss2_round_trips_and_resists_tampering(
        fields in fields(), at in any::<Index>(), mask in 1u8..=255,
    ) {
        check_signed_form(CallbackForm::Ss2, &fields, &at, mask)?;
    }

    #[test]
    fn ss3_round_trips_and_resists_tampering(
        fields in fields(), at in any::<Index>(), mask in 1u8..=255,
    ) {
        check_signed_form(CallbackForm::Ss3, &fields, &at, mask)?;
    }

    #[test]
    fn all_signatures_round_trip_lax_and_strict_and_resist_tampering(
        fields in fields(), at in any::<Index>(), mask in 1u8..=255,
    ) {
        check_signed_form(CallbackForm::AllSignatures, &fields, &at, mask)?;
    }

    #[test]
    fn legacy_round_trips_and_resists_tampering(
        fields in fields(),
        pick in any::<Index>(),
        at in any::<Index>(),
        mask in 1u8..=255,
    ) {
        let fields = legacy_shaped(fields);
        let query = signer().callback_query(&as_pairs(&fields), CallbackForm::Legacy);
        let pairs = split_query(&query);
        prop_assert!(pairs.iter().all(|(k, _)| k.starts_with(b"wp_")));
        let ss1 = String::from_utf8(param(&pairs, "wp__ss1").to_vec()).unwrap();
        let ss2 = String::from_utf8(param(&pairs, "wp__ss2").to_vec()).unwrap();
        let mut want = fields.clone();
        let ss1_at = want.iter().position(|(k, _)| k == "status").unwrap();
        want.insert(ss1_at, ("_ss1".into(), ss1));
        want.push(("_ss2".into(), ss2.clone()));
        want.push(("type".into(), "macro".into()));
        for (accept_ss1, strict) in [LAX, STRICT, (true, true)] {
            let callback = verify(verifier(accept_ss1, strict), &query)
                .map_err(|e| TestCaseError::fail(format!("{e}: {query}")))?;
            prop_assert_eq!(decoded(&callback), want.clone());
            prop_assert_eq!(callback.proof(), Proof::LegacySs2);
            check_typed(&callback, &fields);
        }
        let v = verifier(LAX.0, LAX.1);
        let rejected = |q: &str| is_mismatch(&verify(v, q), Proof::LegacySs2);

        // (d) Any wp_ value changed (`_ss1` included: `_ss2` signs it), or
        // a wp_ parameter removed or added.
        let signed: Vec<usize> = (0..pairs.len()).filter(|&i| pairs[i].0 != b"wp__ss2").collect();
        let i = signed[pick.index(signed.len())];
        let mut changed = pairs.clone();
        if changed[i].1.is_empty() {
            changed[i].1.push(mask);
        } else {
            changed[i].1 = flipped(&changed[i].1, &at, mask);
        }
        let tampered = join_query(&changed);
        prop_assert!(rejected(&tampered), "{}", tampered);
        // Removing `_ss1` or a field the decision needs fails before the RSA check.
        let mut removed = pairs.clone();
        removed.remove(i);
        prop_assert!(verify(v, &join_query(&removed)).is_err());
        let mut added = pairs.clone();
        added.insert(i, (b"wp_added".to_vec(), vec![mask]));
        prop_assert!(rejected(&join_query(&added)));

        // (b) Any byte of `_ss2` changed (standard base64, as the gateway sends it).
        let std = base64::engine::general_purpose::STANDARD;
        let signature = std.decode(&ss2).unwrap();
        let forged = std.encode(flipped(&signature, &at, mask));
        prop_assert!(rejected(&replaced(&pairs, "wp__ss2", forged.into_bytes())));
    }

    #[test]
    fn encrypted_round_trips_and_any_ciphertext_change_is_rejected(
        fields in fields(), at in any::<Index>(), mask in 1u8..=255, cut in any::<Index>(),
    ) {
        let query = signer().callback_query(&as_pairs(&fields), CallbackForm::Encrypted);
        let v = verifier(LAX.0, LAX.1);
        let callback = verify(v, &query).map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(decoded(&callback), with_type(&fields));
        prop_assert_eq!(callback.proof(), Proof::Aes256Gcm);
        check_typed(&callback, &fields);

        // (c) Any byte of IV, ciphertext or tag changed; or the blob cut short.
        let pairs = split_query(&query);
        let raw = base64url::decode(param(&pairs, "data")).unwrap();
        let forged = base64url::encode(&flipped(&raw, &at, mask));
        prop_assert_eq!(
            verify(v, &replaced(&pairs, "data", forged.into_bytes())).err(),
            Some(CallbackError::DecryptionFailed)
        );
        let short = base64url::encode(&raw[..cut.index(raw.len())]);
        prop_assert_eq!(
            verify(v, &replaced(&pairs, "data", short.into_bytes())).err(),
            Some(CallbackError::DecryptionFailed)
        );
        // Another password: another key.
        let other = make_verifier("pass-1f2e3e", Policy::default());
        prop_assert_eq!(verify(&other, &query).err(), Some(CallbackError::DecryptionFailed));
    }
}

// ---------------------------------------------------------------- never panics

fn md5_hex(parts: &[&[u8]]) -> String {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    hex::encode(h.finalize())
}

/// Bytes shaped like a decoded query: pieces of real fields, brackets, percent
/// signs, separators and arbitrary bytes.
fn query_like() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            prop::sample::select(vec![
                "projectid=123",
                "&",
                "=",
                "[",
                "]",
                "[]",
                "%",
                "%5B",
                "%00",
                "+",
                ".",
                " ",
                "type=micro",
                "to=1&from=2&sms=x",
                "amount=",
                "amount=1",
                "currency=EUR",
                "status=1",
                "test=1",
                "test=2",
                "orderid[]=1",
                "projectid[x]=1",
                "a[b][c]=d",
            ])
            .prop_map(|s| s.as_bytes().to_vec()),
            prop::collection::vec(any::<u8>(), 0..12),
            "[a-z_\\[\\]=&%.+ ]{0,12}".prop_map(String::into_bytes),
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

/// Outer parameters around the ones the verifier looks at.
fn outer_query() -> impl Strategy<Value = String> {
    let names = prop::sample::select(vec![
        "data",
        "ss1",
        "ss2",
        "ss3",
        "data[]",
        "ss2[]",
        "ss3[x]",
        "wp_projectid",
        "wp__ss2",
        "wp__ss1",
        "wp__ss1v2",
        "wp_orderid",
        "wp_test",
        "wp_",
        "wp_to",
        "wp_from",
        "wp_sms",
        "x",
    ]);
    let values = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300).prop_map(|b| base64url::encode(&b)),
        prop::collection::vec(any::<u8>(), 128..=128).prop_map(|b| base64url::encode(&b)),
        prop::collection::vec(any::<u8>(), 256..=256).prop_map(|b| base64url::encode(&b)),
        query_like().prop_map(|b| base64url::encode(&b)),
        "[ -~]{0,40}",
        any::<String>(),
    ];
    prop::collection::vec((names, values), 0..8).prop_map(|pairs| {
        let pairs: RawPairs = pairs
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.into_bytes()))
            .collect();
        join_query(&pairs)
    })
}

fn all_policies() -> impl Iterator<Item = &'static Verifier> {
    [(false, false), (false, true), (true, false), (true, true)]
        .into_iter()
        .map(|(a, s)| verifier(a, s))
}

/// Ok or Err, never a panic; an accepted callback is always for project 123.
fn check_total(params: &RequestParams) -> Result<(), TestCaseError> {
    for v in all_policies() {
        if let Ok(callback) = v.verify(params) {
            prop_assert_eq!(callback.project_id(), "123");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn verify_never_panics_on_arbitrary_bytes(
        query in prop::collection::vec(any::<u8>(), 0..400),
        body in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        check_total(&RequestParams::parse(&query, &body))?;
        check_total(&RequestParams::parse(&body, &query))?;
        check_total(&RequestParams::from_query_or_url(&String::from_utf8_lossy(&query)))?;
    }

    #[test]
    fn verify_never_panics_on_arbitrary_strings(input in any::<String>()) {
        check_total(&RequestParams::from_query_or_url(&input))?;
    }

    #[test]
    fn verify_never_panics_on_random_data_and_signatures(query in outer_query()) {
        check_total(&RequestParams::from_query_or_url(&query))?;
        check_total(&RequestParams::parse(b"", query.as_bytes()))?;
    }

    /// Past the signature check: `data` carrying arbitrary decoded bytes under a
    /// valid `ss1`, encrypted under the project key, and legacy `wp_` values under
    /// a valid `_ss1`, so decoding, `parse_str`, UTF-8 and typed fields all see them.
    #[test]
    fn verify_never_panics_on_authenticated_garbage(
        plain in query_like(),
        legacy in prop::collection::vec(
            (prop::sample::select(vec![
                "wp_projectid", "wp_orderid", "wp_id", "wp_test", "wp_amount", "wp_status",
                "wp_currency", "wp_type", "wp_to", "wp_from", "wp_sms", "wp_x", "wp_x[]",
                "wp_a[b]", "wp__ss1v2",
            ]), prop::collection::vec(any::<u8>(), 0..16)),
            0..10,
        ),
        iv in any::<[u8; 12]>(),
    ) {
        let v = verifier(ACCEPT_SS1.0, ACCEPT_SS1.1);

        let data = base64url::encode(&plain);
        let ss1 = md5_hex(&[data.as_bytes(), PASSWORD.as_bytes()]);
        let signed: RawPairs = vec![
            (b"data".to_vec(), data.into_bytes()),
            (b"ss1".to_vec(), ss1.into_bytes()),
        ];
        check_total(&RequestParams::parse(join_query(&signed).as_bytes(), b""))?;

        let mut key = [0u8; 32];
        key[..PASSWORD.len()].copy_from_slice(PASSWORD.as_bytes());
        let sealed = Aes256Gcm::new(&key.into())
            .encrypt(&Nonce::from(iv), plain.as_slice())
            .unwrap();
        let data = base64url::encode(&[iv.as_slice(), &sealed].concat());
        let query = join_query(&vec![(b"data".to_vec(), data.into_bytes())]);
        let params = RequestParams::parse(query.as_bytes(), b"");
        let decrypted = v.verify(&params);
        // The tag is right, so anything but a decryption failure may happen.
        prop_assert_ne!(decrypted.as_ref().err(), Some(&CallbackError::DecryptionFailed));
        check_total(&params)?;

        // Legacy: `_ss1` over orderid (or id) and intval(test), as the verifier reads them.
        let mut pairs: RawPairs = legacy
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect();
        let last = |name: &[u8]| {
            pairs.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        };
        let order = last(b"wp_orderid").or_else(|| last(b"wp_id")).unwrap_or_default();
        let test = if last(b"wp_test").as_deref() == Some(b"1") { "1" } else { "0" };
        let p = md5_hex(&[PASSWORD.as_bytes()]);
        let ss1 = md5_hex(&[p.as_bytes(), b"|", &order, b"|", test.as_bytes(), b"|1"]);
        pairs.push((b"wp__ss1".to_vec(), ss1.into_bytes()));
        check_total(&RequestParams::parse(join_query(&pairs).as_bytes(), b""))?;
    }
}

/// A replay of a legacy callback with `_ss2` written differently (padding
/// dropped, url-safe alphabet, a trailing newline) or with an unchecked
/// `_ss1v2` added verifies; it must keep the identity, or the store's
/// idempotency guard takes it for a new callback.
#[test]
fn legacy_identity_ignores_how_ss2_is_written() {
    let path = vectors_dir().join("real/legacy-1.4-macro-paid-test.json");
    let case: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let query = case["raw_query"].as_str().unwrap();
    let password = case["secrets"]["project_password"].as_str().unwrap();
    let v = Verifier::new(
        vec![Project::new(
            13156,
            Some(SecretString::from(password.to_string())),
        )],
        KeySet::paysera_production(),
        Policy {
            accept_legacy: true,
            ..Policy::default()
        },
    )
    .unwrap();
    let original = verify(&v, query).unwrap();
    let (head, ss2) = query.split_once("wp__ss2=").unwrap();
    for replay in [
        query.trim_end_matches("%3D").to_string(),
        format!("{head}wp__ss2={}", ss2.replace("%2F", "_")),
        format!("{query}%0A"),
    ] {
        let again = verify(&v, &replay).unwrap();
        assert_eq!(again.identity(), original.identity(), "{replay}");
    }
    // An added `_ss1v2` is checked like `_ss1`, not ignored.
    assert!(verify(&v, &format!("{query}&wp__ss1v2=0")).is_err());
}
