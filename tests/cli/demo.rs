//! The README's run command: demo mode on the embedded default, then
//! `payhook simulate` against it, both as the real binary.

use std::process::Command;
use std::time::Duration;

use crate::support;

use support::free_port;
use support::service::Service;

fn payhook(data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_payhook"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PAYHOOK_DATA_DIR", data_dir)
        .current_dir(data_dir);
    cmd
}

#[test]
fn demo_mode_and_simulate() {
    let dir = tempfile::tempdir().unwrap();
    let (port, admin) = (free_port(), free_port());
    let service = Service::start(
        payhook(dir.path())
            .env("PAYHOOK_BIND", format!("127.0.0.1:{port}"))
            .env("PAYHOOK_ADMIN_BIND", format!("127.0.0.1:{admin}")),
        port,
        Duration::from_secs(60),
    );
    let out = payhook(dir.path())
        .args(["simulate", "--url", &format!("http://127.0.0.1:{port}")])
        .args(["--admin-url", &format!("http://127.0.0.1:{admin}")])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "paid          -> 200 OK",
        "duplicate     -> 200 OK",
        "tampered      -> 400 rejected: ss3 signature does not verify",
        "wrong amount  -> 200 OK",
        "test payment  -> 200 OK",
        "state \"paid\" after [\"fulfilled\", \"duplicate\"]",
        "state \"needs_review\" after [\"amount_mismatch\", \"test_ignored\"]",
        "modern partial  -> 200 OK",
        "modern paid     -> 200 OK",
        "modern again    -> 200 OK",
        "modern older    -> 200 OK",
        "modern forged   -> 403 rejected: the body's HMAC-SHA256 matches none",
        "state \"paid\" after [\"partially_paid\", \"fulfilled\", \"duplicate\", \"stale\"]",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    assert!(dir.path().join("payhook.sqlite3").exists());
    drop(service);
}

#[test]
fn demo_mode_refuses_a_public_bind_and_bad_config_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = payhook(dir.path())
        .env("PAYHOOK_BIND", "0.0.0.0:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("PAYHOOK_BIND") && stderr.contains("loopback"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    let out = payhook(dir.path())
        .env("PAYSERA_PROJECT_ID", "123")
        .env("PAYSERA_PROJECT_PASSWORD", "pw")
        .env("PAYHOOK_ADMIN_TOKEN", "0123456789abcdef")
        .env("PAYHOOK_ORDER_CHECK", "sometimes")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: configuration: PAYHOOK_ORDER_CHECK"),
        "{stderr}"
    );

    let out = payhook(dir.path())
        .args(["simulate", "--url", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "no demo gateway yet: a clear error"
    );
}
