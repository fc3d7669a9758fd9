//! Every console page and admin API list reads through an index, at any depth
//! of the history: the CI-cheap guard of docs/performance.md ("Years of
//! history"). The test's database logs each statement's plan as it ran
//! (`auto_explain` with `ANALYZE`), and takes a sequential scan only where no
//! index can serve. A page whose cost grows with the journal shows up there
//! as a sequential scan of a history table, or as a step that read and threw
//! away more rows than a page shows.

use std::time::Duration;

use crate::console::Console;
use crate::helpers::{Backend, TestApp, ADMIN_TOKEN};
use crate::support::gateway::{paid, paid_fields, sign, with, CallbackForm};
use crate::support::postgres;

/// The tables that grow with the history.
const HISTORY: [&str; 6] = [
    "callbacks",
    "orders",
    "outbox",
    "outbox_attempts",
    "fulfilments",
    "order_flags",
];

/// More rows thrown away by one step than this is a scan, not a lookup: a
/// page shows 50 rows, and the history below holds 300 of each kind.
const MOST_REMOVED: i64 = 60;

const ORDERS: usize = 300;

/// One plan from the log: the statement and its plan's lines.
struct Plan {
    query: String,
    lines: Vec<String>,
}

/// The plans logged in `log`: each begins with a `duration: … plan:` line,
/// its further lines start with a tab.
fn plans(log: &str) -> Vec<Plan> {
    let mut plans: Vec<Plan> = Vec::new();
    for line in log.lines() {
        if line.contains("LOG:  duration:") && line.contains("plan:") {
            plans.push(Plan {
                query: String::new(),
                lines: Vec::new(),
            });
        } else if let (Some(plan), Some(rest)) = (plans.last_mut(), line.strip_prefix('\t')) {
            match rest.strip_prefix("Query Text: ") {
                Some(query) => plan.query = query.to_string(),
                None => plan.lines.push(rest.to_string()),
            }
        }
    }
    plans
}

/// What is wrong with a plan: a sequential scan of a history table, or a
/// step on one that threw away more than `MOST_REMOVED` rows.
fn scans(plan: &Plan) -> Vec<String> {
    let mut found = Vec::new();
    let mut table: Option<&str> = None;
    for line in &plan.lines {
        let node = line.trim_start().trim_start_matches("->  ");
        if let Some(on) = node.split_once(" on ").map(|(_, on)| on) {
            let name = on.split([' ', '(']).next().unwrap_or_default();
            table = HISTORY.iter().copied().find(|t| *t == name);
            if node.starts_with("Seq Scan") {
                if let Some(t) = table {
                    found.push(format!("a sequential scan of {t}"));
                }
            }
        }
        if let (Some(t), Some(n)) = (
            table,
            node.strip_prefix("Rows Removed by Filter: ")
                .and_then(|n| n.trim().parse::<i64>().ok()),
        ) {
            if n > MOST_REMOVED {
                found.push(format!("{n} rows of {t} read and thrown away"));
            }
        }
    }
    found
}

