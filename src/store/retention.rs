//! What anyone on the internet can make the journal hold is bounded in time
//! as well as in size per request: rejected requests are kept for
//! `PAYHOOK_REJECTED_RETENTION`, duplicates (a genuine delivery sent again, by
//! the gateway or by anyone holding it) for `PAYHOOK_DUPLICATE_RETENTION`,
//! captured gateway notifications (nothing verified them) for
//! `PAYHOOK_CAPTURED_RETENTION`, then deleted. The first row of every
//! verified delivery is never deleted: it is what proves a fulfilment; nor is
//! a captured notification an operator confirmed, for the same reason.

use std::time::Duration;

use diesel::sql_types::BigInt;
use diesel::RunQueryDsl;
use tokio::task::JoinHandle;

use super::{now_millis, Conn, Store, StoreError};

/// Rows per statement: each batch is its own short statement, so the pruner
/// never holds a lock (or SQLite's one connection) for long.
pub const PRUNE_BATCH: i64 = 1000;

/// The raw request of an operator's confirmation of captured notification N
/// is this prefix and N (`Pipeline::confirm` writes it; the pruner keeps the
/// notification a confirmation names).
pub const CONFIRMATION_PREFIX: &str = "confirm=";

/// What the pruner deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pruned {
    Rejected,
    Duplicates,
    /// Unless an operator confirmed it.
    Captured,
}

impl Pruned {
    /// The rows' predicate, written as a literal: it is that of a partial
    /// index (`callbacks_rejected_received`, migration `000004_bounded_journal`;
    /// `callbacks_duplicate_received`, migration `000024_bounded_duplicates`;
    /// `callbacks_captured_received`, migration `000029_captured_retention`),
    /// and with a bound parameter there PostgreSQL could not use the index in
    /// a generic plan.
    fn predicate(self) -> String {
        match self {
            Pruned::Rejected => "outcome = 'rejected'".into(),
            Pruned::Duplicates => "outcome = 'duplicate'".into(),
            // The confirmation is a row of the same order (`callbacks_order`).
            Pruned::Captured => format!(
                "outcome = 'captured' AND NOT EXISTS (SELECT 1 FROM callbacks c \
                 WHERE c.project_id = callbacks.project_id AND c.orderid = callbacks.orderid \
                 AND c.method = 'CONFIRM' AND c.raw_query = '{CONFIRMATION_PREFIX}' || callbacks.id)"
            ),
        }
    }

    fn what(self) -> &'static str {
        match self {
            Pruned::Rejected => "rejected requests",
            Pruned::Duplicates => "duplicates",
            Pruned::Captured => "captured gateway notifications",
        }
    }

    /// `FOR UPDATE SKIP LOCKED` on PostgreSQL: instances pruning at the same
    /// moment take different rows instead of queueing behind each other.
    fn sql(self, postgres: bool) -> String {
        let (cutoff, limit, lock) = match postgres {
            true => ("$1", "$2", " FOR UPDATE SKIP LOCKED"),
            false => ("?", "?", ""),
        };
        format!(
            "DELETE FROM callbacks WHERE id IN (SELECT id FROM callbacks WHERE {} \
             AND received_at < {cutoff} LIMIT {limit}{lock})",
            self.predicate()
        )
    }
}

impl Store {
    /// Deletes rejected rows received before `cutoff` (milliseconds since the
    /// epoch), `batch` rows per statement until none is left; returns how many.
    pub fn prune_rejected(&self, cutoff: i64, batch: i64) -> Result<usize, StoreError> {
        self.prune(Pruned::Rejected, cutoff, batch)
    }

    /// Deletes `what` received before `cutoff` (milliseconds since the epoch),
    /// `batch` rows per statement until none is left; returns how many.
    pub fn prune(&self, what: Pruned, cutoff: i64, batch: i64) -> Result<usize, StoreError> {
        let (pg, sqlite) = (what.sql(true), what.sql(false));
        let mut total = 0;
        loop {
            let deleted = self.with_conn(|conn| {
                Ok(match conn {
                    Conn::Pg(c) => diesel::sql_query(&pg)
                        .bind::<BigInt, _>(cutoff)
                        .bind::<BigInt, _>(batch)
                        .execute(c)?,
                    Conn::Sqlite(c) => diesel::sql_query(&sqlite)
                        .bind::<BigInt, _>(cutoff)
                        .bind::<BigInt, _>(batch)
                        .execute(c)?,
                })
            })?;
            total += deleted;
            if (deleted as i64) < batch {
                return Ok(total);
            }
            // A long backlog: let waiting callbacks have the connection first.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Prunes `what` now and then every tenth of its retention (at least every
/// second, at most every hour). Every instance may run it: the batches do not
/// collide.
pub fn spawn_pruner(store: Store, what: Pruned, retention: Duration) -> JoinHandle<()> {
    let every = (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let cutoff = now_millis().saturating_sub(retention_ms);
            let store = store.clone();
            match tokio::task::spawn_blocking(move || store.prune(what, cutoff, PRUNE_BATCH)).await
            {
                Ok(Ok(0)) => {}
                Ok(Ok(deleted)) => tracing::info!(
                    deleted,
                    retention_s = retention.as_secs(),
                    "{} past retention deleted",
                    what.what()
                ),
                Ok(Err(e)) => tracing::warn!(error = %e, "pruning {} failed", what.what()),
                Err(e) => tracing::warn!(error = %e, "pruning {} panicked", what.what()),
            }
        }
    })
}
