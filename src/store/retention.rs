//! Rejected requests are kept for `PAYHOOK_REJECTED_RETENTION`, then deleted,
//! so that what anyone on the internet can make the journal hold is bounded in
//! time as well as in size per request. Verified callbacks are never deleted.

use std::time::Duration;

use diesel::sql_types::BigInt;
use diesel::RunQueryDsl;

use super::{now_millis, Conn, Store, StoreError};

/// Rows per statement: each batch is its own short statement, so the pruner
/// never holds a lock (or SQLite's one connection) for long.
pub const PRUNE_BATCH: i64 = 1000;

// `outcome = 'rejected'` is written as a literal, the predicate of the partial
// index `callbacks_rejected_received` (migration 4): with a bound parameter
// there, PostgreSQL could not use the index in a generic plan.
//
// `FOR UPDATE SKIP LOCKED`: instances pruning at the same moment take
// different rows instead of queueing behind each other.
const PG_PRUNE: &str = "DELETE FROM callbacks WHERE id IN (\
     SELECT id FROM callbacks WHERE outcome = 'rejected' AND received_at < $1 \
     LIMIT $2 FOR UPDATE SKIP LOCKED)";
const SQLITE_PRUNE: &str = "DELETE FROM callbacks WHERE id IN (\
     SELECT id FROM callbacks WHERE outcome = 'rejected' AND received_at < ? \
     LIMIT ?)";

impl Store {
    /// Deletes rejected rows received before `cutoff` (milliseconds since the
    /// epoch), `batch` rows per statement until none is left; returns how many.
    pub fn prune_rejected(&self, cutoff: i64, batch: i64) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let deleted = self.with_conn(|conn| {
                Ok(match conn {
                    Conn::Pg(c) => diesel::sql_query(PG_PRUNE)
                        .bind::<BigInt, _>(cutoff)
                        .bind::<BigInt, _>(batch)
                        .execute(c)?,
                    Conn::Sqlite(c) => diesel::sql_query(SQLITE_PRUNE)
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

/// Prunes now and then every tenth of the retention (at least every second, at
/// most every hour). Every instance may run it: the batches do not collide.
pub fn spawn_pruner(store: Store, retention: Duration) {
    let every = (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let cutoff = now_millis().saturating_sub(retention_ms);
            let store = store.clone();
            match tokio::task::spawn_blocking(move || store.prune_rejected(cutoff, PRUNE_BATCH))
                .await
            {
                Ok(Ok(0)) => {}
                Ok(Ok(deleted)) => tracing::info!(
                    deleted,
                    retention_s = retention.as_secs(),
                    "rejected requests past retention deleted"
                ),
                Ok(Err(e)) => tracing::warn!(error = %e, "pruning rejected requests failed"),
                Err(e) => tracing::warn!(error = %e, "pruning rejected requests panicked"),
            }
        }
    });
}
