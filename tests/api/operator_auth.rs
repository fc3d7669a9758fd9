//! The admin listener's door: console sessions bound to the admin
//! token that made them, "sign out everywhere" from the console, the API and
//! the CLI, one limit on wrong tokens for the API and the console that works
//! behind a proxy, the cookie's `Secure` default, and the headers of every
//! admin API answer. Over HTTP, on PostgreSQL and SQLite.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{both_backends, Backend, TestApp, ADMIN_TOKEN};
use crate::support::cli::{payhook, run};

const OTHER_TOKEN: &str = "rotated-admin-token-9876543210";

/// What the admin listener answered.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    async fn of(response: reqwest::Response) -> Answer {
        Answer {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    fn location(&self) -> Option<&str> {
        self.header("location")
    }

    /// The session cookie this answer set, if any.
    fn session_cookie(&self) -> Option<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap())
            .find(|c| c.starts_with("payhook_session=") && !c.contains("Max-Age=0"))
            .map(|c| {
                c.trim_start_matches("payhook_session=")
                    .split(';')
                    .next()
                    .unwrap()
                    .to_string()
            })
    }

    /// `Retry-After`, in seconds.
    fn retry_after(&self) -> u64 {
        self.header("retry-after")
            .unwrap_or_else(|| panic!("no Retry-After on a {}", self.status))
            .parse()
            .unwrap()
    }
}

/// A client of the admin listener, not following redirects; `from` is the
/// header and the client address a proxy in front would name in it.
struct Client {
    admin: String,
    http: reqwest::Client,
    from: Option<(&'static str, String)>,
}

impl Client {
    fn new(app: &TestApp) -> Client {
        Client {
            admin: app.admin.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            from: None,
        }
    }

    /// From `addr`, in `X-Forwarded-For`.
    fn from(app: &TestApp, addr: &str) -> Client {
        Client::behind(app, "X-Forwarded-For", addr)
    }

