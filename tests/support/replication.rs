//! A primary with one synchronous standby, both private clusters of the
//! caller's (stopped and removed when dropped), for the tests that read what
//! payhook reports of replication.

use std::time::Duration;

use super::postgres::{self, Cluster};
use super::wait;

/// The standby's name, as the primary's `synchronous_standby_names` lists it.
pub const STANDBY: &str = "s1";

/// A primary whose every commit waits for the standby [`STANDBY`], and that
/// standby, streaming and in sync, with migrated database `name` on both.
pub fn sync_pair(name: &str) -> (Cluster, Cluster) {
    sync_pair_with(name, &[])
}

/// [`sync_pair`], both servers running with `settings` too.
pub fn sync_pair_with(name: &str, settings: &[(&str, &str)]) -> (Cluster, Cluster) {
    let mut primary_settings = vec![
        ("synchronous_standby_names", STANDBY),
        ("synchronous_commit", "on"),
    ];
    primary_settings.extend_from_slice(settings);
    let primary = postgres::private_cluster_with(&primary_settings);
    let standby = primary.standby(STANDBY, settings);
    // Until then, a commit on the primary (CREATE DATABASE's) would wait.
    wait_in_sync(&primary);
    primary.create_database(name);
    // A synchronous commit is on the standby's disk, not yet replayed there.
    let copy = standby.url(name);
    wait::blocking_until(
        "the standby has replayed the database",
        Duration::from_secs(30),
        || postgres::psql(&copy, "SELECT count(*) FROM __diesel_schema_migrations").is_ok(),
    );
    (primary, standby)
}

/// Waits until `primary` lists [`STANDBY`] as its synchronous standby.
pub fn wait_in_sync(primary: &Cluster) {
    let admin = primary.url("postgres");
    wait::blocking_until("the standby is in sync", Duration::from_secs(30), || {
        postgres::psql(
            &admin,
            &format!(
                "SELECT count(*) FROM pg_stat_replication \
                 WHERE application_name = '{STANDBY}' AND sync_state = 'sync'"
            ),
        )
        .is_ok_and(|n| n == "1")
    });
}
