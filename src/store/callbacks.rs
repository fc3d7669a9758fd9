//! One transaction per callback: the duplicate guard, the order under lock,
//! the decision the caller makes of them, the stored row, the fulfilment and the
//! outbox, committed together before anything is answered. The store knows SQL;
//! what a callback means is the caller's step (`domain::decide_callback`).

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text};

use super::models::{NewCallback, NewOrder, OrderRow};
use super::pay_batch::{Batched, PayJob};
use super::raw::{RawRequest, Signed, StoredRaw};
use super::schema::{answered, callbacks, fulfilments, order_flags, orders, outbox};
use super::{connection_lost, deadline, dispatch, now_millis, Backend, Conn, Store, StoreError};
use crate::domain::{
    Amount, AmountMode, Currency, Decision, Flag, OrderChange, OrderLock, OrderState, OrderView,
    Outcome, Progress, Recorded, Seen,
};

/// Once per request, written with the duplicate guard: a retry whose earlier
/// COMMIT landed though its reply was lost finds its own attempt there.
fn new_attempt() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// What the HTTP layer knows about the request, stored beside the callback.
#[derive(Debug, Clone)]
pub struct CallbackMeta {
    pub method: String,
    /// The bytes received; stored escaped, whole for a verified callback.
    pub raw: RawRequest,
    pub remote_addr: Option<String>,
    /// `classic` or `checkout`: which endpoint received it.
    pub api: &'static str,
}

/// What the caller decided for a callback, as the store writes it.
#[derive(Debug, Clone)]
pub struct Step {
    pub decision: Decision,
    /// The status the callback is answered with, stored beside it.
    pub http_status: u16,
}

/// What became of a stored callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    pub callback_id: i64,
    pub outcome: Outcome,
    pub reason: Option<String>,
    pub flag: Option<Flag>,
    /// A duplicate whose delivery has come [`DUPLICATE_FLOOD`] times or more:
    /// someone is replaying it (the `duplicate_flood` alert).
    pub flood: bool,
}

/// Duplicates of one delivery past which it counts as replayed on purpose. A
/// gateway retries a callback a handful of times at most.
pub const DUPLICATE_FLOOD: i64 = 100;

