//! Shop notifications as the real binary logs them: start-up says whether
//! delivery is on, failed attempts are logged and stored, and neither the
//! signing secrets nor the credentials or token in SHOP_NOTIFY_URL appear in
//! the logs or in the attempt history.

use crate::support;

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use payhook::notify::WebhookSecret;
use support::free_port;
use support::gateway::CallbackForm;

const PASSWORD: &str = "pass-1f2e3d";
const ADMIN_TOKEN: &str = "notify-log-admin-token-0123456789";

fn vectors() -> std::path::PathBuf {
    support::vectors::vectors_dir().join("current")
}

struct Service {
    child: Child,
    public: u16,
    admin: u16,
}

impl Service {
    fn start(dir: &Path, notify: &[(&str, &str)]) -> Service {
        let (public, admin) = (free_port(), free_port());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_payhook"));
        cmd.env_clear()
            .env("PAYSERA_PROJECT_ID", "123")
            .env("PAYSERA_PROJECT_PASSWORD", PASSWORD)
            .env("PAYSERA_PUBLIC_KEY_FILE", vectors().join("public.pem"))
            .env("PAYHOOK_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("PAYHOOK_DATA_DIR", dir)
            .env("PAYHOOK_BIND", format!("127.0.0.1:{public}"))
            .env("PAYHOOK_ADMIN_BIND", format!("127.0.0.1:{admin}"))
            .env("PAYHOOK_ORDER_CHECK", "none")
            .env("PAYHOOK_LOG_FORMAT", "json")
            .env("RUST_LOG", "debug")
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in notify {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let started = Instant::now();
        while !support::listening(admin) {
            assert!(started.elapsed() < Duration::from_secs(30), "no start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Service {
            child,
            public,
            admin,
        }
    }

    /// Stops the service and returns its JSON log lines.
    fn logs(mut self) -> (String, Vec<serde_json::Value>) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut text = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        let lines = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        (text, lines)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_logs_say_what_happened_and_hold_no_secret() {
    let signer = support::gateway::signer(PASSWORD);
    let (secret, previous) = (WebhookSecret::generate(), WebhookSecret::generate());
    // Nothing listens there: every attempt fails to connect.
    let closed = free_port();
    let url =
        format!("http://hookuser:hookpass-7f7f@127.0.0.1:{closed}/hooks?token=shoptoken-5150");
    let dir = tempfile::tempdir().unwrap();
    let service = Service::start(
        dir.path(),
        &[
            ("SHOP_NOTIFY_URL", &url),
            ("SHOP_NOTIFY_SECRET", &secret),
            ("SHOP_NOTIFY_SECRET_PREVIOUS", &previous),
        ],
    );
    let client = reqwest::Client::new();
    let paid = signer.callback_query(
        &[
            ("projectid", "123"),
            ("orderid", "N-1"),
            ("amount", "1250"),
            ("currency", "EUR"),
            ("status", "1"),
        ],
        CallbackForm::Ss2,
    );
    let reply = client
        .get(format!(
            "http://127.0.0.1:{}/paysera/callback?{paid}",
            service.public
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.text().await.unwrap(), "OK");
    // Attempts at about 0 s and 1 s.
    let deadline = Instant::now() + Duration::from_secs(15);
    let event = loop {
        let event: serde_json::Value = client
            .get(format!(
                "http://127.0.0.1:{}/api/v1/events/1",
                service.admin
            ))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if event["attempts"].as_i64().unwrap_or(0) >= 2 {
            break event;
        }
        assert!(Instant::now() < deadline, "{event}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (text, lines) = service.logs();

    let history = event["attempt_log"].to_string();
    assert!(history.contains("connection failed"), "{history}");
    let secret_part = |s: &str| s.trim_start_matches("whsec_")[..24].to_string();
    for leak in [
        secret_part(&secret),
        secret_part(&previous),
        "hookpass".to_string(),
        "shoptoken".to_string(),
        "/hooks".to_string(),
    ] {
        assert!(!text.contains(&leak), "{leak:?} in the logs:\n{text}");
        assert!(
            !history.contains(&leak),
            "{leak:?} in the attempts: {history}"
        );
    }
    let on = lines
        .iter()
        .find(|l| l["message"] == "shop notifications on")
        .unwrap_or_else(|| panic!("no start-up line:\n{text}"));
    assert!(
        on["notify"].as_str().unwrap().starts_with(&format!(
            "http://127.0.0.1:{closed} signatures=2 timeout=10000ms"
        )),
        "{on}"
    );
    let retried: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["message"] == "notification not acknowledged; will retry")
        .collect();
    assert!(retried.len() >= 2, "{text}");
    assert_eq!(retried[0]["event"], 1);
    assert_eq!(retried[0]["type"], "order.paid");
    assert!(retried[0]["what"]
        .as_str()
        .unwrap()
        .contains("connection failed"));

    let dir = tempfile::tempdir().unwrap();
    let (text, lines) = Service::start(dir.path(), &[]).logs();
    assert!(
        lines.iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("shop notifications off (no SHOP_NOTIFY_URL)"))),
        "{text}"
    );
}
