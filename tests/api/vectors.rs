//! The shared vectors, sent to the running service as the gateway would.

use serde_json::Value;

use crate::helpers::{Backend, TestApp};
use crate::support::vectors::vectors_dir;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_current_vector_through_http() {
    let app = TestApp::spawn(Backend::Postgres).await;
    app.register("A-1001", 1250, "EUR").await;
    let mut files: Vec<_> = std::fs::read_dir(vectors_dir().join("current"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    for (i, path) in files.iter().enumerate() {
        let case: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let name = path.file_name().unwrap().to_string_lossy();
        let query = case["query"].as_str().unwrap();
        let accepted_by_default =
            case["expect"]["ok"].as_bool().unwrap() && case["signature_check"] != "ss1";
        let reply = if i % 2 == 0 {
            app.get_callback(query).await
        } else {
            app.post_callback(query).await
        };
        if accepted_by_default {
            assert_eq!(reply.status, 200, "{name}: {}", reply.body);
            assert!(
                reply.body == "OK" || reply.body == "NOSMS",
                "{name}: {}",
                reply.body
            );
        } else {
            assert_eq!(reply.status, 400, "{name}: {}", reply.body);
        }
    }
    // A-1001 was paid by several vectors: one fulfilment, the rest duplicates
    // (same content) or paid_again (the same order paid by different content).
    assert_eq!(app.fulfilments("A-1001"), 1);
    let outcomes = app.outcomes("A-1001").await;
    assert!(outcomes.contains(&"duplicate".to_string()), "{outcomes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_gateway_callbacks_with_the_pinned_key() {
    let dir = tempfile::tempdir().unwrap();
    let projects = dir.path().join("projects.toml");
    std::fs::write(
        &projects,
        "[[projects]]\nid = 31530\npassword = \"8c5ebe834bb61a2e5ab8ef38f8d940f3\"\n\n\
         [[projects]]\nid = 13156\npassword = \"1c4196d0ff7fe4e94bdca98fb251bc25\"\n",
    )
    .unwrap();
    let projects = projects.display().to_string();
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("PAYSERA_PUBLIC_KEY_FILE", ""),
            ("PAYHOOK_CONFIG_FILE", &projects),
            ("PAYHOOK_ALLOW_TEST_PAYMENTS", "true"),
            ("PAYHOOK_ORDER_CHECK", "none"),
            ("PAYHOOK_ACCEPT_LEGACY", "true"),
        ],
    )
    .await;
    for file in [
        "real/v16-paid-test-usd-ss1-ss2.json",
        "real/legacy-1.4-macro-paid-test.json",
    ] {
        let case: Value =
            serde_json::from_str(&std::fs::read_to_string(vectors_dir().join(file)).unwrap())
                .unwrap();
        let reply = app.get_callback(case["raw_query"].as_str().unwrap()).await;
        assert_eq!((reply.status, reply.body.as_str()), (200, "OK"), "{file}");
    }
    assert_eq!(app.count("SELECT count(*) AS n FROM fulfilments"), 2);
}

/// The gateway's own 1.3 and 1.4 SMS callbacks, with legacy
/// callbacks accepted, are answered with the SMS reply and stored as
/// `sms_received`; a redelivery is a duplicate with the same answer; the same
/// callback with two values swapped is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_legacy_sms_callbacks_get_the_sms_answer() {
    let dir = tempfile::tempdir().unwrap();
    let projects = dir.path().join("projects.toml");
    std::fs::write(
        &projects,
        "[[projects]]\nid = 2753\npassword = \"6b4dc5bf1d9a597282401edfe334c4f1\"\n\n\
         [[projects]]\nid = 13156\npassword = \"1c4196d0ff7fe4e94bdca98fb251bc25\"\n",
    )
    .unwrap();
    let projects = projects.display().to_string();
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("PAYSERA_PUBLIC_KEY_FILE", ""),
            ("PAYHOOK_CONFIG_FILE", &projects),
            ("PAYHOOK_ACCEPT_LEGACY", "true"),
            ("PAYHOOK_SMS_REPLY", "Thank you for sending"),
        ],
    )
    .await;
    for file in [
        "real/legacy-1.3-micro-sms-test.json",
        "real/legacy-1.4-micro-sms-test.json",
    ] {
        let case: Value =
            serde_json::from_str(&std::fs::read_to_string(vectors_dir().join(file)).unwrap())
                .unwrap();
        let query = case["raw_query"].as_str().unwrap();
        for _ in 0..2 {
            let reply = app.get_callback(query).await;
            assert_eq!(
                (reply.status, reply.body.as_str()),
                (200, "OK Thank you for sending"),
                "{file}"
            );
        }
        let swapped = query
            .replace("wp_from=", "wp_SWAP=")
            .replace("wp_to=", "wp_from=")
            .replace("wp_SWAP=", "wp_to=");
        let reply = app.get_callback(&swapped).await;
        assert_eq!(reply.status, 400, "{file}: {}", reply.body);
    }
    #[derive(diesel::QueryableByName)]
    struct Stored {
        #[diesel(sql_type = diesel::sql_types::Text)]
        outcome: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        project_id: String,
    }
    let stored: Vec<(String, String)> = app
        .query::<Stored>(
            "SELECT outcome, project_id FROM callbacks WHERE outcome <> 'rejected' ORDER BY id",
        )
        .into_iter()
        .map(|s| (s.outcome, s.project_id))
        .collect();
    assert_eq!(
        stored,
        [
            ("sms_received", "2753"),
            ("duplicate", "2753"),
            ("sms_received", "13156"),
            ("duplicate", "13156"),
        ]
        .map(|(o, p)| (o.to_string(), p.to_string()))
    );
    assert_eq!(
        app.count("SELECT count(*) AS n FROM callbacks WHERE outcome = 'rejected'"),
        2
    );
}
