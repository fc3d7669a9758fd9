//! The two backends write the same rows (issue 9, point 5). On PostgreSQL the
//! paid path goes through the PL/pgSQL function `payhook_pay` (migrations),
//! on SQLite through the Rust statements in `store/`; everything else goes
//! through the same Rust code on both. The same scenario runs against a
//! service on each backend, request by request, and afterwards every table a
//! callback writes is read back and compared, ignoring ids and times:
//!
//! * ids: a row's own `id` is dropped; a `callback_id` becomes the position of
//!   the callback it points to (`callbacks[3]`), so a fulfilment pointing at
//!   the wrong callback is still a difference;
//! * times (`*_at`) and random values (`answered.attempt`, `orders.return_token`):
//!   only whether they are set is compared.
//!
//! Columns are read from the tables themselves (PostgreSQL `row_to_json`,
//! SQLite `json_object` over `pragma_table_info`), so a column added to one
//! backend's migrations but not the other's is a difference too.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use diesel::sql_types::Text;
use serde_json::Value;

use crate::helpers::{Backend, TestApp};
use crate::support::gateway::{paid_fields, sign, with, without, CallbackForm};

/// Every table a callback writes, each with the order its rows are compared in.
const TABLES: [(&str, &str); 6] = [
    ("orders", "project_id, orderid"),
    ("order_flags", "id"),
    ("callbacks", "id"),
    ("fulfilments", "id"),
    ("outbox", "id"),
    ("answered", "identity"),
];

/// Values that differ between any two runs; only whether they are set counts.
const RANDOM: [(&str, &str); 2] = [("answered", "attempt"), ("orders", "return_token")];

