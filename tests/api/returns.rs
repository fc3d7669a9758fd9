//! The buyer's return link: anyone can open it, so only a
//! return carrying a verified paid callback of its own order is recorded and
//! can start the missed-callback clock. Every visit is redirected.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{both_backends, Backend, TestApp};
use crate::support::gateway::{paid, paid_fields, sign, with, CallbackForm};

const SHOP: &str = "https://shop.example/thanks?o=1";

async fn app(backend: Backend) -> TestApp {
    TestApp::spawn_with(
        backend,
        &[
            ("PAYHOOK_PUBLIC_URL", "https://pay.shop.example"),
            ("MISSED_CALLBACK_AFTER", "1s"),
        ],
    )
    .await
}

/// Registers `orderid` through the payments API; its return token.
async fn return_token(app: &TestApp, orderid: &str) -> String {
    app.payment_return_token(orderid, SHOP).await
}

/// The buyer's browser on the return link with `query`: always sent on to
/// the shop with the query appended.
async fn visit(app: &TestApp, token: &str, query: &str) {
    let url = if query.is_empty() {
        format!("{}/paysera/return/{token}", app.base)
    } else {
        format!("{}/paysera/return/{token}?{query}", app.base)
    };
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(url)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "{query}");
    let want = if query.is_empty() {
        SHOP.to_string()
    } else {
        format!("{SHOP}&{query}")
    };
    assert_eq!(r.headers()["location"], want.as_str());
}

/// A parameter's raw value in a query.
fn param<'q>(query: &'q str, name: &str) -> &'q str {
    query
        .split('&')
        .find_map(|p| p.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {name} in {query}"))
}

async fn missing_callbacks(app: &TestApp) -> f64 {
    app.metrics().await["payhook_orders_missing_callback"]
}

/// Every return that proves no payment of the order: bare, garbage, another
/// order's genuine paid callback, a tampered signature, a genuine unpaid
/// callback of the order. None is recorded, none is a missed callback later.
async fn a_return_that_proves_no_payment_records_nothing(backend: Backend) {
    let app = app(backend).await;
    let token = return_token(&app, "N-1").await;
    return_token(&app, "N-2").await;
    let own = paid("N-1", "500");
    let other = paid("N-2", "500");
    let tampered = format!("data={}&ss2={}", param(&own, "data"), param(&other, "ss2"));
    let unpaid = sign(
        &with(paid_fields("N-1", "500", "EUR"), "status", "0"),
        CallbackForm::Ss2,
    );
    for query in ["", "data=abc&ss1=def", &other, &tampered, &unpaid] {
        visit(&app, &token, query).await;
        assert_eq!(
            app.order("N-1").await["returned_at"],
            Value::Null,
            "{query}"
        );
    }
    assert_eq!(app.order("N-2").await["returned_at"], Value::Null);
    // Past MISSED_CALLBACK_AFTER (the time is what is tested): nothing
    // counts as a missed callback.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(missing_callbacks(&app).await, 0.0);
    assert_eq!(
        app.count("SELECT COUNT(*) AS n FROM callbacks"),
        0,
        "nothing stored"
    );
}

/// The order's own genuine paid callback on the return records it (after a
/// forged return of it recorded nothing), and its callback missing then counts.
async fn a_return_with_the_orders_paid_data_is_recorded(backend: Backend) {
    let app = app(backend).await;
    let token = return_token(&app, "P-1").await;
    visit(&app, &token, &paid("P-2", "500")).await;
    assert_eq!(app.order("P-1").await["returned_at"], Value::Null);
    visit(&app, &token, &paid("P-1", "500")).await;
    assert!(app.order("P-1").await["returned_at"].is_string());
    let mut missing = 0.0;
    for _ in 0..100 {
        missing = missing_callbacks(&app).await;
        if missing == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(missing, 1.0, "the paid callback never came");
    assert_eq!(
        app.outcomes("P-1").await,
        Vec::<String>::new(),
        "nothing stored"
    );
}

both_backends!(
    a_return_that_proves_no_payment_records_nothing,
    a_return_with_the_orders_paid_data_is_recorded,
);