impl Store {
    /// Stores a request that failed verification, with the reason. Anyone can
    /// send one, so only the first `keep` bytes of its (escaped) raw request
    /// are stored, beside its full length and SHA-256.
    pub fn record_rejected(
        &self,
        meta: &CallbackMeta,
        reason: &str,
        http_status: u16,
        keep: usize,
    ) -> Result<i64, StoreError> {
        let now = now_millis();
        let raw = meta.raw.stored(Some(keep));
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
            insert_callback(conn, &row)
        })
    }

    /// Stores a verified callback in one transaction: claims its identity (the
    /// duplicate guard), locks `lock`'s order, asks `decide` what that means,
    /// and writes the row, the order change and the shop's event. What
    /// `signed` covers is stored whole; a duplicate, bounded, with a link to
    /// the first row of its delivery.
    ///
    /// `decide` may run more than once: a transaction lost with its connection
    /// is run again on a fresh one.
    pub fn record(
        &self,
        callback: &dyn Recorded,
        meta: &CallbackMeta,
        signed: &Signed,
        lock: Option<OrderLock<'_>>,
        decide: impl Fn(Seen<'_>) -> Step,
    ) -> Result<Processed, StoreError> {
        let attempt = new_attempt();
        let raw = meta.raw.stored_verified(signed);
        let attempt_ref = Attempt {
            callback,
            meta,
            raw: &raw,
            keep: signed.keep,
            id: &attempt,
        };
        if let Some(paid) = self.pay_in_one_statement(&attempt_ref, lock, &decide) {
            return paid;
        }
        self.transaction(|conn| record_in(conn, &attempt_ref, lock, &decide))
    }

    /// The paid path on PostgreSQL in one round trip (`payhook_pay`, migration
    /// 21): decided from the order payhook expects to find, registered and
    /// awaiting this very payment, and written only if the order is exactly
    /// that. `None`: take the general path, nothing was written.
    fn pay_in_one_statement(
        &self,
        attempt: &Attempt<'_>,
        lock: Option<OrderLock<'_>>,
        decide: &dyn Fn(Seen<'_>) -> Step,
    ) -> Option<Result<Processed, StoreError>> {
        // The one-statement writes keep a request whole; one with anything
        // beside its signed part takes the general path.
        if !matches!(self.backend, Backend::Postgres(_)) || attempt.raw.unsigned.is_some() {
            return None;
        }
        let callback = attempt.callback;
        let orderid = lock.filter(|l| !l.create)?.orderid;
        let expected = callback.amount().zip(callback.currency().cloned())?;
        let assumed = expected_order(expected);
        let Step {
            decision,
            http_status,
        } = decide(Seen::First(Some(&assumed)));
        let OrderChange::Fulfil { checked } = decision.change else {
            return None;
        };
        let notice = decision.notify.as_ref()?;
        if decision.progress.is_some() || decision.flag.is_some() || !decision.keeps_claim() {
            return None;
        }
        let identity = hex::encode(callback.identity());
        let row = attempt.row(now_millis(), &identity, &decision, http_status);
        if let Err(e) = self.still_awaited() {
            return Some(Err(e));
        }
        let assumed = Assumed {
            attempt: attempt.id,
            commit_by: self.commit_by_millis(),
            order: &assumed,
        };
        let writes = PaidWrites {
            row: &row,
            callback,
            checked,
            orderid,
            payload: &notice.payload,
        };
        let batched = match &self.pay_batcher {
            Some(batcher) => batcher.submit(writes.job(&assumed), deadline()),
            None => Batched::Alone,
        };
        let paid = match batched {
            Batched::Paid(callback_id) => Ok(Some(callback_id)),
            Batched::GuardHeld | Batched::NotAsAssumed => return None,
            Batched::TooLate => return Some(Err(StoreError::TimedOut(self.statement_timeout))),
            Batched::NoConnection => {
                return Some(Err(StoreError::Unavailable(
                    "timed out waiting for a database connection".into(),
                )))
            }
            Batched::Alone => self.with_conn(|conn| {
                let Conn::Pg(c) = conn else {
                    unreachable!("only called on PostgreSQL")
                };
                Ok(writes.run(c, Some(&assumed))?)
            }),
        };
        match paid {
            Ok(Some(callback_id)) => Some(Ok(Processed {
                callback_id,
                outcome: decision.outcome,
                reason: decision.reason,
                flag: None,
                flood: false,
            })),
            // The guard was held: a duplicate, or this request's own attempt
            // whose reply was lost; the general path tells which.
            Ok(None) => None,
            Err(StoreError::Query(e)) if raised(&e, NOT_AS_ASSUMED) || connection_lost(&e) => None,
            Err(StoreError::Query(e)) if raised(&e, TOO_LATE) => {
                Some(Err(StoreError::TimedOut(self.statement_timeout)))
            }
            Err(e) => Some(Err(e)),
        }
    }
}

/// One request's attempt to be stored: what `record` was given, and the
/// attempt's id, written with the guard.
struct Attempt<'a> {
    callback: &'a dyn Recorded,
    meta: &'a CallbackMeta,
    /// As a verified callback is stored.
    raw: &'a StoredRaw,
    /// Bytes a duplicate keeps of the request.
    keep: usize,
    id: &'a str,
}

impl<'a> Attempt<'a> {
    fn row(
        &self,
        now: i64,
        identity: &'a str,
        decision: &'a Decision,
        http_status: u16,
    ) -> NewCallback<'a> {
        NewCallback {
            received_at: now,
            project_id: Some(self.callback.project_id()),
            orderid: self.callback.orderid(),
            identity: Some(identity),
            outcome: decision.outcome.as_str(),
            reason: decision.reason.as_deref(),
            http_status: i32::from(http_status),
            method: &self.meta.method,
            raw_query: &self.raw.text,
            remote_addr: self.meta.remote_addr.as_deref(),
            raw_length: self.raw.length,
            raw_sha256: &self.raw.sha256,
            raw_truncated: self.raw.truncated,
            api: self.callback.api(),
            raw_unsigned: self.raw.unsigned.as_deref(),
            duplicate_of: None,
        }
    }
}