enum Request {
    Get(String),
    /// A body with its content type.
    Post(&'static str, String),
}

/// One request of a scenario and the outcome it must be stored with (so the
/// scenario cannot quietly degrade into, say, twenty rejections that agree).
struct Step {
    outcome: &'static str,
    request: Request,
}

fn get(outcome: &'static str, fields: &[(String, String)], form: CallbackForm) -> Step {
    Step {
        outcome,
        request: Request::Get(sign(fields, form)),
    }
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

/// Orders registered before the scenario, then every outcome the default
/// rules (order check `registered`) can give.
fn registered_scenario() -> (Vec<(&'static str, i64)>, Vec<Step>) {
    use CallbackForm::{AllSignatures, Ss2, Ss3};
    let paid = |id: &str, amount: &str| paid_fields(id, amount, "EUR");
    let status = |id: &str, code: &str| with(paid(id, "1250"), "status", code);
    let a1 = paid("A-1", "1250");
    let tampered = sign(&a1, Ss2).replacen("data=c", "data=d", 1);
    assert_ne!(tampered, sign(&a1, Ss2), "the tampering changes the query");
    let steps = vec![
        get("fulfilled", &a1, Ss2),
        get("duplicate", &a1, Ss2),
        get("paid_again", &with(a1.clone(), "requestid", "2"), Ss2),
        // Status 0 for a paid order: flagged, the order stays paid.
        get("not_paid", &status("A-1", "0"), Ss2),
        get("amount_mismatch", &paid("A-2", "1"), Ss2),
        // A matching payment after a mismatch fulfils and keeps the flag.
        get(
            "fulfilled",
            &with(paid("A-2", "1250"), "requestid", "3"),
            Ss3,
        ),
        get("currency_mismatch", &paid_fields("A-3", "1250", "USD"), Ss2),
        get("refunded", &status("A-4", "5"), Ss2),
        get("paid_after_refund", &paid("A-4", "1250"), Ss2),
        // A refund for an order never registered creates its row.
        get("refunded", &status("Z-1", "5"), Ss2),
        get("pending", &status("A-5", "2"), Ss2),
        get("info", &status("A-5", "3"), Ss2),
        get("test_ignored", &with(paid("A-5", "1250"), "test", "1"), Ss2),
        get("unknown_order", &paid("NOPE", "1"), Ss2),
        // Not answered OK, so not a duplicate the second time.
        get("unknown_order", &paid("NOPE", "1"), Ss2),
        get("sms_received", &sms(), Ss2),
        get("duplicate", &sms(), Ss2),
        Step {
            outcome: "rejected",
            request: Request::Get(tampered),
        },
        // Verified, but a macro callback without an order id.
        get("rejected", &without(paid("A-5", "1250"), "orderid"), Ss2),
        Step {
            outcome: "rejected",
            request: Request::Post("application/json", "{\"data\":\"x\"}".into()),
        },
        Step {
            outcome: "fulfilled",
            request: Request::Post(
                "application/x-www-form-urlencoded",
                sign(&paid("A-6", "700"), Ss3),
            ),
        },
        get("not_paid", &status("A-7", "0"), Ss2),
        get("fulfilled", &paid("A-7", "1250"), AllSignatures),
    ];
    let orders = vec![
        ("A-1", 1250),
        ("A-2", 1250),
        ("A-3", 1250),
        ("A-4", 1250),
        ("A-5", 1250),
        ("A-6", 700),
        ("A-7", 1250),
    ];
    (orders, steps)
}

/// With `PAYHOOK_ORDER_CHECK=none` and test payments allowed: orders created
/// by the paid callback itself, fulfilments recorded as unchecked.
fn unchecked_scenario() -> (Vec<(&'static str, i64)>, Vec<Step>) {
    use CallbackForm::Ss2;
    let paid = |id: &str, amount: &str| paid_fields(id, amount, "EUR");
    let n1 = paid("N-1", "990");
    let steps = vec![
        get("fulfilled", &n1, Ss2),
        get("duplicate", &n1, Ss2),
        get("paid_again", &with(n1.clone(), "requestid", "2"), Ss2),
        get("fulfilled", &with(paid("N-2", "10"), "test", "1"), Ss2),
        get("refunded", &with(paid("N-3", "500"), "status", "5"), Ss2),
        get("paid_after_refund", &paid("N-3", "500"), Ss2),
        // A registered expectation is still compared.
        get("amount_mismatch", &paid("R-1", "1"), Ss2),
        get(
            "fulfilled",
            &with(paid("R-1", "1250"), "requestid", "4"),
            Ss2,
        ),
        get("not_paid", &with(paid("N-4", "10"), "status", "0"), Ss2),
    ];
    (vec![("R-1", 1250)], steps)
}

#[derive(diesel::QueryableByName)]
struct Text1 {
    #[diesel(sql_type = Text)]
    j: String,
}

type Row = BTreeMap<String, Value>;

/// Every row of `table`, as column → JSON value, in `order`.
fn read_table(app: &TestApp, table: &str, order: &str) -> Vec<Row> {
    let sql = match app.backend {
        Backend::Postgres => {
            format!("SELECT row_to_json(t)::text AS j FROM {table} t ORDER BY {order}")
        }
        Backend::Sqlite => {
            let columns: Vec<Text1> = app.query(&format!(
                "SELECT name AS j FROM pragma_table_info('{table}') ORDER BY cid"
            ));
            let pairs: Vec<String> = columns
                .iter()
                .map(|c| format!("'{0}', \"{0}\"", c.j))
                .collect();
            format!(
                "SELECT json_object({}) AS j FROM {table} ORDER BY {order}",
                pairs.join(", ")
            )
        }
    };
    app.query::<Text1>(&sql)
        .into_iter()
        .map(|r| serde_json::from_str(&r.j).unwrap_or_else(|e| panic!("{table}: {e}: {}", r.j)))
        .collect()
}

/// All tables, with ids and times normalised away.
fn snapshot(app: &TestApp) -> BTreeMap<&'static str, Vec<Row>> {
    let mut tables: BTreeMap<&'static str, Vec<Row>> = TABLES
        .iter()
        .map(|(table, order)| (*table, read_table(app, table, order)))
        .collect();
    // callbacks.id → its position, for the rows that point at a callback.
    let position: BTreeMap<i64, usize> = tables["callbacks"]
        .iter()
        .enumerate()
        .map(|(i, row)| (row["id"].as_i64().expect("callbacks.id"), i))
        .collect();
    for (table, rows) in tables.iter_mut() {
        for row in rows.iter_mut() {
            row.remove("id");
            for (column, value) in row.iter_mut() {
                *value = normalise(table, column, value, &position);
            }
        }
    }
    tables
}

fn normalise(table: &str, column: &str, value: &Value, position: &BTreeMap<i64, usize>) -> Value {
    let set_or_null = |v: &Value| {
        if v.is_null() {
            Value::Null
        } else {
            Value::from("<set>")
        }
    };
    match value {
        _ if column.ends_with("_at") || RANDOM.contains(&(table, column)) => set_or_null(value),
        Value::Number(n) if column == "callback_id" => {
            match n.as_i64().and_then(|id| position.get(&id)) {
                Some(i) => Value::from(format!("callbacks[{i}]")),
                None => Value::from(format!("no such callback ({n})")),
            }
        }
        // SQLite has no booleans: it stores 0 and 1.
        Value::Bool(b) => Value::from(i64::from(*b)),
        other => other.clone(),
    }
}

/// Row by row and column by column, what differs; empty when nothing does.
fn differences(
    pg: &BTreeMap<&'static str, Vec<Row>>,
    sqlite: &BTreeMap<&'static str, Vec<Row>>,
) -> String {
    let mut out = String::new();
    for (table, _) in TABLES {
        let (a, b) = (&pg[table], &sqlite[table]);
        if a.len() != b.len() {
            let _ = writeln!(
                out,
                "{table}: {} rows on PostgreSQL, {} on SQLite",
                a.len(),
                b.len()
            );
        }
        for i in 0..a.len().max(b.len()) {
            match (a.get(i), b.get(i)) {
                (Some(x), Some(y)) if x == y => {}
                (Some(x), Some(y)) => {
                    let columns: std::collections::BTreeSet<&String> =
                        x.keys().chain(y.keys()).collect();
                    for column in columns {
                        let (vx, vy) = (x.get(column), y.get(column));
                        if vx != vy {
                            let show = |v: Option<&Value>| {
                                v.map_or("(no such column)".to_string(), Value::to_string)
                            };
                            let _ = writeln!(
                                out,
                                "{table}[{i}].{column}: PostgreSQL {}, SQLite {}",
                                show(vx),
                                show(vy)
                            );
                        }
                    }
                }
                (Some(x), None) => {
                    let _ = writeln!(out, "{table}[{i}] only on PostgreSQL: {x:?}");
                }
                (None, Some(y)) => {
                    let _ = writeln!(out, "{table}[{i}] only on SQLite: {y:?}");
                }
                (None, None) => unreachable!(),
            }
        }
    }
    out
}

async fn send(app: &TestApp, request: &Request) -> (u16, String) {
    let response = match request {
        Request::Get(query) => {
            let reply = app.get_callback(query).await;
            return (reply.status, reply.body);
        }
        Request::Post(content_type, body) => app
            .client
            .post(format!("{}/paysera/callback", app.base))
            .header("Content-Type", *content_type)
            .body(body.clone())
            .send()
            .await
            .unwrap(),
    };
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Runs the scenario on a service on each backend and compares what they answered
/// and what they stored.
async fn both_write_the_same(
    overrides: &[(&str, &str)],
    (orders, steps): (Vec<(&'static str, i64)>, Vec<Step>),
) {
    let pg = TestApp::spawn_with(Backend::Postgres, overrides).await;
    let sqlite = TestApp::spawn_with(Backend::Sqlite, overrides).await;
    for app in [&pg, &sqlite] {
        for (orderid, amount) in &orders {
            app.register(orderid, *amount, "EUR").await;
        }
    }
    for (i, step) in steps.iter().enumerate() {
        let answered = send(&pg, &step.request).await;
        assert_eq!(
            answered,
            send(&sqlite, &step.request).await,
            "step {i} ({}): PostgreSQL answered differently from SQLite",
            step.outcome
        );
    }

    let (a, b) = (snapshot(&pg), snapshot(&sqlite));
    let stored: Vec<&str> = a["callbacks"]
        .iter()
        .map(|row| row["outcome"].as_str().unwrap())
        .collect();
    let planned: Vec<&str> = steps.iter().map(|s| s.outcome).collect();
    assert_eq!(stored, planned, "the scenario's outcomes on PostgreSQL");
    assert!(
        a["fulfilments"].len() >= 2 && !a["outbox"].is_empty() && !a["order_flags"].is_empty(),
        "the scenario fulfils, notifies and flags: {a:#?}"
    );
    let diff = differences(&a, &b);
    assert!(
        diff.is_empty(),
        "the backends stored different rows:\n{diff}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_orders_store_the_same_rows_on_both_backends() {
    both_write_the_same(&[], registered_scenario()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchecked_orders_store_the_same_rows_on_both_backends() {
    both_write_the_same(
        &[
            ("PAYHOOK_ORDER_CHECK", "none"),
            ("PAYHOOK_ALLOW_TEST_PAYMENTS", "true"),
        ],
        unchecked_scenario(),
    )
    .await;
}
