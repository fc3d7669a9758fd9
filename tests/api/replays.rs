//! Genuine but hostile: every buyer holds a genuine signed callback (the
//! return URL carries it), and the signature covers `data` only. Sent again
//! with anything beside it, it must not grow storage without bound, page
//! after page of an order, or hide what the gateway signed.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel_migrations::{FileBasedMigrations, MigrationHarness};
use payhook::sim::{CheckoutSigner, OrderFigures};
use serde_json::Value;

use crate::helpers::{both_backends, Backend, TestApp, ADMIN_TOKEN};
use crate::support::gateway::paid;
use crate::support::smtp::{subject, SmtpSink};
use crate::support::sqlite;

/// `PAYHOOK_REJECTED_MAX_BYTES`' default: what a duplicate keeps of a request.
const KEEP: i64 = 2048;

#[derive(Debug, diesel::QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    outcome: String,
    #[diesel(sql_type = Text)]
    raw_query: String,
    #[diesel(sql_type = Nullable<Text>)]
    raw_unsigned: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    raw_length: Option<i64>,
    #[diesel(sql_type = Bool)]
    raw_truncated: bool,
    #[diesel(sql_type = Nullable<BigInt>)]
    duplicate_of: Option<i64>,
    /// Bytes of raw_query and raw_unsigned together.
    #[diesel(sql_type = BigInt)]
    stored_bytes: i64,
}

fn rows(app: &TestApp, orderid: &str) -> Vec<Row> {
    let octets = |col: &str| match app.backend {
        Backend::Postgres => format!("COALESCE(octet_length({col}), 0)::bigint"),
        Backend::Sqlite => format!("COALESCE(length(CAST({col} AS BLOB)), 0)"),
    };
    app.query(&format!(
        "SELECT id, outcome, raw_query, raw_unsigned, raw_length, raw_truncated, duplicate_of, \
         {} + {} AS stored_bytes FROM callbacks WHERE orderid = '{orderid}' ORDER BY id",
        octets("raw_query"),
        octets("raw_unsigned")
    ))
}

/// Bytes that neither compress nor repeat, shaped as a form value.
fn junk(len: usize, seed: u64) -> String {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            char::from(
                b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                    [(x >> 33) as usize % 62],
            )
        })
        .collect()
}

/// The genuine callback `query` sent again with 60 KiB of junk beside it:
/// in the query (even seeds) or as a form body (odd seeds). A replaying
/// attacker sent both at once; the connection bounds now refuse that with 413
/// (`tests/slow_clients.rs`), so each half is what still reaches storage.
async fn replay_with_junk(app: &TestApp, query: &str, seed: u64) -> (u16, String) {
    let extra = junk(60 * 1024, seed);
    let request = if seed.is_multiple_of(2) {
        app.client
            .post(format!("{}/paysera/callback?{query}&x={extra}", app.base))
    } else {
        app.client
            .post(format!("{}/paysera/callback?{query}", app.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(format!("y={extra}"))
    };
    let r = request.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// What the table takes on PostgreSQL: heap, TOAST and indexes (200 rows
/// amortise the page granularity).
fn callbacks_bytes(app: &TestApp) -> i64 {
    app.count("SELECT pg_total_relation_size('callbacks') AS n")
}

async fn a_replayed_genuine_callback_is_stored_bounded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("REPLAY-1", 1250, "EUR").await;
    let query = paid("REPLAY-1", "1250");
    let first = app.get_callback(&query).await;
    assert_eq!((first.status, first.body.as_str()), (200, "OK"));

    let before = (backend == Backend::Postgres).then(|| callbacks_bytes(&app));
    const REPLAYS: u64 = 200;
    for seed in 0..REPLAYS {
        assert_eq!(
            replay_with_junk(&app, &query, seed).await,
            (200, "OK".to_string()),
            "a duplicate is acknowledged"
        );
    }
    if let Some(before) = before {
        let per_replay = (callbacks_bytes(&app) - before) / REPLAYS as i64;
        println!("PostgreSQL callbacks table: +{per_replay} bytes per replayed callback");
        assert!(per_replay <= 4096, "{per_replay} bytes per replay");
    }

    let stored = rows(&app, "REPLAY-1");
    assert_eq!(stored.len(), 1 + REPLAYS as usize);
    let (original, duplicates) = stored.split_first().unwrap();
    assert_eq!(original.outcome, "fulfilled");
    assert_eq!(original.raw_query, query, "the gateway's request, whole");
    assert_eq!(original.raw_unsigned, None);
    for d in duplicates {
        assert_eq!(d.outcome, "duplicate");
        assert_eq!(d.duplicate_of, Some(original.id), "linked to the first");
        assert!(d.stored_bytes <= KEEP, "{} bytes kept", d.stored_bytes);
        assert!(d.raw_truncated);
        assert!(d.raw_length.unwrap() > 60_000, "the full length is kept");
    }
    assert_eq!(app.fulfilments("REPLAY-1"), 1);

    // The order pages its callbacks: the newest 50, then the rest.
    let page = app.admin_get("/orders/REPLAY-1").await;
    let listed = page["callbacks"].as_array().unwrap();
    assert_eq!(listed.len(), 50);
    assert_eq!(listed[49]["id"], stored.last().unwrap().id);
    // Following `callbacks_before` walks every row once, newest pages first.
    assert_eq!(page["callbacks"][0]["duplicate_of"], original.id);
    let mut seen: Vec<i64> = Vec::new();
    let mut page = page;
    loop {
        let listed = page["callbacks"].as_array().unwrap();
        assert!(listed.len() <= 50);
        let ids: Vec<i64> = listed.iter().map(|c| c["id"].as_i64().unwrap()).collect();
        seen.splice(0..0, ids);
        match page["callbacks_before"].as_i64() {
            Some(before) => {
                assert_eq!(before, listed[0]["id"].as_i64().unwrap());
                page = app
                    .admin_get(&format!("/orders/REPLAY-1?callbacks_before={before}"))
                    .await;
            }
            None => {
                assert_eq!(listed[0]["outcome"], "fulfilled");
                assert_eq!(listed[0]["duplicate_of"], Value::Null);
                break;
            }
        }
    }
    let all: Vec<i64> = stored.iter().map(|r| r.id).collect();
    assert_eq!(seen, all);
}

/// A first delivery with something beside its signed part: the signed part is
/// stored whole (a replay verifies it again), the rest bounded.
async fn a_first_delivery_with_extras_keeps_its_signed_part_whole(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("EXTRA-1", 990, "EUR").await;
    let query = paid("EXTRA-1", "990");
    let sent = format!("{query}&note={}", junk(10 * 1024, 7));
    let reply = app.get_callback(&sent).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "OK"));
    let row = rows(&app, "EXTRA-1").pop().unwrap();
    assert_eq!(row.outcome, "fulfilled");
    assert!(row.raw_query.starts_with("data="), "{}", row.raw_query);
    assert!(!row.raw_query.contains("note="), "only what is signed");
    assert!(!row.raw_truncated, "the signed part is whole");
    let unsigned = row.raw_unsigned.as_deref().expect("the rest, bounded");
    assert_eq!(unsigned.len() as i64, KEEP);
    assert!(sent.starts_with(unsigned));
    assert_eq!(row.raw_length, Some(sent.len() as i64));

    let replayed = app
        .client
        .post(format!("{}/api/v1/callbacks/{}/replay", app.admin, row.id))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.status(), 200, "the signed part replays");
    let replayed: Value = replayed.json().await.unwrap();
    assert_eq!(replayed["outcome"], "duplicate");
    assert_eq!(app.fulfilments("EXTRA-1"), 1);
}

