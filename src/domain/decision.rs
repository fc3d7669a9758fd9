//! What a verified callback means for its order: the one list of outcomes that
//! storage, HTTP answers, metrics and alerts all use.

use super::{Amount, Answer, Currency, OkBody, PaymentKind, Status, VerifiedCallback};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Rejected,
    /// The same delivery again (the same bytes, the same identity).
    Duplicate,
    /// Checkout: a snapshot older than the one the order already holds
    /// (a lower `updated_at`): kept, the order is not moved back.
    Stale,
    SmsReceived,
    TestIgnored,
    NotPaid,
    Pending,
    Info,
    Refunded,
    PaidAfterRefund,
    UnknownOrder,
    PaidAgain,
    AmountMismatch,
    CurrencyMismatch,
    Fulfilled,
    /// Checkout: part of the order is paid; it stays open.
    PartiallyPaid,
    /// Checkout: a payment of the order was charged back.
    Disputed,
    /// A gateway notification nothing could verify (a gateway without a
    /// recipe): kept for an operator's review, never a payment by itself.
    Captured,
}

impl Outcome {
    pub const ALL: [Outcome; 18] = [
        Outcome::Rejected,
        Outcome::Duplicate,
        Outcome::Stale,
        Outcome::SmsReceived,
        Outcome::TestIgnored,
        Outcome::NotPaid,
        Outcome::Pending,
        Outcome::Info,
        Outcome::Refunded,
        Outcome::PaidAfterRefund,
        Outcome::UnknownOrder,
        Outcome::PaidAgain,
        Outcome::AmountMismatch,
        Outcome::CurrencyMismatch,
        Outcome::Fulfilled,
        Outcome::PartiallyPaid,
        Outcome::Disputed,
        Outcome::Captured,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Rejected => "rejected",
            Outcome::Duplicate => "duplicate",
            Outcome::Stale => "stale",
            Outcome::SmsReceived => "sms_received",
            Outcome::TestIgnored => "test_ignored",
            Outcome::NotPaid => "not_paid",
            Outcome::Pending => "pending",
            Outcome::Info => "info",
            Outcome::Refunded => "refunded",
            Outcome::PaidAfterRefund => "paid_after_refund",
            Outcome::UnknownOrder => "unknown_order",
            Outcome::PaidAgain => "paid_again",
            Outcome::AmountMismatch => "amount_mismatch",
            Outcome::CurrencyMismatch => "currency_mismatch",
            Outcome::Fulfilled => "fulfilled",
            Outcome::PartiallyPaid => "partially_paid",
            Outcome::Disputed => "disputed",
            Outcome::Captured => "captured",
        }
    }

    pub fn parse(text: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == text)
    }

    /// How the gateway is answered for a callback of this kind.
    pub fn answer(self, kind: PaymentKind) -> Answer {
        match self {
            Outcome::Rejected => Answer::Malformed,
            Outcome::UnknownOrder => Answer::UnknownOrder,
            Outcome::SmsReceived | Outcome::Duplicate if kind == PaymentKind::Micro => {
                Answer::Ok(OkBody::SmsReply)
            }
            _ => Answer::Ok(OkBody::Ok),
        }
    }

    /// Whether the gateway is told `OK` (and so stops retrying).
    pub fn answers_ok(self) -> bool {
        self.answer(PaymentKind::Macro).is_ok()
    }

    /// Whether the shop hears about it (an event in the outbox).
    pub fn notifies_shop(self) -> bool {
        matches!(
            self,
            Outcome::Fulfilled
                | Outcome::PaidAgain
                | Outcome::PaidAfterRefund
                | Outcome::AmountMismatch
                | Outcome::CurrencyMismatch
                | Outcome::Refunded
                | Outcome::PartiallyPaid
                | Outcome::Disputed
        )
    }
}

/// How far a paid callback is checked against the shop's expectation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderCheck {
    /// A paid order must be registered, and amount and currency must match.
    Registered,
    /// No expectation: fulfilment is recorded as amount-unchecked.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    pub allow_test_payments: bool,
    pub order_check: OrderCheck,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderState {
    AwaitingPayment,
    Paid,
    NeedsReview,
    Refunded,
    /// A payment was charged back (Checkout): the money may be gone.
    Disputed,
}

