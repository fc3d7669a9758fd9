//! Checkout (Modern) webhooks over HTTP, through the same pipeline, journal,
//! orders, outbox, metrics and alerts as classic callbacks.

use std::time::Duration;

use payhook::sim::{CheckoutSigner, OrderFigures, SignedWebhook};
use serde_json::json;

use crate::helpers::{both_backends, Backend, TestApp, ADMIN_TOKEN};
use crate::support::smtp::{subject, SmtpSink};

const CLIENT_ID: &str = "shop-client-7";
const SECRET: &str = "checkout-secret-current-01";
const PREVIOUS: &str = "checkout-secret-previous-02";

fn checkout_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("PAYSERA_CHECKOUT_CLIENT_ID", CLIENT_ID),
        ("PAYSERA_CHECKOUT_SECRET", SECRET),
        ("PAYSERA_CHECKOUT_SECRET_PREVIOUS", PREVIOUS),
    ]
}

async fn spawn(backend: Backend, extra: &[(&str, &str)]) -> TestApp {
    let mut env = checkout_env();
    env.extend_from_slice(extra);
    TestApp::spawn_with(backend, &env).await
}

fn snapshot(orderid: &str, amount: i64, paid: i64, updated_at: i64) -> SignedWebhook {
    CheckoutSigner::new(SECRET).snapshot(&OrderFigures {
        orderid,
        amount,
        amount_paid: paid,
        currency: "EUR",
        updated_at,
        payment_status: "settled",
    })
}

async fn register(app: &TestApp, orderid: &str, amount: i64, test: bool) {
    let response = app
        .client
        .put(format!("{}/api/v1/orders/{orderid}", app.admin))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"amount": amount, "currency": "EUR", "project_id": CLIENT_ID, "test": test}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "register {orderid}");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        (&body["project_id"], &body["test"]),
        (&json!(CLIENT_ID), &json!(test))
    );
}

async fn order(app: &TestApp, orderid: &str) -> serde_json::Value {
    let response = app
        .client
        .get(format!(
            "{}/api/v1/orders/{orderid}?project_id={CLIENT_ID}",
            app.admin
        ))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "order {orderid}");
    response.json().await.unwrap()
}

fn outcomes(order: &serde_json::Value) -> Vec<String> {
    order["callbacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["api"], "checkout");
            c["outcome"].as_str().unwrap().to_string()
        })
        .collect()
}

fn events(app: &TestApp, orderid: &str) -> Vec<String> {
    #[derive(diesel::QueryableByName)]
    struct Kind {
        #[diesel(sql_type = diesel::sql_types::Text)]
        kind: String,
    }
    app.query::<Kind>(&format!(
        "SELECT kind FROM outbox WHERE orderid = '{orderid}' ORDER BY id"
    ))
    .into_iter()
    .map(|k| k.kind)
    .collect()
}

