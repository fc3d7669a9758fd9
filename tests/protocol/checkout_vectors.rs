//! Every Checkout (Modern) vector in `tests/vectors-checkout/` (with its
//! README, which names the spec by its path) against the signatures and
//! expected outcomes of §11 of the spec, `docs/checkout-modern.md`; every §
//! below cites that document. The signatures below are the spec's, computed
//! independently with python3's `hmac`, not by payhook.

use std::path::PathBuf;

use payhook::checkout::{
    decode_body, sign, BodyError, CheckoutError, HeaderName, Headers, OrderStatus, Payload,
    PaymentStatus, Problem, Secret, WebhookVerifier,
};
use secrecy::SecretString;
use sha2::{Digest, Sha256};

const S1: &str = "test-client-secret-7f3a9c";
const S2: &str = "rotated-secret-b21e04";

struct Vector {
    file: &'static str,
    sha256: &'static str,
    sig_s1: &'static str,
    sig_s2: Option<&'static str>,
}

/// §11.3.
const VECTORS: &[Vector] = &[
    Vector {
        file: "v1_paid.json",
        sha256: "a49d2cc759dc35792c0183d1c8763ba2420ee9d980f2883c9b980a6dbb82b4fd",
        sig_s1: "7a6eee20a21994a9e0f7a0cdf5e0ae94ab923c49e77ca179d5a72d8a6795fe6f",
        sig_s2: Some("1919edc4bd31691739686b9df2b1d1537f86bb8f9f45059665a0a088c18dbf38"),
    },
    Vector {
        file: "v2_partial.json",
        sha256: "e0657a74771721f05188597f13035a720e428c2844c60bb3721461143431dff9",
        sig_s1: "2d3f59a4073c23966c7dacef39debc7e727d9e39679fac195c23458cc4145955",
        sig_s2: Some("5fb56709e4d4c86c6bd1ee1a6b0c2d1551a229868ada9f19afc553a00c897d1a"),
    },
    Vector {
        file: "v3_unsupported.json",
        sha256: "16b96c9afefdb90cb584858ad38226ed623fcec11a960a7d63fd667e9f8f6819",
        sig_s1: "b00c2905800279b021f33a49d86b67b1bec49dfb8812471b2df7bdbcb9ec99ae",
        sig_s2: Some("bed57ddc91d11a17b8b00543ece8cd6e43c4d81892db34d36472c97b9486c7f1"),
    },
    Vector {
        file: "v4_paid_pretty.json",
        sha256: "114b51d2cc0c2a7ff175b2aea34f829def7cfe6804f6c7b75a010bd127812166",
        sig_s1: "06b01f774a8c3ed98d8e3138e3c33c296de2eccaa9f399985c1bc7dfdd8568e5",
        sig_s2: Some("e822f16f7dfcefce1bbe72b37757f4cf0897232738a49d449a59b3c6e5e40384"),
    },
    Vector {
        file: "v5_payer_set.json",
        sha256: "ff80ef1bc734b97a0d0df9fcf615823eb9891c70b8e569bda13edb7108413720",
        sig_s1: "b56370f0f3ea370740f7ac92434e27c194360a5ec2bbeafcf84a960b3b87ecdb",
        sig_s2: Some("53cd5d1458c8a4761fb8a555413bb9bfe4515c16cb5b9bbb121c2fed06ebb244"),
    },
    Vector {
        file: "v6_zero_paid.json",
        sha256: "5c33445120df16d6b76a1359e510cf57a68fd8c6a3975ce109f4ae6751e2013b",
        sig_s1: "f8519d4d48d084d477d563f7690ed23d8e3dcfba9be8ba4ae8ef945b5acdc44f",
        sig_s2: None,
    },
    Vector {
        file: "v7_no_event.json",
        sha256: "ee8d44d2fc4acb04791e6ab7277b0a42c9764021835b9b8df1c7078a0f940301",
        sig_s1: "16668a968973803dc391dc0f27495141cbe90ff0f685d2701f4e69214c3a3c86",
        sig_s2: None,
    },
    Vector {
        file: "v8_no_links.json",
        sha256: "9dd552a4d7981acd2a4fd8e90921f52053800572ef540d5b8d29f6092c09b6d1",
        sig_s1: "541ced0b656c76479f28ce498c796250e993000ca7b4ca5ec4223857a0d5bf08",
        sig_s2: None,
    },
];

