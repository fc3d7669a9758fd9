//! Bad input of any kind gets a clear 4xx, never a 500, a panic or a hang.

use payhook::sim::CallbackForm;

use crate::helpers::{paid_fields, sign, with, Backend, TestApp, ADMIN_TOKEN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_queries_are_accepted_and_oversized_refused() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.register("BIG-1", 100, "EUR").await;
    let long_text = "ž".repeat(4000);
    let fields = with(paid_fields("BIG-1", "100", "EUR"), "paytext", &long_text);
    let query = sign(&fields, CallbackForm::AllSignatures);
    assert!(query.len() > 16 * 1024, "{}", query.len());
    let reply = app.get_callback(&query).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "OK"));

    let huge = format!("data={}", "A".repeat(200 * 1024));
    let reply = app.post_callback(&huge).await;
    assert_eq!(reply.status, 413);
    let response = app
        .client
        .get(format!(
            "{}/paysera/callback?{}",
            app.base,
            "a".repeat(100 * 1024)
        ))
        .send()
        .await;
    if let Ok(r) = response {
        assert!(r.status().is_client_error(), "{}", r.status());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_callbacks_get_a_short_4xx() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let cases = [
        (
            "data=%FF%FE&ss2=AAAA",
            "rejected: ss2 signature does not verify",
        ),
        (
            "data[]=x&ss2=AAAA",
            "rejected: parameter data is not a single value",
        ),
        ("data=!!!", "rejected: bad base64 in data"),
        ("data=QUJD", "rejected: decryption failed"),
        ("ss2=AAAA", "rejected: missing data"),
        (
            "wp_orderid=1&wp_status=1",
            "rejected: legacy (wp_) callbacks are not accepted (PAYHOOK_ACCEPT_LEGACY is off)",
        ),
        ("%00%00=&&&==", "rejected: missing data"),
    ];
    for (query, want) in cases {
        let reply = app.get_callback(query).await;
        assert_eq!((reply.status, reply.body.as_str()), (400, want), "{query}");
    }
    let many: Vec<String> = (0..3000).map(|i| format!("p{i}=1")).collect();
    let reply = app.post_callback(&many.join("&")).await;
    assert_eq!(reply.status, 400);

    let json = app
        .client
        .post(format!("{}/paysera/callback", app.base))
        .header("Content-Type", "application/json")
        .body("{\"data\":\"x\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), 415);

    // A signed callback whose fields are malformed is rejected, not half-stored.
    let bad_amount = with(paid_fields("M-1", "12.50", "EUR"), "amount", "12.50");
    let reply = app
        .get_callback(&sign(&bad_amount, CallbackForm::Ss2))
        .await;
    assert_eq!(reply.status, 400);
    assert!(reply.body.contains("amount"), "{}", reply.body);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM callbacks WHERE outcome = 'rejected'"),
        10
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_refuses_bad_requests_clearly() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let url = |path: &str| format!("{}{path}", app.admin);
    let no_token = app
        .client
        .get(url("/api/v1/callbacks"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 401);
    let wrong = app
        .client
        .get(url("/api/v1/callbacks"))
        .bearer_auth("test-admin-token-0123456780")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    let put = |body: &'static str| {
        app.client
            .put(url("/api/v1/orders/X-1"))
            .bearer_auth(ADMIN_TOKEN)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
    };
    assert_eq!(put("{").await.unwrap().status(), 400);
    assert_eq!(
        put(r#"{"amount":"12.50","currency":"EUR"}"#)
            .await
            .unwrap()
            .status(),
        422
    );
    assert_eq!(
        put(r#"{"amount":-1,"currency":"EUR"}"#)
            .await
            .unwrap()
            .status(),
        422
    );
    assert_eq!(
        put(r#"{"amount":1250,"currency":"euro"}"#)
            .await
            .unwrap()
            .status(),
        422
    );
    assert_eq!(
        put(r#"{"amount":1250,"currency":"EUR"}"#)
            .await
            .unwrap()
            .status(),
        201
    );
    assert_eq!(
        put(r#"{"amount":1250,"currency":"EUR"}"#)
            .await
            .unwrap()
            .status(),
        200
    );
    let conflict = put(r#"{"amount":1300,"currency":"EUR"}"#).await.unwrap();
    assert_eq!(conflict.status(), 409);

    for query in ["?outcome=nonsense", "?limit=0", "?limit=abc"] {
        let r = app
            .client
            .get(url(&format!("/api/v1/callbacks{query}")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{query}");
    }
    let missing = app
        .client
        .get(url("/api/v1/orders/NOPE"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_api_signs_and_registers() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let body = serde_json::json!({
        "orderid": "PAY-1", "amount": 1250, "currency": "EUR",
        "accepturl": "https://shop.example/ok", "cancelurl": "https://shop.example/cancel",
        "callbackurl": "https://shop.example/paysera/callback", "p_email": "buyer@example.com",
        "test": 0, "lang": "LIT",
    });
    let post = || {
        app.client
            .post(format!("{}/api/v1/payments", app.admin))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
    };
    let created = post().await.unwrap();
    assert_eq!(created.status(), 201);
    let reply: serde_json::Value = created.json().await.unwrap();
    let data = reply["data"].as_str().unwrap();
    let query = payhook::paysera::base64url::decode(data.as_bytes()).unwrap();
    let fields = payhook::paysera::php::parse_str(&query);
    assert!(fields.get(b"projectid").is_some() && fields.get(b"version").is_some());
    assert!(reply["url"]
        .as_str()
        .unwrap()
        .starts_with("https://bank.paysera.com/pay/?data="));
    // Same request again: same answer, nothing new; then a paid callback fulfils it.
    let again: serde_json::Value = post().await.unwrap().json().await.unwrap();
    assert_eq!(again, reply);
    assert_eq!(app.order("PAY-1").await["amount"], 1250);

    let invalid = app
        .client
        .post(format!("{}/api/v1/payments", app.admin))
        .bearer_auth(ADMIN_TOKEN)
        .json(
            &serde_json::json!({"orderid": "PAY-2", "amount": 1, "currency": "EUR", "lang": "LT"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 422);
    let text = invalid.text().await.unwrap();
    assert!(
        text.contains("accepturl") || text.contains("lang"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_turns_readiness_off_and_stops() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let ready = app
        .client
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let health = app
        .client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    app.stop.stop().await;
    assert!(app
        .client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .is_err());
}