async fn paid_partial_full_overpaid_and_out_of_order(backend: Backend) {
    let app = spawn(backend, &[]).await;
    register(&app, "C-1", 2500, false).await;

    // Partial, then full: one fulfilment, the amount due shown in between.
    let reply = app.post_webhook(&snapshot("C-1", 2500, 1000, 100)).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "OK"));
    let after_partial = order(&app, "C-1").await;
    assert_eq!(after_partial["state"], "awaiting_payment");
    assert_eq!(
        (&after_partial["amount_paid"], &after_partial["amount_due"]),
        (&json!(1000), &json!(1500))
    );
    assert_eq!(app.fulfilments("C-1"), 0);
    assert_eq!(
        app.post_webhook(&snapshot("C-1", 2500, 2500, 200))
            .await
            .status,
        200
    );
    // The same amount again in a newer body (`duplicate`), and an older
    // snapshot arriving late (lower updated_at: `stale`, answered `OK` like a
    // duplicate so that Paysera stops): neither moves the order.
    assert_eq!(
        app.post_webhook(&snapshot("C-1", 2500, 2500, 300))
            .await
            .status,
        200
    );
    let late = app.post_webhook(&snapshot("C-1", 2500, 1000, 150)).await;
    assert_eq!((late.status, late.body.as_str()), (200, "OK"));

    let paid = order(&app, "C-1").await;
    assert_eq!(
        outcomes(&paid),
        ["partially_paid", "fulfilled", "duplicate", "stale"]
    );
    assert_eq!(paid["state"], "paid");
    assert_eq!(
        (&paid["amount_paid"], &paid["amount_due"]),
        (&json!(2500), &json!(0))
    );
    assert_eq!(paid["paysera_order_id"].as_str().map(str::len), Some(36));
    assert_eq!(app.fulfilments("C-1"), 1);
    assert_eq!(events(&app, "C-1"), ["partially_paid", "fulfilled"]);

    // Overpaid: fulfilled, with the flag.
    register(&app, "C-2", 2500, false).await;
    assert_eq!(
        app.post_webhook(&snapshot("C-2", 2500, 2600, 100))
            .await
            .status,
        200
    );
    let over = order(&app, "C-2").await;
    assert_eq!(outcomes(&over), ["fulfilled"]);
    assert_eq!(
        (&over["state"], &over["flags"]),
        (&json!("paid"), &json!(["overpaid"]))
    );
    assert_eq!(app.fulfilments("C-2"), 1);

    // More money after the order was paid: paid_again, not a second fulfilment.
    assert_eq!(
        app.post_webhook(&snapshot("C-1", 2500, 5000, 400))
            .await
            .status,
        200
    );
    let again = order(&app, "C-1").await;
    assert_eq!(outcomes(&again).last().unwrap(), "paid_again");
    assert_eq!(again["flags"], json!(["paid_again"]));
    assert_eq!(app.fulfilments("C-1"), 1);

    let metrics = app.metrics().await;
    let count = |outcome: &str| {
        metrics[&format!("payhook_callbacks_total{{api=\"checkout\",outcome=\"{outcome}\"}}")]
    };
    assert_eq!(
        (
            count("fulfilled"),
            count("partially_paid"),
            count("duplicate"),
            count("stale"),
            count("paid_again")
        ),
        (2.0, 1.0, 1.0, 1.0, 1.0)
    );
    assert_eq!(
        metrics["payhook_callbacks_total{api=\"classic\",outcome=\"fulfilled\"}"],
        0.0
    );
}

