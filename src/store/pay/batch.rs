//! First deliveries of paid callbacks on PostgreSQL, written several at a time.
//!
//! Under load, many paid callbacks wait for the database at once. Each alone
//! costs PostgreSQL a round trip, a function call and a commit. A few writer
//! threads instead take everything queued whenever they are free and write it
//! with one call of `payhook_pay_batch` (migration `000028_one_paid_contract`):
//! one round trip and one commit for the batch. A callback that arrives alone
//! is a batch of one, written at once: nothing waits for a batch to fill.
//!
//! Correctness does not rest on this queue. It only holds requests still
//! waiting for their answer, the database checks each element as `payhook_pay`
//! does (the same `payhook_as_assumed`), and whatever a batch cannot settle
//! goes back to its request, which writes it alone.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, Pool};
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text};
use diesel::RunQueryDsl;

use super::{Guard, PaidWrite};
use crate::store::{now_millis, reconnect};

/// The most callbacks one call writes: it bounds the statement's size and how
/// long one call holds the orders it has locked.
const MAX_BATCH: usize = 32;

/// The id `payhook_pay_batch` gives an element whose order was not as assumed.
const NOT_AS_ASSUMED: i64 = -1;

diesel::define_sql_function! {
    /// Migration `000028_one_paid_contract`: a cached prepared statement, like
    /// `payhook_pay`.
    #[allow(clippy::too_many_arguments)] // the function's own parameters
    fn payhook_pay_batch(
        commit_by: Nullable<BigInt>,
        attempt: Array<Text>,
        received_at: Array<BigInt>,
        project: Array<Text>,
        orderid: Array<Text>,
        identity: Array<Text>,
        outcome: Array<Text>,
        reason: Array<Nullable<Text>>,
        http_status: Array<Integer>,
        method: Array<Text>,
        raw_query: Array<Text>,
        remote_addr: Array<Nullable<Text>>,
        api: Array<Text>,
        amount: Array<Nullable<BigInt>>,
        currency: Array<Nullable<Text>>,
        checked: Array<Bool>,
        payload: Array<Text>,
        raw_length: Array<BigInt>,
        raw_sha256: Array<Text>,
    ) -> Array<Nullable<BigInt>>;
}

/// One first delivery queued for a batch: its guard and its writes.
#[derive(Debug, Clone)]
pub(super) struct PayJob {
    pub guard: Guard,
    pub write: PaidWrite,
}

/// What became of a queued job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Batched {
    /// Written: the callback's id.
    Paid(i64),
    /// The guard was already held; nothing written.
    GuardHeld,
    /// The order was not as assumed; nothing written.
    NotAsAssumed,
    /// Not settled by a batch (its call failed, or another job in it was for
    /// the same order): the request writes it alone.
    Unsettled,
    /// Its commit bound passed before it could be written; nothing written.
    TooLate,
    /// No connection came within the acquire time-out (or its bound); nothing
    /// written. Answered as the request's own wait for one would have been.
    NoConnection,
}

struct Queued {
    job: PayJob,
    reply: SyncSender<Batched>,
}

/// The queue and its writer threads, started on first use.
pub(in crate::store) struct PayBatcher {
    pool: Pool<ConnectionManager<PgConnection>>,
    writers: usize,
    acquire_timeout: Duration,
    queue: OnceLock<Sender<Queued>>,
}

impl PayBatcher {
    pub(in crate::store) fn new(
        pool: Pool<ConnectionManager<PgConnection>>,
        writers: usize,
        acquire_timeout: Duration,
    ) -> PayBatcher {
        PayBatcher {
            pool,
            writers: writers.max(1),
            acquire_timeout,
            queue: OnceLock::new(),
        }
    }

