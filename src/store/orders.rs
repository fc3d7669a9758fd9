//! Orders: what the shop expects to be paid, and what the admin API reads.

use diesel::prelude::*;

use super::models::{CallbackRow, NewOrder, OrderDetails, OrderRow};
use super::schema::{callbacks, order_flags, orders};
use super::{dispatch, now_millis, Conn, Store, StoreError};
use crate::domain::{Amount, AmountMode, Currency, OrderState, Outcome, PaidReturn};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registration {
    Created,
    /// The same expectation was registered before: nothing changed.
    Unchanged,
    /// A different expectation exists for this order: nothing changed.
    Conflict {
        amount: Option<i64>,
        currency: Option<String>,
        test: bool,
        amount_mode: AmountMode,
    },
}

/// What a shop registers for an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected<'a> {
    pub amount: Amount,
    /// What `amount` means: the amount to pay, or a payer's minimum.
    pub amount_mode: AmountMode,
    pub currency: &'a Currency,
    /// A test order (a Checkout webhook carries no test flag of its own).
    pub test: bool,
}

/// Orders whose buyer came back between `$since` and `$cutoff`, still
/// awaiting payment, not closed, with no verified callback since: the
/// missed-callback detector's query, for the scanner and the console.
macro_rules! missing {
    ($since:expr, $cutoff:expr) => {
        orders::table
            .filter(orders::returned_at.gt($since))
            .filter(orders::returned_at.le($cutoff))
            .filter(orders::fulfilled_at.is_null())
            .filter(orders::closed_at.is_null())
            .filter(orders::state.eq(OrderState::AwaitingPayment.as_str()))
            .filter(diesel::dsl::not(diesel::dsl::exists(
                // Any verified callback proves the gateway reaches payhook
                // for this order; only `rejected` ones are unverified.
                callbacks::table
                    .filter(callbacks::project_id.eq(orders::project_id.nullable()))
                    .filter(callbacks::orderid.eq(orders::orderid.nullable()))
                    .filter(callbacks::outcome.ne(Outcome::Rejected.as_str()))
                    .filter(callbacks::received_at.nullable().ge(orders::returned_at)),
            )))
    };
}

impl Store {
    /// Registers the fixed amount an order must be paid, and whether it is a
    /// test order: [`Store::register_expectation`] with `AmountMode::Fixed`.
    pub fn register_order(
        &self,
        project: &str,
        orderid: &str,
        amount: Amount,
        currency: &Currency,
        test: bool,
        return_to: Option<(&str, &str)>,
    ) -> Result<(Registration, Option<String>), StoreError> {
        let expected = Expected {
            amount,
            amount_mode: AmountMode::Fixed,
            currency,
            test,
        };
        self.register_expectation(project, orderid, &expected, return_to)
    }

