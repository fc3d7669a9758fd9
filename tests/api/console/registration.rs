//! Registering an order from the console: the same rules and the same row as
//! `PUT /api/v1/orders/{id}`, once per form, and a refused form can be sent
//! again. Signed in as `super::Console`.

use payhook::sim::CheckoutSigner;

use super::{field, form_fields, Console};
use crate::helpers::{both_backends, Backend, TestApp, ADMIN_TOKEN};
use crate::support::gateway::{checkout_paid_with_payer, paid};

const CLIENT_ID: &str = "console-client";
const SECRET: &str = "console-checkout-secret";

const CHECKOUT: &[(&str, &str)] = &[
    ("PAYSERA_CHECKOUT_CLIENT_ID", CLIENT_ID),
    ("PAYSERA_CHECKOUT_SECRET", SECRET),
];

/// The registration form's hidden fields (a fresh nonce) with `fields` filled
/// in, as a browser sends it.
async fn registration(console: &Console, fields: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut form = form_fields(&console.ok("/ui/orders").await, "/ui/orders");
    form.extend(fields.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    form
}

async fn send(console: &Console, form: &[(String, String)]) -> super::Page {
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    console.post("/ui/orders", &pairs).await
}

/// `PUT /api/v1/orders/{orderid}`'s status for `body`.
async fn put_status(app: &TestApp, orderid: &str, body: serde_json::Value) -> u16 {
    app.client
        .put(format!("{}/api/v1/orders/{orderid}", app.admin))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// An order registered in the console is the order the API registers: a
/// paid callback for it is fulfilled, the API sees its values, and the API
/// registering the same values changes nothing while others conflict.
async fn an_order_registered_in_the_console_is_paid_like_one_from_the_api(backend: Backend) {
    let app = TestApp::spawn_with(backend, CHECKOUT).await;
    let console = Console::signed_in(&app).await;
    let form = registration(
        &console,
        &[
            ("orderid", "R-1"),
            ("project_id", "123"),
            ("amount", "1250"),
            ("currency", "EUR"),
            ("amount_mode", "fixed"),
        ],
    )
    .await;
    let page = send(&console, &form).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let location = page.location.unwrap();
    assert!(location.starts_with("/ui/orders/R-1?done="), "{location}");
    let shown = console.ok(&location).await;
    assert!(
        shown.contains("Registered: order R-1 expects 1250 EUR (minor units)."),
        "{shown}"
    );

    // The same form again (a double click, a reload): to the same page, once.
    let again = send(&console, &form).await;
    assert_eq!(again.status, 303);
    assert_eq!(again.location.as_deref(), Some(location.as_str()));

    let order = app.order("R-1").await;
    assert_eq!(order["amount"], 1250);
    assert_eq!(order["currency"], "EUR");
    assert_eq!(order["amount_mode"], "fixed");
    assert_eq!(order["test"], false);
    let same = serde_json::json!({"amount": 1250, "currency": "EUR"});
    assert_eq!(put_status(&app, "R-1", same).await, 200);
    let other = serde_json::json!({"amount": 1300, "currency": "EUR"});
    assert_eq!(put_status(&app, "R-1", other).await, 409);

    let reply = app.post_callback(&paid("R-1", "1250")).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "OK"));
    let paid = app.order("R-1").await;
    assert_eq!(paid["state"], "paid", "{paid}");
    assert!(paid["fulfilled_at"].is_string(), "{paid}");
}

/// A payer-set amount, only for a Checkout project: the minimum is what a
/// snapshot is held to, as when the API registers it.
async fn a_payer_set_amount_is_registered_for_a_checkout_project(backend: Backend) {
    let app = TestApp::spawn_with(backend, CHECKOUT).await;
    let console = Console::signed_in(&app).await;
    let page = console.ok("/ui/orders").await;
    assert!(page.contains("value=\"payer_sets\""), "{page}");
    let form = registration(
        &console,
        &[
            ("orderid", "G-1"),
            ("project_id", CLIENT_ID),
            ("amount", "500"),
            ("currency", "EUR"),
            ("amount_mode", "payer_sets"),
        ],
    )
    .await;
    let page = send(&console, &form).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let shown = console.ok(&page.location.unwrap()).await;
    assert!(
        shown.contains("expects at least 500 EUR (minor units)."),
        "{shown}"
    );
    let order = app
        .admin_get(&format!("/orders/G-1?project_id={CLIENT_ID}"))
        .await;
    assert_eq!(order["amount_mode"], "payer_sets", "{order}");
    assert_eq!(order["test"], false, "{order}");

    // The payer chose 700: at least the minimum, so paid.
    let webhook = CheckoutSigner::new(SECRET).sign(checkout_paid_with_payer("G-1", 700));
    assert_eq!(app.post_webhook(&webhook).await.status, 200);
    let order = app
        .admin_get(&format!("/orders/G-1?project_id={CLIENT_ID}"))
        .await;
    assert_eq!(order["state"], "paid", "{order}");

    // A test order: the box checked.
    let test = registration(
        &console,
        &[
            ("orderid", "T-1"),
            ("project_id", CLIENT_ID),
            ("amount", "500"),
            ("currency", "EUR"),
            ("test", "1"),
        ],
    )
    .await;
    let page = send(&console, &test).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let shown = console.ok(&page.location.unwrap()).await;
    assert!(
        shown.contains("expects 500 EUR (minor units) (a test order)."),
        "{shown}"
    );
    let order = app
        .admin_get(&format!("/orders/T-1?project_id={CLIENT_ID}"))
        .await;
    assert_eq!(order["test"], true, "{order}");

    // A classic project's callbacks pay the registered amount exactly.
    let classic = registration(
        &console,
        &[
            ("orderid", "G-2"),
            ("project_id", "123"),
            ("amount", "500"),
            ("currency", "EUR"),
            ("amount_mode", "payer_sets"),
        ],
    )
    .await;
    let refused = send(&console, &classic).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains("project 123 is a classic one"),
        "{}",
        refused.body
    );
}

