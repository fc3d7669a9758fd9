//! First paid deliveries that wait for the database together are written
//! together: one call of `payhook_pay_batch` (migration 22), one round trip
//! and one commit for all of them. And an order held locked holds up the
//! others batched with it for 100 ms only: the batch gives up and each is
//! written alone.
//!
//! The database is made to wait with the chaos proxy: stalled, the payment
//! writer's call for a first callback hangs while the others queue behind it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, RunQueryDsl};

use crate::helpers::{Backend, TestApp};
use crate::support::gateway::paid;
use crate::support::postgres;
use crate::support::proxy::ChaosProxy;
use crate::support::wait;

/// A pool of 4 connections has one payment writer (one per 8 connections).
/// Each request waiting for the database holds one of its worker's blocking
/// threads, at most the pool's size per worker: 1 + 3 fit on one worker.
const ONE_WRITER: (&str, &str) = ("PAYHOOK_DB_POOL_SIZE", "4");
/// Far above the stalls below: nothing here may be answered 503.
const PATIENT: (&str, &str) = ("PAYHOOK_DB_STATEMENT_TIMEOUT", "20s");

/// A fresh database on the process's own cluster, with every statement it
/// runs logged, reached through a chaos proxy; and the server log.
async fn logged_app(tag: &str) -> (TestApp, Arc<ChaosProxy>, String, PathBuf) {
    let tag = tag.to_string();
    let (direct, log_file) = tokio::task::spawn_blocking(move || {
        let cluster = postgres::cluster();
        let url = cluster.create_logged_database(&format!("batching_{tag}_{}", std::process::id()));
        (url, cluster.log_file().to_path_buf())
    })
    .await
    .unwrap();
    let proxy = ChaosProxy::start(postgres::cluster().addr()).unwrap();
    let app = TestApp::spawn_on(
        Backend::Postgres,
        &postgres::url_via(&direct, proxy.addr()),
        tempfile::tempdir().unwrap(),
        &[ONE_WRITER, PATIENT],
    )
    .await;
    (app, proxy, direct, log_file)
}

fn log_len(log_file: &Path) -> usize {
    std::fs::metadata(log_file).unwrap().len() as usize
}

/// The server log since `from` (a byte offset), only the lines of the
/// app's own connections (the cluster is shared with other tests).
fn app_log(log_file: &Path, from: usize, direct: &str) -> Vec<String> {
    #[derive(diesel::QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Integer)]
        pid: i32,
    }
    let mut conn = PgConnection::establish(direct).unwrap();
    let pids: Vec<String> = diesel::sql_query(
        "SELECT pid FROM pg_stat_activity \
          WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .load::<Pid>(&mut conn)
    .unwrap()
    .into_iter()
    .map(|p| format!(" [{}] ", p.pid))
    .collect();
    let log = std::fs::read(log_file).unwrap();
    String::from_utf8_lossy(&log[from..])
        .lines()
        .filter(|l| pids.iter().any(|p| l.contains(p.as_str())))
        .map(str::to_string)
        .collect()
}

/// The app's log since `from` once `complete` holds for it (PostgreSQL
/// writes a statement's line as it runs it, the error of a cancelled one
/// just after).
async fn logged(
    log_file: &Path,
    from: usize,
    direct: &str,
    complete: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let mut log = Vec::new();
    wait::until(
        "the statements in the server log",
        Duration::from_secs(10),
        || {
            log = app_log(log_file, from, direct);
            complete(&log)
        },
    )
    .await;
    log
}

/// Returns once the payment writer's call waits in the stalled proxy.
async fn writer_waits(proxy: &ChaosProxy) {
    wait::until(
        "a statement held by the stall",
        Duration::from_secs(10),
        || proxy.held_messages() > 0,
    )
    .await;
}

