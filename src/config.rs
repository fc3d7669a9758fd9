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
use crate::store::{url_secrets, DatabaseConfig};

/// One bad key. Displayed on one line (a reason never spans lines), and a
/// reason never quotes a secret's value: only the key, a path or a scheme.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {key}: {}", one_line(reason))]
pub struct ConfigError {
    pub key: String,
    pub reason: String,
}

fn one_line(text: &str) -> String {
    text.split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Setting any of these means "this is a real deployment": demo mode then never
/// starts, and a missing project is an error instead of a throw-away key.
pub const DEMO_BLOCKERS: &[&str] = &[
    "PAYSERA_PROJECT_ID",
    "PAYSERA_PROJECT_PASSWORD",
    "PAYSERA_PROJECT_PASSWORD_FILE",
    "PAYHOOK_CONFIG_FILE",
    "DATABASE_URL",
    "PAYHOOK_ADMIN_TOKEN",
    "PAYHOOK_ADMIN_TOKEN_FILE",
    "SMTP_URL",
    "SMTP_URL_FILE",
];

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
    /// A request's head, and then its body, must each arrive within this.
    pub request_timeout: Duration,
    /// Open connections per instance, both listeners together.
    pub max_connections: u32,
    /// Shop notifications (`SHOP_NOTIFY_*`).
    pub notify: crate::notify::NotifySettings,
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
             rejected_retention={}s request_timeout={}ms max_connections={}",
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
            self.request_timeout.as_millis(),
            self.max_connections,
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
        let demo = demo_mode(&env, &projects)?;
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
        check_admin_token(admin_token.expose_secret())?;

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
            request_timeout: env.positive_duration("PAYHOOK_REQUEST_TIMEOUT", "10s")?,
            max_connections: match env.number("PAYHOOK_MAX_CONNECTIONS", 1024)? {
                // One for each listener at least.
                n if n >= 2 => n,
                _ => return Err(bad("PAYHOOK_MAX_CONNECTIONS", "must be at least 2")),
            },
            notify: crate::notify::NotifySettings::from_lookup(&get)?,
        })
    }
}

