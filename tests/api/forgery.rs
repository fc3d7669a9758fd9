//! An attacker who holds old genuine callbacks, or the buyer's own payment
//! link, and can send anything: nothing of it becomes a payment.

use payhook::sim::CallbackForm;

use crate::helpers::{
    both_backends, paid_fields, sign, vectors_dir, with, Backend, TestApp, ADMIN_TOKEN,
};

/// The real gateway-signed legacy callback (project 13156, order 1, 100.00 LTL, test=1).
fn legacy_case() -> (String, String) {
    let path = vectors_dir().join("real/legacy-1.4-macro-paid-test.json");
    let case: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    (
        case["raw_query"].as_str().unwrap().to_string(),
        case["secrets"]["project_password"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

async fn legacy_app(backend: Backend, accept_legacy: &str) -> TestApp {
    let (_, password) = legacy_case();
    let key = vectors_dir().join("real/keys/paysera-rsa1024.spki.pem");
    let app = TestApp::spawn_with(
        backend,
        &[
            ("PAYSERA_PROJECT_ID", "13156"),
            ("PAYSERA_PROJECT_PASSWORD", &password),
            ("PAYSERA_PUBLIC_KEY_FILE", key.to_str().unwrap()),
            ("PAYHOOK_ACCEPT_LEGACY", accept_legacy),
        ],
    )
    .await;
    let registered = app
        .client
        .put(format!("{}/api/v1/orders/1?project_id=13156", app.admin))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"amount": 10000, "currency": "LTL"}))
        .send()
        .await
        .unwrap();
    assert!(registered.status().is_success(), "{}", registered.status());
    app
}

async fn legacy_outcomes(app: &TestApp) -> Vec<String> {
    let order: serde_json::Value = app
        .client
        .get(format!("{}/api/v1/orders/1?project_id=13156", app.admin))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    order["callbacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["outcome"].as_str().unwrap().to_string())
        .collect()
}

async fn legacy_callbacks_are_off_by_default(backend: Backend) {
    let app = legacy_app(backend, "false").await;
    let (query, _) = legacy_case();
    let reply = app.get_callback(&query).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(
        reply.body.contains("PAYHOOK_ACCEPT_LEGACY"),
        "{}",
        reply.body
    );
    assert_eq!(app.fulfilments("1"), 0);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM callbacks WHERE outcome = 'rejected'"),
        1
    );
}

/// The attack found against the old main: `wp_test` and `wp__ss1` renamed made
/// a genuine test payment a real one, and it was fulfilled.
async fn relabelled_legacy_callback_is_not_a_payment(backend: Backend) {
    let app = legacy_app(backend, "true").await;
    let (query, _) = legacy_case();
    let attack = query
        .replace("wp_test=1", "wp_tesx=1")
        .replace("wp__ss1=", "wp_xss1=");
    let reply = app.get_callback(&attack).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (
            400,
            "rejected: legacy callback has no _ss1 or _ss1v2 beside _ss2"
        )
    );
    let twice = format!("{query}&wp_test=0");
    assert_eq!(app.get_callback(&twice).await.status, 400);
    assert_eq!(app.fulfilments("1"), 0);

    // The genuine one is what it is: a test payment, not allowed here.
    let genuine = app.get_callback(&query).await;
    assert_eq!((genuine.status, genuine.body.as_str()), (200, "OK"));
    // An echoed field renamed is the same payment: a duplicate, never a second one.
    let renamed_echo = query.replace("wp_lang=", "wp_langx=");
    assert_eq!(app.get_callback(&renamed_echo).await.body, "OK");
    assert_eq!(legacy_outcomes(&app).await, ["test_ignored", "duplicate"]);
    assert_eq!(app.fulfilments("1"), 0);
}

