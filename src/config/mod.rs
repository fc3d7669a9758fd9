//! Typed settings from the environment (and an optional TOML file of projects),
//! validated at start-up with one line naming the bad key. Configuration only
//! reads and validates: the mailer and demo mode's gateway are made at
//! start-up, once (`crate::startup`, `crate::demo::provision`).
//!
//! - `env`: the environment reader (secrets, flags, durations) and `./.env`;
//! - `projects`: the gateway projects, from the environment and `PAYHOOK_CONFIG_FILE`;
//! - `sections`: the typed sections of `Settings` (http, database, gateway,
//!   alerts, logging; the decision's rules are `domain::Rules`).

mod env;
pub mod gateways;
mod notify;
mod projects;
mod sections;

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};

use crate::domain::{OrderCheck, Rules};
use crate::store::{url_secrets, DatabaseConfig};

use env::Env;
pub use env::{load_dotenv, parse_dotenv, parse_duration, read_secret_file, DotenvError};
pub use notify::NotifySettings;
pub use projects::CheckoutProject;
pub use sections::{AlertSettings, DatabaseSettings, GatewaySettings, HttpSettings, LogSettings};

/// One bad key. Displayed on one line (a reason never spans lines), and a
/// reason never quotes a secret's value: only the key, a path or a scheme.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {key}: {}", one_line(reason))]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            key: key.to_string(),
            reason: reason.into(),
        }
    }
}

