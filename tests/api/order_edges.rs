//! Order-state edges: refunds before payment, payments
//! after a refund, payments after a mismatch, several flags per order, and the
//! missed-callback detector counting only what can still be acted on.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel_migrations::{FileBasedMigrations, MigrationHarness};
use serde_json::json;

use crate::helpers::{both_backends, Backend, TestApp, ADMIN_TOKEN};
use crate::support::gateway::{paid, paid_fields, sign, with, CallbackForm};
use crate::support::postgres;
use crate::support::smtp::{subject, SmtpSink};
use crate::support::sqlite;

async fn scrape(app: &TestApp) -> HashMap<String, f64> {
    app.metrics().await
}

/// Runs one statement directly on the app's database (to set up what only
/// time would otherwise produce).
fn execute(app: &TestApp, sql: &str) {
    let sql = diesel::sql_query(sql);
    let changed = match app.backend {
        Backend::Postgres => {
            let mut c = PgConnection::establish(&app.database_url).unwrap();
            sql.execute(&mut c).unwrap()
        }
        Backend::Sqlite => sql
            .execute(&mut sqlite::connect(&app.database_url))
            .unwrap(),
    };
    assert!(changed > 0, "nothing changed");
}

fn refund_of(orderid: &str, amount: &str, refunded: &str) -> Vec<(String, String)> {
    with(
        with(paid_fields(orderid, amount, "EUR"), "status", "5"),
        "refund_amount",
        refunded,
    )
}

async fn close(app: &TestApp, orderid: &str, query: &str) -> (u16, serde_json::Value) {
    let response = app
        .client
        .post(format!(
            "{}/api/v1/orders/{orderid}/close{query}",
            app.admin
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(json!(null)))
}

async fn a_refund_before_the_payment_is_recorded_on_the_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Registered, not paid yet.
    app.register("A-1", 1250, "EUR").await;
    let reply = app
        .get_callback(&sign(&refund_of("A-1", "1250", "500"), CallbackForm::Ss2))
        .await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "OK"));
    let order = app.order("A-1").await;
    assert_eq!(order["state"], "refunded");
    assert_eq!(order["refunded_amount"], 500);
    assert_eq!(app.outcomes("A-1").await, ["refunded"]);

    // Not registered at all: the order is created for the refund.
    let reply = app
        .post_callback(&sign(&refund_of("Z-1", "700", "700"), CallbackForm::Ss3))
        .await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "OK"));
    let order = app.order("Z-1").await;
    assert_eq!(order["state"], "refunded");
    assert_eq!(order["refunded_amount"], 700);
    assert_eq!(
        order["amount"],
        json!(null),
        "no expectation was registered"
    );
    assert_eq!(app.outcomes("Z-1").await, ["refunded"]);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM outbox WHERE kind = 'refunded' AND orderid = 'Z-1'"),
        1
    );
    // A second, partial refund adds up; the shop can still register the order.
    let second = with(refund_of("Z-1", "700", "100"), "requestid", "2");
    assert_eq!(
        app.get_callback(&sign(&second, CallbackForm::Ss2))
            .await
            .body,
        "OK"
    );
    assert_eq!(app.order("Z-1").await["refunded_amount"], 800);
    app.register("Z-1", 700, "EUR").await;
    let order = app.order("Z-1").await;
    assert_eq!(
        (order["amount"].clone(), order["state"].clone()),
        (json!(700), json!("refunded"))
    );
}