/// The order a paid callback normally finds: registered for its amount and
/// currency, awaiting payment, nothing else recorded. Every field is one that
/// `payhook_pay` compares (migration 21): a field added to `OrderView` must be
/// compared there too, or never be read by the classic decision
/// (`amount_mode`: `the_classic_decision_does_not_read_the_amount_mode`).
fn expected_order(expected: (Amount, Currency)) -> OrderView {
    OrderView {
        expected: Some(expected),
        amount_mode: AmountMode::Fixed,
        state: OrderState::AwaitingPayment,
        fulfilled: false,
        refunded: false,
        refunded_amount: None,
        test: false,
        amount_paid: None,
        snapshot_at: None,
    }
}

diesel::define_sql_function! {
    /// Migration 21: a cached prepared statement, not one parsed per call.
    #[allow(clippy::too_many_arguments)] // the function's own parameters
    fn payhook_pay(
        attempt: Nullable<Text>,
        commit_by: Nullable<BigInt>,
        expect_state: Nullable<Text>,
        expect_amount: Nullable<BigInt>,
        expect_currency: Nullable<Text>,
        expect_test: Nullable<Bool>,
        received_at: BigInt,
        project: Text,
        orderid: Text,
        identity: Nullable<Text>,
        outcome: Text,
        reason: Nullable<Text>,
        http_status: Integer,
        method: Text,
        raw_query: Text,
        remote_addr: Nullable<Text>,
        amount: Nullable<BigInt>,
        currency: Nullable<Text>,
        checked: Bool,
        payload: Text,
        raw_length: BigInt,
        raw_sha256: Text,
    ) -> Nullable<BigInt>;
}

/// The messages `payhook_pay` raises (migration 21), rolling back.
const NOT_AS_ASSUMED: &str = "payhook_pay: order not as assumed";
const TOO_LATE: &str = "payhook_pay: too late to commit";

fn raised(e: &diesel::result::Error, message: &str) -> bool {
    matches!(e, diesel::result::Error::DatabaseError(_, info) if info.message() == message)
}

/// Inserts are written as `.eq()` tuples rather than from `Insertable` structs:
/// diesel never caches a statement that may hold `DEFAULT` (an `Option` field of
/// a struct), and a prepared, cached statement is half the database's work here.
fn insert_callback(conn: &mut Conn<'_>, row: &NewCallback<'_>) -> QueryResult<i64> {
    let reason = row.reason.map(no_nul);
    dispatch!(conn, c => diesel::insert_into(callbacks::table)
        .values((
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
        ))
        .returning(callbacks::id)
        .get_result(c))
}

/// A reason quotes the request at most through `printable`, which escapes
/// control characters; this keeps a NUL that slipped through any other way from
/// turning a rejection into a database error (PostgreSQL `TEXT` holds no NUL).
fn no_nul(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        text.replace('\0', "\\x00").into()
    } else {
        text.into()
    }
}

