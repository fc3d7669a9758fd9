//! What the operator's commands print of what the service stored, as the real
//! binary on the database the service wrote: no control character
//! of a hostile request reaches the terminal, and buyer data is
//! masked unless `PAYHOOK_LOG_PII`.

use std::path::Path;
use std::process::Command;

use payhook::sim::CheckoutSigner;

use crate::helpers::{both_backends, Backend, TestApp};
use crate::support::cli::payhook;
use crate::support::gateway::{
    checkout_paid_with_payer, paid_fields, sign, with, CallbackForm, BUYER_DATA, CHECKOUT_PAYER,
};

const CLIENT_ID: &str = "cli-output-client";
const SECRET: &str = "cli-output-checkout-secret";

/// A terminal's commands in a request body: OSC 0 (the window title), a
/// cleared screen with a forged line, OSC 52 (the clipboard), hidden text,
/// the C1 CSI (U+009B, and the byte 0x9b alone), DEL, and a bell.
const HOSTILE: &[u8] = b"\x1b]0;payhook: all clear\x07\x1b[2J\x1b[H\noutcome      fulfilled\r\n\
\x1b]52;c;cm0gLXJmIH4K\x07\x1b[8mhidden text\x1b[0m \xc2\x9b2J \x7f \x9b \x07";

async fn spawn(backend: Backend) -> TestApp {
    TestApp::spawn_with(
        backend,
        &[
            ("PAYSERA_CHECKOUT_CLIENT_ID", CLIENT_ID),
            ("PAYSERA_CHECKOUT_SECRET", SECRET),
        ],
    )
    .await
}

