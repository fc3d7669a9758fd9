//! `payhook check` as the real binary, configured as the service is
//! (environment only): a database that is down or silent is reported within
//! the acquire time-out; against a running service (SQLite), a real SMTP
//! server and a real HTTP receiver every check passes; a certificate near its
//! end warns; a proxy's 413 in front of the public listener fails by name.

use crate::support;

#[allow(dead_code)]
#[path = "../api/notify/receiver.rs"]
mod receiver;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::{Duration, Instant};

use receiver::{Receiver, Reply};
use standardwebhooks::Webhook;
use support::cli::{payhook, run};
use support::service::Service;
use support::smtp::SmtpSink;
use support::{free_port, vectors::vectors_dir};

/// The Standard Webhooks libraries' own example secret.
const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// `payhook check` with `cmd`'s configuration: exit code, stdout, stderr,
/// and how long it took.
async fn check(cmd: Command) -> (i32, String, String, Duration) {
    check_with(cmd, &[]).await
}

async fn check_with(
    cmd: Command,
    args: &'static [&'static str],
) -> (i32, String, String, Duration) {
    tokio::task::spawn_blocking(move || {
        let mut cmd = cmd;
        let started = Instant::now();
        let (code, out, err) = run(cmd.arg("check").args(args));
        (code, out, err, started.elapsed())
    })
    .await
    .unwrap()
}

fn line<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{out}"))
}

#[tokio::test]
async fn a_database_that_is_down_fails_within_the_acquire_timeout() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on the first port; the second accepts and never answers
    // (a stalled server: libpq alone would wait for its connect_timeout).
    let refused = free_port();
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let _held = std::thread::spawn(move || {
        let held: Vec<TcpStream> = silent.incoming().map_while(Result::ok).collect();
        drop(held);
    });
    for port in [refused, silent_port] {
        let url = format!("postgres://payhook:hunter2@127.0.0.1:{port}/payhook");
        let mut cmd = payhook(dir.path(), &url);
        cmd.env("PAYHOOK_DB_ACQUIRE_TIMEOUT", "1s")
            .env("PAYHOOK_BIND", format!("127.0.0.1:{}", free_port()));
        let (code, out, err, took) = check(cmd).await;
        assert_eq!(code, 1, "{out}{err}");
        assert!(
            took < Duration::from_secs(1) + Duration::from_secs(3),
            "port {port}: took {took:?}\n{out}"
        );
        let database = line(&out, "✗ database: ");
        for words in [
            "postgres (postgres://payhook:***@127.0.0.1",
            "unreachable",
            "acquire time-out 1000ms",
            "— fix: start the database, or correct DATABASE_URL",
        ] {
            assert!(database.contains(words), "{words:?} in {database}");
        }
        assert!(!out.contains("hunter2"), "{out}");
        assert!(out.lines().count() >= 6, "one line per check:\n{out}");
        line(&out, "✓ configuration: project(s) 123");
        line(&out, "✓ gateway key: rsa-2048 sha256:");
        line(&out, "– smtp: alerts off (no SMTP_URL)");
        line(&out, "– shop notifications: off (no SHOP_NOTIFY_URL)");
        assert!(
            line(&out, "✗ public listener: ").contains("service not running at http://127.0.0.1:"),
            "{out}"
        );
    }
}

#[test]
fn a_configuration_error_is_one_line_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = payhook(dir.path(), "sqlite:");
    cmd.env("PAYHOOK_ORDER_CHECK", "maybe");
    let (code, out, err) = run(cmd.arg("check"));
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.starts_with("✗ configuration: PAYHOOK_ORDER_CHECK: ")
            && out.contains("— fix: correct PAYHOOK_ORDER_CHECK"),
        "{out}"
    );
    let (code, out, _) = run(cmd.args(["--json"]));
    assert_eq!(code, 2);
    let json: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["checks"][0]["check"], "configuration");
    assert_eq!(json["checks"][0]["status"], "fail");
}

