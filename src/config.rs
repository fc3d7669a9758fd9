//! Typed settings from the environment (and an optional TOML file of projects),
//! validated at start-up with one line naming the bad key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use lettre::message::Mailbox;

use crate::alerts::{EmailSettings, Mailer};
use crate::domain::{OrderCheck, Rules};
use crate::keyfile::load_public_keys;
use crate::paysera::{KeySet, Policy, Project};
use crate::store::{redact_url, DatabaseConfig};

#[derive(Debug, thiserror::Error)]
#[error("configuration: {key}: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

fn bad(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        reason: reason.into(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug)]
pub struct ProjectSettings {
    pub id: u64,
    pub password: SecretString,
}

#[derive(Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    pub admin_bind: SocketAddr,
    pub admin_token: SecretString,
    pub database: DatabaseConfig,
    pub db_pool_size: u32,
    pub db_acquire_timeout: Duration,
    /// Bounds every other wait on the database: statement, lock, socket.
    pub db_statement_timeout: Duration,
    pub projects: Vec<ProjectSettings>,
    pub keys: KeySet,
    pub policy: Policy,
    pub rules: Rules,
    pub sms_reply: Option<String>,
    pub data_dir: PathBuf,
    pub demo: bool,
    pub log_format: LogFormat,
    pub log_pii: bool,
    pub public_url: Option<String>,
    pub shutdown_timeout: Duration,
    /// `None`: no `SMTP_URL`, alerts are off.
    pub email: Option<EmailSettings>,
    pub alert_min_interval: Duration,
    pub missed_callback_after: Duration,
    /// Buyers who came back longer ago than this are no longer counted missing.
    pub missed_callback_window: Duration,
    /// Bytes of a rejected request's raw request that are stored.
    pub rejected_max_bytes: usize,
    /// Rejected requests older than this are deleted.
    pub rejected_retention: Duration,
}

impl Settings {
    pub fn verifier_projects(&self) -> Vec<Project> {
        self.projects
            .iter()
            .map(|p| Project::new(p.id, Some(p.password.clone())))
            .collect()
    }