fn dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors-checkout");
    assert!(
        dir.join("README.md").is_file(),
        "Checkout vectors not found at {}",
        dir.display()
    );
    dir
}

fn body(file: &str) -> Vec<u8> {
    std::fs::read(dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn vector(file: &str) -> &'static Vector {
    VECTORS.iter().find(|v| v.file == file).unwrap()
}

fn secret(label: &str, key: &str) -> Secret {
    Secret::new(label, SecretString::from(key.to_string())).unwrap()
}

/// S1 alone.
fn s1_only() -> WebhookVerifier {
    WebhookVerifier::new(vec![secret("current", S1)]).unwrap()
}

/// S1 current, S2 previous (a rotation in progress).
fn rotating() -> WebhookVerifier {
    WebhookVerifier::new(vec![secret("current", S1), secret("previous", S2)]).unwrap()
}

/// §11.1's headers.
fn headers(signature: &str) -> Headers {
    Headers::new()
        .with("Content-Type", "application/json")
        .with("X-Paysera-Signature-Alg", "HMAC-SHA256")
        .with("X-Paysera-Created-At", "1736433571")
        .with(
            "X-Paysera-Request-Id",
            "3f2504e0-4f89-41d3-9a0c-0305e82c3301",
        )
        .with(
            "X-Paysera-Callback-Id",
            "9b2d6c1e-8f7a-4c3b-a1e2-5d4c3b2a1f00",
        )
        .with("X-Paysera-Signature", signature)
}

fn v1() -> (Vec<u8>, &'static str) {
    (body("v1_paid.json"), vector("v1_paid.json").sig_s1)
}

#[test]
fn every_file_is_listed_and_copied_unchanged() {
    let mut files: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    files.sort();
    let listed: Vec<&str> = VECTORS.iter().map(|v| v.file).collect();
    assert_eq!(files, listed);
    for v in VECTORS {
        assert_eq!(
            hex::encode(Sha256::digest(body(v.file))),
            v.sha256,
            "{}: not the spec's bytes",
            v.file
        );
    }
}

#[test]
fn the_spec_signatures_are_what_payhook_computes() {
    for v in VECTORS {
        let b = body(v.file);
        assert_eq!(sign(S1.as_bytes(), &b), v.sig_s1, "{}", v.file);
        if let Some(s2) = v.sig_s2 {
            assert_eq!(sign(S2.as_bytes(), &b), s2, "{}", v.file);
        }
    }
    assert_eq!(
        sign(S1.as_bytes(), b""),
        "d8c7bc3f27317a78d2d8a6ca26b65b42792f10e41d585e6ed2a83292299b6b04"
    );
    assert_eq!(
        sign("slaptažodis-ąčę".as_bytes(), &v1().0),
        "858c9eddbc48e9c4c479c01c32c3a6380713da837eeba8744eb37305af9a4220"
    );
}

/// Each vector with a body that decodes verifies under S1 alone, and under the
/// rotation list with either secret, which the result names.
#[test]
fn every_positive_vector_verifies_with_s1_and_with_s2_as_previous() {
    for v in VECTORS.iter().filter(|v| v.file != "v7_no_event.json") {
        let b = body(v.file);
        let ok = s1_only()
            .verify(&headers(v.sig_s1), &b)
            .unwrap_or_else(|e| panic!("{} with S1: {e}", v.file));
        assert_eq!((ok.secret.index, ok.secret.label.as_str()), (0, "current"));

        let ok = rotating()
            .verify(&headers(v.sig_s1), &b)
            .unwrap_or_else(|e| panic!("{} with S1 in rotation: {e}", v.file));
        assert_eq!(
            (ok.secret.index, ok.secret.label.as_str()),
            (0, "current"),
            "{}",
            v.file
        );

        // V6 and V8 have no S2 signature in the spec: sign them as the others were.
        let s2_sig = v
            .sig_s2
            .map(str::to_string)
            .unwrap_or_else(|| sign(S2.as_bytes(), &b));
        let ok = rotating()
            .verify(&headers(&s2_sig), &b)
            .unwrap_or_else(|e| panic!("{} with S2 as previous: {e}", v.file));
        assert_eq!(
            (ok.secret.index, ok.secret.label.as_str()),
            (1, "previous"),
            "{}",
            v.file
        );

        // T10: S2's signature with S1 alone configured.
        assert_eq!(
            s1_only().verify(&headers(&s2_sig), &b).unwrap_err(),
            CheckoutError::SignatureMismatch(1),
            "{}",
            v.file
        );
    }
}

/// T1 / T5: fully paid.
#[test]
fn v1_and_its_pretty_copy_are_the_same_paid_snapshot() {
    let (b, sig) = v1();
    let v1 = s1_only().verify(&headers(sig), &b).unwrap();
    let v4 = s1_only()
        .verify(
            &headers(vector("v4_paid_pretty.json").sig_s1),
            &body("v4_paid_pretty.json"),
        )
        .unwrap();
    assert_eq!(v1.body, v4.body);
    assert_eq!(v1.body.event.label(), "order:amount_paid_updated");
    let o = v1.body.payload.order_snapshot().unwrap();
    assert_eq!(o.paysera_order_id, "019ed03a-84f0-7ba0-874a-f7473738875b");
    assert_eq!(o.merchant_order_id, "ORDER-12345");
    assert_eq!(
        (o.amount.minor_units(), o.amount_paid.minor_units()),
        (2500, 2500)
    );
    assert_eq!(o.currency.as_str(), "EUR");
    assert_eq!(o.status, OrderStatus::Paid);
    assert_eq!(
        (o.created_at, o.updated_at),
        (Some(1736433270), Some(1736433570))
    );
    assert!(o.is_fully_paid() && o.status_agrees() && o.overpaid_by().is_none());
    assert_eq!(o.amount_due().minor_units(), 0);
    assert_eq!(o.merchant_data[0].key, "internal_id");
    assert_eq!(o.merchant_data[0].value, "12345");
    let p: Vec<_> = o.payments().collect();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].status, PaymentStatus::Settled);
    assert_eq!(
        (p[0].payment_amount, p[0].payment_currency.as_str()),
        (2500, "EUR")
    );
    assert_eq!(
        o.payment_links[0].payer.email.as_deref(),
        Some("john.doe@example.com")
    );
    assert!(!o.has_chargeback());
    assert_eq!(v1.headers.created_at, 1736433571);
    assert_eq!(
        v1.headers.request_id,
        "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
    );
    assert_eq!(
        v1.headers.callback_id,
        "9b2d6c1e-8f7a-4c3b-a1e2-5d4c3b2a1f00"
    );
}

