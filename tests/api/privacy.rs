//! The buyer's personal data expires: after `PAYHOOK_PII_RETENTION`, or on
//! request (`payhook erase`, `POST /api/v1/orders/{id}/erase`, the console),
//! it is erased in place from every stored request, classic and Checkout;
//! the accounting facts, the outcome and the original request's SHA-256 and
//! length stay, and the order's story still reads. Erased data is shown by
//! nothing, not even with `PAYHOOK_LOG_PII`.

use std::time::Duration;

use payhook::sim::CheckoutSigner;
use serde_json::json;

use crate::console::{form_fields, Console};
use crate::helpers::{both_backends, Backend, TestApp, ADMIN_TOKEN};
use crate::support::cli::{payhook, run};
use crate::support::gateway::{
    checkout_paid_with_payer, paid_fields, sign, with, CallbackForm, BUYER_DATA, CHECKOUT_PAYER,
};

/// The e-mail address in [`BUYER_DATA`], and in [`CHECKOUT_PAYER`].
const BUYER_EMAIL: &str = "pii.buyer@example.com";
const CHECKOUT_EMAIL: &str = "pii.checkout@example.com";

const CLIENT_ID: &str = "privacy-client";
const SECRET: &str = "privacy-checkout-secret";

const CHECKOUT: &[(&str, &str)] = &[
    ("PAYSERA_CHECKOUT_CLIENT_ID", CLIENT_ID),
    ("PAYSERA_CHECKOUT_SECRET", SECRET),
];

#[derive(diesel::QueryableByName, Debug, Clone, PartialEq)]
struct Stored {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    id: i64,
    #[diesel(sql_type = diesel::sql_types::Text)]
    everything: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    raw_sha256: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    raw_length: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Text)]
    outcome: String,
}

/// Every stored callback: all it holds as text, its hashes and outcome.
fn stored(app: &TestApp) -> Vec<Stored> {
    app.query::<Stored>(
        "SELECT id, raw_query || '|' || coalesce(raw_unsigned, '') || '|' || \
         coalesce(facts, '') || '|' || coalesce(remote_addr, '') AS everything, \
         raw_sha256, raw_length, outcome FROM callbacks ORDER BY id",
    )
}

/// A paid classic callback of `orderid` carrying every personal field, and
/// the base64 `data` that holds them.
fn classic_with_buyer(orderid: &str) -> (String, String) {
    let mut fields = paid_fields(orderid, "1250", "EUR");
    for (name, value) in BUYER_DATA {
        fields = with(fields, name, value);
    }
    let query = sign(&fields, CallbackForm::Ss2);
    let data = query
        .split('&')
        .find_map(|p| p.strip_prefix("data="))
        .unwrap()
        .to_string();
    (query, data)
}

/// The values that are personal (two-letter codes could be anywhere).
fn personal(data: &[&str]) -> Vec<String> {
    data.iter()
        .copied()
        .chain(BUYER_DATA.iter().chain(CHECKOUT_PAYER).map(|(_, v)| *v))
        .filter(|v| v.len() > 2)
        .map(str::to_string)
        .collect()
}

async fn register(app: &TestApp, orderid: &str, body: serde_json::Value) {
    let response = app
        .client
        .put(format!("{}/api/v1/orders/{orderid}", app.admin))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "register {orderid}");
}

/// Everything an operator can read of the journal, with buyer data shown
/// (`PAYHOOK_LOG_PII`): the console's pages, the API's lists and the feed.
async fn every_view(app: &TestApp, ids: &[i64]) -> String {
    let console = Console::signed_in(app).await;
    let mut seen = String::new();
    let mut paths: Vec<String> = ids.iter().map(|id| format!("/ui/callbacks/{id}")).collect();
    paths.extend([
        "/ui/callbacks".to_string(),
        "/ui/orders/E-1".into(),
        format!("/ui/orders/E-2?project_id={CLIENT_ID}"),
    ]);
    for path in &paths {
        seen.push_str(&console.ok(path).await);
    }
    for path in [
        "/callbacks".to_string(),
        "/orders/E-1".into(),
        format!("/orders/E-2?project_id={CLIENT_ID}"),
        "/events".into(),
    ] {
        seen.push_str(&app.admin_get(&path).await.to_string());
    }
    seen
}