impl OrderState {
    /// Every state; `parse` reads stored states back through it, so a state
    /// missing here could not be read back (and `tests/docs.rs` checks each
    /// one is documented).
    pub const ALL: [OrderState; 5] = [
        OrderState::AwaitingPayment,
        OrderState::Paid,
        OrderState::NeedsReview,
        OrderState::Refunded,
        OrderState::Disputed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::AwaitingPayment => "awaiting_payment",
            OrderState::Paid => "paid",
            OrderState::NeedsReview => "needs_review",
            OrderState::Refunded => "refunded",
            OrderState::Disputed => "disputed",
        }
    }

    /// The state an order is left in by a stored callback with `outcome`,
    /// from the state it was in: what the decisions' order changes do, for
    /// telling an order's story from its journal.
    pub fn after(self, outcome: Outcome) -> OrderState {
        match outcome {
            Outcome::Fulfilled => OrderState::Paid,
            Outcome::AmountMismatch | Outcome::CurrencyMismatch | Outcome::PaidAfterRefund => {
                OrderState::NeedsReview
            }
            Outcome::Refunded => OrderState::Refunded,
            Outcome::Disputed => OrderState::Disputed,
            _ => self,
        }
    }

    pub fn parse(text: &str) -> Option<OrderState> {
        OrderState::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// What the amount registered for an order means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AmountMode {
    /// The amount to pay (every classic order, and Checkout orders unless
    /// registered otherwise): a Checkout snapshot of another amount is an
    /// `amount_mismatch`, whatever its `payer_sets_amount` says.
    #[default]
    Fixed,
    /// The least a payer who chooses the amount may pay (a Checkout order
    /// created with `payer_sets_amount`): what they chose and paid is accepted.
    PayerSets,
}

impl AmountMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AmountMode::Fixed => "fixed",
            AmountMode::PayerSets => "payer_sets",
        }
    }

    pub fn parse(text: &str) -> Option<AmountMode> {
        [AmountMode::Fixed, AmountMode::PayerSets]
            .into_iter()
            .find(|m| m.as_str() == text)
    }
}

/// The order as stored, read under the transaction's lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderView {
    /// `None` when no expectation was registered (only with `OrderCheck::None`,
    /// or for a row a refund created before the order was registered).
    pub expected: Option<(Amount, Currency)>,
    /// What `expected`'s amount means. Read by Checkout decisions only: a
    /// classic callback pays the registered amount exactly, so the paid fast
    /// path (`payhook_pay`) need not compare it (a test holds `decide` to
    /// that).
    pub amount_mode: AmountMode,
    pub state: OrderState,
    pub fulfilled: bool,
    /// A refund was recorded, whatever came before or after it.
    pub refunded: bool,
    /// What the refunds recorded add up to (`None` before the first).
    pub refunded_amount: Option<Amount>,
    /// The shop registered it as a test order (what a Checkout webhook's
    /// test flag is taken from).
    pub test: bool,
    /// The last Checkout snapshot applied: what was paid by then, and its
    /// `updated_at` (unix seconds).
    pub amount_paid: Option<Amount>,
    pub snapshot_at: Option<i64>,
}

/// Something operators should hear about (an alert).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flag {
    /// The buyer paid an already paid order: refund needed.
    PaidAgain,
    /// A status 0 arrived for a paid order; the order stays paid.
    PaidOrderUnpaid,
    /// Money arrived for an order with a refund on record.
    PaidAfterRefund,
    AmountMismatch,
    CurrencyMismatch,
    UnknownOrder,
    TestRefused,
    /// More than the order's amount was paid (Checkout): refund the excess.
    Overpaid,
    /// A payment was charged back (Checkout).
    Disputed,
    /// A refund whose total with the refunds before it does not fit: stored,
    /// the total kept at the last one that fitted, for a person to check.
    RefundOverflow,
}

