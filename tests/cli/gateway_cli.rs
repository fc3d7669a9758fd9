//! `payhook verify-gateway`, the real binary: every gateway vector gives the
//! JSON its example states (exit 0), a tampered one the reason (exit 1), a
//! usage error exit 2; the same through a gateways file with a secret file.

use std::process::Command;

use crate::support::cli::run;
use crate::support::gateway_vectors::{expected_minor, gateway_vectors};

fn verify_gateway(args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_payhook"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(std::env::temp_dir())
        .arg("verify-gateway")
        .args(args);
    run(&mut cmd)
}

#[test]
fn every_gateway_vector_through_the_command() {
    for vector in gateway_vectors() {
        let name = vector["name"].as_str().unwrap();
        let (code, out, err) = verify_gateway(&[
            "--profile",
            vector["profile"].as_str().unwrap(),
            "--secret",
            vector["secret"].as_str().unwrap(),
            "--method",
            vector["method"].as_str().unwrap(),
            vector["body"].as_str().unwrap(),
        ]);
        if vector["expect"]["ok"] == false {
            assert_eq!(code, 1, "{name}: {out}");
            assert!(err.starts_with("rejected: "), "{name}: {err}");
            assert!(out.is_empty(), "{name}: {out}");
            continue;
        }
        assert_eq!(code, 0, "{name}: {err}");
        let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
        let expect = &vector["expect"];
        assert_eq!(shown["orderid"], expect["orderid"], "{name}");
        assert_eq!(shown["amount"], expected_minor(&vector), "{name}");
        assert_eq!(shown["test"], false, "{name}");
        match expect["currency"].as_str() {
            Some(currency) => assert_eq!(shown["currency"], currency, "{name}"),
            // FreeKassa names none, and none is configured here.
            None => assert!(shown["currency"].is_null(), "{name}"),
        }
        if let Some(dedup) = expect["dedup"].as_str() {
            assert_eq!(shown["dedup"], dedup, "{name}");
        }
        if let Some(reply) = expect["reply_body"].as_str() {
            assert_eq!(shown["reply"], reply, "{name}");
        }
    }
}

#[test]
fn a_gateways_file_with_a_secret_file_verifies_the_same() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fk.secret"), "secret_word_2\n").unwrap();
    let config = dir.path().join("gateways.toml");
    std::fs::write(
        &config,
        "[[gateway]]\nname = \"shop-fk\"\nprofile = \"freekassa\"\nsecret_file = \"fk.secret\"\ncurrency = \"RUB\"\n",
    )
    .unwrap();
    let vector = gateway_vectors()
        .into_iter()
        .find(|v| v["name"] == "freekassa-paid")
        .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_payhook"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(dir.path())
        .args([
            "verify-gateway",
            "--config",
            "gateways.toml",
            "--gateway",
            "shop-fk",
            "--method",
            "POST",
        ])
        .arg(vector["body"].as_str().unwrap());
    let (code, out, err) = run(&mut cmd);
    assert_eq!(code, 0, "{err}");
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["gateway"], "shop-fk");
    assert_eq!(shown["currency"], "RUB");
    assert_eq!(shown["amount"], 9900);
}

#[test]
fn usage_errors_exit_2_with_the_reason() {
    for (args, reason) in [
        (vec!["--profile", "freekassa", "a=1"], "secret: required"),
        (
            vec!["--profile", "paypal", "--secret", "s", "a=1"],
            "profile: one of",
        ),
        (vec!["a=1"], "give --profile NAME"),
        (
            vec![
                "--profile",
                "freekassa",
                "--secret",
                "s",
                "--method",
                "PUT",
                "a=1",
            ],
            "--method PUT",
        ),
        (
            vec!["--config", "/nonexistent/g.toml", "--gateway", "x", "a=1"],
            "cannot read",
        ),
    ] {
        let (code, _, err) = verify_gateway(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(reason), "{args:?}: {err}");
    }
}
