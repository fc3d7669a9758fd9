//! The outbox delivered to a real HTTP receiver on a loopback port,
//! signatures checked with the published Standard Webhooks crate (not
//! payhook's code), the events feed, and several instances on one database.

pub(crate) mod receiver;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use payhook::store::{AfterAttempt, Attempt, DatabaseConfig, EventFilter, EventState, Store};
use secrecy::SecretString;
use serde_json::Value;
use standardwebhooks::Webhook;

use crate::helpers::{both_backends, Backend, TestApp, ADMIN_TOKEN};
use crate::support::gateway::{paid_fields, sign, with, CallbackForm};
use crate::support::postgres;
use crate::support::smtp::{subject, SmtpSink};
use receiver::{Received, Receiver, Reply};

/// The Standard Webhooks libraries' own example secret, and another one.
const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const PREVIOUS: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn notify_env<'a>(receiver: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("SHOP_NOTIFY_URL", receiver),
        ("SHOP_NOTIFY_SECRET", SECRET),
    ];
    env.extend_from_slice(extra);
    env
}

/// A database two instances (or two lives of one) share.
async fn shared_database(backend: Backend, dir: &Path) -> String {
    match backend {
        Backend::Postgres => tokio::task::spawn_blocking(postgres::fresh_database)
            .await
            .unwrap(),
        Backend::Sqlite => format!("sqlite:{}", dir.join("shared.sqlite3").display()),
    }
}

async fn pay(app: &TestApp, fields: &[(String, String)]) {
    let reply = app.get_callback(&sign(fields, CallbackForm::Ss2)).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "OK"));
}