async fn a_payment_after_a_refund_is_never_fulfilled_silently(backend: Backend) {
    let smtp = SmtpSink::start();
    let app = TestApp::spawn_with(
        backend,
        &[
            ("SMTP_URL", &smtp.url()),
            ("ALERT_EMAIL_FROM", "payhook@shop.example"),
            ("ALERT_EMAIL_TO", "ops@shop.example"),
        ],
    )
    .await;
    app.register("A-1", 1250, "EUR").await;
    let refund = sign(&refund_of("A-1", "1250", "1250"), CallbackForm::Ss2);
    let paid = paid("A-1", "1250");
    assert_eq!(app.get_callback(&refund).await.body, "OK");
    // The delayed paid callback: stored, so answered OK, but not fulfilled.
    let reply = app.get_callback(&paid).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "OK"));
    assert_eq!(app.outcomes("A-1").await, ["refunded", "paid_after_refund"]);
    assert_eq!(app.fulfilments("A-1"), 0);
    let order = app.order("A-1").await;
    assert_eq!(order["state"], "needs_review");
    assert_eq!(order["flags"], json!(["paid_after_refund"]));
    assert_eq!(order["fulfilled_at"], json!(null));
    assert_eq!(
        app.count("SELECT count(*) AS n FROM outbox WHERE kind = 'paid_after_refund'"),
        1,
        "the shop hears about the money"
    );
    let mail = &smtp.wait_for(1, Duration::from_secs(10))[0];
    assert_eq!(
        subject(mail),
        "[payhook] paid_after_refund: order A-1: paid_after_refund"
    );
    assert!(mail.contains("needs_review"), "{mail}");

    // Re-delivered: a duplicate, still nothing fulfilled.
    assert_eq!(app.post_callback(&paid).await.body, "OK");
    assert_eq!(app.fulfilments("A-1"), 0);

    // An order that was only ever refunded (never registered) gets the same.
    let refund = sign(&refund_of("Z-1", "700", "700"), CallbackForm::Ss2);
    let paid = sign(&paid_fields("Z-1", "700", "EUR"), CallbackForm::Ss3);
    assert_eq!(app.get_callback(&refund).await.body, "OK");
    let reply = app.get_callback(&paid).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "OK"));
    assert_eq!(app.outcomes("Z-1").await, ["refunded", "paid_after_refund"]);
    assert_eq!(app.order("Z-1").await["state"], "needs_review");
    assert_eq!(app.fulfilments("Z-1"), 0);

    let mut m = scrape(&app).await;
    for _ in 0..100 {
        if m["payhook_alerts_sent_total{kind=\"paid_after_refund\"}"] >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        m = scrape(&app).await;
    }
    assert_eq!(
        m["payhook_callbacks_total{api=\"classic\",outcome=\"paid_after_refund\"}"],
        2.0
    );
    assert_eq!(
        m["payhook_callbacks_total{api=\"classic\",outcome=\"duplicate\"}"],
        1.0
    );
    assert_eq!(m["payhook_fulfilments_total"], 0.0);
    // Two alerts, one e-mail: the second is held back by ALERT_MIN_INTERVAL.
    assert_eq!(
        m["payhook_alerts_sent_total{kind=\"paid_after_refund\"}"],
        1.0
    );
}

async fn a_matching_payment_after_a_mismatch_fulfils_once_and_keeps_the_flag(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("A-1", 1250, "EUR").await;
    let cheap = paid("A-1", "1");
    let foreign = sign(&paid_fields("A-1", "1250", "USD"), CallbackForm::Ss2);
    let right = paid_fields("A-1", "1250", "EUR");
    for query in [&cheap, &foreign] {
        assert_eq!(app.get_callback(query).await.body, "OK");
    }
    let order = app.order("A-1").await;
    assert_eq!(order["state"], "needs_review");
    assert_eq!(order["flags"], json!(["unmatched_payment"]));

    let reply = app.get_callback(&sign(&right, CallbackForm::Ss3)).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "OK"));
    // Delivered again, and a second payment: never a second fulfilment.
    assert_eq!(
        app.post_callback(&sign(&right, CallbackForm::Ss3))
            .await
            .body,
        "OK"
    );
    let again = with(right.clone(), "requestid", "2");
    assert_eq!(
        app.get_callback(&sign(&again, CallbackForm::Ss2))
            .await
            .body,
        "OK"
    );
    assert_eq!(
        app.outcomes("A-1").await,
        [
            "amount_mismatch",
            "currency_mismatch",
            "fulfilled",
            "duplicate",
            "paid_again"
        ]
    );
    assert_eq!(app.fulfilments("A-1"), 1);
    let order = app.order("A-1").await;
    assert_eq!(order["state"], "paid");
    assert!(order["fulfilled_at"].is_string());
    assert_eq!(
        order["flags"],
        json!(["unmatched_payment", "paid_again"]),
        "the mismatch still needs a review after the fulfilment"
    );
}