    /// Registers what an order must be paid, and whether it is a test order;
    /// idempotent for identical values.
    /// `return_to` is a fresh return token and the shop's accept URL, for buyers
    /// who come back through payhook; an existing order keeps its token.
    pub fn register_expectation(
        &self,
        project: &str,
        orderid: &str,
        expected: &Expected<'_>,
        return_to: Option<(&str, &str)>,
    ) -> Result<(Registration, Option<String>), StoreError> {
        let Expected {
            amount,
            amount_mode,
            currency,
            test,
        } = *expected;
        let now = now_millis();
        self.transaction(|conn| {
            let row = NewOrder {
                project_id: project,
                orderid,
                amount: Some(amount.minor_units()),
                currency: Some(currency.as_str()),
                state: OrderState::AwaitingPayment.as_str(),
                test,
                amount_mode: amount_mode.as_str(),
                return_token: return_to.map(|(token, _)| token),
                accept_url: return_to.map(|(_, url)| url),
                created_at: now,
                updated_at: now,
            };
            let inserted = dispatch!(conn, c => diesel::insert_into(orders::table)
                .values(&row)
                .on_conflict((orders::project_id, orders::orderid))
                .do_nothing()
                .execute(c))?;
            if inserted == 1 {
                return Ok((Registration::Created, return_to.map(|(t, _)| t.to_string())));
            }
            let existing =
                find_order(conn, project, orderid)?.ok_or(diesel::result::Error::NotFound)?;
            let token = existing.return_token.clone();
            let existing_mode = AmountMode::parse(&existing.amount_mode).unwrap_or_default();
            match (existing.amount, existing.currency.as_deref()) {
                (Some(a), Some(c))
                    if a == amount.minor_units()
                        && c == currency.as_str()
                        && existing.test == test
                        && existing_mode == amount_mode =>
                {
                    Ok((Registration::Unchanged, token))
                }
                // A row made by a paid callback without expectation (order check
                // `none`) takes the expectation if it has none yet.
                (None, None) => {
                    let this = orders::table
                        .filter(orders::project_id.eq(project))
                        .filter(orders::orderid.eq(orderid));
                    dispatch!(conn, c => diesel::update(this)
                        .set((
                            orders::amount.eq(amount.minor_units()),
                            orders::currency.eq(currency.as_str()),
                            orders::test.eq(test),
                            orders::amount_mode.eq(amount_mode.as_str()),
                            orders::updated_at.eq(now),
                        ))
                        .execute(c))?;
                    Ok((Registration::Created, token))
                }
                (amount, currency) => Ok((
                    Registration::Conflict {
                        amount,
                        currency: currency.map(str::to_string),
                        test: existing.test,
                        amount_mode: existing_mode,
                    },
                    None,
                )),
            }
        })
    }

    /// A buyer came back through payhook: returns the shop's accept URL to send
    /// them on to (`None`: no order has this token). With `paid`, the verified
    /// paid callback the return carried, also remembers when the buyer came
    /// back (the first time), but only if that callback is of the very order
    /// the token names: the missed-callback detector counts from then.
    pub fn mark_returned(
        &self,
        token: &str,
        paid: Option<&PaidReturn>,
    ) -> Result<Option<String>, StoreError> {
        let now = now_millis();
        self.with_conn(|mut conn| {
            if let Some(paid) = paid {
                dispatch!(&mut conn, c => diesel::update(
                    orders::table
                        .filter(orders::return_token.eq(token))
                        .filter(orders::project_id.eq(paid.project_id()))
                        .filter(orders::orderid.eq(paid.orderid()))
                        .filter(orders::returned_at.is_null()),
                )
                .set(orders::returned_at.eq(now))
                .execute(c))?;
            }
            Ok(dispatch!(&mut conn, c => orders::table
                .filter(orders::return_token.eq(token))
                .select(orders::accept_url)
                .first::<Option<String>>(c)
                .optional())?
            .flatten())
        })
    }

    /// Orders whose buyer came back between `since` and `cutoff`, that wait for
    /// payment, are not closed and got no verified callback since the buyer came
    /// back: how many there are, and those not alerted yet, claimed atomically
    /// so that only one instance alerts each.
    pub fn missed_callbacks(
        &self,
        since: i64,
        cutoff: i64,
    ) -> Result<(i64, Vec<(String, String)>), StoreError> {
        let now = now_millis();
        self.with_conn(|mut conn| {
            let count: i64 =
                dispatch!(&mut conn, c => missing!(since, cutoff).count().get_result(c))?;
            let claimed: Vec<(String, String)> = dispatch!(&mut conn, c => diesel::update(
                missing!(since, cutoff).filter(orders::missed_alerted_at.is_null()),
            )
            .set(orders::missed_alerted_at.eq(now))
            .returning((orders::project_id, orders::orderid))
            .get_results(c))?;
            Ok((count, claimed))
        })
    }

    /// How many orders [`Store::missed_callbacks`] counts, without claiming
    /// any for an alert (the console's overview).
    pub fn missed_callback_count(&self, since: i64, cutoff: i64) -> Result<i64, StoreError> {
        self.with_conn(|mut conn| {
            Ok(dispatch!(&mut conn, c => missing!(since, cutoff).count().get_result(c))?)
        })
    }