fn one_line(text: &str) -> String {
    text.split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

fn bad(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::new(key, reason)
}

/// Setting any of these means "this is a real deployment": demo mode then never
/// starts, and a missing project is an error instead of a throw-away key.
pub const DEMO_BLOCKERS: &[&str] = &[
    "PAYSERA_PROJECT_ID",
    "PAYSERA_PROJECT_PASSWORD",
    "PAYSERA_PROJECT_PASSWORD_FILE",
    "PAYHOOK_CONFIG_FILE",
    "PAYSERA_CHECKOUT_CLIENT_ID",
    "PAYSERA_CHECKOUT_SECRET",
    "PAYSERA_CHECKOUT_SECRET_FILE",
    "DATABASE_URL",
    "PAYHOOK_ADMIN_TOKEN",
    "PAYHOOK_ADMIN_TOKEN_FILE",
    "SMTP_URL",
    "SMTP_URL_FILE",
];

#[derive(Clone)]
pub struct Settings {
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub gateway: GatewaySettings,
    pub rules: Rules,
    pub alerts: AlertSettings,
    pub logging: LogSettings,
    /// Shop notifications (`SHOP_NOTIFY_*`).
    pub notify: NotifySettings,
    /// Where the default SQLite database and demo mode's gateway live.
    pub data_dir: PathBuf,
    /// No deployment key is set (`DEMO_BLOCKERS`): start-up makes a throw-away
    /// gateway (`crate::demo::provision`), which fills `gateway.projects`,
    /// `gateway.keys` and `http.admin_token`.
    pub demo: bool,
}

impl Settings {
    /// The one pipeline, as the service, the command line and the console
    /// run it, over `store`.
    pub fn pipeline(
        &self,
        store: crate::store::Store,
    ) -> anyhow::Result<crate::pipeline::Pipeline> {
        let gateway = &self.gateway;
        Ok(crate::pipeline::Pipeline::new(crate::pipeline::Parts {
            verifier: std::sync::Arc::new(gateway.verifier()?),
            checkout: gateway.checkout_verifier()?.map(std::sync::Arc::new),
            checkout_reject_status: gateway.checkout_reject_status,
            store,
            rules: self.rules,
            rejected_max_bytes: self.database.rejected_max_bytes,
            gateways: std::sync::Arc::new(gateway.recipes.clone()),
        }))
    }

    /// Reads the process environment (after `.env`, when present).
    pub fn from_env() -> Result<Settings, ConfigError> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let env = Env(&get);
        let data_dir = PathBuf::from(
            env.get("PAYHOOK_DATA_DIR")
                .unwrap_or("./payhook-data".into()),
        );
        let connection = sections::connection(env.get("DATABASE_URL"), &data_dir)?;
        let keys = sections::public_keys(&env)?;
        let projects::Projects {
            classic: projects,
            checkout,
        } = projects::read(&env)?;
        let demo = demo_mode(&env, !projects.is_empty() || !checkout.is_empty())?;
        let http = HttpSettings::read(&env, demo)?;
        let alerts = AlertSettings::read(&env)?;
        let rules = sections::rules(&env)?;
        let database = DatabaseSettings::read(&env, connection)?;
        let checkout_ids: Vec<&str> = checkout.iter().map(|p| p.client_id.as_str()).collect();
        let recipes = gateways::served(env.get("PAYHOOK_GATEWAYS_FILE"), &checkout_ids)?;
        let gateway = GatewaySettings {
            recipes,
            projects,
            checkout,
            checkout_reject_status: sections::checkout_reject_status(&env)?,
            keys,
            policy: sections::policy(&env)?,
        };
        let logging = LogSettings::read(&env)?;
        let notify = NotifySettings::from_lookup(&get)?;
        Ok(Settings {
            http,
            database,
            gateway,
            rules,
            alerts,
            logging,
            notify,
            data_dir,
            demo,
        })
    }

    /// The effective configuration for the start-up log: no secret in it.
    pub fn summary(&self) -> String {
        let (http, db, gateway, alerts) = (&self.http, &self.database, &self.gateway, &self.alerts);
        let keys: Vec<String> = gateway
            .keys
            .keys()
            .iter()
            .map(|k| format!("rsa-{} sha256:{}", k.bits(), k.fingerprint()))
            .collect();
        let projects: Vec<String> = gateway
            .projects
            .iter()
            .map(|p| p.id.to_string())
            .chain(
                gateway
                    .checkout
                    .iter()
                    .map(|p| format!("checkout:{}(secrets={})", p.client_id, p.secrets.len())),
            )
            .collect();
        // Each gateway's name and profile, and whether it verifies (a
        // `weboplata` gateway without a recipe only captures).
        let gateways: Vec<String> = gateway
            .recipes
            .iter()
            .map(|r| {
                let captures = if r.verifies() { "" } else { ",captures" };
                format!("{}({}{captures})", r.name, r.profile.as_str())
            })
            .collect();
        format!(
            "bind={} admin_bind={} database={:?} pool={} projects=[{}] gateways=[{}] keys=[{}] \
             allow_test_payments={} accept_ss1={} strict_signatures={} accept_legacy={} order_check={} \
             sms_reply={} data_dir={} demo={} public_url={} alerts={} alert_min_interval={}s \
             missed_callback_after={}s missed_callback_window={}s rejected_max_bytes={} \
             rejected_retention={}s request_timeout={}ms max_connections={} \
             max_connections_per_address={} trusted_proxies=[{}] client_ip_header={} \
             max_head_bytes={} connection_max_age={}s connection_max_requests={} \
             ui_secure_cookie={}",
            http.bind,
            http.admin_bind,
            db.connection,
            db.pool_size,
            projects.join(","),
            gateways.join(","),
            keys.join(","),
            self.rules.allow_test_payments,
            gateway.policy.accept_ss1,
            gateway.policy.strict,
            gateway.policy.accept_legacy,
            match self.rules.order_check {
                OrderCheck::Registered => "registered",
                OrderCheck::None => "none",
            },
            http.sms_reply.is_some(),
            self.data_dir.display(),
            self.demo,
            http.public_url.as_deref().unwrap_or("-"),
            match &alerts.email {
                Some(e) => format!("e-mail to {} address(es)", e.to.len()),
                None => "off".to_string(),
            },
            alerts.min_interval.as_secs(),
            alerts.missed_callback_after.as_secs(),
            alerts.missed_callback_window.as_secs(),
            db.rejected_max_bytes,
            db.rejected_retention.as_secs(),
            http.request_timeout.as_millis(),
            http.max_connections,
            http.max_connections_per_address,
            http.trusted_proxies
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(","),
            http.client_ip_header.map_or("-", |h| h.name()),
            http.max_head_bytes,
            http.connection_max_age.as_secs(),
            http.connection_max_requests,
            http.ui_secure_cookie,
        )
    }

    pub fn scrubber(&self) -> Scrubber {
        let mut secrets: Vec<String> = Vec::new();
        secrets.extend(
            self.http
                .admin_token
                .iter()
                .map(|t| t.expose_secret().to_string()),
        );
        secrets.extend(
            self.gateway
                .projects
                .iter()
                .map(|p| p.password.expose_secret().to_string()),
        );
        secrets.extend(
            self.gateway
                .checkout
                .iter()
                .flat_map(|p| &p.secrets)
                .map(|(_, s)| s.expose_secret().to_string()),
        );
        if let DatabaseConfig::Postgres { url } = &self.database.connection {
            secrets.extend(url_secrets(url.expose_secret()));
        }
        if let Some(email) = &self.alerts.email {
            secrets.extend(url_secrets(email.smtp_url.expose_secret()));
        }
        secrets.retain(|s| !s.is_empty());
        // The longest first, so a secret that contains another goes whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Scrubber(secrets.into_iter().map(SecretString::from).collect())
    }
}

