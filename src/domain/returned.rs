//! What a buyer's return through payhook proves: only a payment the gateway
//! signed. The gateway appends the same signed `data` to `accepturl` as it
//! sends to `callbackurl`; anything else on the return link (a bare visit,
//! garbage, another order's callback, a status that is not paid) proves
//! nothing, so it must not start the missed-callback clock.

use super::decision::Rules;
use super::{PaymentKind, Status, VerifiedCallback};

/// A verified paid callback's order, as a buyer's return carried it: the only
/// thing that may record the return. Made only from a [`VerifiedCallback`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidReturn {
    project_id: String,
    orderid: String,
}

impl PaidReturn {
    /// The order `callback` says was paid, if it is a payment payhook
    /// accepts: a macro callback with an `orderid` and status 1 (`Paid`), not
    /// a test payment while test payments are refused (`decide` ignores those).
    pub fn proven_by(callback: &VerifiedCallback, rules: Rules) -> Option<PaidReturn> {
        let orderid = callback.orderid()?;
        let paid = callback.kind() == PaymentKind::Macro
            && callback.status() == Some(Status::Paid)
            && (rules.allow_test_payments || !callback.is_test());
        paid.then(|| PaidReturn {
            project_id: callback.project_id().to_string(),
            orderid: orderid.to_string(),
        })
    }

    /// The configured project of the paid order.
    pub fn project_id(&self) -> &str {
        &self.project_id
    }

    pub fn orderid(&self) -> &str {
        &self.orderid
    }
}
