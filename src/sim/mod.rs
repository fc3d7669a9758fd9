//! The gateway's side of the protocol, for demo mode's simulator, tests,
//! benchmarks, examples and fuzz targets: it signs and encrypts callbacks, and
//! signs Checkout webhooks, the way Paysera does, and signs a hash-signed
//! gateway's notifications by its recipe. Outside `paysera/` on purpose: it holds a private key and
//! randomness, which a receiver never needs. It stays in the binary because
//! demo mode signs with it.

mod checkout;
mod hashed;
mod signer;

pub use checkout::{snapshot_body, CheckoutSigner, OrderFigures, SignedWebhook};
pub use hashed::signed_form;
pub use signer::{CallbackForm, GatewaySigner, SignerKeyError};
