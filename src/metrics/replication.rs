//! The PostgreSQL replication gauges: how many synchronous standbys the
//! primary has, and how far behind the slowest of them replays. Read from the
//! database by a task of their own, never on a callback's path.
//!
//! Exported only on PostgreSQL: SQLite has no standby, and a series that is
//! not there cannot page anyone about it (the alert rules rely on that).

use std::time::Duration;

use prometheus::{Gauge, IntGauge};
use tokio::task::JoinHandle;

use crate::store::{Replication, Store};

/// How often the gauges are read again: a scrape interval's worth, and one
/// cheap query per instance.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct ReplicationGauges {
    sync_standbys: IntGauge,
    lag_seconds: Gauge,
}

impl ReplicationGauges {
    pub(super) fn new() -> ReplicationGauges {
        ReplicationGauges {
            sync_standbys: IntGauge::new(
                "payhook_db_sync_standbys",
                "Standbys with sync_state sync or quorum in the database server's pg_stat_replication (0 on a server that is itself a standby)",
            )
            .expect("valid metric"),
            lag_seconds: Gauge::new(
                "payhook_db_replication_lag_seconds",
                "Largest replay lag among those standbys, in seconds (0 when none, or caught up)",
            )
            .expect("valid metric"),
        }
    }

    pub(super) fn collectors(&self) -> [Box<dyn prometheus::core::Collector>; 2] {
        [
            Box::new(self.sync_standbys.clone()),
            Box::new(self.lag_seconds.clone()),
        ]
    }

    pub fn set(&self, replication: &Replication) {
        let synchronous = replication.synchronous_standbys().count();
        self.sync_standbys
            .set(i64::try_from(synchronous).unwrap_or(i64::MAX));
        self.lag_seconds.set(replication.synchronous_lag_seconds());
    }
}

/// Reads the replication now and then every [`REFRESH_EVERY`], through the
/// store's `bounded` so that a stalled server holds no thread past the
/// statement bound. A failed read keeps the last values: the database's own
/// errors have their metric and alert.
pub(super) fn spawn(store: Store, gauges: ReplicationGauges) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(REFRESH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match store.bounded(|store| store.replication()).await {
                Ok(Some(replication)) => gauges.set(&replication),
                Ok(None) => return,
                Err(e) => tracing::debug!(error = %e, "replication gauges not refreshed"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Standby;

    #[test]
    fn the_gauges_count_synchronous_standbys_and_their_largest_lag() {
        let gauges = ReplicationGauges::new();
        let standby = |name: &str, sync_state: &str, lag| Standby {
            name: name.into(),
            state: Some("streaming".into()),
            sync_state: Some(sync_state.into()),
            replay_lag_seconds: lag,
        };
        let mut replication = Replication {
            in_recovery: false,
            synchronous_commit: "on".into(),
            synchronous_standby_names: "ANY 1 (a, b)".into(),
            standbys: vec![
                standby("a", "quorum", Some(2.5)),
                standby("b", "quorum", None),
                standby("c", "async", Some(60.0)),
            ],
        };
        gauges.set(&replication);
        assert_eq!(gauges.sync_standbys.get(), 2);
        assert_eq!(gauges.lag_seconds.get(), 2.5);
        replication.standbys.clear();
        gauges.set(&replication);
        assert_eq!(gauges.sync_standbys.get(), 0);
        assert_eq!(gauges.lag_seconds.get(), 0.0);
    }
}