async fn an_order_carries_every_flag_it_was_given(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("A-1", 1250, "EUR").await;
    let paid = paid_fields("A-1", "1250", "EUR");
    for (fields, outcome) in [
        (paid.clone(), "fulfilled"),
        (with(paid.clone(), "status", "0"), "not_paid"),
        (with(paid.clone(), "requestid", "2"), "paid_again"),
        (with(paid.clone(), "requestid", "3"), "paid_again"),
        (refund_of("A-1", "1250", "1250"), "refunded"),
        (with(paid.clone(), "requestid", "4"), "paid_after_refund"),
    ] {
        let reply = app.get_callback(&sign(&fields, CallbackForm::Ss2)).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, "OK"),
            "{outcome}"
        );
        assert_eq!(app.outcomes("A-1").await.last().unwrap(), outcome);
    }
    let order = app.order("A-1").await;
    assert_eq!(
        order["flags"],
        json!(["paid_order_unpaid", "paid_again", "paid_after_refund"])
    );
    assert!(order.get("flag").is_none(), "{order}");
    assert_eq!(order["state"], "needs_review");
    assert_eq!(app.fulfilments("A-1"), 1);
    // Unflagged orders show an empty list.
    app.register("B-1", 1, "EUR").await;
    assert_eq!(app.order("B-1").await["flags"], json!([]));
}

/// Two genuine refunds whose sum passes `i64::MAX` (PostgreSQL
/// answered 503 `bigint out of range` with a `database_error` alert on every
/// redelivery; SQLite stored a REAL). Now the same on both backends: the second
/// refund is stored and answered `OK` (so the gateway stops retrying), the
/// total stays the last one that fits, the order carries `refund_overflow` for
/// review and its alert goes out, and nothing is a database error.
async fn refunds_whose_total_overflows_are_flagged_not_a_database_error(backend: Backend) {
    let smtp = SmtpSink::start();
    let app = TestApp::spawn_with(
        backend,
        &[
            ("SMTP_URL", &smtp.url()),
            ("ALERT_EMAIL_FROM", "payhook@shop.example"),
            ("ALERT_EMAIL_TO", "ops@shop.example"),
        ],
    )
    .await;
    const HUGE: i64 = 9_223_372_036_854_775_000;
    app.register("R-1", 1250, "EUR").await;
    let first = sign(
        &refund_of("R-1", "1250", &HUGE.to_string()),
        CallbackForm::Ss2,
    );
    assert_eq!(app.get_callback(&first).await.body, "OK");
    assert_eq!(app.order("R-1").await["refunded_amount"], json!(HUGE));

    let second = sign(
        &with(
            refund_of("R-1", "1250", &HUGE.to_string()),
            "requestid",
            "2",
        ),
        CallbackForm::Ss2,
    );
    for _ in 0..2 {
        let reply = app.get_callback(&second).await;
        assert_eq!((reply.status, reply.body.as_str()), (200, "OK"));
    }
    let order = app.order("R-1").await;
    assert_eq!(order["refunded_amount"], json!(HUGE), "{order}");
    assert_eq!(order["state"], "refunded", "{order}");
    assert_eq!(order["flags"], json!(["refund_overflow"]), "{order}");
    assert_eq!(
        app.outcomes("R-1").await,
        ["refunded", "refunded", "duplicate"]
    );
    let reason = &order["callbacks"][1]["reason"];
    assert!(
        reason.as_str().is_some_and(|r| r.contains("does not fit")),
        "{reason}"
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM outbox WHERE kind = 'refunded' AND orderid = 'R-1'"),
        2,
        "the shop hears of both refunds"
    );
    let mail = &smtp.wait_for(1, Duration::from_secs(10))[0];
    assert_eq!(
        subject(mail),
        "[payhook] refund_overflow: order R-1: refunded"
    );
    // A quiet period on purpose: nothing more may happen within it, and an
    // absence cannot be polled for.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.messages().len(), 1, "no database_error alert");
    let m = scrape(&app).await;
    assert_eq!(m["payhook_db_errors_total"], 0.0);
    assert_eq!(
        m["payhook_callbacks_total{api=\"classic\",outcome=\"refunded\"}"],
        2.0
    );
}

