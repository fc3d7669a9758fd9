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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{FieldValue, Fields, OrderCheck, Proof};

    const RULES: Rules = Rules {
        allow_test_payments: false,
        order_check: OrderCheck::Registered,
    };

    fn callback(kind: PaymentKind, pairs: &[(&str, &str)]) -> VerifiedCallback {
        let fields = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), FieldValue::Text(v.to_string())))
            .collect();
        VerifiedCallback::new("123".into(), Proof::Ss2, kind, Fields::new(fields)).unwrap()
    }

    #[test]
    fn only_a_paid_macro_payment_of_an_order_proves_a_return() {
        let paid = callback(PaymentKind::Macro, &[("orderid", "A-1"), ("status", "1")]);
        let proven = PaidReturn::proven_by(&paid, RULES).unwrap();
        assert_eq!((proven.project_id(), proven.orderid()), ("123", "A-1"));
        for status in ["0", "2", "3", "4", "5", "7"] {
            let other = callback(
                PaymentKind::Macro,
                &[("orderid", "A-1"), ("status", status)],
            );
            assert_eq!(
                PaidReturn::proven_by(&other, RULES),
                None,
                "status {status}"
            );
        }
        let no_order = callback(PaymentKind::Macro, &[("status", "1")]);
        assert_eq!(PaidReturn::proven_by(&no_order, RULES), None);
        let sms = callback(PaymentKind::Micro, &[("orderid", "A-1"), ("status", "1")]);
        assert_eq!(PaidReturn::proven_by(&sms, RULES), None);
        let test = callback(
            PaymentKind::Macro,
            &[("orderid", "A-1"), ("status", "1"), ("test", "1")],
        );
        assert_eq!(PaidReturn::proven_by(&test, RULES), None);
        let allowed = Rules {
            allow_test_payments: true,
            ..RULES
        };
        assert!(PaidReturn::proven_by(&test, allowed).is_some());
    }
}
