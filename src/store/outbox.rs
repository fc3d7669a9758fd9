//! The outbox as the delivery worker, the events feed and the operator's
//! command line use it: claim what is due (one worker per event, several
//! instances on one database), record every attempt, look events up, send one
//! again. Events are written by the callback's transaction (`callbacks.rs`).

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable};
use serde::Serialize;

use super::schema::{feed_head, outbox, outbox_attempts};
use super::{dispatch, now_millis, Store, StoreError};

/// Where an event is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventState {
    /// Not acknowledged yet (or never tried: no `SHOP_NOTIFY_URL`).
    Pending,
    /// A 2xx answered it.
    Delivered,
    /// `SHOP_NOTIFY_MAX_AGE` passed without a 2xx.
    Dead,
}

impl EventState {
    pub const ALL: [EventState; 3] = [EventState::Pending, EventState::Delivered, EventState::Dead];

    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Pending => "pending",
            EventState::Delivered => "delivered",
            EventState::Dead => "dead",
        }
    }

    pub fn parse(text: &str) -> Option<EventState> {
        EventState::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// One outbox row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = outbox)]
pub struct EventRow {
    /// The event id (`webhook-id`), increasing.
    pub id: i64,
    /// The outcome that wrote it (`fulfilled`, `amount_mismatch`, ...).
    pub kind: String,
    pub project_id: String,
    pub orderid: Option<String>,
    pub callback_id: i64,
    /// The decision's figures as JSON (`domain::decision::notification`).
    pub payload: String,
    /// Attempts made, all rounds together.
    pub attempts: i32,
    pub state: String,
    /// Failed attempts since it last became pending: the backoff step.
    pub failures: i32,
    pub next_attempt_at: i64,
    pub delivered_at: Option<i64>,
    pub dead_at: Option<i64>,
    pub created_at: i64,
    pub requeued_at: Option<i64>,
    /// The event's place in the feed, handed out once its transaction has
    /// committed ([`Store::feed`]); `None` until then.
    pub feed_seq: Option<i64>,
}

impl EventRow {
    pub fn state(&self) -> Option<EventState> {
        EventState::parse(&self.state)
    }

    /// Where `SHOP_NOTIFY_MAX_AGE` counts from: its creation, or the last time
    /// an operator sent it again.
    pub fn age_from(&self) -> i64 {
        self.requeued_at.unwrap_or(self.created_at)
    }
}

/// One delivery attempt as stored.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = outbox_attempts)]
pub struct AttemptRow {
    #[serde(skip)]
    pub id: i64,
    #[serde(rename = "at", serialize_with = "as_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub attempted_at: i64,
    pub duration_ms: i64,
    /// The shop's HTTP status; `null` when there was none (see `error`).
    #[serde(rename = "status")]
    pub status_code: Option<i32>,
    pub error: Option<String>,
}

/// What an attempt came to, as the worker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub at: i64,
    pub duration_ms: i64,
    pub status_code: Option<u16>,
    pub error: Option<String>,
}

/// What the event becomes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterAttempt {
    Delivered,
    Retry { at: i64 },
    Dead,
}

/// Which events a listing returns, in id order.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only ids above this one (0: from the beginning).
    pub after: i64,
    pub limit: i64,
    /// Only events written by these outcomes (`None`: any).
    pub kinds: Option<Vec<String>>,
    pub state: Option<EventState>,
    /// Only the events of this order: (project id, order id).
    pub order: Option<(String, String)>,
}

/// One page of the feed: events placed after `after`, in feed order.
#[derive(Debug, Clone, Default)]
pub struct FeedPage {
    /// Only positions above this one (0: from the beginning).
    pub after: i64,
    pub limit: i64,
    /// Only events written by these outcomes (`None`: any).
    pub kinds: Option<Vec<String>>,
}

