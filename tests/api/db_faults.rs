//! The database's faults are reported truthfully and bounded in time: a
//! restarted server, a lost reply to COMMIT, a server that stops answering, and
//! several instances migrating one fresh database at once.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{Integer, Text};
use futures::future::join_all;

use crate::helpers::{both_backends, Backend, TestApp};
use crate::support::gateway::paid;
use crate::support::readyz;
use crate::support::smtp::{subject, SmtpSink};
use crate::support::{postgres, proxy::ChaosProxy};

async fn scrape(app: &TestApp) -> HashMap<String, f64> {
    app.metrics().await
}

fn callbacks_total(metrics: &HashMap<String, f64>, outcome: &str) -> f64 {
    metrics
        .get(&format!(
            "payhook_callbacks_total{{api=\"classic\",outcome=\"{outcome}\"}}"
        ))
        .copied()
        .unwrap_or(0.0)
}

#[derive(QueryableByName)]
struct StoredRow {
    #[diesel(sql_type = Text)]
    outcome: String,
    #[diesel(sql_type = Integer)]
    http_status: i32,
}

/// Rows stored for an order as (outcome, http_status), oldest first.
fn stored(app: &TestApp, orderid: &str) -> Vec<(String, i32)> {
    let rows: Vec<StoredRow> = app.query(&format!(
        "SELECT outcome, http_status FROM callbacks WHERE orderid = '{orderid}' ORDER BY id"
    ));
    rows.into_iter()
        .map(|r| (r.outcome, r.http_status))
        .collect()
}

/// How many server processes serve `database` (the pool's connections).
fn backends_on(cluster: &postgres::Cluster, database: &str) -> usize {
    postgres::psql(
        &cluster.url("postgres"),
        &format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}'"),
    )
    .unwrap()
    .parse()
    .unwrap()
}

/// After a restart every pooled connection is dead; each callback must find
/// a live one (pool size + 1 attempts) instead of answering 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_database_costs_no_callback_under_a_warm_pool() {
    // Its own cluster: restarting the shared one would fail other tests.
    let cluster = tokio::task::spawn_blocking(postgres::private_cluster)
        .await
        .unwrap();
    let database = "restarted";
    cluster.create_database(database);
    let app = TestApp::spawn_on(
        Backend::Postgres,
        &cluster.url(database),
        tempfile::tempdir().unwrap(),
        &[("PAYHOOK_DB_POOL_SIZE", "8")],
    )
    .await;
    let warm: Vec<String> = (0..16).map(|i| format!("W-{i}")).collect();
    let after: Vec<String> = (0..20).map(|i| format!("R-{i}")).collect();
    for id in warm.iter().chain(&after) {
        app.register(id, 100, "EUR").await;
    }
    // Concurrent callbacks (first deliveries, then duplicates) until all eight
    // connections of the pool are open.
    let warm_queries: Vec<String> = warm.iter().map(|id| paid(id, "100")).collect();
    let mut rounds = 0;
    while backends_on(&cluster, database) < 8 {
        rounds += 1;
        assert!(rounds <= 20, "the pool did not grow to 8 connections");
        let replies = join_all(warm_queries.iter().map(|q| app.get_callback(q))).await;
        assert!(replies.iter().all(|r| r.body == "OK"));
    }

    tokio::task::block_in_place(|| {
        cluster.stop();
        cluster.start();
    });

    // A rejection is stored on a fresh connection too: 400, never 503.
    let rejected = app.get_callback("data=QUJD").await;
    assert_eq!(rejected.status, 400, "{}", rejected.body);
    for id in &after {
        let r = app.get_callback(&paid(id, "100")).await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "OK"),
            "{id} after the restart"
        );
        assert_eq!(app.fulfilments(id), 1, "{id}");
    }
    let metrics = scrape(&app).await;
    assert_eq!(metrics["payhook_db_errors_total"], 0.0);
}

