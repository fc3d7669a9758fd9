//! `payhook orders close` as the real binary, on a real PostgreSQL database and
//! on a SQLite file, configured as the service is (environment only).

use crate::support;

use std::path::Path;
use std::time::Duration;

use payhook::domain::{Amount, Currency, OrderCheck, PaidReturn, Rules};
use payhook::paysera::{Policy, RequestParams};
use payhook::store::{DatabaseConfig, Store};
use secrecy::SecretString;
use support::cli::{payhook, run};
use support::{fuzz_harness, gateway, postgres};

const PROJECT: &str = "123";

fn rules() -> Rules {
    Rules {
        allow_test_payments: false,
        order_check: OrderCheck::Registered,
    }
}

/// Orders whose buyer came back and for which nothing arrived: what the
/// missed-callback gauge counts right now.
fn missing(store: &Store) -> i64 {
    let now = chrono::Utc::now().timestamp_millis();
    store.missed_callbacks(now - 86_400_000, now + 1).unwrap().0
}

fn closes_an_order(dir: &Path, database_url: &str, config: DatabaseConfig) {
    let (code, out, err) = run(payhook(dir, database_url).arg("migrate"));
    assert_eq!(code, 0, "migrate: {out}{err}");

    let store = Store::connect(&config, 1, Duration::from_secs(5), Duration::from_secs(5)).unwrap();
    let amount = Amount::from_minor(500).unwrap();
    let eur = Currency::parse("EUR").unwrap();
    for (orderid, token) in [("O-1", "token-1"), ("O-2", "token-2")] {
        store
            .register_order(
                PROJECT,
                orderid,
                amount,
                &eur,
                false,
                Some((token, "https://shop.example/thanks")),
            )
            .unwrap();
        let paid = RequestParams::from_query_or_url(&gateway::paid(orderid, "500"));
        let paid = fuzz_harness::verifier(Policy::default())
            .verify(&paid)
            .unwrap();
        let paid = PaidReturn::proven_by(&paid, rules()).unwrap();
        store.mark_returned(token, Some(&paid)).unwrap();
    }
    assert_eq!(missing(&store), 2);

    let (code, out, err) = run(payhook(dir, database_url).args(["orders", "close", "O-1"]));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with("order O-1 (project 123) closed at ")
            && out.contains("no longer counts it"),
        "{out}"
    );
    assert_eq!(missing(&store), 1, "O-1 is out of the count, O-2 is not");
    let closed_at = store.order(PROJECT, "O-1").unwrap().unwrap().closed_at;
    assert!(closed_at.is_some());

    // Again: nothing changes, and it says so.
    let (code, out, _) =
        run(payhook(dir, database_url).args(["orders", "close", "O-1", "--project-id", PROJECT]));
    assert_eq!(code, 0);
    assert!(out.contains("was already closed at"), "{out}");
    assert_eq!(
        store.order(PROJECT, "O-1").unwrap().unwrap().closed_at,
        closed_at
    );

    let (code, out, err) = run(payhook(dir, database_url).args(["orders", "close", "NOPE"]));
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(err.trim(), "error: no order NOPE in project 123");

    // Usage and configuration errors: exit 2, nothing closed.
    let (code, _, err) =
        run(payhook(dir, database_url).args(["orders", "close", "O-2", "--project-id", "999"]));
    assert_eq!(code, 2);
    assert!(err.contains("project 999 is not configured"), "{err}");
    let (code, _, _) = run(payhook(dir, database_url).args(["orders", "close"]));
    assert_eq!(code, 2);
    let (code, _, err) = run(payhook(dir, database_url)
        .env("PAYHOOK_ADMIN_TOKEN", "short")
        .args(["orders", "close", "O-2"]));
    assert_eq!(code, 2);
    assert!(err.contains("PAYHOOK_ADMIN_TOKEN"), "{err}");
    assert_eq!(missing(&store), 1);
}

#[test]
fn orders_close_on_postgres() {
    let dir = tempfile::tempdir().unwrap();
    let url = postgres::fresh_database();
    closes_an_order(
        dir.path(),
        &url,
        DatabaseConfig::Postgres {
            url: SecretString::from(url.clone()),
        },
    );
    // A database that cannot be reached is neither a missing order nor a usage error.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, _, err) = run(payhook(
        dir.path(),
        &format!("postgres://payhook@127.0.0.1:{closed_port}/payhook"),
    )
    .env("PAYHOOK_DB_ACQUIRE_TIMEOUT", "1s")
    .args(["orders", "close", "O-2"]));
    assert_eq!(code, 3, "{err}");
}

#[test]
fn orders_close_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("payhook.sqlite3");
    let url = format!("sqlite:{}", path.display());
    closes_an_order(dir.path(), &url, DatabaseConfig::Sqlite { path });
    // A wrong path must not create an empty database and call the order missing.
    let elsewhere = dir.path().join("nope/payhook.sqlite3");
    let (code, _, err) = run(
        payhook(dir.path(), &format!("sqlite:{}", elsewhere.display()))
            .args(["orders", "close", "O-2"]),
    );
    assert_eq!(code, 2);
    assert!(err.contains("no database at"), "{err}");
    assert!(!elsewhere.exists());
}
