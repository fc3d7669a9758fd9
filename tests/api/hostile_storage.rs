//! What an unauthenticated request can make the journal hold is bounded, and
//! strange bytes never become a database error.

use std::io::Write;
use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use payhook::store::raw::unescape;
use sha2::{Digest, Sha256};

use crate::helpers::{both_backends, Backend, TestApp, ADMIN_TOKEN};
use crate::support::gateway::{paid, paid_fields, sign, with, CallbackForm};

/// The journal row of one request, read straight from the database.
#[derive(Debug, QueryableByName)]
struct Stored {
    #[diesel(sql_type = Text)]
    outcome: String,
    #[diesel(sql_type = Text)]
    raw_query: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    raw_length: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    raw_sha256: Option<String>,
    #[diesel(sql_type = Bool)]
    raw_truncated: bool,
    /// What the row's raw_query takes in the database, in bytes.
    #[diesel(sql_type = BigInt)]
    stored_bytes: i64,
}

fn rows(app: &TestApp) -> Vec<Stored> {
    let octets = match app.backend {
        Backend::Postgres => "octet_length(raw_query)::bigint",
        Backend::Sqlite => "length(CAST(raw_query AS BLOB))",
    };
    app.query(&format!(
        "SELECT outcome, raw_query, raw_length, raw_sha256, raw_truncated, \
         {octets} AS stored_bytes FROM callbacks ORDER BY id"
    ))
}

fn last_row(app: &TestApp) -> Stored {
    rows(app).pop().expect("a stored row")
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A POST to the callback endpoint with these exact body bytes.
async fn post_raw(app: &TestApp, query: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> u16 {
    let url = match query {
        "" => format!("{}/paysera/callback", app.base),
        q => format!("{}/paysera/callback?{q}", app.base),
    };
    let mut request = app
        .client
        .post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap().status().as_u16()
}

/// The status of a GET whose request line holds these exact bytes.
async fn raw_http_status(app: &TestApp, target: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = [
        b"GET ",
        target,
        b" HTTP/1.1\r\nHost: payhook\r\nConnection: close\r\n\r\n",
    ]
    .concat();
    stream.write_all(&request).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let status = answer.get(9..12).expect("a status line");
    std::str::from_utf8(status).unwrap().parse().unwrap()
}

async fn admin_json(app: &TestApp, path: &str) -> serde_json::Value {
    let response = app
        .client
        .get(format!("{}{path}", app.admin))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

/// The value of an unlabelled counter on the admin listener's `/metrics`.
async fn metric(app: &TestApp, name: &str) -> f64 {
    let metrics = app.metrics().await;
    *metrics
        .get(name)
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

/// 64 KiB of form-shaped garbage: the most the endpoint takes.
fn garbage_64k(seed: u8) -> Vec<u8> {
    let mut body = format!("data={seed}").into_bytes();
    body.resize(64 * 1024, b'A' + seed % 26);
    body
}

async fn a_rejected_request_stores_at_most_the_limit(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = garbage_64k(1);
    assert_eq!(post_raw(&app, "", body.clone(), &[]).await, 400);
    let row = last_row(&app);
    assert_eq!(row.outcome, "rejected");
    assert!(
        row.stored_bytes <= 2048,
        "{} bytes stored",
        row.stored_bytes
    );
    assert!(row.raw_truncated);
    assert_eq!(row.raw_length, Some(body.len() as i64));
    assert_eq!(row.raw_sha256.as_deref(), Some(sha256_hex(&body).as_str()));
    assert!(body.starts_with(&unescape(&row.raw_query).unwrap()));

    // Query and body are joined with `&` before the length and digest are taken.
    let body = b"ss2=AAAA".to_vec();
    assert_eq!(post_raw(&app, "data=QUJD", body, &[]).await, 400);
    let row = last_row(&app);
    assert_eq!(row.raw_query, "data=QUJD&ss2=AAAA");
    assert!(!row.raw_truncated);
    assert_eq!(row.raw_length, Some(18));
    assert_eq!(
        row.raw_sha256.as_deref(),
        Some(sha256_hex(b"data=QUJD&ss2=AAAA").as_str())
    );

    // The admin API shows the length, the digest and the cut of every row.
    let listed = admin_json(&app, "/api/v1/callbacks?outcome=rejected").await;
    let listed = listed["callbacks"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[1]["raw_length"], 64 * 1024);
    assert_eq!(listed[1]["raw_sha256"], sha256_hex(&garbage_64k(1)));
    assert_eq!(listed[1]["raw_truncated"], true);
    assert_eq!(listed[0]["raw_length"], 18);
    assert_eq!(listed[0]["raw_truncated"], false);
}

async fn a_genuine_callback_is_stored_whole(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("PAYHOOK_REJECTED_MAX_BYTES", "100")]).await;
    app.register("WHOLE-1", 1250, "EUR").await;
    let fields = with(
        paid_fields("WHOLE-1", "1250", "EUR"),
        "paytext",
        &"ž".repeat(1500),
    );
    let query = sign(&fields, CallbackForm::Ss2);
    assert!(query.len() > 4096, "{}", query.len());
    let reply = app.get_callback(&query).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "OK"));
    let row = last_row(&app);
    assert_eq!(row.outcome, "fulfilled");
    assert_eq!(row.raw_query, query);
    assert!(!row.raw_truncated);

    let order = app.order("WHOLE-1").await;
    let stored = &order["callbacks"][0];
    assert_eq!(stored["raw_length"], query.len());
    assert_eq!(stored["raw_sha256"], sha256_hex(query.as_bytes()));
    assert_eq!(stored["raw_truncated"], false);

    // The same limit cuts a rejected request to 100 bytes.
    assert_eq!(post_raw(&app, "", garbage_64k(2), &[]).await, 400);
    let row = last_row(&app);
    assert!(row.stored_bytes <= 100, "{}", row.stored_bytes);
    assert!(row.raw_truncated);
}

