//! One transaction per callback: the duplicate guard, the order under lock,
//! the decision the caller makes of them, the stored row, the fulfilment and the
//! outbox, committed together before anything is answered. The store knows SQL;
//! what a callback means is the caller's step (`domain::decide_callback`).

use diesel::prelude::*;

use super::incoming::{no_nul, CallbackMeta, Decided, Incoming, Processed, DUPLICATE_FLOOD};
use super::models::{NewCallback, NewOrder, OrderRow};
use super::pay::PaidWrite;
use super::schema::{answered, callbacks, fulfilments, order_flags, orders, outbox};
use super::{dispatch, now_millis, Conn, Store, StoreError};
use crate::domain::{
    Amount, AmountMode, Currency, Decision, Flag, OrderChange, OrderLock, OrderState, OrderView,
    Outcome, Progress, Recorded, Seen,
};

impl Store {
    /// Stores a request that failed verification, with the reason. Anyone can
    /// send one, so only the first `max_bytes` bytes of its (escaped) raw
    /// request are stored, beside its full length and SHA-256.
    pub fn record_rejected(
        &self,
        meta: &CallbackMeta,
        reason: &str,
        http_status: u16,
        max_bytes: usize,
    ) -> Result<i64, StoreError> {
        let now = now_millis();
        let raw = meta.raw.stored(Some(max_bytes));
        // Through `transaction`, so a connection that died while pooled is
        // retried on a fresh one here too: a rejection is answered 400, not 503.
        self.transaction(|conn| {
            let row = NewCallback {
                received_at: now,
                project_id: None,
                orderid: None,
                identity: None,
                outcome: Outcome::Rejected.as_str(),
                reason: Some(reason),
                http_status: i32::from(http_status),
                method: &meta.method,
                raw_query: &raw.text,
                remote_addr: meta.remote_addr.as_deref(),
                raw_length: raw.length,
                raw_sha256: &raw.sha256,
                raw_truncated: raw.truncated,
                api: meta.api,
                raw_unsigned: None,
                duplicate_of: None,
            };
            insert_callback(conn, &row, None)
        })
    }

