//! The typed sections of `Settings`, one per part of the service, each read
//! from its own keys.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::Mailbox;
use secrecy::{ExposeSecret, SecretString};

use super::env::Env;
use super::{bad, ConfigError};
use crate::alerts::{check_smtp_url, EmailSettings};
use crate::domain::{OrderCheck, Rules};
use crate::keyfile::load_public_keys;
use crate::paysera::{KeySet, NoProjects, Policy, Project, ProjectCredentials, Verifier};
use crate::store::DatabaseConfig;
use crate::telemetry::LogFormat;

/// The two listeners and what they answer with.
#[derive(Clone)]
pub struct HttpSettings {
    pub bind: SocketAddr,
    pub admin_bind: SocketAddr,
    /// `None` only in demo mode until start-up has made the demo gateway
    /// (`crate::demo::provision`), whose token it then is.
    pub admin_token: Option<SecretString>,
    /// Where buyers are sent back through payhook (`PAYHOOK_PUBLIC_URL`).
    pub public_url: Option<String>,
    pub sms_reply: Option<String>,
    /// A request's head, and then its body, must each arrive within this.
    pub request_timeout: Duration,
    /// Open connections per instance, both listeners together.
    pub max_connections: u32,
    /// Public connections one client address may hold (`PAYHOOK_MAX_CONNECTIONS_PER_ADDRESS`).
    pub max_connections_per_address: u32,
    /// Not counted per address (`PAYHOOK_TRUSTED_PROXIES`).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Where a trusted proxy names its client, for the admin listener's limit
    /// on wrong tokens (`PAYHOOK_CLIENT_IP_HEADER`; `None`: the peer's address).
    pub client_ip_header: Option<crate::http::auth::ClientIpHeader>,
    /// A public request's line and headers, in bytes (`PAYHOOK_MAX_HEAD_BYTES`).
    pub max_head_bytes: usize,
    /// A public connection is closed after the answer once this old
    /// (`PAYHOOK_CONNECTION_MAX_AGE`)...
    pub connection_max_age: Duration,
    /// ...or once it has served this many requests (`PAYHOOK_CONNECTION_MAX_REQUESTS`).
    pub connection_max_requests: u32,
    pub shutdown_timeout: Duration,
    /// How long readiness says 503 before the listeners close.
    pub drain_delay: Duration,
    /// How long a console session lasts (`PAYHOOK_UI_SESSION_TTL`).
    pub ui_session_ttl: Duration,
    /// The console's cookie is `Secure` (`PAYHOOK_UI_SECURE_COOKIE`; unset: when
    /// `PAYHOOK_ADMIN_URL`, or without it `PAYHOOK_PUBLIC_URL`, is https).
    pub ui_secure_cookie: bool,
    /// Where the admin listener is reached, for links in alert e-mails
    /// (`PAYHOOK_ADMIN_URL`, without a trailing slash).
    pub admin_url: Option<String>,
}