/// Refund totals are decided from the order's row read under its lock (the
/// row is created first when a refund finds none): ten different refunds at
/// once for an order nobody registered add up exactly.
async fn refunds_at_once_add_up_exactly(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let queries: Vec<String> = (1..=10)
        .map(|n| {
            let refund = with(
                refund_of("C-1", "700", &n.to_string()),
                "requestid",
                &n.to_string(),
            );
            sign(&refund, CallbackForm::Ss2)
        })
        .collect();
    let replies = futures::future::join_all(queries.iter().map(|q| app.get_callback(q))).await;
    for reply in &replies {
        assert_eq!((reply.status, reply.body.as_str()), (200, "OK"));
    }
    let order = app.order("C-1").await;
    assert_eq!(order["refunded_amount"], json!(55), "{order}");
    assert_eq!(order["flags"], json!([]), "{order}");
    assert_eq!(app.outcomes("C-1").await, ["refunded"; 10]);
}

/// Migrates a database to just before `order_flags`, stores orders with the old
/// single `flag`, then lets the service migrate the rest.
async fn the_old_flag_column_is_migrated(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (url, source) = match backend {
        Backend::Postgres => (
            tokio::task::spawn_blocking(postgres::empty_database)
                .await
                .unwrap(),
            "postgres",
        ),
        Backend::Sqlite => (
            format!("sqlite:{}", dir.path().join("payhook.sqlite3").display()),
            "sqlite",
        ),
    };
    let migrations = FileBasedMigrations::from_path(format!(
        "{}/migrations/{source}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let old_rows = "INSERT INTO orders (project_id, orderid, amount, currency, state, flag, \
                    created_at, updated_at) VALUES \
                    ('123', 'OLD-1', 100, 'EUR', 'paid', 'paid_again', 1, 2), \
                    ('123', 'OLD-2', 100, 'EUR', 'paid', 'paid_order_unpaid', 1, 2), \
                    ('123', 'OLD-3', 100, 'EUR', 'awaiting_payment', NULL, 1, 2)";
    macro_rules! before_order_flags {
        ($conn:expr) => {{
            let conn = $conn;
            loop {
                let pending = conn.pending_migrations(migrations.clone()).unwrap();
                let next = pending
                    .first()
                    .expect("an order_flags migration")
                    .name()
                    .to_string();
                if next.ends_with("_order_flags") {
                    break;
                }
                conn.run_next_migration(migrations.clone()).unwrap();
            }
            diesel::sql_query(old_rows).execute(conn).unwrap();
        }};
    }
    match backend {
        Backend::Postgres => before_order_flags!(&mut PgConnection::establish(&url).unwrap()),
        Backend::Sqlite => before_order_flags!(&mut sqlite::connect(&url)),
    }
    let app = TestApp::spawn_on(backend, &url, dir, &[]).await;
    assert_eq!(app.order("OLD-1").await["flags"], json!(["paid_again"]));
    assert_eq!(
        app.order("OLD-2").await["flags"],
        json!(["paid_order_unpaid"])
    );
    assert_eq!(app.order("OLD-3").await["flags"], json!([]));
    // And a migrated flag is kept beside a new one.
    let status_0 = with(paid_fields("OLD-1", "100", "EUR"), "status", "0");
    assert_eq!(
        app.get_callback(&sign(&status_0, CallbackForm::Ss2))
            .await
            .body,
        "OK"
    );
    assert_eq!(
        app.order("OLD-1").await["flags"],
        json!(["paid_again", "paid_order_unpaid"])
    );
}

/// The buyer's way back through payhook after paying: the token `POST
/// /api/v1/payments` put into `accepturl`, followed as the buyer's browser would,
/// with the gateway's signed paid `data` appended.
async fn buyer_comes_back(app: &TestApp, orderid: &str) {
    let token = app
        .payment_return_token(orderid, "https://shop.example/thanks")
        .await;
    let back = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        // What the gateway appends to `accepturl`: the paid callback's signed data.
        .get(format!(
            "{}/paysera/return/{token}?{}",
            app.base,
            paid(orderid, "500")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(back.status(), 302);
}

async fn missing_callbacks(app: &TestApp) -> f64 {
    scrape(app).await["payhook_orders_missing_callback"]
}

/// Waits until the gauge reads `want`, then checks it stays there.
async fn gauge_settles_at(app: &TestApp, want: f64) {
    let started = Instant::now();
    while missing_callbacks(app).await != want {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "payhook_orders_missing_callback is {}, want {want}",
            missing_callbacks(app).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A quiet period on purpose: the gauge may not move within it.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(missing_callbacks(app).await, want);
}

async fn missed_callbacks_count_only_what_can_still_be_acted_on(backend: Backend) {
    let smtp = SmtpSink::start();
    let app = TestApp::spawn_with(
        backend,
        &[
            ("PAYHOOK_PUBLIC_URL", "https://pay.shop.example"),
            // Long enough for the set-up below to happen before anything is due.
            ("MISSED_CALLBACK_AFTER", "3s"),
            ("SMTP_URL", &smtp.url()),
            ("ALERT_EMAIL_FROM", "payhook@shop.example"),
            ("ALERT_EMAIL_TO", "ops@shop.example"),
            ("ALERT_MIN_INTERVAL", "1s"),
        ],
    )
    .await;
    for id in ["M-1", "M-2", "M-3", "M-4"] {
        buyer_comes_back(&app, id).await;
    }
    // M-1: nothing follows. M-2, M-3: a verified callback follows that is not a
    // payment (the gateway does reach payhook). M-4: the buyer came back four
    // days ago, beyond the default three-day window.
    for (id, status) in [("M-2", "2"), ("M-3", "0")] {
        let fields = with(paid_fields(id, "500", "EUR"), "status", status);
        assert_eq!(
            app.get_callback(&sign(&fields, CallbackForm::Ss2))
                .await
                .body,
            "OK"
        );
    }
    let four_days = 4 * 86_400_000_i64;
    execute(
        &app,
        &format!("UPDATE orders SET returned_at = returned_at - {four_days} WHERE orderid = 'M-4'"),
    );

    gauge_settles_at(&app, 1.0).await;
    let messages = smtp.wait_for(1, Duration::from_secs(10));
    // A quiet period on purpose: nothing more may happen within it, and an
    // absence cannot be polled for.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let messages_after = smtp.messages();
    assert_eq!(
        messages_after.len(),
        1,
        "only M-1 is alerted: {messages_after:?}"
    );
    assert_eq!(
        subject(&messages[0]),
        "[payhook] missed_callback: order M-1: buyer returned, no paid callback after 3s"
    );
    for id in ["M-2", "M-3", "M-4"] {
        assert_eq!(app.order(id).await["state"], "awaiting_payment", "{id}");
    }
}

async fn a_closed_order_is_no_missed_callback(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[
            ("PAYHOOK_PUBLIC_URL", "https://pay.shop.example"),
            ("MISSED_CALLBACK_AFTER", "3s"),
        ],
    )
    .await;
    for id in ["C-1", "C-2"] {
        buyer_comes_back(&app, id).await;
    }
    let (status, closed) = close(&app, "C-2", "").await;
    assert_eq!(status, 200, "{closed}");
    assert!(closed["closed_at"].is_string(), "{closed}");
    assert_eq!(closed["orderid"], "C-2");
    assert_eq!(
        closed["state"], "awaiting_payment",
        "closing changes nothing else"
    );
    gauge_settles_at(&app, 1.0).await;

    // Closing C-1 takes it out too; closing again changes nothing.
    let (status, first) = close(&app, "C-1", "?project_id=123").await;
    assert_eq!(status, 200);
    let (status, second) = close(&app, "C-1", "").await;
    assert_eq!((status, &second["closed_at"]), (200, &first["closed_at"]));
    gauge_settles_at(&app, 0.0).await;

    // A closed order's callbacks are still decided and stored.
    let paid = paid("C-1", "500");
    assert_eq!(app.get_callback(&paid).await.body, "OK");
    assert_eq!(app.fulfilments("C-1"), 1);

    // The close endpoint is admin-only and names what is wrong.
    assert_eq!(close(&app, "NOPE", "").await.0, 404);
    assert_eq!(close(&app, "C-1", "?project_id=999").await.0, 400);
    buyer_comes_back(&app, "C-3").await;
    let anonymous = app
        .client
        .post(format!("{}/api/v1/orders/C-3/close", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(app.order("C-3").await["closed_at"], json!(null));
}

both_backends!(
    a_refund_before_the_payment_is_recorded_on_the_order,
    a_payment_after_a_refund_is_never_fulfilled_silently,
    a_matching_payment_after_a_mismatch_fulfils_once_and_keeps_the_flag,
    an_order_carries_every_flag_it_was_given,
    refunds_whose_total_overflows_are_flagged_not_a_database_error,
    refunds_at_once_add_up_exactly,
    the_old_flag_column_is_migrated,
    missed_callbacks_count_only_what_can_still_be_acted_on,
    a_closed_order_is_no_missed_callback,
);