/// Demo mode only when nothing says "real deployment"; a deployment without a
/// project is a half configuration and stops start-up.
fn demo_mode(env: &Env<'_>, any_project: bool) -> Result<bool, ConfigError> {
    if any_project {
        return Ok(false);
    }
    let Some(set) = DEMO_BLOCKERS.iter().find(|k| env.is_set(k)) else {
        return Ok(true);
    };
    if env.get(set).is_none() {
        return Err(bad(
            set,
            "is set but empty (remove it to run the demo, or give it a value)",
        ));
    }
    Err(bad(
        "PAYSERA_PROJECT_ID",
        format!(
            "no project configured, but {set} is set: give PAYSERA_PROJECT_ID and \
             PAYSERA_PROJECT_PASSWORD (or projects in PAYHOOK_CONFIG_FILE); demo mode \
             runs only when none of PAYSERA_PROJECT_ID, PAYSERA_PROJECT_PASSWORD, \
             PAYHOOK_CONFIG_FILE, DATABASE_URL, PAYHOOK_ADMIN_TOKEN, SMTP_URL is set"
        ),
    ))
}

/// Removes every configured secret from a message written by a library (libpq
/// quotes parts of a malformed connection string back, for instance).
#[derive(Clone, Default)]
pub struct Scrubber(Vec<SecretString>);