impl Flag {
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::PaidAgain => "paid_again",
            Flag::PaidOrderUnpaid => "paid_order_unpaid",
            Flag::PaidAfterRefund => "paid_after_refund",
            Flag::AmountMismatch => "amount_mismatch",
            Flag::CurrencyMismatch => "currency_mismatch",
            Flag::UnknownOrder => "unknown_order",
            Flag::TestRefused => "test_refused",
            Flag::Overpaid => "overpaid",
            Flag::Disputed => "disputed",
            Flag::RefundOverflow => "refund_overflow",
        }
    }

    /// Every flag; a new one must be listed here to be read back (`parse`).
    pub const ALL: [Flag; 10] = [
        Flag::PaidAgain,
        Flag::PaidOrderUnpaid,
        Flag::PaidAfterRefund,
        Flag::AmountMismatch,
        Flag::CurrencyMismatch,
        Flag::UnknownOrder,
        Flag::TestRefused,
        Flag::Overpaid,
        Flag::Disputed,
        Flag::RefundOverflow,
    ];

    pub fn parse(text: &str) -> Option<Flag> {
        Flag::ALL.into_iter().find(|f| f.as_str() == text)
    }

    /// The mark the order keeps for a later review, when there is one: an alert
    /// e-mail can be missed, the order's `flags` cannot.
    pub fn order_flag(self) -> Option<OrderFlag> {
        match self {
            Flag::PaidAgain => Some(OrderFlag::PaidAgain),
            Flag::PaidOrderUnpaid => Some(OrderFlag::PaidOrderUnpaid),
            Flag::PaidAfterRefund => Some(OrderFlag::PaidAfterRefund),
            Flag::AmountMismatch | Flag::CurrencyMismatch => Some(OrderFlag::UnmatchedPayment),
            Flag::Overpaid => Some(OrderFlag::Overpaid),
            Flag::Disputed => Some(OrderFlag::Disputed),
            Flag::RefundOverflow => Some(OrderFlag::RefundOverflow),
            Flag::UnknownOrder | Flag::TestRefused => None,
        }
    }
}

/// What an order carries for review; several at once, never removed by a
/// later callback (a matching payment after a mismatch keeps `unmatched_payment`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderFlag {
    PaidAgain,
    PaidOrderUnpaid,
    PaidAfterRefund,
    /// A payment whose amount or currency did not match arrived for the order.
    UnmatchedPayment,
    Overpaid,
    Disputed,
    RefundOverflow,
}

impl OrderFlag {
    pub const ALL: [OrderFlag; 7] = [
        OrderFlag::PaidAgain,
        OrderFlag::PaidOrderUnpaid,
        OrderFlag::PaidAfterRefund,
        OrderFlag::UnmatchedPayment,
        OrderFlag::Overpaid,
        OrderFlag::Disputed,
        OrderFlag::RefundOverflow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderFlag::PaidAgain => "paid_again",
            OrderFlag::PaidOrderUnpaid => "paid_order_unpaid",
            OrderFlag::PaidAfterRefund => "paid_after_refund",
            OrderFlag::UnmatchedPayment => "unmatched_payment",
            OrderFlag::Overpaid => "overpaid",
            OrderFlag::Disputed => "disputed",
            OrderFlag::RefundOverflow => "refund_overflow",
        }
    }

    pub fn parse(text: &str) -> Option<OrderFlag> {
        OrderFlag::ALL.into_iter().find(|f| f.as_str() == text)
    }
}

/// What to do with the order; storage carries it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderChange {
    None,
    /// Record a fulfilment and mark the order paid; `checked` is false when no
    /// expectation was compared.
    Fulfil {
        checked: bool,
    },
    SetState(OrderState),
    /// Record that the order's refunds now total `total` (decided here, from
    /// the total read under the order's lock) and mark it refunded; an order
    /// not registered yet is created for it, so the refund is not lost.
    Refund {
        total: Amount,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub outcome: Outcome,
    pub reason: Option<String>,
    pub change: OrderChange,
    pub flag: Option<Flag>,
    /// What the shop is told, written in the same transaction.
    pub notify: Option<Notice>,
    /// A Checkout snapshot the order now stands at (`docs/checkout-modern.md`
    /// §9), recorded with it.
    pub progress: Option<Progress>,
}