/// The real binary on the service's database, exiting 0: its stdout, bytes
/// exactly as printed.
fn cli(app: &TestApp, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Vec<u8> {
    let mut cmd: Command = payhook(dir, &app.database_url);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The printed bytes are UTF-8 holding no control character but the line
/// breaks that end lines: nothing a terminal would take as a command.
fn terminal_safe(args: &[&str], out: &[u8]) -> String {
    let text = String::from_utf8(out.to_vec())
        .unwrap_or_else(|e| panic!("{args:?} printed bytes that are not UTF-8: {e}"));
    for (i, c) in text.char_indices() {
        assert!(
            c == '\n' || !c.is_control(),
            "{args:?} printed the control character {c:?} at byte {i}:\n{}",
            text.escape_debug()
        );
    }
    text
}

async fn send_webhook(app: &TestApp, headers: &[(&str, String)], body: Vec<u8>) -> u16 {
    let mut request = app
        .client
        .post(format!("{}/paysera/checkout/webhook", app.base))
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.unwrap().status().as_u16()
}

async fn stored_text_reaches_the_terminal_escaped(backend: Backend) {
    let app = spawn(backend).await;
    let dir = tempfile::tempdir().unwrap();
    // Unauthenticated, both endpoints: journaled as rejected requests.
    let reply = app
        .client
        .post(format!("{}/paysera/callback", app.base))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(HOSTILE.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 400);
    let forged = [
        ("Content-Type", "application/json".to_string()),
        ("X-Paysera-Signature", "00".repeat(32)),
    ];
    assert_eq!(send_webhook(&app, &forged, HOSTILE.to_vec()).await, 403);
    let listed = app.admin_get("/callbacks").await;
    let ids: Vec<String> = listed["callbacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{listed}");

    for id in &ids {
        let args = ["callbacks", "show", id.as_str()];
        let out = cli(&app, dir.path(), &args, &[]);
        let shown = terminal_safe(&args, &out);
        // The evidence is all there, escaped, and cannot forge a line.
        for expected in [
            "outcome      rejected",
            "\\u{1b}]0;payhook: all clear\\u{7}\\u{1b}[2J\\u{1b}[H\\noutcome      fulfilled\\r\\n",
            "\\u{1b}]52;c;cm0gLXJmIH4K\\u{7}\\u{1b}[8mhidden text",
            "\\u{9b}2J \\u{7f} \\x9b \\u{7}",
        ] {
            assert!(shown.contains(expected), "{expected:?} in:\n{shown}");
        }
        assert!(
            !shown
                .lines()
                .any(|l| l.starts_with("outcome      fulfilled")),
            "{shown}"
        );

        // JSON for scripts: the same text, every control character escaped.
        let args = ["callbacks", "show", id.as_str(), "--json"];
        let out = cli(&app, dir.path(), &args, &[]);
        let json: serde_json::Value = serde_json::from_str(&terminal_safe(&args, &out)).unwrap();
        let raw = json["callback"]["raw_query"].as_str().unwrap();
        assert!(
            raw.contains("\u{1b}]52;c;") && raw.contains('\u{9b}'),
            "{raw}"
        );
    }
    for args in [
        &["callbacks", "list"][..],
        &["callbacks", "list", "--outcome", "rejected", "--json"],
        &["events", "list"],
    ] {
        let out = cli(&app, dir.path(), args, &[]);
        terminal_safe(args, &out);
    }
}

/// The value of `name` in a query string.
fn param(query: &str, name: &str) -> String {
    query
        .split('&')
        .find_map(|p| p.strip_prefix(&format!("{name}=")))
        .unwrap()
        .to_string()
}

async fn callbacks_show_masks_buyer_data(backend: Backend) {
    let app = spawn(backend).await;
    let dir = tempfile::tempdir().unwrap();
    app.register("B-1", 1250, "EUR").await;
    let mut fields = paid_fields("B-1", "1250", "EUR");
    for (name, value) in BUYER_DATA {
        fields = with(fields, name, value);
    }
    let query = sign(&fields, CallbackForm::Ss2);
    let data = param(&query, "data");
    assert_eq!(app.get_callback(&query).await.body, "OK");

    // A genuine Checkout snapshot with the payer's details.
    let response = app
        .client
        .put(format!("{}/api/v1/orders/B-2", app.admin))
        .bearer_auth(crate::helpers::ADMIN_TOKEN)
        .json(&serde_json::json!({"amount": 2500, "currency": "EUR", "project_id": CLIENT_ID}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let webhook = CheckoutSigner::new(SECRET).sign(checkout_paid_with_payer("B-2", 2500));
    assert_eq!(
        send_webhook(&app, &webhook.headers, webhook.body.clone()).await,
        200
    );

    let listed = app.admin_get("/callbacks").await;
    let ids: Vec<String> = listed["callbacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{listed}");
    // Two-letter codes (countries) could be anywhere: the rest are unique.
    let personal: Vec<&str> = std::iter::once(data.as_str())
        .chain(BUYER_DATA.iter().chain(CHECKOUT_PAYER).map(|(_, v)| *v))
        .filter(|v| v.len() > 2)
        .collect();
    let mut masked = String::new();
    let mut clear = String::new();
    for id in &ids {
        for json in [false, true] {
            let mut args = vec!["callbacks", "show", id.as_str()];
            if json {
                args.push("--json");
            }
            let out = cli(&app, dir.path(), &args, &[]);
            masked.push_str(&terminal_safe(&args, &out));
            let out = cli(&app, dir.path(), &args, &[("PAYHOOK_LOG_PII", "true")]);
            clear.push_str(&terminal_safe(&args, &out));
        }
    }
    for value in &personal {
        assert!(!masked.contains(value), "{value:?} shown in:\n{masked}");
        assert!(
            clear.contains(value),
            "{value:?} not shown with PII:\n{clear}"
        );
    }
    for expected in [
        "bytes hidden, sha256 ",
        "(buyer data hidden; PAYHOOK_LOG_PII shows it)",
        "p_email = ***",
        "\"payer_email\":\"***\"",
        "\"raw_masked\":true",
    ] {
        assert!(masked.contains(expected), "{expected:?} in:\n{masked}");
    }
}

both_backends!(
    stored_text_reaches_the_terminal_escaped,
    callbacks_show_masks_buyer_data,
);