async fn admin_status(app: &TestApp, path: &str) -> u16 {
    app.client
        .get(format!("{}{path}", app.admin))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Every page and list, on a history of `ORDERS` paid orders (each with a
/// duplicate, a notification and a flag on some) received ten days ago.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_page_or_list_scans_the_history() {
    let name = format!("read_paths_{}", std::process::id());
    let (url, log_file) = tokio::task::spawn_blocking(move || {
        let cluster = postgres::cluster();
        (
            cluster.create_explained_database(&name),
            cluster.log_file().to_path_buf(),
        )
    })
    .await
    .unwrap();
    let receiver =
        crate::notify::receiver::Receiver::always(crate::notify::receiver::Reply::Status(200))
            .await;
    let shop = receiver.url();
    let app = TestApp::spawn_on(
        Backend::Postgres,
        &url,
        tempfile::tempdir().unwrap(),
        &[
            ("SHOP_NOTIFY_URL", shop.as_str()),
            (
                "SHOP_NOTIFY_SECRET",
                "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            ),
        ],
    )
    .await;
    for n in 0..ORDERS {
        let orderid = format!("H-{n}");
        app.register(&orderid, 1250, "EUR").await;
        let query = paid(&orderid, "1250");
        assert_eq!(app.get_callback(&query).await.body, "OK");
        assert_eq!(app.get_callback(&query).await.body, "OK");
        if n % 10 == 0 {
            let again = with(paid_fields(&orderid, "1250", "EUR"), "requestid", "2");
            let again = sign(&again, CallbackForm::Ss2);
            assert_eq!(app.get_callback(&again).await.body, "OK");
        }
    }
    receiver
        .wait_until(Duration::from_secs(60), "every event delivered", |r| {
            r.len() >= ORDERS
        })
        .await;
    // The history happened ten days ago; one order is new.
    let ten_days = 10 * 24 * 3_600_000_i64;
    for table in ["callbacks", "outbox"] {
        let column = if table == "callbacks" {
            "received_at"
        } else {
            "created_at"
        };
        postgres::psql(
            &url,
            &format!("UPDATE {table} SET {column} = {column} - {ten_days}; ANALYZE {table}"),
        )
        .unwrap();
    }
    postgres::psql(&url, "ANALYZE").unwrap();
    app.register("NEW-1", 1250, "EUR").await;
    assert_eq!(app.get_callback(&paid("NEW-1", "1250")).await.body, "OK");

    let console = Console::signed_in(&app).await;
    let first = app.count("SELECT min(id) AS n FROM callbacks");
    let before = std::fs::metadata(&log_file).unwrap().len() as usize;
    for path in [
        "/ui/".to_string(),
        "/ui/callbacks".into(),
        "/ui/callbacks?outcome=paid_again".into(),
        "/ui/callbacks?outcome=captured".into(),
        "/ui/callbacks?orderid=H-7".into(),
        "/ui/callbacks?since=1h".into(),
        "/ui/callbacks?api=gateway".into(),
        format!("/ui/callbacks?before={}", first + 2),
        format!("/ui/callbacks/{first}"),
        "/ui/orders/H-10".into(),
        "/ui/notifications".into(),
        "/ui/notifications?state=dead".into(),
        "/ui/notifications?state=pending".into(),
    ] {
        console.ok(&path).await;
    }
    for path in [
        "/api/v1/callbacks".to_string(),
        "/api/v1/callbacks?outcome=paid_again".into(),
        "/api/v1/callbacks?outcome=captured".into(),
        "/api/v1/orders/H-10".into(),
        "/api/v1/events".into(),
        "/api/v1/events?after=100".into(),
        format!("/api/v1/events?after={}", ORDERS - 5),
        "/metrics".into(),
    ] {
        assert_eq!(admin_status(&app, &path).await, 200, "{path}");
    }
    // The plans are written as each statement ends: before its answer.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = std::fs::read(&log_file).unwrap();
    let log = String::from_utf8_lossy(&log[before..]);
    let plans = plans(&log);
    assert!(
        plans.iter().any(|p| p.query.contains("callbacks")),
        "no plan of the journal was logged: is auto_explain loaded?\n{log}"
    );
    let wrong: Vec<String> = plans
        .iter()
        .flat_map(|p| {
            scans(p)
                .into_iter()
                .map(move |s| format!("{s}:\n  {}\n  {}", p.query, p.lines.join("\n  ")))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[derive(diesel::QueryableByName, Debug, PartialEq)]
struct ByOutcome {
    #[diesel(sql_type = diesel::sql_types::Text)]
    outcome: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn direct(app: &TestApp, since: i64) -> Vec<(String, i64)> {
    app.query::<ByOutcome>(&format!(
        "SELECT outcome, count(*) AS n FROM callbacks WHERE received_at >= {since} \
         GROUP BY outcome ORDER BY outcome"
    ))
    .into_iter()
    .map(|r| (r.outcome, r.n))
    .collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The overview's figures, from the counted hours plus what the journal's
/// index holds beyond them, are the journal's own counts: for periods that
/// start inside an hour, before any hour is counted, after, and for a
/// callback that arrives after the counting.
async fn counted_hours_add_up_to_the_journal(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for n in 0..12 {
        let orderid = format!("R-{n}");
        app.register(&orderid, 1250, "EUR").await;
        let query = paid(&orderid, "1250");
        assert_eq!(app.get_callback(&query).await.body, "OK");
        if n % 3 == 0 {
            assert_eq!(app.get_callback(&query).await.body, "OK");
        }
    }
    assert_eq!(app.get_callback("data=garbage&ss1=x").await.status, 400);
    // Spread over the last nine days, 5 h 17 min apart; then counted afresh
    // (the service may count again at any moment: it must not matter).
    let now = now_ms();
    app.execute(&format!(
        "UPDATE callbacks SET received_at = {now} - id * 19020000; \
         DELETE FROM callback_hours; DELETE FROM callback_hours_sealed;"
    ));
    let store = app.store();
    let periods = [
        now - 24 * 3_600_000,
        now - 7 * 24 * 3_600_000,
        now - 90 * 60_000,
        now - 7 * 24 * 3_600_000 - 30 * 60_000,
        now - 30 * 24 * 3_600_000,
    ];
    let check = |when: &str| {
        for since in periods {
            let mut counted = store.callbacks_by_outcome(since).unwrap();
            counted.sort();
            assert_eq!(counted, direct(&app, since), "{when}, since {since}");
        }
    };
    check("before counting");
    assert!(store.seal_hours(now).unwrap() > 0, "hours were counted");
    assert_eq!(store.seal_hours(now).unwrap(), 0, "each hour once");
    check("after counting");
    app.register("R-NEW", 1250, "EUR").await;
    assert_eq!(app.get_callback(&paid("R-NEW", "1250")).await.body, "OK");
    check("with a callback after the counting");
    assert!(direct(&app, now - 24 * 3_600_000)
        .iter()
        .any(|(o, n)| o == "fulfilled" && *n >= 1));
}

crate::helpers::both_backends!(counted_hours_add_up_to_the_journal);