    /// Queues `job` and waits for its outcome until `wait_until` (`None`: as
    /// long as it takes; every call is bounded by the statement time-out).
    pub(super) fn submit(
        &self,
        guard: Guard,
        write: PaidWrite,
        wait_until: Option<Instant>,
    ) -> Batched {
        let (reply, outcome) = mpsc::sync_channel(1);
        let job = PayJob { guard, write };
        if self.queue().send(Queued { job, reply }).is_err() {
            return Batched::Unsettled;
        }
        let received = match wait_until {
            Some(until) => outcome.recv_timeout(until.saturating_duration_since(Instant::now())),
            None => outcome.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match received {
            Ok(batched) => batched,
            // The job may still be written, but not after its commit bound.
            Err(RecvTimeoutError::Timeout) => Batched::TooLate,
            Err(RecvTimeoutError::Disconnected) => Batched::Unsettled,
        }
    }

    fn queue(&self) -> &Sender<Queued> {
        self.queue.get_or_init(|| {
            let (sender, receiver) = mpsc::channel();
            let receiver = Arc::new(Mutex::new(receiver));
            for n in 0..self.writers {
                let (pool, receiver) = (self.pool.clone(), Arc::clone(&receiver));
                let acquire = self.acquire_timeout;
                let spawned = std::thread::Builder::new()
                    .name(format!("payhook-pay-{n}"))
                    .spawn(move || write_batches(&pool, acquire, &receiver));
                if let Err(e) = spawned {
                    tracing::warn!(error = %e, "cannot start a payment writer");
                }
            }
            sender
        })
    }
}

/// A writer thread: takes whatever is queued, writes it, until every sender
/// is gone (the store was dropped).
fn write_batches(
    pool: &Pool<ConnectionManager<PgConnection>>,
    acquire: Duration,
    queue: &Mutex<Receiver<Queued>>,
) {
    while let Some(batch) = next_batch(queue) {
        write_batch(pool, acquire, batch);
    }
}

/// The first queued job (waiting for one), and whatever else is queued
/// behind it, up to `MAX_BATCH`.
fn next_batch(queue: &Mutex<Receiver<Queued>>) -> Option<Vec<Queued>> {
    let receiver = queue.lock().unwrap_or_else(PoisonError::into_inner);
    let first = receiver.recv().ok()?;
    let mut batch = vec![first];
    while batch.len() < MAX_BATCH {
        match receiver.try_recv() {
            Ok(queued) => batch.push(queued),
            Err(_) => break,
        }
    }
    Some(batch)
}

fn write_batch(
    pool: &Pool<ConnectionManager<PgConnection>>,
    acquire: Duration,
    batch: Vec<Queued>,
) {
    let now = now_millis();
    let (taken, left_out) = plan(batch, now);
    for (queued, batched) in left_out {
        // A request that stopped waiting dropped its receiver: nothing to tell.
        let _ = queued.reply.send(batched);
    }
    if taken.is_empty() {
        return;
    }
    // No longer than the pool's own wait, nor than the batch can still commit.
    let commit_by = taken.iter().filter_map(|q| q.job.guard.commit_by).min();
    let wait = match commit_by {
        Some(by) => acquire.min(Duration::from_millis(u64::try_from(by - now).unwrap_or(0))),
        None => acquire,
    };
    let mut conn = match pool.get_timeout(wait) {
        Ok(conn) => conn,
        Err(error) => {
            tracing::debug!(jobs = taken.len(), %error, "no connection for a batch");
            for queued in taken {
                let _ = queued.reply.send(Batched::NoConnection);
            }
            return;
        }
    };
    let written = run(&mut conn, &taken, commit_by).map_err(|e| {
        reconnect::discard_if_read_only(&mut conn, &e);
        e.to_string()
    });
    match written {
        Ok(ids) if ids.len() == taken.len() => {
            for (queued, id) in taken.into_iter().zip(ids) {
                let batched = match id {
                    None => Batched::GuardHeld,
                    Some(NOT_AS_ASSUMED) => Batched::NotAsAssumed,
                    Some(id) => Batched::Paid(id),
                };
                let _ = queued.reply.send(batched);
            }
        }
        outcome => {
            // Each request writes its own callback alone and meets (and
            // reports) its own error; if the call did commit and only its reply
            // was lost, each finds its own attempt stored.
            let error = outcome
                .err()
                .unwrap_or_else(|| "wrong number of ids".into());
            tracing::debug!(jobs = taken.len(), %error, "batch not written; each alone");
            for queued in taken {
                let _ = queued.reply.send(Batched::Unsettled);
            }
        }
    }
}

/// Which jobs a batch writes, sorted by order so that concurrent batches lock
/// orders in the same sequence, and which it leaves out: past their commit
/// bound, or a second job for an order already in the batch.
fn plan(mut batch: Vec<Queued>, now: i64) -> (Vec<Queued>, Vec<(Queued, Batched)>) {
    batch.sort_by(|a, b| order(a).cmp(&order(b)));
    let mut taken: Vec<Queued> = Vec::with_capacity(batch.len());
    let mut left_out = Vec::new();
    for queued in batch {
        if queued.job.guard.commit_by.is_some_and(|by| by <= now) {
            left_out.push((queued, Batched::TooLate));
        } else if taken.last().is_some_and(|t| order(t) == order(&queued)) {
            left_out.push((queued, Batched::Unsettled));
        } else {
            taken.push(queued);
        }
    }
    (taken, left_out)
}

/// The order a job pays: what a batch sorts by and holds once.
fn order(queued: &Queued) -> (&str, &str) {
    (&queued.job.write.project, &queued.job.write.orderid)
}

/// One call for the batch, which commits only before `commit_by` (the
/// earliest of its jobs'); per job, its callback's id, `NOT_AS_ASSUMED`, or
/// `None` (guard held).
fn run(
    conn: &mut PgConnection,
    taken: &[Queued],
    commit_by: Option<i64>,
) -> diesel::QueryResult<Vec<Option<i64>>> {
    let jobs: Vec<&PaidWrite> = taken.iter().map(|q| &q.job.write).collect();
    let column = |f: fn(&PaidWrite) -> &str| jobs.iter().map(|j| f(j)).collect::<Vec<&str>>();
    let optional = |f: fn(&PaidWrite) -> Option<&str>| {
        jobs.iter().map(|j| f(j)).collect::<Vec<Option<&str>>>()
    };
    let attempts: Vec<&str> = taken.iter().map(|q| q.job.guard.attempt.as_str()).collect();
    diesel::select(payhook_pay_batch(
        commit_by,
        attempts,
        jobs.iter().map(|j| j.received_at).collect::<Vec<_>>(),
        column(|j| &j.project),
        column(|j| &j.orderid),
        column(|j| &j.identity),
        column(|j| &j.outcome),
        optional(|j| j.reason.as_deref()),
        jobs.iter().map(|j| j.http_status).collect::<Vec<_>>(),
        column(|j| &j.method),
        column(|j| &j.raw_query),
        optional(|j| j.remote_addr.as_deref()),
        column(|j| j.api),
        jobs.iter().map(|j| j.amount).collect::<Vec<_>>(),
        optional(|j| j.currency.as_deref()),
        jobs.iter().map(|j| j.checked).collect::<Vec<_>>(),
        column(|j| &j.payload),
        jobs.iter().map(|j| j.raw_length).collect::<Vec<_>>(),
        column(|j| &j.raw_sha256),
    ))
    .get_result(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(orderid: &str, commit_by: Option<i64>) -> (Queued, Receiver<Batched>) {
        let (reply, outcome) = mpsc::sync_channel(1);
        let job = PayJob {
            guard: Guard {
                attempt: "a".into(),
                commit_by,
            },
            write: PaidWrite {
                received_at: 0,
                project: "1".into(),
                orderid: orderid.into(),
                identity: format!("id-{orderid}"),
                outcome: "fulfilled".into(),
                reason: None,
                http_status: 200,
                method: "GET".into(),
                raw_query: String::new(),
                remote_addr: None,
                api: "classic",
                amount: Some(100),
                currency: Some("EUR".into()),
                checked: true,
                payload: String::new(),
                raw_length: 0,
                raw_sha256: String::new(),
            },
        };
        (Queued { job, reply }, outcome)
    }

    #[test]
    fn a_batch_is_sorted_by_order_and_holds_each_order_once() {
        let (batch, _receivers): (Vec<Queued>, Vec<_>) = ["C", "A", "B", "A"]
            .iter()
            .map(|id| queued(id, None))
            .unzip();
        let (taken, left_out) = plan(batch, 0);
        let orders: Vec<&str> = taken.iter().map(|q| q.job.write.orderid.as_str()).collect();
        assert_eq!(orders, ["A", "B", "C"]);
        let left: Vec<(&str, Batched)> = left_out
            .iter()
            .map(|(q, b)| (q.job.write.orderid.as_str(), *b))
            .collect();
        assert_eq!(left, [("A", Batched::Unsettled)]);
    }

    #[test]
    fn a_job_past_its_commit_bound_is_left_out() {
        let (batch, _receivers): (Vec<Queued>, Vec<_>) = [
            ("A", Some(999)),
            ("B", Some(1000)),
            ("C", Some(1001)),
            ("D", None),
        ]
        .iter()
        .map(|(id, by)| queued(id, *by))
        .unzip();
        let (taken, left_out) = plan(batch, 1000);
        let orders: Vec<&str> = taken.iter().map(|q| q.job.write.orderid.as_str()).collect();
        assert_eq!(orders, ["C", "D"]);
        let left: Vec<(&str, Batched)> = left_out
            .iter()
            .map(|(q, b)| (q.job.write.orderid.as_str(), *b))
            .collect();
        assert_eq!(left, [("A", Batched::TooLate), ("B", Batched::TooLate)]);
    }
}
