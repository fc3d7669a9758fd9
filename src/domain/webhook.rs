//! A Checkout (Modern) webhook proven authentic, and what it means for its
//! order (§8 and §9). The same outcomes, flags and order states as classic
//! callbacks where the meaning is the same. Section numbers (§) are those of
//! `docs/checkout-modern.md`.

use sha2::{Digest, Sha256};

use super::decision::{
    refund, AmountMode, Decision, Flag, Notice, OrderChange, OrderCheck, OrderLock, OrderState,
    OrderView, Outcome, Progress, Rules, Seen,
};
use super::{Amount, Currency};

/// What an authentic webhook says about its order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookFact {
    /// The complete order as it stood (`order` / `amount_paid_updated`).
    Snapshot(Snapshot),
    /// A thin payment event saying a payment was charged back.
    Chargeback { payment_id: String },
    /// A thin refund event saying a refund completed.
    RefundCompleted { amount: Option<Amount> },
    /// Authentic, kept and counted, but nothing acts on it (yet): another
    /// event type, or a thin event whose status changes nothing.
    Unhandled { what: String },
}

/// The figures of an order snapshot a decision reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub amount: Amount,
    pub amount_paid: Amount,
    pub currency: Currency,
    /// The ordering key of snapshots (unix seconds), when sent.
    pub updated_at: Option<i64>,
    /// A payer-set order, the snapshot says: `amount` is what the payer
    /// chose, checked against the snapshot's limits. Against a registration
    /// only when the shop registered the order so (`AmountMode::PayerSets`):
    /// the gateway's flag never turns a fixed amount into a minimum.
    pub payer_sets_amount: bool,
    pub within_limits: bool,
    /// A payment in it has the status `chargeback`.
    pub chargeback: bool,
}

impl Snapshot {
    fn fully_paid(&self) -> bool {
        self.amount_paid >= self.amount
    }

    fn due(&self) -> i64 {
        (self.amount.minor_units() - self.amount_paid.minor_units()).max(0)
    }
}

/// A Checkout webhook proven authentic by the `checkout` module; nothing else
/// makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutWebhook {
    project_id: String,
    identity: [u8; 32],
    orderid: Option<String>,
    paysera_order_id: Option<String>,
    event: String,
    fact: WebhookFact,
}

impl CheckoutWebhook {
    /// `body` is the raw, authenticated body: the same bytes delivered again
    /// (a retry, a resend from the portal) are the same webhook (§9.2).
    pub(crate) fn new(
        project_id: String,
        body: &[u8],
        orderid: Option<String>,
        paysera_order_id: Option<String>,
        event: String,
        fact: WebhookFact,
    ) -> Self {
        let mut h = Sha256::new();
        h.update(b"checkout\0");
        h.update(project_id.as_bytes());
        h.update([0]);
        h.update(body);
        CheckoutWebhook {
            identity: h.finalize().into(),
            project_id,
            // Stored as text: a NUL could not be (PostgreSQL `TEXT`), and no
            // shop's order id holds one.
            orderid: orderid.filter(|id| !id.is_empty() && !id.contains('\0')),
            paysera_order_id: paysera_order_id.filter(|id| !id.contains('\0')),
            event,
            fact,
        }
    }

    /// The Checkout project: the API client id whose secret matched.
    pub fn project_id(&self) -> &str {
        &self.project_id
    }
    pub fn identity(&self) -> [u8; 32] {
        self.identity
    }
    /// The shop's order id (`merchant_order_id`).
    pub fn orderid(&self) -> Option<&str> {
        self.orderid.as_deref()
    }
    pub fn paysera_order_id(&self) -> Option<&str> {
        self.paysera_order_id.as_deref()
    }
    /// `type:name`, as sent.
    pub fn event(&self) -> &str {
        &self.event
    }
    pub fn fact(&self) -> &WebhookFact {
        &self.fact
    }
    fn snapshot(&self) -> Option<&Snapshot> {
        match &self.fact {
            WebhookFact::Snapshot(s) => Some(s),
            _ => None,
        }
    }
    /// What a fulfilment records as paid: the snapshot's amount and currency.
    pub fn amount(&self) -> Option<Amount> {
        self.snapshot().map(|s| s.amount)
    }
    pub fn currency(&self) -> Option<&Currency> {
        self.snapshot().map(|s| &s.currency)
    }
}

