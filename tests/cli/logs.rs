//! The logs of a whole scenario, captured from the real binary: one structured
//! line per callback, and no secret or buyer data anywhere.

use crate::support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::gateway::{
    checkout_paid_with_payer, paid_fields, sign, with, CallbackForm, BUYER_DATA, CHECKOUT_PAYER,
    PASSWORD,
};
use support::service::Service;
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
    // A quiet period on purpose: background work (alerts over SMTP with its
    // credentials) gets time to log; no secret in the logs is an absence,
    // which cannot be polled for.
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

const CLIENT_ID: &str = "log-test-client";
const CHECKOUT_SECRET: &str = "log-test-checkout-secret";

/// `curl` with the admin token, answering the HTTP status; `headers` and a
/// `body` as given.
fn curl(method: &str, url: &str, headers: &[String], body: Option<&str>) -> String {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method]);
    cmd.args(["-H", &format!("Authorization: Bearer {ADMIN_TOKEN}")]);
    for header in headers {
        cmd.args(["-H", header]);
    }
    if let Some(body) = body {
        cmd.args(["--data-binary", body]);
    }
    let out = cmd.arg(url).output().expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The service's JSON log lines, once `callback` and `webhook` lines have
/// all been written (polled, with a deadline).
fn log_lines(
    service: &Service,
    callbacks: usize,
    webhooks: usize,
) -> (String, Vec<serde_json::Value>) {
    let started = Instant::now();
    loop {
        let logs = service.stderr();
        let lines: Vec<serde_json::Value> = logs
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let count = |m: &str| lines.iter().filter(|l| l["message"] == m).count();
        if count("callback") >= callbacks && count("webhook") >= webhooks {
            return (logs, lines);
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the callback and webhook lines were not logged:\n{logs}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A paid callback carrying every personal field, a rejected copy
/// of it and a Checkout snapshot with the payer's details. Without
/// `PAYHOOK_LOG_PII` none of the buyer's values (nor the base64 `data` that
/// holds them) is in any log line at any level; with it, the callback line
/// carries `p_email`, `name` and `surename` as documented, and nothing else
/// of the buyer's.
#[test]
fn buyer_data_is_logged_only_as_documented() {
    let vectors = support::vectors::vectors_dir().join("current");
    let mut fields = paid_fields("PII-1", "1250", "EUR");
    for (name, value) in BUYER_DATA {
        fields = with(fields, name, value);
    }
    let paid = sign(&fields, CallbackForm::Ss2);
    let data = paid
        .split('&')
        .find_map(|p| p.strip_prefix("data="))
        .unwrap()
        .to_string();
    let webhook = payhook::sim::CheckoutSigner::new(CHECKOUT_SECRET)
        .sign(checkout_paid_with_payer("PII-2", 2500));
    // Two-letter codes (countries) could be anywhere: the rest are unique.
    let personal: Vec<&str> = BUYER_DATA
        .iter()
        .chain(CHECKOUT_PAYER)
        .map(|(_, v)| *v)
        .filter(|v| v.len() > 2)
        .collect();

    for pii in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (port, admin) = (free_port(), free_port());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_payhook"));
        cmd.env_clear()
            .env("PAYSERA_PROJECT_ID", "123")
            .env("PAYSERA_PROJECT_PASSWORD", PASSWORD)
            .env("PAYSERA_PUBLIC_KEY_FILE", vectors.join("public.pem"))
            .env("PAYSERA_CHECKOUT_CLIENT_ID", CLIENT_ID)
            .env("PAYSERA_CHECKOUT_SECRET", CHECKOUT_SECRET)
            .env("PAYHOOK_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("PAYHOOK_DATA_DIR", dir.path())
            .env("PAYHOOK_BIND", format!("127.0.0.1:{port}"))
            .env("PAYHOOK_ADMIN_BIND", format!("127.0.0.1:{admin}"))
            .env("PAYHOOK_LOG_FORMAT", "json")
            .env("PAYHOOK_LOG_PII", pii.to_string())
            .env("RUST_LOG", "debug");
        let service = Service::start(&mut cmd, admin, Duration::from_secs(30));
        let (base, admin_base) = (
            format!("http://127.0.0.1:{port}"),
            format!("http://127.0.0.1:{admin}"),
        );
        let json = ["Content-Type: application/json".to_string()];
        for (orderid, body) in [
            ("PII-1", r#"{"amount":1250,"currency":"EUR"}"#.to_string()),
            (
                "PII-2",
                format!(r#"{{"amount":2500,"currency":"EUR","project_id":"{CLIENT_ID}"}}"#),
            ),
        ] {
            let url = format!("{admin_base}/api/v1/orders/{orderid}");
            assert_eq!(curl("PUT", &url, &json, Some(&body)), "201");
        }
        let callback = |query: &str| {
            curl(
                "GET",
                &format!("{base}/paysera/callback?{query}"),
                &[],
                None,
            )
        };
        assert_eq!(callback(&paid), "200");
        assert_eq!(callback(&format!("{paid}&ss3=AAAA")), "400");
        let headers: Vec<String> = webhook
            .headers
            .iter()
            .map(|(name, value)| format!("{name}: {value}"))
            .collect();
        let url = format!("{base}/paysera/checkout/webhook");
        assert_eq!(
            curl(
                "POST",
                &url,
                &headers,
                Some(std::str::from_utf8(&webhook.body).unwrap())
            ),
            "200"
        );

        let (logs, lines) = log_lines(&service, 2, 1);
        let logged = |value: &str| logs.contains(value);
        assert!(
            !logged(&data[..40]),
            "the data parameter was logged:\n{logs}"
        );
        let line = lines
            .iter()
            .find(|l| l["message"] == "callback" && l["outcome"] == "fulfilled")
            .expect("the fulfilled callback's line");
        let documented = [
            ("p_email", "pii.buyer@example.com"),
            ("name", "Pii-Jonas"),
            ("surename", "Pii-Jonaitis"),
        ];
        for (field, value) in documented {
            let expected = if pii { value } else { "" };
            assert_eq!(line[field], expected, "{field} with PII {pii}: {line}");
        }
        for value in &personal {
            let allowed = pii && documented.iter().any(|(_, v)| v == value);
            let times = logs.matches(value).count();
            assert_eq!(
                times,
                usize::from(allowed),
                "{value:?} logged {times} time(s) with PII {pii}:\n{logs}"
            );
        }
    }
}