/// T2: partial payment, the rest still due.
#[test]
fn v2_is_a_partial_payment() {
    let b = body("v2_partial.json");
    let v = s1_only()
        .verify(&headers(vector("v2_partial.json").sig_s1), &b)
        .unwrap();
    let o = v.body.payload.order_snapshot().unwrap();
    assert_eq!(
        (o.amount.minor_units(), o.amount_paid.minor_units()),
        (2500, 1000)
    );
    assert!(o.is_partially_paid() && !o.is_fully_paid());
    assert_eq!(o.amount_due().minor_units(), 1500);
    assert_eq!(o.status, OrderStatus::PendingPayment);
    assert_eq!(o.updated_at, Some(1736433490));
}

/// T3: payer-set order within its limits.
#[test]
fn v5_is_a_paid_payer_set_order_within_limits() {
    let b = body("v5_payer_set.json");
    let v = s1_only()
        .verify(&headers(vector("v5_payer_set.json").sig_s1), &b)
        .unwrap();
    let o = v.body.payload.order_snapshot().unwrap();
    assert_eq!(o.merchant_order_id, "DONATION-77");
    assert!(o.payer_sets_amount && o.payment_links[0].payer_sets_amount);
    assert_eq!(o.minimum_amount.map(|a| a.minor_units()), Some(500));
    assert_eq!(o.maximum_amount.map(|a| a.minor_units()), Some(50000));
    assert!(o.within_limits() && o.is_fully_paid());
}

/// T4: the SDK has no handler for V3 (a thin `payment` event); payhook reads
/// its [3P] shape, so a later chargeback or refund in one can be seen (§6, §8.6).
#[test]
fn v3_thin_payment_event_verifies_and_is_read() {
    let b = body("v3_unsupported.json");
    let v = s1_only()
        .verify(&headers(vector("v3_unsupported.json").sig_s1), &b)
        .unwrap();
    assert_eq!(v.body.event.label(), "payment:status_updated");
    match &v.body.payload {
        Payload::PaymentStatus(p) => {
            assert_eq!(p.payment_id, "5d0c3f8e-7b7a-4b43-9a55-0c3c1d2b9e11");
            assert_eq!(p.status, PaymentStatus::Settled);
            assert_eq!((p.amount, p.currency.as_deref()), (Some(2500), Some("EUR")));
            assert_eq!(p.order.merchant_order_id.as_deref(), Some("ORDER-12345"));
        }
        other => panic!("{other:?}"),
    }
    assert!(v.body.payload.order_snapshot().is_none());
}

