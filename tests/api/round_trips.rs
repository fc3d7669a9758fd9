//! What a paid callback costs PostgreSQL in round trips, read from the
//! server's own statement log (`log_statement = 'all'`, set for the test's
//! database only). Every statement is one synchronous round trip; a prepared
//! statement's first use on a pooled connection costs one more (the prepare,
//! which the log does not show), so this counts the steady state.
//! docs/performance.md ("Round trips per paid callback") has the figures.

use std::time::Duration;

use crate::helpers::{Backend, TestApp};
use crate::support::gateway::paid;
use crate::support::postgres;
use crate::support::wait;

/// The most statements a first paid callback for a registered order may cost:
/// one call of `payhook_pay_batch` (a batch of one here), which takes the
/// duplicate guard, locks the order and writes, as one implicit transaction
/// (no BEGIN, no COMMIT). Callbacks waiting together share one call
/// (`batching.rs`).
const PAID_CALLBACK_STATEMENTS: usize = 1;

/// Statements of one server process in a slice of the server log, in order.
fn statements_by_process(log: &str) -> Vec<(String, String)> {
    log.lines()
        .filter_map(|line| {
            let pid = line.split_once(" [")?.1.split_once(']')?.0;
            let (_, statement) = line
                .split_once("LOG:  statement: ")
                .or_else(|| line.split_once("LOG:  execute "))?;
            Some((pid.to_string(), statement.to_string()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_callback_costs_one_statement_on_postgres() {
    // The process's own cluster, not TEST_DATABASE_URL's: its log is needed.
    let (url, log_file) = tokio::task::spawn_blocking(|| {
        let cluster = postgres::cluster();
        let url = cluster.create_logged_database(&format!("round_trips_{}", std::process::id()));
        (url, cluster.log_file().to_path_buf())
    })
    .await
    .unwrap();
    let app = TestApp::spawn_on(Backend::Postgres, &url, tempfile::tempdir().unwrap(), &[]).await;
    for id in ["RT-1", "RT-2"] {
        app.register(id, 1250, "EUR").await;
    }
    // One paid callback first, so that nothing below is a first use.
    assert_eq!(app.get_callback(&paid("RT-1", "1250")).await.status, 200);

    let query = paid("RT-2", "1250");
    let before = std::fs::metadata(&log_file).unwrap().len() as usize;
    let reply = app.get_callback(&query).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "OK"));
    // PostgreSQL writes each statement's line as it runs it: the reply came
    // after, but the line may still be on its way to the file.
    let fulfils = |(_, s): &&(String, String)| {
        ["payhook_pay", "INSERT INTO \"fulfilments\""]
            .iter()
            .any(|write| s.contains(write))
    };
    let read_log = || {
        let log = std::fs::read(&log_file).unwrap();
        String::from_utf8_lossy(&log[before..]).into_owned()
    };
    let mut log = String::new();
    wait::until(
        "a fulfilment in the statement log",
        Duration::from_secs(10),
        || {
            log = read_log();
            statements_by_process(&log).iter().any(|s| fulfils(&s))
        },
    )
    .await;

    let statements = statements_by_process(&log);
    let fulfilling = statements
        .iter()
        .find(fulfils)
        .map(|(pid, _)| pid.clone())
        .unwrap_or_else(|| panic!("no fulfilment in the statement log:\n{log}"));
    let paid_callback: Vec<&str> = statements
        .iter()
        .filter(|(pid, _)| *pid == fulfilling)
        .map(|(_, s)| s.as_str())
        .collect();
    let shown = paid_callback.join("\n  ");
    eprintln!(
        "{} statements for one paid callback:\n  {shown}",
        paid_callback.len()
    );
    assert!(
        paid_callback.len() <= PAID_CALLBACK_STATEMENTS,
        "{} statements (at most {PAID_CALLBACK_STATEMENTS}) for one paid callback:\n  {shown}",
        paid_callback.len()
    );
    assert!(paid_callback[0].contains("payhook_pay_batch("), "{shown}");
    assert_eq!(app.fulfilments("RT-2"), 1);
}
