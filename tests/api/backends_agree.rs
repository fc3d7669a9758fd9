//! Every path writes the same rows. On PostgreSQL a paid first delivery is
//! written by the fast path (decided against the order it assumes, one
//! statement: `payhook_pay` or `payhook_pay_batch`) or, when the order is not
//! as assumed, by the general path (`payhook_claim`, the decision under the
//! order's lock, then the writes); on SQLite by the Rust statements in
//! `store/`. The same scenario, classic and Checkout, runs against three
//! services: PostgreSQL as it is, PostgreSQL where no order is ever as
//! assumed (every paid callback takes the general path), and SQLite; request
//! by request, and afterwards every table a callback writes is read back and
//! compared, ignoring ids and times:
//!
//! * ids: a row's own `id` is dropped; a `callback_id` or `duplicate_of`
//!   becomes the position of the callback it points to (`callbacks[3]`), so a
//!   fulfilment pointing at the wrong callback is still a difference;
//! * times (`*_at`) and random values (`answered.attempt`, `orders.return_token`):
//!   only whether they are set is compared.
//!
//! Columns are read from the tables themselves (PostgreSQL `row_to_json`,
//! SQLite `json_object` over `pragma_table_info`), so a column added to one
//! backend's migrations but not the other's is a difference too.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use diesel::connection::SimpleConnection;
use diesel::sql_types::Text;
use diesel::{Connection, PgConnection};
use payhook::sim::{CheckoutSigner, OrderFigures, SignedWebhook};
use serde_json::Value;

use crate::helpers::{Backend, TestApp, ADMIN_TOKEN};
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
    /// A Checkout webhook.
    Webhook(SignedWebhook),
}

/// An order registered before the scenario: for the classic project, or for
/// another (a Checkout client id).
struct Order {
    project: Option<&'static str>,
    orderid: &'static str,
    amount: i64,
}

fn classic(orderid: &'static str, amount: i64) -> Order {
    Order {
        project: None,
        orderid,
        amount,
    }
}

/// What a scenario registers and sends, and which orders the fast path pays
/// on PostgreSQL (their paid first delivery finds them as assumed).
struct Scenario {
    orders: Vec<Order>,
    steps: Vec<Step>,
    fast: &'static [&'static str],
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
fn registered_scenario() -> Scenario {
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
        classic("A-1", 1250),
        classic("A-2", 1250),
        classic("A-3", 1250),
        classic("A-4", 1250),
        classic("A-5", 1250),
        classic("A-6", 700),
        classic("A-7", 1250),
    ];
    Scenario {
        orders,
        steps,
        // A-2 is paid after a mismatch, which left the order as a first paid
        // delivery does not assume. A-7's status 0 changed nothing of the
        // order, so its paid delivery still finds it as assumed.
        fast: &["A-1", "A-6", "A-7"],
    }
}

/// With `PAYHOOK_ORDER_CHECK=none` and test payments allowed: orders created
/// by the paid callback itself, fulfilments recorded as unchecked.
fn unchecked_scenario() -> Scenario {
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
    Scenario {
        orders: vec![classic("R-1", 1250)],
        steps,
        // Without registered orders a paid callback creates its order row: no
        // order is assumed (R-1 is paid after a mismatch).
        fast: &[],
    }
}

const CLIENT_ID: &str = "shop-client-7";
const CHECKOUT_SECRET: &str = "checkout-secret-current-01";
const CHECKOUT_ENV: [(&str, &str); 2] = [
    ("PAYSERA_CHECKOUT_CLIENT_ID", CLIENT_ID),
    ("PAYSERA_CHECKOUT_SECRET", CHECKOUT_SECRET),
];

fn webhook(outcome: &'static str, signer: &CheckoutSigner, figures: OrderFigures<'_>) -> Step {
    Step {
        outcome,
        request: Request::Webhook(signer.snapshot(&figures)),
    }
}

