//! Fuzzes the Checkout (Modern) webhook body decoder, `checkout::decode_body`,
//! on arbitrary bytes, and the whole `checkout::WebhookVerifier::verify` with the same
//! bytes signed (the fuzzer cannot forge an HMAC, so without this the decoder
//! behind the signature check is out of reach through `verify`).
//!
//! Any panic is a bug; so is a broken invariant (see `check_*`).

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use payhook::checkout::{
    decode_body, sign, Body, BodyError, CheckoutError, Headers, Payload, Secret, WebhookVerifier,
};
use secrecy::SecretString;

const WRONG: &str = "rotated-secret-b21e04";
const RIGHT: &str = "test-client-secret-7f3a9c";

/// A rotation in progress: the secret that signs is the second one.
fn verifier() -> &'static WebhookVerifier {
    static V: OnceLock<WebhookVerifier> = OnceLock::new();
    V.get_or_init(|| {
        WebhookVerifier::new(vec![
            Secret::new("current", SecretString::from(WRONG.to_string())).unwrap(),
            Secret::new("previous", SecretString::from(RIGHT.to_string())).unwrap(),
        ])
        .unwrap()
    })
}

fn headers(signature: &str) -> Headers {
    Headers::new()
        .with("X-Paysera-Signature", signature)
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
}

/// An error text goes to log lines, the stored reason and the 400 answer:
/// one short line.
fn check_text(text: &str) {
    assert!(!text.is_empty());
    assert!(text.len() <= 600, "{} bytes: {text:?}", text.len());
    assert!(!text.chars().any(char::is_control), "{text:?}");
}

fn check_body(body: &Body) {
    let blank = |s: &str| {
        s.trim_matches([' ', '\t', '\n', '\r', '\0', '\x0B'])
            .is_empty()
    };
    assert!(!blank(&body.event.object) && !blank(&body.event.name));
    serde_json::to_string(body).expect("a decoded body serialises");
    let _ = format!("{body:?}");
    match &body.payload {
        Payload::OrderSnapshot { order, via_alias } => {
            assert_eq!(body.event.object, "order");
            assert_eq!(
                body.event.name,
                if *via_alias {
                    "order.amount_paid_updated"
                } else {
                    "amount_paid_updated"
                }
            );
            let (amount, paid) = (order.amount.minor_units(), order.amount_paid.minor_units());
            assert!(amount > 0 && paid >= 0);
            assert!(!blank(&order.paysera_order_id) && !blank(&order.merchant_order_id));
            assert_eq!(order.currency.as_str().len(), 3);
            assert_eq!(order.is_fully_paid(), paid >= amount);
            let due = order.amount_due().minor_units();
            assert!(due >= 0 && due <= amount);
            assert_eq!(due == 0, order.is_fully_paid());
            assert_eq!(order.overpaid_by().is_some(), paid > amount);
            let r = body.payload.order_ref();
            assert_eq!(
                r.merchant_order_id.as_deref(),
                Some(order.merchant_order_id.as_str())
            );
        }
        Payload::PaymentStatus(p) => {
            assert_eq!(
                (body.event.object.as_str(), body.event.name.as_str()),
                ("payment", "status_updated")
            );
            assert!(!blank(&p.payment_id));
        }
        Payload::RefundStatus(r) => {
            assert_eq!(
                (body.event.object.as_str(), body.event.name.as_str()),
                ("refund", "status_updated")
            );
            assert!(!blank(&r.refund_id));
        }
        Payload::Unhandled { .. } => {
            assert_ne!(
                (body.event.object.as_str(), body.event.name.as_str()),
                ("order", "amount_paid_updated"),
                "the handled event is a snapshot or an error, never unhandled"
            );
        }
    }
}

fn check_decode(input: &[u8]) -> Result<Body, BodyError> {
    let decoded = decode_body(input);
    // Deterministic.
    assert_eq!(decode_body(input), decoded);
    match &decoded {
        Ok(body) => check_body(body),
        Err(e) => check_text(&e.to_string()),
    }
    decoded
}

fn check_verify(input: &[u8], decoded: &Result<Body, BodyError>) {
    let sig = sign(RIGHT.as_bytes(), input);
    match verifier().verify(&headers(&sig), input) {
        Ok(v) => {
            assert_eq!((v.secret.index, v.secret.label.as_str()), (1, "previous"));
            assert_eq!(Ok(&v.body), decoded.as_ref());
        }
        Err(CheckoutError::Malformed(e)) => assert_eq!(Err(&e), decoded.as_ref()),
        Err(other) => panic!("signed body rejected: {other}"),
    }
    // The same signature on other bytes: never accepted.
    let mut other = input.to_vec();
    match other.first_mut() {
        Some(b) => *b ^= 0x01,
        None => other.push(b'{'),
    }
    let e = verifier().verify(&headers(&sig), &other).unwrap_err();
    assert_eq!(e, CheckoutError::SignatureMismatch(2));
    // The input as header values: rejected or accepted, never a panic, and
    // every rejection text one short line.
    let mut hostile = headers(&sig);
    hostile.set("X-Paysera-Request-Id", input);
    if let Err(e) = verifier().verify(&hostile, input) {
        check_text(&e.to_string());
    }
    let mut hostile = headers(&sig);
    hostile.set("X-Paysera-Signature", input);
    if let Err(e) = verifier().verify(&hostile, input) {
        check_text(&e.to_string());
    }
}

fuzz_target!(|input: &[u8]| {
    let decoded = check_decode(input);
    check_verify(input, &decoded);
});