/// Demo mode only when nothing says "real deployment"; a deployment without a
/// project is a half configuration and stops start-up.
fn demo_mode(env: &Env<'_>, projects: &[ProjectSettings]) -> Result<bool, ConfigError> {
    if !projects.is_empty() {
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

/// The token travels in an HTTP header and is compared whole: short or
/// whitespace-bearing tokens are typos or guessable.
fn check_admin_token(token: &str) -> Result<(), ConfigError> {
    let key = "PAYHOOK_ADMIN_TOKEN";
    if token.chars().any(char::is_whitespace) {
        return Err(bad(key, "must not contain whitespace"));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(
            key,
            "must be printable ASCII (it is sent in an HTTP header)",
        ));
    }
    if token.chars().count() < 16 {
        return Err(bad(key, "must be at least 16 characters"));
    }
    Ok(())
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

impl Settings {
    pub fn scrubber(&self) -> Scrubber {
        let mut secrets: Vec<String> = vec![self.admin_token.expose_secret().to_string()];
        secrets.extend(
            self.projects
                .iter()
                .map(|p| p.password.expose_secret().to_string()),
        );
        if let DatabaseConfig::Postgres { url } = &self.database {
            secrets.extend(url_secrets(url.expose_secret()));
        }
        if let Some(email) = &self.email {
            secrets.extend(url_secrets(email.smtp_url.expose_secret()));
        }
        secrets.retain(|s| !s.is_empty());
        // The longest first, so a secret that contains another goes whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Scrubber(secrets.into_iter().map(SecretString::from).collect())
    }
}

struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    /// Present at all, even empty.
    fn is_set(&self, key: &str) -> bool {
        (self.0)(key).is_some()
    }

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

    fn positive_duration(&self, key: &str, default: &str) -> Result<Duration, ConfigError> {
        match self.duration(key, default)? {
            d if d.is_zero() => Err(bad(key, "must be more than 0")),
            d => Ok(d),
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
    // libpq (under diesel) takes both URIs and `host=… dbname=…` strings.
    if url.starts_with("postgres://") || url.starts_with("postgresql://") || is_conninfo(&url) {
        return Ok(DatabaseConfig::Postgres {
            url: SecretString::from(url),
        });
    }
    match url.strip_prefix("sqlite:") {
        Some("") => Ok(default_sqlite()),
        Some(rest) => Ok(DatabaseConfig::Sqlite {
            path: PathBuf::from(rest.strip_prefix("//").unwrap_or(rest)),
        }),
        // Not quoted back, not even its scheme: a pasted password can look like one.
        None => Err(bad(
            "DATABASE_URL",
            "is neither postgres://… (or host=… dbname=…) nor sqlite:… (the value is not shown)",
        )),
    }
}

/// A libpq key=value connection string: it starts with `keyword =`.
fn is_conninfo(text: &str) -> bool {
    let text = text.trim_start();
    let key_len = text
        .bytes()
        .take_while(|b| b.is_ascii_lowercase() || *b == b'_')
        .count();
    key_len > 0 && text[key_len..].trim_start().starts_with('=')
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
        // The value is not quoted back: a password pasted into the wrong key
        // must not end up in a log.
        let id: u64 = id.parse().map_err(|_| {
            bad(
                "PAYSERA_PROJECT_ID",
                "is not a project number (digits only)",
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
        let file: ConfigFile = toml::from_str(&text).map_err(|e| {
            let line = e
                .span()
                .map(|span| format!(" line {}", line_number(&text, span.start)))
                .unwrap_or_default();
            bad(key, format!("{path}{line}: {}", toml_reason(e.message())))
        })?;
        if file.projects.is_empty() {
            return Err(bad(
                key,
                format!("{path} lists no project (add [[projects]] with id and password_file)"),
            ));
        }
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

/// A TOML error's reason, without any value from the file: serde's type errors
/// quote the value (`invalid type: integer `1234`…`), which may be a password.
fn toml_reason(message: &str) -> String {
    let names_only = [
        "unknown field",
        "missing field",
        "duplicate key",
        "duplicate field",
    ];
    if names_only.iter().any(|p| message.starts_with(p)) {
        one_line(message)
    } else if message.starts_with("invalid") && message.contains("expected") {
        "a value has the wrong type (id is a number; password and password_file are strings)"
            .to_string()
    } else {
        "not valid TOML; expected [[projects]] tables with id and password or password_file"
            .to_string()
    }
}

/// 1-based line of a byte offset.
fn line_number(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Why `./.env` could not be used. One line, never the content of a line:
/// it may hold a password.
#[derive(Debug, thiserror::Error)]
pub enum DotenvError {
    #[error(".env line {line}: cannot be parsed (the line is not shown; quote a value that has spaces, quotes or #)")]
    Parse { line: usize },
    #[error(".env: cannot be parsed (the line is not shown)")]
    Unplaced,
    #[error(".env line {line}: not valid UTF-8")]
    Encoding { line: usize },
    #[error(".env: cannot be read: {0}")]
    Read(std::io::Error),
}

/// Loads `path` (the service passes `./.env`: never a parent directory's, which
/// belongs to something else) into the environment. Variables already set win.
/// All or nothing: a file with a bad line sets no variable. `Ok(false)`: no file.
pub fn load_dotenv(path: &Path) -> Result<bool, DotenvError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(DotenvError::Read(e)),
    };
    for (key, value) in parse_dotenv(&bytes)? {
        if std::env::var_os(&key).is_none() {
            std::env::set_var(key, value);
        }
    }
    Ok(true)
}

/// The variables of a `.env` file, in file order.
pub fn parse_dotenv(bytes: &[u8]) -> Result<Vec<(String, String)>, DotenvError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes).map_err(|e| DotenvError::Encoding {
        line: bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1,
    })?;
    let mut vars = Vec::new();
    for item in dotenvy::from_read_iter(text.as_bytes()) {
        match item {
            Ok(var) => vars.push(var),
            Err(dotenvy::Error::Io(e)) => return Err(DotenvError::Read(e)),
            Err(_) => {
                return Err(match failing_line(text, vars.len()) {
                    Some(line) => DotenvError::Parse { line },
                    None => DotenvError::Unplaced,
                })
            }
        }
    }
    Ok(vars)
}

/// The line where parsing stopped, after `parsed` good entries. dotenvy's error
/// carries only a fragment of the text, so: the good entries end at the
/// shortest run of whole lines that still yields all of them, and the bad entry
/// starts at the next line that is neither blank nor a comment.
fn failing_line(text: &str, parsed: usize) -> Option<usize> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let good_end = if parsed == 0 {
        0
    } else {
        (1..=lines.len()).find(|&k| {
            let prefix = lines[..k].concat();
            dotenvy::from_read_iter(prefix.as_bytes())
                .take_while(Result::is_ok)
                .count()
                >= parsed
        })?
    };
    lines
        .iter()
        .enumerate()
        .skip(good_end)
        .find(|(_, line)| {
            let line = line.trim();
            !line.is_empty() && !line.starts_with('#')
        })
        .map(|(n, _)| n + 1)
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
    fn demo_mode_only_when_no_deployment_key_is_set() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().display().to_string();
        let s = settings(&[("PAYHOOK_DATA_DIR", &data_dir)]).unwrap();
        assert!(s.demo);

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
        assert_eq!(s.request_timeout, Duration::from_secs(10));
        assert_eq!(s.max_connections, 1024);
        let mut pairs = BASE.to_vec();
        pairs.push(("PAYHOOK_REQUEST_TIMEOUT", "1500ms"));
        pairs.push(("PAYHOOK_MAX_CONNECTIONS", "64"));
        let s = settings(&pairs).unwrap();
        assert_eq!(s.request_timeout, Duration::from_millis(1500));
        assert_eq!(s.max_connections, 64);
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
    fn key_value_connection_strings_are_postgres() {
        let mut pairs = BASE.to_vec();
        pairs.push(("DATABASE_URL", "host=db password='pw x' dbname=payhook"));
        let s = settings(&pairs).unwrap();
        assert!(matches!(s.database, DatabaseConfig::Postgres { .. }));
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
        let example = include_str!("../.env.example");
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
