//! `payhook check`: a self-diagnosis with the service's configuration, one
//! line per check: ✓ passed, ! a warning, ✗ failed (with the fix), – skipped.
//!
//! Configuration first (read and validated as `serve` does); then the gateway's
//! keys, and at once the database, the SMTP server, the shop's endpoint and the
//! public listener. Every check that waits on something is bounded in time.
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
use crate::store::{redact_url, DatabaseConfig, Store};

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
    checks.extend([database, smtp, shop, listener]);
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
/// for its first connection) and no migration is pending.
async fn database(settings: &Settings) -> Check {
    let db = settings.database.clone();
    let shown = format!("{:?}", db.connection);
    if let DatabaseConfig::Sqlite { path } = &db.connection {
        // Opening it would create an empty file: that is a wrong path, not a database.
        if !path.exists() {
            return Check::fail(
                "database",
                format!("no database at {}", path.display()),
                "run `payhook migrate` (or start the service, which migrates), \
                 or correct DATABASE_URL / PAYHOOK_DATA_DIR",
            );
        }
    }
    let acquire = db.acquire_timeout;
    // The connection within the acquire time-out, then one query within the
    // statement time-out; the outer bound is the backstop.
    let bound = db.acquire_timeout + db.statement_timeout;
    let started = Instant::now();
    let work = tokio::task::spawn_blocking(move || {
        let store = Store::connect(&db.connection, 1, db.acquire_timeout, db.statement_timeout)?;
        store.pending_migrations()
    });
    let unreachable_fix = "start the database, or correct DATABASE_URL (host, port, \
                           credentials); PAYHOOK_DB_ACQUIRE_TIMEOUT bounds this wait";
    let scrub = |text: &str| one_line(&settings.scrubber().scrub(text));
    match tokio::time::timeout(bound, work).await {
        Ok(Ok(Ok(false))) => Check::ok(
            "database",
            format!("{shown}: reachable, migrations current"),
        ),
        Ok(Ok(Ok(true))) => Check::fail(
            "database",
            format!("{shown}: reachable, migrations pending"),
            "run `payhook migrate` (the service also migrates when it starts)",
        ),
        Ok(Ok(Err(e))) => Check::fail(
            "database",
            format!(
                "{shown}: unreachable (acquire time-out {}ms, gave up after {}ms): {}",
                acquire.as_millis(),
                started.elapsed().as_millis(),
                scrub(&e.to_string())
            ),
            unreachable_fix,
        ),
        Ok(Err(e)) => Check::fail(
            "database",
            format!("{shown}: the check failed: {e}"),
            unreachable_fix,
        ),
        Err(_) => Check::fail(
            "database",
            format!("{shown}: no answer within {}ms", bound.as_millis()),
            unreachable_fix,
        ),
    }
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