/// Gives the committed events that have no place yet the next positions, in id
/// order. Sequencers take turns on `feed_head`'s row (PostgreSQL) or the write
/// lock (SQLite); each sees every earlier one's positions committed, so the
/// positions readers can see always form an unbroken prefix: a reader that
/// passed position P never later finds an event placed below P. At most
/// 10 000 a pass, so a read never waits on more; the rest go to the next.
const SEQUENCE: &str = "UPDATE outbox SET feed_seq = placed.base + placed.n \
     FROM (SELECT s.id, row_number() OVER (ORDER BY s.id) AS n, h.feed_seq AS base \
           FROM (SELECT id FROM outbox WHERE feed_seq IS NULL ORDER BY id LIMIT 10000) AS s, \
                feed_head AS h WHERE h.id = 1) AS placed \
     WHERE outbox.id = placed.id";

/// How many events wait, and since when the oldest does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backlog {
    pub pending: i64,
    /// Milliseconds since the epoch: the oldest pending event's creation (or
    /// its requeue).
    pub oldest: Option<i64>,
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

#[derive(QueryableByName)]
struct BacklogRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    oldest: Option<i64>,
}

// Due: pending, its time has come, nobody holds an unexpired claim on it, and
// no older event of the same order is still pending (events of one order are
// delivered in creation order). `'pending'` is a literal, the predicate of the
// partial indexes (migration `000007_outbox_delivery`).
//
// PostgreSQL: `FOR UPDATE SKIP LOCKED`, so instances claiming at the same time
// take different events instead of queueing behind each other. SQLite's
// immediate transaction already holds the one write lock.
const DUE: &str = "FROM outbox o \
     WHERE o.state = 'pending' AND o.next_attempt_at <= {now} \
       AND (o.claimed_until IS NULL OR o.claimed_until <= {now}) \
       AND NOT EXISTS (SELECT 1 FROM outbox p \
           WHERE p.state = 'pending' AND p.project_id = o.project_id \
             AND p.orderid = o.orderid AND p.id < o.id) \
     ORDER BY o.id LIMIT {limit}";

fn due_sql(pg: bool, lock: bool) -> String {
    let (now, limit) = if pg { ("$1", "$2") } else { ("?1", "?2") };
    let mut sql = format!(
        "SELECT o.id {}",
        DUE.replace("{now}", now).replace("{limit}", limit)
    );
    if pg && lock {
        sql.push_str(" FOR UPDATE OF o SKIP LOCKED");
    }
    sql
}

const BACKLOG: &str = "SELECT count(*) AS n, min(COALESCE(requeued_at, created_at)) AS oldest \
     FROM outbox WHERE state = 'pending'";