/// A migrated SQLite database, a real SMTP server and the shop's endpoint.
struct Deployment {
    dir: tempfile::TempDir,
    url: String,
    /// The public listener's loopback port.
    port: u16,
    smtp: SmtpSink,
    shop: Receiver,
}

impl Deployment {
    async fn new() -> Deployment {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("payhook.sqlite3").display());
        // Answers 204 only to a payhook.test event signed with SECRET.
        let shop = Receiver::start(|request, _| {
            let signed = Webhook::new(SECRET)
                .unwrap()
                .verify(&request.body, &request.headers)
                .is_ok();
            if signed && request.json()["type"] == "payhook.test" {
                Reply::Status(204)
            } else {
                Reply::Status(400)
            }
        })
        .await;
        let deployment = Deployment {
            port: free_port(),
            dir,
            url,
            smtp: SmtpSink::start(),
            shop,
        };
        let (code, out, err) = run(deployment.payhook().arg("migrate"));
        assert_eq!(code, 0, "migrate: {out}{err}");
        deployment
    }

    /// The service's configuration, for `serve` and `check` alike.
    fn payhook(&self) -> Command {
        let mut cmd = payhook(self.dir.path(), &self.url);
        cmd.env("PAYHOOK_BIND", format!("127.0.0.1:{}", self.port))
            .env("PAYHOOK_ADMIN_BIND", format!("127.0.0.1:{}", free_port()))
            .env("SMTP_URL", self.smtp.url())
            .env("ALERT_EMAIL_FROM", "payhook@example.com")
            .env("ALERT_EMAIL_TO", "ops@example.com")
            .env("SHOP_NOTIFY_URL", self.shop.url())
            .env("SHOP_NOTIFY_SECRET", SECRET);
        cmd
    }

    fn serve(&self) -> Service {
        Service::start(&mut self.payhook(), self.port, Duration::from_secs(30))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_check_passes_against_a_running_service() {
    let deployment = Deployment::new().await;
    let _service = deployment.serve();
    let (code, out, err, _) = check(deployment.payhook()).await;
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert!(lines.iter().all(|l| l.starts_with("✓ ")), "{out}");
    line(&out, "✓ database: sqlite (");
    line(
        &out,
        &format!("✓ smtp: {} answers EHLO", deployment.smtp.url()),
    );
    assert!(
        line(&out, "✓ shop notifications: ")
            .contains("acknowledged a signed payhook.test event (HTTP 204"),
        "{out}"
    );
    assert!(
        line(&out, "✓ public listener: ").contains(&format!(
            "http://127.0.0.1:{} answers a 16 KiB callback query itself",
            deployment.port
        )),
        "{out}"
    );
    // The test event as the shop got it: signed, the body of every event.
    let received = deployment.shop.received();
    assert_eq!(received.len(), 1);
    let event = received[0].json();
    assert_eq!(received[0].id(), "0");
    assert_eq!(event["type"], "payhook.test");
    assert_eq!(
        (event["id"].as_i64(), event["test"].as_bool()),
        (Some(0), Some(true))
    );
    assert_eq!(event["project_id"], 123);
    // EHLO only: no e-mail.
    assert!(deployment.smtp.messages().is_empty());

    let (code, out, _, _) = check_with(deployment.payhook(), &["--json"]).await;
    assert_eq!(code, 0, "{out}");
    let json: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(json["ok"], true);
    let names: Vec<&str> = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "configuration",
            "gateway key",
            "database",
            "smtp",
            "shop notifications",
            "public listener"
        ]
    );
}

