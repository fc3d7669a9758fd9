//! `payhook check`: a self-diagnosis with the service's configuration, one
//! line per check: ✓ passed, ! a warning, ✗ failed (with the fix), – skipped.
//!
//! Configuration first (read and validated as `serve` does); then the gateway's
//! keys, and at once the database (on PostgreSQL, then its replication), the
//! SMTP server, the shop's endpoint and the public listener. Every check that
//! waits on something is bounded in time.
//!
//! Exit codes: 0 no check failed (warnings allowed), 1 a check failed, 2
//! configuration or usage error.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use serde::Serialize;

use crate::alerts::Mailer;
use crate::config::{ConfigError, Settings};
use crate::domain::Answer;
use crate::notify::{describe_http_error, ShopClient, TEST_EVENT_TYPE};
use crate::paysera::{CallbackError, KeySet, PublicKey, Validity};
use crate::pipeline::{rejection_text, status_of, AnswerClass};
use crate::store::{redact_url, DatabaseConfig, Replication, Store, REMOTE_DURABLE_COMMITS};

/// A certificate this close to its end is a warning.
pub const EXPIRY_WARNING_DAYS: u64 = 60;
/// The SMTP server and the public listener each have this long to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// The length of the callback query sent to the public listener: room for a
/// callback with many fields, and beyond the 8 KiB that proxies allow by default.
pub const PROBE_QUERY_BYTES: usize = 16 * 1024;
const DAY: u64 = 86_400;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Ok,
    Warn,
    Fail,
    Skip,
}

impl CheckStatus {
    /// The name `--json` writes (serde's `lowercase`).
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Ok => "ok",
            CheckStatus::Warn => "warn",
            CheckStatus::Fail => "fail",
            CheckStatus::Skip => "skip",
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            CheckStatus::Ok => "✓",
            CheckStatus::Warn => "!",
            CheckStatus::Fail => "✗",
            CheckStatus::Skip => "–",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub status: CheckStatus,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn ok(check: &'static str, detail: impl Into<String>) -> Check {
        Check {
            check,
            status: CheckStatus::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    fn skip(check: &'static str, detail: impl Into<String>) -> Check {
        Check {
            status: CheckStatus::Skip,
            ..Check::ok(check, detail)
        }
    }

    fn warn(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            status: CheckStatus::Warn,
            fix: Some(fix.into()),
            ..Check::ok(check, detail)
        }
    }

    fn fail(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            status: CheckStatus::Fail,
            fix: Some(fix.into()),
            ..Check::ok(check, detail)
        }
    }

    pub fn line(&self) -> String {
        let mut line = format!("{} {}: {}", self.status.symbol(), self.check, self.detail);
        if let Some(fix) = &self.fix {
            line.push_str(" — fix: ");
            line.push_str(fix);
        }
        line
    }
}

/// The checks after the configuration, for the console's self-check page:
/// the same functions as the command, on the service's own settings.
pub fn for_console(settings: Settings) -> crate::pipeline::actions::SelfCheck {
    let settings = std::sync::Arc::new(settings);
    std::sync::Arc::new(move || {
        let settings = settings.clone();
        Box::pin(async move {
            let mut checks = vec![Check::ok(
                "configuration",
                "loaded and valid (the service runs on it)",
            )];
            checks.extend(everything(&settings).await);
            checks
                .into_iter()
                .map(|c| crate::pipeline::actions::CheckLine {
                    check: c.check.to_string(),
                    status: c.status.as_str().to_string(),
                    detail: c.detail,
                    fix: c.fix,
                })
                .collect()
        })
    })
}