/// T6: the same JSON value re-serialised does not carry V1's signature.
#[test]
fn v4_fails_under_v1_signature() {
    let err = s1_only()
        .verify(&headers(v1().1), &body("v4_paid_pretty.json"))
        .unwrap_err();
    assert_eq!(err, CheckoutError::SignatureMismatch(1));
    assert!(err.is_verification());
    // Same under the rotation list: no secret makes it match.
    assert_eq!(
        rotating()
            .verify(&headers(v1().1), &body("v4_paid_pretty.json"))
            .unwrap_err(),
        CheckoutError::SignatureMismatch(2)
    );
}

/// T7: a trailing newline is part of the message.
#[test]
fn v1_with_a_trailing_newline_fails() {
    let (mut b, sig) = v1();
    b.push(b'\n');
    assert_eq!(
        sign(S1.as_bytes(), &b),
        "e234e2e48dbdafc6e1c09162c2adbbe02c1335b9405dfc9f27192017e7e870bf"
    );
    assert_eq!(
        s1_only().verify(&headers(sig), &b).unwrap_err(),
        CheckoutError::SignatureMismatch(1)
    );
}

/// A change to V1's headers.
type Mutation = Box<dyn FnOnce(&mut Headers)>;

fn v1_with(change: impl FnOnce(&mut Headers)) -> Result<(), CheckoutError> {
    let (b, sig) = v1();
    let mut h = headers(sig);
    change(&mut h);
    rotating().verify(&h, &b).map(|_| ())
}

/// §3.1 / T8–T17: every header mutation rejects, as a verification failure
/// naming the header.
#[test]
fn every_header_mutation_rejects() {
    let (_, sig) = v1();
    let upper = sig.to_ascii_uppercase();
    let cases: Vec<(&str, Mutation, CheckoutError)> = vec![
        // missing, each of the five
        (
            "no signature",
            Box::new(|h| h.remove("X-Paysera-Signature")),
            CheckoutError::MissingHeader(HeaderName::Signature),
        ),
        (
            "no algorithm",
            Box::new(|h| h.remove("x-paysera-signature-alg")),
            CheckoutError::MissingHeader(HeaderName::SignatureAlg),
        ),
        (
            "no created-at",
            Box::new(|h| h.remove("X-Paysera-Created-At")),
            CheckoutError::MissingHeader(HeaderName::CreatedAt),
        ),
        (
            "no request id",
            Box::new(|h| h.remove("X-Paysera-Request-Id")),
            CheckoutError::MissingHeader(HeaderName::RequestId),
        ),
        (
            "no callback id",
            Box::new(|h| h.remove("X-Paysera-Callback-Id")),
            CheckoutError::MissingHeader(HeaderName::CallbackId),
        ),
        // T8: uppercase signature
        (
            "uppercase signature",
            Box::new(move |h| h.set("X-Paysera-Signature", upper)),
            CheckoutError::SignatureFormat(sig.to_ascii_uppercase()[..40].to_string() + "…"),
        ),
        // T9: prefixed
        (
            "sha256= prefix",
            Box::new(move |h| h.set("X-Paysera-Signature", format!("sha256={sig}"))),
            CheckoutError::SignatureFormat(format!("sha256={}…", &sig[..33])),
        ),
        (
            "empty signature",
            Box::new(|h| h.set("X-Paysera-Signature", "")),
            CheckoutError::SignatureFormat(String::new()),
        ),
        (
            "short signature",
            Box::new(move |h| h.set("X-Paysera-Signature", &sig[..63])),
            CheckoutError::SignatureFormat(sig[..40].to_string() + "…"),
        ),
        // T12: wrong algorithm
        (
            "HMAC-SHA512",
            Box::new(|h| h.set("X-Paysera-Signature-Alg", "HMAC-SHA512")),
            CheckoutError::UnsupportedAlgorithm("HMAC-SHA512".into()),
        ),
        (
            "sha256",
            Box::new(|h| h.set("X-Paysera-Signature-Alg", "sha256")),
            CheckoutError::UnsupportedAlgorithm("sha256".into()),
        ),
        // T13: created-at of 0, or not a number
        (
            "created-at 0",
            Box::new(|h| h.set("X-Paysera-Created-At", "0")),
            CheckoutError::CreatedAt("0".into()),
        ),
        (
            "created-at abc",
            Box::new(|h| h.set("X-Paysera-Created-At", "abc")),
            CheckoutError::CreatedAt("abc".into()),
        ),
        (
            "created-at negative",
            Box::new(|h| h.set("X-Paysera-Created-At", "-1736433571")),
            CheckoutError::CreatedAt("-1736433571".into()),
        ),
        // T16: bad UUIDs
        (
            "callback id cb-1",
            Box::new(|h| h.set("X-Paysera-Callback-Id", "cb-1")),
            CheckoutError::NotUuid(HeaderName::CallbackId, "cb-1".into()),
        ),
        (
            "request id without dashes",
            Box::new(|h| h.set("X-Paysera-Request-Id", "3f2504e04f8941d39a0c0305e82c3301")),
            CheckoutError::NotUuid(
                HeaderName::RequestId,
                "3f2504e04f8941d39a0c0305e82c3301".into(),
            ),
        ),
        (
            "request id empty",
            Box::new(|h| h.set("X-Paysera-Request-Id", "")),
            CheckoutError::NotUuid(HeaderName::RequestId, String::new()),
        ),
        // T17: the first of two signatures counts
        (
            "two signatures, first wrong",
            Box::new(move |h| {
                h.set("X-Paysera-Signature", "0".repeat(64));
                h.push("X-Paysera-Signature", sig);
            }),
            CheckoutError::SignatureMismatch(2),
        ),
    ];
    for (name, change, want) in cases {
        let got = v1_with(change).unwrap_err();
        assert_eq!(got, want, "{name}");
        assert!(got.is_verification(), "{name}");
        assert_eq!(
            got.class(),
            payhook::paysera::RejectClass::Signature,
            "{name}"
        );
    }
}

