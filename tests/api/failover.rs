//! High availability: a primary and a synchronous standby on loopback, payhook
//! on a multi-host URL (`target_session_attrs=read-write`). The primary dies
//! (every process killed at once) and the standby is promoted; afterwards
//! every callback answered `OK` has its fulfilment on the new primary, and no
//! order is fulfilled twice. Also: a server that stops taking writes while
//! payhook holds connections to it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::helpers::{Backend, TestApp};
use crate::support::gateway::paid;
use crate::support::postgres::{self, Cluster};
use crate::support::proxy::ChaosProxy;
use crate::support::replication::{sync_pair, sync_pair_with, wait_in_sync, STANDBY};
use crate::support::wait;

/// One URL naming both servers: libpq tries them in turn and keeps the one
/// that takes writes.
fn multi_host_url(name: &str, servers: &[&Cluster]) -> String {
    let hosts: Vec<String> = servers
        .iter()
        .map(|c| format!("127.0.0.1:{}", c.port()))
        .collect();
    format!(
        "postgres://postgres@{}/{name}?target_session_attrs=read-write",
        hosts.join(",")
    )
}

/// payhook on the pair's multi-host URL, with bounds short enough that a
/// request outlives a failover's first seconds only by retrying.
async fn on_the_pair(name: &str, primary: &Cluster, standby: &Cluster) -> TestApp {
    TestApp::spawn_on(
        Backend::Postgres,
        &multi_host_url(name, &[primary, standby]),
        tempfile::tempdir().unwrap(),
        &[
            ("PAYHOOK_DB_POOL_SIZE", "8"),
            ("PAYHOOK_DB_ACQUIRE_TIMEOUT", "1s"),
            ("PAYHOOK_DB_STATEMENT_TIMEOUT", "2s"),
        ],
    )
    .await
}

/// What the gateway saw: when each order was first answered `OK`.
#[derive(Default)]
struct Answers {
    ok_at: HashMap<String, Instant>,
}