/// Which order must be locked to decide this webhook.
pub fn webhook_order_to_lock(webhook: &CheckoutWebhook, rules: Rules) -> Option<OrderLock<'_>> {
    let orderid = webhook.orderid()?;
    let paying = webhook
        .snapshot()
        .is_some_and(|s| s.amount_paid.minor_units() > 0);
    // A refund adds to the order's total, read under this lock: its row must
    // exist first (the refund creates it anyway).
    let refund = matches!(webhook.fact(), WebhookFact::RefundCompleted { .. });
    Some(OrderLock {
        orderid,
        create_if_missing: (rules.order_check == OrderCheck::None && paying) || refund,
    })
}

/// The whole decision for a verified webhook, and what the shop is told.
pub fn decide_webhook(webhook: &CheckoutWebhook, seen: Seen<'_>, rules: Rules) -> Decision {
    let mut decision = match seen {
        Seen::AnsweredBefore => {
            Decision::new(Outcome::Duplicate).because("the same webhook was stored")
        }
        Seen::FirstDelivery(_) if webhook.orderid().is_none() => Decision::new(Outcome::Info)
            .because(format!(
                "{} names no merchant_order_id; kept, nothing to apply",
                webhook.event()
            )),
        Seen::FirstDelivery(order) => decide_fresh(webhook, order, rules),
    };
    decision.notify = decision.outcome.notifies_shop().then(|| Notice {
        kind: decision.outcome,
        payload: notification(webhook, decision.outcome, seen).to_string(),
    });
    decision
}

fn notification(webhook: &CheckoutWebhook, outcome: Outcome, seen: Seen<'_>) -> serde_json::Value {
    let snapshot = webhook.snapshot();
    let test = match seen {
        Seen::FirstDelivery(Some(order)) => order.test,
        _ => false,
    };
    let refund = match webhook.fact() {
        WebhookFact::RefundCompleted { amount } => amount.map(Amount::minor_units),
        _ => None,
    };
    serde_json::json!({
        "event": outcome.as_str(),
        "api": "checkout",
        "project_id": webhook.project_id(),
        "orderid": webhook.orderid(),
        "paysera_order_id": webhook.paysera_order_id(),
        "test": test,
        "amount": snapshot.map(|s| s.amount.minor_units()),
        "currency": snapshot.map(|s| s.currency.as_str()),
        "amount_paid": snapshot.map(|s| s.amount_paid.minor_units()),
        "amount_due": snapshot.map(Snapshot::due),
        "refund_amount": refund,
    })
}

fn decide_fresh(webhook: &CheckoutWebhook, order: Option<&OrderView>, rules: Rules) -> Decision {
    match webhook.fact() {
        WebhookFact::Unhandled { what } => {
            Decision::new(Outcome::Info).because(format!("{what}; kept, nothing to apply"))
        }
        WebhookFact::Chargeback { payment_id } => dispute(order, payment_id),
        WebhookFact::RefundCompleted { amount } => refund(order, *amount),
        WebhookFact::Snapshot(snapshot) => {
            let progress = Progress {
                amount_paid: snapshot.amount_paid,
                updated_at: snapshot.updated_at,
                paysera_order_id: webhook.paysera_order_id().map(str::to_string),
            };
            let mut decision = decide_snapshot(snapshot, order, rules);
            // Recorded only where the order moved: a duplicate leaves the
            // order where the newest snapshot put it; an unknown order has
            // no row to record it on yet.
            if !matches!(
                decision.outcome,
                Outcome::Duplicate | Outcome::Stale | Outcome::UnknownOrder
            ) {
                decision.progress = Some(progress);
            }
            decision
        }
    }
}

fn dispute(order: Option<&OrderView>, payment_id: &str) -> Decision {
    if order.is_some_and(|o| o.state == OrderState::Disputed) {
        return Decision::new(Outcome::Duplicate).because("the order is already disputed");
    }
    Decision::new(Outcome::Disputed)
        .because(format!("payment {payment_id} was charged back"))
        .change(OrderChange::SetState(OrderState::Disputed))
        .flag(Flag::Disputed)
}