async fn admin_get(app: &TestApp, path: &str) -> (u16, Value) {
    let response = app
        .client
        .get(format!("{}/api/v1{path}", app.admin))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn event(app: &TestApp, id: i64) -> Value {
    let (status, body) = admin_get(app, &format!("/events/{id}")).await;
    assert_eq!(status, 200, "event {id}: {body}");
    body
}

async fn retry(app: &TestApp, id: i64) -> (u16, Value) {
    let response = app
        .client
        .post(format!("{}/api/v1/events/{id}/retry", app.admin))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn wait_for_state(app: &TestApp, id: i64, state: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let e = event(app, id).await;
        if e["state"] == state {
            return e;
        }
        assert!(Instant::now() < deadline, "event {id} not {state}: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn metrics(app: &TestApp) -> HashMap<String, f64> {
    app.metrics().await
}

fn verify(request: &Received, secret: &str) -> Result<(), standardwebhooks::WebhookError> {
    Webhook::new(secret)
        .unwrap()
        .verify(&request.body, &request.headers)
}

/// 3 failures then a 2xx, and exactly one more request; same `webhook-id`
/// every time; the default backoff (1 s doubling ± 20 %); both signatures of
/// a rotation verify with the published Standard Webhooks crate.
async fn a_failing_shop_gets_the_event_until_it_acknowledges(backend: Backend) {
    let shop = Receiver::start(|_, before| {
        if before.len() < 3 {
            Reply::Status(500)
        } else {
            Reply::Status(204)
        }
    })
    .await;
    let url = shop.url();
    let app = TestApp::spawn_with(
        backend,
        &notify_env(&url, &[("SHOP_NOTIFY_SECRET_PREVIOUS", PREVIOUS)]),
    )
    .await;
    app.register("A-1", 1250, "EUR").await;
    let paid_at = Instant::now();
    pay(&app, &paid_fields("A-1", "1250", "EUR")).await;
    let id = app.ids("outbox")[0];

    let received = shop
        .wait_until(Duration::from_secs(30), "four attempts", |r| r.len() >= 4)
        .await;
    wait_for_state(&app, id, "delivered", Duration::from_secs(5)).await;
    // A quiet period on purpose: nothing more may happen within it, and an
    // absence cannot be polled for.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let received_later = shop.received();
    assert_eq!(received_later.len(), 4, "delivered exactly once more");

    // The first attempt within a second of the commit (plus the 250 ms poll
    // and a loaded machine's slack); then 1, 2, 4 s ± 20 %.
    let first = received[0].at.duration_since(paid_at);
    assert!(
        first < Duration::from_millis(1500),
        "first attempt after {first:?}"
    );
    for (i, pair) in received.windows(2).enumerate() {
        let gap = pair[1].at.duration_since(pair[0].at).as_secs_f64();
        let nominal = f64::from(1u32 << i);
        assert!(
            gap >= nominal * 0.8 - 0.05 && gap <= nominal * 1.2 + 1.0,
            "gap {} was {gap:.2}s, expected about {nominal}s",
            i + 1
        );
    }
    assert!(received[3].at.duration_since(received[0].at) < Duration::from_secs(60));

    for request in &received {
        assert_eq!(
            request.id(),
            id.to_string(),
            "the id is stable across retries"
        );
        assert!(
            request
                .request_line
                .starts_with("POST /hooks/payhook?shop_token=t0k3n "),
            "{}",
            request.request_line
        );
        assert_eq!(request.headers["content-type"], "application/json");
        let signatures = request.headers["webhook-signature"].to_str().unwrap();
        assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
        verify(request, SECRET).expect("current secret verifies");
        verify(request, PREVIOUS).expect("previous secret verifies");
        let stranger = "whsec_QUJDREVGR0hJSktMTU5PUFFSU1RVVldY";
        assert!(
            verify(request, stranger).is_err(),
            "another secret does not"
        );
        let mut tampered = request.clone();
        tampered.body = request.body.replace_first(b"1250", b"1251");
        assert!(
            verify(&tampered, SECRET).is_err(),
            "a changed body does not"
        );
    }
    assert_eq!(
        received[0].body, received[3].body,
        "the same body every time"
    );

    let callback_id = app.count("SELECT id AS n FROM callbacks WHERE outcome = 'fulfilled'");
    let body = received[3].json();
    let created_at = body["created_at"].as_str().unwrap().to_string();
    assert_eq!(
        body,
        serde_json::json!({
            "id": id, "type": "order.paid", "created_at": created_at, "project_id": 123,
            "orderid": "A-1", "amount": 1250, "currency": "EUR", "payamount": 1250,
            "paycurrency": "EUR", "payment": "hanza", "test": false, "callback_id": callback_id,
        })
    );

    let details = event(&app, id).await;
    assert_eq!(details["state"], "delivered");
    assert_eq!(details["attempts"], 4);
    let log = details["attempt_log"].as_array().unwrap();
    let statuses: Vec<Value> = log.iter().map(|a| a["status"].clone()).collect();
    assert_eq!(statuses, [500, 500, 500, 204]);
    for attempt in log {
        assert!(attempt["at"].is_string() && attempt["duration_ms"].as_i64().unwrap() >= 0);
        assert!(attempt["error"].is_null());
    }
    assert!(details["delivered_at"].is_string() && details["next_attempt_at"].is_null());

    let m = metrics(&app).await;
    assert_eq!(m[r#"payhook_notifications_total{result="delivered"}"#], 1.0);
    assert_eq!(m[r#"payhook_notifications_total{result="failed"}"#], 3.0);
    assert_eq!(m[r#"payhook_notifications_total{result="dead"}"#], 0.0);
    assert_eq!(m["payhook_notification_duration_seconds_count"], 4.0);
}

trait ReplaceFirst {
    fn replace_first(&self, from: &[u8], to: &[u8]) -> Vec<u8>;
}

impl ReplaceFirst for Vec<u8> {
    fn replace_first(&self, from: &[u8], to: &[u8]) -> Vec<u8> {
        let at = self
            .windows(from.len())
            .position(|w| w == from)
            .expect("present");
        [&self[..at], to, &self[at + from.len()..]].concat()
    }
}

/// A shop that accepts the connection and never answers: every attempt hits
/// SHOP_NOTIFY_TIMEOUT, and after SHOP_NOTIFY_MAX_AGE the event is dead, the
/// `notification_dead` alert goes out and is counted.
async fn a_silent_shop_times_out_and_the_event_ends_dead(backend: Backend) {
    let shop = Receiver::always(Reply::Silent).await;
    let smtp = SmtpSink::start();
    let (url, smtp_url) = (shop.url(), smtp.url());
    let app = TestApp::spawn_with(
        backend,
        &notify_env(
            &url,
            &[
                ("SHOP_NOTIFY_TIMEOUT", "1s"),
                ("SHOP_NOTIFY_MAX_AGE", "4s"),
                ("SMTP_URL", &smtp_url),
                ("ALERT_EMAIL_FROM", "payhook@shop.example"),
                ("ALERT_EMAIL_TO", "ops@shop.example"),
            ],
        ),
    )
    .await;
    app.register("A-1", 1250, "EUR").await;
    pay(&app, &paid_fields("A-1", "1250", "EUR")).await;
    let id = app.ids("outbox")[0];

    let dead = wait_for_state(&app, id, "dead", Duration::from_secs(30)).await;
    let log = dead["attempt_log"].as_array().unwrap();
    assert!(log.len() >= 2, "{dead}");
    assert_eq!(dead["attempts"], log.len());
    for attempt in log {
        assert!(attempt["status"].is_null(), "{attempt}");
        assert_eq!(attempt["error"], "timed out after 1000ms");
        let ms = attempt["duration_ms"].as_i64().unwrap();
        assert!((1000..3000).contains(&ms), "{attempt}");
    }
    let created =
        chrono::DateTime::parse_from_rfc3339(dead["created_at"].as_str().unwrap()).unwrap();
    let dead_at = chrono::DateTime::parse_from_rfc3339(dead["dead_at"].as_str().unwrap()).unwrap();
    assert!(dead_at - created >= chrono::Duration::seconds(4), "{dead}");
    assert_eq!(
        shop.for_event(id).len(),
        log.len(),
        "every attempt reached the shop"
    );

    let mail = smtp.wait_for(1, Duration::from_secs(10));
    assert!(
        subject(&mail[0]).contains("notification_dead"),
        "{}",
        mail[0]
    );
    assert!(
        mail[0].contains(&format!("GET /api/v1/events/{id}")),
        "{}",
        mail[0]
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = metrics(&app).await;
        if m[r#"payhook_alerts_sent_total{kind="notification_dead"}"#] == 1.0 {
            assert_eq!(m[r#"payhook_notifications_total{result="dead"}"#], 1.0);
            assert_eq!(
                m[r#"payhook_notifications_total{result="failed"}"#],
                log.len() as f64
            );
            break;
        }
        assert!(Instant::now() < deadline, "alert not counted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Dead is final: no further attempt.
    let attempts = shop.received().len();
    // A quiet period on purpose: nothing more may happen within it, and an
    // absence cannot be polled for.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(shop.received().len(), attempts);
}

/// Events pending when the service stops are delivered by the next start.
async fn pending_events_are_delivered_after_a_restart(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let database = shared_database(backend, dir.path()).await;
    let down = Receiver::always(Reply::Status(503)).await;
    let down_url = down.url();
    let first = TestApp::spawn_on(
        backend,
        &database,
        tempfile::tempdir().unwrap(),
        &notify_env(&down_url, &[]),
    )
    .await;
    for id in ["A-1", "A-2", "A-3"] {
        first.register(id, 1250, "EUR").await;
        pay(&first, &paid_fields(id, "1250", "EUR")).await;
    }
    let ids = first.ids("outbox");
    assert_eq!(ids.len(), 3);
    down.wait_until(Duration::from_secs(10), "each event tried", |r| {
        let seen: HashSet<String> = r.iter().map(Received::id).collect();
        seen.len() == 3
    })
    .await;
    // The gauges (refreshed every 5 s) show the backlog.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = metrics(&first).await;
        if m["payhook_outbox_pending"] == 3.0 {
            assert!(m["payhook_outbox_oldest_pending_seconds"] >= 0.0);
            break;
        }
        assert!(Instant::now() < deadline, "pending gauge never reached 3");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    first.stop.stop().await;
    // Attempts already in flight may still land: a quiet period on purpose,
    // nothing outside the worker says when the last one has.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tried_before_stop = down.received().len();
    assert_eq!(
        first.count("SELECT count(*) AS n FROM outbox WHERE state = 'pending'"),
        3
    );

    let up = Receiver::always(Reply::Status(200)).await;
    let up_url = up.url();
    let second = TestApp::spawn_on(
        backend,
        &database,
        tempfile::tempdir().unwrap(),
        &notify_env(&up_url, &[]),
    )
    .await;
    // The first attempts' backoff (1 s, then 2 s) still applies.
    for id in &ids {
        wait_for_state(&second, *id, "delivered", Duration::from_secs(15)).await;
        assert_eq!(up.for_event(*id).len(), 1);
    }
    assert_eq!(
        down.received().len(),
        tried_before_stop,
        "the stopped instance sent nothing more"
    );
}

/// Two instances on one database, 200 events waiting: every event reaches the
/// shop once, except the one whose 2xx the test loses on purpose, which comes
/// exactly once more.
async fn two_instances_deliver_two_hundred_events_once_each(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let database = shared_database(backend, dir.path()).await;
    let relaxed = [
        ("PAYHOOK_ORDER_CHECK", "none"),
        ("PAYHOOK_DB_ACQUIRE_TIMEOUT", "30s"),
    ];
    // Written while delivery is off, so both instances start on a backlog.
    let writer =
        TestApp::spawn_on(backend, &database, tempfile::tempdir().unwrap(), &relaxed).await;
    let queries: Vec<String> = (0..200)
        .map(|i| {
            sign(
                &paid_fields(&format!("M-{i:03}"), "700", "EUR"),
                CallbackForm::Ss2,
            )
        })
        .collect();
    for chunk in queries.chunks(20) {
        let replies = futures::future::join_all(chunk.iter().map(|q| writer.get_callback(q))).await;
        for r in replies {
            assert_eq!((r.status, r.body.as_str()), (200, "OK"));
        }
    }
    writer.stop.stop().await;
    let ids = writer.ids("outbox");
    assert_eq!(ids.len(), 200);
    let lost = ids[99].to_string();

    let shop = Receiver::start(move |request, before| {
        if request.id() == lost && !before.iter().any(|b| b.id() == lost) {
            Reply::Drop
        } else {
            Reply::Status(200)
        }
    })
    .await;
    let url = shop.url();
    let env = notify_env(&url, &relaxed);
    let (a, b) = tokio::join!(
        TestApp::spawn_on(backend, &database, tempfile::tempdir().unwrap(), &env),
        TestApp::spawn_on(backend, &database, tempfile::tempdir().unwrap(), &env),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while a.count("SELECT count(*) AS n FROM outbox WHERE state = 'delivered'") < 200 {
        assert!(Instant::now() < deadline, "not all delivered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A quiet period on purpose: nothing more may happen within it, and an
    // absence cannot be polled for.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let received = shop.received();
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for r in &received {
        *per_id.entry(r.id()).or_default() += 1;
        verify(r, SECRET).expect("signed");
    }
    assert_eq!(per_id.len(), 200, "every event arrived");
    assert_eq!(received.len(), 201, "{} deliveries", received.len());
    let lost = ids[99].to_string();
    assert_eq!(
        per_id[&lost], 2,
        "the event whose answer was lost came again"
    );
    assert!(per_id.iter().all(|(id, n)| *n == 1 || *id == lost));
    assert_eq!(a.count("SELECT count(*) AS n FROM outbox_attempts"), 201);
    // Both instances worked on the backlog: each counts its own deliveries.
    let (ma, mb) = (metrics(&a).await, metrics(&b).await);
    let key = r#"payhook_notifications_total{result="delivered"}"#;
    assert_eq!(ma[key] + mb[key], 200.0);
}

/// A shop that hangs never delays a callback's answer.
async fn a_callback_is_answered_at_once_while_the_shop_hangs(backend: Backend) {
    let shop = Receiver::always(Reply::Silent).await;
    let url = shop.url();
    let app = TestApp::spawn_with(
        backend,
        &notify_env(&url, &[("PAYHOOK_ORDER_CHECK", "none")]),
    )
    .await;
    for i in 0..5 {
        pay(&app, &paid_fields(&format!("H-{i}"), "100", "EUR")).await;
    }
    shop.wait_until(Duration::from_secs(5), "five hanging attempts", |r| {
        r.len() == 5
    })
    .await;

    let query = sign(&paid_fields("H-9", "100", "EUR"), CallbackForm::Ss2);
    let started = Instant::now();
    let reply = app.get_callback(&query).await;
    let took = started.elapsed();
    assert_eq!((reply.status, reply.body.as_str()), (200, "OK"));
    assert!(
        took < Duration::from_millis(1000),
        "answered after {took:?}"
    );
    // The five attempts are still hanging (10 s time-out): none recorded yet.
    assert_eq!(app.count("SELECT count(*) AS n FROM outbox_attempts"), 0);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM outbox WHERE state = 'pending'"),
        6
    );
}

/// The feed pages in feed order, filters by type, and shows each event as the
/// shop receives it plus its state, attempts and position. Delivery is off here.
async fn the_feed_pages_through_events_in_id_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (id, amount) in [("A-1", 1250), ("B-1", 1000), ("C-1", 500)] {
        app.register(id, amount, "EUR").await;
    }
    pay(&app, &paid_fields("A-1", "1250", "EUR")).await;
    // An event enters the feed at the first read after its commit.
    let (_, early) = admin_get(&app, "/events?after=0").await;
    assert_eq!(early["events"].as_array().unwrap().len(), 1, "{early}");
    pay(&app, &paid_fields("B-1", "999", "EUR")).await;
    pay(
        &app,
        &with(
            with(paid_fields("A-1", "1250", "EUR"), "status", "5"),
            "refund_amount",
            "250",
        ),
    )
    .await;
    pay(&app, &paid_fields("C-1", "500", "EUR")).await;
    pay(
        &app,
        &with(paid_fields("C-1", "500", "EUR"), "requestid", "555"),
    )
    .await;
    let ids = app.ids("outbox");
    assert_eq!(ids.len(), 5);

    let deadline = Instant::now() + Duration::from_secs(10);
    let all = loop {
        let (status, page) = admin_get(&app, "/events?after=0").await;
        assert_eq!(status, 200);
        if page["events"].as_array().unwrap().len() == 5 {
            break page;
        }
        assert!(
            Instant::now() < deadline,
            "feed never showed 5 events: {page}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let types: Vec<&str> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "order.paid",
            "order.needs_review",
            "order.refunded",
            "order.paid",
            "order.paid_again"
        ]
    );
    let positions: Vec<i64> = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["position"].as_i64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert_eq!(all["next_after"], positions[4]);
    for (e, id) in all["events"].as_array().unwrap().iter().zip(&ids) {
        assert_eq!(e["id"], *id);
        assert_eq!(
            (&e["state"], &e["attempts"]),
            (&Value::from("pending"), &Value::from(0))
        );
        let mut keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        let mut want = vec![
            "amount",
            "attempts",
            "callback_id",
            "created_at",
            "currency",
            "id",
            "orderid",
            "payamount",
            "paycurrency",
            "payment",
            "position",
            "project_id",
            "state",
            "test",
            "type",
        ];
        if e["type"] == "order.refunded" {
            want.push("refund_amount");
            assert_eq!(e["refund_amount"], 250);
        }
        want.sort();
        assert_eq!(keys, want);
    }
    assert_eq!(
        all["events"][1]["amount"], 999,
        "what was paid, in minor units"
    );

    let (_, page1) = admin_get(&app, "/events?after=0&limit=2").await;
    assert_eq!(page1["events"].as_array().unwrap().len(), 2);
    assert_eq!(page1["next_after"], positions[1]);
    let (_, page2) = admin_get(&app, &format!("/events?after={}&limit=2", positions[1])).await;
    let page2_ids: Vec<&Value> = page2["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["id"])
        .collect();
    assert_eq!(page2_ids, [&Value::from(ids[2]), &Value::from(ids[3])]);
    let (_, end) = admin_get(&app, &format!("/events?after={}", positions[4])).await;
    assert_eq!(
        end,
        serde_json::json!({"events": [], "next_after": positions[4]})
    );

    let (_, review) = admin_get(&app, "/events?after=0&type=order.needs_review").await;
    let review = review["events"].as_array().unwrap();
    assert_eq!(review.len(), 1);
    assert_eq!(
        (&review[0]["id"], &review[0]["orderid"]),
        (&Value::from(ids[1]), &Value::from("B-1"))
    );

    let one = event(&app, ids[0]).await;
    assert_eq!(one["attempt_log"], serde_json::json!([]));
    assert!(one["next_attempt_at"].is_string());
    assert_eq!(one["type"], "order.paid");

    for (path, status) in [
        ("/events/999999", 404),
        ("/events/abc", 400),
        ("/events?after=-1", 400),
        ("/events?after=abc", 400),
        ("/events?limit=0", 400),
        ("/events?limit=1001", 400),
        ("/events?type=order.nope", 400),
    ] {
        assert_eq!(admin_get(&app, path).await.0, status, "{path}");
    }
    assert_eq!(retry(&app, 999_999).await.0, 404);
    let anonymous = app
        .client
        .get(format!("{}/api/v1/events", app.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
}

/// `POST /api/v1/events/{id}/retry` sends a dead or a delivered event again,
/// with the same `webhook-id`.
async fn a_dead_or_delivered_event_is_sent_again_with_the_same_id(backend: Backend) {
    let healthy = Arc::new(AtomicBool::new(false));
    let shop_healthy = healthy.clone();
    let shop = Receiver::start(move |_, _| {
        if shop_healthy.load(Ordering::SeqCst) {
            Reply::Status(200)
        } else {
            Reply::Status(500)
        }
    })
    .await;
    let url = shop.url();
    let app = TestApp::spawn_with(
        backend,
        &notify_env(
            &url,
            &[
                ("SHOP_NOTIFY_MAX_AGE", "2s"),
                ("SHOP_NOTIFY_MAX_INTERVAL", "1s"),
            ],
        ),
    )
    .await;
    app.register("A-1", 1250, "EUR").await;
    pay(&app, &paid_fields("A-1", "1250", "EUR")).await;
    let id = app.ids("outbox")[0];
    let dead = wait_for_state(&app, id, "dead", Duration::from_secs(20)).await;
    let tries = dead["attempts"].as_i64().unwrap();

    healthy.store(true, Ordering::SeqCst);
    let (status, queued) = retry(&app, id).await;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(
        (&queued["id"], &queued["state"]),
        (&Value::from(id), &Value::from("pending"))
    );
    let delivered = wait_for_state(&app, id, "delivered", Duration::from_secs(5)).await;
    assert_eq!(delivered["attempts"], tries + 1);
    assert!(delivered["dead_at"].is_null());

    let (status, _) = retry(&app, id).await;
    assert_eq!(status, 202);
    let requests = shop
        .wait_until(Duration::from_secs(5), "sent a third time", |r| {
            r.iter().filter(|x| x.reply == Reply::Status(200)).count() == 2
        })
        .await;
    assert!(requests.iter().all(|r| r.id() == id.to_string()));
    assert!(verify(requests.last().unwrap(), SECRET).is_ok());
    let again = wait_for_state(&app, id, "delivered", Duration::from_secs(5)).await;
    assert_eq!(again["attempts"], tries + 2);
    assert_eq!(
        again["attempt_log"].as_array().unwrap().len() as i64,
        tries + 2
    );
}

/// Events of one order arrive in creation order: the order's second event
/// waits while its first is retried; another order's event does not wait.
async fn events_of_one_order_arrive_in_creation_order(backend: Backend) {
    let shop = Receiver::start(|request, before| {
        let body = request.json();
        let first_of_a = body["orderid"] == "A-1" && body["type"] == "order.needs_review";
        let failed = before
            .iter()
            .filter(|b| b.reply == Reply::Status(500))
            .count();
        if first_of_a && failed < 2 {
            Reply::Status(500)
        } else {
            Reply::Status(200)
        }
    })
    .await;
    let url = shop.url();
    let app = TestApp::spawn_with(backend, &notify_env(&url, &[])).await;
    app.register("A-1", 1250, "EUR").await;
    app.register("B-1", 1250, "EUR").await;
    pay(&app, &paid_fields("A-1", "999", "EUR")).await; // needs review
    pay(
        &app,
        &with(paid_fields("A-1", "1250", "EUR"), "requestid", "2"),
    )
    .await; // paid
    pay(&app, &paid_fields("B-1", "1250", "EUR")).await;
    let ids = app.ids("outbox");
    for id in &ids {
        wait_for_state(&app, *id, "delivered", Duration::from_secs(20)).await;
    }
    let (review, paid, other) = (
        shop.for_event(ids[0]),
        shop.for_event(ids[1]),
        shop.for_event(ids[2]),
    );
    assert_eq!(review.len(), 3, "two failures, then the 2xx");
    assert_eq!((paid.len(), other.len()), (1, 1));
    assert_eq!(paid[0].json()["type"], "order.paid");
    assert!(
        paid[0].at > review[2].at,
        "the order's second event was sent only after its first was acknowledged"
    );
    assert!(other[0].at < review[2].at, "another order did not wait");
}

/// Claims expire: an event claimed by a worker that died is taken by another
/// once the lease is over; the late worker's result does not overwrite it.
async fn an_expired_claim_lets_another_worker_take_the_event(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("A-1", 1250, "EUR").await;
    pay(&app, &paid_fields("A-1", "1250", "EUR")).await;
    pay(
        &app,
        &with(paid_fields("A-1", "1250", "EUR"), "requestid", "2"),
    )
    .await;
    let ids = app.ids("outbox");
    assert_eq!(ids.len(), 2);
    let config = match backend {
        Backend::Postgres => DatabaseConfig::Postgres {
            url: SecretString::from(app.database_url.clone()),
        },
        Backend::Sqlite => DatabaseConfig::Sqlite {
            path: app.database_url.trim_start_matches("sqlite:").into(),
        },
    };
    let store = tokio::task::spawn_blocking(move || {
        Store::connect(&config, 2, Duration::from_secs(5), Duration::from_secs(5)).unwrap()
    })
    .await
    .unwrap();
    let lease = Duration::from_secs(60);
    let now = chrono::Utc::now().timestamp_millis() + 10;
    let run = |f: Box<dyn FnOnce(&Store) -> Value + Send>| {
        let store = store.clone();
        tokio::task::spawn_blocking(move || f(&store))
    };
    let claimed = run(Box::new(move |s| {
        let first = s.claim_events("crashed", now, lease, 10).unwrap();
        let meanwhile = s.claim_events("other", now + 1_000, lease, 10).unwrap();
        let expired = s.claim_events("other", now + 60_001, lease, 10).unwrap();
        serde_json::json!([
            first.iter().map(|e| e.id).collect::<Vec<_>>(),
            meanwhile.iter().map(|e| e.id).collect::<Vec<_>>(),
            expired.iter().map(|e| e.id).collect::<Vec<_>>(),
        ])
    }))
    .await
    .unwrap();
    // Only the order's first event is due: its second waits for it.
    assert_eq!(claimed, serde_json::json!([[ids[0]], [], [ids[0]]]));

    let attempt = |at: i64, status: u16| Attempt {
        at,
        duration_ms: 5,
        status_code: Some(status),
        error: None,
    };
    let first = ids[0];
    let results = run(Box::new(move |s| {
        let late = s
            .record_attempt(
                first,
                "crashed",
                &attempt(now + 61_000, 500),
                AfterAttempt::Retry { at: now + 70_000 },
            )
            .unwrap();
        let current = s
            .record_attempt(
                first,
                "other",
                &attempt(now + 61_001, 200),
                AfterAttempt::Delivered,
            )
            .unwrap();
        let (row, attempts) = s.event(first).unwrap().unwrap();
        let next = s.claim_events("other", now + 62_000, lease, 10).unwrap();
        // What the operator's command line lists: by state, by order.
        let listed = |state: Option<EventState>, order: Option<(&str, &str)>| {
            let filter = EventFilter {
                after: 0,
                limit: 100,
                state,
                order: order.map(|(p, o)| (p.to_string(), o.to_string())),
                ..EventFilter::default()
            };
            s.events(&filter)
                .unwrap()
                .iter()
                .map(|e| e.id)
                .collect::<Vec<_>>()
        };
        serde_json::json!([
            late,
            current,
            row.state,
            row.attempts,
            attempts.len(),
            next.iter().map(|e| e.id).collect::<Vec<_>>(),
            listed(Some(EventState::Delivered), None),
            listed(Some(EventState::Pending), None),
            listed(Some(EventState::Dead), None),
            listed(None, Some(("123", "A-1"))),
            listed(None, Some(("123", "B-1"))),
        ])
    }))
    .await
    .unwrap();
    assert_eq!(
        results,
        serde_json::json!([
            false,
            true,
            "delivered",
            1,
            2,
            [ids[1]],
            [ids[0]],
            [ids[1]],
            [],
            [ids[0], ids[1]],
            []
        ]),
        "the late worker's attempt is kept in the history, not applied"
    );
}

/// One delivery pass on demand (the worker's timer off): nothing goes out
/// before the pass; the pass sends the paid callback's event once, signed,
/// and records it delivered; a pass with nothing due sends nothing; the retry
/// endpoint makes the event due again and the next pass sends it with the
/// same `webhook-id`.
async fn each_delivery_pass_sends_what_is_due_once(backend: Backend) {
    let shop = Receiver::always(Reply::Status(204)).await;
    let url = shop.url();
    let app = TestApp::spawn_stepped(backend, &notify_env(&url, &[])).await;
    app.register("S-1", 1250, "EUR").await;
    pay(&app, &paid_fields("S-1", "1250", "EUR")).await;
    let id = app.ids("outbox")[0];
    assert_eq!(event(&app, id).await["state"], "pending");
    assert!(shop.received().is_empty(), "sent without a pass");

    assert_eq!(app.deliver_due().await, 1);
    let received = shop.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].id(), id.to_string());
    verify(&received[0], SECRET).expect("signed");
    let delivered = event(&app, id).await;
    assert_eq!(
        (&delivered["state"], &delivered["attempts"]),
        (&Value::from("delivered"), &Value::from(1))
    );

    assert_eq!(app.deliver_due().await, 0, "nothing is due");
    assert_eq!(shop.received().len(), 1);

    let (status, queued) = retry(&app, id).await;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(app.deliver_due().await, 1);
    let received = shop.received();
    assert_eq!(received.len(), 2);
    assert!(received.iter().all(|r| r.id() == id.to_string()));
    let again = event(&app, id).await;
    assert_eq!(
        (&again["state"], &again["attempts"]),
        (&Value::from("delivered"), &Value::from(2))
    );
}

both_backends!(
    each_delivery_pass_sends_what_is_due_once,
    a_failing_shop_gets_the_event_until_it_acknowledges,
    a_silent_shop_times_out_and_the_event_ends_dead,
    pending_events_are_delivered_after_a_restart,
    two_instances_deliver_two_hundred_events_once_each,
    a_callback_is_answered_at_once_while_the_shop_hangs,
    the_feed_pages_through_events_in_id_order,
    a_dead_or_delivered_event_is_sent_again_with_the_same_id,
    events_of_one_order_arrive_in_creation_order,
    an_expired_claim_lets_another_worker_take_the_event,
);

/// A redirect is no acknowledgement, and is not followed: the signed event
/// never goes where the answer points.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_a_failure_and_is_not_followed() {
    let elsewhere = Receiver::always(Reply::Status(200)).await;
    let target = elsewhere.addr;
    let shop = Receiver::always(Reply::RedirectTo(target)).await;
    let url = shop.url();
    let app = TestApp::spawn_with(Backend::Sqlite, &notify_env(&url, &[])).await;
    app.register("A-1", 1250, "EUR").await;
    pay(&app, &paid_fields("A-1", "1250", "EUR")).await;
    let id = app.ids("outbox")[0];
    shop.wait_until(Duration::from_secs(10), "retried", |r| r.len() >= 2)
        .await;
    let e = event(&app, id).await;
    assert_eq!(e["state"], "pending");
    assert_eq!(e["attempt_log"][0]["status"], 307);
    assert!(elsewhere.received().is_empty(), "the redirect was followed");
}

/// `payhook notify-secret` prints a secret the Standard Webhooks libraries
/// take, and a new one each time.
#[test]
fn notify_secret_prints_a_new_usable_secret() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_payhook"))
            .arg("notify-secret")
            .env_clear()
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let (a, b) = (run(), run());
    assert_ne!(a, b);
    for secret in [&a, &b] {
        assert!(secret.starts_with("whsec_"), "{secret}");
        assert!(payhook::notify::WebhookSecret::parse(secret).is_ok());
        let hook = Webhook::new(secret).unwrap();
        let signed = hook.sign("1", 1_700_000_000, b"{}").unwrap();
        assert_eq!(
            signed,
            payhook::notify::WebhookSecret::parse(secret)
                .unwrap()
                .sign("1", 1_700_000_000, b"{}")
        );
    }
}
