//! The fast path's contract, field by field. A first paid delivery on
//! PostgreSQL is decided against the order it assumes
//! (`domain::assumed_order`) and written by one statement that holds only
//! while the stored order is exactly that (`payhook_as_assumed`, migration
//! `000028_one_paid_contract`). The dangerous mistake is an order the SQL
//! takes for the assumed one while the decision would read it otherwise: the
//! payment would be written as decided for an order it does not find.
//!
//! So for every field of the order view the decision reads, an order that
//! differs from the assumed one in that field alone must be declined by the
//! statement (and decided on the general path), and an order exactly as
//! registered must not be. `every_field_is_listed` names every field of
//! `OrderView` without `..`: a field added to the view does not compile here until it has
//! a variation below, and that variation fails until the SQL reads it too.

use payhook::domain::OrderView;

use crate::backends_agree::{postgres_with, Text1, COUNT_AS_ASSUMED};
use crate::helpers::{TestApp, ADMIN_TOKEN};
use crate::support::gateway::{paid_fields, sign, CallbackForm};

/// The fields of the order view the decision reads.
const VIEW_FIELDS: [&str; 9] = [
    "expected",
    "amount_mode",
    "state",
    "fulfilled",
    "refunded",
    "refunded_amount",
    "test",
    "amount_paid",
    "snapshot_at",
];

/// Never called: it stops compiling when `OrderView` gains a field, here,
/// beside the list above that must then name it.
#[allow(dead_code)]
fn every_field_is_listed(view: OrderView) {
    let OrderView {
        expected: _,
        amount_mode: _,
        state: _,
        fulfilled: _,
        refunded: _,
        refunded_amount: _,
        test: _,
        amount_paid: _,
        snapshot_at: _,
    } = view;
}

/// For each field of the view, changes to a registered, untouched order's
/// row that make it differ from the assumed order in that field alone (the
/// order is registered for the callback's amount, 1250 EUR).
const VARIATIONS: [(&str, &str); 10] = [
    ("expected", "amount = 1251"),
    ("expected", "currency = 'USD'"),
    ("amount_mode", "amount_mode = 'payer_sets'"),
    ("state", "state = 'needs_review'"),
    ("fulfilled", "fulfilled_at = 1"),
    ("refunded", "state = 'refunded'"),
    ("refunded_amount", "refunded_amount = 100"),
    ("test", "test = true"),
    ("amount_paid", "amount_paid = 100"),
    ("snapshot_at", "snapshot_at = 1"),
];

async fn register(app: &TestApp, orderid: &str) {
    let response = app
        .client
        .put(format!("{}/api/v1/orders/{orderid}", app.admin))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"amount": 1250, "currency": "EUR"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "register {orderid}");
}

fn paid_by_the_fast_path(app: &TestApp) -> Vec<String> {
    app.query::<Text1>("SELECT DISTINCT orderid AS j FROM contract_fast ORDER BY 1")
        .into_iter()
        .map(|row| row.j)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_unlike_the_assumed_one_in_any_field_is_never_paid_by_the_fast_path() {
    let app = postgres_with(&[], COUNT_AS_ASSUMED).await;
    let fields: Vec<&str> = VARIATIONS.iter().map(|(field, _)| *field).collect();
    for field in VIEW_FIELDS {
        assert!(fields.contains(&field), "no variation for {field}");
    }

    register(&app, "AS-REGISTERED").await;
    let mut orders = vec!["AS-REGISTERED".to_string()];
    for (i, (field, change)) in VARIATIONS.iter().enumerate() {
        let orderid = format!("V{i}-{field}");
        register(&app, &orderid).await;
        app.query::<Text1>(&format!(
            "UPDATE orders SET {change} WHERE orderid = '{orderid}' RETURNING orderid AS j"
        ));
        orders.push(orderid);
    }
    for orderid in &orders {
        let reply = app
            .get_callback(&sign(
                &paid_fields(orderid, "1250", "EUR"),
                CallbackForm::Ss2,
            ))
            .await;
        assert_eq!(reply.status, 200, "{orderid}: {}", reply.body);
        assert_eq!(reply.body, "OK", "{orderid}");
    }

    assert_eq!(
        paid_by_the_fast_path(&app),
        ["AS-REGISTERED"],
        "only the order exactly as registered matches the assumed one"
    );
}