/// 105 bytes of gzip used to become a 65 005-byte row: the body was inflated
/// before the size limit applied. Any content coding is now refused unread.
async fn a_content_encoding_gets_415_before_anything_is_decompressed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut inflated = b"data=".to_vec();
    inflated.resize(64 * 1024 - 1, b'A');
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&inflated).unwrap();
    let gzip = gz.finish().unwrap();
    assert!(gzip.len() < 200, "{}", gzip.len());

    for encoding in ["gzip", "GZIP", "deflate", "br", "identity"] {
        let status = post_raw(&app, "", gzip.clone(), &[("Content-Encoding", encoding)]).await;
        assert_eq!(status, 415, "{encoding}");
        let row = last_row(&app);
        assert_eq!(row.outcome, "rejected");
        // What was stored is what came over the wire, never what it inflates to.
        assert_eq!(row.raw_length, Some(gzip.len() as i64), "{encoding}");
        assert_eq!(row.raw_sha256.as_deref(), Some(sha256_hex(&gzip).as_str()));
        assert!(row.stored_bytes <= 2048, "{encoding}: {}", row.stored_bytes);
    }
    let largest = rows(&app).iter().map(|r| r.stored_bytes).max().unwrap();
    assert!(largest <= 2048, "{largest}");
}

async fn rejected_rows_past_retention_are_deleted_and_genuine_ones_kept(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("PAYHOOK_REJECTED_RETENTION", "1s")]).await;
    app.register("KEEP-1", 500, "EUR").await;
    let paid = paid("KEEP-1", "500");
    assert_eq!(app.get_callback(&paid).await.status, 200);
    for i in 0..5 {
        assert_eq!(post_raw(&app, "", garbage_64k(i), &[]).await, 400);
    }
    let rejected = "SELECT count(*) AS n FROM callbacks WHERE outcome = 'rejected'";
    assert_eq!(app.count(rejected), 5);
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while app.count(rejected) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "rejected rows still there after 15 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app.outcomes("KEEP-1").await, ["fulfilled"]);
    assert_eq!(app.fulfilments("KEEP-1"), 1);
}

async fn pruning_stops_at_the_cutoff_and_instances_share_the_work(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("KEEP-2", 500, "EUR").await;
    for i in 0..120u8 {
        assert_eq!(post_raw(&app, "", garbage_64k(i), &[]).await, 400);
    }
    let paid = paid("KEEP-2", "500");
    assert_eq!(app.get_callback(&paid).await.status, 200);
    // The clock moves on between the rows and the cutoff: the time is what
    // is tested (rows on either side of it).
    tokio::time::sleep(Duration::from_millis(20)).await;
    let cutoff = chrono::Utc::now().timestamp_millis();
    tokio::time::sleep(Duration::from_millis(20)).await;
    for i in 0..3 {
        assert_eq!(post_raw(&app, "", garbage_64k(i), &[]).await, 400);
    }

    // Two instances pruning at once, in small batches, delete each old row once.
    let (a, b) = (app.store(), app.store());
    let (a, b) = tokio::join!(
        tokio::task::spawn_blocking(move || a.prune_rejected(cutoff, 7)),
        tokio::task::spawn_blocking(move || b.prune_rejected(cutoff, 7)),
    );
    let deleted = a.unwrap().unwrap() + b.unwrap().unwrap();
    assert_eq!(deleted, 120);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM callbacks WHERE outcome = 'rejected'"),
        3
    );
    assert_eq!(app.outcomes("KEEP-2").await, ["fulfilled"]);
}

