//! Property tests of the Checkout (Modern) verifier: what is signed with any
//! configured secret verifies and says which secret matched; a snapshot comes
//! back decoded exactly; any change to the body, the signature or a required
//! header rejects; and nothing, however hostile, panics or produces an
//! unbounded or multi-line error text.

use payhook::checkout::{
    decode_body, sign, CheckoutError, HeaderName, Headers, OrderStatus, PaymentStatus, Secret,
    WebhookVerifier,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;
use secrecy::SecretString;
use serde_json::{json, Value};

fn verifier(secrets: &[String]) -> WebhookVerifier {
    WebhookVerifier::new(
        secrets
            .iter()
            .enumerate()
            .map(|(i, s)| {
                Secret::new(format!("secret-{i}"), SecretString::from(s.clone())).unwrap()
            })
            .collect(),
    )
    .unwrap()
}

fn uuid() -> impl Strategy<Value = String> {
    "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
}

/// Valid headers (`docs/checkout-modern.md` §3.1) but the signature, in any
/// name case and any valid values.
#[derive(Debug, Clone)]
struct Valid {
    alg: String,
    created_at: i64,
    request_id: String,
    callback_id: String,
    upper_names: bool,
}

fn valid() -> impl Strategy<Value = Valid> {
    (
        prop_oneof!["HMAC-SHA256", "hmac-sha256", "Hmac-Sha256"],
        1..=i64::MAX,
        uuid(),
        uuid(),
        any::<bool>(),
    )
        .prop_map(
            |(alg, created_at, request_id, callback_id, upper_names)| Valid {
                alg: alg.to_string(),
                created_at,
                request_id,
                callback_id,
                upper_names,
            },
        )
}

fn headers(v: &Valid, signature: &str) -> Headers {
    let name = |n: HeaderName| {
        if v.upper_names {
            n.as_str().to_ascii_uppercase()
        } else {
            n.as_str().to_ascii_lowercase()
        }
    };
    Headers::new()
        .with(name(HeaderName::Signature), signature)
        .with(name(HeaderName::SignatureAlg), v.alg.as_str())
        .with(name(HeaderName::CreatedAt), v.created_at.to_string())
        .with(name(HeaderName::RequestId), v.request_id.as_str())
        .with(name(HeaderName::CallbackId), v.callback_id.as_str())
}

fn secrets() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(".{1,40}", 1..4)
}

/// A header value that fails its own format check.
fn bad_value(header: HeaderName) -> BoxedStrategy<String> {
    match header {
        HeaderName::Signature => prop_oneof![
            "[0-9a-f]{0,63}",
            "[0-9a-f]{65,70}",
            "[0-9a-f]{0,30}[A-FG-Z ]{1}[0-9a-f]{0,33}",
            Just(String::new()),
        ]
        .boxed(),
        HeaderName::SignatureAlg => ".{0,20}"
            .prop_filter("a valid algorithm", |s| {
                !s.eq_ignore_ascii_case("HMAC-SHA256")
            })
            .boxed(),
        HeaderName::CreatedAt => prop_oneof![
            Just("0".to_string()),
            (i64::MIN..=0).prop_map(|n| n.to_string()),
            "[0-9]{0,5}[^0-9 \t]{1,3}[0-9]{0,5}",
            "[1-9][0-9]{19,25}",
        ]
        .boxed(),
        HeaderName::RequestId | HeaderName::CallbackId => ".{0,40}"
            .prop_filter("a valid UUID", |s| {
                let b = s.as_bytes();
                !(b.len() == 36
                    && b.iter().enumerate().all(|(i, c)| match i {
                        8 | 13 | 18 | 23 => *c == b'-',
                        _ => c.is_ascii_hexdigit(),
                    }))
            })
            .boxed(),
    }
}

fn header_name() -> impl Strategy<Value = HeaderName> {
    prop::sample::select(HeaderName::ALL.to_vec())
}

/// An error text fit for a log line.
fn assert_tame(e: &CheckoutError) {
    let text = e.to_string();
    assert!(text.chars().count() < 200, "{text}");
    assert!(!text.chars().any(char::is_control), "{text:?}");
}

// A generated order snapshot and its expected decoding.
#[derive(Debug, Clone)]
struct Snap {
    paysera_order_id: String,
    merchant_order_id: String,
    amount: i64,
    amount_paid: i64,
    currency: String,
    status: String,
    updated_at: Option<i64>,
    payments: Vec<(String, i64)>,
    amounts_as_strings: bool,
    pretty: bool,
}