/// The COMMIT lands, its reply is lost, the transaction is retried: the retry
/// must report what was stored, not `duplicate`, and a genuine second delivery
/// must still be `duplicate`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_reply_to_commit_reports_the_stored_outcome() {
    let smtp = SmtpSink::start();
    let direct = tokio::task::spawn_blocking(postgres::fresh_database)
        .await
        .unwrap();
    let proxy = ChaosProxy::start(postgres::server_addr()).unwrap();
    let app = TestApp::spawn_on(
        Backend::Postgres,
        &postgres::url_via(&direct, proxy.addr()),
        tempfile::tempdir().unwrap(),
        &[
            ("PAYHOOK_DB_POOL_SIZE", "2"),
            ("SMTP_URL", &smtp.url()),
            ("ALERT_EMAIL_FROM", "payhook@shop.example"),
            ("ALERT_EMAIL_TO", "ops@shop.example"),
        ],
    )
    .await;
    app.register("CUT-1", 100, "EUR").await;
    app.register("CUT-2", 100, "EUR").await;

    // The paid path: one call of payhook_pay, which commits by itself.
    proxy.cut_after_statement("CUT-1");
    let first = paid("CUT-1", "100");
    let r = app.get_callback(&first).await;
    assert_eq!(proxy.commits_cut(), 1, "the fault did not happen");
    assert_eq!((r.status, r.body.as_str()), (200, "OK"));
    assert_eq!(stored(&app, "CUT-1"), vec![("fulfilled".to_string(), 200)]);
    assert_eq!(app.fulfilments("CUT-1"), 1);
    let metrics = scrape(&app).await;
    assert_eq!(callbacks_total(&metrics, "fulfilled"), 1.0);
    assert_eq!(callbacks_total(&metrics, "duplicate"), 0.0);
    assert_eq!(metrics["payhook_db_errors_total"], 0.0);

    // A genuine second delivery is another request: `duplicate`, as before.
    let again = app.get_callback(&first).await;
    assert_eq!((again.status, again.body.as_str()), (200, "OK"));
    assert_eq!(
        stored(&app, "CUT-1"),
        vec![
            ("fulfilled".to_string(), 200),
            ("duplicate".to_string(), 200)
        ]
    );
    let metrics = scrape(&app).await;
    assert_eq!(callbacks_total(&metrics, "fulfilled"), 1.0);
    assert_eq!(callbacks_total(&metrics, "duplicate"), 1.0);

    // The general path with an alert: the retry still raises it.
    proxy.cut_after_commit("CUT-2");
    let r = app.get_callback(&paid("CUT-2", "1")).await;
    assert_eq!(proxy.commits_cut(), 2, "the fault did not happen");
    assert_eq!((r.status, r.body.as_str()), (200, "OK"));
    assert_eq!(
        stored(&app, "CUT-2"),
        vec![("amount_mismatch".to_string(), 200)]
    );
    let metrics = scrape(&app).await;
    assert_eq!(callbacks_total(&metrics, "amount_mismatch"), 1.0);
    assert_eq!(callbacks_total(&metrics, "duplicate"), 1.0);
    let mail = &smtp.wait_for(1, Duration::from_secs(10))[0];
    assert_eq!(
        subject(mail),
        "[payhook] amount_mismatch: order CUT-2: amount_mismatch"
    );
    // A quiet period on purpose: nothing more may happen within it, and an
    // absence cannot be polled for.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.messages().len(), 1, "no database_error alert");
}