/// NUL bytes and invalid UTF-8 in the query, the body, a name or a value:
/// answered 400 and stored losslessly, and the database never sees them raw
/// (a NUL in PostgreSQL TEXT used to give a 503 and a database_error alert).
async fn strange_bytes_are_stored_losslessly_and_never_a_database_error(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases: &[(&str, &[u8])] = &[
        ("", b"data=ab\0cd&ss2=AAAA"),
        ("", b"data=\xff\xfe\xfd&ss2=AAAA"),
        ("", b"da\0ta=x&ss2=AAAA"),
        ("", b"\xffdata\xc3=1"),
        ("", b"\0"),
        ("", b"\\x00=\\&data=\0\xff"),
        ("data=%00&ss2=AAAA", b""),
        ("%00=1&data=%FF%FE", b""),
        ("data%00=1", b"da%FFta=\0"),
        ("data=QUJD", b"ss2=\xc3\x28\0"),
    ];
    for (query, body) in cases {
        let status = if body.is_empty() {
            app.get_callback(query).await.status
        } else {
            post_raw(&app, query, body.to_vec(), &[]).await
        };
        assert_eq!(status, 400, "{query:?} {body:?}");
        let sent = match (query.is_empty(), body.is_empty()) {
            (_, true) => query.as_bytes().to_vec(),
            (true, false) => body.to_vec(),
            (false, false) => [query.as_bytes(), b"&", body].concat(),
        };
        let row = last_row(&app);
        assert_eq!(row.outcome, "rejected");
        assert_eq!(
            unescape(&row.raw_query).unwrap(),
            sent,
            "{query:?} {body:?}"
        );
        assert_eq!(row.raw_length, Some(sent.len() as i64));
        assert_eq!(row.raw_sha256.as_deref(), Some(sha256_hex(&sent).as_str()));
    }

    // Unencoded, such bytes cannot even form a request line: the HTTP parser
    // answers 400 before payhook sees the request, and nothing is stored.
    let stored = rows(&app).len();
    for target in [
        &b"/paysera/callback?data=\xff\xfe"[..],
        b"/paysera/callback?da\0ta=1",
    ] {
        assert_eq!(raw_http_status(&app, target).await, 400);
    }
    assert_eq!(rows(&app).len(), stored);

    // A verified callback whose order id holds a NUL is malformed, not a
    // database error; a NUL in a field never written as such is harmless.
    app.register("NUL-2", 700, "EUR").await;
    let nul_order = paid("NUL\u{0}1", "700");
    let reply = app.get_callback(&nul_order).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(reply.body.contains("orderid"), "{}", reply.body);
    assert_eq!(last_row(&app).outcome, "rejected");
    let nul_text = with(paid_fields("NUL-2", "700", "EUR"), "paytext", "a\u{0}b");
    let reply = app.get_callback(&sign(&nul_text, CallbackForm::Ss2)).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "OK"));

    assert_eq!(metric(&app, "payhook_db_errors_total").await, 0.0);
    let rejected = app.count("SELECT count(*) AS n FROM callbacks WHERE outcome = 'rejected'");
    assert_eq!(rejected, cases.len() as i64 + 1);
}

/// The admin API is authenticated, but a NUL in an order id must still be a
/// clear 422, not a database error.
async fn an_order_id_with_a_control_character_is_a_clear_422(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let put = app
        .client
        .put(format!("{}/api/v1/orders/A%00B", app.admin))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({"amount": 100, "currency": "EUR"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 422);
    for path in ["orders/A%00B", "orders/A%0AB"] {
        let get = app
            .client
            .get(format!("{}/api/v1/{path}", app.admin))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(get.status(), 422, "{path}");
    }
    let payment = app
        .client
        .post(format!("{}/api/v1/payments", app.admin))
        .bearer_auth(ADMIN_TOKEN)
        .json(&serde_json::json!({
            "orderid": "A\u{0}B", "amount": 100, "currency": "EUR",
            "accepturl": "https://a", "cancelurl": "https://c", "callbackurl": "https://b",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(payment.status(), 422);
    assert!(payment.text().await.unwrap().contains("orderid"));
    assert_eq!(app.count("SELECT count(*) AS n FROM orders"), 0);
}

both_backends!(
    an_order_id_with_a_control_character_is_a_clear_422,
    a_rejected_request_stores_at_most_the_limit,
    a_genuine_callback_is_stored_whole,
    a_content_encoding_gets_415_before_anything_is_decompressed,
    rejected_rows_past_retention_are_deleted_and_genuine_ones_kept,
    pruning_stops_at_the_cutoff_and_instances_share_the_work,
    strange_bytes_are_stored_losslessly_and_never_a_database_error,
);
