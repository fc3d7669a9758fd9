//! The logs of a whole scenario, captured from the real binary: one structured
//! line per callback, and no secret or buyer data anywhere.

#[path = "support/mod.rs"]
mod support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::gateway::{paid_fields, sign, with, CallbackForm, PASSWORD};
use support::{free_port, smtp};

const ADMIN_TOKEN: &str = "log-test-admin-token-9876543210";
const SMTP_PASSWORD: &str = "smtp-secret-pw-4242";

#[test]
fn no_secret_reaches_the_logs() {
    let vectors = support::vectors::vectors_dir().join("current");
    let smtp = smtp::SmtpSink::start();
    let dir = tempfile::tempdir().unwrap();
    let (port, admin) = (free_port(), free_port());
    let mut service = Command::new(env!("CARGO_BIN_EXE_payhook"))
        .env_clear()
        .env("PAYSERA_PROJECT_ID", "123")
        .env("PAYSERA_PROJECT_PASSWORD", PASSWORD)
        .env("PAYSERA_PUBLIC_KEY_FILE", vectors.join("public.pem"))
        .env("PAYHOOK_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("PAYHOOK_DATA_DIR", dir.path())
        .env("PAYHOOK_BIND", format!("127.0.0.1:{port}"))
        .env("PAYHOOK_ADMIN_BIND", format!("127.0.0.1:{admin}"))
        .env("PAYHOOK_LOG_FORMAT", "json")
        .env(
            "SMTP_URL",
            format!("smtp://alerts:{SMTP_PASSWORD}@127.0.0.1:{}", smtp.port),
        )
        .env("ALERT_EMAIL_FROM", "payhook@shop.example")
        .env("ALERT_EMAIL_TO", "ops@shop.example")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !support::listening(admin) {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "service did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut fields = paid_fields("L-1", "1250", "EUR");
    for (name, value) in [
        ("name", "Jonas"),
        ("surename", "Jonaitis"),
        ("p_email", "buyer@example.com"),
    ] {
        fields = with(fields, name, value);
    }
    let paid = sign(&fields, CallbackForm::AllSignatures);
    let param = |name: &str| {
        paid.split('&')
            .find_map(|p| p.strip_prefix(&format!("{name}=")))
            .unwrap()
            .to_string()
    };
    let (data, ss1, ss2) = (param("data"), param("ss1"), param("ss2"));

    let http = |method: &str, url: String, body: Option<&str>| {
        let mut args = vec![
            "-s".to_string(),
            "-o".into(),
            "/dev/null".into(),
            "-w".into(),
            "%{http_code}".into(),
        ];
        args.extend([
            "-X".into(),
            method.into(),
            "-H".into(),
            format!("Authorization: Bearer {ADMIN_TOKEN}"),
        ]);
        if let Some(b) = body {
            args.extend([
                "-H".into(),
                "Content-Type: application/json".into(),
                "-d".into(),
                b.into(),
            ]);
        }
        args.push(url);
        let out = Command::new("curl").args(&args).output().expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let base = format!("http://127.0.0.1:{port}");
    let admin_base = format!("http://127.0.0.1:{admin}");
    assert_eq!(
        http(
            "PUT",
            format!("{admin_base}/api/v1/orders/L-1"),
            Some(r#"{"amount":1250,"currency":"EUR"}"#)
        ),
        "201"
    );
    assert_eq!(
        http("GET", format!("{base}/paysera/callback?{paid}"), None),
        "200"
    );
    assert_eq!(
        http(
            "GET",
            format!(
                "{base}/paysera/callback?{}",
                paid.replacen("data=c", "data=d", 1)
            ),
            None
        ),
        "400"
    );
    let unknown = support::gateway::paid("L-404", "1");
    assert_eq!(
        http("GET", format!("{base}/paysera/callback?{unknown}"), None),
        "409"
    );
    assert_eq!(
        http("GET", format!("{admin_base}/api/v1/orders/L-1"), None),
        "200"
    );
    assert_eq!(
        http("GET", format!("{admin_base}/api/v1/callbacks"), None),
        "200"
    );
    std::thread::sleep(Duration::from_millis(1500));

    let _ = service.kill();
    let _ = service.wait();
    let mut logs = String::new();
    service
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();

    for secret in [
        PASSWORD,
        ADMIN_TOKEN,
        SMTP_PASSWORD,
        &ss1,
        &ss2[..40],
        &data[..40],
        "buyer@example.com",
        "Jonaitis",
    ] {
        assert!(
            !logs.contains(secret),
            "{secret:?} leaked into the logs:\n{logs}"
        );
    }
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|l: &serde_json::Value| l["message"] == "callback")
        .collect();
    let fulfilled = lines
        .iter()
        .find(|l| l["outcome"] == "fulfilled")
        .expect("a fulfilled line");
    assert_eq!(fulfilled["orderid"], "L-1");
    assert_eq!(fulfilled["project"], "123");
    assert!(fulfilled["request_id"]
        .as_str()
        .is_some_and(|r| r.len() >= 8));
    assert!(fulfilled["duration_ms"].as_f64().is_some());
    let rejected = lines
        .iter()
        .find(|l| l["outcome"] == "rejected")
        .expect("a rejected line");
    assert_eq!(rejected["reason"], "ss3 signature does not verify");
    assert!(lines
        .iter()
        .any(|l| l["outcome"] == "unknown_order" && l["orderid"] == "L-404"));
}