/// Checkout snapshots: partial, full, the same again, late, overpaid, more
/// after paid, unregistered, chargeback, forged.
fn checkout_scenario() -> Scenario {
    let signer = CheckoutSigner::new(CHECKOUT_SECRET);
    let figures = |orderid, amount_paid, updated_at| OrderFigures {
        orderid,
        amount: 2500,
        amount_paid,
        currency: "EUR",
        updated_at,
        payment_status: "settled",
    };
    let full = signer.snapshot(&figures("C-1", 2500, 200));
    let steps = vec![
        webhook("partially_paid", &signer, figures("C-1", 1000, 100)),
        Step {
            outcome: "fulfilled",
            request: Request::Webhook(SignedWebhook {
                headers: full.headers.clone(),
                body: full.body.clone(),
            }),
        },
        Step {
            outcome: "duplicate",
            request: Request::Webhook(full),
        },
        webhook("duplicate", &signer, figures("C-1", 2500, 300)),
        webhook("stale", &signer, figures("C-1", 1000, 150)),
        webhook("fulfilled", &signer, figures("C-2", 2600, 100)),
        webhook("paid_again", &signer, figures("C-1", 5000, 400)),
        webhook("unknown_order", &signer, figures("C-9", 2500, 100)),
        webhook(
            "disputed",
            &signer,
            OrderFigures {
                payment_status: "chargeback",
                ..figures("C-3", 2500, 100)
            },
        ),
        webhook(
            "rejected",
            &CheckoutSigner::new("not-the-secret"),
            figures("C-3", 2500, 200),
        ),
    ];
    let order = |orderid| Order {
        project: Some(CLIENT_ID),
        orderid,
        amount: 2500,
    };
    Scenario {
        orders: vec![order("C-1"), order("C-2"), order("C-3")],
        steps,
        // A snapshot's decision records where the order stands beside it:
        // never the paid writes alone.
        fast: &[],
    }
}

#[derive(diesel::QueryableByName)]
pub(crate) struct Text1 {
    #[diesel(sql_type = Text)]
    pub(crate) j: String,
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
fn snapshot(app: &TestApp) -> Snapshot {
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
        // A callback's id is not compared (PostgreSQL's sequence leaves gaps,
        // SQLite's does not), the callback it points to is.
        Value::Number(n) if column == "callback_id" || column == "duplicate_of" => {
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

type Snapshot = BTreeMap<&'static str, Vec<Row>>;

/// Row by row and column by column, what differs between the services named
/// `left` and `right`; empty when nothing does.
fn differences((left, a): (&str, &Snapshot), (right, b): (&str, &Snapshot)) -> String {
    let mut out = String::new();
    for (table, _) in TABLES {
        let (a, b) = (&a[table], &b[table]);
        if a.len() != b.len() {
            let _ = writeln!(
                out,
                "{table}: {} rows on {left}, {} on {right}",
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
                                "{table}[{i}].{column}: {left} {}, {right} {}",
                                show(vx),
                                show(vy)
                            );
                        }
                    }
                }
                (Some(x), None) => {
                    let _ = writeln!(out, "{table}[{i}] only on {left}: {x:?}");
                }
                (None, Some(y)) => {
                    let _ = writeln!(out, "{table}[{i}] only on {right}: {y:?}");
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
        Request::Webhook(webhook) => {
            let reply = app.post_webhook(webhook).await;
            return (reply.status, reply.body);
        }
    };
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// PostgreSQL where no order is ever as assumed: every paid first delivery
/// is declined by the fast path's statement and decided again on the general
/// path, under the order's lock.
const NEVER_AS_ASSUMED: &str = "
    CREATE OR REPLACE FUNCTION payhook_as_assumed(o orders, p_amount BIGINT, p_currency TEXT)
    RETURNS BOOLEAN LANGUAGE sql AS $$ SELECT false $$";

/// PostgreSQL as it is, with the orders the fast path pays counted: the
/// migration's predicate, renamed, behind one that also notes each order it
/// finds as assumed (a note that stays only if that statement commits).
pub(crate) const COUNT_AS_ASSUMED: &str = "
    ALTER FUNCTION payhook_as_assumed(orders, BIGINT, TEXT) RENAME TO contract_as_assumed;
    CREATE TABLE contract_fast (orderid TEXT NOT NULL);
    CREATE FUNCTION payhook_as_assumed(o orders, p_amount BIGINT, p_currency TEXT)
    RETURNS BOOLEAN LANGUAGE plpgsql AS $$
    BEGIN
        IF contract_as_assumed(o, p_amount, p_currency) THEN
            INSERT INTO contract_fast VALUES (o.orderid);
            RETURN true;
        END IF;
        RETURN false;
    END $$";

/// A PostgreSQL service whose database first runs `sql` (before any callback,
/// so every statement payhook prepares sees it).
pub(crate) async fn postgres_with(overrides: &[(&str, &str)], sql: &'static str) -> TestApp {
    let app = TestApp::spawn_with(Backend::Postgres, overrides).await;
    let url = app.database_url.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn = PgConnection::establish(&url).expect("a connection");
        conn.batch_execute(sql).expect("altering the contract");
    })
    .await
    .unwrap();
    app
}

async fn register(app: &TestApp, order: &Order) {
    let mut body = serde_json::json!({"amount": order.amount, "currency": "EUR"});
    if let Some(project) = order.project {
        body["project_id"] = project.into();
    }
    let response = app
        .client
        .put(format!("{}/api/v1/orders/{}", app.admin, order.orderid))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "register {}", order.orderid);
}

