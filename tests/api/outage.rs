//! The database goes away: callbacks get 503 quickly, never `OK`; when it comes
//! back, the gateway's retries are fulfilled once. No `OK` is ever answered for a
//! callback that is not in the database.

use std::time::{Duration, Instant};

use futures::future::join_all;

use crate::helpers::{Backend, TestApp};
use crate::support::gateway::paid;
use crate::support::readyz;
use crate::support::{postgres, proxy::ChaosProxy};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn database_outage_answers_503_then_recovers() {
    let direct = tokio::task::spawn_blocking(postgres::fresh_database)
        .await
        .unwrap();
    let proxy = ChaosProxy::start(postgres::server_addr()).unwrap();
    let via_proxy = postgres::url_via(&direct, proxy.addr());
    let app = TestApp::spawn_on(
        Backend::Postgres,
        &via_proxy,
        tempfile::tempdir().unwrap(),
        // Shorter waits than the defaults keep the test quick; the bound
        // asserted below is the same.
        &[
            ("PAYHOOK_DB_POOL_SIZE", "4"),
            ("PAYHOOK_DB_ACQUIRE_TIMEOUT", "500ms"),
            ("PAYHOOK_DB_STATEMENT_TIMEOUT", "1s"),
        ],
    )
    .await;
    let orders: Vec<String> = (0..20).map(|i| format!("O-{i}")).collect();
    for id in &orders {
        app.register(id, 100, "EUR").await;
    }
    let queries: Vec<String> = orders.iter().map(|id| paid(id, "100")).collect();
    let mut answered_ok: Vec<String> = Vec::new();

    // Cut the link while callbacks are in flight.
    let in_flight = join_all(queries[..10].iter().map(|q| app.get_callback(q)));
    let cut = async {
        // The cut comes 5 ms in, on purpose: some callbacks are mid-way.
        tokio::time::sleep(Duration::from_millis(5)).await;
        tokio::task::block_in_place(|| proxy.break_networking());
    };
    let (replies, ()) = tokio::join!(in_flight, cut);
    for (q, r) in queries.iter().zip(&replies) {
        assert!(
            r.status == 200 || r.status == 503,
            "{} {}",
            r.status,
            r.body
        );
        if r.body == "OK" {
            answered_ok.push(q.clone());
        }
    }

    // While it is down: 503 within the pool's wait, never OK, never a hang.
    for q in &queries {
        let started = Instant::now();
        let r = app.get_callback(q).await;
        assert_eq!(r.status, 503, "{}", r.body);
        assert_ne!(r.body, "OK");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
    }
    assert_eq!(
        readyz(&app.base).await,
        (503, "database not ready".to_string())
    );

    // Back again: the gateway's retries are each fulfilled exactly once.
    proxy.restore_networking();
    for q in &queries {
        let r = app.get_callback(q).await;
        assert_eq!((r.status, r.body.as_str()), (200, "OK"));
        answered_ok.push(q.clone());
    }
    for id in &orders {
        assert_eq!(app.fulfilments(id), 1, "{id}");
    }
    for q in &answered_ok {
        let stored = app.count(&format!(
            "SELECT count(*) AS n FROM callbacks WHERE raw_query = '{}' AND http_status = 200",
            q.replace('\'', "''")
        ));
        assert!(stored >= 1, "answered OK but not stored: {q}");
    }
}