/// Calls of function `name` in `log`.
fn calls(log: &[String], name: &str) -> usize {
    log.iter()
        .filter(|l| l.contains("LOG:  execute ") && l.contains(&format!("{name}(")))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paid_callbacks_waiting_together_are_written_in_one_call() {
    let (app, proxy, direct, log_file) = logged_app("together").await;
    let queued: Vec<String> = (1..=3).map(|n| format!("TOGETHER-{n}")).collect();
    for orderid in ["FIRST", "WARM"]
        .iter()
        .copied()
        .chain(queued.iter().map(String::as_str))
    {
        app.register(orderid, 1250, "EUR").await;
    }
    // The writer's statement is prepared on first use; that is not counted.
    assert_eq!(app.get_callback(&paid("WARM", "1250")).await.status, 200);
    let from = log_len(&log_file);

    let first_query = paid("FIRST", "1250");
    let queries: Vec<String> = queued.iter().map(|id| paid(id, "1250")).collect();
    proxy.stall();
    let (first, rest, ()) = tokio::join!(
        app.get_callback(&first_query),
        async {
            // Once the writer has taken FIRST's batch and waits on the
            // stalled database, these are verified and queue behind it.
            writer_waits(&proxy).await;
            futures::future::join_all(queries.iter().map(|q| app.get_callback(q))).await
        },
        async {
            // The stall, injected on purpose, lasts long enough for the three
            // to queue behind FIRST: nothing outside the service shows that queue.
            tokio::time::sleep(Duration::from_secs(3)).await;
            proxy.resume();
        },
    );

    assert_eq!((first.status, first.body.as_str()), (200, "OK"));
    for (orderid, reply) in queued.iter().zip(&rest) {
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, "OK"),
            "{orderid}"
        );
        assert_eq!(app.fulfilments(orderid), 1, "{orderid}");
    }
    assert_eq!(app.fulfilments("FIRST"), 1);
    let log = logged(&log_file, from, &direct, |log| {
        calls(log, "payhook_pay_batch") >= 2
    })
    .await;
    // FIRST's call, then one for the three queued behind it.
    assert_eq!(calls(&log, "payhook_pay_batch"), 2, "{log:#?}");
    assert_eq!(calls(&log, "payhook_pay"), 0, "{log:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_held_locked_holds_up_its_batch_for_a_moment_only() {
    let (app, proxy, direct, log_file) = logged_app("held").await;
    for orderid in ["FIRST", "WARM", "HELD", "OTHER"] {
        app.register(orderid, 1250, "EUR").await;
    }
    assert_eq!(app.get_callback(&paid("WARM", "1250")).await.status, 200);
    let from = log_len(&log_file);

    // Another client holds HELD's order row, as a stalled transaction would.
    let mut holder = PgConnection::establish(&direct).unwrap();
    let first_query = paid("FIRST", "1250");
    proxy.stall();
    let timed = |orderid: &'static str| {
        let (app, app_proxy) = (&app, &proxy);
        async move {
            writer_waits(app_proxy).await;
            let reply = app.get_callback(&paid(orderid, "1250")).await;
            (reply, Instant::now())
        }
    };
    let (first, (held, held_at), (other, other_at), released_at) = tokio::join!(
        app.get_callback(&first_query),
        timed("HELD"),
        timed("OTHER"),
        async {
            // HELD and OTHER queue behind FIRST, then go in one batch, HELD
            // first (sorted by order id). The stall and the lock below are
            // injected on purpose, each long enough to see who waits for it.
            tokio::time::sleep(Duration::from_secs(3)).await;
            holder
                .batch_execute("BEGIN; SELECT 1 FROM orders WHERE orderid = 'HELD' FOR UPDATE")
                .unwrap();
            proxy.resume();
            tokio::time::sleep(Duration::from_secs(3)).await;
            holder.batch_execute("COMMIT").unwrap();
            Instant::now()
        },
    );

    assert_eq!((first.status, first.body.as_str()), (200, "OK"));
    assert_eq!((other.status, other.body.as_str()), (200, "OK"));
    assert_eq!((held.status, held.body.as_str()), (200, "OK"));
    assert!(
        other_at < released_at,
        "OTHER waited for HELD's lock to be released"
    );
    assert!(held_at >= released_at, "HELD was answered while locked");
    for orderid in ["FIRST", "HELD", "OTHER"] {
        assert_eq!(app.fulfilments(orderid), 1, "{orderid}");
    }
    let log = logged(&log_file, from, &direct, |log| {
        calls(log, "payhook_pay") >= 2
    })
    .await;
    assert!(
        log.iter()
            .any(|l| l.contains("canceling statement due to lock timeout")),
        "the batch with HELD did not give up on its lock:\n{log:#?}"
    );
    // FIRST's batch and HELD + OTHER's (given up), then each alone.
    assert_eq!(calls(&log, "payhook_pay_batch"), 2, "{log:#?}");
    assert_eq!(calls(&log, "payhook_pay"), 2, "{log:#?}");
}