/// A certificate for the shared test key, valid from `from` to `to` days
/// from now, written as PEM.
fn certificate(dir: &Path, name: &str, from: i64, to: i64) -> PathBuf {
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::Keypair;
    use x509_cert::builder::profile::cabf::Root;
    use x509_cert::builder::{Builder, CertificateBuilder};
    use x509_cert::der::EncodePem;
    use x509_cert::name::Name;
    use x509_cert::serial_number::SerialNumber;
    use x509_cert::spki::SubjectPublicKeyInfoOwned;
    use x509_cert::time::{Time, Validity};

    let pem = std::fs::read_to_string(vectors_dir().join("current/private.pem")).unwrap();
    let key = rsa::PrivateKey::from_pkcs8_pem(&pem).unwrap();
    let signer = rsa::pkcs1v15::SigningKey::<sha2::Sha256>::new(key);
    let at = |days: i64| {
        let secs = chrono::Utc::now().timestamp() + days * 86_400;
        Time::try_from(std::time::UNIX_EPOCH + Duration::from_secs(secs as u64)).unwrap()
    };
    let validity = Validity::new(at(from), at(to));
    let spki = SubjectPublicKeyInfoOwned::from_key(&signer.verifying_key()).unwrap();
    let subject = Name::from_str("CN=test gateway,O=payhook tests,C=LT").unwrap();
    let builder = CertificateBuilder::new(
        Root::new(false, subject).unwrap(),
        SerialNumber::from(1u32),
        validity,
        spki,
    )
    .unwrap();
    let cert = builder
        .build::<_, rsa::pkcs1v15::Signature>(&signer)
        .unwrap()
        .to_pem(Default::default())
        .unwrap();
    let path = dir.join(name);
    std::fs::write(&path, cert).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_near_its_end_warns_and_an_expired_one_fails() {
    let deployment = Deployment::new().await;
    let _service = deployment.serve();
    let soon = certificate(deployment.dir.path(), "soon.pem", -300, 30);
    let mut cmd = deployment.payhook();
    cmd.env("PAYSERA_PUBLIC_KEY_FILE", &soon);
    let (code, out, err, _) = check(cmd).await;
    assert_eq!(code, 0, "a warning is no failure: {out}{err}");
    let key = line(&out, "! gateway key: rsa-2048 sha256:");
    assert!(key.contains("certificate expires on "), "{key}");
    assert!(
        key.contains("in 29 day(s)") || key.contains("in 30 day(s)"),
        "{key}"
    );
    assert!(
        key.contains("— fix: add the gateway's new certificate"),
        "{key}"
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("✓ ")).count(),
        5,
        "{out}"
    );

    let expired = certificate(deployment.dir.path(), "expired.pem", -300, -1);
    let mut cmd = deployment.payhook();
    cmd.env("PAYSERA_PUBLIC_KEY_FILE", &expired);
    let (code, out, _, _) = check(cmd).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        line(&out, "✗ gateway key: ").contains("certificate expired on"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxys_413_in_front_of_the_listener_fails_by_name() {
    let deployment = Deployment::new().await;
    let _service = deployment.serve();
    let proxy = Receiver::always(Reply::Status(413)).await;
    let mut cmd = deployment.payhook();
    cmd.env("PAYHOOK_PUBLIC_URL", format!("http://{}", proxy.addr));
    let (code, out, err, _) = check(cmd).await;
    assert_eq!(code, 1, "{out}{err}");
    let listener = line(&out, "✗ public listener: ");
    for words in [
        format!("http://{} answered HTTP 413", proxy.addr),
        "16 KiB callback query: a proxy's request-size limit, not payhook".to_string(),
        "— fix: raise the proxy's limit".to_string(),
    ] {
        assert!(listener.contains(&words), "{words:?} in {listener}");
    }
    // The proxy got the whole 16 KiB query.
    let got = proxy.received();
    assert_eq!(got.len(), 1);
    assert!(
        got[0].request_line.len() > 16 * 1024,
        "{}",
        got[0].request_line.len()
    );
    // Everything else still passes: the one failure is the proxy's.
    assert_eq!(
        out.lines().filter(|l| l.starts_with("✓ ")).count(),
        5,
        "{out}"
    );
}