fn as_rfc3339<S: serde::Serializer>(millis: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&super::models::rfc3339(*millis))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Store {
    /// Claims up to `limit` due events for `worker` until `now + lease`, oldest
    /// first. Another worker (this instance's or another's) does not get them
    /// until the claim is released by [`Store::record_attempt`] or expires.
    pub fn claim_events(
        &self,
        worker: &str,
        now: i64,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<EventRow>, StoreError> {
        let pg = self.backend_name() == "postgres";
        // A plain read first: most polls find nothing due, and then take no
        // write lock (SQLite has one, shared with the callbacks).
        let probe = due_sql(pg, false);
        let any_due = self.with_conn(|mut conn| {
            Ok(dispatch!(&mut conn, c => diesel::sql_query(probe.as_str())
                .bind::<BigInt, _>(now)
                .bind::<BigInt, _>(1i64)
                .load::<Id>(c))?)
        })?;
        if any_due.is_empty() {
            return Ok(Vec::new());
        }
        let claim = due_sql(pg, true);
        let until = now.saturating_add(millis(lease));
        self.transaction(|conn| {
            let ids: Vec<i64> = dispatch!(conn, c => diesel::sql_query(claim.as_str())
                .bind::<BigInt, _>(now)
                .bind::<BigInt, _>(limit)
                .load::<Id>(c))?
            .into_iter()
            .map(|r| r.id)
            .collect();
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            dispatch!(conn, c => diesel::update(outbox::table.filter(outbox::id.eq_any(&ids)))
                .set((
                    outbox::claimed_by.eq(worker),
                    outbox::claimed_until.eq(until),
                ))
                .execute(c))?;
            dispatch!(conn, c => outbox::table
                .filter(outbox::id.eq_any(&ids))
                .order(outbox::id.asc())
                .select(EventRow::as_select())
                .load(c))
        })
    }

    /// Stores one attempt and what the event becomes, releasing `worker`'s
    /// claim. Returns false when the claim was no longer `worker`'s (it expired
    /// and another worker took the event): the attempt is kept in the history,
    /// the event is left to the other worker.
    pub fn record_attempt(
        &self,
        event_id: i64,
        worker: &str,
        attempt: &Attempt,
        next: AfterAttempt,
    ) -> Result<bool, StoreError> {
        let error = attempt.error.as_deref().map(|e| e.replace('\0', ""));
        self.transaction(|conn| {
            dispatch!(conn, c => diesel::insert_into(outbox_attempts::table)
                .values((
                    outbox_attempts::event_id.eq(event_id),
                    outbox_attempts::attempted_at.eq(attempt.at),
                    outbox_attempts::duration_ms.eq(attempt.duration_ms),
                    outbox_attempts::status_code.eq(attempt.status_code.map(i32::from)),
                    outbox_attempts::error.eq(error.as_deref()),
                ))
                .execute(c))?;
            let ours = outbox::table
                .filter(outbox::id.eq(event_id))
                .filter(outbox::claimed_by.eq(worker))
                .filter(outbox::state.eq(EventState::Pending.as_str()));
            let release = (
                outbox::attempts.eq(outbox::attempts + 1),
                outbox::claimed_by.eq(None::<String>),
                outbox::claimed_until.eq(None::<i64>),
            );
            let updated = match next {
                AfterAttempt::Delivered => dispatch!(conn, c => diesel::update(ours)
                    .set((
                        release,
                        outbox::state.eq(EventState::Delivered.as_str()),
                        outbox::delivered_at.eq(attempt.at),
                        outbox::failures.eq(0),
                    ))
                    .execute(c))?,
                AfterAttempt::Retry { at } => dispatch!(conn, c => diesel::update(ours)
                    .set((
                        release,
                        outbox::failures.eq(outbox::failures + 1),
                        outbox::next_attempt_at.eq(at),
                    ))
                    .execute(c))?,
                AfterAttempt::Dead => dispatch!(conn, c => diesel::update(ours)
                    .set((
                        release,
                        outbox::state.eq(EventState::Dead.as_str()),
                        outbox::dead_at.eq(attempt.at),
                        outbox::failures.eq(outbox::failures + 1),
                    ))
                    .execute(c))?,
            };
            Ok(updated == 1)
        })
    }

    /// Events in id order (the feed; `payhook events list --state`, `payhook
    /// orders show`).
    pub fn events(&self, filter: &EventFilter) -> Result<Vec<EventRow>, StoreError> {
        // A boxed query belongs to one backend: built in each arm.
        macro_rules! load {
            ($c:expr) => {{
                let mut query = outbox::table
                    .filter(outbox::id.gt(filter.after))
                    .order(outbox::id.asc())
                    .limit(filter.limit)
                    .select(EventRow::as_select())
                    .into_boxed();
                if let Some(kinds) = &filter.kinds {
                    query = query.filter(outbox::kind.eq_any(kinds.clone()));
                }
                if let Some(state) = filter.state {
                    query = query.filter(outbox::state.eq(state.as_str()));
                }
                if let Some((project, orderid)) = &filter.order {
                    query = query
                        .filter(outbox::project_id.eq(project.clone()))
                        .filter(outbox::orderid.eq(orderid.clone()));
                }
                query.load($c)
            }};
        }
        self.with_conn(|mut conn| Ok(dispatch!(&mut conn, c => load!(c))?))
    }

    /// One event with every attempt, oldest first.
    pub fn event(&self, id: i64) -> Result<Option<(EventRow, Vec<AttemptRow>)>, StoreError> {
        self.with_conn(|mut conn| {
            let row: Option<EventRow> = dispatch!(&mut conn, c => outbox::table
                .find(id)
                .select(EventRow::as_select())
                .first(c)
                .optional())?;
            let Some(row) = row else { return Ok(None) };
            let attempts = dispatch!(&mut conn, c => outbox_attempts::table
                .filter(outbox_attempts::event_id.eq(id))
                .order(outbox_attempts::id.asc())
                .select(AttemptRow::as_select())
                .load(c))?;
            Ok(Some((row, attempts)))
        })
    }

    /// Sends an event again (`POST /api/v1/events/{id}/retry`, `payhook events
    /// retry`): a delivered or dead one becomes pending, due now, with a fresh
    /// backoff and a fresh `SHOP_NOTIFY_MAX_AGE`; a pending one is made due now
    /// (a claim in progress is left alone). Same id, so the shop's dedupe on
    /// `webhook-id` recognises it. `None`: no such event.
    pub fn retry_event(&self, id: i64) -> Result<Option<EventRow>, StoreError> {
        let now = now_millis();
        self.transaction(|conn| {
            let this = outbox::table.filter(outbox::id.eq(id));
            let pending = EventState::Pending.as_str();
            let revived = dispatch!(conn, c => diesel::update(this.filter(outbox::state.ne(pending)))
                .set((
                    outbox::state.eq(pending),
                    outbox::failures.eq(0),
                    outbox::requeued_at.eq(now),
                    outbox::next_attempt_at.eq(now),
                    outbox::delivered_at.eq(None::<i64>),
                    outbox::dead_at.eq(None::<i64>),
                    outbox::claimed_by.eq(None::<String>),
                    outbox::claimed_until.eq(None::<i64>),
                ))
                .execute(c))?;
            if revived == 0 {
                dispatch!(conn, c => diesel::update(this.filter(outbox::state.eq(pending)))
                    .set(outbox::next_attempt_at.eq(now))
                    .execute(c))?;
            }
            dispatch!(conn, c => outbox::table
                .find(id)
                .select(EventRow::as_select())
                .first(c)
                .optional())
        })
    }

    /// The pending events (for the outbox gauges).
    pub fn outbox_backlog(&self) -> Result<Backlog, StoreError> {
        self.with_conn(|mut conn| {
            let row: BacklogRow =
                dispatch!(&mut conn, c => diesel::sql_query(BACKLOG).get_result(c))?;
            Ok(Backlog {
                pending: row.n,
                oldest: row.oldest,
            })
        })
    }

    /// A page of the feed: first the committed events not yet placed get
    /// their positions (see [`SEQUENCE`]), then the page is read by position.
    /// An event enters the feed at the first read after its commit.
    pub fn feed(&self, page: &FeedPage) -> Result<Vec<EventRow>, StoreError> {
        self.transaction(|conn| {
            // Takes the sequencer's turn before anything is read: the next
            // statement's snapshot then holds every earlier sequencer's commit.
            dispatch!(conn, c => diesel::update(feed_head::table.find(1))
                .set(feed_head::feed_seq.eq(feed_head::feed_seq))
                .execute(c))?;
            let placed = dispatch!(conn, c => diesel::sql_query(SEQUENCE).execute(c))?;
            dispatch!(conn, c => diesel::update(feed_head::table.find(1))
                .set(feed_head::feed_seq.eq(feed_head::feed_seq + placed as i64))
                .execute(c))?;
            macro_rules! load {
                ($c:expr) => {{
                    let mut query = outbox::table
                        .filter(outbox::feed_seq.gt(page.after))
                        .order(outbox::feed_seq.asc())
                        .limit(page.limit)
                        .select(EventRow::as_select())
                        .into_boxed();
                    if let Some(kinds) = &page.kinds {
                        query = query.filter(outbox::kind.eq_any(kinds.clone()));
                    }
                    query.load($c)
                }};
            }
            dispatch!(conn, c => load!(c))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_due_query_locks_only_on_postgres_and_binds_in_each_dialect() {
        assert!(due_sql(true, true).ends_with("FOR UPDATE OF o SKIP LOCKED"));
        assert!(!due_sql(true, false).contains("FOR UPDATE"));
        assert!(!due_sql(false, true).contains("FOR UPDATE"));
        assert!(
            due_sql(true, true).contains("next_attempt_at <= $1")
                && due_sql(true, true).contains("LIMIT $2")
        );
        assert!(
            due_sql(false, true).contains("claimed_until <= ?1")
                && due_sql(false, true).contains("LIMIT ?2")
        );
    }

    #[test]
    fn states_round_trip() {
        for state in EventState::ALL {
            assert_eq!(EventState::parse(state.as_str()), Some(state));
        }
        assert_eq!(EventState::parse("sent"), None);
    }
}