fn snap() -> impl Strategy<Value = Snap> {
    (
        uuid(),
        // Never blank: a blank order id is malformed (tested on its own).
        "[A-Za-z0-9_/?:().,'+-][A-Za-z0-9 _/?:().,'+-]{0,59}",
        1..i64::MAX,
        0..i64::MAX,
        "[A-Za-z]{3}",
        prop_oneof![
            "paid",
            "pending_payment",
            "canceled",
            "closed",
            "PAID",
            "other_x"
        ],
        prop::option::of(any::<i64>()),
        prop::collection::vec(
            (
                prop_oneof!["settled", "chargeback", "refunded", "cancelled", "new"],
                any::<i64>(),
            ),
            0..4,
        ),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(p, m, amount, amount_paid, currency, status, updated_at, payments, s, pretty)| Snap {
                paysera_order_id: p,
                merchant_order_id: m,
                amount,
                amount_paid,
                currency,
                status: status.to_string(),
                updated_at,
                payments: payments
                    .into_iter()
                    .map(|(s, a)| (s.to_string(), a))
                    .collect(),
                amounts_as_strings: s,
                pretty,
            },
        )
}

impl Snap {
    fn bytes(&self) -> Vec<u8> {
        let amount = |n: i64| -> Value {
            if self.amounts_as_strings {
                json!(n.to_string())
            } else {
                json!(n)
            }
        };
        let payments: Vec<Value> = self
            .payments
            .iter()
            .map(|(status, a)| json!({"status": status, "payment_amount": amount(*a)}))
            .collect();
        let v = json!({
            "event": {"name": "amount_paid_updated", "type": "order"},
            "order": {
                "paysera_order_id": self.paysera_order_id,
                "merchant_order_id": self.merchant_order_id,
                "amount": amount(self.amount),
                "amount_paid": amount(self.amount_paid),
                "currency": self.currency,
                "status": self.status,
                "updated_at": self.updated_at,
                "unknown_future_field": {"x": [1, 2]},
                "payment_links": [{"id": "l", "payments": payments}],
            },
        });
        if self.pretty {
            serde_json::to_vec_pretty(&v).unwrap()
        } else {
            serde_json::to_vec(&v).unwrap()
        }
    }
}