/// §8 in order: never back in time (§9), a chargeback, nothing new, test
/// orders, nothing paid, a reversal, the registration, then how much is paid.
fn decide_snapshot(s: &Snapshot, order: Option<&OrderView>, rules: Rules) -> Decision {
    if let Some((new, last)) = s.updated_at.zip(order.and_then(|o| o.snapshot_at)) {
        if new < last {
            return Decision::new(Outcome::Stale).because(format!(
                "older snapshot (updated_at {new} before {last}); the order is not moved back"
            ));
        }
    }
    if s.chargeback {
        let disputed = dispute(order, "in the snapshot");
        if disputed.outcome == Outcome::Disputed {
            return disputed.because("a payment in the snapshot was charged back");
        }
    }
    let recorded = order.and_then(|o| o.amount_paid);
    if recorded == Some(s.amount_paid) {
        return Decision::new(Outcome::Duplicate)
            .because(format!("amount_paid {} already recorded", s.amount_paid));
    }
    if order.is_some_and(|o| o.test) && !rules.allow_test_payments {
        return Decision::new(Outcome::TestIgnored)
            .because("a test order while test payments are not allowed")
            .flag(Flag::TestRefused);
    }
    if s.amount_paid.minor_units() == 0 {
        return Decision::new(Outcome::NotPaid).because("nothing paid yet");
    }
    if let Some(before) = recorded.filter(|before| s.amount_paid < *before) {
        return review(
            Outcome::AmountMismatch,
            Flag::AmountMismatch,
            format!(
                "amount_paid went down from {before} to {}: a reversal to review",
                s.amount_paid
            ),
        );
    }
    let expected = order.and_then(|o| o.expected.as_ref());
    if order.is_some_and(|o| o.refunded) && s.fully_paid() {
        return review(
            Outcome::PaidAfterRefund,
            Flag::PaidAfterRefund,
            "paid after a refund was recorded; not fulfilled".into(),
        );
    }
    if rules.order_check == OrderCheck::Registered && expected.is_none() {
        return Decision::new(Outcome::UnknownOrder)
            .because("order is not registered")
            .flag(Flag::UnknownOrder);
    }
    if order.is_some_and(|o| o.fulfilled) {
        return Decision::new(Outcome::PaidAgain)
            .because(format!(
                "amount_paid grew to {} after the order was paid; refund needed",
                s.amount_paid
            ))
            .flag(Flag::PaidAgain);
    }
    if let Some((amount, currency)) = expected {
        if s.currency != *currency {
            return review(
                Outcome::CurrencyMismatch,
                Flag::CurrencyMismatch,
                format!("currency {}, expected {currency}", s.currency),
            );
        }
        let mode = order.map_or(AmountMode::Fixed, |o| o.amount_mode);
        match mode {
            AmountMode::Fixed if s.amount != *amount => {
                let note = if s.payer_sets_amount {
                    " (registered as a fixed amount; the snapshot says the payer set it)"
                } else {
                    ""
                };
                return review(
                    Outcome::AmountMismatch,
                    Flag::AmountMismatch,
                    format!("amount {}, expected {amount}{note}", s.amount),
                );
            }
            AmountMode::PayerSets if s.amount < *amount => {
                return review(
                    Outcome::AmountMismatch,
                    Flag::AmountMismatch,
                    format!(
                        "payer-set amount {} below the registered minimum {amount}",
                        s.amount
                    ),
                );
            }
            _ => {}
        }
    }
    if s.payer_sets_amount && !s.within_limits {
        return review(
            Outcome::AmountMismatch,
            Flag::AmountMismatch,
            format!("payer-set amount {} outside its limits", s.amount),
        );
    }
    if !s.fully_paid() {
        return Decision::new(Outcome::PartiallyPaid).because(format!(
            "{} of {} paid; {} due",
            s.amount_paid,
            s.amount,
            s.due()
        ));
    }
    let paid = Decision::new(Outcome::Fulfilled).change(OrderChange::Fulfil {
        checked: expected.is_some(),
    });
    match s.amount_paid.minor_units() - s.amount.minor_units() {
        0 => paid,
        extra => paid
            .because(format!("overpaid by {extra}; refund the excess"))
            .flag(Flag::Overpaid),
    }
}