    /// Closes an order: no callback is expected for it any more, so the
    /// missed-callback detector no longer counts it. `None` when there is no
    /// such order; else when it was closed (earlier, if it already was) and
    /// whether this call closed it.
    pub fn close_order(
        &self,
        project: &str,
        orderid: &str,
    ) -> Result<Option<(i64, bool)>, StoreError> {
        let now = now_millis();
        self.with_conn(|mut conn| {
            let this = orders::table
                .filter(orders::project_id.eq(project))
                .filter(orders::orderid.eq(orderid));
            let closed = dispatch!(&mut conn, c => diesel::update(this.filter(orders::closed_at.is_null()))
                .set((orders::closed_at.eq(now), orders::updated_at.eq(now)))
                .execute(c))?;
            if closed == 1 {
                return Ok(Some((now, true)));
            }
            let earlier = dispatch!(&mut conn, c => this
                .select(orders::closed_at)
                .first::<Option<i64>>(c)
                .optional())?;
            Ok(earlier.flatten().map(|at| (at, false)))
        })
    }

    /// The order and its newest [`ORDER_CALLBACKS`] callbacks, oldest first.
    pub fn order(&self, project: &str, orderid: &str) -> Result<Option<OrderDetails>, StoreError> {
        self.order_page(project, orderid, None)
    }

    /// The order and the newest [`ORDER_CALLBACKS`] of its callbacks with an id
    /// below `before` (any: `None`), oldest first. Anyone holding a genuine
    /// callback can send it again as often as they like, so an order's page
    /// never holds them all; `callbacks_before` leads to the older ones.
    pub fn order_page(
        &self,
        project: &str,
        orderid: &str,
        before: Option<i64>,
    ) -> Result<Option<OrderDetails>, StoreError> {
        self.with_conn(|mut conn| {
            let Some(row) = find_order(&mut conn, project, orderid)? else {
                return Ok(None);
            };
            let mut callbacks: Vec<CallbackRow> = dispatch!(&mut conn, c => callbacks::table
                .filter(callbacks::project_id.eq(project))
                .filter(callbacks::orderid.eq(orderid))
                .filter(callbacks::id.lt(before.unwrap_or(i64::MAX)))
                .order(callbacks::id.desc())
                .limit(ORDER_CALLBACKS + 1)
                .select(CallbackRow::as_select())
                .load(c))?;
            let older = callbacks.len() as i64 > ORDER_CALLBACKS;
            callbacks.truncate(ORDER_CALLBACKS as usize);
            callbacks.reverse();
            let callbacks_before = older.then(|| callbacks[0].id);
            let flags: Vec<String> = dispatch!(&mut conn, c => order_flags::table
                .filter(order_flags::project_id.eq(project))
                .filter(order_flags::orderid.eq(orderid))
                .order(order_flags::id.asc())
                .select(order_flags::flag)
                .load(c))?;
            Ok(Some(OrderDetails {
                project_id: row.project_id,
                orderid: row.orderid,
                amount: row.amount,
                currency: row.currency,
                amount_mode: row.amount_mode,
                state: row.state,
                flags,
                refunded_amount: row.refunded_amount,
                fulfilled_at: row.fulfilled_at,
                returned_at: row.returned_at,
                closed_at: row.closed_at,
                test: row.test,
                amount_paid: row.amount_paid,
                amount_due: row
                    .amount_paid
                    .zip(row.amount)
                    .map(|(paid, amount)| (amount - paid).max(0)),
                paysera_order_id: row.paysera_order_id,
                callbacks,
                callbacks_before,
            }))
        })
    }
}

/// Callbacks an order's page shows at most.
pub const ORDER_CALLBACKS: i64 = 50;

pub(super) fn find_order(
    conn: &mut Conn<'_>,
    project: &str,
    orderid: &str,
) -> QueryResult<Option<OrderRow>> {
    dispatch!(conn, c => orders::table
        .filter(orders::project_id.eq(project))
        .filter(orders::orderid.eq(orderid))
        .select(OrderRow::as_select())
        .first(c)
        .optional())
}
