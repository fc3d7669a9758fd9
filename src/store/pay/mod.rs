//! The paid fast path on PostgreSQL, one contract for every way it writes.
//!
//! A first paid delivery is decided by the pipeline against the order it
//! assumes (`domain::AssumedOrder`) before any row is read, and handed here.
//! If the decision fits the paid writes ([`PaidWrite::fitting`]), it is
//! written in one statement that holds only while the order is as assumed:
//! alone (`payhook_pay`), or batched with others by writer threads
//! (`payhook_pay_batch`, [`batch`]). Either way the database's side is migration `000028_one_paid_contract`: one definition of
//! "as assumed" (`payhook_as_assumed`), one set of writes
//! (`payhook_paid_rows`), and one signal for "not as assumed", matched here by
//! SQLSTATE and constraint name. The general path (`callbacks.rs`) writes a
//! decision that fits with the same call, inside its own transaction.
//!
//! When the order is not as assumed, or anything else stops this path, the
//! store says so ([`FirstPaid::GeneralPath`]), nothing is written, and the
//! pipeline decides again on the general path, under the order's lock.

mod batch;

use diesel::pg::PgConnection;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text};
use diesel::RunQueryDsl;

pub(super) use batch::PayBatcher;

use super::incoming::{no_nul, Decided, Incoming, Processed};
use super::models::NewCallback;
use super::reconnect::retry_elsewhere;
use super::{now_millis, Backend, Conn, Store, StoreError};
use crate::domain::{Amount, AssumedOrder, Currency, Decision, OrderChange, Recorded};
use batch::Batched;

/// What became of a first paid delivery handed to the fast path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstPaid {
    /// Written and committed.
    Stored(Processed),
    /// Nothing written: the order was not as assumed, the decision does not
    /// fit, the guard was already held (a duplicate, or this request's own
    /// earlier attempt), or the backend has no fast path. Decide it again on
    /// the general path (`Store::record`), which tells which.
    GeneralPath,
}

impl Store {
    /// Writes a first paid delivery decided against `assumed`, if the order
    /// is still exactly that when the statement runs.
    pub fn pay_as_assumed(
        &self,
        incoming: &Incoming<'_>,
        assumed: &AssumedOrder<'_>,
        decided: &Decided,
    ) -> Result<FirstPaid, StoreError> {
        let Decided {
            decision,
            http_status,
        } = decided;
        if !matches!(self.backend, Backend::Postgres(_)) {
            return Ok(FirstPaid::GeneralPath);
        }
        let callback = incoming.callback();
        let identity = hex::encode(callback.identity());
        let row = incoming.row(now_millis(), &identity, decision, *http_status);
        let Some(write) = PaidWrite::fitting(decision, &row, callback, assumed.orderid) else {
            return Ok(FirstPaid::GeneralPath);
        };
        self.still_awaited()?;
        let guard = Guard {
            attempt: incoming.attempt().to_string(),
            commit_by: self.commit_by_millis(),
        };
        let batched = match &self.pay_batcher {
            Some(batcher) => batcher.submit(guard.clone(), write.clone(), self.deadline()),
            None => Batched::Unsettled,
        };
        let written = match batched {
            Batched::Paid(callback_id) => Ok(Some(callback_id)),
            Batched::GuardHeld | Batched::NotAsAssumed => return Ok(FirstPaid::GeneralPath),
            Batched::TooLate => return Err(StoreError::TimedOut(self.statement_timeout)),
            Batched::NoConnection => {
                return Err(StoreError::Unavailable(
                    "timed out waiting for a database connection".into(),
                ))
            }
            Batched::Unsettled => self.with_conn(|conn| {
                let Conn::Pg(c) = conn else {
                    unreachable!("only called on PostgreSQL")
                };
                Ok(write.run(c, &guard)?)
            }),
        };
        match written {
            Ok(Some(callback_id)) => Ok(FirstPaid::Stored(Processed {
                callback_id,
                outcome: decision.outcome,
                reason: decision.reason.clone(),
                flag: None,
                flood: false,
            })),
            // The guard was held: a duplicate, or this request's own attempt
            // whose reply was lost; the general path tells which.
            Ok(None) => Ok(FirstPaid::GeneralPath),
            Err(StoreError::Query(e)) if violated(&e, NOT_AS_ASSUMED) || retry_elsewhere(&e) => {
                Ok(FirstPaid::GeneralPath)
            }
            Err(StoreError::Query(e)) if violated(&e, TOO_LATE) => {
                Err(StoreError::TimedOut(self.statement_timeout))
            }
            Err(e) => Err(e),
        }
    }
}

/// The constraint names migration `000028_one_paid_contract` raises with
/// `check_violation`, rolling the statement back: the order was not as
/// assumed; the caller's commit bound passed.
const NOT_AS_ASSUMED: &str = "payhook_as_assumed";
const TOO_LATE: &str = "payhook_commit_by";

fn violated(e: &DieselError, constraint: &str) -> bool {
    matches!(e, DieselError::DatabaseError(DatabaseErrorKind::CheckViolation, info)
        if info.constraint_name() == Some(constraint))
}