fn review(outcome: Outcome, flag: Flag, reason: String) -> Decision {
    Decision::new(outcome)
        .because(reason)
        .change(OrderChange::SetState(OrderState::NeedsReview))
        .flag(flag)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules = Rules {
        allow_test_payments: false,
        order_check: OrderCheck::Registered,
    };

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    fn amount(n: i64) -> Amount {
        Amount::from_minor(n).unwrap()
    }

    fn snapshot(paid: i64, updated_at: i64) -> CheckoutWebhook {
        let fact = WebhookFact::Snapshot(Snapshot {
            amount: amount(2500),
            amount_paid: amount(paid),
            currency: eur(),
            updated_at: Some(updated_at),
            payer_sets_amount: false,
            within_limits: true,
            chargeback: false,
        });
        let body = format!("{paid}/{updated_at}");
        CheckoutWebhook::new(
            "client".into(),
            body.as_bytes(),
            Some("O-1".into()),
            Some("p-1".into()),
            "order:amount_paid_updated".into(),
            fact,
        )
    }

    fn order(paid: Option<i64>, at: Option<i64>, fulfilled: bool) -> OrderView {
        OrderView {
            expected: Some((amount(2500), eur())),
            amount_mode: AmountMode::Fixed,
            state: if fulfilled {
                OrderState::Paid
            } else {
                OrderState::AwaitingPayment
            },
            fulfilled,
            refunded: false,
            refunded_amount: None,
            test: false,
            amount_paid: paid.map(amount),
            snapshot_at: at,
        }
    }

    fn outcome(webhook: &CheckoutWebhook, order: Option<&OrderView>) -> Decision {
        decide_webhook(webhook, Seen::FirstDelivery(order), RULES)
    }

    #[test]
    fn partial_then_full_then_more() {
        let open = order(None, None, false);
        let partial = outcome(&snapshot(1000, 10), Some(&open));
        assert_eq!(partial.outcome, Outcome::PartiallyPaid);
        assert_eq!(
            partial.reason.as_deref(),
            Some("1000 of 2500 paid; 1500 due")
        );
        assert_eq!(
            partial.progress.as_ref().map(|p| p.amount_paid),
            Some(amount(1000))
        );
        assert_eq!(
            partial.notify.as_ref().map(|n| n.kind),
            Some(Outcome::PartiallyPaid)
        );

        let after_partial = order(Some(1000), Some(10), false);
        let full = outcome(&snapshot(2500, 20), Some(&after_partial));
        assert_eq!(full.outcome, Outcome::Fulfilled);
        assert_eq!(full.change, OrderChange::Fulfil { checked: true });
        assert_eq!(full.flag, None);

        let paid = order(Some(2500), Some(20), true);
        let more = outcome(&snapshot(3000, 30), Some(&paid));
        assert_eq!(
            (more.outcome, more.flag),
            (Outcome::PaidAgain, Some(Flag::PaidAgain))
        );
        assert_eq!(more.change, OrderChange::None);
    }

    #[test]
    fn snapshots_never_move_an_order_back() {
        let paid = order(Some(2500), Some(20), true);
        let older = outcome(&snapshot(1000, 10), Some(&paid));
        assert_eq!(older.outcome, Outcome::Stale);
        assert_eq!(older.progress, None);
        assert_eq!(older.change, OrderChange::None);
        let same_amount = outcome(&snapshot(2500, 25), Some(&paid));
        assert_eq!(same_amount.outcome, Outcome::Duplicate);
        // Less paid in a newer snapshot: a reversal for a person to look at.
        let less = outcome(&snapshot(1000, 30), Some(&paid));
        assert_eq!(
            (less.outcome, less.flag),
            (Outcome::AmountMismatch, Some(Flag::AmountMismatch))
        );
        assert_eq!(less.change, OrderChange::SetState(OrderState::NeedsReview));
        // The same bytes again are a duplicate whatever they say.
        let again = decide_webhook(&snapshot(2500, 40), Seen::AnsweredBefore, RULES);
        assert_eq!((again.outcome, again.notify), (Outcome::Duplicate, None));
    }

    #[test]
    fn overpaid_unregistered_mismatched_and_test_orders() {
        let open = order(None, None, false);
        let over = outcome(&snapshot(2600, 10), Some(&open));
        assert_eq!(
            (over.outcome, over.flag),
            (Outcome::Fulfilled, Some(Flag::Overpaid))
        );
        assert_eq!(
            outcome(&snapshot(2500, 10), None).outcome,
            Outcome::UnknownOrder
        );
        assert_eq!(
            outcome(&snapshot(0, 10), Some(&open)).outcome,
            Outcome::NotPaid
        );

        let mut other_amount = order(None, None, false);
        other_amount.expected = Some((amount(2000), eur()));
        let mismatch = outcome(&snapshot(2500, 10), Some(&other_amount));
        assert_eq!(mismatch.outcome, Outcome::AmountMismatch);
        assert_eq!(
            mismatch.reason.as_deref(),
            Some("amount 2500, expected 2000")
        );

        let mut test = order(None, None, false);
        test.test = true;
        let refused = outcome(&snapshot(2500, 10), Some(&test));
        assert_eq!(
            (refused.outcome, refused.flag),
            (Outcome::TestIgnored, Some(Flag::TestRefused))
        );
        let allowed = decide_webhook(
            &snapshot(2500, 10),
            Seen::FirstDelivery(Some(&test)),
            Rules {
                allow_test_payments: true,
                ..RULES
            },
        );
        assert_eq!(allowed.outcome, Outcome::Fulfilled);
        assert!(allowed.notify.unwrap().payload.contains("\"test\":true"));
    }

    fn payer_set_snapshot(amount_due: i64, paid: i64) -> CheckoutWebhook {
        let fact = WebhookFact::Snapshot(Snapshot {
            amount: amount(amount_due),
            amount_paid: amount(paid),
            currency: eur(),
            updated_at: Some(10),
            payer_sets_amount: true,
            within_limits: true,
            chargeback: false,
        });
        CheckoutWebhook::new(
            "client".into(),
            format!("payer-set {amount_due}/{paid}").as_bytes(),
            Some("O-1".into()),
            Some("p-1".into()),
            "order:amount_paid_updated".into(),
            fact,
        )
    }

    /// The shop's registration, not the gateway's `payer_sets_amount`, says
    /// whether the payer chooses the amount: the flag never lowers a fixed
    /// registration (else a snapshot saying so would let 1 pay for 2 500); a
    /// registration as payer-set takes what was paid, from its minimum up.
    #[test]
    fn only_a_payer_set_registration_takes_the_payers_amount() {
        let fixed = order(None, None, false);
        let lowered = outcome(&payer_set_snapshot(1, 1), Some(&fixed));
        assert_eq!(
            (lowered.outcome, lowered.flag, lowered.change),
            (
                Outcome::AmountMismatch,
                Some(Flag::AmountMismatch),
                OrderChange::SetState(OrderState::NeedsReview)
            )
        );
        assert_eq!(
            lowered.reason.as_deref(),
            Some(
                "amount 1, expected 2500 (registered as a fixed amount; the snapshot says the payer set it)"
            )
        );
        // The registered amount in full is still a payment of a fixed order.
        let full = outcome(&payer_set_snapshot(2500, 2500), Some(&fixed));
        assert_eq!(full.outcome, Outcome::Fulfilled);

        let minimum = OrderView {
            expected: Some((amount(500), eur())),
            amount_mode: AmountMode::PayerSets,
            ..order(None, None, false)
        };
        let chosen = outcome(&payer_set_snapshot(1200, 1200), Some(&minimum));
        assert_eq!((chosen.outcome, chosen.flag), (Outcome::Fulfilled, None));
        assert_eq!(chosen.progress.map(|p| p.amount_paid), Some(amount(1200)));
        let partly = outcome(&payer_set_snapshot(1200, 600), Some(&minimum));
        assert_eq!(partly.outcome, Outcome::PartiallyPaid);
        let below = outcome(&payer_set_snapshot(400, 400), Some(&minimum));
        assert_eq!(
            (below.outcome, below.reason.as_deref()),
            (
                Outcome::AmountMismatch,
                Some("payer-set amount 400 below the registered minimum 500")
            )
        );
    }

    #[test]
    fn chargebacks_dispute_once_and_refunds_are_recorded() {
        let chargeback = CheckoutWebhook::new(
            "client".into(),
            b"cb",
            Some("O-1".into()),
            None,
            "payment:status_updated".into(),
            WebhookFact::Chargeback {
                payment_id: "pay-1".into(),
            },
        );
        let paid = order(Some(2500), Some(20), true);
        let disputed = outcome(&chargeback, Some(&paid));
        assert_eq!(
            (disputed.outcome, disputed.flag),
            (Outcome::Disputed, Some(Flag::Disputed))
        );
        assert_eq!(disputed.change, OrderChange::SetState(OrderState::Disputed));
        let mut already = paid.clone();
        already.state = OrderState::Disputed;
        assert_eq!(
            outcome(&chargeback, Some(&already)).outcome,
            Outcome::Duplicate
        );

        let refund = CheckoutWebhook::new(
            "client".into(),
            b"rf",
            Some("O-1".into()),
            None,
            "refund:status_updated".into(),
            WebhookFact::RefundCompleted {
                amount: Some(amount(500)),
            },
        );
        let refunded = outcome(&refund, Some(&paid));
        assert_eq!(refunded.outcome, Outcome::Refunded);
        assert_eq!(refunded.change, OrderChange::Refund { total: amount(500) });

        let orphan = CheckoutWebhook::new(
            "client".into(),
            b"x",
            None,
            None,
            "distribution:done".into(),
            WebhookFact::Unhandled {
                what: "event distribution:done is not handled".into(),
            },
        );
        assert_eq!(outcome(&orphan, None).outcome, Outcome::Info);
    }
}