pub fn run(json: bool) -> ExitCode {
    let (settings, configuration) = match configuration() {
        Ok(loaded) => loaded,
        Err(failed) => {
            report(&[failed], json);
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let mut checks = vec![configuration];
    checks.extend(runtime.block_on(everything(&settings)));
    // A database check that timed out may still hold a blocking thread: it is
    // not waited for.
    runtime.shutdown_background();
    report(&checks, json);
    if checks.iter().any(|c| c.status == CheckStatus::Fail) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn report(checks: &[Check], json: bool) {
    if json {
        let ok = checks.iter().all(|c| c.status != CheckStatus::Fail);
        println!("{}", serde_json::json!({ "ok": ok, "checks": checks }));
    } else {
        for check in checks {
            println!("{}", check.line());
        }
    }
}

/// The settings, read and validated as `serve` reads them (demo mode's
/// gateway included); a bad key is one failed line naming it.
fn configuration() -> Result<(Settings, Check), Check> {
    let failed = |e: ConfigError| {
        Check::fail(
            "configuration",
            format!("{}: {}", e.key, one_line(&e.reason)),
            format!(
                "correct {} (see .env.example and the README's Configuration table)",
                e.key
            ),
        )
    };
    let mut settings = Settings::from_env().map_err(failed)?;
    crate::demo::provision(&mut settings).map_err(failed)?;
    let projects: Vec<String> = settings
        .gateway
        .projects
        .iter()
        .map(|p| p.id.to_string())
        .chain(
            settings
                .gateway
                .checkout
                .iter()
                .map(|p| format!("checkout:{}", p.client_id)),
        )
        .collect();
    let detail = format!(
        "{}project(s) {}, database {:?}, listeners {} (admin {})",
        if settings.demo { "demo mode, " } else { "" },
        projects.join(", "),
        settings.database.connection,
        settings.http.bind,
        settings.http.admin_bind,
    );
    Ok((settings, Check::ok("configuration", detail)))
}

async fn everything(settings: &Settings) -> Vec<Check> {
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    let mut checks = keys(&settings.gateway.keys, now);
    let (database, smtp, shop, listener) = tokio::join!(
        database(settings),
        smtp(settings),
        shop(settings),
        listener(settings)
    );
    checks.extend(database);
    checks.extend([smtp, shop, listener]);
    checks
}

/// One line per gateway key: its fingerprint, and a certificate's dates.
pub fn keys(keys: &KeySet, now: u64) -> Vec<Check> {
    let production = KeySet::paysera_production().keys()[0].fingerprint();
    keys.keys()
        .iter()
        .map(|key| gateway_key(key, key.fingerprint() == production, now))
        .collect()
}

fn gateway_key(key: &PublicKey, production: bool, now: u64) -> Check {
    let name = format!(
        "rsa-{} sha256:{}{}",
        key.bits(),
        key.fingerprint(),
        if production {
            " (Paysera's production key)"
        } else {
            ""
        }
    );
    match key.certificate() {
        None => Check::ok("gateway key", name),
        Some(validity) => certificate(&name, validity, now),
    }
}

/// A certificate's dates against `now` (unix seconds). payhook verifies with
/// the key whatever the dates say; an ending certificate is the sign that the
/// gateway's key may change, so the new one should be configured beside it.
pub fn certificate(name: &str, validity: Validity, now: u64) -> Check {
    let (from, to) = (date(validity.not_before), date(validity.not_after));
    let fix_new = "add the gateway's new certificate to PAYSERA_PUBLIC_KEY_FILE \
                   (comma-separated: both verify while the gateway changes keys)";
    if now >= validity.not_after {
        return Check::fail(
            "gateway key",
            format!("{name}: certificate expired on {to} (valid {from} to {to})"),
            "get the gateway's current certificate (or public key) and add it to \
             PAYSERA_PUBLIC_KEY_FILE",
        );
    }
    if now < validity.not_before {
        return Check::warn(
            "gateway key",
            format!("{name}: certificate not valid before {from} (valid {from} to {to})"),
            "check the machine's clock and the certificate in PAYSERA_PUBLIC_KEY_FILE",
        );
    }
    let days = (validity.not_after - now) / DAY;
    if days < EXPIRY_WARNING_DAYS {
        return Check::warn(
            "gateway key",
            format!("{name}: certificate expires on {to}, in {days} day(s) (valid from {from})"),
            fix_new,
        );
    }
    Check::ok(
        "gateway key",
        format!("{name}: certificate valid {from} to {to}"),
    )
}

fn date(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|secs| chrono::DateTime::from_timestamp(secs, 0))
        .map_or_else(|| unix.to_string(), |t| t.format("%Y-%m-%d").to_string())
}

/// The database answers within `PAYHOOK_DB_ACQUIRE_TIMEOUT` (the pool's wait
/// for its first connection) and no migration is pending; on PostgreSQL, then
/// its replication (a second line).
async fn database(settings: &Settings) -> Vec<Check> {
    let db = settings.database.clone();
    let shown = format!("{:?}", db.connection);
    if let DatabaseConfig::Sqlite { path } = &db.connection {
        // Opening it would create an empty file: that is a wrong path, not a database.
        if !path.exists() {
            return vec![Check::fail(
                "database",
                format!("no database at {}", path.display()),
                "run `payhook migrate` (or start the service, which migrates), \
                 or correct DATABASE_URL / PAYHOOK_DATA_DIR",
            )];
        }
    }
    let acquire = db.acquire_timeout;
    // The connection within the acquire time-out, then one query within the
    // statement time-out; the outer bound is the backstop.
    let bound = db.acquire_timeout + db.statement_timeout;
    let started = Instant::now();
    let work = tokio::task::spawn_blocking(move || {
        let store = Store::connect(&db.connection, 1, db.acquire_timeout, db.statement_timeout)?;
        let pending = store.pending_migrations();
        Ok::<_, crate::store::StoreError>((store, pending))
    });
    let unreachable_fix = "start the database, or correct DATABASE_URL (host, port, \
                           credentials); PAYHOOK_DB_ACQUIRE_TIMEOUT bounds this wait";
    let scrub = |text: &str| one_line(&settings.scrubber().scrub(text));
    let answered = match tokio::time::timeout(bound, work).await {
        Ok(Ok(Ok(answered))) => Ok(answered),
        Ok(Ok(Err(e))) => Err(format!(
            "{shown}: unreachable (acquire time-out {}ms, gave up after {}ms): {}",
            acquire.as_millis(),
            started.elapsed().as_millis(),
            scrub(&e.to_string())
        )),
        Ok(Err(e)) => Err(format!("{shown}: the check failed: {e}")),
        Err(_) => Err(format!("{shown}: no answer within {}ms", bound.as_millis())),
    };
    let (store, pending) = match answered {
        Ok(answered) => answered,
        Err(detail) => {
            let mut checks = vec![Check::fail("database", detail, unreachable_fix)];
            if matches!(
                settings.database.connection,
                DatabaseConfig::Postgres { .. }
            ) {
                checks.push(Check::skip(
                    "replication",
                    "not checked: the database did not answer",
                ));
            }
            return checks;
        }
    };
    // Its own statement bound, after the database's: a slow answer here is
    // not the database's line.
    let replicated = if store.has_replication() {
        Some(store.bounded(|store| store.replication()).await)
    } else {
        None
    };
    let standby = matches!(&replicated, Some(Ok(Some(state))) if state.in_recovery);
    let mut checks = vec![match pending {
        Ok(false) => Check::ok(
            "database",
            format!("{shown}: reachable, migrations current"),
        ),
        Ok(true) => Check::fail(
            "database",
            format!("{shown}: reachable, migrations pending"),
            "run `payhook migrate` (the service also migrates when it starts)",
        ),
        // Reading them first ensures their table exists: a write, refused
        // by a standby.
        Err(_) if standby => Check::fail(
            "database",
            format!("{shown}: reachable, but a standby: it takes no writes"),
            "point DATABASE_URL at the primary",
        ),
        Err(e) => Check::fail(
            "database",
            format!(
                "{shown}: reachable, but its migrations cannot be read: {}",
                scrub(&e.to_string())
            ),
            "see the database's log; payhook's role must be able to create and read \
             __diesel_schema_migrations (`payhook migrate` creates it)",
        ),
    }];
    match replicated {
        Some(Ok(Some(state))) => checks.push(replication(&state)),
        Some(Ok(None)) | None => {}
        Some(Err(e)) => checks.push(Check::warn(
            "replication",
            format!(
                "cannot read the server's replication: {}",
                scrub(&e.to_string())
            ),
            "check the database; payhook's role reads pg_is_in_recovery(), \
             current_setting() and pg_stat_replication",
        )),
    }
    checks
}

/// The server payhook writes to, and what a commit there waits for. A standby
/// fails (payhook's writes need the primary); a commit that does not wait for
/// a synchronous standby's disk warns, a lone server included: that is a valid
/// single-node setup, said plainly, not a failure.
pub fn replication(state: &Replication) -> Check {
    let shown = replication_state(state);
    if state.in_recovery {
        return Check::fail(
            "replication",
            format!(
                "{shown}: a standby (in recovery), not the primary: payhook's writes fail here"
            ),
            "point DATABASE_URL at the primary; a URL naming every server of the cluster \
             needs target_session_attrs=read-write, so that libpq keeps the one that takes writes",
        );
    }
    if state.remote_durable() {
        return Check::ok(
            "replication",
            format!("{shown}: a commit is durable on a synchronous standby too"),
        );
    }
    let commit = state.synchronous_commit.as_str();
    let names = state.synchronous_standby_names.trim();
    let synchronous = state.synchronous_standbys().count();
    let hidden = state.standbys.iter().any(|s| s.hidden());
    let waits_for_disk = REMOTE_DURABLE_COMMITS.contains(&commit);
    let set_commit = format!(
        "set synchronous_commit to {} for payhook's role or database \
         (ALTER ROLE … SET synchronous_commit = on)",
        REMOTE_DURABLE_COMMITS.join(" or ")
    );
    let mut problems: Vec<String> = Vec::new();
    let mut fixes: Vec<String> = Vec::new();
    if commit == "off" {
        problems.push(
            "synchronous_commit=off: a commit answered OK can be lost if the server crashes".into(),
        );
        fixes.push(set_commit.clone());
    }
    if synchronous == 0 && hidden {
        problems.push(
            "the standbys' sync_state is hidden from payhook's role: whether a commit waits \
             for one is unknown"
                .into(),
        );
        fixes.push(
            "grant payhook's role pg_read_all_stats (or pg_monitor), which shows \
             pg_stat_replication's state columns"
                .into(),
        );
    } else if synchronous == 0 && names.is_empty() {
        problems.push("no synchronous standby: a commit is durable on this server only".into());
        fixes.push(
            "none if one server is what you want (a valid single-node setup); for high \
             availability add a standby and name it in synchronous_standby_names"
                .into(),
        );
    } else if synchronous == 0 {
        // Any level above `local` makes a commit wait for a synchronous standby.
        let waits = waits_for_disk || commit == "remote_write";
        problems.push(format!(
            "no synchronous standby: none that synchronous_standby_names lists streams in sync{}",
            if waits {
                ", so a commit waits until one does"
            } else {
                ": a commit is durable on this server only"
            }
        ));
        fixes.push(
            "start the standby, or give it an application_name that \
             synchronous_standby_names lists"
                .into(),
        );
    } else if !waits_for_disk && commit != "off" {
        problems.push(format!(
            "synchronous_commit={commit}: a commit does not wait until the synchronous \
             standby has it on disk"
        ));
        fixes.push(set_commit);
    }
    Check::warn(
        "replication",
        format!("{shown}: {}", problems.join("; ")),
        fixes.join("; "),
    )
}

/// The server's role, the two settings and every standby with its state,
/// sync state and replay lag.
fn replication_state(state: &Replication) -> String {
    let role = if state.in_recovery {
        "standby"
    } else {
        "primary"
    };
    let standbys = if state.standbys.is_empty() {
        "no standby".to_string()
    } else {
        let listed: Vec<String> = state
            .standbys
            .iter()
            .map(|s| {
                let lag = s
                    .replay_lag_seconds
                    .map_or_else(|| "-".to_string(), |lag| format!("{lag:.3}s"));
                format!(
                    "{} ({}, {}, replay lag {lag})",
                    s.name,
                    s.state.as_deref().unwrap_or("state hidden"),
                    s.sync_state.as_deref().unwrap_or("sync_state hidden"),
                )
            })
            .collect();
        format!("standby(s) {}", listed.join(", "))
    };
    format!(
        "{role}, synchronous_commit={}, synchronous_standby_names={:?}, {standbys}",
        state.synchronous_commit, state.synchronous_standby_names
    )
}

/// The SMTP server greets us (EHLO; STARTTLS and AUTH when the URL asks).
async fn smtp(settings: &Settings) -> Check {
    let Some(email) = &settings.alerts.email else {
        return Check::skip("smtp", "alerts off (no SMTP_URL)");
    };
    let shown = redact_url(email.smtp_url.expose_secret());
    let fix = "check SMTP_URL (host, port, ?tls=, credentials) and that the server \
               accepts connections from this machine";
    let scrub = |text: &str| one_line(&settings.scrubber().scrub(text));
    let mailer = match Mailer::new(email) {
        Ok(m) => m,
        Err(e) => return Check::fail("smtp", format!("{shown}: {}", scrub(&e.to_string())), fix),
    };
    match tokio::time::timeout(PROBE_TIMEOUT, mailer.reachable()).await {
        Ok(Ok(())) => Check::ok("smtp", format!("{shown} answers EHLO")),
        Ok(Err(e)) => Check::fail("smtp", format!("{shown}: {}", scrub(&e.to_string())), fix),
        Err(_) => Check::fail(
            "smtp",
            format!("{shown}: no answer within {}s", PROBE_TIMEOUT.as_secs()),
            fix,
        ),
    }
}

/// The shop's endpoint acknowledges a signed test event, sent as every event
/// is (same client, same signature headers), within `SHOP_NOTIFY_TIMEOUT`.
async fn shop(settings: &Settings) -> Check {
    let Some(delivery) = settings.notify.delivery() else {
        return Check::skip(
            "shop notifications",
            "off (no SHOP_NOTIFY_URL): events stay in the outbox and the feed",
        );
    };
    let shown = delivery.url.to_string();
    let client = match ShopClient::new(delivery.url, delivery.secrets, delivery.timeout) {
        Ok(c) => c,
        Err(e) => {
            return Check::fail(
                "shop notifications",
                format!("{shown}: {e}"),
                "check SHOP_NOTIFY_URL",
            )
        }
    };
    // The first project as its events name it: a classic one's number, else
    // a Checkout one's client id.
    let project: serde_json::Value = match settings.gateway.projects.first() {
        Some(p) => p.id.into(),
        None => settings
            .gateway
            .checkout
            .first()
            .map_or(0.into(), |p| p.client_id.clone().into()),
    };
    let answer = client.send_test_event(project).await;
    let took = answer.elapsed.as_millis();
    match (answer.status_code, &answer.error) {
        (Some(status), _) if answer.acknowledged() => Check::ok(
            "shop notifications",
            format!(
                "{shown} acknowledged a signed {TEST_EVENT_TYPE} event (HTTP {status} in {took}ms)"
            ),
        ),
        (Some(status), _) => Check::fail(
            "shop notifications",
            format!("{shown} answered HTTP {status} to a signed {TEST_EVENT_TYPE} event"),
            "the shop's endpoint must answer 2xx to every event whose signature verifies \
             with SHOP_NOTIFY_SECRET (it may ignore payhook.test)",
        ),
        (None, error) => Check::fail(
            "shop notifications",
            format!("{shown}: {}", error.as_deref().unwrap_or("no answer")),
            "check SHOP_NOTIFY_URL, and that the shop's endpoint is up and reachable \
             from this machine",
        ),
    }
}

/// Where the public listener is reached: `PAYHOOK_PUBLIC_URL` (through
/// whatever stands in front of payhook), else `PAYHOOK_BIND` on this machine.
fn public_base(settings: &Settings) -> String {
    match &settings.http.public_url {
        Some(url) => url.clone(),
        None => {
            let bind = settings.http.bind;
            let ip = match bind.ip() {
                IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
                ip => ip,
            };
            format!("http://{}", SocketAddr::new(ip, bind.port()))
        }
    }
}

/// An unsigned test callback of `PROBE_QUERY_BYTES`: no `data`, so payhook
/// rejects it as malformed (stored as a rejection, no alert).
pub fn probe_query() -> String {
    let name = "payhook_check=";
    format!("{name}{}", "x".repeat(PROBE_QUERY_BYTES - name.len()))
}

/// A 16 KiB callback query sent to the public listener is answered by
/// payhook itself (its rejection of an unsigned callback), not by a proxy.
async fn listener(settings: &Settings) -> Check {
    let base = public_base(settings);
    let client = match reqwest::Client::builder()
        .timeout(PROBE_TIMEOUT)
        .connect_timeout(PROBE_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("payhook-check/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => return Check::fail("public listener", e.to_string(), "report this bug"),
    };
    let url = format!("{base}/paysera/callback?{}", probe_query());
    let answer = async {
        let response = client.get(url).send().await?;
        let status = response.status().as_u16();
        Ok::<_, reqwest::Error>((status, response.text().await.unwrap_or_default()))
    };
    let not_running_fix = "start payhook (`payhook serve`), or correct PAYHOOK_BIND / \
                           PAYHOOK_PUBLIC_URL";
    match tokio::time::timeout(PROBE_TIMEOUT + Duration::from_secs(1), answer).await {
        Ok(Ok((status, body))) => listener_answer(&base, status, &body),
        Ok(Err(e)) if e.is_connect() => Check::fail(
            "public listener",
            format!(
                "service not running at {base} ({})",
                describe_http_error(&e, PROBE_TIMEOUT)
            ),
            not_running_fix,
        ),
        Ok(Err(e)) => Check::fail(
            "public listener",
            format!("{base}: {}", describe_http_error(&e, PROBE_TIMEOUT)),
            not_running_fix,
        ),
        Err(_) => Check::fail(
            "public listener",
            format!("{base}: no answer within {}s", PROBE_TIMEOUT.as_secs()),
            not_running_fix,
        ),
    }
}

/// Who answered the probe: payhook rejects it with its own status and body.
pub fn listener_answer(base: &str, status: u16, body: &str) -> Check {
    let own_status = status_of(AnswerClass::Domain(Answer::Malformed));
    let own_body = rejection_text(&CallbackError::MissingData.to_string());
    let kib = PROBE_QUERY_BYTES / 1024;
    if status == own_status && body.trim() == own_body {
        return Check::ok(
            "public listener",
            format!(
                "{base} answers a {kib} KiB callback query itself \
                 (HTTP {status} {own_body:?}: its rejection of an unsigned test callback)"
            ),
        );
    }
    if matches!(status, 413 | 414 | 431) {
        return Check::fail(
            "public listener",
            format!(
                "{base} answered HTTP {status} to a {kib} KiB callback query: a proxy's \
                 request-size limit, not payhook"
            ),
            format!(
                "raise the proxy's limit on the request line and headers to at least \
                 {kib} KiB (nginx: large_client_header_buffers 4 32k), or callbacks \
                 with long queries never reach payhook"
            ),
        );
    }
    Check::fail(
        "public listener",
        format!(
            "{base} answered HTTP {status} ({:?}), not payhook's rejection of an unsigned \
             test callback",
            body.chars().take(60).collect::<String>()
        ),
        "PAYHOOK_PUBLIC_URL (or PAYHOOK_BIND) must lead to payhook's public listener, \
         with /paysera/callback passed through unchanged",
    )
}

/// Library messages (libpq's among them) can span lines: one line each.
fn one_line(text: &str) -> String {
    text.split(['\r', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_750_000_000;

    fn validity(from_days: i64, to_days: i64) -> Validity {
        let at = |days: i64| (NOW as i64 + days * DAY as i64) as u64;
        Validity {
            not_before: at(from_days),
            not_after: at(to_days),
        }
    }

    #[test]
    fn certificate_dates_pass_warn_or_fail() {
        let far = certificate("k", validity(-300, 400), NOW);
        assert_eq!(far.status, CheckStatus::Ok, "{}", far.line());
        let soon = certificate("k", validity(-300, 30), NOW);
        assert_eq!(soon.status, CheckStatus::Warn);
        assert!(soon.line().contains("in 30 day(s)"), "{}", soon.line());
        assert!(soon.line().contains("PAYSERA_PUBLIC_KEY_FILE"));
        let edge = certificate("k", validity(-300, 60), NOW);
        assert_eq!(
            edge.status,
            CheckStatus::Ok,
            "60 days left: {}",
            edge.line()
        );
        let expired = certificate("k", validity(-300, -1), NOW);
        assert_eq!(expired.status, CheckStatus::Fail);
        assert!(expired.line().contains("expired on"), "{}", expired.line());
        assert!(expired
            .line()
            .contains("— fix: get the gateway's current certificate"));
        let early = certificate("k", validity(2, 400), NOW);
        assert_eq!(early.status, CheckStatus::Warn);
    }

    #[test]
    fn a_bare_key_passes_with_its_fingerprint() {
        let checks = keys(&KeySet::paysera_production(), NOW);
        assert_eq!(checks.len(), 1);
        assert_eq!(checks[0].status, CheckStatus::Ok);
        assert_eq!(
            checks[0].line(),
            "✓ gateway key: rsa-1024 sha256:457d34b44ac72ee2331c491e5d25ba9ed2839a4409b67c4ea91d02abea73c330 (Paysera's production key)"
        );
    }

    #[test]
    fn only_payhooks_own_rejection_passes_the_listener_check() {
        let base = "http://127.0.0.1:8080";
        let own = listener_answer(base, 400, "rejected: missing data");
        assert_eq!(own.status, CheckStatus::Ok, "{}", own.line());
        for status in [413, 414, 431] {
            let proxy = listener_answer(base, status, "<html>Request-URI Too Large</html>");
            assert_eq!(proxy.status, CheckStatus::Fail);
            assert!(proxy.line().contains("a proxy's request-size limit"));
            assert!(proxy.line().contains("large_client_header_buffers"));
        }
        let other = listener_answer(base, 400, "Bad Request");
        assert_eq!(other.status, CheckStatus::Fail);
        assert!(listener_answer(base, 404, "").line().contains("HTTP 404"));
    }

    fn server(commit: &str, names: &str, standbys: &[(&str, Option<&str>)]) -> Replication {
        Replication {
            in_recovery: false,
            synchronous_commit: commit.into(),
            synchronous_standby_names: names.into(),
            standbys: standbys
                .iter()
                .map(|(name, sync_state)| crate::store::Standby {
                    name: name.to_string(),
                    state: sync_state.map(|_| "streaming".into()),
                    sync_state: sync_state.map(Into::into),
                    replay_lag_seconds: sync_state.map(|_| 0.0015),
                })
                .collect(),
        }
    }

    #[test]
    fn a_synchronous_standby_and_a_waiting_commit_pass() {
        for commit in ["on", "remote_apply"] {
            let check = replication(&server(commit, "s1", &[("s1", Some("sync"))]));
            assert_eq!(check.status, CheckStatus::Ok, "{}", check.line());
            assert_eq!(
                check.line(),
                format!(
                    "✓ replication: primary, synchronous_commit={commit}, \
                     synchronous_standby_names=\"s1\", standby(s) s1 (streaming, sync, \
                     replay lag 0.002s): a commit is durable on a synchronous standby too"
                )
            );
        }
        let quorum = server(
            "on",
            "ANY 1 (a, b)",
            &[("a", Some("quorum")), ("b", Some("quorum"))],
        );
        assert_eq!(replication(&quorum).status, CheckStatus::Ok);
    }

    #[test]
    fn a_lone_server_is_a_single_node_setup_said_plainly() {
        let check = replication(&server("on", "", &[]));
        assert_eq!(check.status, CheckStatus::Warn, "a warning, no failure");
        assert_eq!(
            check.line(),
            "! replication: primary, synchronous_commit=on, synchronous_standby_names=\"\", \
             no standby: no synchronous standby: a commit is durable on this server only \
             — fix: none if one server is what you want (a valid single-node setup); for high \
             availability add a standby and name it in synchronous_standby_names"
        );
        // An asynchronous standby makes no commit remote-durable either.
        let check = replication(&server("on", "", &[("s1", Some("async"))]));
        assert_eq!(check.status, CheckStatus::Warn);
        assert!(check
            .detail
            .contains("s1 (streaming, async, replay lag 0.002s)"));
        assert!(check.detail.contains("durable on this server only"));
    }

    #[test]
    fn commits_that_do_not_wait_for_the_standbys_disk_warn() {
        for commit in ["local", "remote_write"] {
            let check = replication(&server(commit, "s1", &[("s1", Some("sync"))]));
            assert_eq!(check.status, CheckStatus::Warn, "{}", check.line());
            assert!(
                check.detail.contains(&format!(
                    "synchronous_commit={commit}: a commit does not wait"
                )),
                "{}",
                check.line()
            );
            assert!(check
                .line()
                .contains("— fix: set synchronous_commit to on or remote_apply"));
        }
        let off = replication(&server("off", "", &[]));
        assert_eq!(off.status, CheckStatus::Warn);
        assert!(
            off.detail.contains("can be lost if the server crashes"),
            "{}",
            off.line()
        );
        assert!(
            off.detail.contains("durable on this server only"),
            "{}",
            off.line()
        );
    }

    #[test]
    fn a_named_standby_that_is_not_in_sync_warns() {
        let gone = replication(&server("on", "s1", &[]));
        assert_eq!(gone.status, CheckStatus::Warn);
        assert!(
            gone.detail.contains("a commit waits until one does"),
            "{}",
            gone.line()
        );
        let behind = replication(&server("on", "s1", &[("s1", Some("potential"))]));
        assert_eq!(behind.status, CheckStatus::Warn);
        let hidden = replication(&server("on", "s1", &[("s1", None)]));
        assert_eq!(hidden.status, CheckStatus::Warn);
        assert!(
            hidden
                .line()
                .contains("s1 (state hidden, sync_state hidden, replay lag -)"),
            "{}",
            hidden.line()
        );
        assert!(hidden.line().contains("pg_monitor"), "{}", hidden.line());
    }

    #[test]
    fn a_standby_fails_whatever_else_it_says() {
        let check = replication(&Replication {
            in_recovery: true,
            ..server("on", "", &[])
        });
        assert_eq!(check.status, CheckStatus::Fail);
        assert!(
            check.line().starts_with(
                "✗ replication: standby, synchronous_commit=on, synchronous_standby_names=\"\", \
                 no standby: a standby (in recovery), not the primary"
            ),
            "{}",
            check.line()
        );
        assert!(check
            .line()
            .contains("— fix: point DATABASE_URL at the primary"));
    }

    #[test]
    fn the_probe_is_sixteen_kib_without_data() {
        let query = probe_query();
        assert_eq!(query.len(), 16 * 1024);
        use crate::paysera::{Policy, Project, RequestParams, Verifier};
        let verifier = Verifier::new(
            vec![Project::new(1, None)],
            KeySet::paysera_production(),
            Policy::default(),
        )
        .unwrap();
        let rejected = verifier
            .verify(&RequestParams::parse(query.as_bytes(), b""))
            .unwrap_err();
        // Malformed, not a signature failure: running `check` raises no alert.
        assert_eq!(rejected, CallbackError::MissingData);
        assert_eq!(rejected.class(), crate::paysera::RejectClass::Malformed);
    }
}
