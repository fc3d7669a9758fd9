//! Exactly once, whatever arrives at the same moment, on one or several instances.

use futures::future::join_all;

use crate::helpers::{Backend, TestApp};
use crate::support::gateway::{paid, paid_fields, sign, CallbackForm};
use crate::support::readyz;

/// 500 requests at once queue for 2 × 16 connections; on a shared, loaded CI
/// machine that can take longer than the default waits: 2 s for a connection,
/// 5 s for the database work, 10 s for a request's head (which would answer
/// 503 or close the connection, correctly, and fail this test). The bounds
/// themselves are the outage and slow-client tests'.
const PATIENT: &[(&str, &str)] = &[
    ("PAYHOOK_DB_ACQUIRE_TIMEOUT", "30s"),
    ("PAYHOOK_DB_STATEMENT_TIMEOUT", "30s"),
    ("PAYHOOK_REQUEST_TIMEOUT", "60s"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_orders_paid_ten_times_at_once_on_two_instances() {
    let a = TestApp::spawn_with(Backend::Postgres, PATIENT).await;
    let b = TestApp::spawn_on(
        Backend::Postgres,
        &a.database_url,
        tempfile::tempdir().unwrap(),
        PATIENT,
    )
    .await;

    let orders: Vec<String> = (0..50).map(|i| format!("C-{i:03}")).collect();
    for id in &orders {
        a.register(id, 1999, "EUR").await;
    }
    let queries: Vec<String> = orders
        .iter()
        .map(|id| sign(&paid_fields(id, "1999", "EUR"), CallbackForm::AllSignatures))
        .collect();
    let (a_ref, b_ref) = (&a, &b);
    let requests = queries.iter().flat_map(|q| {
        (0..10).map(move |i| {
            let app = if i % 2 == 0 { a_ref } else { b_ref };
            app.get_callback(q)
        })
    });
    let replies = join_all(requests).await;

    assert_eq!(replies.len(), 500);
    for r in &replies {
        assert_eq!((r.status, r.body.as_str()), (200, "OK"));
    }
    assert_eq!(a.count("SELECT count(*) AS n FROM fulfilments"), 50);
    assert_eq!(
        a.count("SELECT count(*) AS n FROM callbacks WHERE outcome = 'fulfilled'"),
        50
    );
    assert_eq!(
        a.count("SELECT count(*) AS n FROM callbacks WHERE outcome = 'duplicate'"),
        450
    );
    assert_eq!(
        a.count("SELECT count(*) AS n FROM orders WHERE state = 'paid'"),
        50
    );
    for id in &orders {
        assert_eq!(a.fulfilments(id), 1, "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_identical_paid_callbacks_at_once_on_sqlite() {
    let app = TestApp::spawn_with(Backend::Sqlite, PATIENT).await;
    app.register("S-1", 500, "EUR").await;
    let query = paid("S-1", "500");
    let replies = join_all((0..10).map(|_| app.get_callback(&query))).await;
    for r in &replies {
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "OK"),
            "SQLite must queue writers"
        );
    }
    assert_eq!(app.fulfilments("S-1"), 1);
    assert_eq!(
        app.outcomes("S-1")
            .await
            .iter()
            .filter(|o| *o == "duplicate")
            .count(),
        9
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_different_payments_at_once_fulfil_once() {
    let app = TestApp::spawn(Backend::Postgres).await;
    app.register("P-1", 500, "EUR").await;
    let first = paid("P-1", "500");
    let mut other = paid_fields("P-1", "500", "EUR");
    other.iter_mut().find(|(k, _)| k == "requestid").unwrap().1 = "42".into();
    let second = sign(&other, CallbackForm::Ss2);
    let replies = join_all([app.get_callback(&first), app.get_callback(&second)]).await;
    assert!(replies.iter().all(|r| r.body == "OK"));
    assert_eq!(app.fulfilments("P-1"), 1);
    let mut outcomes = app.outcomes("P-1").await;
    outcomes.sort();
    assert_eq!(outcomes, ["fulfilled", "paid_again"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_starting_together_migrate_once() {
    let url = tokio::task::spawn_blocking(crate::support::postgres::empty_database)
        .await
        .unwrap();
    let (a, b, c) = tokio::join!(
        TestApp::spawn_on(Backend::Postgres, &url, tempfile::tempdir().unwrap(), &[]),
        TestApp::spawn_on(Backend::Postgres, &url, tempfile::tempdir().unwrap(), &[]),
        TestApp::spawn_on(Backend::Postgres, &url, tempfile::tempdir().unwrap(), &[]),
    );
    for app in [&a, &b, &c] {
        assert_eq!(readyz(&app.base).await, (200, "ready".to_string()));
    }
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .unwrap()
        .count() as i64;
    assert_eq!(
        a.count("SELECT count(*) AS n FROM __diesel_schema_migrations"),
        migrations,
        "each migration applied exactly once"
    );
}
