//! Paysera Checkout ("Checkout Modern", Payment API, checkout v3) webhooks,
//! pure like `paysera/`: no I/O, no HTTP or database types.
//!
//! `docs/checkout-modern.md` is the spec, and every § in `src/checkout/` is
//! one of its sections; `docs/checkout.md` says what is verified, in what
//! order, and what payhook chose where the sources disagree. A JSON `POST`
//! whose raw body is authenticated by an HMAC-SHA256 under the OAuth client
//! secret:
//!
//! 1. [`WebhookVerifier::authenticate`]: the five `X-Paysera-*` headers (§3.1), then
//!    the body's MAC under each configured secret (§3.2), before the body is
//!    parsed;
//! 2. [`decode_body`]: the event and what it carries (§4–§6), typed.
//!
//! [`WebhookVerifier::verify`] does both.

mod body;
mod error;
mod event;
mod facts;
mod headers;
mod verify;

pub use body::decode_body;
pub use error::{BodyError, CheckoutError, HeaderName, Problem};
pub use event::{
    Body, Event, MerchantDatum, OrderRef, OrderSnapshot, OrderStatus, Payer, Payload, Payment,
    PaymentLink, PaymentStatus, PaymentStatusUpdate, RefundStatus, RefundStatusUpdate,
};
pub use headers::{Headers, WebhookHeaders};
pub use verify::{
    sign, Authenticated, MatchedSecret, Secret, VerifiedWebhook, WebhookSecretError,
    WebhookVerifier,
};