async fn the_same_webhook_ten_times_at_once_fulfils_once(backend: Backend) {
    let app = spawn(backend, &[]).await;
    register(&app, "C-10", 2500, false).await;
    let webhook = snapshot("C-10", 2500, 2500, 100);
    let replies = futures::future::join_all((0..10).map(|_| app.post_webhook(&webhook))).await;
    assert!(
        replies
            .iter()
            .all(|r| (r.status, r.body.as_str()) == (200, "OK")),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let mut seen = outcomes(&order(&app, "C-10").await);
    seen.sort();
    let mut expected = vec!["duplicate".to_string(); 9];
    expected.push("fulfilled".into());
    assert_eq!(seen, expected);
    assert_eq!(app.fulfilments("C-10"), 1);
    assert_eq!(events(&app, "C-10"), ["fulfilled"]);
}

async fn rejections_unknown_events_chargebacks_and_test_orders(backend: Backend) {
    let smtp = SmtpSink::start();
    let app = spawn(
        backend,
        &[
            ("SMTP_URL", &smtp.url()),
            ("ALERT_EMAIL_FROM", "payhook@shop.example"),
            ("ALERT_EMAIL_TO", "ops@shop.example"),
            ("ALERT_MIN_INTERVAL", "0s"),
        ],
    )
    .await;
    register(&app, "C-20", 2500, false).await;

    // A wrong secret: 403 (Paysera keeps retrying), stored as rejected, alert.
    let forged = CheckoutSigner::new("not-the-secret").snapshot(&OrderFigures {
        orderid: "C-20",
        amount: 2500,
        amount_paid: 2500,
        currency: "EUR",
        updated_at: 100,
        payment_status: "settled",
    });
    let reply = app.post_webhook(&forged).await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert_eq!(app.fulfilments("C-20"), 0);
    let mail = &smtp.wait_for(1, Duration::from_secs(10))[0];
    assert_eq!(
        subject(mail).split(':').next(),
        Some("[payhook] signature_rejected")
    );
    // A missing header: the same.
    let mut headerless = snapshot("C-20", 2500, 2500, 100);
    headerless
        .headers
        .retain(|(n, _)| *n != "X-Paysera-Callback-Id");
    assert_eq!(app.post_webhook(&headerless).await.status, 403);

    // The previous secret still verifies during a rotation.
    let rotated = CheckoutSigner::new(PREVIOUS).snapshot(&OrderFigures {
        orderid: "C-20",
        amount: 2500,
        amount_paid: 2500,
        currency: "EUR",
        updated_at: 100,
        payment_status: "settled",
    });
    assert_eq!(app.post_webhook(&rotated).await.body, "OK");
    assert_eq!(app.fulfilments("C-20"), 1);

    // Authentic but without an event: 400, stored as rejected.
    let no_event =
        CheckoutSigner::new(SECRET).sign(br#"{"order":{"merchant_order_id":"C-20"}}"#.to_vec());
    let reply = app.post_webhook(&no_event).await;
    assert_eq!(reply.status, 400, "{}", reply.body);

    // An event nothing handles yet: kept, counted, 200.
    let settled = CheckoutSigner::new(SECRET).payment_status("C-20", "pay-1", "settled");
    assert_eq!(app.post_webhook(&settled).await.body, "OK");

    // A chargeback: disputed, flagged, the shop is told, an alert goes out.
    let chargeback = CheckoutSigner::new(SECRET).payment_status("C-20", "pay-1", "chargeback");
    assert_eq!(app.post_webhook(&chargeback).await.body, "OK");
    let disputed = order(&app, "C-20").await;
    assert_eq!(outcomes(&disputed), ["fulfilled", "info", "disputed"]);
    assert_eq!(
        (&disputed["state"], &disputed["flags"]),
        (&json!("disputed"), &json!(["disputed"]))
    );
    assert_eq!(events(&app, "C-20"), ["fulfilled", "disputed"]);
    let mails = smtp.wait_for(3, Duration::from_secs(10));
    assert!(
        mails
            .iter()
            .any(|m| subject(m).starts_with("[payhook] disputed")),
        "{mails:?}"
    );

    // The journal keeps the headers and the raw body; the secret never.
    #[derive(diesel::QueryableByName)]
    struct Raw {
        #[diesel(sql_type = diesel::sql_types::Text)]
        raw_query: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        outcome: String,
        #[diesel(sql_type = diesel::sql_types::Integer)]
        http_status: i32,
    }
    let rows =
        app.query::<Raw>("SELECT raw_query, outcome, http_status FROM callbacks ORDER BY id");
    let stored: Vec<(&str, i32)> = rows
        .iter()
        .map(|r| (r.outcome.as_str(), r.http_status))
        .collect();
    assert_eq!(
        stored,
        [
            ("rejected", 403),
            ("rejected", 403),
            ("fulfilled", 200),
            ("rejected", 400),
            ("info", 200),
            ("disputed", 200),
        ]
    );
    let fulfilled = &rows[2].raw_query;
    assert!(fulfilled.contains("x-paysera-signature: "), "{fulfilled}");
    assert!(
        fulfilled.contains("\"merchant_order_id\":\"C-20\""),
        "{fulfilled}"
    );
    assert!(rows
        .iter()
        .all(|r| !r.raw_query.contains(SECRET) && !r.raw_query.contains(PREVIOUS)));

    // A test order while test payments are refused: kept, not fulfilled.
    register(&app, "C-21", 900, true).await;
    assert_eq!(
        app.post_webhook(&snapshot("C-21", 900, 900, 100))
            .await
            .body,
        "OK"
    );
    let test_order = order(&app, "C-21").await;
    assert_eq!(outcomes(&test_order), ["test_ignored"]);
    assert_eq!(test_order["test"], true);
    assert_eq!(app.fulfilments("C-21"), 0);

    // An order nobody registered: 409, so Paysera retries while the shop catches up.
    assert_eq!(
        app.post_webhook(&snapshot("C-22", 900, 900, 100))
            .await
            .status,
        409
    );
}

/// A database that is down answers 503 in time, never 200; Paysera's retry
/// after it comes back fulfils the order once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_outage_answers_503_never_ok() {
    use crate::support::{postgres, proxy::ChaosProxy};
    let direct = tokio::task::spawn_blocking(postgres::fresh_database)
        .await
        .unwrap();
    let proxy = ChaosProxy::start(postgres::server_addr()).unwrap();
    let via_proxy = postgres::url_via(&direct, proxy.addr());
    let mut env = checkout_env();
    env.push(("PAYHOOK_DB_POOL_SIZE", "2"));
    let app = TestApp::spawn_on(
        Backend::Postgres,
        &via_proxy,
        tempfile::tempdir().unwrap(),
        &env,
    )
    .await;
    register(&app, "C-30", 2500, false).await;
    let webhook = snapshot("C-30", 2500, 2500, 100);

    tokio::task::block_in_place(|| proxy.break_networking());
    let started = std::time::Instant::now();
    let reply = app.post_webhook(&webhook).await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );

    proxy.restore_networking();
    let reply = app.post_webhook(&webhook).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "OK"));
    assert_eq!(app.post_webhook(&webhook).await.body, "OK");
    assert_eq!(app.fulfilments("C-30"), 1);
    assert_eq!(
        outcomes(&order(&app, "C-30").await),
        ["fulfilled", "duplicate"]
    );
}