fn record_in(
    conn: &mut Conn<'_>,
    attempt: &Attempt<'_>,
    lock: Option<OrderLock<'_>>,
    decide: &dyn Fn(Seen<'_>) -> Step,
) -> QueryResult<Processed> {
    let now = now_millis();
    let callback = attempt.callback;
    let project = callback.project_id();
    let identity = hex::encode(callback.identity());
    let orderid = callback.orderid();

    // The guard: only one transaction at a time can hold an identity; a second
    // one waits here until the first commits, then sees the conflict.
    let (fresh, order) = match conn {
        Conn::Pg(_) => claim_in_one_statement(conn, &identity, now, attempt.id, project, lock)?,
        Conn::Sqlite(_) => claim_in_statements(conn, &identity, now, attempt.id, project, lock)?,
    };
    if !fresh {
        if let Some(earlier) = own_earlier_attempt(conn, callback, &identity, attempt.id)? {
            return Ok(earlier);
        }
    }

    let view = order.as_ref().map(order_view);
    let Step {
        decision,
        http_status,
    } = decide(if fresh {
        Seen::First(view.as_ref())
    } else {
        Seen::Again
    });

    let outcome = decision.outcome;
    let mut row = attempt.row(now, &identity, &decision, http_status);
    // The same delivery again: its first row holds it whole, so this one is
    // kept bounded, like a rejected request, and points there.
    let bounded;
    if !fresh {
        bounded = attempt.meta.raw.stored(Some(attempt.keep));
        row.raw_query = &bounded.text;
        row.raw_truncated = bounded.truncated;
        row.raw_unsigned = None;
        row.duplicate_of = first_of_delivery(conn, project, &identity)?;
    }

    // `payhook_pay` keeps a request whole: one with anything beside its
    // signed part is written statement by statement.
    let one_statement =
        decision.progress.is_none() && decision.flag.is_none() && row.raw_unsigned.is_none();
    let callback_id = match (&*conn, &decision.change, orderid, &decision.notify) {
        // The paid path, PostgreSQL: every write in one statement (one round trip).
        (Conn::Pg(_), OrderChange::Fulfil { checked }, Some(orderid), Some(notice))
            if one_statement =>
        {
            fulfil_in_one_statement(conn, &row, callback, *checked, orderid, &notice.payload)?
        }
        _ => {
            let callback_id = insert_callback(conn, &row)?;
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
    if fresh && !decision.keeps_claim() {
        dispatch!(conn, c => diesel::delete(answered::table.find(&identity)).execute(c))?;
    } else if let Some(flag) = decision.flag.filter(|_| fresh) {
        // Kept with the guard for a retry of this request (see
        // `own_earlier_attempt`), so that its alert is not lost. Only flagged
        // callbacks pay this round trip; the paid path has no flag.
        dispatch!(conn, c => diesel::update(answered::table.find(&identity))
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

/// The first row stored of a delivery (its identity), which holds it whole.
fn first_of_delivery(
    conn: &mut Conn<'_>,
    project: &str,
    identity: &str,
) -> QueryResult<Option<i64>> {
    dispatch!(conn, c => callbacks::table
        .filter(callbacks::identity.eq(identity))
        .filter(callbacks::duplicate_of.is_null())
        .filter(callbacks::project_id.eq(project))
        .order(callbacks::id.asc())
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
/// outcome instead of `duplicate`, and writes nothing.
///
/// The callback row is the first one answered 200 for this identity at the
/// guard's time: rows before it were answered otherwise (their guard was
/// removed), rows after it are duplicates, which wait for this guard.
fn own_earlier_attempt(
    conn: &mut Conn<'_>,
    callback: &dyn Recorded,
    identity: &str,
    attempt: &str,
) -> QueryResult<Option<Processed>> {
    let guard: Option<(i64, Option<String>)> = dispatch!(conn, c => answered::table
        .find(identity)
        .filter(answered::attempt.eq(attempt))
        .select((answered::answered_at, answered::flag))
        .first(c)
        .optional())?;
    let Some((answered_at, flag)) = guard else {
        return Ok(None);
    };
    let (callback_id, outcome, reason): (i64, String, Option<String>) = dispatch!(conn, c => {
        let rows = callbacks::table
            .filter(callbacks::project_id.eq(callback.project_id()))
            .filter(callbacks::identity.eq(identity))
            .filter(callbacks::received_at.eq(answered_at))
            .filter(callbacks::http_status.eq(200))
            .into_boxed();
        let rows = match callback.orderid() {
            Some(orderid) => rows.filter(callbacks::orderid.eq(orderid)),
            None => rows.filter(callbacks::orderid.is_null()),
        };
        rows.order(callbacks::id.asc())
            .select((callbacks::id, callbacks::outcome, callbacks::reason))
            .first(c)
    })?;
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

/// Where a Checkout order stands after the snapshot just applied (§9).
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

/// `claim_in_one_statement`, statement by statement, on SQLite: its immediate
/// transaction already holds the database's write lock, so the order is read,
/// not locked row by row.
fn claim_in_statements(
    conn: &mut Conn<'_>,
    identity: &str,
    now: i64,
    attempt: &str,
    project: &str,
    lock: Option<OrderLock<'_>>,
) -> QueryResult<(bool, Option<OrderRow>)> {
    let fresh = dispatch!(conn, c => diesel::insert_into(answered::table)
        .values((
            answered::identity.eq(identity),
            answered::answered_at.eq(now),
            answered::attempt.eq(attempt),
        ))
        .on_conflict_do_nothing()
        .execute(c))?
        == 1;
    let Some(lock) = lock.filter(|_| fresh) else {
        return Ok((fresh, None));
    };
    if lock.create {
        ensure_order_row(conn, project, lock.orderid, now)?;
    }
    let order = dispatch!(conn, c => orders::table
        .filter(orders::project_id.eq(project))
        .filter(orders::orderid.eq(lock.orderid))
        .select(OrderRow::as_select())
        .first(c)
        .optional())?;
    Ok((true, order))
}

/// What `payhook_claim` (migration 9) answers: whether the guard was taken,
/// and the order locked, when there is one.
#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    fresh: bool,
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
    /// Migration 27.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    o_amount_mode: Option<String>,
}

/// The guard and the order lock (`insert` into `answered`, then the order
/// `FOR UPDATE`, created first when `lock.create`) as one call of the
/// `payhook_claim` function: one round trip instead of two.
fn claim_in_one_statement(
    conn: &mut Conn<'_>,
    identity: &str,
    now: i64,
    attempt: &str,
    project: &str,
    lock: Option<OrderLock<'_>>,
) -> QueryResult<(bool, Option<OrderRow>)> {
    use diesel::sql_types::{BigInt, Bool, Nullable, Text};
    let Conn::Pg(c) = conn else {
        unreachable!("only called on PostgreSQL")
    };
    let claimed = diesel::sql_query("SELECT * FROM payhook_claim($1, $2, $3, $4, $5, $6)")
        .bind::<Text, _>(identity)
        .bind::<BigInt, _>(now)
        .bind::<Text, _>(attempt)
        .bind::<Text, _>(project)
        .bind::<Nullable<Text>, _>(lock.map(|l| l.orderid))
        .bind::<Bool, _>(lock.is_some_and(|l| l.create))
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
    Ok((claimed.fresh, order))
}

/// The same writes as `insert_callback` + `apply_change(Fulfil)` + the outbox
/// row, as one call of `payhook_pay` (migration 21) inside the transaction that
/// already holds the guard and the order: one round trip for four statements.
fn fulfil_in_one_statement(
    conn: &mut Conn<'_>,
    row: &NewCallback<'_>,
    callback: &dyn Recorded,
    checked: bool,
    orderid: &str,
    payload: &str,
) -> QueryResult<i64> {
    let Conn::Pg(c) = conn else {
        unreachable!("only called on PostgreSQL")
    };
    let paid = PaidWrites {
        row,
        callback,
        checked,
        orderid,
        payload,
    };
    paid.run(c, None)?.ok_or_else(|| {
        diesel::result::Error::DeserializationError("payhook_pay wrote nothing".into())
    })
}

/// What `payhook_pay` writes for a paid callback.
struct PaidWrites<'a> {
    row: &'a NewCallback<'a>,
    callback: &'a dyn Recorded,
    checked: bool,
    orderid: &'a str,
    payload: &'a str,
}

/// What a first delivery's one statement checks before it writes: its guard
/// and the order payhook decided from.
struct Assumed<'a> {
    attempt: &'a str,
    commit_by: Option<i64>,
    order: &'a OrderView,
}

impl PaidWrites<'_> {
    /// The same writes and checks, owned, for a batch (`payhook_pay_batch`).
    fn job(&self, assumed: &Assumed<'_>) -> PayJob {
        let row = self.row;
        let expected = assumed.order.expected.as_ref();
        PayJob {
            attempt: assumed.attempt.to_string(),
            commit_by: assumed.commit_by,
            expect_state: assumed.order.state.as_str(),
            expect_amount: expected.map(|(amount, _)| amount.minor_units()),
            expect_currency: expected.map(|(_, currency)| currency.as_str().to_string()),
            expect_test: assumed.order.test,
            received_at: row.received_at,
            project: self.callback.project_id().to_string(),
            orderid: self.orderid.to_string(),
            identity: row.identity.unwrap_or_default().to_string(),
            outcome: row.outcome.to_string(),
            reason: row.reason.map(no_nul).map(|r| r.into_owned()),
            http_status: row.http_status,
            method: row.method.to_string(),
            raw_query: row.raw_query.to_string(),
            remote_addr: row.remote_addr.map(str::to_string),
            api: self.callback.api(),
            amount: self.callback.amount().map(Amount::minor_units),
            currency: self.callback.currency().map(|c| c.as_str().to_string()),
            checked: self.checked,
            payload: self.payload.to_string(),
            raw_length: row.raw_length,
            raw_sha256: row.raw_sha256.to_string(),
        }
    }

    /// The call; with `assumed`, the guard and the order check first. `None`:
    /// the guard was held, nothing was written.
    fn run(
        &self,
        c: &mut diesel::PgConnection,
        assumed: Option<&Assumed<'_>>,
    ) -> QueryResult<Option<i64>> {
        let row = self.row;
        let reason = row.reason.map(no_nul);
        let expected = assumed.and_then(|a| a.order.expected.as_ref());
        diesel::select(payhook_pay(
            assumed.map(|a| a.attempt),
            assumed.and_then(|a| a.commit_by),
            assumed.map(|a| a.order.state.as_str()),
            expected.map(|(amount, _)| amount.minor_units()),
            expected.map(|(_, currency)| currency.as_str()),
            assumed.map(|a| a.order.test),
            row.received_at,
            self.callback.project_id(),
            self.orderid,
            row.identity,
            row.outcome,
            reason.as_deref(),
            row.http_status,
            row.method,
            row.raw_query,
            row.remote_addr,
            self.callback.amount().map(Amount::minor_units),
            self.callback.currency().map(Currency::as_str),
            self.checked,
            self.payload,
            row.raw_length,
            row.raw_sha256,
        ))
        .get_result(c)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::domain::{
        decide_callback, order_to_lock, FieldValue, Fields, OrderCheck, PaymentKind, Proof, Rules,
        VerifiedCallback,
    };
    use crate::store::DatabaseConfig;

    const RULES: Rules = Rules {
        allow_test_payments: false,
        order_check: OrderCheck::Registered,
    };

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
    /// transaction with the same attempt id committed (a lost COMMIT reply).
    fn attempt(store: &Store, callback: &VerifiedCallback, attempt: &str) -> Processed {
        store
            .transaction(|conn| {
                let meta = meta();
                let raw = meta.raw.stored(None);
                let decide = |seen: Seen<'_>| Step {
                    decision: decide_callback(callback, seen, RULES),
                    http_status: 200,
                };
                let lock = order_to_lock(callback, RULES);
                let attempt = Attempt {
                    callback,
                    meta: &meta,
                    raw: &raw,
                    keep: 2048,
                    id: attempt,
                };
                record_in(conn, &attempt, lock, &decide)
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
        let first = attempt(&store, &fulfil, "attempt-1");
        assert_eq!(first.outcome, Outcome::Fulfilled);
        let retry = attempt(&store, &fulfil, "attempt-1");
        assert_eq!(retry, first, "the retry reports the stored outcome");
        assert_eq!(rows(&store), 1, "and stores nothing more");
        let other = attempt(&store, &fulfil, "attempt-2");
        assert_eq!(other.outcome, Outcome::Duplicate, "another request");
        assert_eq!(rows(&store), 2);

        let mismatch = paid("B", "1");
        let first = attempt(&store, &mismatch, "attempt-3");
        assert_eq!(first.outcome, Outcome::AmountMismatch);
        assert_eq!(first.flag, Some(Flag::AmountMismatch));
        let retry = attempt(&store, &mismatch, "attempt-3");
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