/// After the retention the pass erases a paid classic callback, a rejected
/// copy of it and a paid Checkout snapshot: no personal value is left in
/// any column, nor shown by any view with `PAYHOOK_LOG_PII`; the hashes,
/// outcomes, fulfilments and the facts (amount, currency) stay; an erased
/// request is not replayed.
async fn personal_data_is_erased_after_the_retention(backend: Backend) {
    let env = [CHECKOUT, &[("PAYHOOK_PII_RETENTION", "2s")][..]].concat();
    let app = TestApp::spawn_with(backend, &env).await;
    app.register("E-1", 1250, "EUR").await;
    let (query, data) = classic_with_buyer("E-1");
    assert_eq!(app.get_callback(&query).await.body, "OK");
    assert_eq!(
        app.get_callback(&format!("{query}&ss3=AAAA")).await.status,
        400
    );
    register(
        &app,
        "E-2",
        json!({"amount": 2500, "currency": "EUR", "project_id": CLIENT_ID}),
    )
    .await;
    let webhook = CheckoutSigner::new(SECRET).sign(checkout_paid_with_payer("E-2", 2500));
    assert_eq!(app.post_webhook(&webhook).await.status, 200);
    let before = stored(&app);
    assert_eq!(before.len(), 3);
    assert!(
        before[0].everything.contains(&data),
        "stored whole at first"
    );

    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while app.count("SELECT count(*) AS n FROM callbacks WHERE erased_at IS NULL") > 0 {
        assert!(std::time::Instant::now() < deadline, "not erased in time");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = stored(&app);
    let personal = personal(&[&data]);
    for (was, is) in before.iter().zip(&after) {
        assert_eq!(
            (&was.raw_sha256, was.raw_length, &was.outcome),
            (&is.raw_sha256, is.raw_length, &is.outcome),
            "row {}: the proof and the outcome stay",
            is.id
        );
        for value in &personal {
            assert!(
                !is.everything.contains(value),
                "{value:?} left in row {}: {}",
                is.id,
                is.everything
            );
        }
    }
    assert!(
        after[0].everything.contains("\"amount\":\"1250\""),
        "{}",
        after[0].everything
    );
    assert!(
        after[2].everything.contains("\"amount_paid\":2500"),
        "{}",
        after[2].everything
    );

    // Not shown by anything, even to an operator who may see buyer data.
    let shown = TestApp::spawn_on(
        backend,
        &app.database_url,
        tempfile::tempdir().unwrap(),
        &[CHECKOUT, &[("PAYHOOK_LOG_PII", "true")][..]].concat(),
    )
    .await;
    let ids: Vec<i64> = after.iter().map(|r| r.id).collect();
    let seen = every_view(&shown, &ids).await;
    for value in &personal {
        assert!(!seen.contains(value), "{value:?} shown after erasure");
    }
    // The order's story still reads: amounts, outcomes, state.
    assert!(
        seen.contains("<th scope=\"row\">amount</th><td>1250</td>"),
        "{seen}"
    );
    assert_eq!(app.order("E-1").await["state"], "paid");
    assert_eq!(app.fulfilments("E-1"), 1);
    assert_eq!(app.fulfilments("E-2"), 1);
    let order = app.admin_get("/orders/E-1").await;
    assert!(order["callbacks"][0]["erased_at"].is_string(), "{order}");
    let replay = app
        .client
        .post(format!("{}/api/v1/callbacks/{}/replay", app.admin, ids[0]))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(replay.status().is_client_error(), "{}", replay.status());
    assert_eq!(stored(&app).len(), 3, "a refused replay stores nothing");
}

async fn erase_api(app: &TestApp, orderid: &str) -> (u16, serde_json::Value) {
    let response = app
        .client
        .post(format!("{}/api/v1/orders/{orderid}/erase", app.admin))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

/// One order erased now through the API, the command line and the console
/// (with its CSRF token): only that order's rows, once, recorded; another
/// order keeps its data.
async fn an_order_is_erased_on_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut data = Vec::new();
    for orderid in ["E-1", "E-2", "E-3", "E-4"] {
        app.register(orderid, 1250, "EUR").await;
        let (query, d) = classic_with_buyer(orderid);
        assert_eq!(app.get_callback(&query).await.body, "OK");
        data.push(d);
    }
    // A duplicate of E-1: two rows of its story.
    assert_eq!(
        app.get_callback(&classic_with_buyer("E-1").0).await.body,
        "OK"
    );
    let holds = |orderid: &str, d: &str| {
        app.count(&format!(
            "SELECT count(*) AS n FROM callbacks WHERE orderid = '{orderid}' AND raw_query LIKE '%{d}%'"
        ))
    };

    assert_eq!(
        erase_api(&app, "E-1").await,
        (
            200,
            json!({"project_id": "123", "orderid": "E-1", "rows_erased": 2})
        )
    );
    assert_eq!(erase_api(&app, "E-1").await.1["rows_erased"], 0, "once");
    assert_eq!(erase_api(&app, "NOPE").await.0, 404);
    assert_eq!(holds("E-1", &data[0][..40]), 0);
    assert_eq!(
        holds("E-2", &data[1][..40]),
        1,
        "another order keeps its data"
    );

    let dir = tempfile::tempdir().unwrap();
    let out = payhook(dir.path(), &app.database_url)
        .args(["erase", "--order", "E-2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("erased from 1 stored request"));
    assert_eq!(holds("E-2", &data[1][..40]), 0);
    let unknown = payhook(dir.path(), &app.database_url)
        .args(["erase", "--order", "NOPE"])
        .output()
        .unwrap();
    assert_eq!(unknown.status.code(), Some(1));

    let console = Console::signed_in(&app).await;
    let page = console.ok("/ui/orders/E-3").await;
    let action = "/ui/orders/E-3/erase?project_id=123";
    let fields = form_fields(&page, action);
    let no_token: Vec<(&str, &str)> = fields
        .iter()
        .filter(|(k, _)| k != "csrf")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(console.post(action, &no_token).await.status, 403);
    assert_eq!(
        holds("E-3", &data[2][..40]),
        1,
        "nothing erased without the token"
    );
    let done = console.submit("/ui/orders/E-3", action).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let shown = console.ok(&done.location.unwrap()).await;
    assert!(
        shown.contains("Erased: personal data taken out of 1 stored request"),
        "{shown}"
    );
    assert_eq!(holds("E-3", &data[2][..40]), 0);
    assert_eq!(holds("E-4", &data[3][..40]), 1);

    assert_eq!(app.count("SELECT count(*) AS n FROM erasures"), 4);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM erasures WHERE orderid = 'E-1' AND rows_erased = 2 AND actor <> ''"),
        1
    );
    for orderid in ["E-1", "E-2", "E-3"] {
        assert_eq!(app.order(orderid).await["state"], "paid");
        assert_eq!(app.fulfilments(orderid), 1);
    }
}

/// `payhook erase --email`: the orders whose stored requests carry the
/// address (any case), classic and Checkout, are erased with every row of
/// their story, and a rejected copy that names no order too; an order with
/// another address keeps its data; the address is not logged.
async fn orders_are_erased_by_email(backend: Backend) {
    let app = TestApp::spawn_with(backend, CHECKOUT).await;
    app.register("E-1", 1250, "EUR").await;
    let (query, data) = classic_with_buyer("E-1");
    assert_eq!(app.get_callback(&query).await.body, "OK");
    assert_eq!(app.get_callback(&query).await.body, "OK", "a duplicate");
    let rejected = format!("{query}&ss3=AAAA");
    assert_eq!(app.get_callback(&rejected).await.status, 400);
    app.register("E-2", 1250, "EUR").await;
    let other = with(
        paid_fields("E-2", "1250", "EUR"),
        "p_email",
        "someone.else@example.com",
    );
    assert_eq!(
        app.get_callback(&sign(&other, CallbackForm::Ss2))
            .await
            .body,
        "OK"
    );
    register(
        &app,
        "E-3",
        json!({"amount": 2500, "currency": "EUR", "project_id": CLIENT_ID}),
    )
    .await;
    let webhook = CheckoutSigner::new(SECRET).sign(checkout_paid_with_payer("E-3", 2500));
    assert_eq!(app.post_webhook(&webhook).await.status, 200);
    let holding = |needle: &str| {
        app.count(&format!(
            "SELECT count(*) AS n FROM callbacks WHERE raw_query LIKE '%{needle}%'"
        ))
    };
    assert_eq!(
        holding(&data[..40]),
        3,
        "two rows of E-1 and the rejected copy"
    );

    let dir = tempfile::tempdir().unwrap();
    let erase = |email: &str| {
        let mut cmd = payhook(dir.path(), &app.database_url);
        cmd.envs(CHECKOUT.iter().copied())
            .args(["erase", "--json", "--email", email]);
        run(&mut cmd)
    };
    let (code, out, _) = erase("nobody@example.com");
    assert_eq!((code, out.as_str()), (1, ""), "no request carries it");

    let (code, out, err) = erase(" PII.Buyer@Example.COM ");
    assert_eq!(code, 0, "{err}");
    let erased: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        erased,
        json!({"orders": [{"project_id": "123", "orderid": "E-1", "rows_erased": 2}],
               "rows_without_order": 1}),
    );
    assert!(!err.to_lowercase().contains(BUYER_EMAIL), "logged: {err}");
    assert_eq!(holding(&data[..40]), 0);
    let e2 = app
        .count("SELECT count(*) AS n FROM callbacks WHERE orderid = 'E-2' AND erased_at IS NULL");
    assert_eq!(e2, 1, "another address keeps its data");
    assert_eq!(
        holding(CHECKOUT_EMAIL),
        1,
        "the Checkout payer is not this buyer"
    );
    assert_eq!(erase(BUYER_EMAIL).0, 1, "nothing left to find");

    let (code, out, err) = erase(CHECKOUT_EMAIL);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["orders"],
        json!([{"project_id": CLIENT_ID, "orderid": "E-3", "rows_erased": 1}]),
    );
    assert_eq!(holding(CHECKOUT_EMAIL), 0);
    assert_eq!(app.count("SELECT count(*) AS n FROM erasures"), 3);
    for orderid in ["E-1", "E-2"] {
        assert_eq!(app.order(orderid).await["state"], "paid");
        assert_eq!(app.fulfilments(orderid), 1);
    }

    let mut neither = payhook(dir.path(), &app.database_url);
    neither.arg("erase");
    assert_eq!(run(&mut neither).0, 2);
    let mut both = payhook(dir.path(), &app.database_url);
    both.args(["erase", "--order", "E-2", "--email", BUYER_EMAIL]);
    assert_eq!(run(&mut both).0, 2);
}

both_backends!(
    personal_data_is_erased_after_the_retention,
    an_order_is_erased_on_request,
    orders_are_erased_by_email,
);
