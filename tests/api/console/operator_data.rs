//! What the console shows of the buyer and of a registration:
//! buyer data masked in every view of a stored request unless
//! `PAYHOOK_LOG_PII`, and a payer-set registration shown as a
//! minimum. Signed in as `super::Console`.

use payhook::sim::CheckoutSigner;
use serde_json::json;

use super::Console;
use crate::helpers::{both_backends, Backend, TestApp, ADMIN_TOKEN};
use crate::support::gateway::{
    checkout_paid_with_payer, paid_fields, sign, with, CallbackForm, BUYER_DATA, CHECKOUT_PAYER,
};

const CLIENT_ID: &str = "console-client";
const SECRET: &str = "console-checkout-secret";

const CHECKOUT: &[(&str, &str)] = &[
    ("PAYSERA_CHECKOUT_CLIENT_ID", CLIENT_ID),
    ("PAYSERA_CHECKOUT_SECRET", SECRET),
];

async fn put_order(app: &TestApp, orderid: &str, body: serde_json::Value) {
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

/// Every page that shows a stored request or an order, one after another.
async fn every_view(app: &TestApp) -> String {
    let console = Console::signed_in(app).await;
    let mut pages = String::new();
    for path in [
        "/ui/callbacks/1",
        "/ui/callbacks/2",
        "/ui/callbacks/3",
        "/ui/callbacks",
        "/ui/orders/P-1",
        &format!("/ui/orders/P-2?project_id={CLIENT_ID}"),
        "/ui/",
    ] {
        pages.push_str(&console.ok(path).await);
    }
    pages
}

/// The buyer's details in a paid classic callback (every personal field),
/// in a rejected copy of it (a request that does not verify can still hold
/// genuine data), and in a paid Checkout snapshot: none of it, nor the
/// base64 `data` that holds it, on any page; all of it with
/// `PAYHOOK_LOG_PII` (the raw request as received, the decoded fields in
/// the clear).
async fn buyer_data_is_masked_in_every_view(backend: Backend) {
    let app = TestApp::spawn_with(backend, CHECKOUT).await;
    app.register("P-1", 1250, "EUR").await;
    let mut fields = paid_fields("P-1", "1250", "EUR");
    for (name, value) in BUYER_DATA {
        fields = with(fields, name, value);
    }
    let query = sign(&fields, CallbackForm::Ss2);
    let data = query
        .split('&')
        .find_map(|p| p.strip_prefix("data="))
        .unwrap()
        .to_string();
    assert_eq!(app.get_callback(&query).await.body, "OK");
    let tampered = format!("{query}&ss3=AAAA");
    assert_eq!(app.get_callback(&tampered).await.status, 400);
    put_order(
        &app,
        "P-2",
        json!({"amount": 2500, "currency": "EUR", "project_id": CLIENT_ID}),
    )
    .await;
    let webhook = CheckoutSigner::new(SECRET).sign(checkout_paid_with_payer("P-2", 2500));
    assert_eq!(app.post_webhook(&webhook).await.status, 200);
    let outcomes: Vec<String> = app.admin_get("/callbacks").await["callbacks"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|c| c["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(outcomes, ["fulfilled", "rejected", "fulfilled"]);

    // Two-letter codes (countries) could be anywhere: the rest are unique.
    let personal: Vec<&str> = std::iter::once(data.as_str())
        .chain(BUYER_DATA.iter().chain(CHECKOUT_PAYER).map(|(_, v)| *v))
        .filter(|v| v.len() > 2)
        .collect();
    let masked = every_view(&app).await;
    for value in &personal {
        assert!(!masked.contains(value), "{value:?} shown in:\n{masked}");
    }
    for expected in [
        "<th scope=\"row\">p_phone</th><td>***</td>",
        "<th scope=\"row\">account</th><td>***</td>",
        "bytes hidden, sha256 ",
        "Buyer data hidden",
    ] {
        assert!(masked.contains(expected), "{expected:?} in:\n{masked}");
    }
    assert!(
        masked.contains("&#34;payer_email&#34;:&#34;***&#34;")
            || masked.contains("&quot;payer_email&quot;:&quot;***&quot;"),
        "{masked}"
    );

    let dir = tempfile::tempdir().unwrap();
    let shown = TestApp::spawn_on(
        backend,
        &app.database_url,
        dir,
        &[CHECKOUT, &[("PAYHOOK_LOG_PII", "true")][..]].concat(),
    )
    .await;
    let clear = every_view(&shown).await;
    for value in &personal {
        assert!(
            clear.contains(value),
            "{value:?} not shown with PII:\n{clear}"
        );
    }
    assert!(!clear.contains("Buyer data hidden"), "{clear}");
}

/// A registration says whether the amount is fixed or the payer's minimum.
async fn the_order_page_says_how_the_amount_is_set(backend: Backend) {
    let app = TestApp::spawn_with(backend, CHECKOUT).await;
    app.register("F-1", 1250, "EUR").await;
    put_order(
        &app,
        "G-1",
        json!({"amount": 500, "currency": "EUR", "project_id": CLIENT_ID,
               "amount_mode": "payer_sets"}),
    )
    .await;
    let console = Console::signed_in(&app).await;
    let fixed = console.ok("/ui/orders/F-1").await;
    assert!(fixed.contains("expects 1250 EUR (minor units)"), "{fixed}");
    let chosen = console
        .ok(&format!("/ui/orders/G-1?project_id={CLIENT_ID}"))
        .await;
    assert!(
        chosen.contains("expects at least 500 EUR (minor units; the payer sets the amount)"),
        "{chosen}"
    );
}

both_backends!(
    buyer_data_is_masked_in_every_view,
    the_order_page_says_how_the_amount_is_set,
);