    fn behind(app: &TestApp, header: &'static str, addr: &str) -> Client {
        Client {
            from: Some((header, addr.to_string())),
            ..Client::new(app)
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let request = self.http.request(method, format!("{}{path}", self.admin));
        match &self.from {
            Some((header, addr)) => request.header(*header, addr),
            None => request,
        }
    }

    async fn sign_in(&self, token: &str) -> Answer {
        let request = self
            .request(reqwest::Method::POST, "/ui/login")
            .form(&[("token", token)]);
        Answer::of(request.send().await.unwrap()).await
    }

    /// Signs in with the right token: the session cookie.
    async fn session(&self) -> String {
        let answer = self.sign_in(ADMIN_TOKEN).await;
        assert_eq!(answer.status, 303, "{}", answer.body);
        answer.session_cookie().expect("a session cookie")
    }

    async fn page(&self, path: &str, cookie: &str) -> Answer {
        let request = self
            .request(reqwest::Method::GET, path)
            .header("Cookie", format!("payhook_session={cookie}"));
        Answer::of(request.send().await.unwrap()).await
    }

    async fn post_form(&self, path: &str, cookie: &str, fields: &[(&str, &str)]) -> Answer {
        let request = self
            .request(reqwest::Method::POST, path)
            .header("Cookie", format!("payhook_session={cookie}"))
            .form(fields);
        Answer::of(request.send().await.unwrap()).await
    }

    /// `method path` on the API with this bearer token (`None`: no header).
    async fn api(&self, method: reqwest::Method, path: &str, token: Option<&str>) -> Answer {
        let mut request = self.request(method, path);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        Answer::of(request.send().await.unwrap()).await
    }
}

/// Whether `cookie` is a live session: the overview (200), or the way to the
/// sign-in page (303). Anything else is a failure of its own.
async fn signed_in(client: &Client, cookie: &str) -> bool {
    let page = client.page("/ui/", cookie).await;
    match page.status {
        200 => true,
        303 => {
            assert!(
                page.location().unwrap().starts_with("/ui/login"),
                "{:?}",
                page.location()
            );
            false
        }
        other => panic!("GET /ui/ answered {other}: {}", page.body),
    }
}

/// The CSRF token in a console page's forms.
fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token");
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_string()
}

fn sessions(app: &TestApp) -> i64 {
    app.count("SELECT count(*) AS n FROM ui_sessions")
}

async fn a_new_admin_token_ends_every_old_session(backend: Backend) {
    let before = TestApp::spawn(backend).await;
    let old = Client::new(&before);
    let cookie = old.session().await;
    assert!(signed_in(&old, &cookie).await);
    before.stop.stop().await;

    // The restart with a rotated token, on the same database.
    let after = TestApp::spawn_on(
        backend,
        &before.database_url,
        tempfile::tempdir().unwrap(),
        &[("PAYHOOK_ADMIN_TOKEN", OTHER_TOKEN)],
    )
    .await;
    let client = Client::new(&after);
    // The old cookie: the sign-in page, never the console.
    for path in ["/ui/", "/ui/callbacks", "/ui/notifications"] {
        let page = client.page(path, &cookie).await;
        assert_eq!(page.status, 303, "{path}: {}", page.body);
        assert!(page.location().unwrap().starts_with("/ui/login"), "{path}");
    }
    // A form of the old session is no more than a sign-in either.
    let post = client
        .post_form("/ui/logout", &cookie, &[("csrf", "x"), ("nonce", "y")])
        .await;
    assert_eq!(post.status, 303);
    assert_eq!(post.location(), Some("/ui/login"));
    // The old token is refused on the API, as before; the new one signs in.
    let api = client
        .api(reqwest::Method::GET, "/api/v1/callbacks", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(api.status, 401);
    assert_eq!(client.sign_in(ADMIN_TOKEN).await.status, 401);
    let answer = client.sign_in(OTHER_TOKEN).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let fresh = answer.session_cookie().unwrap();
    assert!(signed_in(&client, &fresh).await);
    assert!(!signed_in(&client, &cookie).await);
    // The database keeps a fingerprint of each token, never the token.
    let fingerprints = after.count(
        "SELECT count(DISTINCT token_fingerprint) AS n FROM ui_sessions \
         WHERE length(token_fingerprint) = 64",
    );
    assert_eq!(fingerprints, 2);
    for token in [ADMIN_TOKEN, OTHER_TOKEN] {
        let stored = after.count(&format!(
            "SELECT count(*) AS n FROM ui_sessions WHERE token_fingerprint LIKE '%{token}%'"
        ));
        assert_eq!(stored, 0);
    }
}

async fn sign_out_everywhere_ends_every_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = Client::new(&app);

    // From the console: a form on every page, with the session's CSRF token.
    let (mine, other) = (client.session().await, client.session().await);
    let overview = client.page("/ui/", &mine).await;
    assert!(
        overview.body.contains("action=\"/ui/sessions/revoke\""),
        "{}",
        overview.body
    );
    let refused = client
        .post_form("/ui/sessions/revoke", &mine, &[("csrf", "forged")])
        .await;
    assert_eq!(refused.status, 403);
    assert!(signed_in(&client, &other).await);
    let csrf = csrf_of(&overview.body);
    let out = client
        .post_form("/ui/sessions/revoke", &mine, &[("csrf", &csrf)])
        .await;
    assert_eq!(out.status, 303, "{}", out.body);
    assert_eq!(out.location(), Some("/ui/login"));
    assert!(out
        .headers
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().contains("Max-Age=0")));
    assert!(!signed_in(&client, &mine).await);
    assert!(!signed_in(&client, &other).await);
    assert_eq!(sessions(&app), 0);

