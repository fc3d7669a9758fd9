//! Confirming a captured "Веб Оплата" notification from the console: the
//! same action as `payhook orders confirm` and the admin API, behind the
//! session's CSRF token, once per form; only a captured notification offers
//! it. Signed in as `super::Console`.

use serde_json::json;

use super::{form_fields, Console};
use crate::helpers::{both_backends, Backend, TestApp, ADMIN_TOKEN};

const WEBOPLATA: &str =
    "[[gateway]]\nname = \"wo\"\nprofile = \"weboplata\"\norder_field = \"order\"\n";

async fn notify(app: &TestApp, body: &str) {
    let response = app
        .client
        .post(format!("{}/gateways/wo/callback", app.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
}

fn fulfilments(app: &TestApp) -> i64 {
    app.count("SELECT count(*) AS n FROM fulfilments WHERE project_id = 'wo' AND orderid = 'W-C'")
}

fn confirmations(app: &TestApp) -> i64 {
    app.count("SELECT count(*) AS n FROM callbacks WHERE method = 'CONFIRM'")
}

fn pairs(fields: &[(String, String)]) -> Vec<(&str, &str)> {
    fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// A captured notification's page offers "Confirm payment"; without the
/// session's token it is refused and nothing is paid; with it the order is
/// fulfilled once and the page says so; the same form again does not act, and
/// a fresh one is a duplicate. A paid callback offers no confirmation, and
/// posting one anyway is refused.
async fn a_captured_notification_is_confirmed_once_from_the_console(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateways.toml");
    std::fs::write(&file, WEBOPLATA).unwrap();
    let file = file.display().to_string();
    let app = TestApp::spawn_with(backend, &[("PAYHOOK_GATEWAYS_FILE", file.as_str())]).await;
    let response = app
        .client
        .put(format!("{}/api/v1/orders/W-C", app.admin))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"amount": 50000, "currency": "RUB", "project_id": "wo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    notify(&app, "order=W-C&sum=500.00&email=buyer%40example.com").await;
    let id = app.count("SELECT max(id) AS n FROM callbacks WHERE outcome = 'captured'");
    let page = format!("/ui/callbacks/{id}");
    let action = format!("/ui/callbacks/{id}/confirm");

    let console = Console::signed_in(&app).await;
    let body = console.ok(&page).await;
    assert!(body.contains("Confirm payment"), "{body}");
    let fields = form_fields(&body, &action);

    // Without the session's CSRF token.
    let no_token: Vec<(String, String)> = fields
        .iter()
        .filter(|(k, _)| k != "csrf")
        .cloned()
        .collect();
    assert_eq!(console.post(&action, &pairs(&no_token)).await.status, 403);
    assert_eq!((fulfilments(&app), confirmations(&app)), (0, 0));

    let done = console.post(&action, &pairs(&fields)).await;
    assert_eq!(done.status, 303, "{}", done.body);
    let location = done.location.clone().unwrap();
    assert!(location.starts_with(&page), "{location}");
    let shown = console.ok(&location).await;
    assert!(shown.contains("fulfilled for order W-C"), "{shown}");
    assert_eq!((fulfilments(&app), confirmations(&app)), (1, 1));
    let order = app.admin_get("/orders/W-C?project_id=wo").await;
    assert_eq!(order["state"], "paid");

    // The same form sent again (a reload): to the same page, not acted on.
    let again = console.post(&action, &pairs(&fields)).await;
    assert_eq!(again.status, 303);
    assert_eq!((fulfilments(&app), confirmations(&app)), (1, 1));

    // A fresh form: the same notification confirmed again is a duplicate.
    let fresh = console.submit(&page, &action).await;
    assert_eq!(fresh.status, 303);
    let shown = console.ok(&fresh.location.unwrap()).await;
    assert!(shown.contains("duplicate for order W-C"), "{shown}");
    assert_eq!(fulfilments(&app), 1);

    // The confirmation's own row is not captured: nothing to confirm there,
    // and a hand-made form for it is refused.
    let confirmation = app.count("SELECT max(id) AS n FROM callbacks WHERE method = 'CONFIRM'");
    let own = console.ok(&format!("/ui/callbacks/{confirmation}")).await;
    assert!(!own.contains("Confirm payment"), "{own}");
    let forged = form_fields(&console.ok(&page).await, &action);
    let refused = console
        .post(
            &format!("/ui/callbacks/{confirmation}/confirm"),
            &pairs(&forged),
        )
        .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(fulfilments(&app), 1);
}

both_backends!(a_captured_notification_is_confirmed_once_from_the_console);