diesel::define_sql_function! {
    /// Migrations `000028_one_paid_contract` and `000032_guard_names_row`: a
    /// cached prepared statement, not one parsed per call.
    #[allow(clippy::too_many_arguments)] // the function's own parameters
    fn payhook_pay(
        attempt: Nullable<Text>,
        commit_by: Nullable<BigInt>,
        callback_id: Nullable<BigInt>,
        received_at: BigInt,
        project: Text,
        orderid: Text,
        identity: Text,
        outcome: Text,
        reason: Nullable<Text>,
        http_status: Integer,
        method: Text,
        raw_query: Text,
        remote_addr: Nullable<Text>,
        api: Text,
        amount: Nullable<BigInt>,
        currency: Nullable<Text>,
        checked: Bool,
        payload: Text,
        raw_length: BigInt,
        raw_sha256: Text,
    ) -> Nullable<BigInt>;
}

/// What a first delivery's statement checks before it writes: the guard it
/// takes, and the last moment it may commit (unix ms; see
/// `Store::commit_by_millis`).
#[derive(Debug, Clone)]
pub(super) struct Guard {
    pub attempt: String,
    pub commit_by: Option<i64>,
}

/// One paid callback's writes, owned so that a writer thread can take them:
/// the arguments of `payhook_paid_rows`.
#[derive(Debug, Clone)]
pub(super) struct PaidWrite {
    pub received_at: i64,
    pub project: String,
    pub orderid: String,
    pub identity: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub http_status: i32,
    pub method: String,
    pub raw_query: String,
    pub remote_addr: Option<String>,
    pub api: &'static str,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub checked: bool,
    pub payload: String,
    pub raw_length: i64,
    pub raw_sha256: String,
}

impl PaidWrite {
    /// The paid writes that store `decision` for `row`, when they alone can:
    /// a fulfilment with its event to the shop, nothing else to record on the
    /// order (no Checkout snapshot, no flag), the duplicate guard kept, and the
    /// request kept whole (`payhook_paid_rows` stores no unsigned part).
    /// `None`: the general path writes it statement by statement. The one
    /// test of whether a decision can take the one-statement path.
    pub(super) fn fitting(
        decision: &Decision,
        row: &NewCallback<'_>,
        callback: &dyn Recorded,
        orderid: &str,
    ) -> Option<PaidWrite> {
        let OrderChange::Fulfil { checked } = decision.change else {
            return None;
        };
        let notice = decision.notify.as_ref()?;
        let fits = decision.progress.is_none()
            && decision.flag.is_none()
            && decision.keeps_claim()
            && row.raw_unsigned.is_none();
        fits.then(|| PaidWrite {
            received_at: row.received_at,
            project: callback.project_id().to_string(),
            orderid: orderid.to_string(),
            identity: row.identity.unwrap_or_default().to_string(),
            outcome: row.outcome.to_string(),
            reason: row.reason.map(|r| no_nul(r).into_owned()),
            http_status: row.http_status,
            method: row.method.to_string(),
            raw_query: row.raw_query.to_string(),
            remote_addr: row.remote_addr.map(str::to_string),
            api: callback.api(),
            amount: callback.amount().map(Amount::minor_units),
            currency: callback.currency().map(|c| Currency::as_str(c).to_string()),
            checked,
            payload: notice.payload.clone(),
            raw_length: row.raw_length,
            raw_sha256: row.raw_sha256.to_string(),
        })
    }

    /// Inside the general path's transaction, which holds the guard and the
    /// order already (PostgreSQL only), as the callback `callback_id` the
    /// guard names: that id.
    pub(super) fn write_in(
        &self,
        conn: &mut Conn<'_>,
        callback_id: i64,
    ) -> diesel::QueryResult<i64> {
        let Conn::Pg(c) = conn else {
            unreachable!("only called on PostgreSQL")
        };
        self.call(c, None, Some(callback_id))?
            .ok_or_else(|| DieselError::DeserializationError("payhook_pay wrote nothing".into()))
    }

    /// `payhook_pay` for a first delivery on its own: the guard and the order
    /// check first (`None`: the guard was held, nothing written).
    pub(super) fn run(
        &self,
        c: &mut PgConnection,
        guard: &Guard,
    ) -> diesel::QueryResult<Option<i64>> {
        self.call(c, Some(guard), None)
    }

    fn call(
        &self,
        c: &mut PgConnection,
        guard: Option<&Guard>,
        callback_id: Option<i64>,
    ) -> diesel::QueryResult<Option<i64>> {
        diesel::select(payhook_pay(
            guard.map(|g| g.attempt.as_str()),
            guard.and_then(|g| g.commit_by),
            callback_id,
            self.received_at,
            &self.project,
            &self.orderid,
            &self.identity,
            &self.outcome,
            self.reason.as_deref(),
            self.http_status,
            &self.method,
            &self.raw_query,
            self.remote_addr.as_deref(),
            self.api,
            self.amount,
            self.currency.as_deref(),
            self.checked,
            &self.payload,
            self.raw_length,
            &self.raw_sha256,
        ))
        .get_result(c)
    }
}