/// Anyone can send junk to the public endpoint: a large unauthenticated body
/// is stored only in part, with its length and digest.
async fn a_large_forged_webhook_is_stored_bounded(backend: Backend) {
    let app = spawn(backend, &[("PAYHOOK_REJECTED_MAX_BYTES", "512")]).await;
    let junk = vec![b'x'; 60 * 1024];
    let forged = CheckoutSigner::new("not-the-secret").sign(junk);
    assert_eq!(app.post_webhook(&forged).await.status, 403);
    #[derive(diesel::QueryableByName)]
    struct Stored {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
        raw_length: Option<i64>,
        #[diesel(sql_type = diesel::sql_types::Bool)]
        raw_truncated: bool,
    }
    let rows = app.query::<Stored>(
        "SELECT CAST(length(raw_query) AS BIGINT) AS n, raw_length, raw_truncated FROM callbacks WHERE api = 'checkout'",
    );
    assert_eq!(rows.len(), 1);
    assert!(
        rows[0].n <= 512 && rows[0].raw_truncated,
        "{} bytes kept",
        rows[0].n
    );
    assert!(rows[0].raw_length.unwrap() > 60 * 1024);
}

/// On the Checkout path, two completed refunds whose sum passes
/// `i64::MAX` are both answered 200; the second leaves the total at the first
/// and flags the order `refund_overflow`, never a database error.
async fn refunds_whose_total_overflows_are_flagged(backend: Backend) {
    const HUGE: i64 = 9_223_372_036_854_775_000;
    let app = spawn(backend, &[]).await;
    register(&app, "M-REF", 2500, false).await;
    let refund = |id: &str| {
        let body = json!({
            "version": 1,
            "event": {"type": "refund", "name": "status_updated"},
            "order": {"merchant_order_id": "M-REF"},
            "refund": {"id": id, "status": "completed", "amount": HUGE, "currency": "EUR"},
        });
        CheckoutSigner::new(SECRET).sign(body.to_string().into_bytes())
    };
    for id in ["r-1", "r-2"] {
        let reply = app.post_webhook(&refund(id)).await;
        assert_eq!(reply.status, 200, "{id}: {}", reply.body);
    }
    let order = order(&app, "M-REF").await;
    assert_eq!(order["refunded_amount"], json!(HUGE), "{order}");
    assert_eq!(order["state"], "refunded", "{order}");
    assert_eq!(order["flags"], json!(["refund_overflow"]), "{order}");
    let m = app.metrics().await;
    assert_eq!(
        m["payhook_callbacks_total{api=\"checkout\",outcome=\"refunded\"}"],
        2.0
    );
    assert_eq!(m["payhook_db_errors_total"], 0.0);
}

/// A snapshot of a payer-set order (spec vector V5's shape): the payer chose
/// `amount`, and paid `paid`.
fn payer_set(orderid: &str, amount: i64, paid: i64, updated_at: i64) -> SignedWebhook {
    let body = json!({
        "event": {"name": "amount_paid_updated", "type": "order"},
        "order": {
            "paysera_order_id": "019ed03a-9c11-7d20-8e31-5a6b7c8d9e0f",
            "merchant_order_id": orderid,
            "amount": amount, "amount_paid": paid, "currency": "EUR",
            "status": if paid >= amount { "paid" } else { "pending_payment" },
            "payer_sets_amount": true,
            "updated_at": updated_at,
            "payment_links": [{"id": "link-1", "name": "Donation", "payer_sets_amount": true,
                "payments": [{"id": format!("pay-{updated_at}"), "method": "card",
                    "status": "settled", "payment_currency": "EUR", "payment_amount": paid}]}]
        }
    });
    CheckoutSigner::new(SECRET).sign(body.to_string().into_bytes())
}

