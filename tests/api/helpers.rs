//! Starts the real service on port 0 against its own fresh database (a new
//! PostgreSQL database in the suite's throw-away cluster, or a new SQLite file),
//! both copies of a database migrated once per process, and talks HTTP to it.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use payhook::config::Settings;
use payhook::notify::Outbox;
use payhook::startup::{Application, StopHandle};

use crate::support::gateway::{PASSWORD, PROJECT};
use crate::support::postgres;
use crate::support::sqlite;
use crate::support::vectors::vectors_dir;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

pub struct TestApp {
    pub backend: Backend,
    pub base: String,
    pub admin: String,
    pub client: reqwest::Client,
    pub database_url: String,
    pub stop: StopHandle,
    /// The delivery worker, when `SHOP_NOTIFY_URL` is set.
    pub outbox: Option<Outbox>,
    _dir: tempfile::TempDir,
}

pub struct Reply {
    pub status: u16,
    pub body: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

impl TestApp {
    /// The admin listener's `/metrics`, as Prometheus reads it: `name{labels}`
    /// (everything before the value) to the value.
    pub async fn metrics(&self) -> HashMap<String, f64> {
        let response = self
            .client
            .get(format!("{}/metrics", self.admin))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        let text = response.text().await.unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .filter_map(|l| {
                let (key, value) = l.rsplit_once(' ')?;
                Some((key.to_string(), value.parse().ok()?))
            })
            .collect()
    }

    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, &[]).await
    }

    /// `overrides` are environment settings on top of the test defaults.
    pub async fn spawn_with(backend: Backend, overrides: &[(&str, &str)]) -> TestApp {
        let (database_url, dir) = Self::fresh(backend).await;
        Self::spawn_on(backend, &database_url, dir, overrides).await
    }

    /// Like [`TestApp::spawn_with`], but the delivery worker has no timer:
    /// events go out only when the test calls [`TestApp::deliver_due`].
    pub async fn spawn_stepped(backend: Backend, overrides: &[(&str, &str)]) -> TestApp {
        let (database_url, dir) = Self::fresh(backend).await;
        Self::start(backend, &database_url, dir, overrides, false).await
    }

    /// A fresh migrated database and the directory the app may use.
    async fn fresh(backend: Backend) -> (String, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let database_url = match backend {
            Backend::Postgres => tokio::task::spawn_blocking(postgres::fresh_database)
                .await
                .unwrap(),
            Backend::Sqlite => sqlite::migrated_database(&dir.path().join("payhook.sqlite3")),
        };
        (database_url, dir)
    }

    /// One delivery pass of a [`TestApp::spawn_stepped`] app's worker,
    /// returning once its attempts are recorded: how many there were.
    pub async fn deliver_due(&self) -> usize {
        let outbox = self.outbox.as_ref().expect("SHOP_NOTIFY_URL is set");
        outbox.step().await.expect("the outbox is readable")
    }

    /// Another instance on an existing database (several instances, one PostgreSQL).
    pub async fn spawn_on(
        backend: Backend,
        database_url: &str,
        dir: tempfile::TempDir,
        overrides: &[(&str, &str)],
    ) -> TestApp {
        Self::start(backend, database_url, dir, overrides, true).await
    }

    async fn start(
        backend: Backend,
        database_url: &str,
        dir: tempfile::TempDir,
        overrides: &[(&str, &str)],
        delivery_on_timer: bool,
    ) -> TestApp {
        let mut env: HashMap<String, String> = [
            ("PAYSERA_PROJECT_ID", PROJECT.to_string()),
            ("PAYSERA_PROJECT_PASSWORD", PASSWORD.to_string()),
            (
                "PAYSERA_PUBLIC_KEY_FILE",
                vectors_dir()
                    .join("current/public.pem")
                    .display()
                    .to_string(),
            ),
            ("PAYHOOK_ADMIN_TOKEN", ADMIN_TOKEN.to_string()),
            ("PAYHOOK_BIND", "127.0.0.1:0".to_string()),
            ("PAYHOOK_ADMIN_BIND", "127.0.0.1:0".to_string()),
            ("PAYHOOK_DATA_DIR", dir.path().display().to_string()),
            ("PAYHOOK_SHUTDOWN_TIMEOUT", "5s".to_string()),
            ("PAYHOOK_DRAIN_DELAY", "500ms".to_string()),
            // Every test client is 127.0.0.1, like a proxy in front: hundreds
            // of requests at once (`concurrency`) would pass the per-address
            // cap, which `tests/slow_clients.rs` tests with its defaults.
            ("PAYHOOK_TRUSTED_PROXIES", "127.0.0.1".to_string()),
            ("DATABASE_URL", database_url.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in overrides {
            env.insert(k.to_string(), v.to_string());
        }
        let mut settings = Settings::from_lookup(|k| env.get(k).cloned()).expect("test settings");
        settings.notify.on_timer = delivery_on_timer;
        let app = Application::build(settings)
            .await
            .expect("application starts");
        let base = format!("http://127.0.0.1:{}", app.port());
        let admin = format!("http://127.0.0.1:{}", app.admin_port());
        let stop = app.stop_handle();
        let outbox = app.outbox();
        tokio::spawn(app.run_until_stopped());
        TestApp {
            backend,
            base,
            admin,
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap(),
            database_url: database_url.to_string(),
            stop,
            outbox,
            _dir: dir,
        }
    }

    pub async fn get_callback(&self, query: &str) -> Reply {
        let response = self
            .client
            .get(format!("{}/paysera/callback?{query}", self.base))
            .send()
            .await
            .expect("callback request");
        Reply {
            status: response.status().as_u16(),
            body: response.text().await.unwrap(),
        }
    }

    pub async fn post_callback(&self, body: &str) -> Reply {
        let response = self
            .client
            .post(format!("{}/paysera/callback", self.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body.to_string())
            .send()
            .await
            .expect("callback request");
        Reply {
            status: response.status().as_u16(),
            body: response.text().await.unwrap(),
        }
    }

    /// Sends a signed Checkout webhook as the gateway does: its headers, its
    /// body, to `/paysera/checkout/webhook`.
    pub async fn post_webhook(&self, webhook: &payhook::sim::SignedWebhook) -> Reply {
        let mut request = self
            .client
            .post(format!("{}/paysera/checkout/webhook", self.base))
            .body(webhook.body.clone());
        for (name, value) in &webhook.headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.expect("webhook request");
        Reply {
            status: response.status().as_u16(),
            body: response.text().await.unwrap(),
        }
    }

    pub async fn register(&self, orderid: &str, amount: i64, currency: &str) {
        let response = self
            .client
            .put(format!("{}/api/v1/orders/{orderid}", self.admin))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({"amount": amount, "currency": currency}))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "register {orderid}: {}",
            response.status()
        );
    }

    /// Asks for a payment request for `orderid` (500 EUR, `accepturl` as
    /// given) through `POST /api/v1/payments`; the return token payhook put
    /// into its `accepturl` (needs `PAYHOOK_PUBLIC_URL=https://pay.shop.example`).
    pub async fn payment_return_token(&self, orderid: &str, accepturl: &str) -> String {
        let reply: serde_json::Value = self
            .client
            .post(format!("{}/api/v1/payments", self.admin))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({
                "orderid": orderid, "amount": 500, "currency": "EUR",
                "accepturl": accepturl, "cancelurl": "https://shop.example/c",
                "callbackurl": "https://pay.shop.example/paysera/callback",
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let query = payhook::paysera::base64url::decode(reply["data"].as_str().unwrap().as_bytes())
            .unwrap();
        let fields = payhook::paysera::php::parse_str(&query);
        let Some(payhook::paysera::php::Value::Str(accept)) = fields.get(b"accepturl") else {
            panic!("no accepturl")
        };
        let accept = String::from_utf8(accept.clone()).unwrap();
        accept
            .strip_prefix("https://pay.shop.example/paysera/return/")
            .unwrap_or_else(|| panic!("accepturl not rewritten: {accept}"))
            .to_string()
    }

    /// `GET /api/v1{path}` on the admin listener, answered 200, as JSON.
    pub async fn admin_get(&self, path: &str) -> serde_json::Value {
        let response = self
            .client
            .get(format!("{}/api/v1{path}", self.admin))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.unwrap()
    }

    pub async fn order(&self, orderid: &str) -> serde_json::Value {
        let response = self
            .client
            .get(format!("{}/api/v1/orders/{orderid}", self.admin))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "order {orderid}");
        response.json().await.unwrap()
    }

    /// Runs `sql` directly on the app's database, whichever backend it is.
    pub fn query<T>(&self, sql: &str) -> Vec<T>
    where
        T: QueryableByName<diesel::pg::Pg> + QueryableByName<diesel::sqlite::Sqlite> + 'static,
    {
        let query = diesel::sql_query(sql);
        let rows = match self.backend {
            Backend::Postgres => {
                query.load(&mut PgConnection::establish(&self.database_url).unwrap())
            }
            Backend::Sqlite => query.load(&mut sqlite::connect(&self.database_url)),
        };
        rows.unwrap_or_else(|err| panic!("{sql}: {err}"))
    }

    /// Runs statements directly on the app's database (no results).
    pub fn execute(&self, sql: &str) {
        use diesel::connection::SimpleConnection;
        match self.backend {
            Backend::Postgres => PgConnection::establish(&self.database_url)
                .unwrap()
                .batch_execute(sql),
            Backend::Sqlite => sqlite::connect(&self.database_url).batch_execute(sql),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// A store of its own on the app's database, as another instance opens it.
    pub fn store(&self) -> payhook::store::Store {
        let config = match self.backend {
            Backend::Postgres => payhook::store::DatabaseConfig::Postgres {
                url: self.database_url.clone().into(),
            },
            Backend::Sqlite => payhook::store::DatabaseConfig::Sqlite {
                path: self.database_url.trim_start_matches("sqlite:").into(),
            },
        };
        let wait = std::time::Duration::from_secs(10);
        payhook::store::Store::connect(&config, 2, wait, wait).unwrap()
    }

    /// The ids of `table`'s rows, oldest first, read from the app's database.
    /// Not 1..=n: on PostgreSQL a callback tried on the fast path against an
    /// order not as assumed leaves a gap (`payhook_take_guard`).
    pub fn ids(&self, table: &str) -> Vec<i64> {
        self.query::<Count>(&format!("SELECT id AS n FROM {table} ORDER BY id"))
            .into_iter()
            .map(|row| row.n)
            .collect()
    }

    /// Runs a `SELECT count(*) AS n …` directly on the app's database.
    pub fn count(&self, sql: &str) -> i64 {
        self.query::<Count>(sql)[0].n
    }

    pub fn fulfilments(&self, orderid: &str) -> i64 {
        self.count(&format!(
            "SELECT count(*) AS n FROM fulfilments WHERE orderid = '{orderid}'"
        ))
    }

    /// The outcomes stored for an order, oldest first, as the admin API shows them.
    pub async fn outcomes(&self, orderid: &str) -> Vec<String> {
        self.order(orderid).await["callbacks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["outcome"].as_str().unwrap().to_string())
            .collect()
    }
}

/// One test body, run against both backends.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod postgres_backend {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(crate::helpers::Backend::Postgres).await }) *
        }
        mod sqlite_backend {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(crate::helpers::Backend::Sqlite).await }) *
        }
    };
}
pub(crate) use both_backends;