/// T11, T14, T15: what §3 tolerates.
#[test]
fn tolerated_header_variants_accept() {
    let tolerated: Vec<(&str, Mutation)> = vec![
        (
            "lowercase algorithm",
            Box::new(|h| h.set("X-Paysera-Signature-Alg", "hmac-sha256")),
        ),
        (
            "created-at 1 (no freshness window)",
            Box::new(|h| h.set("X-Paysera-Created-At", "1")),
        ),
        (
            "uppercase request id",
            Box::new(|h| {
                h.set(
                    "X-Paysera-Request-Id",
                    "3F2504E0-4F89-41D3-9A0C-0305E82C3301",
                )
            }),
        ),
        (
            "header names in any case",
            Box::new(|h| {
                let pairs: Vec<(String, Vec<u8>)> = h
                    .iter()
                    .map(|(n, v)| (n.to_ascii_uppercase(), v.to_vec()))
                    .collect();
                *h = pairs.into_iter().collect();
            }),
        ),
        (
            "a second, wrong signature after the right one",
            Box::new(|h| h.push("X-Paysera-Signature", "0".repeat(64))),
        ),
    ];
    for (name, change) in tolerated {
        v1_with(change).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// T19: authentic, but no event object: malformed (400), not a rejection.
#[test]
fn v7_is_malformed() {
    let b = body("v7_no_event.json");
    let err = rotating()
        .verify(&headers(vector("v7_no_event.json").sig_s1), &b)
        .unwrap_err();
    assert_eq!(
        err,
        CheckoutError::Malformed(BodyError::Field {
            path: "event".into(),
            problem: Problem::Missing
        })
    );
    assert!(!err.is_verification());
    assert_eq!(err.class(), payhook::paysera::RejectClass::Malformed);
    // It did authenticate: the split API says so, and which secret matched.
    let auth = rotating()
        .authenticate(&headers(vector("v7_no_event.json").sig_s1), &b)
        .unwrap();
    assert_eq!(auth.secret.label, "current");
    assert!(decode_body(&b).is_err());
}

/// T21: an empty body with its correct signature is authentic but not JSON.
#[test]
fn an_empty_body_is_malformed() {
    let err = s1_only()
        .verify(
            &headers("d8c7bc3f27317a78d2d8a6ca26b65b42792f10e41d585e6ed2a83292299b6b04"),
            b"",
        )
        .unwrap_err();
    assert!(
        matches!(err, CheckoutError::Malformed(BodyError::NotJson(_))),
        "{err}"
    );
}

/// T18: the SDK refuses `amount_paid: 0`; §5.3 recommends accepting it as
/// "nothing paid yet".
#[test]
fn v6_zero_paid_is_accepted_as_nothing_paid() {
    let b = body("v6_zero_paid.json");
    let v = s1_only()
        .verify(&headers(vector("v6_zero_paid.json").sig_s1), &b)
        .unwrap();
    let o = v.body.payload.order_snapshot().unwrap();
    assert_eq!(o.amount_paid.minor_units(), 0);
    assert!(!o.is_fully_paid() && !o.is_partially_paid());
    assert_eq!(o.amount_due().minor_units(), 2500);
    assert_eq!(o.status, OrderStatus::PendingPayment);
    assert_eq!(o.payments().count(), 0);
    assert_eq!(o.updated_at, None);
}

/// T20: the SDK refuses an empty `payment_links`; §5.3 recommends applying the amounts.
#[test]
fn v8_without_links_is_applied() {
    let b = body("v8_no_links.json");
    let v = s1_only()
        .verify(&headers(vector("v8_no_links.json").sig_s1), &b)
        .unwrap();
    let o = v.body.payload.order_snapshot().unwrap();
    assert!(o.payment_links.is_empty());
    assert!(o.is_fully_paid());
    assert_eq!(o.status, OrderStatus::Paid);
}

/// An authentic event nobody knows is kept as "unhandled", never an error (§4.2).
#[test]
fn an_unknown_event_verifies_as_unhandled() {
    let b = br#"{"event":{"type":"paysera.fund-distributor.distribution","name":"created"},"order":{"merchant_order_id":"ORDER-12345"},"distribution":[1,2]}"#;
    let v = rotating()
        .verify(&headers(&sign(S2.as_bytes(), b)), b)
        .unwrap();
    assert_eq!(v.secret.label, "previous");
    assert_eq!(v.body.payload.kind(), "unhandled");
    assert_eq!(
        v.body.payload.order_ref().merchant_order_id.as_deref(),
        Some("ORDER-12345")
    );
}

/// `payhook verify-checkout` explains one webhook offline: V1 under S1 (and
/// under S2 as the previous secret) verifies and prints its order; V4's body
/// under V1's signature is rejected with exit code 1.
#[test]
fn verify_checkout_explains_a_webhook_offline() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let header_file = |signature: &str| {
        let text: String = headers(signature)
            .iter()
            .map(|(n, v)| format!("{n}: {}\r\n", String::from_utf8_lossy(v)))
            .collect();
        write(
            &format!("headers-{signature}"),
            format!("POST /paysera/checkout/webhook HTTP/1.1\r\n{text}").as_bytes(),
        )
    };
    let s1 = write("s1", format!("{S1}\n").as_bytes());
    let s2 = write("s2", S2.as_bytes());
    let run = |secret: &std::path::Path,
               previous: Option<&std::path::Path>,
               headers: &std::path::Path,
               body: &std::path::Path| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_payhook"));
        cmd.env_clear()
            .arg("verify-checkout")
            .arg("--secret-file")
            .arg(secret);
        if let Some(previous) = previous {
            cmd.arg("--previous-secret-file").arg(previous);
        }
        let out = cmd
            .arg("--headers")
            .arg(headers)
            .arg(body)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (v1_body, v1_sig) = v1();
    let v1_path = write("v1.json", &v1_body);

    let (code, out, err) = run(&s1, None, &header_file(v1_sig), &v1_path);
    assert_eq!(code, 0, "{err}");
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["secret"]["label"], "current");
    assert_eq!(
        shown["body"]["payload"]["order"]["merchant_order_id"],
        "ORDER-12345"
    );
    assert_eq!(shown["body"]["payload"]["order"]["amount_paid"], 2500);

    let s2_sig = vector("v1_paid.json").sig_s2.unwrap();
    let (code, out, err) = run(&s1, Some(&s2), &header_file(s2_sig), &v1_path);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"previous\""), "{out}");

    let v4_path = write("v4.json", &body("v4_paid_pretty.json"));
    let (code, out, err) = run(&s1, None, &header_file(v1_sig), &v4_path);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.starts_with("rejected: "), "{err}");
    assert!(!err.contains(S1), "{err}");
}