impl HttpSettings {
    pub(super) fn read(env: &Env<'_>, demo: bool) -> Result<HttpSettings, ConfigError> {
        let bind = env.socket("PAYHOOK_BIND", "127.0.0.1:8080")?;
        let admin_bind = env.socket("PAYHOOK_ADMIN_BIND", "127.0.0.1:8081")?;
        let admin_token = env.secret("PAYHOOK_ADMIN_TOKEN")?;
        let admin_token = if demo {
            for (key, addr) in [("PAYHOOK_BIND", bind), ("PAYHOOK_ADMIN_BIND", admin_bind)] {
                if !addr.ip().is_loopback() {
                    return Err(bad(
                        key,
                        "demo mode (no PAYSERA_PROJECT_ID) listens on loopback only",
                    ));
                }
            }
            // Setting it would have ruled demo mode out (`DEMO_BLOCKERS`).
            None
        } else {
            let token = admin_token
                .ok_or_else(|| bad("PAYHOOK_ADMIN_TOKEN", "required (at least 16 characters)"))?;
            check_admin_token(token.expose_secret())?;
            Some(token)
        };
        let public_url = env
            .get("PAYHOOK_PUBLIC_URL")
            .map(|u| u.trim_end_matches('/').to_string());
        let admin_url = match env.get("PAYHOOK_ADMIN_URL").filter(|u| !u.is_empty()) {
            None => None,
            Some(u) if u.starts_with("http://") || u.starts_with("https://") => {
                Some(u.trim_end_matches('/').to_string())
            }
            Some(u) => {
                return Err(bad(
                    "PAYHOOK_ADMIN_URL",
                    format!("{u:?} is not an http:// or https:// URL"),
                ))
            }
        };
        // The console is reached at the admin URL; without one, the public
        // URL says whether this deployment speaks TLS.
        let ui_secure_cookie = match env.get("PAYHOOK_UI_SECURE_COOKIE") {
            Some(_) => env.flag("PAYHOOK_UI_SECURE_COOKIE")?,
            None => admin_url
                .as_deref()
                .or(public_url.as_deref())
                .is_some_and(|u| u.to_ascii_lowercase().starts_with("https://")),
        };
        let trusted_proxies = crate::http::connections::parse_networks(
            &env.get("PAYHOOK_TRUSTED_PROXIES").unwrap_or_default(),
        )
        .map_err(|e| bad("PAYHOOK_TRUSTED_PROXIES", e))?;
        let client_ip_header = match env.get("PAYHOOK_CLIENT_IP_HEADER") {
            None => None,
            Some(text) => {
                let header = crate::http::auth::ClientIpHeader::parse(&text).ok_or_else(|| {
                    bad(
                        "PAYHOOK_CLIENT_IP_HEADER",
                        format!("{text:?} is neither X-Forwarded-For nor X-Real-IP"),
                    )
                })?;
                if trusted_proxies.is_empty() {
                    return Err(bad(
                        "PAYHOOK_CLIENT_IP_HEADER",
                        "needs PAYHOOK_TRUSTED_PROXIES: the header is read only from a trusted proxy",
                    ));
                }
                Some(header)
            }
        };
        Ok(HttpSettings {
            bind,
            admin_bind,
            admin_token,
            public_url,
            sms_reply: env.get("PAYHOOK_SMS_REPLY").filter(|s| !s.is_empty()),
            request_timeout: env.positive_duration("PAYHOOK_REQUEST_TIMEOUT", "10s")?,
            max_connections: match env.number("PAYHOOK_MAX_CONNECTIONS", 1024)? {
                // One for each listener at least.
                n if n >= 2 => n,
                _ => return Err(bad("PAYHOOK_MAX_CONNECTIONS", "must be at least 2")),
            },
            max_connections_per_address: env.number("PAYHOOK_MAX_CONNECTIONS_PER_ADDRESS", 64)?,
            trusted_proxies,
            client_ip_header,
            // A GET callback's query may be as long as a URI can be (64 KiB,
            // `tests/api/hardening.rs`), plus 8 KiB of headers.
            max_head_bytes: match env.number("PAYHOOK_MAX_HEAD_BYTES", 72 * 1024)? {
                // actix itself gives up at 128 KiB; under 1 KiB a genuine GET
                // callback's signature alone would not fit.
                n @ 1024..=131_072 => n as usize,
                _ => {
                    return Err(bad(
                        "PAYHOOK_MAX_HEAD_BYTES",
                        "must be between 1024 and 131072",
                    ))
                }
            },
            connection_max_age: env.positive_duration("PAYHOOK_CONNECTION_MAX_AGE", "60s")?,
            connection_max_requests: env.number("PAYHOOK_CONNECTION_MAX_REQUESTS", 1000)?,
            shutdown_timeout: env.duration("PAYHOOK_SHUTDOWN_TIMEOUT", "25s")?,
            drain_delay: env.duration("PAYHOOK_DRAIN_DELAY", "2s")?,
            ui_session_ttl: env.positive_duration("PAYHOOK_UI_SESSION_TTL", "8h")?,
            ui_secure_cookie,
            admin_url,
        })
    }
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

/// The database, its pool, and how much of rejected requests it keeps.
#[derive(Clone)]
pub struct DatabaseSettings {
    pub connection: DatabaseConfig,
    pub pool_size: u32,
    pub acquire_timeout: Duration,
    /// Bounds every other wait on the database: statement, lock, socket.
    pub statement_timeout: Duration,
    /// Bytes of a rejected request's raw request that are stored.
    pub rejected_max_bytes: usize,
    /// Rejected requests older than this are deleted.
    pub rejected_retention: Duration,
    /// Duplicates (a delivery received again) older than this are deleted; the
    /// first row of each delivery stays.
    pub duplicate_retention: Duration,
    /// Captured gateway notifications older than this are deleted, unless an
    /// operator confirmed them.
    pub captured_retention: Duration,
    /// Stored requests' personal data is erased after this
    /// (`pipeline::erase`); the accounting facts stay.
    pub pii_retention: Duration,
}

impl DatabaseSettings {
    /// `connection` (see `connection()`) is read before every other key: it
    /// decides the pool's default size.
    pub(super) fn read(
        env: &Env<'_>,
        connection: DatabaseConfig,
    ) -> Result<DatabaseSettings, ConfigError> {
        let is_pg = matches!(connection, DatabaseConfig::Postgres { .. });
        Ok(DatabaseSettings {
            connection,
            // SQLite has one writer at a time anyway; one connection queues writers in
            // arrival order instead of SQLite's busy-handler back-off (second-long stalls).
            pool_size: env.number("PAYHOOK_DB_POOL_SIZE", if is_pg { 16 } else { 1 })?,
            acquire_timeout: env.duration("PAYHOOK_DB_ACQUIRE_TIMEOUT", "2s")?,
            statement_timeout: match env.duration("PAYHOOK_DB_STATEMENT_TIMEOUT", "5s")? {
                d if d < Duration::from_millis(100) => {
                    return Err(bad(
                        "PAYHOOK_DB_STATEMENT_TIMEOUT",
                        "must be at least 100ms",
                    ))
                }
                d => d,
            },
            rejected_max_bytes: env.number("PAYHOOK_REJECTED_MAX_BYTES", 2048)? as usize,
            rejected_retention: retention(env, "PAYHOOK_REJECTED_RETENTION")?,
            duplicate_retention: retention(env, "PAYHOOK_DUPLICATE_RETENTION")?,
            captured_retention: retention(env, "PAYHOOK_CAPTURED_RETENTION")?,
            // Card chargebacks come up to 120 days after a payment: until
            // then the buyer's details in a callback may answer a dispute.
            pii_retention: match env.duration("PAYHOOK_PII_RETENTION", "120d")? {
                d if d.is_zero() => {
                    return Err(bad("PAYHOOK_PII_RETENTION", "must be longer than 0s"))
                }
                d => d,
            },
        })
    }
}

/// A retention period: 30 days unless given, never 0.
fn retention(env: &Env<'_>, key: &str) -> Result<Duration, ConfigError> {
    env.duration(key, "30d").and_then(|d| {
        (!d.is_zero())
            .then_some(d)
            .ok_or_else(|| bad(key, "must be longer than 0s"))
    })
}

/// `DATABASE_URL`: PostgreSQL, or a SQLite file (by default in the data directory).
pub(super) fn connection(
    url: Option<String>,
    data_dir: &Path,
) -> Result<DatabaseConfig, ConfigError> {
    let default_sqlite = || DatabaseConfig::Sqlite {
        path: data_dir.join("payhook.sqlite3"),
    };
    let Some(url) = url else {
        return Ok(default_sqlite());
    };
    // libpq (under diesel) takes both URIs and `host=… dbname=…` strings.
    if url.starts_with("postgres://") || url.starts_with("postgresql://") || is_conninfo(&url) {
        if crate::store::several_hosts_without_primary(&url) {
            return Err(bad(
                "DATABASE_URL",
                "names several hosts but not target_session_attrs=read-write (or primary): \
                 libpq could connect to a standby (docs/ha.md; the value is not shown)",
            ));
        }
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

/// Who the callbacks come from: the projects, the gateway's keys, and which
/// signatures decide.
#[derive(Clone)]
pub struct GatewaySettings {
    /// Classic projects; empty in demo mode until start-up has made the demo
    /// gateway, or when only Checkout projects are configured.
    pub projects: Vec<ProjectCredentials>,
    /// Checkout (Modern) projects, by API client id.
    pub checkout: Vec<super::projects::CheckoutProject>,
    /// What a Checkout webhook failing its headers or signature is answered
    /// (`PAYHOOK_CHECKOUT_REJECT_STATUS`, 403: a 401 stops Paysera's retries).
    pub checkout_reject_status: u16,
    pub keys: KeySet,
    pub policy: Policy,
    /// The hash-signed gateways served (`PAYHOOK_GATEWAYS_FILE`).
    pub recipes: Vec<crate::gateways::Recipe>,
}

impl GatewaySettings {
    pub fn verifier_projects(&self) -> Vec<Project> {
        self.projects.iter().map(Project::from).collect()
    }

    /// The classic callbacks' verifier. Checkout projects alone are a complete
    /// configuration (`Settings` requires a project of either API): the
    /// classic endpoint then refuses every callback as naming no project.
    pub fn verifier(&self) -> Result<Verifier, NoProjects> {
        if self.projects.is_empty() && !self.checkout.is_empty() {
            return Ok(Verifier::without_projects(self.keys.clone(), self.policy));
        }
        Verifier::new(self.verifier_projects(), self.keys.clone(), self.policy)
    }

    /// The Checkout webhook verifier over every Checkout project's secrets, a
    /// match naming its project; `None` without a Checkout project.
    pub fn checkout_verifier(
        &self,
    ) -> Result<Option<crate::checkout::WebhookVerifier>, ConfigError> {
        if self.checkout.is_empty() {
            return Ok(None);
        }
        let mut secrets = Vec::new();
        for project in &self.checkout {
            for (label, key) in &project.secrets {
                let secret = crate::checkout::Secret::new(label.clone(), key.clone())
                    .map_err(|e| bad("PAYSERA_CHECKOUT_SECRET", e.to_string()))?;
                secrets.push(secret.of_project(project.client_id.clone()));
            }
        }
        crate::checkout::WebhookVerifier::new(secrets)
            .map(Some)
            .map_err(|e| bad("PAYSERA_CHECKOUT_SECRET", e.to_string()))
    }
}

/// `PAYSERA_PUBLIC_KEY_FILE` (a comma-separated list), else Paysera's key.
pub(super) fn public_keys(env: &Env<'_>) -> Result<KeySet, ConfigError> {
    match env.get("PAYSERA_PUBLIC_KEY_FILE") {
        Some(list) => {
            let files: Vec<&str> = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            load_public_keys(&files).map_err(|e| bad("PAYSERA_PUBLIC_KEY_FILE", e.to_string()))
        }
        None => Ok(KeySet::paysera_production()),
    }
}

pub(super) fn checkout_reject_status(env: &Env<'_>) -> Result<u16, ConfigError> {
    let key = "PAYHOOK_CHECKOUT_REJECT_STATUS";
    match env.get(key) {
        None => Ok(403),
        Some(text) => text
            .parse::<u16>()
            .ok()
            .filter(|s| (400..500).contains(s) && *s != 408 && *s != 429)
            .ok_or_else(|| bad(key, "must be a 4xx status such as 403 or 401")),
    }
}

pub(super) fn policy(env: &Env<'_>) -> Result<Policy, ConfigError> {
    Ok(Policy {
        accept_ss1: env.flag("PAYHOOK_ACCEPT_SS1")?,
        strict: env.flag("PAYHOOK_STRICT_SIGNATURES")?,
        accept_legacy: env.flag("PAYHOOK_ACCEPT_LEGACY")?,
    })
}

/// The decision's rules (`domain::Rules`): test payments, unregistered orders.
pub(super) fn rules(env: &Env<'_>) -> Result<Rules, ConfigError> {
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
    Ok(Rules {
        allow_test_payments: env.flag("PAYHOOK_ALLOW_TEST_PAYMENTS")?,
        order_check,
    })
}

/// E-mail alerts and the missed-callback detector.
#[derive(Clone)]
pub struct AlertSettings {
    /// `None`: no `SMTP_URL`, alerts are off.
    pub email: Option<EmailSettings>,
    pub min_interval: Duration,
    pub missed_callback_after: Duration,
    /// Buyers who came back longer ago than this are no longer counted missing.
    pub missed_callback_window: Duration,
}

impl AlertSettings {
    pub(super) fn read(env: &Env<'_>) -> Result<AlertSettings, ConfigError> {
        let missed_callback_after = env.duration("MISSED_CALLBACK_AFTER", "15m")?;
        let missed_callback_window = env.duration("MISSED_CALLBACK_WINDOW", "3d")?;
        if missed_callback_window <= missed_callback_after {
            return Err(bad(
                "MISSED_CALLBACK_WINDOW",
                "must be longer than MISSED_CALLBACK_AFTER",
            ));
        }
        Ok(AlertSettings {
            email: email(env)?,
            min_interval: env.duration("ALERT_MIN_INTERVAL", "10m")?,
            missed_callback_after,
            missed_callback_window,
        })
    }
}

fn email(env: &Env<'_>) -> Result<Option<EmailSettings>, ConfigError> {
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
    // Checked now, so a typo stops start-up instead of every alert; the mailer
    // itself is built once, at start-up.
    check_smtp_url(settings.smtp_url.expose_secret())
        .map_err(|e| bad("SMTP_URL", e.to_string()))?;
    Ok(Some(settings))
}

#[derive(Clone, Copy, Debug)]
pub struct LogSettings {
    pub format: LogFormat,
    /// Log buyer personal data (e-mail, names) in the callback line.
    pub pii: bool,
}

impl LogSettings {
    pub(super) fn read(env: &Env<'_>) -> Result<LogSettings, ConfigError> {
        Ok(LogSettings {
            format: match env.get("PAYHOOK_LOG_FORMAT").as_deref() {
                None | Some("text") => LogFormat::Text,
                Some("json") => LogFormat::Json,
                Some(other) => {
                    return Err(bad(
                        "PAYHOOK_LOG_FORMAT",
                        format!("{other:?} is neither text nor json"),
                    ))
                }
            },
            pii: env.flag("PAYHOOK_LOG_PII")?,
        })
    }
}