    // From the API: how many ended.
    let (a, b) = (client.session().await, client.session().await);
    let unauthorized = client
        .api(reqwest::Method::POST, "/api/v1/sessions/revoke", None)
        .await;
    assert_eq!(unauthorized.status, 401);
    assert!(signed_in(&client, &a).await);
    let revoked = client
        .api(
            reqwest::Method::POST,
            "/api/v1/sessions/revoke",
            Some(ADMIN_TOKEN),
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    let body: serde_json::Value = serde_json::from_str(&revoked.body).unwrap();
    assert_eq!(body, serde_json::json!({"revoked": 2}));
    assert!(!signed_in(&client, &a).await);
    assert!(!signed_in(&client, &b).await);

    // From the command line, the real binary on the same database.
    let c = client.session().await;
    let dir = tempfile::tempdir().unwrap();
    let url = app.database_url.clone();
    let cli_dir = dir.path().to_path_buf();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        run(payhook(&cli_dir, &url).args(["sessions", "revoke"]))
    })
    .await
    .unwrap();
    assert_eq!(
        (code, out.as_str()),
        (0, "1 console session(s) ended\n"),
        "{err}"
    );
    assert!(!signed_in(&client, &c).await);
    assert_eq!(sessions(&app), 0);
}

/// `PAYHOOK_CLIENT_IP_HEADER` behind the suite's trusted proxy (127.0.0.1).
async fn behind_a_proxy_each_client_has_its_own_allowance(backend: Backend) {
    let app =
        TestApp::spawn_with(backend, &[("PAYHOOK_CLIENT_IP_HEADER", "X-Forwarded-For")]).await;
    let guesser = Client::from(&app, "198.51.100.1");
    for n in 0..10 {
        let answer = guesser.sign_in("not-the-admin-token").await;
        assert_eq!(answer.status, 401, "wrong token {n}");
    }
    let limited = guesser.sign_in("not-the-admin-token").await;
    assert_eq!(limited.status, 429);
    let wait = limited.retry_after();
    assert!((1..=300).contains(&wait), "Retry-After: {wait}");
    // The limited address stays limited whatever it sends, on the API too
    // (one budget per address), and a client cannot shed it by writing
    // another address on the left of the list.
    assert_eq!(guesser.sign_in(ADMIN_TOKEN).await.status, 429);
    let api = guesser
        .api(reqwest::Method::GET, "/api/v1/callbacks", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(api.status, 429);
    let spoofed = Client::from(&app, "198.51.100.2, 198.51.100.1");
    assert_eq!(spoofed.sign_in(ADMIN_TOKEN).await.status, 429);

    // Everybody else behind the same proxy signs in.
    let operator = Client::from(&app, "198.51.100.2");
    let cookie = operator.session().await;
    assert!(signed_in(&operator, &cookie).await);
    let api = operator
        .api(reqwest::Method::GET, "/api/v1/callbacks", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(api.status, 200);
    // The session row names the client, not the proxy.
    let rows =
        app.count("SELECT count(*) AS n FROM ui_sessions WHERE remote_addr = '198.51.100.2'");
    assert_eq!(rows, 1);
}

/// Without the setting, or from a peer that is no trusted proxy, the header
/// is whatever the client wrote: ignored.
async fn a_client_cannot_choose_its_own_address(backend: Backend) {
    for overrides in [
        &[][..],
        &[
            ("PAYHOOK_TRUSTED_PROXIES", "10.0.0.0/8"),
            ("PAYHOOK_CLIENT_IP_HEADER", "X-Forwarded-For"),
        ][..],
    ] {
        let app = TestApp::spawn_with(backend, overrides).await;
        for n in 0..10 {
            let client = Client::from(&app, &format!("198.51.100.{n}"));
            assert_eq!(client.sign_in("wrong-token-here").await.status, 401);
        }
        let answer = Client::from(&app, "198.51.100.200")
            .sign_in(ADMIN_TOKEN)
            .await;
        assert_eq!(answer.status, 429, "{overrides:?}");
    }
}

async fn the_api_bearer_check_is_limited_per_address(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("PAYHOOK_CLIENT_IP_HEADER", "X-Real-IP")]).await;
    let guesser = Client::behind(&app, "X-Real-IP", "203.0.113.5");
    // No token at all guesses nothing: never counted.
    for _ in 0..20 {
        let answer = guesser
            .api(reqwest::Method::GET, "/api/v1/callbacks", None)
            .await;
        assert_eq!(answer.status, 401);
    }
    for n in 0..10 {
        let answer = guesser
            .api(
                reqwest::Method::GET,
                "/api/v1/callbacks",
                Some(&format!("wrong-token-{n:04}")),
            )
            .await;
        assert_eq!(answer.status, 401, "wrong token {n}");
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
    }
    let limited = guesser
        .api(
            reqwest::Method::GET,
            "/api/v1/callbacks",
            Some("wrong-again"),
        )
        .await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert!((1..=300).contains(&limited.retry_after()));
    let body: serde_json::Value = serde_json::from_str(&limited.body).unwrap();
    assert_eq!(
        body["error"],
        "too many wrong tokens from this address; try again later"
    );
    // Not even the right token is looked at from there until the window ends,
    // on the API or at the console's sign-in.
    let right = guesser
        .api(reqwest::Method::GET, "/api/v1/callbacks", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(right.status, 429);
    assert_eq!(guesser.sign_in(ADMIN_TOKEN).await.status, 429);
    // Another address is not concerned.
    let shop = Client::behind(&app, "X-Real-IP", "203.0.113.6");
    let answer = shop
        .api(reqwest::Method::GET, "/api/v1/callbacks", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(answer.status, 200);
}

/// 100 wrong tokens from ten addresses within the window: the ceiling. Each
/// address then has one wrong token per window, not ten; a right token from
/// an address that has not failed is still accepted.
async fn a_global_ceiling_slows_guessers_and_never_refuses_the_right_token(backend: Backend) {
    let app =
        TestApp::spawn_with(backend, &[("PAYHOOK_CLIENT_IP_HEADER", "X-Forwarded-For")]).await;
    for a in 1..=10 {
        let client = Client::from(&app, &format!("192.0.2.{a}"));
        for n in 0..10 {
            let answer = client
                .api(
                    reqwest::Method::GET,
                    "/api/v1/callbacks",
                    Some(&format!("guess-{a}-{n:04}")),
                )
                .await;
            assert_eq!(answer.status, 401, "address {a}, guess {n}");
        }
    }
    let fresh = Client::from(&app, "192.0.2.50");
    assert_eq!(fresh.sign_in("one-more-guess").await.status, 401);
    let second = fresh.sign_in("and-another-guess").await;
    assert_eq!(second.status, 429, "{}", second.body);
    assert!((1..=300).contains(&second.retry_after()));

    let operator = Client::from(&app, "192.0.2.99");
    let cookie = operator.session().await;
    assert!(signed_in(&operator, &cookie).await);
    let shop = Client::from(&app, "192.0.2.100");
    let api = shop
        .api(reqwest::Method::GET, "/api/v1/callbacks", Some(ADMIN_TOKEN))
        .await;
    assert_eq!(api.status, 200);
}

async fn the_cookie_is_secure_when_the_admin_url_is_https(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[("PAYHOOK_ADMIN_URL", "https://admin.shop.example")],
    )
    .await;
    let answer = Client::new(&app).sign_in(ADMIN_TOKEN).await;
    assert_eq!(answer.status, 303);
    let cookie = answer.header("set-cookie").unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");

    // The admin URL decides; a public https URL does not make a console
    // reached over plain http Secure (its browser would never send it back).
    let app = TestApp::spawn_with(
        backend,
        &[
            ("PAYHOOK_ADMIN_URL", "http://10.0.0.5:8081"),
            ("PAYHOOK_PUBLIC_URL", "https://pay.shop.example"),
        ],
    )
    .await;
    let client = Client::new(&app);
    let answer = client.sign_in(ADMIN_TOKEN).await;
    let cookie = answer.header("set-cookie").unwrap();
    assert!(!cookie.contains("Secure"), "{cookie}");
    assert!(signed_in(&client, &answer.session_cookie().unwrap()).await);
}

async fn every_admin_api_answer_is_no_store_and_nosniff(backend: Backend) {
    use reqwest::Method;
    let app = TestApp::spawn(backend).await;
    app.register("H-1", 100, "EUR").await;
    let client = Client::new(&app);
    let token = Some(ADMIN_TOKEN);
    let checks: Vec<(Answer, u16, &str)> = vec![
        (
            client.api(Method::GET, "/api/v1/callbacks", token).await,
            200,
            "list",
        ),
        (
            client.api(Method::GET, "/api/v1/orders/H-1", token).await,
            200,
            "order",
        ),
        (
            client.api(Method::GET, "/api/v1/events", token).await,
            200,
            "feed",
        ),
        (
            client.api(Method::GET, "/api/v1/callbacks", None).await,
            401,
            "no token",
        ),
        (
            client
                .api(Method::GET, "/api/v1/callbacks", Some("wrong-token-0001"))
                .await,
            401,
            "wrong token",
        ),
        (
            client.api(Method::GET, "/api/v1/orders/NOPE", token).await,
            404,
            "no order",
        ),
        (
            client.api(Method::GET, "/api/v1/nothing/here", token).await,
            404,
            "no route",
        ),
        (
            client
                .api(Method::GET, "/api/v1/callbacks?limit=0", token)
                .await,
            400,
            "bad query",
        ),
        (
            Answer::of(
                client
                    .request(Method::PUT, "/api/v1/orders/H-2")
                    .bearer_auth(ADMIN_TOKEN)
                    .header("Content-Type", "application/json")
                    .body("{")
                    .send()
                    .await
                    .unwrap(),
            )
            .await,
            400,
            "bad JSON",
        ),
        (
            client
                .api(Method::POST, "/api/v1/sessions/revoke", token)
                .await,
            200,
            "revoke",
        ),
    ];
    for (answer, status, what) in checks {
        assert_eq!(answer.status, status, "{what}: {}", answer.body);
        assert_eq!(answer.header("cache-control"), Some("no-store"), "{what}");
        assert_eq!(
            answer.header("x-content-type-options"),
            Some("nosniff"),
            "{what}"
        );
        assert!(
            answer
                .header("content-type")
                .is_some_and(|t| t.starts_with("application/json")),
            "{what}: {:?}",
            answer.header("content-type")
        );
        let body: serde_json::Value = serde_json::from_str(&answer.body)
            .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", answer.body));
        if status >= 400 {
            assert!(body["error"].is_string(), "{what}: {body}");
        }
    }
    // The console's own pages keep their headers; /metrics is not the API's.
    let metrics = client.api(Method::GET, "/metrics", None).await;
    assert_eq!(metrics.status, 200);
}

both_backends!(
    a_new_admin_token_ends_every_old_session,
    sign_out_everywhere_ends_every_session,
    behind_a_proxy_each_client_has_its_own_allowance,
    a_client_cannot_choose_its_own_address,
    the_api_bearer_check_is_limited_per_address,
    a_global_ceiling_slows_guessers_and_never_refuses_the_right_token,
    the_cookie_is_secure_when_the_admin_url_is_https,
    every_admin_api_answer_is_no_store_and_nosniff,
);

/// The body deadline's 408 is an API answer like any other: no-store, nosniff.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_api_body_is_no_store_and_nosniff() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("PAYHOOK_REQUEST_TIMEOUT", "1s")]).await;
    let addr = app.admin.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(
            format!(
                "PUT /api/v1/orders/T-1 HTTP/1.1\r\nHost: payhook\r\n\
                 Authorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\n\
                 Content-Length: 100\r\n\r\n{{\"amount\""
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    // Read until the server closes, within a deadline.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "no answer within 10 s: {:?}",
                String::from_utf8_lossy(&answer)
            ),
        }
    }
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 408"), "{answer}");
    assert!(
        answer.contains("\r\ncache-control: no-store\r\n"),
        "{answer}"
    );
    assert!(
        answer.contains("\r\nx-content-type-options: nosniff\r\n"),
        "{answer}"
    );
}