    /// The effective configuration for the start-up log: no secret in it.
    pub fn summary(&self) -> String {
        let keys: Vec<String> = self
            .keys
            .keys()
            .iter()
            .map(|k| format!("rsa-{} sha256:{}", k.bits(), k.fingerprint()))
            .collect();
        let projects: Vec<String> = self.projects.iter().map(|p| p.id.to_string()).collect();
        format!(
            "bind={} admin_bind={} database={:?} pool={} projects=[{}] keys=[{}] \
             allow_test_payments={} accept_ss1={} strict_signatures={} accept_legacy={} order_check={} \
             sms_reply={} data_dir={} demo={} public_url={} alerts={} alert_min_interval={}s \
             missed_callback_after={}s missed_callback_window={}s rejected_max_bytes={} \
             rejected_retention={}s",
            self.bind,
            self.admin_bind,
            self.database,
            self.db_pool_size,
            projects.join(","),
            keys.join(","),
            self.rules.allow_test_payments,
            self.policy.accept_ss1,
            self.policy.strict,
            self.policy.accept_legacy,
            match self.rules.order_check {
                OrderCheck::Registered => "registered",
                OrderCheck::None => "none",
            },
            self.sms_reply.is_some(),
            self.data_dir.display(),
            self.demo,
            self.public_url.as_deref().unwrap_or("-"),
            match &self.email {
                Some(e) => format!("e-mail to {} address(es)", e.to.len()),
                None => "off".to_string(),
            },
            self.alert_min_interval.as_secs(),
            self.missed_callback_after.as_secs(),
            self.missed_callback_window.as_secs(),
            self.rejected_max_bytes,
            self.rejected_retention.as_secs(),
        )
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
        let database = parse_database(env.get("DATABASE_URL"), &data_dir)?;
        let is_pg = matches!(database, DatabaseConfig::Postgres { .. });

        let mut keys = match env.get("PAYSERA_PUBLIC_KEY_FILE") {
            Some(list) => {
                let files: Vec<&str> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect();
                load_public_keys(&files)
                    .map_err(|e| bad("PAYSERA_PUBLIC_KEY_FILE", e.to_string()))?
            }
            None => KeySet::paysera_production(),
        };

        let mut projects = projects_from(&env)?;
        let demo = projects.is_empty();
        let bind = env.socket("PAYHOOK_BIND", "127.0.0.1:8080")?;
        let admin_bind = env.socket("PAYHOOK_ADMIN_BIND", "127.0.0.1:8081")?;
        let mut admin_token = env.secret("PAYHOOK_ADMIN_TOKEN")?;

        if demo {
            for (key, addr) in [("PAYHOOK_BIND", bind), ("PAYHOOK_ADMIN_BIND", admin_bind)] {
                if !addr.ip().is_loopback() {
                    return Err(bad(
                        key,
                        "demo mode (no PAYSERA_PROJECT_ID) listens on loopback only",
                    ));
                }
            }
            let material = crate::demo::prepare(&data_dir)
                .map_err(|e| bad("PAYHOOK_DATA_DIR", format!("demo set-up failed: {e}")))?;
            keys = KeySet::from_pem(&material.gateway_public_pem)
                .map_err(|e| bad("PAYHOOK_DATA_DIR", format!("demo key: {e}")))?;
            projects.push(ProjectSettings {
                id: material.project_id,
                password: material.password,
            });
            admin_token = admin_token.or(Some(material.admin_token));
        }
        let admin_token = admin_token
            .ok_or_else(|| bad("PAYHOOK_ADMIN_TOKEN", "required (at least 16 characters)"))?;
        if admin_token.expose_secret().chars().count() < 16 {
            return Err(bad("PAYHOOK_ADMIN_TOKEN", "must be at least 16 characters"));
        }

        let missed_callback_after = env.duration("MISSED_CALLBACK_AFTER", "15m")?;
        let missed_callback_window = env.duration("MISSED_CALLBACK_WINDOW", "3d")?;
        if missed_callback_window <= missed_callback_after {
            return Err(bad(
                "MISSED_CALLBACK_WINDOW",
                "must be longer than MISSED_CALLBACK_AFTER",
            ));
        }

        let order_check = match env.get("PAYHOOK_ORDER_CHECK").as_deref() {
            None | Some("registered") => OrderCheck::Registered,
            Some("none") => OrderCheck::None,
            Some(other) => {
                return Err(bad(
                    "PAYHOOK_ORDER_CHECK",
                    format!("{other:?} is neither registered nor none"),
                ))
            }
        };
        Ok(Settings {
            bind,
            admin_bind,
            admin_token,
            database,
            // SQLite has one writer at a time anyway; one connection queues writers in
            // arrival order instead of SQLite's busy-handler back-off (second-long stalls).
            db_pool_size: env.number("PAYHOOK_DB_POOL_SIZE", if is_pg { 16 } else { 1 })?,
            db_acquire_timeout: env.duration("PAYHOOK_DB_ACQUIRE_TIMEOUT", "2s")?,
            db_statement_timeout: match env.duration("PAYHOOK_DB_STATEMENT_TIMEOUT", "5s")? {
                d if d < Duration::from_millis(100) => {
                    return Err(bad(
                        "PAYHOOK_DB_STATEMENT_TIMEOUT",
                        "must be at least 100ms",
                    ))
                }
                d => d,
            },
            projects,
            keys,
            policy: Policy {
                accept_ss1: env.flag("PAYHOOK_ACCEPT_SS1")?,
                strict: env.flag("PAYHOOK_STRICT_SIGNATURES")?,
                accept_legacy: env.flag("PAYHOOK_ACCEPT_LEGACY")?,
            },
            rules: Rules {
                allow_test_payments: env.flag("PAYHOOK_ALLOW_TEST_PAYMENTS")?,
                order_check,
            },
            sms_reply: env.get("PAYHOOK_SMS_REPLY").filter(|s| !s.is_empty()),
            data_dir,
            demo,
            log_format: match env.get("PAYHOOK_LOG_FORMAT").as_deref() {
                None | Some("text") => LogFormat::Text,
                Some("json") => LogFormat::Json,
                Some(other) => {
                    return Err(bad(
                        "PAYHOOK_LOG_FORMAT",
                        format!("{other:?} is neither text nor json"),
                    ))
                }
            },
            log_pii: env.flag("PAYHOOK_LOG_PII")?,
            public_url: env
                .get("PAYHOOK_PUBLIC_URL")
                .map(|u| u.trim_end_matches('/').to_string()),
            shutdown_timeout: env.duration("PAYHOOK_SHUTDOWN_TIMEOUT", "25s")?,
            email: email_settings(&env)?,
            alert_min_interval: env.duration("ALERT_MIN_INTERVAL", "10m")?,
            missed_callback_after,
            missed_callback_window,
            rejected_max_bytes: env.number("PAYHOOK_REJECTED_MAX_BYTES", 2048)? as usize,
            rejected_retention: env.duration("PAYHOOK_REJECTED_RETENTION", "30d").and_then(
                |d| {
                    (!d.is_zero())
                        .then_some(d)
                        .ok_or_else(|| bad("PAYHOOK_REJECTED_RETENTION", "must be longer than 0s"))
                },
            )?,
        })
    }
}

struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn get(&self, key: &str) -> Option<String> {
        (self.0)(key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    /// `KEY`, or the contents of the file named by `KEY_FILE` (for container secrets).
    fn secret(&self, key: &str) -> Result<Option<SecretString>, ConfigError> {
        if let Some(v) = (self.0)(key).filter(|v| !v.is_empty()) {
            return Ok(Some(SecretString::from(v)));
        }
        let file_key = format!("{key}_FILE");
        match self.get(&file_key) {
            None => Ok(None),
            Some(path) => std::fs::read_to_string(&path)
                .map(|s| {
                    Some(SecretString::from(
                        s.trim_end_matches(['\r', '\n']).to_string(),
                    ))
                })
                .map_err(|e| bad(&file_key, format!("cannot read {path}: {e}"))),
        }
    }

    fn flag(&self, key: &str) -> Result<bool, ConfigError> {
        match self.get(key).map(|v| v.to_ascii_lowercase()).as_deref() {
            None | Some("false" | "0" | "no" | "off") => Ok(false),
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some(other) => Err(bad(key, format!("{other:?} is not true or false"))),
        }
    }

    fn socket(&self, key: &str, default: &str) -> Result<SocketAddr, ConfigError> {
        let text = self.get(key).unwrap_or(default.to_string());
        text.parse().map_err(|_| {
            bad(
                key,
                format!("{text:?} is not an address like 127.0.0.1:8080"),
            )
        })
    }

    fn number(&self, key: &str, default: u32) -> Result<u32, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad(key, format!("{v:?} is not a positive whole number"))),
        }
    }

    fn duration(&self, key: &str, default: &str) -> Result<Duration, ConfigError> {
        let text = self.get(key).unwrap_or(default.to_string());
        parse_duration(&text).ok_or_else(|| {
            bad(
                key,
                format!("{text:?} is not a duration like 90s, 10m or 3d"),
            )
        })
    }
}

/// Durations everywhere in the `90s` / `10m` / `3d` form (also `h`, `ms`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit_ms).map(Duration::from_millis)
}

fn email_settings(env: &Env<'_>) -> Result<Option<EmailSettings>, ConfigError> {
    let Some(url) = env.secret("SMTP_URL")? else {
        return Ok(None);
    };
    let mailbox = |key: &str, text: &str| -> Result<Mailbox, ConfigError> {
        text.trim()
            .parse::<Mailbox>()
            .map_err(|e| bad(key, format!("{text:?} is not an e-mail address: {e}")))
    };
    let from = env
        .get("ALERT_EMAIL_FROM")
        .ok_or_else(|| bad("ALERT_EMAIL_FROM", "required with SMTP_URL"))?;
    let to = env
        .get("ALERT_EMAIL_TO")
        .ok_or_else(|| bad("ALERT_EMAIL_TO", "required with SMTP_URL"))?;
    let settings = EmailSettings {
        smtp_url: url,
        from: mailbox("ALERT_EMAIL_FROM", &from)?,
        to: to
            .split(',')
            .filter(|a| !a.trim().is_empty())
            .map(|a| mailbox("ALERT_EMAIL_TO", a))
            .collect::<Result<_, _>>()?,
    };
    // Checked now, so a typo stops start-up instead of every alert.
    Mailer::new(&settings).map_err(|e| bad("SMTP_URL", e.to_string()))?;
    Ok(Some(settings))
}

