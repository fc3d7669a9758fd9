//! What a PostgreSQL server says of its replication: whether it is a standby,
//! what a COMMIT waits for, and the standbys streaming from it. Read by
//! `payhook check` and by the replication gauges; SQLite replicates nothing.
//!
//! Only read here, never judged: whether a setup is durable enough is the
//! reader's call (`check`, the alert rules).

use diesel::sql_types::{Bool, Double, Nullable, Text};
use diesel::{QueryableByName, RunQueryDsl};

use super::{Backend, Conn, Store, StoreError};

/// The `synchronous_commit` levels at which a COMMIT returns only once a
/// synchronous standby has it on disk (`on`) or applied (`remote_apply`).
/// `remote_write` waits only for the standby's operating system to have it.
pub const REMOTE_DURABLE_COMMITS: [&str; 2] = ["on", "remote_apply"];

/// The server's side of replication, as one session of payhook's sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Replication {
    /// `pg_is_in_recovery()`: a standby, which takes no writes.
    pub in_recovery: bool,
    /// The session's value, the one payhook's commits run with (a role's or a
    /// database's `SET` included).
    pub synchronous_commit: String,
    pub synchronous_standby_names: String,
    /// `pg_stat_replication`, by name.
    pub standbys: Vec<Standby>,
}

/// One row of `pg_stat_replication`.
#[derive(Debug, Clone, PartialEq)]
pub struct Standby {
    /// Its `application_name`, what `synchronous_standby_names` lists.
    pub name: String,
    /// `None`: hidden from a role without `pg_read_all_stats` (`pg_monitor`
    /// has it), as `sync_state` and the lag are.
    pub state: Option<String>,
    pub sync_state: Option<String>,
    /// `None` when hidden, or when the server has no recent measure (it
    /// reports none once an idle standby has caught up).
    pub replay_lag_seconds: Option<f64>,
}

impl Standby {
    /// A commit can wait for it: `sync`, or one of a quorum (`ANY n (…)`).
    pub fn synchronous(&self) -> bool {
        matches!(self.sync_state.as_deref(), Some("sync" | "quorum"))
    }

    /// The role may not see its state.
    pub fn hidden(&self) -> bool {
        self.sync_state.is_none()
    }
}

impl Replication {
    /// The standbys a commit can wait for.
    pub fn synchronous_standbys(&self) -> impl Iterator<Item = &Standby> {
        self.standbys.iter().filter(|s| s.synchronous())
    }

    /// Whether a COMMIT waits until a synchronous standby has it on disk too.
    pub fn remote_durable(&self) -> bool {
        !self.in_recovery
            && self.synchronous_standbys().next().is_some()
            && REMOTE_DURABLE_COMMITS.contains(&self.synchronous_commit.as_str())
    }

    /// The largest replay lag among the synchronous standbys, in seconds; 0
    /// when there is none, or no recent measure (caught up).
    pub fn synchronous_lag_seconds(&self) -> f64 {
        self.synchronous_standbys()
            .filter_map(|s| s.replay_lag_seconds)
            .fold(0.0, f64::max)
    }
}

const SERVER: &str = "SELECT pg_is_in_recovery() AS in_recovery, \
     current_setting('synchronous_commit') AS synchronous_commit, \
     current_setting('synchronous_standby_names') AS synchronous_standby_names";

// Every WAL sender is listed, a running pg_basebackup's too (state `backup`).
const STANDBYS: &str = "SELECT coalesce(application_name, '') AS name, state, sync_state, \
     extract(epoch FROM replay_lag)::float8 AS replay_lag_seconds \
     FROM pg_stat_replication ORDER BY application_name, pid";

#[derive(QueryableByName)]
struct ServerRow {
    #[diesel(sql_type = Bool)]
    in_recovery: bool,
    #[diesel(sql_type = Text)]
    synchronous_commit: String,
    #[diesel(sql_type = Text)]
    synchronous_standby_names: String,
}

#[derive(QueryableByName)]
struct StandbyRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Nullable<Text>)]
    state: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    sync_state: Option<String>,
    #[diesel(sql_type = Nullable<Double>)]
    replay_lag_seconds: Option<f64>,
}

impl Store {
    /// Whether the backend has replication to report (PostgreSQL).
    pub fn has_replication(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// The server's replication, read on one connection; `None` on SQLite.
    pub fn replication(&self) -> Result<Option<Replication>, StoreError> {
        if !self.has_replication() {
            return Ok(None);
        }
        self.with_conn(|conn| {
            let Conn::Pg(c) = conn else {
                return Ok(None);
            };
            let server: ServerRow = diesel::sql_query(SERVER).get_result(c)?;
            let standbys: Vec<StandbyRow> = diesel::sql_query(STANDBYS).load(c)?;
            Ok(Some(Replication {
                in_recovery: server.in_recovery,
                synchronous_commit: server.synchronous_commit,
                synchronous_standby_names: server.synchronous_standby_names,
                standbys: standbys
                    .into_iter()
                    .map(|row| Standby {
                        name: row.name,
                        state: row.state,
                        sync_state: row.sync_state,
                        replay_lag_seconds: row.replay_lag_seconds,
                    })
                    .collect(),
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standby(name: &str, sync_state: Option<&str>, lag: Option<f64>) -> Standby {
        Standby {
            name: name.into(),
            state: sync_state.map(|_| "streaming".into()),
            sync_state: sync_state.map(Into::into),
            replay_lag_seconds: lag,
        }
    }

    fn primary(commit: &str, standbys: Vec<Standby>) -> Replication {
        Replication {
            in_recovery: false,
            synchronous_commit: commit.into(),
            synchronous_standby_names: "s1".into(),
            standbys,
        }
    }

    #[test]
    fn only_a_synchronous_standby_and_a_waiting_commit_are_remote_durable() {
        let sync = || vec![standby("s1", Some("sync"), Some(0.5))];
        assert!(primary("on", sync()).remote_durable());
        assert!(primary("remote_apply", sync()).remote_durable());
        for commit in ["local", "off", "remote_write"] {
            assert!(!primary(commit, sync()).remote_durable(), "{commit}");
        }
        let quorum = vec![standby("s1", Some("quorum"), None)];
        assert!(primary("on", quorum).remote_durable());
        for not_waited_for in [Some("async"), Some("potential"), None] {
            let r = primary("on", vec![standby("s1", not_waited_for, None)]);
            assert!(!r.remote_durable(), "{not_waited_for:?}");
        }
        assert!(!primary("on", vec![]).remote_durable());
        let standby_server = Replication {
            in_recovery: true,
            ..primary("on", sync())
        };
        assert!(!standby_server.remote_durable());
    }

    #[test]
    fn the_lag_is_the_largest_among_synchronous_standbys() {
        let r = primary(
            "on",
            vec![
                standby("a", Some("quorum"), Some(1.5)),
                standby("b", Some("quorum"), None),
                standby("c", Some("async"), Some(99.0)),
                standby("d", Some("quorum"), Some(0.25)),
            ],
        );
        assert_eq!(r.synchronous_lag_seconds(), 1.5);
        assert_eq!(r.synchronous_standbys().count(), 3);
        assert_eq!(primary("on", vec![]).synchronous_lag_seconds(), 0.0);
    }
}