const CLIENT_ID: &str = "checkout-replays";
const SECRET: &str = "checkout-replays-secret-01";

/// A genuine Checkout webhook sent again with 60 unsigned `X-Paysera-*`
/// headers of 1 KiB: answered, stored bounded; the first with such headers
/// keeps the body and the headers the verifier read, whole. 80
/// such headers pass `PAYHOOK_MAX_HEAD_BYTES` (72 KiB): 431, nothing stored.
async fn a_webhook_with_junk_headers_is_stored_bounded(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("PAYSERA_CHECKOUT_CLIENT_ID", CLIENT_ID),
            ("PAYSERA_CHECKOUT_SECRET", SECRET),
        ],
    )
    .await;
    let register = app
        .client
        .put(format!("{}/api/v1/orders/CO-JUNK", app.admin))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"amount": 1500, "currency": "EUR", "project_id": CLIENT_ID}))
        .send()
        .await
        .unwrap();
    assert!(register.status().is_success(), "{}", register.status());
    let webhook = CheckoutSigner::new(SECRET).snapshot(&OrderFigures {
        orderid: "CO-JUNK",
        amount: 1500,
        amount_paid: 1500,
        currency: "EUR",
        updated_at: 1_760_000_000,
        payment_status: "settled",
    });
    for round in 0..4 {
        let mut request = app
            .client
            .post(format!("{}/paysera/checkout/webhook", app.base))
            .body(webhook.body.clone());
        for (name, value) in &webhook.headers {
            request = request.header(*name, value);
        }
        let headers = if round == 3 { 80 } else { 60 };
        for n in 0..headers {
            request = request.header(format!("X-Paysera-Junk-{n}"), junk(1024, n + round * 100));
        }
        let r = request.send().await.unwrap();
        let expected = if round == 3 { 431 } else { 200 };
        assert_eq!(r.status(), expected, "round {round}");
    }
    let stored = rows(&app, "CO-JUNK");
    assert_eq!(stored.len(), 3);
    let first = &stored[0];
    assert_eq!(first.outcome, "fulfilled");
    assert!(
        !first.raw_query.contains("Junk"),
        "only what the verifier read"
    );
    assert!(first
        .raw_query
        .ends_with(std::str::from_utf8(&webhook.body).unwrap()));
    assert!(first.raw_unsigned.as_deref().unwrap().len() as i64 <= KEEP);
    for d in &stored[1..] {
        assert_eq!(d.outcome, "duplicate");
        assert_eq!(d.duplicate_of, Some(first.id));
        assert!(d.stored_bytes <= KEEP, "{}", d.stored_bytes);
    }
}