/// A database that stops answering (no reset, no FIN: a partition) holds no
/// request past PAYHOOK_DB_STATEMENT_TIMEOUT (default 5 s), answers nothing
/// `OK` that is not stored, stores nothing it answered 503, and serves again
/// once the network is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_database_answers_503_within_the_bound_then_recovers() {
    const BOUND: Duration = Duration::from_secs(5);
    const MARGIN: Duration = Duration::from_millis(1500);
    let direct = tokio::task::spawn_blocking(postgres::fresh_database)
        .await
        .unwrap();
    let proxy = ChaosProxy::start(postgres::server_addr()).unwrap();
    let app = TestApp::spawn_on(
        Backend::Postgres,
        &postgres::url_via(&direct, proxy.addr()),
        tempfile::tempdir().unwrap(),
        &[("PAYHOOK_DB_POOL_SIZE", "4")],
    )
    .await;
    let before: Vec<String> = (0..8).map(|i| format!("B-{i}")).collect();
    let during: Vec<String> = (0..12).map(|i| format!("S-{i}")).collect();
    for id in before.iter().chain(&during) {
        app.register(id, 100, "EUR").await;
    }
    let replies = join_all(before.iter().map(|id| {
        let app = &app;
        async move { app.get_callback(&paid(id, "100")).await }
    }))
    .await;
    assert!(replies.iter().all(|r| r.body == "OK"));

    proxy.stall();
    let stalled_at = Instant::now();
    // Two waves: the first finds pooled connections and gets stuck on them,
    // the second finds the pool held by the first.
    for wave in during.chunks(6) {
        let timed = join_all(wave.iter().map(|id| {
            let query = paid(id, "100");
            let app = &app;
            async move {
                let started = Instant::now();
                let r = app.get_callback(&query).await;
                (r, started.elapsed())
            }
        }))
        .await;
        for (id, (r, took)) in wave.iter().zip(&timed) {
            assert_eq!(r.status, 503, "{id}: {}", r.body);
            assert!(took <= &(BOUND + MARGIN), "{id} held for {took:?}");
        }
    }
    let started = Instant::now();
    assert_eq!(
        readyz(&app.base).await,
        (503, "database not ready".to_string())
    );
    assert!(started.elapsed() <= BOUND + MARGIN);
    // The admin API too (a shop registering an order before checkout).
    let started = Instant::now();
    let order = app
        .client
        .get(format!("{}/api/v1/orders/S-0", app.admin))
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(order.status(), 503);
    assert!(started.elapsed() <= BOUND + MARGIN);

    // The partition lasts 30 s on purpose.
    let stall = Duration::from_secs(30);
    tokio::time::sleep(stall.saturating_sub(stalled_at.elapsed())).await;
    proxy.resume();

    // What was answered 503 is not stored, even by the threads that were stuck
    // on the stalled connections and run on once the network is back: they
    // get a quiet period, on purpose, to store what they would.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for id in &during {
        assert_eq!(stored(&app, id), vec![], "{id} was answered 503");
    }
    // The gateway's retries: each fulfilled once, as a first delivery.
    let recovered = Instant::now();
    for id in &during {
        let r = app.get_callback(&paid(id, "100")).await;
        assert_eq!((r.status, r.body.as_str()), (200, "OK"), "{id}");
        assert_eq!(stored(&app, id), vec![("fulfilled".to_string(), 200)]);
        assert_eq!(app.fulfilments(id), 1);
    }
    assert!(recovered.elapsed() < Duration::from_secs(10));
}

/// Instances started at once on one fresh database all start, and the schema
/// is migrated exactly once (SQLite under a file lock, PostgreSQL under an
/// advisory lock).
async fn instances_starting_together_migrate_a_fresh_database_once(backend: Backend) {
    let migrations = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(match backend {
        Backend::Postgres => "migrations/postgres",
        Backend::Sqlite => "migrations/sqlite",
    }))
    .unwrap()
    .count() as i64;
    for round in 0..10 {
        let dir = tempfile::tempdir().unwrap();
        let url = match backend {
            Backend::Postgres => tokio::task::spawn_blocking(postgres::empty_database)
                .await
                .unwrap(),
            Backend::Sqlite => format!("sqlite:{}", dir.path().join("shared.sqlite3").display()),
        };
        let apps = join_all(
            (0..3).map(|_| TestApp::spawn_on(backend, &url, tempfile::tempdir().unwrap(), &[])),
        )
        .await;
        for app in &apps {
            assert_eq!(
                readyz(&app.base).await,
                (200, "ready".to_string()),
                "round {round}"
            );
        }
        assert_eq!(
            apps[0].count("SELECT count(*) AS n FROM __diesel_schema_migrations"),
            migrations,
            "round {round}"
        );
        apps[1].register(&format!("M-{round}"), 100, "EUR").await;
        let r = apps[2]
            .get_callback(&paid(&format!("M-{round}"), "100"))
            .await;
        assert_eq!((r.status, r.body.as_str()), (200, "OK"), "round {round}");
        for app in &apps {
            app.stop.stop().await;
        }
        drop(apps);
        if backend == Backend::Postgres {
            assert_eq!(connections_left(&url).await, 0, "round {round}");
        }
    }
}

both_backends!(instances_starting_together_migrate_a_fresh_database_once);

/// The connections other sessions still hold on `url`'s database, once they
/// stop falling (or after 10 s): stopped instances must give theirs back, or
/// instances that come and go (rolling deploys, these tests) exhaust the
/// server's `max_connections`.
async fn connections_left(url: &str) -> i64 {
    let sql = "SELECT count(*) FROM pg_stat_activity \
               WHERE datname = current_database() AND pid <> pg_backend_pid()";
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let url = url.to_string();
        let left: i64 = tokio::task::spawn_blocking(move || postgres::psql(&url, sql))
            .await
            .unwrap()
            .expect("pg_stat_activity is readable")
            .parse()
            .expect("a count");
        if left == 0 || Instant::now() >= deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