async fn put(app: &TestApp, orderid: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let response = app
        .client
        .put(format!("{}/api/v1/orders/{orderid}", app.admin))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// An order registered at 2 500 (a fixed amount, the default)
/// is not fulfilled by a genuine snapshot that says the payer set the amount
/// to 1 and paid 1: an amount mismatch, to review, as a classic callback.
async fn a_payer_set_snapshot_never_lowers_a_fixed_amount(backend: Backend) {
    let app = spawn(backend, &[]).await;
    register(&app, "C-FIX", 2500, false).await;
    let reply = app.post_webhook(&payer_set("C-FIX", 1, 1, 100)).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "OK"));
    let lowered = order(&app, "C-FIX").await;
    assert_eq!(outcomes(&lowered), ["amount_mismatch"]);
    assert_eq!(
        (&lowered["state"], &lowered["flags"]),
        (&json!("needs_review"), &json!(["unmatched_payment"]))
    );
    assert_eq!(
        lowered["callbacks"][0]["reason"],
        "amount 1, expected 2500 (registered as a fixed amount; the snapshot says the payer set it)"
    );
    assert_eq!(app.fulfilments("C-FIX"), 0);
    assert_eq!(events(&app, "C-FIX"), ["amount_mismatch"]);
    assert_eq!(lowered["amount_mode"], "fixed");
}

/// A registration says the payer sets the amount (Checkout only): what they
/// chose and paid, from the registered minimum up, fulfils and is recorded.
async fn a_payer_set_registration_is_fulfilled_with_what_was_paid(backend: Backend) {
    let app = spawn(backend, &[]).await;
    let payer_sets = json!({"amount": 500, "currency": "EUR", "project_id": CLIENT_ID,
                            "amount_mode": "payer_sets"});
    let (status, body) = put(&app, "C-GIFT", payer_sets.clone()).await;
    assert_eq!((status, &body["amount_mode"]), (201, &json!("payer_sets")));
    assert_eq!(put(&app, "C-GIFT", payer_sets).await.0, 200, "idempotent");
    let (status, body) = put(
        &app,
        "C-GIFT",
        json!({"amount": 500, "currency": "EUR", "project_id": CLIENT_ID}),
    )
    .await;
    assert_eq!(
        status, 409,
        "a fixed amount is another registration: {body}"
    );
    // Classic callbacks pay the registered amount exactly; a bad value is named.
    for (body, error) in [
        (
            json!({"amount": 500, "currency": "EUR", "amount_mode": "payer_sets"}),
            "amount_mode \"payer_sets\" is for Checkout projects; project 123 is a classic one, whose callbacks pay the registered amount exactly",
        ),
        (
            json!({"amount": 500, "currency": "EUR", "project_id": CLIENT_ID, "amount_mode": "any"}),
            "amount_mode must be \"fixed\" or \"payer_sets\"",
        ),
    ] {
        let (status, answer) = put(&app, "C-BAD", body).await;
        assert_eq!((status, &answer["error"]), (422, &json!(error)));
    }

    let reply = app
        .post_webhook(&payer_set("C-GIFT", 1200, 1200, 100))
        .await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "OK"));
    let paid = order(&app, "C-GIFT").await;
    assert_eq!(outcomes(&paid), ["fulfilled"]);
    assert_eq!(
        (&paid["state"], &paid["amount_paid"], &paid["flags"]),
        (&json!("paid"), &json!(1200), &json!([]))
    );
    assert_eq!(
        app.count(
            "SELECT count(*) AS n FROM fulfilments WHERE orderid = 'C-GIFT' AND amount = 1200"
        ),
        1
    );

    // Below the registered minimum: to review, never fulfilled.
    let (status, _) = put(
        &app,
        "C-LOW",
        json!({"amount": 500, "currency": "EUR", "project_id": CLIENT_ID,
               "amount_mode": "payer_sets"}),
    )
    .await;
    assert_eq!(status, 201);
    app.post_webhook(&payer_set("C-LOW", 400, 400, 100)).await;
    let low = order(&app, "C-LOW").await;
    assert_eq!(outcomes(&low), ["amount_mismatch"]);
    assert_eq!(
        low["callbacks"][0]["reason"],
        "payer-set amount 400 below the registered minimum 500"
    );
    assert_eq!(app.fulfilments("C-LOW"), 0);
}

both_backends!(
    a_large_forged_webhook_is_stored_bounded,
    a_payer_set_snapshot_never_lowers_a_fixed_amount,
    a_payer_set_registration_is_fulfilled_with_what_was_paid,
    paid_partial_full_overpaid_and_out_of_order,
    the_same_webhook_ten_times_at_once_fulfils_once,
    rejections_unknown_events_chargebacks_and_test_orders,
    refunds_whose_total_overflows_are_flagged,
);