    /// The general path: stores a verified callback in one transaction. Claims
    /// its identity (the duplicate guard), locks `lock`'s order, asks `decide`
    /// what that means, and writes the row, the order change and the shop's
    /// event. What the signature covers is stored whole; a duplicate, bounded,
    /// with a link to the row its guard names (the delivery answered `OK`).
    ///
    /// `decide` may run more than once: a transaction lost with its connection
    /// is run again on a fresh one.
    pub fn record(
        &self,
        incoming: &Incoming<'_>,
        lock: Option<OrderLock<'_>>,
        decide: impl Fn(Seen<'_>) -> Decided,
    ) -> Result<Processed, StoreError> {
        self.transaction(|conn| record_in(conn, incoming, lock, &decide))
    }
}

/// Inserts are written as `.eq()` tuples rather than from `Insertable` structs:
/// diesel never caches a statement that may hold `DEFAULT` (an `Option` field of
/// a struct), and a prepared, cached statement is half the database's work here.
///
/// `id`: the one the duplicate guard names for this row (PostgreSQL: drawn
/// by `payhook_claim`); `None` takes the next of the sequence.
fn insert_callback(
    conn: &mut Conn<'_>,
    row: &NewCallback<'_>,
    id: Option<i64>,
) -> QueryResult<i64> {
    let reason = row.reason.map(no_nul);
    let columns = (
        callbacks::received_at.eq(row.received_at),
        callbacks::project_id.eq(row.project_id),
        callbacks::orderid.eq(row.orderid),
        callbacks::identity.eq(row.identity),
        callbacks::outcome.eq(row.outcome),
        callbacks::reason.eq(reason.as_deref()),
        callbacks::http_status.eq(row.http_status),
        callbacks::method.eq(row.method),
        callbacks::raw_query.eq(row.raw_query),
        callbacks::remote_addr.eq(row.remote_addr),
        callbacks::raw_length.eq(row.raw_length),
        callbacks::raw_sha256.eq(row.raw_sha256),
        callbacks::raw_truncated.eq(row.raw_truncated),
        callbacks::api.eq(row.api),
        callbacks::raw_unsigned.eq(row.raw_unsigned),
        callbacks::duplicate_of.eq(row.duplicate_of),
    );
    // Two statements rather than an `Option` column, which diesel would not
    // cache (see above).
    match id {
        Some(id) => dispatch!(conn, c => diesel::insert_into(callbacks::table)
            .values((callbacks::id.eq(id), columns))
            .returning(callbacks::id)
            .get_result(c)),
        None => dispatch!(conn, c => diesel::insert_into(callbacks::table)
            .values(columns)
            .returning(callbacks::id)
            .get_result(c)),
    }
}

fn record_in(
    conn: &mut Conn<'_>,
    incoming: &Incoming<'_>,
    lock: Option<OrderLock<'_>>,
    decide: &dyn Fn(Seen<'_>) -> Decided,
) -> QueryResult<Processed> {
    let now = now_millis();
    let callback = incoming.callback;
    let project = callback.project_id();
    let identity = hex::encode(callback.identity());
    let orderid = callback.orderid();
    let guard = GuardKey {
        project,
        orderid: orderid.unwrap_or(""),
        identity: &identity,
    };

    // The guard: only one transaction at a time can hold an identity; a second
    // one waits here until the first commits, then sees the conflict.
    let Claim {
        fresh,
        order,
        callback_id: named_id,
    } = match conn {
        Conn::Pg(_) => claim_in_one_statement(conn, guard, now, &incoming.attempt, lock)?,
        Conn::Sqlite(_) => claim_in_statements(conn, guard, now, &incoming.attempt, lock)?,
    };
    if !fresh {
        if let Some(earlier) = own_earlier_attempt(conn, guard, &incoming.attempt)? {
            return Ok(earlier);
        }
    }

    let view = order.as_ref().map(order_view);
    let Decided {
        decision,
        http_status,
    } = decide(if fresh {
        Seen::FirstDelivery(view.as_ref())
    } else {
        Seen::AnsweredBefore
    });

    let outcome = decision.outcome;
    let mut row = incoming.row(now, &identity, &decision, http_status);
    // The same delivery again: its first row holds it whole, so this one is
    // kept bounded, like a rejected request, and points there.
    let bounded;
    if !fresh {
        bounded = incoming.meta.raw.stored(Some(incoming.duplicate_max_bytes));
        row.raw_query = &bounded.text;
        row.raw_truncated = bounded.truncated;
        row.raw_unsigned = None;
        row.duplicate_of = guarded_row(conn, guard)?;
    }

    let paid = orderid.and_then(|orderid| PaidWrite::fitting(&decision, &row, callback, orderid));
    let callback_id = match (paid, named_id) {
        // The paid path, PostgreSQL: every write in one statement (one round trip).
        (Some(paid), Some(id)) => paid.write_in(conn, id)?,
        _ => {
            let callback_id = insert_callback(conn, &row, named_id)?;
            if let Some(orderid) = orderid {
                apply_change(conn, callback, &decision, orderid, callback_id, now)?;
                if let Some(progress) = &decision.progress {
                    record_progress(conn, project, orderid, progress, now)?;
                }
            }
            if let Some(notice) = &decision.notify {
                dispatch!(conn, c => diesel::insert_into(outbox::table)
                    .values((
                        outbox::kind.eq(notice.kind.as_str()),
                        outbox::project_id.eq(project),
                        outbox::orderid.eq(orderid),
                        outbox::callback_id.eq(callback_id),
                        outbox::payload.eq(&notice.payload),
                        outbox::next_attempt_at.eq(now),
                        outbox::created_at.eq(now),
                    ))
                    .execute(c))?;
            }
            callback_id
        }
    };
    // A guard kept keeps the decision's flag for a retry of this request (see
    // `own_earlier_attempt`), so that its alert is not lost.
    if fresh && !decision.keeps_claim() {
        dispatch!(conn, c => diesel::delete(answered::table.find(guard.key())).execute(c))?;
    } else if fresh && named_id.is_none() {
        // SQLite: the guard names its row once it is written, for the
        // duplicates that will point at it.
        dispatch!(conn, c => diesel::update(answered::table.find(guard.key()))
            .set((
                answered::callback_id.eq(callback_id),
                answered::flag.eq(decision.flag.map(Flag::as_str)),
            ))
            .execute(c))?;
    } else if let Some(flag) = decision.flag.filter(|_| fresh) {
        // PostgreSQL, whose guard named its row when taken: only flagged
        // callbacks pay this round trip; the paid path has no flag.
        dispatch!(conn, c => diesel::update(answered::table.find(guard.key()))
            .set(answered::flag.eq(flag.as_str()))
            .execute(c))?;
    }
    let flood = match row.duplicate_of {
        Some(first) => duplicates_of(conn, first)? >= DUPLICATE_FLOOD,
        None => false,
    };
    Ok(Processed {
        callback_id,
        outcome,
        reason: decision.reason,
        flag: decision.flag,
        flood,
    })
}

/// The duplicate guard's key (migration `000032_guard_names_row`): the order
/// first, as `orders` is keyed, so that a new order's guard lands beside the
/// guards of the orders before it; `""` for a callback that names no order.
/// The identity alone decides what is a duplicate: it covers the project and
/// the order id.
#[derive(Clone, Copy)]
struct GuardKey<'a> {
    project: &'a str,
    orderid: &'a str,
    identity: &'a str,
}

impl<'a> GuardKey<'a> {
    fn key(self) -> (&'a str, &'a str, &'a str) {
        (self.project, self.orderid, self.identity)
    }
}

/// The guard `key`, joined to the row it names, as a query to filter more.
macro_rules! held_guard {
    ($key:expr) => {
        answered::table
            .inner_join(callbacks::table.on(answered::callback_id.eq(callbacks::id.nullable())))
            .filter(answered::project_id.eq($key.project))
            .filter(answered::orderid.eq($key.orderid))
            .filter(answered::identity.eq($key.identity))
    };
}

/// The row a held guard names: its delivery, answered OK and stored whole.
/// `None` when that row has been pruned since.
fn guarded_row(conn: &mut Conn<'_>, guard: GuardKey<'_>) -> QueryResult<Option<i64>> {
    dispatch!(conn, c => held_guard!(guard)
        .select(callbacks::id)
        .first(c)
        .optional())
}

/// How many duplicates the delivery whose first row is `first` has had, counted
/// up to [`DUPLICATE_FLOOD`] (an index range of that many rows at most).
fn duplicates_of(conn: &mut Conn<'_>, first: i64) -> QueryResult<i64> {
    let ids: Vec<i64> = dispatch!(conn, c => callbacks::table
        .filter(callbacks::duplicate_of.eq(first))
        .select(callbacks::id)
        .limit(DUPLICATE_FLOOD)
        .load(c))?;
    Ok(ids.len() as i64)
}

/// What this request's earlier attempt stored, when its COMMIT landed though
/// the reply was lost (the guard holds our attempt id): the retry reports that
/// outcome instead of `duplicate`, and adds no row. The guard names the row
/// that attempt stored.
fn own_earlier_attempt(
    conn: &mut Conn<'_>,
    guard: GuardKey<'_>,
    attempt: &str,
) -> QueryResult<Option<Processed>> {
    let guarded: Option<(i64, String, Option<String>, Option<String>)> = dispatch!(conn, c =>
        held_guard!(guard)
            .filter(answered::attempt.eq(attempt))
            .select((callbacks::id, callbacks::outcome, callbacks::reason, answered::flag))
            .first(c)
            .optional())?;
    let Some((callback_id, outcome, reason, flag)) = guarded else {
        return Ok(None);
    };
    // The earlier COMMIT may have landed here without reaching a synchronous
    // standby (its wait cut short with its connection). A transaction that
    // writes nothing commits without waiting for the standby, so this one
    // writes its guard again: its COMMIT then waits, and commits are
    // confirmed in WAL order, so once it returns the earlier one is
    // replicated too, and only then is it answered (docs/ha.md).
    dispatch!(conn, c => diesel::update(answered::table.find(guard.key()))
        .set(answered::attempt.eq(attempt))
        .execute(c))?;
    let unreadable = |what: &str, text: &str| {
        diesel::result::Error::DeserializationError(format!("stored {what} {text:?}").into())
    };
    let outcome = Outcome::parse(&outcome).ok_or_else(|| unreadable("outcome", &outcome))?;
    let flag = match flag {
        Some(text) => Some(Flag::parse(&text).ok_or_else(|| unreadable("flag", &text))?),
        None => None,
    };
    tracing::debug!(
        callback_id,
        outcome = outcome.as_str(),
        "reply to COMMIT was lost; reporting what the earlier attempt stored"
    );
    Ok(Some(Processed {
        callback_id,
        outcome,
        reason,
        flag,
        flood: false,
    }))
}

fn order_view(row: &OrderRow) -> OrderView {
    let expected = match (row.amount, row.currency.as_deref()) {
        (Some(a), Some(c)) => Amount::from_minor(a).ok().zip(Currency::parse(c).ok()),
        _ => None,
    };
    OrderView {
        expected,
        // The column's CHECK admits no other text.
        amount_mode: AmountMode::parse(&row.amount_mode).unwrap_or_default(),
        state: OrderState::parse(&row.state).unwrap_or(OrderState::NeedsReview),
        fulfilled: row.fulfilled_at.is_some(),
        // A refund without a stated amount is recorded as 0, so this holds too.
        refunded: row.refunded_amount.is_some() || row.state == OrderState::Refunded.as_str(),
        refunded_amount: row.refunded_amount.and_then(|a| Amount::from_minor(a).ok()),
        test: row.test,
        amount_paid: row.amount_paid.and_then(|a| Amount::from_minor(a).ok()),
        snapshot_at: row.snapshot_at,
    }
}

/// Where a Checkout order stands after the snapshot just applied.
fn record_progress(
    conn: &mut Conn<'_>,
    project: &str,
    orderid: &str,
    progress: &Progress,
    now: i64,
) -> QueryResult<()> {
    use diesel::dsl::sql;
    use diesel::sql_types::{BigInt, Nullable, Text};
    let this_order = orders::table
        .filter(orders::project_id.eq(project))
        .filter(orders::orderid.eq(orderid));
    dispatch!(conn, c => diesel::update(this_order)
        .set((
            orders::amount_paid.eq(progress.amount_paid.minor_units()),
            orders::snapshot_at.eq(sql::<Nullable<BigInt>>("COALESCE(")
                .bind::<Nullable<BigInt>, _>(progress.updated_at)
                .sql(", snapshot_at)")),
            orders::paysera_order_id.eq(sql::<Nullable<Text>>("COALESCE(")
                .bind::<Nullable<Text>, _>(progress.paysera_order_id.as_deref())
                .sql(", paysera_order_id)")),
            orders::updated_at.eq(now),
        ))
        .execute(c))?;
    Ok(())
}

/// Without registered orders there is still one row per order to lock, so two
/// paid callbacks for it cannot both fulfil.
fn ensure_order_row(
    conn: &mut Conn<'_>,
    project: &str,
    orderid: &str,
    now: i64,
) -> QueryResult<()> {
    let row = NewOrder {
        project_id: project,
        orderid,
        amount: None,
        currency: None,
        state: OrderState::AwaitingPayment.as_str(),
        test: false,
        amount_mode: AmountMode::Fixed.as_str(),
        return_token: None,
        accept_url: None,
        created_at: now,
        updated_at: now,
    };
    dispatch!(conn, c => diesel::insert_into(orders::table)
        .values(&row)
        .on_conflict((orders::project_id, orders::orderid))
        .do_nothing()
        .execute(c))?;
    Ok(())
}

fn apply_change(
    conn: &mut Conn<'_>,
    callback: &dyn Recorded,
    decision: &Decision,
    orderid: &str,
    callback_id: i64,
    now: i64,
) -> QueryResult<()> {
    let project = callback.project_id();
    let this_order = orders::table
        .filter(orders::project_id.eq(project))
        .filter(orders::orderid.eq(orderid));
    match &decision.change {
        OrderChange::None => {}
        OrderChange::Fulfil { checked } => {
            dispatch!(conn, c => diesel::insert_into(fulfilments::table)
                .values((
                    fulfilments::project_id.eq(project),
                    fulfilments::orderid.eq(orderid),
                    fulfilments::callback_id.eq(callback_id),
                    fulfilments::amount.eq(callback.amount().map(Amount::minor_units)),
                    fulfilments::currency.eq(callback.currency().map(Currency::as_str)),
                    fulfilments::amount_checked.eq(*checked),
                    fulfilments::created_at.eq(now),
                ))
                .execute(c))?;
            dispatch!(conn, c => diesel::update(this_order)
                .set((
                    orders::state.eq(OrderState::Paid.as_str()),
                    orders::fulfilled_at.eq(now),
                    orders::updated_at.eq(now),
                ))
                .execute(c))?;
        }
        OrderChange::SetState(state) => {
            dispatch!(conn, c => diesel::update(this_order)
                .set((orders::state.eq(state.as_str()), orders::updated_at.eq(now)))
                .execute(c))?;
        }
        OrderChange::Refund { total } => {
            // A refund for an order not registered yet creates it (without an
            // expectation, which a later registration fills in). The total
            // was decided from the row read under the order's lock: written
            // as decided, never added up here.
            ensure_order_row(conn, project, orderid, now)?;
            dispatch!(conn, c => diesel::update(this_order)
                .set((
                    orders::state.eq(OrderState::Refunded.as_str()),
                    orders::refunded_amount.eq(total.minor_units()),
                    orders::updated_at.eq(now),
                ))
                .execute(c))?;
        }
    }
    if let Some(flag) = decision.flag.and_then(Flag::order_flag) {
        // One row per flag: an insert cannot overwrite a flag set before, and a
        // flag already present stays with the callback that set it first.
        let added = dispatch!(conn, c => diesel::insert_into(order_flags::table)
            .values((
                order_flags::project_id.eq(project),
                order_flags::orderid.eq(orderid),
                order_flags::flag.eq(flag.as_str()),
                order_flags::callback_id.eq(callback_id),
                order_flags::created_at.eq(now),
            ))
            .on_conflict_do_nothing()
            .execute(c))?;
        if added == 1 {
            dispatch!(conn, c => diesel::update(this_order)
                .set(orders::updated_at.eq(now))
                .execute(c))?;
        }
    }
    Ok(())
}

/// What taking the guard gave: whether this transaction holds it now, the
/// order (locked), and on PostgreSQL the id the guard names for the callback
/// row this transaction writes (on SQLite the row is named once written).
struct Claim {
    fresh: bool,
    order: Option<OrderRow>,
    callback_id: Option<i64>,
}

/// `claim_in_one_statement`, statement by statement, on SQLite: its immediate
/// transaction already holds the database's write lock, so the order is read,
/// not locked row by row.
fn claim_in_statements(
    conn: &mut Conn<'_>,
    guard: GuardKey<'_>,
    now: i64,
    attempt: &str,
    lock: Option<OrderLock<'_>>,
) -> QueryResult<Claim> {
    let project = guard.project;
    let fresh = dispatch!(conn, c => diesel::insert_into(answered::table)
        .values((
            answered::project_id.eq(project),
            answered::orderid.eq(guard.orderid),
            answered::identity.eq(guard.identity),
            answered::answered_at.eq(now),
            answered::attempt.eq(attempt),
        ))
        .on_conflict_do_nothing()
        .execute(c))?
        == 1;
    let claim = |order| Claim {
        fresh,
        order,
        callback_id: None,
    };
    let Some(lock) = lock.filter(|_| fresh) else {
        return Ok(claim(None));
    };
    if lock.create_if_missing {
        ensure_order_row(conn, project, lock.orderid, now)?;
    }
    let order = dispatch!(conn, c => orders::table
        .filter(orders::project_id.eq(project))
        .filter(orders::orderid.eq(lock.orderid))
        .select(OrderRow::as_select())
        .first(c)
        .optional())?;
    Ok(claim(order))
}

/// What `payhook_claim` (migrations `000009_claim_function` to `000032_guard_names_row`)
/// answers: the id the guard names when this call took it, and the order locked, when there is
/// one.
#[derive(QueryableByName)]
struct Claimed {
    /// The id the guard names, when this call took it.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    callback_id: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    o_project_id: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    o_orderid: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    o_amount: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    o_currency: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    o_state: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    o_refunded_amount: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    o_fulfilled_at: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    o_returned_at: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    o_return_token: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    o_closed_at: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Bool>)]
    o_test: Option<bool>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    o_amount_paid: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    o_snapshot_at: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    o_paysera_order_id: Option<String>,
    /// Migration `000027_amount_mode`.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    o_amount_mode: Option<String>,
}

/// The guard and the order lock (`insert` into `answered`, then the order
/// `FOR UPDATE`, created first when `lock.create_if_missing`) as one call of the
/// `payhook_claim` function: one round trip instead of two.
fn claim_in_one_statement(
    conn: &mut Conn<'_>,
    guard: GuardKey<'_>,
    now: i64,
    attempt: &str,
    lock: Option<OrderLock<'_>>,
) -> QueryResult<Claim> {
    use diesel::sql_types::{BigInt, Bool, Nullable, Text};
    let Conn::Pg(c) = conn else {
        unreachable!("only called on PostgreSQL")
    };
    let claimed = diesel::sql_query("SELECT * FROM payhook_claim($1, $2, $3, $4, $5, $6, $7)")
        .bind::<Text, _>(guard.identity)
        .bind::<BigInt, _>(now)
        .bind::<Text, _>(attempt)
        .bind::<Text, _>(guard.project)
        .bind::<Nullable<Text>, _>(lock.map(|l| l.orderid))
        .bind::<Bool, _>(lock.is_some_and(|l| l.create_if_missing))
        .bind::<Text, _>(guard.orderid)
        .get_result::<Claimed>(&mut **c)?;
    let order = match (claimed.o_project_id, claimed.o_orderid, claimed.o_state) {
        (Some(project_id), Some(orderid), Some(state)) => Some(OrderRow {
            project_id,
            orderid,
            amount: claimed.o_amount,
            currency: claimed.o_currency,
            state,
            refunded_amount: claimed.o_refunded_amount,
            fulfilled_at: claimed.o_fulfilled_at,
            returned_at: claimed.o_returned_at,
            return_token: claimed.o_return_token,
            closed_at: claimed.o_closed_at,
            test: claimed.o_test.unwrap_or(false),
            amount_paid: claimed.o_amount_paid,
            snapshot_at: claimed.o_snapshot_at,
            paysera_order_id: claimed.o_paysera_order_id,
            amount_mode: claimed.o_amount_mode.unwrap_or_default(),
        }),
        _ => None,
    };
    Ok(Claim {
        fresh: claimed.callback_id.is_some(),
        order,
        callback_id: claimed.callback_id,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::{FieldValue, Fields, Notice, PaymentKind, Proof, VerifiedCallback};
    use crate::store::raw::{RawRequest, Signed};
    use crate::store::DatabaseConfig;

    /// What the pipeline may decide, made by hand: the store writes what it
    /// is handed, whatever the rules behind it.
    fn decided(outcome: Outcome, change: OrderChange, flag: Option<Flag>) -> Decision {
        Decision {
            outcome,
            reason: None,
            change,
            flag,
            notify: Some(Notice {
                kind: outcome,
                payload: "{}".into(),
            }),
            progress: None,
        }
    }

    fn store(dir: &tempfile::TempDir) -> Store {
        let config = DatabaseConfig::Sqlite {
            path: dir.path().join("t.sqlite3"),
        };
        let store =
            Store::connect(&config, 1, Duration::from_secs(2), Duration::from_secs(5)).unwrap();
        store.migrate().unwrap();
        store
    }

    fn paid(orderid: &str, amount: &str) -> VerifiedCallback {
        let pairs = [
            ("orderid", orderid),
            ("status", "1"),
            ("amount", amount),
            ("currency", "EUR"),
        ];
        let fields = Fields::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), FieldValue::Text(v.to_string())))
                .collect(),
        );
        VerifiedCallback::new("1".into(), Proof::Ss2, PaymentKind::Macro, fields).unwrap()
    }

    fn meta() -> CallbackMeta {
        CallbackMeta {
            method: "GET".into(),
            raw: RawRequest::join(b"data=...", b""),
            remote_addr: None,
            api: "classic",
        }
    }

    /// Runs one attempt as `transaction` would, also when its earlier
    /// transaction with the same attempt id committed (a lost COMMIT reply):
    /// `first` is decided for a first delivery, a duplicate after it.
    fn attempt(
        store: &Store,
        callback: &VerifiedCallback,
        attempt: &str,
        first: &Decision,
    ) -> Processed {
        store
            .transaction(|conn| {
                let meta = meta();
                let mut incoming = Incoming::new(callback, &meta, &Signed::new(None, 2048));
                incoming.attempt = attempt.to_string();
                let decide = |seen: Seen<'_>| Decided {
                    decision: match seen {
                        Seen::FirstDelivery(_) => first.clone(),
                        Seen::AnsweredBefore => {
                            decided(Outcome::Duplicate, OrderChange::None, None)
                        }
                    },
                    http_status: 200,
                };
                let lock = callback.orderid().map(|orderid| OrderLock {
                    orderid,
                    create_if_missing: false,
                });
                record_in(conn, &incoming, lock, &decide)
            })
            .unwrap()
    }

    fn rows(store: &Store) -> i64 {
        store
            .with_conn(|mut conn| {
                Ok(dispatch!(&mut conn, c => callbacks::table.count().get_result::<i64>(c))?)
            })
            .unwrap()
    }

    #[test]
    fn a_retry_of_a_committed_attempt_reports_what_it_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let eur = Currency::parse("EUR").unwrap();
        for id in ["A", "B"] {
            store
                .register_order("1", id, Amount::parse("100").unwrap(), &eur, false, None)
                .unwrap();
        }

        let fulfil = paid("A", "100");
        let fulfilled = decided(
            Outcome::Fulfilled,
            OrderChange::Fulfil { checked: true },
            None,
        );
        let first = attempt(&store, &fulfil, "attempt-1", &fulfilled);
        assert_eq!(first.outcome, Outcome::Fulfilled);
        let retry = attempt(&store, &fulfil, "attempt-1", &fulfilled);
        assert_eq!(retry, first, "the retry reports the stored outcome");
        assert_eq!(rows(&store), 1, "and stores nothing more");
        let other = attempt(&store, &fulfil, "attempt-2", &fulfilled);
        assert_eq!(other.outcome, Outcome::Duplicate, "another request");
        assert_eq!(rows(&store), 2);

        let mismatch = paid("B", "1");
        let flagged = decided(
            Outcome::AmountMismatch,
            OrderChange::None,
            Some(Flag::AmountMismatch),
        );
        let first = attempt(&store, &mismatch, "attempt-3", &flagged);
        assert_eq!(first.outcome, Outcome::AmountMismatch);
        assert_eq!(first.flag, Some(Flag::AmountMismatch));
        let retry = attempt(&store, &mismatch, "attempt-3", &flagged);
        assert_eq!(retry, first, "the alert's flag is kept with the guard");
        assert_eq!(rows(&store), 3);
    }

    use super::no_nul;

    #[test]
    fn a_reason_never_carries_a_nul_to_the_database() {
        assert_eq!(
            no_nul("projectid 1\u{0}2 is not configured"),
            "projectid 1\\x002 is not configured"
        );
        assert!(matches!(
            no_nul("missing data"),
            std::borrow::Cow::Borrowed("missing data")
        ));
    }
}
