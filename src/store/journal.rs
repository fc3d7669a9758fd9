//! The callback journal as an operator reads it: filtered lists, one stored
//! request with its raw bytes, and pruning old rows.

use diesel::prelude::*;
use serde::Serialize;

use super::models::{rfc3339, CallbackRow};
use super::schema::{callbacks, orders};
use super::{dispatch, Store, StoreError};
use crate::domain::{OrderState, Outcome};

/// Which stored callbacks to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct JournalFilter {
    pub outcome: Option<Outcome>,
    pub orderid: Option<String>,
    /// Received at or after this time (unix milliseconds).
    pub since: Option<i64>,
    /// `classic` or `checkout`.
    pub api: Option<String>,
    /// Only rows with a smaller id (the next page, newest first).
    pub before: Option<i64>,
    pub limit: i64,
}

/// One stored request, whole: what `payhook callbacks show` prints.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = callbacks)]
pub struct JournalEntry {
    pub id: i64,
    pub received_at: i64,
    pub project_id: Option<String>,
    pub orderid: Option<String>,
    pub outcome: String,
    pub reason: Option<String>,
    pub http_status: i32,
    pub method: String,
    /// Escaped as `store::raw::escape` writes it.
    pub raw_query: String,
    pub raw_length: Option<i64>,
    pub raw_sha256: Option<String>,
    pub raw_truncated: bool,
    /// `classic` (a query or form) or `checkout` (`X-Paysera-*` headers, an
    /// empty line, the JSON body).
    pub api: String,
    /// When its personal data was erased (`raw_query` is then the masked
    /// request, `facts` what was decoded from it).
    pub erased_at: Option<i64>,
    /// The decoded fields at erasure, personal ones masked (JSON).
    pub facts: Option<String>,
    /// What came beside the signed part, bounded, escaped like `raw_query`;
    /// never printed (it may hold buyer data the signature does not cover).
    #[serde(skip)]
    pub raw_unsigned: Option<String>,
}

impl JournalEntry {
    pub fn received_at_rfc3339(&self) -> String {
        rfc3339(self.received_at)
    }
}

/// Journal rows older than a cutoff, split by whether pruning may delete them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PruneCount {
    /// Rows that would be (or were) deleted.
    pub deletable: i64,
    /// Older rows kept because their order is paid, in review or refunded.
    pub kept: i64,
}

/// Rows one pruning statement deletes at most.
pub const PRUNE_JOURNAL_BATCH: i64 = 1000;

/// The order states whose whole story is kept, however old.
const KEPT_STATES: [OrderState; 3] = [
    OrderState::Paid,
    OrderState::NeedsReview,
    OrderState::Refunded,
];

impl Store {
    pub fn journal(&self, filter: &JournalFilter) -> Result<Vec<CallbackRow>, StoreError> {
        self.with_conn(|mut conn| {
            Ok(dispatch!(&mut conn, c => {
                let mut query = callbacks::table
                    .order(callbacks::id.desc())
                    .limit(filter.limit)
                    .select(CallbackRow::as_select())
                    .into_boxed();
                if let Some(outcome) = filter.outcome {
                    query = query.filter(callbacks::outcome.eq(outcome.as_str()));
                }
                if let Some(orderid) = &filter.orderid {
                    query = query.filter(callbacks::orderid.eq(orderid.clone()));
                }
                if let Some(since) = filter.since {
                    query = query.filter(callbacks::received_at.ge(since));
                }
                if let Some(api) = &filter.api {
                    query = query.filter(callbacks::api.eq(api.clone()));
                }
                if let Some(before) = filter.before {
                    query = query.filter(callbacks::id.lt(before));
                }
                query.load(c)?
            }))
        })
    }

    pub fn journal_entry(&self, id: i64) -> Result<Option<JournalEntry>, StoreError> {
        self.with_conn(|mut conn| {
            Ok(dispatch!(&mut conn, c => callbacks::table
                .find(id)
                .select(JournalEntry::as_select())
                .first(c)
                .optional())?)
        })
    }

    /// Ids of the stored callbacks received since `since` (oldest first),
    /// with the given outcome when one is given: what a replay runs again.
    pub fn journal_ids_since(
        &self,
        since: i64,
        outcome: Option<Outcome>,
    ) -> Result<Vec<i64>, StoreError> {
        self.with_conn(|mut conn| {
            Ok(dispatch!(&mut conn, c => {
                let mut query = callbacks::table
                    .filter(callbacks::received_at.ge(since))
                    .order(callbacks::id.asc())
                    .select(callbacks::id)
                    .into_boxed();
                if let Some(outcome) = outcome {
                    query = query.filter(callbacks::outcome.eq(outcome.as_str()));
                }
                query.load(c)?
            }))
        })
    }

    /// Deletes (or, with `dry_run`, counts) journal rows received before
    /// `cutoff`, keeping every row of an order that is paid, in review or
    /// refunded: those are the evidence of money that moved. Deletes in
    /// batches of [`PRUNE_JOURNAL_BATCH`], each its own transaction and each
    /// starting where the last ended, so that years of history are pruned
    /// without one long transaction and without reading a kept row twice.
    pub fn prune_journal(&self, cutoff: i64, dry_run: bool) -> Result<PruneCount, StoreError> {
        let states: Vec<&str> = KEPT_STATES.iter().map(|s| s.as_str()).collect();
        let kept_orders = || {
            orders::table
                .filter(orders::state.eq_any(states.clone()))
                .select(orders::orderid.nullable())
        };
        let (total, kept): (i64, i64) = self.with_conn(|mut conn| {
            let old = callbacks::table.filter(callbacks::received_at.lt(cutoff));
            // A real run counts what it deletes instead.
            let total = match dry_run {
                true => dispatch!(&mut conn, c => old.count().get_result(c))?,
                false => 0,
            };
            let kept = dispatch!(&mut conn, c => old
                .filter(callbacks::orderid.eq_any(kept_orders()))
                .count()
                .get_result(c))?;
            Ok((total, kept))
        })?;
        let mut deleted = 0;
        let mut from = i64::MIN;
        let mut more = !dry_run;
        while more {
            // Rows without an order id (rejections, SMS) are never kept.
            let due: Vec<(i64, i64)> = self.with_conn(|mut conn| {
                Ok(dispatch!(&mut conn, c => callbacks::table
                    .filter(callbacks::received_at.ge(from))
                    .filter(callbacks::received_at.lt(cutoff))
                    .filter(callbacks::orderid.is_null().or(diesel::dsl::not(
                        callbacks::orderid.eq_any(kept_orders()),
                    )))
                    .order(callbacks::received_at.asc())
                    .limit(PRUNE_JOURNAL_BATCH)
                    .select((callbacks::id, callbacks::received_at))
                    .load(c))?)
            })?;
            let ids: Vec<i64> = due.iter().map(|(id, _)| *id).collect();
            deleted += self.with_conn(|mut conn| {
                Ok(dispatch!(&mut conn, c => diesel::delete(
                    callbacks::table.filter(callbacks::id.eq_any(&ids))
                ).execute(c))?)
            })?;
            more = due.len() as i64 == PRUNE_JOURNAL_BATCH;
            if let (true, Some((_, at))) = (more, due.last()) {
                from = *at;
                // A long backlog: let waiting callbacks have the connections first.
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        Ok(PruneCount {
            deletable: if dry_run {
                total - kept
            } else {
                deleted as i64
            },
            kept,
        })
    }
}
