//! The operator's commands as the real binary, on a real PostgreSQL database
//! and on a SQLite file, configured as the service is (environment only):
//! `ingest-url`, `callbacks list|show|replay`, `orders show`, `prune`.

use crate::support;

use std::path::Path;
use std::time::Duration;

use payhook::domain::{Amount, Currency};

use payhook::store::{DatabaseConfig, Store};
use secrecy::SecretString;
use support::cli::{payhook, run};
use support::gateway::CallbackForm;
use support::postgres;

const PROJECT: &str = "123";
const PASSWORD: &str = "pass-1f2e3d";

/// A paid callback URL as the gateway's panel shows it.
fn callback_url(orderid: &str, amount: &str) -> String {
    let signer = support::gateway::signer(PASSWORD);
    let fields = [
        ("projectid", PROJECT),
        ("orderid", orderid),
        ("amount", amount),
        ("currency", "EUR"),
        ("p_email", "buyer@example.com"),
        ("status", "1"),
        ("test", "0"),
        ("version", "1.6"),
    ];
    format!(
        "https://shop.example/paysera/callback?{}",
        signer.callback_query(&fields, CallbackForm::Ss2)
    )
}

fn operator_commands(dir: &Path, database_url: &str, config: DatabaseConfig) {
    let (code, out, err) = run(payhook(dir, database_url).arg("migrate"));
    assert_eq!(code, 0, "migrate: {out}{err}");
    let store = Store::connect(&config, 1, Duration::from_secs(5), Duration::from_secs(5)).unwrap();
    let eur = Currency::parse("EUR").unwrap();
    for orderid in ["O-1", "O-2"] {
        store
            .register_order(
                PROJECT,
                orderid,
                Amount::from_minor(500).unwrap(),
                &eur,
                false,
                None,
            )
            .unwrap();
    }

    // The rescue: a URL pasted from the gateway's panel fulfils the order.
    let (code, out, err) =
        run(payhook(dir, database_url).args(["ingest-url", &callback_url("O-1", "500")]));
    assert_eq!((code, out.trim()), (0, "fulfilled"), "{err}");
    let order = store.order(PROJECT, "O-1").unwrap().unwrap();
    assert_eq!(order.state, "paid");
    let first = order.callbacks[0].id;
    // A wrong amount is stored and reported too; a forged URL is rejected (exit 1).
    let (code, out, _) =
        run(payhook(dir, database_url).args(["ingest-url", &callback_url("O-2", "1")]));
    assert_eq!(
        (code, out.trim()),
        (0, "amount_mismatch\tamount 1, expected 500")
    );
    let forged = callback_url("O-2", "500").replacen("data=", "data=x", 1);
    let (code, out, _) = run(payhook(dir, database_url).args(["ingest-url", &forged]));
    assert_eq!(code, 1);
    assert!(out.starts_with("rejected"), "{out}");

    // The journal, as a table and as JSON.
    let (code, out, _) = run(payhook(dir, database_url).args(["callbacks", "list"]));
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 4, "header and three rows: {out}");
    let (code, out, _) = run(payhook(dir, database_url).args([
        "callbacks",
        "list",
        "--outcome",
        "fulfilled",
        "--since",
        "1h",
        "--json",
    ]));
    assert_eq!(code, 0);
    let listed: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = listed["callbacks"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["orderid"], "O-1");
    let (code, _, err) =
        run(payhook(dir, database_url).args(["callbacks", "list", "--outcome", "paid"]));
    assert_eq!(code, 2, "not an outcome: {err}");

    // One callback: the raw request, the fields (buyer data masked), the answer.
    let (code, out, _) =
        run(payhook(dir, database_url).args(["callbacks", "show", &first.to_string()]));
    assert_eq!(code, 0);
    for expected in [
        "outcome      fulfilled",
        "method       INGEST",
        "answer       200",
        "orderid = O-1",
        "p_email = ***",
    ] {
        assert!(out.contains(expected), "{expected:?} in:\n{out}");
    }
    assert!(!out.contains("buyer@example.com"), "{out}");
    let (code, _, _) = run(payhook(dir, database_url).args(["callbacks", "show", "999999"]));
    assert_eq!(code, 1);

    // Replaying a fulfilled callback is idempotent: a duplicate, one fulfilment.
    let (code, out, _) =
        run(payhook(dir, database_url).args(["callbacks", "replay", &first.to_string()]));
    assert_eq!(
        (code, out.trim()),
        (0, format!("{first}\tduplicate").as_str())
    );
    let (code, out, _) = run(payhook(dir, database_url).args([
        "callbacks",
        "replay",
        "--since",
        "1h",
        "--outcome",
        "fulfilled",
        "--json",
    ]));
    assert_eq!(code, 0);
    let replayed: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(replayed["outcome"], "duplicate");
    let order = store.order(PROJECT, "O-1").unwrap().unwrap();
    assert!(order.fulfilled_at.is_some());
    assert_eq!(
        order
            .callbacks
            .iter()
            .filter(|c| c.outcome == "fulfilled")
            .count(),
        1
    );

    // The order's story.
    let (code, out, _) = run(payhook(dir, database_url).args(["orders", "show", "O-2"]));
    assert_eq!(code, 0);
    for expected in [
        "state     needs_review",
        "unmatched_payment",
        "amount_mismatch",
    ] {
        assert!(out.contains(expected), "{expected:?} in:\n{out}");
    }
    let (code, _, _) = run(payhook(dir, database_url).args(["orders", "show", "NOPE"]));
    assert_eq!(code, 1);

    // The shop's events: written with the callbacks, pending without a URL.
    let (code, out, _) =
        run(payhook(dir, database_url).args(["events", "list", "--state", "pending", "--json"]));
    assert_eq!(code, 0);
    let listed: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let events = listed["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["fulfilled", "amount_mismatch"], "{out}");
    let first_event = events[0]["id"].as_i64().unwrap();
    let (code, out, _) =
        run(payhook(dir, database_url).args(["events", "retry", &first_event.to_string()]));
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("pending"), "{out}");
    let (code, _, _) = run(payhook(dir, database_url).args(["events", "retry", "999999"]));
    assert_eq!(code, 1);
    let (code, _, _) = run(payhook(dir, database_url).args(["events", "list", "--state", "gone"]));
    assert_eq!(code, 2);
    let (_, out, _) = run(payhook(dir, database_url).args(["orders", "show", "O-1"]));
    assert!(
        out.contains("events:") && out.contains("fulfilled           pending"),
        "{out}"
    );

    // Pruning: a dry run by default; the paid and in-review orders' rows stay.
    let total = store
        .order(PROJECT, "O-1")
        .unwrap()
        .unwrap()
        .callbacks
        .len()
        + store
            .order(PROJECT, "O-2")
            .unwrap()
            .unwrap()
            .callbacks
            .len();
    let (code, out, _) =
        run(payhook(dir, database_url).args(["prune", "--older-than", "0s", "--json"]));
    assert_eq!(code, 0);
    let dry: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(dry["deleted"], 0);
    assert_eq!(dry["would_delete"], 1, "the forged rejection: {out}");
    assert_eq!(dry["kept"], total as i64);
    let (code, out, _) =
        run(payhook(dir, database_url).args(["prune", "--older-than", "0s", "--yes"]));
    assert_eq!(code, 0, "{out}");
    let (_, out, _) = run(payhook(dir, database_url).args([
        "callbacks",
        "list",
        "--outcome",
        "rejected",
        "--json",
    ]));
    let left: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(left["callbacks"].as_array().unwrap().len(), 0);
    let after = store
        .order(PROJECT, "O-1")
        .unwrap()
        .unwrap()
        .callbacks
        .len()
        + store
            .order(PROJECT, "O-2")
            .unwrap()
            .unwrap()
            .callbacks
            .len();
    assert_eq!(after, total);
    let (code, _, _) = run(payhook(dir, database_url).args(["prune", "--older-than", "soon"]));
    assert_eq!(code, 2);
}