/// Runs the scenario on the three services and compares what they answered
/// and what they stored.
async fn all_write_the_same(overrides: &[(&str, &str)], scenario: Scenario) {
    let Scenario {
        orders,
        steps,
        fast,
    } = scenario;
    let services = [
        (
            "PostgreSQL",
            postgres_with(overrides, COUNT_AS_ASSUMED).await,
        ),
        (
            "PostgreSQL's general path",
            postgres_with(overrides, NEVER_AS_ASSUMED).await,
        ),
        (
            "SQLite",
            TestApp::spawn_with(Backend::Sqlite, overrides).await,
        ),
    ];
    for (_, app) in &services {
        for order in &orders {
            register(app, order).await;
        }
    }
    for (i, step) in steps.iter().enumerate() {
        let (first, app) = &services[0];
        let answered = send(app, &step.request).await;
        for (name, other) in &services[1..] {
            assert_eq!(
                answered,
                send(other, &step.request).await,
                "step {i} ({}): {name} answered differently from {first}",
                step.outcome
            );
        }
    }

    let snapshots: Vec<(&str, Snapshot)> = services
        .iter()
        .map(|(name, app)| (*name, snapshot(app)))
        .collect();
    let stored: Vec<&str> = snapshots[0].1["callbacks"]
        .iter()
        .map(|row| row["outcome"].as_str().unwrap())
        .collect();
    let planned: Vec<&str> = steps.iter().map(|s| s.outcome).collect();
    assert_eq!(stored, planned, "the scenario's outcomes");
    let a = &snapshots[0].1;
    assert!(
        a["fulfilments"].len() >= 2 && !a["outbox"].is_empty() && !a["order_flags"].is_empty(),
        "the scenario fulfils, notifies and flags: {a:#?}"
    );
    let sqlite = (snapshots[2].0, &snapshots[2].1);
    for (name, snapshot) in &snapshots[..2] {
        let diff = differences((name, snapshot), sqlite);
        assert!(
            diff.is_empty(),
            "the services stored different rows:\n{diff}"
        );
    }

    let mut paid_fast: Vec<String> = services[0]
        .1
        .query::<Text1>("SELECT DISTINCT orderid AS j FROM contract_fast ORDER BY 1")
        .into_iter()
        .map(|row| row.j)
        .collect();
    paid_fast.sort();
    assert_eq!(paid_fast, fast, "the orders PostgreSQL's fast path paid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_orders_store_the_same_rows_on_every_path() {
    all_write_the_same(&[], registered_scenario()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchecked_orders_store_the_same_rows_on_every_path() {
    all_write_the_same(
        &[
            ("PAYHOOK_ORDER_CHECK", "none"),
            ("PAYHOOK_ALLOW_TEST_PAYMENTS", "true"),
        ],
        unchecked_scenario(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_snapshots_store_the_same_rows_on_every_path() {
    all_write_the_same(&CHECKOUT_ENV, checkout_scenario()).await;
}
