//! The order a paid callback normally finds, assumed before it is read.
//!
//! A first paid delivery almost always finds its order registered for the
//! callback's own amount and currency, awaiting payment, with nothing else
//! recorded. Deciding against that order before any row is read lets the
//! store write the payment in one statement that holds only while the order is
//! exactly that: `payhook_as_assumed` (migration `000028_one_paid_contract`)
//! is the same definition in SQL. When the order is anything else, nothing is
//! written and the callback is decided again against the order as stored.

use super::{Amount, AmountMode, Currency, OrderLock, OrderState, OrderView, Recorded};

/// The order a callback is decided against before its row is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumedOrder<'a> {
    pub orderid: &'a str,
    /// What the order is registered for: the callback's own amount and
    /// currency.
    pub amount: Amount,
    pub currency: Currency,
    view: OrderView,
}

impl AssumedOrder<'_> {
    /// The order as the decision reads it.
    pub fn view(&self) -> &OrderView {
        &self.view
    }
}

/// The order `callback` may find if it is a first paid delivery: one that
/// locks a registered order (not one created on the fly for want of a
/// registration) and states what it paid. `None`: decide it on the general
/// path only.
pub fn assumed_order<'a>(
    callback: &dyn Recorded,
    lock: Option<OrderLock<'a>>,
) -> Option<AssumedOrder<'a>> {
    let lock = lock.filter(|lock| !lock.create_if_missing)?;
    let amount = callback.amount()?;
    let currency = callback.currency()?.clone();
    let view = OrderView {
        expected: Some((amount, currency.clone())),
        amount_mode: AmountMode::Fixed,
        state: OrderState::AwaitingPayment,
        fulfilled: false,
        refunded: false,
        refunded_amount: None,
        test: false,
        amount_paid: None,
        snapshot_at: None,
    };
    Some(AssumedOrder {
        orderid: lock.orderid,
        amount,
        currency,
        view,
    })
}