impl Scrubber {
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.0 {
            out = out.replace(secret.expose_secret(), "***");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::time::Duration;

    use crate::http::auth::ClientIpHeader;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    const BASE: &[(&str, &str)] = &[
        ("PAYSERA_PROJECT_ID", "123"),
        ("PAYSERA_PROJECT_PASSWORD", "secret-password"),
        ("PAYHOOK_ADMIN_TOKEN", "0123456789abcdef"),
    ];

    #[test]
    fn a_checkout_project_alone_is_a_configuration() {
        let only_checkout = [
            ("PAYSERA_CHECKOUT_CLIENT_ID", "client-1"),
            ("PAYSERA_CHECKOUT_SECRET", "s3cr3t-current"),
            ("PAYSERA_CHECKOUT_SECRET_PREVIOUS", "s3cr3t-previous"),
            ("PAYHOOK_ADMIN_TOKEN", "0123456789abcdef"),
        ];
        let s = settings(&only_checkout).unwrap();
        assert!(!s.demo && s.gateway.projects.is_empty());
        assert_eq!(s.gateway.checkout.len(), 1);
        assert_eq!(s.gateway.checkout_reject_status, 403);
        // The classic endpoint stays up and refuses what it cannot verify.
        let classic = s.gateway.verifier().unwrap();
        let params = crate::paysera::RequestParams::parse(b"data=QUJD&ss2=AAAA", b"");
        assert_eq!(
            classic.verify(&params).unwrap_err(),
            crate::paysera::CallbackError::NoClassicProject
        );
        let verifier = s.gateway.checkout_verifier().unwrap().unwrap();
        let labels: Vec<(&str, Option<&str>)> = verifier
            .secrets()
            .iter()
            .map(|k| (k.label(), k.project()))
            .collect();
        assert_eq!(
            labels,
            [
                ("current", Some("client-1")),
                ("previous", Some("client-1"))
            ]
        );
        let summary = s.summary();
        assert!(
            summary.contains("checkout:client-1(secrets=2)"),
            "{summary}"
        );
        assert!(!summary.contains("s3cr3t"), "{summary}");
        assert_eq!(s.scrubber().scrub("a s3cr3t-previous b"), "a *** b");

        // A secret without its client id, and a bad reject status, are named.
        let err = settings(&[("PAYSERA_CHECKOUT_SECRET", "x")]).err().unwrap();
        assert_eq!(err.key, "PAYSERA_CHECKOUT_CLIENT_ID");
        let mut bad_status = only_checkout.to_vec();
        bad_status.push(("PAYHOOK_CHECKOUT_REJECT_STATUS", "200"));
        let err = settings(&bad_status).err().unwrap();
        assert_eq!(err.key, "PAYHOOK_CHECKOUT_REJECT_STATUS");
    }

    #[test]
    fn checkout_projects_in_the_projects_file() {
        let dir = tempfile::tempdir().unwrap();
        let secret_file = dir.path().join("old-secret");
        std::fs::write(&secret_file, "file-secret\n").unwrap();
        let file = dir.path().join("projects.toml");
        std::fs::write(
            &file,
            format!(
                "[[projects]]\nid = 7\npassword = \"pw\"\n\n[[projects]]\napi = \"checkout\"\n\
                 client_id = \"shop-a\"\nsecrets = [\"new-secret\"]\nsecret_files = [{:?}]\n",
                secret_file.display().to_string()
            ),
        )
        .unwrap();
        let path = file.display().to_string();
        let s = settings(&[
            ("PAYHOOK_CONFIG_FILE", &path),
            ("PAYHOOK_ADMIN_TOKEN", "0123456789abcdef"),
        ])
        .unwrap();
        assert_eq!(s.gateway.projects.len(), 1);
        let shop = &s.gateway.checkout[0];
        assert_eq!((shop.client_id.as_str(), shop.secrets.len()), ("shop-a", 2));
        assert_eq!(shop.secrets[1].1.expose_secret(), "file-secret");

        std::fs::write(
            &file,
            "[[projects]]\napi = \"checkout\"\nclient_id = \"shop-a\"\npassword = \"pw\"\n\
             secrets = [\"s\"]\n",
        )
        .unwrap();
        let err = settings(&[("PAYHOOK_CONFIG_FILE", &path)]).err().unwrap();
        assert!(err.reason.contains("belong to classic projects"), "{err:?}");
    }

    #[test]
    fn a_bad_key_is_named() {
        let cases: &[(&str, &str, &str)] = &[
            ("PAYHOOK_ORDER_CHECK", "maybe", "PAYHOOK_ORDER_CHECK"),
            (
                "PAYHOOK_ALLOW_TEST_PAYMENTS",
                "perhaps",
                "PAYHOOK_ALLOW_TEST_PAYMENTS",
            ),
            ("PAYHOOK_BIND", "localhost", "PAYHOOK_BIND"),
            ("PAYHOOK_ADMIN_TOKEN", "short", "PAYHOOK_ADMIN_TOKEN"),
            ("DATABASE_URL", "mysql://u:hunter2@h/db", "DATABASE_URL"),
            (
                "PAYSERA_PUBLIC_KEY_FILE",
                "/nonexistent.pem",
                "PAYSERA_PUBLIC_KEY_FILE",
            ),
            (
                "PAYHOOK_DB_ACQUIRE_TIMEOUT",
                "2 seconds",
                "PAYHOOK_DB_ACQUIRE_TIMEOUT",
            ),
            ("MISSED_CALLBACK_WINDOW", "3 days", "MISSED_CALLBACK_WINDOW"),
            // Not longer than MISSED_CALLBACK_AFTER (15m): nothing could be counted.
            ("MISSED_CALLBACK_WINDOW", "10m", "MISSED_CALLBACK_WINDOW"),
            (
                "PAYHOOK_REJECTED_MAX_BYTES",
                "2k",
                "PAYHOOK_REJECTED_MAX_BYTES",
            ),
            (
                "PAYHOOK_REJECTED_MAX_BYTES",
                "0",
                "PAYHOOK_REJECTED_MAX_BYTES",
            ),
            (
                "PAYHOOK_REJECTED_RETENTION",
                "30",
                "PAYHOOK_REJECTED_RETENTION",
            ),
            (
                "PAYHOOK_REJECTED_RETENTION",
                "0s",
                "PAYHOOK_REJECTED_RETENTION",
            ),
        ];
        for (key, value, named) in cases {
            let mut pairs = BASE.to_vec();
            pairs.retain(|(k, _)| k != key);
            pairs.push((key, value));
            let err = settings(&pairs)
                .err()
                .unwrap_or_else(|| panic!("{key}={value} accepted"));
            assert_eq!(err.key, *named);
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        let err = settings(&[("PAYSERA_PROJECT_ID", "123")]).err().unwrap();
        assert_eq!(err.key, "PAYSERA_PROJECT_PASSWORD");
    }

    #[test]
    fn defaults_and_summary_hold_no_secret() {
        let s = settings(BASE).unwrap();
        assert_eq!(s.http.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.http.admin_bind.to_string(), "127.0.0.1:8081");
        assert!(matches!(
            s.database.connection,
            DatabaseConfig::Sqlite { .. }
        ));
        assert_eq!(s.rules.order_check, OrderCheck::Registered);
        assert!(!s.rules.allow_test_payments && !s.gateway.policy.accept_ss1);
        assert_eq!(s.database.acquire_timeout, Duration::from_secs(2));
        assert_eq!(
            s.alerts.missed_callback_window,
            Duration::from_secs(3 * 86400)
        );
        assert_eq!(s.database.rejected_max_bytes, 2048);
        assert_eq!(
            s.database.rejected_retention,
            Duration::from_secs(30 * 86400)
        );
        let mut pairs = BASE.to_vec();
        pairs.push(("DATABASE_URL", "postgres://payhook:hunter2@db/payhook"));
        let s = settings(&pairs).unwrap();
        let summary = s.summary();
        for secret in ["hunter2", "secret-password", "0123456789abcdef"] {
            assert!(!summary.contains(secret), "{summary}");
        }
        assert!(summary.contains("payhook:***@db/payhook"), "{summary}");
    }

    #[test]
    fn demo_mode_only_when_no_deployment_key_is_set() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().display().to_string();
        let s = settings(&[("PAYHOOK_DATA_DIR", &data_dir)]).unwrap();
        assert!(s.demo);
        // Parsing writes nothing: the demo gateway is made at start-up
        // (`demo::tests::start_up_makes_the_demo_gateway`).
        assert!(!dir.path().join("demo").exists(), "made while parsing");
        assert!(s.gateway.projects.is_empty() && s.http.admin_token.is_none());

        let secret_file = dir.path().join("secret");
        std::fs::write(&secret_file, "file-secret-value\n").unwrap();
        let empty_projects = dir.path().join("projects.toml");
        std::fs::write(&empty_projects, "projects = []\n").unwrap();
        let secret_path = secret_file.display().to_string();
        let projects_path = empty_projects.display().to_string();
        // (key, value, the key the error names, words the reason must hold)
        let cases: &[(&str, &str, &str, &str)] = &[
            (
                "PAYSERA_PROJECT_ID",
                "123",
                "PAYSERA_PROJECT_PASSWORD",
                "required",
            ),
            (
                "PAYSERA_PROJECT_PASSWORD",
                "hunter2-pw",
                "PAYSERA_PROJECT_ID",
                "required",
            ),
            (
                "PAYSERA_PROJECT_PASSWORD_FILE",
                &secret_path,
                "PAYSERA_PROJECT_ID",
                "required",
            ),
            (
                "PAYHOOK_CONFIG_FILE",
                &projects_path,
                "PAYHOOK_CONFIG_FILE",
                "lists no project",
            ),
            (
                "DATABASE_URL",
                "sqlite:/tmp/x.sqlite3",
                "PAYSERA_PROJECT_ID",
                "DATABASE_URL is set",
            ),
            (
                "DATABASE_URL",
                "postgres://u:hunter2@h/db",
                "PAYSERA_PROJECT_ID",
                "DATABASE_URL is set",
            ),
            (
                "PAYHOOK_ADMIN_TOKEN",
                "hunter2-0123456789",
                "PAYSERA_PROJECT_ID",
                "PAYHOOK_ADMIN_TOKEN is set",
            ),
            (
                "PAYHOOK_ADMIN_TOKEN_FILE",
                &secret_path,
                "PAYSERA_PROJECT_ID",
                "PAYHOOK_ADMIN_TOKEN_FILE is set",
            ),
            (
                "SMTP_URL",
                "smtp://u:hunter2@h:25",
                "PAYSERA_PROJECT_ID",
                "SMTP_URL is set",
            ),
            (
                "SMTP_URL_FILE",
                &secret_path,
                "PAYSERA_PROJECT_ID",
                "SMTP_URL_FILE is set",
            ),
            ("DATABASE_URL", "", "DATABASE_URL", "set but empty"),
            (
                "PAYSERA_PROJECT_ID",
                " ",
                "PAYSERA_PROJECT_ID",
                "set but empty",
            ),
        ];
        for (key, value, named, words) in cases {
            let err = settings(&[("PAYHOOK_DATA_DIR", &data_dir), (key, value)])
                .err()
                .unwrap_or_else(|| panic!("{key}={value:?} started demo mode"));
            let shown = err.to_string();
            assert_eq!(err.key, *named, "{key}: {shown}");
            assert!(shown.contains(words), "{key}: {shown}");
            assert_eq!(shown.lines().count(), 1, "{shown}");
            for secret in ["hunter2", "file-secret-value"] {
                assert!(!shown.contains(secret), "{shown}");
            }
        }
    }

    #[test]
    fn configuration_errors_never_quote_a_secret() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path.display().to_string()
        };
        let wrong_type = file("a.toml", "[[projects]]\nid = 1\npassword = 987654321987\n");
        let id_typo = file(
            "b.toml",
            "[[projects]]\nid = \"s3cr3t-pw\"\npassword = \"x\"\n",
        );
        let key_typo = file("c.toml", "[[projects]]\nid = 1\npasword = \"s3cr3t-pw\"\n");
        let unterminated = file("d.toml", "[[projects]]\nid = 1\npassword = \"s3cr3t-pw\n");
        let bad_value = file(
            "e.toml",
            "[[projects]]\nid = -5\npassword = \"s3cr3t-pw\"\n",
        );
        let cases: &[&[(&str, &str)]] = &[
            &[("DATABASE_URL", "mysql://u:s3cr3t-pw@h/db")],
            &[("DATABASE_URL", "s3cr3t-pw")],
            &[("DATABASE_URL", "s3cr3t-pw://x")],
            &[("PAYSERA_PROJECT_ID", "s3cr3t-pw")],
            &[("PAYHOOK_ADMIN_TOKEN", "s3cr3t-pw")],
            &[("PAYHOOK_ADMIN_TOKEN", "s3cr3t-pw with spaces")],
            &[("PAYHOOK_ADMIN_TOKEN", "s3cr3t-pw-\u{e9}-0123456789")],
            &[("PAYHOOK_CONFIG_FILE", &wrong_type)],
            &[("PAYHOOK_CONFIG_FILE", &id_typo)],
            &[("PAYHOOK_CONFIG_FILE", &key_typo)],
            &[("PAYHOOK_CONFIG_FILE", &unterminated)],
            &[("PAYHOOK_CONFIG_FILE", &bad_value)],
            &[
                ("SMTP_URL", "nonsense://u:s3cr3t-pw@h"),
                ("ALERT_EMAIL_FROM", "a@example.com"),
                ("ALERT_EMAIL_TO", "b@example.com"),
            ],
        ];
        for overrides in cases {
            let mut pairs = BASE.to_vec();
            for (k, v) in *overrides {
                pairs.retain(|(key, _)| key != k);
                pairs.push((k, v));
            }
            if overrides[0].0 == "PAYHOOK_CONFIG_FILE" {
                pairs.retain(|(k, _)| !k.starts_with("PAYSERA_PROJECT"));
            }
            let err = settings(&pairs)
                .err()
                .unwrap_or_else(|| panic!("{overrides:?} accepted"));
            let shown = err.to_string();
            assert_eq!(err.key, overrides[0].0, "{shown}");
            assert!(
                !shown.contains("s3cr3t") && !shown.contains("987654321987"),
                "{shown}"
            );
            assert_eq!(shown.lines().count(), 1, "{shown}");
        }
        // The line is still named, so the file can be fixed.
        let err = settings(&[
            ("PAYHOOK_CONFIG_FILE", wrong_type.as_str()),
            ("PAYHOOK_ADMIN_TOKEN", "0123456789abcdef"),
        ])
        .err()
        .unwrap();
        assert!(err.to_string().contains("line 3"), "{err}");
    }

    #[test]
    fn admin_token_rules() {
        for (token, ok) in [
            ("0123456789abcdef", true),
            ("0123456789abcde", false),
            ("0123456789 abcdef", false),
            ("0123456789abcdef\t", false),
            (" 0123456789abcdef", false),
            ("0123456789abcdef\n", false),
            ("0123456789abcdef\u{a0}", false),
            ("\u{e9}0123456789abcdef", false),
        ] {
            let mut pairs = BASE.to_vec();
            pairs.retain(|(k, _)| *k != "PAYHOOK_ADMIN_TOKEN");
            pairs.push(("PAYHOOK_ADMIN_TOKEN", token));
            match settings(&pairs) {
                Ok(_) => assert!(ok, "{token:?} accepted"),
                Err(e) => {
                    assert!(!ok, "{token:?} refused: {e}");
                    assert_eq!(e.key, "PAYHOOK_ADMIN_TOKEN");
                    assert!(!e.to_string().contains("0123456789"), "{e}");
                }
            }
        }
    }

    #[test]
    fn request_timeout_and_connection_cap() {
        let s = settings(BASE).unwrap();
        assert_eq!(s.http.request_timeout, Duration::from_secs(10));
        assert_eq!(s.http.max_connections, 1024);
        let mut pairs = BASE.to_vec();
        pairs.push(("PAYHOOK_REQUEST_TIMEOUT", "1500ms"));
        pairs.push(("PAYHOOK_MAX_CONNECTIONS", "64"));
        let s = settings(&pairs).unwrap();
        assert_eq!(s.http.request_timeout, Duration::from_millis(1500));
        assert_eq!(s.http.max_connections, 64);
        for (key, value) in [
            ("PAYHOOK_REQUEST_TIMEOUT", "0s"),
            ("PAYHOOK_REQUEST_TIMEOUT", "10"),
            ("PAYHOOK_MAX_CONNECTIONS", "1"),
            ("PAYHOOK_MAX_CONNECTIONS", "0"),
            ("PAYHOOK_MAX_CONNECTIONS", "many"),
        ] {
            let mut pairs = BASE.to_vec();
            pairs.push((key, value));
            assert_eq!(settings(&pairs).err().map(|e| e.key).as_deref(), Some(key));
        }
    }

    #[test]
    fn per_client_bounds() {
        let s = settings(BASE).unwrap();
        assert_eq!(s.http.max_connections_per_address, 64);
        assert!(s.http.trusted_proxies.is_empty());
        assert_eq!(s.http.max_head_bytes, 72 * 1024);
        assert_eq!(s.http.connection_max_age, Duration::from_secs(60));
        assert_eq!(s.http.connection_max_requests, 1000);
        let mut pairs = BASE.to_vec();
        pairs.push(("PAYHOOK_MAX_CONNECTIONS_PER_ADDRESS", "8"));
        pairs.push(("PAYHOOK_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1"));
        pairs.push(("PAYHOOK_MAX_HEAD_BYTES", "8192"));
        pairs.push(("PAYHOOK_CONNECTION_MAX_AGE", "5m"));
        pairs.push(("PAYHOOK_CONNECTION_MAX_REQUESTS", "10"));
        let s = settings(&pairs).unwrap();
        assert_eq!(s.http.max_connections_per_address, 8);
        assert_eq!(s.http.trusted_proxies.len(), 2);
        assert_eq!(s.http.max_head_bytes, 8192);
        assert_eq!(s.http.connection_max_age, Duration::from_secs(300));
        assert_eq!(s.http.connection_max_requests, 10);
        assert!(
            s.summary()
                .contains("trusted_proxies=[10.0.0.0/8,192.0.2.1/32]"),
            "{}",
            s.summary()
        );
        for (key, value) in [
            ("PAYHOOK_MAX_CONNECTIONS_PER_ADDRESS", "0"),
            ("PAYHOOK_TRUSTED_PROXIES", "10.0.0.0/40"),
            ("PAYHOOK_TRUSTED_PROXIES", "proxy.internal"),
            ("PAYHOOK_MAX_HEAD_BYTES", "512"),
            ("PAYHOOK_MAX_HEAD_BYTES", "1000000"),
            ("PAYHOOK_CONNECTION_MAX_AGE", "0s"),
            ("PAYHOOK_CONNECTION_MAX_REQUESTS", "0"),
        ] {
            let mut pairs = BASE.to_vec();
            pairs.push((key, value));
            assert_eq!(settings(&pairs).err().map(|e| e.key).as_deref(), Some(key));
        }
    }

    #[test]
    fn the_client_ip_header_is_read_behind_trusted_proxies_only() {
        let s = settings(BASE).unwrap();
        assert_eq!(s.http.client_ip_header, None);
        assert!(
            s.summary().contains("client_ip_header=-"),
            "{}",
            s.summary()
        );
        for (value, header) in [
            ("X-Forwarded-For", ClientIpHeader::ForwardedFor),
            ("x-real-ip", ClientIpHeader::RealIp),
        ] {
            let mut pairs = BASE.to_vec();
            pairs.push(("PAYHOOK_TRUSTED_PROXIES", "10.0.0.0/8"));
            pairs.push(("PAYHOOK_CLIENT_IP_HEADER", value));
            let s = settings(&pairs).unwrap();
            assert_eq!(s.http.client_ip_header, Some(header));
            let summary = s.summary();
            assert!(
                summary.contains(&format!("client_ip_header={}", header.name())),
                "{summary}"
            );
        }
        let mut pairs = BASE.to_vec();
        pairs.push(("PAYHOOK_TRUSTED_PROXIES", "10.0.0.0/8"));
        pairs.push(("PAYHOOK_CLIENT_IP_HEADER", "Forwarded"));
        let e = settings(&pairs).err().unwrap();
        assert_eq!(e.key, "PAYHOOK_CLIENT_IP_HEADER");
        // Without a trusted proxy, nobody may name a client.
        let mut pairs = BASE.to_vec();
        pairs.push(("PAYHOOK_CLIENT_IP_HEADER", "X-Forwarded-For"));
        let e = settings(&pairs).err().unwrap();
        assert_eq!(e.key, "PAYHOOK_CLIENT_IP_HEADER");
        assert!(e.to_string().contains("PAYHOOK_TRUSTED_PROXIES"), "{e}");
    }

    #[test]
    fn the_cookie_is_secure_when_the_console_is_reached_over_https() {
        let secure = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = BASE.to_vec();
            pairs.extend_from_slice(extra);
            settings(&pairs).unwrap().http.ui_secure_cookie
        };
        assert!(!secure(&[]));
        assert!(secure(&[(
            "PAYHOOK_ADMIN_URL",
            "https://admin.shop.example"
        )]));
        assert!(secure(&[(
            "PAYHOOK_PUBLIC_URL",
            "https://pay.shop.example"
        )]));
        // The admin URL is where the console is: it decides over the public one.
        assert!(!secure(&[
            ("PAYHOOK_ADMIN_URL", "http://10.0.0.5:8081"),
            ("PAYHOOK_PUBLIC_URL", "https://pay.shop.example"),
        ]));
        assert!(secure(&[
            ("PAYHOOK_ADMIN_URL", "https://admin.shop.example"),
            ("PAYHOOK_PUBLIC_URL", "http://pay.shop.example"),
        ]));
        // The setting forces it either way.
        assert!(!secure(&[
            ("PAYHOOK_ADMIN_URL", "https://admin.shop.example"),
            ("PAYHOOK_UI_SECURE_COOKIE", "false"),
        ]));
        assert!(secure(&[
            ("PAYHOOK_ADMIN_URL", "http://10.0.0.5:8081"),
            ("PAYHOOK_UI_SECURE_COOKIE", "true"),
        ]));
    }

    #[test]
    fn key_value_connection_strings_are_postgres() {
        let mut pairs = BASE.to_vec();
        pairs.push(("DATABASE_URL", "host=db password='pw x' dbname=payhook"));
        let s = settings(&pairs).unwrap();
        assert!(matches!(
            s.database.connection,
            DatabaseConfig::Postgres { .. }
        ));
        let summary = s.summary();
        assert!(
            summary.contains("host=db password=*** dbname=payhook"),
            "{summary}"
        );
    }

    #[test]
    fn scrubber_removes_every_configured_secret() {
        let mut pairs = BASE.to_vec();
        pairs.push(("DATABASE_URL", "postgres://u:p%zzhunter@h/db"));
        let s = settings(&pairs).unwrap();
        let libpq = "invalid percent-encoded token: \"p%zzhunter\"";
        let scrubbed = s.scrubber().scrub(libpq);
        assert_eq!(scrubbed, "invalid percent-encoded token: \"***\"");
        let scrubbed = s
            .scrubber()
            .scrub("token 0123456789abcdef pw secret-password");
        assert_eq!(scrubbed, "token *** pw ***");
    }

    #[test]
    fn the_shipped_env_example_parses() {
        let example = include_str!("../../.env.example");
        let vars = parse_dotenv(example.as_bytes()).unwrap();
        assert!(vars.iter().any(|(k, _)| k == "PAYHOOK_REQUEST_TIMEOUT"));
        assert!(vars.iter().any(|(k, _)| k == "PAYHOOK_MAX_CONNECTIONS"));
        // Every commented-out example too, once uncommented.
        let uncommented: String = example
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest)
                    if rest.split('=').next().is_some_and(|k| {
                        !k.is_empty() && k.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
                    }) =>
                {
                    format!("{rest}\n")
                }
                _ => format!("{l}\n"),
            })
            .collect();
        parse_dotenv(uncommented.as_bytes()).unwrap();
    }

    #[test]
    fn dotenv_errors_name_the_line_and_hide_it() {
        let ok =
            parse_dotenv(b"# comment\nA=1\nexport B='two words'\n\nC=\"multi\nline\"\n").unwrap();
        assert_eq!(
            ok,
            vec![
                ("A".to_string(), "1".to_string()),
                ("B".to_string(), "two words".to_string()),
                ("C".to_string(), "multi\nline".to_string()),
            ]
        );
        assert!(
            parse_dotenv(b"\xEF\xBB\xBFA=1\n").is_ok(),
            "a BOM is allowed"
        );
        for (text, line) in [
            (&b"A=1\nB=2\nPAYSERA_PROJECT_PASSWORD s3cr3t\n"[..], 3),
            (b"A=1\n\n# x\nB=\"s3cr3t\nC=3\n", 4),
            (b"A=1\nA 1\nA=1\nA 1\n", 2),
            (b"A=\"x\ny\"\nB=\"x\"s3cr3t'\n", 3),
            (b"A=1\r\nB-C=s3cr3t\r\n", 2),
            (b"A='x s3cr3t'\n# c\n\nB=x s3cr3t\n", 4),
            (b"A=1\nB=\"x\ny\"\n  \nC=\\q s3cr3t\n", 5),
            (b"A=1\nB=payhook <s3cr3t@x>\n", 2),
            (b"DATABASE_URL=host=h password=s3cr3t\n", 1),
        ] {
            let err = parse_dotenv(text).unwrap_err();
            let shown = err.to_string();
            assert!(
                shown.starts_with(&format!(".env line {line}:")),
                "{:?}: {shown}",
                String::from_utf8_lossy(text)
            );
            assert!(!shown.contains("s3cr3t"), "{shown}");
            assert_eq!(shown.lines().count(), 1);
        }
        let err = parse_dotenv(b"A=1\nB=\xff\n").unwrap_err();
        assert_eq!(err.to_string(), ".env line 2: not valid UTF-8");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("3d"), Some(Duration::from_secs(3 * 86400)));
        for bad in ["", "10", "m", "1.5m", "-1s", "10 m"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }
}
