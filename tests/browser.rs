//! The console in a real browser: Debian's headless Chromium,
//! driven through `chromedriver`, against a payhook this test starts. It signs
//! in, opens the overview, finds the order flagged `paid_again`, opens its
//! story, presses Replay on a callback and sees the new `duplicate` row, and
//! saves screenshots of the overview and of the story under the target
//! directory (`console-overview.png`, `console-order.png`).
//!
//! Not part of `cargo test`: it needs `apt-get install chromium
//! chromium-driver`, and runs as
//! `cargo test --features browser-test --test browser`.

#[path = "support/mod.rs"]
mod support;

#[path = "api/helpers.rs"]
#[allow(dead_code, unused_imports, unused_macros)]
mod helpers;

use std::path::PathBuf;

use helpers::{Backend, TestApp, ADMIN_TOKEN};
use support::gateway::{paid, paid_fields, sign, with, CallbackForm};
use support::webdriver::Browser;

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

/// A shop's day: most orders paid, one paid twice, some that need a look.
async fn a_day_of_callbacks(app: &TestApp) {
    for (id, amount) in [
        ("1001", 1250),
        ("1002", 4990),
        ("1003", 1999),
        ("1004", 750),
        ("1005", 3200),
        ("1006", 1250),
    ] {
        app.register(id, amount, "EUR").await;
    }
    let twice = paid_fields("1002", "4990", "EUR");
    let queries = [
        sign(&paid_fields("1001", "1250", "EUR"), CallbackForm::Ss2),
        sign(&twice, CallbackForm::Ss2),
        sign(&twice, CallbackForm::Ss2),
        sign(&with(twice.clone(), "requestid", "2"), CallbackForm::Ss2),
        paid("1003", "1999"),
        paid("1004", "100"),
        sign(
            &with(paid_fields("1005", "3200", "EUR"), "status", "2"),
            CallbackForm::Ss2,
        ),
        paid("1005", "3200"),
        paid("9999", "500"),
        paid("1006", "1250").replacen("data=c", "data=d", 1),
    ];
    for query in queries {
        app.get_callback(&query).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_replays_a_callback_from_the_orders_story() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    a_day_of_callbacks(&app).await;
    let browser = Browser::start().await;
    let shots = target_dir();
    std::fs::create_dir_all(&shots).unwrap();

    // Any console page leads to the sign-in form first.
    browser.goto(&format!("{}/ui/", app.admin)).await;
    assert!(browser.url().await.contains("/ui/login"));
    let token = browser.one("#token").await;
    browser.type_into(&token, ADMIN_TOKEN).await;
    browser.click(&browser.one("form.stack button").await).await;
    let overview_url = format!("{}/ui/", app.admin);
    assert_eq!(
        browser.wait_for_url(|u| u == overview_url).await,
        overview_url
    );
    let overview = browser.source().await;
    assert!(overview.contains("<h1>Overview</h1>"));
    assert!(overview.contains("<svg class=\"chart\""));
    std::fs::write(
        shots.join("console-overview.png"),
        browser.screenshot().await,
    )
    .unwrap();

    // The order with the paid_again flag, from the overview.
    let links = browser
        .all_xpath("//li[span[normalize-space()='paid_again']]/a")
        .await;
    assert_eq!(links.len(), 1, "one paid_again order on the overview");
    assert_eq!(browser.text(&links[0]).await, "1002");
    browser.click(&links[0]).await;
    let story_url = format!("{}/ui/orders/1002", app.admin);
    assert_eq!(browser.wait_for_url(|u| u == story_url).await, story_url);
    let duplicates = browser.all(".story .tag-duplicate").await.len();
    assert_eq!(duplicates, 1);

    // Replay the paid callback: a new row, a duplicate, marked in the story.
    let buttons = browser.all(".story li[id^='callback-'] form button").await;
    browser.click(&buttons[0]).await;
    let url = browser.wait_for_url(|u| u.contains("done=")).await;
    assert!(url.contains("/ui/orders/1002?done="), "{url}");
    assert_eq!(
        browser.all(".story .tag-duplicate").await.len(),
        duplicates + 1
    );
    // The new row is the URL's fragment: the stylesheet marks it.
    let marked = browser.one(".story li:target .tag").await;
    assert_eq!(browser.text(&marked).await, "duplicate");
    assert!(browser.source().await.contains(": duplicate."));
    std::fs::write(shots.join("console-order.png"), browser.screenshot().await).unwrap();
    assert_eq!(
        app.count("SELECT count(*) AS n FROM callbacks WHERE method = 'REPLAY'"),
        1
    );
    browser.quit().await;
}