fn parse_database(url: Option<String>, data_dir: &Path) -> Result<DatabaseConfig, ConfigError> {
    let default_sqlite = || DatabaseConfig::Sqlite {
        path: data_dir.join("payhook.sqlite3"),
    };
    let Some(url) = url else {
        return Ok(default_sqlite());
    };
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(DatabaseConfig::Postgres {
            url: SecretString::from(url),
        });
    }
    match url.strip_prefix("sqlite:") {
        Some("") => Ok(default_sqlite()),
        Some(rest) => Ok(DatabaseConfig::Sqlite {
            path: PathBuf::from(rest.strip_prefix("//").unwrap_or(rest)),
        }),
        None => Err(bad(
            "DATABASE_URL",
            format!("{} is neither postgres://… nor sqlite:…", redact_url(&url)),
        )),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    projects: Vec<FileProject>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileProject {
    id: u64,
    password: Option<String>,
    password_file: Option<PathBuf>,
}

/// Projects from `PAYSERA_PROJECT_ID`/`PAYSERA_PROJECT_PASSWORD`, plus any in the
/// TOML file `PAYHOOK_CONFIG_FILE` (a shop often has a test and a live project).
fn projects_from(env: &Env<'_>) -> Result<Vec<ProjectSettings>, ConfigError> {
    let mut projects = Vec::new();
    if let Some(id) = env.get("PAYSERA_PROJECT_ID") {
        let id: u64 = id.parse().map_err(|_| {
            bad(
                "PAYSERA_PROJECT_ID",
                format!("{id:?} is not a project number"),
            )
        })?;
        let password = env.secret("PAYSERA_PROJECT_PASSWORD")?.ok_or_else(|| {
            bad(
                "PAYSERA_PROJECT_PASSWORD",
                "required with PAYSERA_PROJECT_ID",
            )
        })?;
        projects.push(ProjectSettings { id, password });
    } else if env.secret("PAYSERA_PROJECT_PASSWORD")?.is_some() {
        return Err(bad(
            "PAYSERA_PROJECT_ID",
            "required with PAYSERA_PROJECT_PASSWORD",
        ));
    }
    if let Some(path) = env.get("PAYHOOK_CONFIG_FILE") {
        let key = "PAYHOOK_CONFIG_FILE";
        let text = std::fs::read_to_string(&path)
            .map_err(|e| bad(key, format!("cannot read {path}: {e}")))?;
        let file: ConfigFile =
            toml::from_str(&text).map_err(|e| bad(key, format!("{path}: {}", e.message())))?;
        for p in file.projects {
            let password = match (p.password, p.password_file) {
                (Some(pw), None) => pw,
                (None, Some(f)) => std::fs::read_to_string(&f)
                    .map(|s| s.trim_end_matches(['\r', '\n']).to_string())
                    .map_err(|e| {
                        bad(
                            key,
                            format!("project {}: cannot read {}: {e}", p.id, f.display()),
                        )
                    })?,
                _ => {
                    return Err(bad(
                        key,
                        format!(
                            "project {}: give exactly one of password, password_file",
                            p.id
                        ),
                    ))
                }
            };
            if projects.iter().any(|q: &ProjectSettings| q.id == p.id) {
                return Err(bad(key, format!("project {} is configured twice", p.id)));
            }
            projects.push(ProjectSettings {
                id: p.id,
                password: SecretString::from(password),
            });
        }
    }
    for p in &projects {
        if p.password.expose_secret().is_empty() {
            return Err(bad(
                "PAYSERA_PROJECT_PASSWORD",
                format!("project {}: empty password", p.id),
            ));
        }
    }
    Ok(projects)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

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
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.admin_bind.to_string(), "127.0.0.1:8081");
        assert!(matches!(s.database, DatabaseConfig::Sqlite { .. }));
        assert_eq!(s.rules.order_check, OrderCheck::Registered);
        assert!(!s.rules.allow_test_payments && !s.policy.accept_ss1);
        assert_eq!(s.db_acquire_timeout, Duration::from_secs(2));
        assert_eq!(s.missed_callback_window, Duration::from_secs(3 * 86400));
        assert_eq!(s.rejected_max_bytes, 2048);
        assert_eq!(s.rejected_retention, Duration::from_secs(30 * 86400));
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
    fn durations() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("3d"), Some(Duration::from_secs(3 * 86400)));
        for bad in ["", "10", "m", "1.5m", "-1s", "10 m"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }
}