/// Where a Checkout order stands after a snapshot: the next one is compared
/// with this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub amount_paid: Amount,
    /// The snapshot's `updated_at` (unix seconds), when it had one.
    pub updated_at: Option<i64>,
    pub paysera_order_id: Option<String>,
}

/// An event for the shop: the decision and the gateway's figures, no personal
/// data (the outbox row carries the callback's id beside it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub kind: Outcome,
    pub payload: String,
}

impl Decision {
    pub(super) fn new(outcome: Outcome) -> Self {
        Decision {
            outcome,
            reason: None,
            change: OrderChange::None,
            flag: None,
            notify: None,
            progress: None,
        }
    }

    /// Whether the callback's identity stays claimed once stored: only what was
    /// answered `OK` is a duplicate next time; anything else the gateway
    /// retries, and the retry is decided afresh.
    pub fn keeps_claim(&self) -> bool {
        self.outcome.answers_ok()
    }

    pub(super) fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    pub(super) fn change(mut self, change: OrderChange) -> Self {
        self.change = change;
        self
    }

    pub(super) fn flag(mut self, flag: Flag) -> Self {
        self.flag = Some(flag);
        self
    }
}

/// What the store found when it claimed a callback's identity.
#[derive(Debug, Clone, Copy)]
pub enum Seen<'a> {
    /// The first time: the order as stored, locked for the transaction (when
    /// the callback names one).
    FirstDelivery(Option<&'a OrderView>),
    /// The same delivery was answered `OK` before.
    AnsweredBefore,
}

/// The order a callback needs locked before it is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderLock<'a> {
    pub orderid: &'a str,
    /// Without registered orders there is still one row per order to lock, so
    /// two paid callbacks for it cannot both fulfil.
    pub create_if_missing: bool,
}

/// Which order, if any, must be locked to decide this callback.
pub fn order_to_lock(callback: &VerifiedCallback, rules: Rules) -> Option<OrderLock<'_>> {
    match callback.orderid() {
        Some(orderid) if callback.kind() == PaymentKind::Macro => Some(OrderLock {
            orderid,
            // A refund adds to the order's total, read under this lock: its
            // row must exist first (`decide` creates it for the refund anyway).
            create_if_missing: match callback.status() {
                Some(Status::Paid) => rules.order_check == OrderCheck::None,
                Some(Status::Refunded) => !test_refused(callback, rules),
                _ => false,
            },
        }),
        _ => None,
    }
}

/// The whole decision for a verified callback: a duplicate, a macro callback
/// without `orderid`, or what `decide` makes of it; and what the shop is told.
pub fn decide_callback(callback: &VerifiedCallback, seen: Seen<'_>, rules: Rules) -> Decision {
    let mut decision = match seen {
        Seen::AnsweredBefore => Decision::new(Outcome::Duplicate),
        Seen::FirstDelivery(_)
            if callback.kind() == PaymentKind::Macro && callback.orderid().is_none() =>
        {
            Decision::new(Outcome::Rejected).because("orderid missing")
        }
        Seen::FirstDelivery(order) => decide(callback, order, rules),
    };
    decision.notify = decision.outcome.notifies_shop().then(|| Notice {
        kind: decision.outcome,
        payload: notification(callback, decision.outcome).to_string(),
    });
    decision
}

/// A gateway notification nothing could verify (no recipe): kept for an
/// operator's review, whatever the order's state, and never a payment.
pub fn decide_captured(seen: Seen<'_>) -> Decision {
    match seen {
        Seen::AnsweredBefore => Decision::new(Outcome::Duplicate),
        Seen::FirstDelivery(_) => Decision::new(Outcome::Captured)
            .because("not verified (the gateway has no recipe): kept for review"),
    }
}

fn notification(callback: &VerifiedCallback, outcome: Outcome) -> serde_json::Value {
    serde_json::json!({
        "event": outcome.as_str(),
        "project_id": callback.project_id(),
        "orderid": callback.orderid(),
        "status": callback.status().map(|s| s.code()),
        "test": callback.is_test(),
        "amount": callback.amount().map(Amount::minor_units),
        "currency": callback.currency().map(Currency::as_str),
        "payamount": callback.payamount().map(Amount::minor_units),
        "paycurrency": callback.paycurrency().map(Currency::as_str),
        "refund_amount": callback.refund_amount().map(Amount::minor_units),
        "requestid": callback.fields().text("requestid"),
        "payment": callback.fields().text("payment"),
    })
}

