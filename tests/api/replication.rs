//! The replication gauges, scraped from the admin listener: a service on a
//! primary with a synchronous standby counts it, and stops counting it once
//! it is gone; a service on SQLite exports neither gauge (so no alert about
//! standbys can fire there).

use std::time::Duration;

use crate::helpers::{Backend, TestApp};
use crate::support::replication::sync_pair;
use crate::support::wait;

/// Two refreshes of the gauges (every 5 s), and time to spare.
const WITHIN: Duration = Duration::from_secs(15);

async fn gauge(app: &TestApp, name: &str) -> Option<f64> {
    app.metrics().await.get(name).copied()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_primary_counts_its_synchronous_standby_until_it_is_gone() {
    let name = "payhook_replication";
    let (primary, standby) = tokio::task::spawn_blocking(move || sync_pair(name))
        .await
        .unwrap();
    let app = TestApp::spawn_on(
        Backend::Postgres,
        &primary.url(name),
        tempfile::tempdir().unwrap(),
        &[],
    )
    .await;
    wait::until_async("payhook_db_sync_standbys 1", WITHIN, || async {
        gauge(&app, "payhook_db_sync_standbys").await == Some(1.0)
    })
    .await;
    let lag = gauge(&app, "payhook_db_replication_lag_seconds").await;
    assert!(
        lag.is_some_and(|lag| (0.0..10.0).contains(&lag)),
        "replication lag {lag:?}"
    );

    let standby = tokio::task::spawn_blocking(move || {
        standby.stop();
        standby
    })
    .await
    .unwrap();
    wait::until_async("payhook_db_sync_standbys 0", WITHIN, || async {
        gauge(&app, "payhook_db_sync_standbys").await == Some(0.0)
    })
    .await;
    assert_eq!(
        gauge(&app, "payhook_db_replication_lag_seconds").await,
        Some(0.0)
    );
    app.stop.stop().await;
    drop((standby, primary));
}

#[tokio::test]
async fn sqlite_exports_no_replication_gauges() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let metrics = app.metrics().await;
    assert!(
        metrics.keys().any(|k| k.starts_with("payhook_build_info")),
        "the scrape has the other metrics"
    );
    for name in [
        "payhook_db_sync_standbys",
        "payhook_db_replication_lag_seconds",
    ] {
        assert!(
            !metrics.keys().any(|k| k.starts_with(name)),
            "{name} on SQLite"
        );
    }
}
