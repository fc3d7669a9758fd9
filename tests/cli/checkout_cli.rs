//! The operator's commands on Checkout (Modern) webhooks, as the real binary
//! on PostgreSQL and SQLite: `callbacks show` prints the JSON body and the
//! headers, `callbacks replay` runs the stored webhook through the webhook
//! pipeline again (a fulfilled one becomes `duplicate`).

use crate::support;

use std::path::Path;
use std::time::Duration;

use payhook::checkout::{Headers, Secret, WebhookVerifier};
use payhook::domain::{Amount, Currency, OrderCheck, Rules};
use payhook::pipeline::{Handled, Parts, Pipeline};
use payhook::sim::{CheckoutSigner, OrderFigures};
use payhook::store::{CallbackMeta, DatabaseConfig, RawRequest, Store};
use secrecy::SecretString;
use support::cli::{payhook, run};
use support::postgres;

const CLIENT_ID: &str = "cli-client";
const SECRET: &str = "cli-checkout-secret";

fn checkout_commands(dir: &Path, database_url: &str, config: DatabaseConfig) {
    let with_checkout = |cmd: &mut std::process::Command| {
        cmd.env("PAYSERA_CHECKOUT_CLIENT_ID", CLIENT_ID)
            .env("PAYSERA_CHECKOUT_SECRET", SECRET);
    };
    let (code, out, err) = run(payhook(dir, database_url).arg("migrate"));
    assert_eq!(code, 0, "migrate: {out}{err}");
    let store = Store::connect(&config, 1, Duration::from_secs(5), Duration::from_secs(5)).unwrap();
    let eur = Currency::parse("EUR").unwrap();
    store
        .register_order(
            CLIENT_ID,
            "M-1",
            Amount::from_minor(2500).unwrap(),
            &eur,
            false,
            None,
        )
        .unwrap();

    // A webhook received as the endpoint receives it.
    let webhook = CheckoutSigner::new(SECRET).snapshot(&OrderFigures {
        orderid: "M-1",
        amount: 2500,
        amount_paid: 2500,
        currency: "EUR",
        updated_at: 1_700_000_000,
        payment_status: "settled",
    });
    let mut headers = Headers::new();
    for (name, value) in &webhook.headers {
        headers.push(name.to_ascii_lowercase(), value.as_bytes());
    }
    let secret = Secret::new("current", SecretString::from(SECRET.to_string()))
        .unwrap()
        .of_project(CLIENT_ID);
    let verifier = WebhookVerifier::new(vec![secret]).unwrap();
    let pipeline = Pipeline::new(Parts {
        verifier: std::sync::Arc::new(payhook::paysera::Verifier::without_projects(
            payhook::paysera::KeySet::paysera_production(),
            payhook::paysera::Policy::default(),
        )),
        checkout: Some(std::sync::Arc::new(verifier)),
        checkout_reject_status: 403,
        store: store.clone(),
        rules: Rules {
            allow_test_payments: false,
            order_check: OrderCheck::Registered,
        },
        rejected_max_bytes: 2048,
        gateways: Default::default(),
    });
    let meta = CallbackMeta {
        method: "POST".into(),
        raw: RawRequest::webhook(headers.paysera(), &webhook.body),
        remote_addr: None,
        api: "checkout",
    };
    let handled = pipeline
        .webhook(&headers, &webhook.body, &meta, None)
        .unwrap();
    let Handled::Done(processed, ..) = handled else {
        panic!("not stored as processed: {:?}", handled.reason());
    };
    let id = processed.callback_id.to_string();

    let mut show = payhook(dir, database_url);
    with_checkout(&mut show);
    let (code, out, err) = run(show.args(["callbacks", "show", &id]));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("api          checkout"), "{out}");
    assert!(out.contains("outcome      fulfilled"), "{out}");
    assert!(out.contains("\"merchant_order_id\": \"M-1\""), "{out}");
    assert!(out.contains("x-paysera-signature: "), "{out}");
    assert!(!out.contains(SECRET), "{out}");

    let mut replay = payhook(dir, database_url);
    with_checkout(&mut replay);
    let (code, out, err) = run(replay.args(["callbacks", "replay", &id]));
    assert_eq!(
        (code, out.trim()),
        (
            0,
            format!("{id}\tduplicate\tthe same webhook was stored").as_str()
        ),
        "{err}"
    );

    // Without the Checkout project configured, a replay says why it cannot run.
    let (code, out, _) = run(payhook(dir, database_url).args(["callbacks", "replay", &id]));
    assert_eq!(code, 1);
    assert!(out.contains("no Checkout project is configured"), "{out}");
}

#[test]
fn checkout_commands_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let url = postgres::fresh_database();
    checkout_commands(
        dir.path(),
        &url,
        DatabaseConfig::Postgres {
            url: SecretString::from(url.clone()),
        },
    );
}

#[test]
fn checkout_commands_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payhook.sqlite3");
    let url = format!("sqlite:{}", path.display());
    checkout_commands(dir.path(), &url, DatabaseConfig::Sqlite { path });
}