/// Decides a callback that is not a duplicate, in the documented order.
pub fn decide(callback: &VerifiedCallback, order: Option<&OrderView>, rules: Rules) -> Decision {
    if callback.kind() == PaymentKind::Micro {
        return Decision::new(Outcome::SmsReceived);
    }
    if test_refused(callback, rules) {
        return Decision::new(Outcome::TestIgnored)
            .because("test payment while test payments are not allowed")
            .flag(Flag::TestRefused);
    }
    let paid = order.is_some_and(|o| o.fulfilled || o.state == OrderState::Paid);
    match callback.status() {
        Some(Status::Paid) => decide_paid(callback, order, rules),
        Some(Status::NotExecuted) if paid => Decision::new(Outcome::NotPaid)
            .because("status 0 for an order already paid; the order stays paid")
            .flag(Flag::PaidOrderUnpaid),
        Some(Status::NotExecuted) => Decision::new(Outcome::NotPaid),
        Some(Status::Accepted) => Decision::new(Outcome::Pending),
        // Recorded even before the order is paid or registered: a paid callback
        // delayed behind its refund must not fulfil the order afterwards.
        Some(Status::Refunded) => refund(order, callback.refund_amount().or(callback.amount())),
        Some(status) => Decision::new(Outcome::Info).because(format!("status {status}")),
        None => Decision::new(Outcome::Info).because("no status"),
    }
}

fn test_refused(callback: &VerifiedCallback, rules: Rules) -> bool {
    callback.is_test() && !rules.allow_test_payments
}

/// A refund of `amount` (none stated: 0) on top of the refunds recorded: the
/// new total, or, when it does not fit in an amount, the callback is still
/// stored and answered `OK` (a redelivery would not fit either), the total
/// stays the last one that fitted and the order is flagged for review.
pub(super) fn refund(order: Option<&OrderView>, amount: Option<Amount>) -> Decision {
    let before = order
        .and_then(|o| o.refunded_amount)
        .unwrap_or(Amount::ZERO);
    let this = amount.unwrap_or(Amount::ZERO);
    match before.checked_add(this) {
        Some(total) => Decision::new(Outcome::Refunded).change(OrderChange::Refund { total }),
        None => Decision::new(Outcome::Refunded)
            .because(format!(
                "refund of {this} on top of {before} refunded: the total does not fit; \
                 recorded as {before}, to review"
            ))
            .change(OrderChange::Refund { total: before })
            .flag(Flag::RefundOverflow),
    }
}