/// `PAYHOOK_DUPLICATE_RETENTION` deletes duplicates; the first row of the
/// delivery, which proves the fulfilment, stays.
async fn duplicates_past_retention_are_deleted_and_the_first_row_kept(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("PAYHOOK_DUPLICATE_RETENTION", "1s")]).await;
    app.register("RET-1", 500, "EUR").await;
    let query = paid("RET-1", "500");
    for _ in 0..4 {
        assert_eq!(app.get_callback(&query).await.body, "OK");
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let outcomes = loop {
        let outcomes: Vec<String> = rows(&app, "RET-1").into_iter().map(|r| r.outcome).collect();
        if outcomes.len() == 1 || Instant::now() > deadline {
            break outcomes;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(outcomes, ["fulfilled"]);
    assert_eq!(app.fulfilments("RET-1"), 1);
    assert_eq!(app.order("RET-1").await["state"], "paid");
}

/// One delivery sent again 100 times: one `duplicate_flood` e-mail, however
/// many more follow within `ALERT_MIN_INTERVAL`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_duplicates_alerts_once() {
    let smtp = SmtpSink::start();
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("SMTP_URL", &smtp.url()),
            ("ALERT_EMAIL_FROM", "payhook <payhook@shop.example>"),
            ("ALERT_EMAIL_TO", "ops@shop.example"),
            ("ALERT_MIN_INTERVAL", "10m"),
        ],
    )
    .await;
    app.register("FLOOD-1", 700, "EUR").await;
    let query = paid("FLOOD-1", "700");
    for _ in 0..99 {
        assert_eq!(app.get_callback(&query).await.body, "OK");
    }
    // A quiet period on purpose: nothing more may happen within it, and an
    // absence cannot be polled for.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(smtp.messages().is_empty(), "98 duplicates are no flood");
    for _ in 0..30 {
        assert_eq!(app.get_callback(&query).await.body, "OK");
    }
    let messages = smtp.wait_for(1, Duration::from_secs(10));
    // A quiet period on purpose: nothing more may happen within it, and an
    // absence cannot be polled for.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(smtp.messages().len(), 1, "rate-limited to one");
    assert_eq!(
        subject(&messages[0]),
        "[payhook] duplicate_flood: order FLOOD-1: duplicate"
    );
}

/// Migration `000032_guard_names_row` on a database where guards named no
/// row yet: each guard comes to name the row of its delivery answered OK, so
/// a duplicate afterwards still points at it, and nothing is fulfilled twice.
async fn a_guard_from_before_the_naming_points_its_duplicates_home(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("NAMED-1", 1250, "EUR").await;
    let query = paid("NAMED-1", "1250");
    assert_eq!(app.get_callback(&query).await.body, "OK");
    app.stop.stop().await;
    let first = rows(&app, "NAMED-1");
    assert_eq!(first.len(), 1);

    // Back to the schema before the naming, as an older payhook left it.
    let source = match backend {
        Backend::Postgres => "postgres",
        Backend::Sqlite => "sqlite",
    };
    let migrations = FileBasedMigrations::from_path(format!(
        "{}/migrations/{source}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    macro_rules! revert_the_naming {
        ($conn:expr) => {{
            let conn = $conn;
            loop {
                conn.revert_last_migration(migrations.clone()).unwrap();
                let pending = conn.pending_migrations(migrations.clone()).unwrap();
                if pending[0].name().to_string().ends_with("_guard_names_row") {
                    break;
                }
            }
        }};
    }
    match backend {
        Backend::Postgres => {
            revert_the_naming!(&mut PgConnection::establish(&app.database_url).unwrap())
        }
        Backend::Sqlite => revert_the_naming!(&mut sqlite::connect(&app.database_url)),
    }

    // A payhook of today migrates it and takes the same delivery again.
    let again = TestApp::spawn_on(
        backend,
        &app.database_url,
        tempfile::tempdir().unwrap(),
        &[],
    )
    .await;
    assert_eq!(
        again.count("SELECT COALESCE(callback_id, -1) AS n FROM answered"),
        first[0].id,
        "the guard names its row"
    );
    assert_eq!(again.get_callback(&query).await.body, "OK");
    let stored = rows(&again, "NAMED-1");
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[1].outcome, "duplicate");
    assert_eq!(
        stored[1].duplicate_of,
        Some(first[0].id),
        "linked to the first"
    );
    assert_eq!(again.fulfilments("NAMED-1"), 1);
}

both_backends!(
    a_replayed_genuine_callback_is_stored_bounded,
    a_guard_from_before_the_naming_points_its_duplicates_home,
    a_first_delivery_with_extras_keeps_its_signed_part_whole,
    a_webhook_with_junk_headers_is_stored_bounded,
    duplicates_past_retention_are_deleted_and_the_first_row_kept,
);