#[test]
fn operator_commands_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let url = postgres::fresh_database();
    operator_commands(
        dir.path(),
        &url,
        DatabaseConfig::Postgres {
            url: SecretString::from(url.clone()),
        },
    );
}

#[test]
fn operator_commands_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payhook.sqlite3");
    let url = format!("sqlite:{}", path.display());
    operator_commands(dir.path(), &url, DatabaseConfig::Sqlite { path });
}

/// `payhook prune` on more history than one batch deletes: every unkept old
/// row goes, in several transactions, and the rows of a paid order among
/// them (every tenth) stay.
fn prune_goes_past_one_batch(dir: &Path, database_url: &str, execute: impl Fn(&str)) {
    let (code, _, err) = run(payhook(dir, database_url).arg("migrate"));
    assert_eq!(code, 0, "{err}");
    let n = 2 * payhook::store::PRUNE_JOURNAL_BATCH + 345;
    execute(
        "INSERT INTO orders (project_id, orderid, state, created_at, updated_at) \
             VALUES ('123', 'K-1', 'paid', 1, 1)",
    );
    execute(&format!(
        "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) \
         INSERT INTO callbacks (received_at, project_id, orderid, outcome, http_status, \
                                method, raw_query) \
         SELECT 1000 + i, '123', CASE WHEN i % 10 = 0 THEN 'K-1' ELSE NULL END, \
                CASE WHEN i % 10 = 0 THEN 'fulfilled' ELSE 'rejected' END, 400, 'GET', 'x' \
           FROM s"
    ));
    let kept = n / 10;
    let (code, out, err) =
        run(payhook(dir, database_url).args(["prune", "--older-than", "1d", "--json"]));
    assert_eq!(code, 0, "{err}");
    let dry: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (&dry["would_delete"], &dry["kept"]),
        (&(n - kept).into(), &kept.into())
    );
    let (code, out, err) =
        run(payhook(dir, database_url).args(["prune", "--older-than", "1d", "--yes", "--json"]));
    assert_eq!(code, 0, "{err}");
    let done: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (&done["deleted"], &done["kept"]),
        (&(n - kept).into(), &kept.into())
    );
    let (_, out, _) =
        run(payhook(dir, database_url).args(["callbacks", "list", "--json", "--limit", "1000"]));
    let left: serde_json::Value = serde_json::from_str(&out).unwrap();
    let left = left["callbacks"].as_array().unwrap();
    assert_eq!(left.len() as i64, kept, "only the paid order's rows");
    assert!(left.iter().all(|c| c["orderid"] == "K-1"));
}

#[test]
fn prune_goes_past_one_batch_on_postgres() {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, PgConnection};
    let dir = tempfile::tempdir().unwrap();
    let url = postgres::fresh_database();
    prune_goes_past_one_batch(dir.path(), &url, |sql| {
        PgConnection::establish(&url)
            .unwrap()
            .batch_execute(sql)
            .unwrap()
    });
}

#[test]
fn prune_goes_past_one_batch_on_sqlite() {
    use diesel::connection::SimpleConnection;
    use diesel::{Connection, SqliteConnection};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payhook.sqlite3");
    let url = format!("sqlite:{}", path.display());
    let file = path.display().to_string();
    prune_goes_past_one_batch(dir.path(), &url, |sql| {
        SqliteConnection::establish(&file)
            .unwrap()
            .batch_execute(sql)
            .unwrap()
    });
}