proptest! {
    #![proptest_config(Config { cases: 256, ..Config::default() })]

    /// sign → verify, for any bytes and any set of secrets: accepted, and the
    /// match names the first secret equal to the one that signed.
    #[test]
    fn any_body_signed_with_any_configured_secret_authenticates(
        secrets in secrets(),
        which in any::<Index>(),
        body in prop::collection::vec(any::<u8>(), 0..2048),
        h in valid(),
    ) {
        let signer = which.index(secrets.len());
        let sig = sign(secrets[signer].as_bytes(), &body);
        let auth = verifier(&secrets).authenticate(&headers(&h, &sig), &body).unwrap();
        let first_equal = secrets.iter().position(|s| *s == secrets[signer]).unwrap();
        prop_assert_eq!(auth.secret.index, first_equal);
        prop_assert_eq!(auth.secret.label, format!("secret-{first_equal}"));
        prop_assert_eq!(&auth.headers.signature, &sig);
        prop_assert_eq!(auth.headers.created_at, h.created_at);
        prop_assert_eq!(&auth.headers.request_id, &h.request_id);
        // Whatever the bytes, verify answers (authentic, or malformed) without panicking.
        if let Err(e) = verifier(&secrets).verify(&headers(&h, &sig), &body) {
            prop_assert!(!e.is_verification(), "{}", e);
            assert_tame(&e);
        }
    }

    /// A snapshot signed and verified comes back with exactly its values.
    #[test]
    fn a_signed_snapshot_decodes_to_its_values(s in snap(), secret in ".{1,40}", h in valid()) {
        let body = s.bytes();
        let v = verifier(std::slice::from_ref(&secret))
            .verify(&headers(&h, &sign(secret.as_bytes(), &body)), &body)
            .unwrap();
        let o = v.body.payload.order_snapshot().unwrap();
        prop_assert_eq!(&o.paysera_order_id, &s.paysera_order_id);
        prop_assert_eq!(&o.merchant_order_id, &s.merchant_order_id);
        prop_assert_eq!(o.amount.minor_units(), s.amount);
        prop_assert_eq!(o.amount_paid.minor_units(), s.amount_paid);
        prop_assert_eq!(o.currency.as_str(), s.currency.as_str());
        prop_assert_eq!(o.status.clone(), OrderStatus::parse(&s.status));
        prop_assert_eq!(o.updated_at, s.updated_at);
        prop_assert_eq!(o.is_fully_paid(), s.amount_paid >= s.amount);
        prop_assert_eq!(o.amount_due().minor_units(), (s.amount - s.amount_paid).max(0));
        let got: Vec<(PaymentStatus, i64)> =
            o.payments().map(|p| (p.status.clone(), p.payment_amount)).collect();
        let want: Vec<(PaymentStatus, i64)> =
            s.payments.iter().map(|(st, a)| (PaymentStatus::parse(st), *a)).collect();
        prop_assert_eq!(got, want);
        prop_assert_eq!(o.has_chargeback(), s.payments.iter().any(|(st, _)| st == "chargeback"));
    }

    /// Any change to the signed bytes rejects: a flipped bit, a byte added or
    /// one removed.
    #[test]
    fn a_tampered_body_rejects(
        secrets in secrets(),
        body in prop::collection::vec(any::<u8>(), 1..1024),
        at in any::<Index>(),
        bit in 0u8..8,
        extra in any::<u8>(),
        h in valid(),
    ) {
        let sig = sign(secrets[0].as_bytes(), &body);
        let v = verifier(&secrets);
        let i = at.index(body.len());
        let mut flipped = body.clone();
        flipped[i] ^= 1 << bit;
        let mut longer = body.clone();
        longer.insert(i, extra);
        let mut shorter = body.clone();
        shorter.remove(i);
        for tampered in [flipped, longer, shorter] {
            let e = v.verify(&headers(&h, &sig), &tampered).unwrap_err();
            prop_assert_eq!(e, CheckoutError::SignatureMismatch(secrets.len()));
        }
    }

    /// Any other signature rejects: another lowercase hex digit anywhere is a
    /// mismatch, an uppercase one a format error, another secret a mismatch.
    #[test]
    fn a_tampered_signature_or_another_secret_rejects(
        secret in ".{1,40}",
        other in ".{1,40}",
        body in prop::collection::vec(any::<u8>(), 0..512),
        at in any::<Index>(),
        delta in 1u8..16,
        h in valid(),
    ) {
        prop_assume!(secret != other);
        let sig = sign(secret.as_bytes(), &body);
        let v = verifier(std::slice::from_ref(&secret));
        let i = at.index(64);
        let digit = u8::from_str_radix(&sig[i..=i], 16).unwrap();
        let mut changed = sig.clone().into_bytes();
        changed[i] = b"0123456789abcdef"[usize::from((digit + delta) % 16)];
        let changed = String::from_utf8(changed).unwrap();
        prop_assert_eq!(
            v.verify(&headers(&h, &changed), &body).unwrap_err(),
            CheckoutError::SignatureMismatch(1)
        );
        if let Some(j) = sig.find(|c: char| c.is_ascii_lowercase()) {
            let mut upper = sig.clone();
            upper.replace_range(j..=j, &sig[j..=j].to_ascii_uppercase());
            let e = v.verify(&headers(&h, &upper), &body).unwrap_err();
            prop_assert!(matches!(e, CheckoutError::SignatureFormat(_)), "{}", e);
        }
        let foreign = sign(other.as_bytes(), &body);
        prop_assert_eq!(
            v.verify(&headers(&h, &foreign), &body).unwrap_err(),
            CheckoutError::SignatureMismatch(1)
        );
    }

    /// Removing or spoiling any one of the five headers rejects, naming it,
    /// even though the signature itself is right.
    #[test]
    fn a_missing_or_malformed_header_rejects(
        secret in ".{1,40}",
        body in prop::collection::vec(any::<u8>(), 0..256),
        h in valid(),
        (header, value) in header_name().prop_flat_map(|n| (Just(n), bad_value(n))),
        remove in any::<bool>(),
    ) {
        let sig = sign(secret.as_bytes(), &body);
        let mut hs = headers(&h, &sig);
        if remove {
            hs.remove(header.as_str());
        } else {
            hs.set(header.as_str(), value.as_str());
        }
        let e = verifier(std::slice::from_ref(&secret)).verify(&hs, &body).unwrap_err();
        prop_assert!(e.is_verification(), "{}", e);
        prop_assert_eq!(e.header(), Some(header), "{}", e);
        if remove {
            prop_assert_eq!(e, CheckoutError::MissingHeader(header));
        }
    }

    /// Hostile headers and body: never a panic; every error is one bounded line.
    #[test]
    fn nothing_panics_and_errors_stay_tame(
        pairs in prop::collection::vec((prop_oneof![
            Just("X-Paysera-Signature".to_string()),
            Just("X-Paysera-Signature-Alg".to_string()),
            Just("X-Paysera-Created-At".to_string()),
            Just("X-Paysera-Request-Id".to_string()),
            Just("X-Paysera-Callback-Id".to_string()),
            ".{0,12}",
        ], prop::collection::vec(any::<u8>(), 0..200)), 0..12),
        body in prop::collection::vec(any::<u8>(), 0..1024),
    ) {
        let hs: Headers = pairs.into_iter().collect();
        if let Err(e) = verifier(&["k".to_string()]).verify(&hs, &body) {
            assert_tame(&e);
        }
        if let Err(e) = decode_body(&body) {
            assert_tame(&CheckoutError::Malformed(e));
        }
    }
}