/// Sends every order's paid callback, twice at once (a duplicate racing its
/// first delivery), from `workers` concurrent senders, and sends again what
/// was not answered `OK`, as the gateway does, until all are or `within`
/// passes.
async fn deliver_all(
    app: &TestApp,
    orders: &[String],
    workers: usize,
    answers: &Mutex<Answers>,
    within: Duration,
) {
    let queue: Mutex<VecDeque<String>> = Mutex::new(orders.iter().cloned().collect());
    let deadline = Instant::now() + within;
    let sender = || async {
        while Instant::now() < deadline {
            let Some(id) = queue.lock().unwrap().pop_front() else {
                return;
            };
            let query = paid(&id, "100");
            let (a, b) = tokio::join!(app.get_callback(&query), app.get_callback(&query));
            let ok = [&a, &b].map(|r| r.status == 200 && r.body == "OK");
            let mut seen = answers.lock().unwrap();
            if ok.contains(&true) {
                seen.ok_at.entry(id).or_insert_with(Instant::now);
            } else {
                drop(seen);
                queue.lock().unwrap().push_back(id);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    futures::future::join_all((0..workers).map(|_| sender())).await;
}

/// Every order answered `OK` is fulfilled exactly once on the server payhook
/// reaches now; none is fulfilled twice.
fn reconcile(app: &TestApp, orders: &[String], answers: &Answers) {
    for id in orders {
        let fulfilled = app.fulfilments(id);
        if answers.ok_at.contains_key(id) {
            assert_eq!(fulfilled, 1, "{id} was answered OK");
        } else {
            assert!(fulfilled <= 1, "{id} fulfilled {fulfilled} times");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_primary_dies_under_load_and_no_acknowledged_payment_is_lost() {
    fail_over_under_load("payhook_failover", None).await;
}

/// The standby stops answering first (frozen, and what was in flight to it is
/// lost), so commits wait for it and requests are answered 503 at their
/// bound; then the primary dies. What the primary committed alone was never
/// answered `OK`. (With `synchronous_commit = local` this test fails: the
/// payments acknowledged during the stall are missing after the promotion.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_standby_stalls_then_the_primary_dies_and_no_acknowledged_payment_is_lost() {
    fail_over_under_load("payhook_stalled_standby", Some(Duration::from_secs(2))).await;
}

/// 200 orders paid from 8 senders, each callback twice at once. Once 60 are
/// paid, the standby freezes for `stall` if given; then the primary's every
/// process is killed, and the standby is promoted half a second later, as an
/// orchestrator would. Checked on the new primary: every order answered `OK`
/// fulfilled once, none twice, and the first `OK` after the promotion within
/// 5 s.
async fn fail_over_under_load(name: &'static str, stall: Option<Duration>) {
    let (primary, standby) = tokio::task::spawn_blocking(move || sync_pair(name))
        .await
        .unwrap();
    let app = on_the_pair(name, &primary, &standby).await;
    let orders: Vec<String> = (0..200).map(|i| format!("F-{i}")).collect();
    for id in &orders {
        app.register(id, 100, "EUR").await;
    }

    let answers = Arc::new(Mutex::new(Answers::default()));
    let primary = Arc::new(primary);
    let standby = Arc::new(standby);
    let failover = {
        let (answers, primary, standby) = (answers.clone(), primary.clone(), standby.clone());
        async move {
            wait::until("60 paid", Duration::from_secs(60), || {
                answers.lock().unwrap().ok_at.len() >= 60
            })
            .await;
            if let Some(stall) = stall {
                let frozen = standby.clone();
                tokio::task::spawn_blocking(move || frozen.freeze())
                    .await
                    .unwrap();
                tokio::time::sleep(stall).await;
            }
            tokio::task::spawn_blocking(move || primary.kill())
                .await
                .unwrap();
            let promoted = tokio::task::spawn_blocking(move || {
                if stall.is_some() {
                    // Partitioned, then back: what was in flight is lost.
                    standby.kill_wal_receiver();
                    standby.resume();
                }
                std::thread::sleep(Duration::from_millis(500));
                standby.promote();
                Instant::now()
            });
            promoted.await.unwrap()
        }
    };
    let (promoted_at, ()) = tokio::join!(
        failover,
        deliver_all(&app, &orders, 8, &answers, Duration::from_secs(90))
    );

    let answers = answers.lock().unwrap();
    assert_eq!(
        answers.ok_at.len(),
        orders.len(),
        "every order paid in the end"
    );
    let before = answers
        .ok_at
        .values()
        .filter(|at| **at < promoted_at)
        .count();
    assert!(
        (60..orders.len()).contains(&before),
        "{before} orders paid before the promotion: the primary died mid-load"
    );
    let first_after = answers
        .ok_at
        .values()
        .filter(|at| **at > promoted_at)
        .min()
        .expect("answers after the promotion");
    assert!(
        first_after.duration_since(promoted_at) < Duration::from_secs(5),
        "first OK {:?} after the promotion",
        first_after.duration_since(promoted_at)
    );
    reconcile(&app, &orders, &answers);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM fulfilments"),
        orders.len() as i64
    );
}

/// After a failover the old primary comes back as a standby of the new one
/// (`pg_rewind`, as Patroni's `use_pg_rewind` does) and the pair is
/// synchronous again. payhook, on a URL naming both, writes to the new
/// primary throughout (the old one takes no writes now): every order answered
/// `OK` before the kill, between, and after the return is fulfilled once on
/// the new primary, and the returned standby holds the same fulfilments.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_old_primary_returns_as_a_standby_and_no_acknowledged_payment_is_lost() {
    let name = "payhook_rewind";
    let (primary, standby) = tokio::task::spawn_blocking(move || {
        // pg_rewind needs both; the standby's commits wait once it leads.
        sync_pair_with(
            name,
            &[
                ("full_page_writes", "on"),
                ("wal_log_hints", "on"),
                ("synchronous_commit", "on"),
            ],
        )
    })
    .await
    .unwrap();
    let app = on_the_pair(name, &primary, &standby).await;
    let orders: Vec<String> = (0..150).map(|i| format!("R-{i}")).collect();
    for id in &orders {
        app.register(id, 100, "EUR").await;
    }
    let answers = Mutex::new(Answers::default());
    let within = Duration::from_secs(60);
    deliver_all(&app, &orders[..50], 4, &answers, within).await;

    let (primary, standby) = tokio::task::spawn_blocking(move || {
        primary.kill();
        standby.promote();
        (primary, standby)
    })
    .await
    .unwrap();
    deliver_all(&app, &orders[50..100], 4, &answers, within).await;

    let (primary, standby) = tokio::task::spawn_blocking(move || {
        primary.rewind_as_standby_of(&standby, STANDBY);
        let admin = standby.url("postgres");
        postgres::psql(
            &admin,
            &format!("ALTER SYSTEM SET synchronous_standby_names = '{STANDBY}'"),
        )
        .unwrap();
        postgres::psql(&admin, "SELECT pg_reload_conf()").unwrap();
        wait_in_sync(&standby);
        (primary, standby)
    })
    .await
    .unwrap();
    deliver_all(&app, &orders[100..], 4, &answers, within).await;

    let answers = answers.into_inner().unwrap();
    assert_eq!(answers.ok_at.len(), orders.len(), "every order paid");
    reconcile(&app, &orders, &answers);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM fulfilments"),
        orders.len() as i64
    );
    let returned = primary.url(name);
    assert_eq!(
        postgres::psql(&returned, "SELECT pg_is_in_recovery()").unwrap(),
        "t",
        "the old primary is a standby now"
    );
    let expected = orders.len().to_string();
    wait::until(
        "the returned standby has replayed every fulfilment",
        Duration::from_secs(30),
        || {
            postgres::psql(&returned, "SELECT count(*) FROM fulfilments")
                .is_ok_and(|n| n == expected)
        },
    )
    .await;
    drop(standby);
}

/// A server that stops taking writes (a demoted primary, or one set
/// read-only) while payhook holds pooled connections to it: each write there
/// fails with SQLSTATE 25006, the connection is dropped, and the callback is
/// stored on the server that takes writes, within the request.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_that_stops_taking_writes_is_left_for_the_one_that_does() {
    let name = "payhook_read_only";
    let (old, new) = tokio::task::spawn_blocking(move || {
        let old = postgres::private_cluster();
        let new = postgres::private_cluster();
        old.create_database(name);
        new.create_database(name);
        (old, new)
    })
    .await
    .unwrap();
    let app = TestApp::spawn_on(
        Backend::Postgres,
        &multi_host_url(name, &[&old, &new]),
        tempfile::tempdir().unwrap(),
        &[("PAYHOOK_DB_POOL_SIZE", "4")],
    )
    .await;
    let orders: Vec<String> = (0..12).map(|i| format!("R-{i}")).collect();
    // The shop registers each order on both servers (each has its own data
    // here, unlike a real pair): through this app on the first, through a
    // second app on the other.
    let registrar = TestApp::spawn_on(
        Backend::Postgres,
        &new.url(name),
        tempfile::tempdir().unwrap(),
        &[],
    )
    .await;
    for id in &orders {
        app.register(id, 100, "EUR").await;
        registrar.register(id, 100, "EUR").await;
    }
    // Warm connections to the first server, which takes writes for now.
    for id in &orders[..4] {
        let r = app.get_callback(&paid(id, "100")).await;
        assert_eq!((r.status, r.body.as_str()), (200, "OK"), "{id}");
    }
    let stored_on = |server: &Cluster, id: &str| {
        postgres::psql(
            &server.url(name),
            &format!("SELECT count(*) FROM fulfilments WHERE orderid = '{id}'"),
        )
        .unwrap()
    };
    assert_eq!(stored_on(&old, &orders[0]), "1");

    // Every session of the first server, pooled ones included, is read-only now.
    postgres::psql(
        &old.url("postgres"),
        "ALTER SYSTEM SET default_transaction_read_only = on",
    )
    .unwrap();
    postgres::psql(&old.url("postgres"), "SELECT pg_reload_conf()").unwrap();
    wait::blocking_until(
        "the reload reached the sessions",
        Duration::from_secs(10),
        || {
            postgres::psql(&old.url(name), "SHOW default_transaction_read_only")
                .is_ok_and(|v| v == "on")
        },
    );

    for id in &orders[4..] {
        let started = Instant::now();
        let r = app.get_callback(&paid(id, "100")).await;
        assert_eq!((r.status, r.body.as_str()), (200, "OK"), "{id}");
        assert!(started.elapsed() < Duration::from_secs(5), "{id}");
        assert_eq!(
            stored_on(&new, id),
            "1",
            "{id} on the server that takes writes"
        );
        assert_eq!(stored_on(&old, id), "0", "{id}");
    }
}

/// The lost-reply path while the standby is down: the paid callback's commit
/// waits for the standby, its reply is lost (the connection cut), and the
/// wait is then ended by terminating that backend, so the row stands on the
/// primary alone. payhook's retry within the request finds its own earlier
/// attempt stored; it must not answer `OK` from a row no standby has. Once
/// the standby is back, the gateway's next delivery is answered `OK` and the
/// order is fulfilled once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_reply_is_not_answered_ok_while_the_standby_is_down() {
    let name = "payhook_lost_reply_standby";
    let (primary, standby) = tokio::task::spawn_blocking(move || sync_pair(name))
        .await
        .unwrap();
    let proxy = ChaosProxy::start(primary.addr()).unwrap();
    let app = TestApp::spawn_on(
        Backend::Postgres,
        &postgres::url_via(&primary.url(name), proxy.addr()),
        tempfile::tempdir().unwrap(),
        &[
            ("PAYHOOK_DB_POOL_SIZE", "2"),
            ("PAYHOOK_DB_STATEMENT_TIMEOUT", "3s"),
        ],
    )
    .await;
    app.register("LR-1", 100, "EUR").await;
    let admin = primary.url("postgres");

    standby.freeze();
    proxy.cut_after_statement("LR-1");
    let query = paid("LR-1", "100");
    let reply = {
        let app = &app;
        let query = &query;
        let end_the_wait = async {
            let admin = admin.clone();
            tokio::task::spawn_blocking(move || {
                wait::blocking_until(
                    "a commit waits for the standby",
                    Duration::from_secs(5),
                    || {
                        postgres::psql(
                            &admin,
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                         WHERE wait_event = 'SyncRep'",
                        )
                        .is_ok_and(|n| n != "0")
                    },
                )
            })
            .await
            .unwrap();
        };
        let (reply, ()) = tokio::join!(app.get_callback(query), end_the_wait);
        reply
    };
    assert_eq!(proxy.commits_cut(), 1, "the fault did not happen");
    assert_ne!(reply.body, "OK", "answered OK from a commit no standby has");
    assert_eq!(reply.status, 503, "{}", reply.body);

    standby.resume();
    wait::until(
        "the standby is back in sync",
        Duration::from_secs(30),
        || {
            postgres::psql(
                &admin,
                "SELECT count(*) FROM pg_stat_replication \
             WHERE sync_state = 'sync' AND state = 'streaming'",
            )
            .is_ok_and(|n| n == "1")
        },
    )
    .await;
    let again = app.get_callback(&query).await;
    assert_eq!((again.status, again.body.as_str()), (200, "OK"));
    assert_eq!(app.fulfilments("LR-1"), 1);
}