/// What the API refuses, the console refuses with the same words, and
/// stores nothing; the refused form's nonce is given back, so the operator
/// corrects the field and sends the same form.
async fn a_refused_registration_stores_nothing_and_can_be_corrected(backend: Backend) {
    let app = TestApp::spawn_with(backend, CHECKOUT).await;
    let console = Console::signed_in(&app).await;
    let long = "L".repeat(41);
    for (fields, reason) in [
        (
            [("orderid", "B-1"), ("amount", "12.50"), ("currency", "EUR")],
            "amount must be a whole number of minor units",
        ),
        (
            [("orderid", "B-1"), ("amount", "-5"), ("currency", "EUR")],
            "amount must be a whole number of minor units",
        ),
        (
            [("orderid", "B-1"), ("amount", "1250"), ("currency", "eur")],
            "currency must be three upper-case letters",
        ),
        (
            [
                ("orderid", long.as_str()),
                ("amount", "1250"),
                ("currency", "EUR"),
            ],
            "orderid must be 1 to 40 bytes",
        ),
    ] {
        let form = registration(&console, &fields).await;
        let page = send(&console, &form).await;
        assert_eq!(page.status, 400, "{fields:?}: {}", page.body);
        assert!(page.body.contains(reason), "{fields:?}: {}", page.body);
        // The API's words for the same input.
        let orderid = fields[0].1;
        let amount: serde_json::Value = fields[1]
            .1
            .parse::<i64>()
            .map_or_else(|_| fields[1].1.into(), Into::into);
        let api = app
            .client
            .put(format!("{}/api/v1/orders/{orderid}", app.admin))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({"amount": amount, "currency": fields[2].1}))
            .send()
            .await
            .unwrap();
        assert_eq!(api.status(), 422, "{fields:?}");
        assert!(api.text().await.unwrap().contains(reason), "{fields:?}");
    }
    let missing = app
        .client
        .get(format!("{}/api/v1/orders/B-1", app.admin))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404, "a refused form stored an order");

    // The same form, corrected: it acts (the refusal gave its nonce back).
    let mut form = registration(
        &console,
        &[("orderid", "B-2"), ("amount", "12.50"), ("currency", "EUR")],
    )
    .await;
    assert_eq!(send(&console, &form).await.status, 400);
    for (name, value) in form.iter_mut() {
        if name == "amount" {
            *value = "1250".into();
        }
    }
    let page = send(&console, &form).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(app.order("B-2").await["amount"], 1250);

    // Other values for a registered order: a conflict, and nothing changed.
    let conflict = registration(
        &console,
        &[("orderid", "B-2"), ("amount", "999"), ("currency", "EUR")],
    )
    .await;
    let page = send(&console, &conflict).await;
    assert_eq!(page.status, 409, "{}", page.body);
    assert!(
        page.body
            .contains("order already registered with amount 1250 EUR"),
        "{}",
        page.body
    );
    assert_eq!(app.order("B-2").await["amount"], 1250);

    // Without this session's CSRF token: refused, nothing stored.
    let mut forged = registration(
        &console,
        &[("orderid", "B-3"), ("amount", "1250"), ("currency", "EUR")],
    )
    .await;
    let csrf = field(&forged, "csrf");
    forged.retain(|(k, _)| k != "csrf");
    assert!(!csrf.is_empty());
    assert_eq!(send(&console, &forged).await.status, 403);
    let none = app
        .client
        .get(format!("{}/api/v1/orders/B-3", app.admin))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 404);
}

both_backends!(
    an_order_registered_in_the_console_is_paid_like_one_from_the_api,
    a_payer_set_amount_is_registered_for_a_checkout_project,
    a_refused_registration_stores_nothing_and_can_be_corrected,
);