/// `data` + `sign` of a payment request is a valid `ss1`: with
/// `PAYHOOK_ACCEPT_SS1` the buyer's own link verifies as a callback. It must
/// never carry what makes a payment.
async fn payment_link_sent_back_is_never_fulfilled(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("PAYHOOK_ACCEPT_SS1", "true")]).await;
    let mut body = serde_json::json!({
        "orderid": "LINK-1", "amount": 1250, "currency": "EUR",
        "accepturl": "https://shop.example/ok", "cancelurl": "https://shop.example/cancel",
        "callbackurl": "https://shop.example/paysera/callback",
    });
    let post = |body: serde_json::Value| {
        app.client
            .post(format!("{}/api/v1/payments", app.admin))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
    };
    for field in [
        "status",
        "payamount",
        "refund_amount",
        "ss2",
        "_ss1",
        "sign",
    ] {
        let mut forged = body.clone();
        forged[field] = serde_json::json!("1");
        let reply = post(forged).await.unwrap();
        assert_eq!(reply.status(), 422, "{field}");
        let text = reply.text().await.unwrap();
        assert!(text.contains(&format!("'{field}'")), "{field}: {text}");
    }
    body["p_email"] = serde_json::json!("buyer@example.com");
    let link: serde_json::Value = post(body).await.unwrap().json().await.unwrap();
    let query = format!(
        "data={}&ss1={}",
        link["data"].as_str().unwrap(),
        link["sign"].as_str().unwrap()
    );
    let reply = app.get_callback(&query).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let order = app.order("LINK-1").await;
    assert_eq!(order["state"], "awaiting_payment");
    assert_eq!(app.fulfilments("LINK-1"), 0);
    assert_eq!(app.outcomes("LINK-1").await, ["info"]);
}

/// The same payment re-delivered in another encoding is a duplicate, not a
/// second payment: another signature form, POST instead of GET, the outer
/// parameters in another order, the decoded fields serialised in another order.
async fn the_same_payment_in_another_encoding_is_a_duplicate(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("ENC-1", 1250, "EUR").await;
    let fields = paid_fields("ENC-1", "1250", "EUR");
    let first = app.get_callback(&sign(&fields, CallbackForm::Ss2)).await;
    assert_eq!(first.body, "OK");

    let mut reordered = fields.clone();
    reordered.reverse();
    let ss3 = sign(&fields, CallbackForm::Ss3);
    let outer_swapped = {
        let (data, sig) = ss3.split_once('&').unwrap();
        format!("{sig}&{data}")
    };
    let replays = [
        sign(&fields, CallbackForm::Ss3),
        sign(&fields, CallbackForm::AllSignatures),
        sign(&fields, CallbackForm::Encrypted),
        outer_swapped,
        sign(&reordered, CallbackForm::Ss2),
    ];
    for replay in &replays {
        let reply = app.get_callback(replay).await;
        assert_eq!((reply.status, reply.body.as_str()), (200, "OK"), "{replay}");
    }
    let posted = app.post_callback(&sign(&fields, CallbackForm::Ss2)).await;
    assert_eq!(posted.body, "OK");

    let outcomes = app.outcomes("ENC-1").await;
    assert_eq!(outcomes[0], "fulfilled");
    assert!(
        outcomes[1..].iter().all(|o| o == "duplicate"),
        "{outcomes:?}"
    );
    assert_eq!(outcomes.len(), replays.len() + 2);
    assert_eq!(app.fulfilments("ENC-1"), 1);
    // A genuinely different payment of the same order is still noticed.
    let other = with(fields, "requestid", "111111111");
    app.get_callback(&sign(&other, CallbackForm::Ss2)).await;
    assert_eq!(
        app.outcomes("ENC-1").await.last().map(String::as_str),
        Some("paid_again")
    );
}

both_backends!(
    legacy_callbacks_are_off_by_default,
    relabelled_legacy_callback_is_not_a_payment,
    payment_link_sent_back_is_never_fulfilled,
    the_same_payment_in_another_encoding_is_a_duplicate,
);