fn decide_paid(callback: &VerifiedCallback, order: Option<&OrderView>, rules: Rules) -> Decision {
    // Before the registration check: a refund already made the order known, and
    // whoever reviews it needs this payment in front of them, not a 409 loop.
    if order.is_some_and(|o| o.refunded) {
        return Decision::new(Outcome::PaidAfterRefund)
            .because("paid after a refund was recorded; not fulfilled")
            .change(OrderChange::SetState(OrderState::NeedsReview))
            .flag(Flag::PaidAfterRefund);
    }
    let expected = order.and_then(|o| o.expected.as_ref());
    if rules.order_check == OrderCheck::Registered && expected.is_none() {
        return Decision::new(Outcome::UnknownOrder)
            .because("order is not registered")
            .flag(Flag::UnknownOrder);
    }
    if order.is_some_and(|o| o.fulfilled) {
        return Decision::new(Outcome::PaidAgain)
            .because("order already paid by another callback; refund needed")
            .flag(Flag::PaidAgain);
    }
    let Some((amount, currency)) = expected else {
        return Decision::new(Outcome::Fulfilled)
            .because("amount not checked")
            .change(OrderChange::Fulfil { checked: false });
    };
    if callback.amount() != Some(*amount) {
        let got = callback
            .amount()
            .map_or("none".to_string(), |a| a.to_string());
        return Decision::new(Outcome::AmountMismatch)
            .because(format!("amount {got}, expected {amount}"))
            .change(OrderChange::SetState(OrderState::NeedsReview))
            .flag(Flag::AmountMismatch);
    }
    if callback.currency() != Some(currency) {
        let got = callback.currency().map_or("none", |c| c.as_str());
        return Decision::new(Outcome::CurrencyMismatch)
            .because(format!("currency {got}, expected {currency}"))
            .change(OrderChange::SetState(OrderState::NeedsReview))
            .flag(Flag::CurrencyMismatch);
    }
    Decision::new(Outcome::Fulfilled).change(OrderChange::Fulfil { checked: true })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{FieldValue, Fields, Proof};

    fn callback(pairs: &[(&str, &str)]) -> VerifiedCallback {
        let fields = Fields::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), FieldValue::Text(v.to_string())))
                .collect(),
        );
        let kind = if fields.contains("sms") {
            PaymentKind::Micro
        } else {
            PaymentKind::Macro
        };
        VerifiedCallback::new("1".into(), Proof::Ss2, kind, fields).unwrap()
    }

    fn paid(extra: &[(&'static str, &'static str)]) -> VerifiedCallback {
        let mut pairs = vec![
            ("orderid", "A"),
            ("status", "1"),
            ("amount", "100"),
            ("currency", "EUR"),
        ];
        for (k, v) in extra {
            pairs.retain(|(pk, _)| pk != k);
            pairs.push((k, v));
        }
        callback(&pairs)
    }

    const STRICT: Rules = Rules {
        allow_test_payments: false,
        order_check: OrderCheck::Registered,
    };

    fn order(fulfilled: bool) -> OrderView {
        OrderView {
            expected: Some((
                Amount::parse("100").unwrap(),
                Currency::parse("EUR").unwrap(),
            )),
            state: if fulfilled {
                OrderState::Paid
            } else {
                OrderState::AwaitingPayment
            },
            amount_mode: AmountMode::Fixed,
            fulfilled,
            refunded: false,
            refunded_amount: None,
            test: false,
            amount_paid: None,
            snapshot_at: None,
        }
    }

    /// An order a refund was recorded on (the row a refund creates has no
    /// expectation).
    fn refunded(expected: bool, fulfilled: bool) -> OrderView {
        OrderView {
            amount_mode: AmountMode::Fixed,
            refunded: true,
            refunded_amount: None,
            test: false,
            amount_paid: None,
            snapshot_at: None,
            state: OrderState::Refunded,
            expected: if expected {
                order(false).expected
            } else {
                None
            },
            fulfilled,
        }
    }

    /// Classic callbacks have no payer-set amounts: their decision never
    /// reads `amount_mode`, which is why `payhook_pay` (the paid fast path,
    /// classic only) does not compare it.
    #[test]
    fn the_classic_decision_does_not_read_the_amount_mode() {
        let payer_sets = |o: OrderView| OrderView {
            amount_mode: AmountMode::PayerSets,
            ..o
        };
        for order_view in [order(false), order(true), refunded(true, false)] {
            for callback in [
                paid(&[]),
                paid(&[("amount", "99")]),
                paid(&[("amount", "101")]),
                paid(&[("currency", "USD")]),
                paid(&[("status", "0")]),
            ] {
                let other = payer_sets(order_view.clone());
                assert_eq!(
                    decide(&callback, Some(&order_view), STRICT),
                    decide(&callback, Some(&other), STRICT)
                );
            }
        }
    }

    /// `OrderState::after` tells the story the store wrote: each outcome's
    /// change leaves the state `after` says.
    #[test]
    fn state_after_agrees_with_every_decision() {
        let open = order(false);
        let done = order(true);
        let refunded_order = refunded(true, false);
        let cases: Vec<(VerifiedCallback, Option<&OrderView>)> = vec![
            (paid(&[]), Some(&open)),
            (paid(&[]), Some(&done)),
            (paid(&[]), Some(&refunded_order)),
            (paid(&[("amount", "1")]), Some(&open)),
            (paid(&[("currency", "USD")]), Some(&open)),
            (paid(&[("status", "0")]), Some(&done)),
            (paid(&[("status", "2")]), Some(&open)),
            (paid(&[("status", "5")]), Some(&done)),
            (paid(&[("test", "1")]), Some(&open)),
        ];
        for (callback, view) in cases {
            let before = view.map_or(OrderState::AwaitingPayment, |o| o.state);
            let d = decide(&callback, view, STRICT);
            let changed = match d.change {
                OrderChange::Fulfil { .. } => OrderState::Paid,
                OrderChange::SetState(s) => s,
                OrderChange::Refund { .. } => OrderState::Refunded,
                OrderChange::None => before,
            };
            assert_eq!(before.after(d.outcome), changed, "{:?}", d.outcome);
        }
    }

    #[test]
    fn outcomes_in_the_documented_order() {
        let open = order(false);
        let done = order(true);
        let refunded_unregistered = refunded(false, false);
        let cases: Vec<(VerifiedCallback, Option<&OrderView>, Outcome)> = vec![
            (
                callback(&[("to", "1"), ("from", "2"), ("sms", "x"), ("test", "1")]),
                None,
                Outcome::SmsReceived,
            ),
            (paid(&[("test", "1")]), Some(&open), Outcome::TestIgnored),
            (paid(&[("status", "0")]), Some(&open), Outcome::NotPaid),
            (paid(&[("status", "2")]), None, Outcome::Pending),
            (paid(&[("status", "3")]), None, Outcome::Info),
            (paid(&[("status", "4")]), None, Outcome::Info),
            (paid(&[("status", "9")]), None, Outcome::Info),
            (paid(&[("status", "5")]), None, Outcome::Refunded),
            (
                paid(&[]),
                Some(&refunded_unregistered),
                Outcome::PaidAfterRefund,
            ),
            (paid(&[]), None, Outcome::UnknownOrder),
            (paid(&[]), Some(&done), Outcome::PaidAgain),
            (
                paid(&[("amount", "99")]),
                Some(&open),
                Outcome::AmountMismatch,
            ),
            (
                paid(&[("currency", "USD")]),
                Some(&open),
                Outcome::CurrencyMismatch,
            ),
            (paid(&[]), Some(&open), Outcome::Fulfilled),
        ];
        for (cb, order, want) in cases {
            assert_eq!(
                decide(&cb, order, STRICT).outcome,
                want,
                "{:?}",
                cb.fields()
            );
        }
    }

    #[test]
    fn a_paid_order_never_goes_back_and_checks_can_be_relaxed() {
        let d = decide(&paid(&[("status", "0")]), Some(&order(true)), STRICT);
        assert_eq!(
            (d.outcome, d.flag, d.change),
            (
                Outcome::NotPaid,
                Some(Flag::PaidOrderUnpaid),
                OrderChange::None
            )
        );
        let relaxed = Rules {
            allow_test_payments: true,
            order_check: OrderCheck::None,
        };
        let d = decide(&paid(&[("test", "1")]), None, relaxed);
        assert_eq!(
            (d.outcome, d.change),
            (Outcome::Fulfilled, OrderChange::Fulfil { checked: false })
        );
        let d = decide(
            &paid(&[("status", "5"), ("refund_amount", "40")]),
            Some(&order(true)),
            STRICT,
        );
        assert_eq!(
            d.change,
            OrderChange::Refund {
                total: Amount::parse("40").unwrap()
            }
        );
    }

    /// Refunds add up with checked arithmetic: a total past `i64::MAX` is a
    /// decision (stored, `OK`, flagged), never a database error, which would
    /// be answered 503 to the gateway on every retry.
    #[test]
    fn refunds_add_up_and_a_total_that_does_not_fit_is_flagged() {
        let amount = |n: i64| Amount::from_minor(n).unwrap();
        let with_total = |total: i64| OrderView {
            refunded_amount: Some(amount(total)),
            ..refunded(true, false)
        };
        let refund = |n: &'static str| paid(&[("status", "5"), ("refund_amount", n)]);
        let d = decide(&refund("40"), Some(&with_total(60)), STRICT);
        assert_eq!(
            (d.outcome, d.change, d.flag),
            (
                Outcome::Refunded,
                OrderChange::Refund { total: amount(100) },
                None
            )
        );
        let max = "9223372036854775807";
        let d = decide(&refund(max), Some(&with_total(0)), STRICT);
        assert_eq!(
            d.change,
            OrderChange::Refund {
                total: amount(i64::MAX)
            }
        );
        let d = decide(&refund(max), Some(&with_total(1)), STRICT);
        assert_eq!(
            (d.outcome, d.change, d.flag),
            (
                Outcome::Refunded,
                OrderChange::Refund { total: amount(1) },
                Some(Flag::RefundOverflow)
            )
        );
        assert!(d.outcome.answers_ok());
        assert!(d.reason.unwrap().contains("does not fit"));
        assert_eq!(
            Flag::RefundOverflow.order_flag(),
            Some(OrderFlag::RefundOverflow)
        );
    }

    #[test]
    fn a_refund_is_recorded_whether_or_not_the_order_is_known_or_paid() {
        let amount = |a: &str| Amount::parse(a).unwrap();
        for order in [None, Some(order(false)), Some(order(true))] {
            let d = decide(&paid(&[("status", "5")]), order.as_ref(), STRICT);
            assert_eq!(
                (d.outcome, d.change),
                (
                    Outcome::Refunded,
                    OrderChange::Refund {
                        total: amount("100")
                    }
                ),
                "{order:?}"
            );
        }
        // A test refund while test payments are refused changes nothing.
        let d = decide(&paid(&[("status", "5"), ("test", "1")]), None, STRICT);
        assert_eq!(
            (d.outcome, d.change),
            (Outcome::TestIgnored, OrderChange::None)
        );
    }

    #[test]
    fn a_payment_after_a_refund_is_never_fulfilled() {
        let relaxed = Rules {
            allow_test_payments: false,
            order_check: OrderCheck::None,
        };
        // Registered or not, paid before or not, matching or not, any order check.
        for (order, rules) in [
            (refunded(true, false), STRICT),
            (refunded(false, false), STRICT),
            (refunded(true, true), STRICT),
            (refunded(false, false), relaxed),
        ] {
            for cb in [paid(&[]), paid(&[("amount", "99")])] {
                let d = decide(&cb, Some(&order), rules);
                assert_eq!(
                    (d.outcome, d.change, d.flag),
                    (
                        Outcome::PaidAfterRefund,
                        OrderChange::SetState(OrderState::NeedsReview),
                        Some(Flag::PaidAfterRefund)
                    ),
                    "{order:?} {rules:?}"
                );
                assert!(d.outcome.answers_ok(), "stored, so the gateway may stop");
                assert_eq!(
                    d.flag.and_then(Flag::order_flag),
                    Some(OrderFlag::PaidAfterRefund)
                );
            }
        }
    }

    #[test]
    fn a_matching_payment_after_a_mismatch_fulfils_and_the_mismatch_stays_flagged() {
        let mut order = order(false);
        for (cb, outcome) in [
            (paid(&[("amount", "99")]), Outcome::AmountMismatch),
            (paid(&[("currency", "USD")]), Outcome::CurrencyMismatch),
        ] {
            let d = decide(&cb, Some(&order), STRICT);
            assert_eq!(d.outcome, outcome);
            assert_eq!(
                d.flag.and_then(Flag::order_flag),
                Some(OrderFlag::UnmatchedPayment)
            );
            assert_eq!(d.change, OrderChange::SetState(OrderState::NeedsReview));
            order.state = OrderState::NeedsReview;
        }
        let d = decide(&paid(&[]), Some(&order), STRICT);
        assert_eq!(
            (d.outcome, d.change),
            (Outcome::Fulfilled, OrderChange::Fulfil { checked: true })
        );
    }

    #[test]
    fn names_round_trip() {
        for outcome in Outcome::ALL {
            assert_eq!(Outcome::parse(outcome.as_str()), Some(outcome));
        }
        for flag in OrderFlag::ALL {
            assert_eq!(OrderFlag::parse(flag.as_str()), Some(flag));
        }
        assert_eq!(OrderFlag::parse("flag"), None);
    }
}
