//! Operators' view: exact metric values after a scenario, alert e-mails over
//! real SMTP, rate limiting.

use std::collections::HashMap;
use std::time::Duration;

use crate::helpers::{Backend, TestApp};
use crate::support::gateway::{paid, paid_fields, sign, with, CallbackForm};
use crate::support::smtp::{subject, SmtpSink};
use crate::support::{postgres, proxy::ChaosProxy};

async fn scrape(app: &TestApp) -> HashMap<String, f64> {
    app.metrics().await
}

fn sms() -> Vec<(String, String)> {
    [
        ("projectid", "123"),
        ("to", "1679"),
        ("sms", "KEY hi"),
        ("from", "370600"),
        ("id", "77"),
        ("amount", "100"),
        ("currency", "EUR"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_outcome_is_counted_exactly() {
    let direct = tokio::task::spawn_blocking(postgres::fresh_database)
        .await
        .unwrap();
    let proxy = ChaosProxy::start(postgres::server_addr()).unwrap();
    let app = TestApp::spawn_on(
        Backend::Postgres,
        &postgres::url_via(&direct, proxy.addr()),
        tempfile::tempdir().unwrap(),
        &[],
    )
    .await;
    for (id, amount) in [
        ("M-1", 1250),
        ("M-2", 1250),
        ("M-3", 1250),
        ("M-4", 1250),
        ("M-5", 1250),
    ] {
        app.register(id, amount, "EUR").await;
    }
    let m1 = paid_fields("M-1", "1250", "EUR");
    let expect: Vec<(&str, String, u16)> = vec![
        ("fulfilled", sign(&m1, CallbackForm::Ss2), 200),
        ("duplicate", sign(&m1, CallbackForm::Ss2), 200),
        (
            "paid_again",
            sign(&with(m1.clone(), "requestid", "2"), CallbackForm::Ss2),
            200,
        ),
        (
            "not_paid",
            sign(
                &with(paid_fields("M-2", "1250", "EUR"), "status", "0"),
                CallbackForm::Ss2,
            ),
            200,
        ),
        (
            "pending",
            sign(
                &with(paid_fields("M-2", "1250", "EUR"), "status", "2"),
                CallbackForm::Ss2,
            ),
            200,
        ),
        (
            "info",
            sign(
                &with(paid_fields("M-2", "1250", "EUR"), "status", "3"),
                CallbackForm::Ss2,
            ),
            200,
        ),
        (
            "refunded",
            sign(
                &with(paid_fields("M-5", "1250", "EUR"), "status", "5"),
                CallbackForm::Ss2,
            ),
            200,
        ),
        (
            "test_ignored",
            sign(
                &with(paid_fields("M-2", "1250", "EUR"), "test", "1"),
                CallbackForm::Ss2,
            ),
            200,
        ),
        ("sms_received", sign(&sms(), CallbackForm::Ss2), 200),
        ("unknown_order", paid("NOPE", "1"), 409),
        ("amount_mismatch", paid("M-3", "1"), 200),
        (
            "currency_mismatch",
            sign(&paid_fields("M-4", "1250", "USD"), CallbackForm::Ss2),
            200,
        ),
        (
            "fulfilled",
            sign(&paid_fields("M-2", "1250", "EUR"), CallbackForm::Ss3),
            200,
        ),
    ];
    for (outcome, query, status) in &expect {
        let reply = app.get_callback(query).await;
        assert_eq!(reply.status, *status, "{outcome}: {}", reply.body);
    }
    let rejections = [
        (
            "signature",
            sign(&m1, CallbackForm::Ss2).replacen("data=c", "data=d", 1),
        ),
        ("signature", "data=QUJD&ss3=".to_string()),
        ("decoding", "data=!!!".to_string()),
        (
            "project",
            sign(&with(m1.clone(), "projectid", "999"), CallbackForm::Ss2),
        ),
        ("malformed", "data[]=1".to_string()),
        (
            "malformed",
            sign(&with(m1.clone(), "amount", "12.50"), CallbackForm::Ss2),
        ),
    ];
    for (_, query) in &rejections {
        assert_eq!(app.get_callback(query).await.status, 400, "{query}");
    }
    // The database goes away: one callback answered 503, counted as error.
    proxy.break_networking();
    assert_eq!(app.get_callback(&expect[0].1).await.status, 503);
    proxy.restore_networking();

    let m = scrape(&app).await;
    let count = |key: &str| {
        m.get(key)
            .copied()
            .unwrap_or_else(|| panic!("no metric {key}"))
    };
    let mut want: HashMap<&str, f64> = HashMap::new();
    for (outcome, _, _) in &expect {
        *want.entry(outcome).or_default() += 1.0;
    }
    want.insert("rejected", rejections.len() as f64);
    want.insert("error", 1.0);
    for outcome in [
        "rejected",
        "duplicate",
        "sms_received",
        "test_ignored",
        "not_paid",
        "pending",
        "info",
        "refunded",
        "unknown_order",
        "paid_again",
        "amount_mismatch",
        "currency_mismatch",
        "fulfilled",
        "error",
    ] {
        let got = count(&format!(
            "payhook_callbacks_total{{api=\"classic\",outcome=\"{outcome}\"}}"
        ));
        assert_eq!(got, want[outcome], "outcome {outcome}");
    }
    for (reason, n) in [
        ("signature", 2.0),
        ("decoding", 1.0),
        ("project", 1.0),
        ("malformed", 2.0),
    ] {
        assert_eq!(
            count(&format!(
                "payhook_callbacks_rejected_total{{reason=\"{reason}\"}}"
            )),
            n,
            "{reason}"
        );
    }
    let total = (expect.len() + rejections.len() + 1) as f64;
    assert_eq!(count("payhook_callback_duration_seconds_count"), total);
    assert_eq!(
        count("payhook_callback_duration_seconds_bucket{le=\"+Inf\"}"),
        total
    );
    assert_eq!(count("payhook_fulfilments_total"), 2.0);
    assert_eq!(count("payhook_db_errors_total"), 1.0);
    assert_eq!(count("payhook_alerts_failed_total"), 0.0);
    assert_eq!(
        count("payhook_alerts_sent_total{kind=\"paid_again\"}"),
        0.0,
        "alerts are off"
    );
    assert_eq!(
        count(&format!(
            "payhook_build_info{{version=\"{}\"}}",
            env!("CARGO_PKG_VERSION")
        )),
        1.0
    );
    assert!(m.contains_key("process_resident_memory_bytes"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn alerts_arrive_by_email_and_bursts_are_held_back() {
    let smtp = SmtpSink::start();
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("SMTP_URL", &smtp.url()),
            ("ALERT_EMAIL_FROM", "payhook <payhook@shop.example>"),
            ("ALERT_EMAIL_TO", "ops@shop.example, owner@shop.example"),
            ("ALERT_MIN_INTERVAL", "10m"),
        ],
    )
    .await;
    app.register("A-1", 1250, "EUR").await;
    let cheap = paid("A-1", "1");
    assert_eq!(
        app.get_callback(&cheap).await.body,
        "OK",
        "alerts never delay or change the answer"
    );
    let mismatch = &smtp.wait_for(1, Duration::from_secs(10))[0];
    assert_eq!(
        subject(mismatch),
        "[payhook] amount_mismatch: order A-1: amount_mismatch"
    );
    for expected in [
        "X-Envelope-To: ops@shop.example, owner@shop.example",
        "Order: A-1",
        "Reason: amount 1, expected 1250",
        "GET /api/v1/orders/A-1",
        "needs_review",
    ] {
        assert!(
            mismatch.contains(expected),
            "missing {expected:?} in:\n{mismatch}"
        );
    }

    let forged =
        sign(&paid_fields("A-1", "1250", "EUR"), CallbackForm::Ss3).replacen("data=c", "data=d", 1);
    let burst = futures::future::join_all((0..20).map(|_| app.get_callback(&forged))).await;
    assert!(burst.iter().all(|r| r.status == 400));
    let messages = smtp.wait_for(2, Duration::from_secs(10));
    // A quiet period on purpose: nothing more may happen within it, and an
    // absence cannot be polled for.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let messages_after = smtp.messages();
    assert_eq!(
        messages_after.len(),
        messages.len(),
        "20 rejections must send one e-mail, not 20"
    );
    let signature = &messages_after[1];
    assert_eq!(
        subject(signature),
        "[payhook] signature_rejected: callback rejected: ss3 signature does not verify"
    );
    assert!(
        signature.contains("GET /api/v1/callbacks?outcome=rejected"),
        "{signature}"
    );

    let m = scrape(&app).await;
    assert_eq!(
        m["payhook_alerts_sent_total{kind=\"signature_rejected\"}"],
        1.0
    );
    assert_eq!(
        m["payhook_alerts_sent_total{kind=\"amount_mismatch\"}"],
        1.0
    );
    assert_eq!(m["payhook_alerts_failed_total"], 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn held_back_alerts_are_summarised_after_the_interval() {
    let smtp = SmtpSink::start();
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("SMTP_URL", &smtp.url()),
            ("ALERT_EMAIL_FROM", "payhook@shop.example"),
            ("ALERT_EMAIL_TO", "ops@shop.example"),
            ("ALERT_MIN_INTERVAL", "2s"),
        ],
    )
    .await;
    for i in 0..5 {
        assert_eq!(
            app.get_callback(&format!("data=QUJD&ss2=x{i}"))
                .await
                .status,
            400
        );
    }
    let messages = smtp.wait_for(2, Duration::from_secs(10));
    assert_eq!(messages.len(), 2);
    assert!(
        messages[1].contains("3 more signature_rejected alert(s) were held back"),
        "{}",
        messages[1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_mail_server_is_counted_never_fatal() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("SMTP_URL", &format!("smtp://127.0.0.1:{closed}")),
            ("ALERT_EMAIL_FROM", "payhook@shop.example"),
            ("ALERT_EMAIL_TO", "ops@shop.example"),
        ],
    )
    .await;
    assert_eq!(app.get_callback("data=QUJD&ss2=AAAA").await.status, 400);
    let mut failed = 0.0;
    for _ in 0..100 {
        failed = scrape(&app).await["payhook_alerts_failed_total"];
        if failed > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(failed, 1.0);
    app.register("A-1", 1, "EUR").await;
    let reply = app.get_callback(&paid("A-1", "1")).await;
    assert_eq!(reply.body, "OK");
}

async fn missed_callback_is_noticed(backend: Backend) {
    let smtp = SmtpSink::start();
    let app = TestApp::spawn_with(
        backend,
        &[
            ("PAYHOOK_PUBLIC_URL", "https://pay.shop.example/"),
            ("MISSED_CALLBACK_AFTER", "1s"),
            ("SMTP_URL", &smtp.url()),
            ("ALERT_EMAIL_FROM", "payhook@shop.example"),
            ("ALERT_EMAIL_TO", "ops@shop.example"),
        ],
    )
    .await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut tokens = Vec::new();
    for id in ["R-1", "R-2"] {
        let token = app
            .payment_return_token(id, "https://shop.example/thanks?o=1")
            .await;
        tokens.push(token);
    }
    // Both buyers come back (the gateway appends its signed parameters); only R-2 gets paid.
    for (id, token) in ["R-1", "R-2"].iter().zip(&tokens) {
        let signed = paid(id, "500");
        let r = no_redirects
            .get(format!("{}/paysera/return/{token}?{signed}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302);
        assert_eq!(
            r.headers()["location"],
            format!("https://shop.example/thanks?o=1&{signed}").as_str()
        );
    }
    let unknown = no_redirects
        .get(format!("{}/paysera/return/{}", app.base, "0".repeat(32)))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(app.get_callback(&paid("R-2", "500")).await.body, "OK");
    assert!(app.order("R-1").await["returned_at"].is_string());

    let messages = smtp.wait_for(1, Duration::from_secs(15));
    assert_eq!(
        subject(&messages[0]),
        "[payhook] missed_callback: order R-1: buyer returned, no paid callback after 1s"
    );
    assert!(messages[0].contains("callbackurl"), "{}", messages[0]);
    assert_eq!(scrape(&app).await["payhook_orders_missing_callback"], 1.0);
    // A quiet period on purpose: nothing more may happen within it, and an
    // absence cannot be polled for.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(smtp.messages().len(), 1, "one alert per missed order");
}

crate::helpers::both_backends!(missed_callback_is_noticed);
