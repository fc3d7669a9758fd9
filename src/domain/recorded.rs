//! What storage needs of anything verified, classic callback or Checkout
//! webhook: who it is from, which order, and its identity for the duplicate
//! guard.

use super::{Amount, CheckoutWebhook, Currency, VerifiedCallback};

pub trait Recorded {
    fn project_id(&self) -> &str;
    /// The same delivery again has the same identity.
    fn identity(&self) -> [u8; 32];
    fn orderid(&self) -> Option<&str>;
    /// What a fulfilment records as paid.
    fn amount(&self) -> Option<Amount>;
    fn currency(&self) -> Option<&Currency>;
    /// `classic`, `checkout` or `gateway`: the journal's and the metrics' `api`.
    fn api(&self) -> &'static str;
}

impl Recorded for VerifiedCallback {
    fn project_id(&self) -> &str {
        VerifiedCallback::project_id(self)
    }
    fn identity(&self) -> [u8; 32] {
        VerifiedCallback::identity(self)
    }
    fn orderid(&self) -> Option<&str> {
        VerifiedCallback::orderid(self)
    }
    fn amount(&self) -> Option<Amount> {
        VerifiedCallback::amount(self)
    }
    fn currency(&self) -> Option<&Currency> {
        VerifiedCallback::currency(self)
    }
    fn api(&self) -> &'static str {
        if self.is_gateway() {
            "gateway"
        } else {
            "classic"
        }
    }
}

impl Recorded for CheckoutWebhook {
    fn project_id(&self) -> &str {
        CheckoutWebhook::project_id(self)
    }
    fn identity(&self) -> [u8; 32] {
        CheckoutWebhook::identity(self)
    }
    fn orderid(&self) -> Option<&str> {
        CheckoutWebhook::orderid(self)
    }
    fn amount(&self) -> Option<Amount> {
        CheckoutWebhook::amount(self)
    }
    fn currency(&self) -> Option<&Currency> {
        CheckoutWebhook::currency(self)
    }
    fn api(&self) -> &'static str {
        "checkout"
    }
}
