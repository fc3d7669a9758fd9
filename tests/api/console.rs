//! The operator console over HTTP, with a real database: sign-in
//! and sessions, every page with every outcome, every action and its effect
//! in the database, CSRF, and escaping.

use diesel::sql_types::{BigInt, Nullable, Text};
use sha2::{Digest, Sha256};

use crate::helpers::{both_backends, Backend, TestApp, ADMIN_TOKEN};
use crate::support::gateway::{paid_fields, sign, with, without, CallbackForm};

/// A browser without a browser: one session cookie, no redirects followed.
pub(crate) struct Console {
    admin: String,
    client: reqwest::Client,
    cookie: Option<String>,
}

pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) location: Option<String>,
    set_cookie: Vec<String>,
    pub(crate) body: String,
}

impl Console {
    fn new(app: &TestApp) -> Console {
        Console {
            admin: app.admin.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    pub(crate) async fn signed_in(app: &TestApp) -> Console {
        let mut console = Console::new(app);
        let page = console.sign_in(ADMIN_TOKEN).await;
        assert_eq!(page.status, 303, "{}", page.body);
        console
    }

    async fn page(response: reqwest::Response) -> Page {
        let headers = response.headers().clone();
        Page {
            status: response.status().as_u16(),
            location: headers
                .get("location")
                .map(|v| v.to_str().unwrap().to_string()),
            set_cookie: headers
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .collect(),
            body: response.text().await.unwrap(),
        }
    }

    async fn sign_in(&mut self, token: &str) -> Page {
        let response = self
            .client
            .post(format!("{}/ui/login", self.admin))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        let page = Console::page(response).await;
        if let Some(cookie) = page
            .set_cookie
            .iter()
            .find(|c| c.starts_with("payhook_session="))
        {
            let value = cookie
                .trim_start_matches("payhook_session=")
                .split(';')
                .next()
                .unwrap();
            self.cookie = Some(value.to_string());
        }
        page
    }

    async fn get(&self, path: &str) -> Page {
        let mut request = self.client.get(format!("{}{path}", self.admin));
        if let Some(cookie) = &self.cookie {
            request = request.header("Cookie", format!("payhook_session={cookie}"));
        }
        Console::page(request.send().await.unwrap()).await
    }

    /// A page that must render: 200, HTML.
    pub(crate) async fn ok(&self, path: &str) -> String {
        let page = self.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        page.body
    }

    pub(crate) async fn post(&self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut request = self
            .client
            .post(format!("{}{path}", self.admin))
            .form(fields);
        if let Some(cookie) = &self.cookie {
            request = request.header("Cookie", format!("payhook_session={cookie}"));
        }
        Console::page(request.send().await.unwrap()).await
    }

    /// Submits the form posting to `action` on the page `path`, as a browser
    /// would: its hidden fields as they are.
    pub(crate) async fn submit(&self, path: &str, action: &str) -> Page {
        let body = self.ok(path).await;
        let fields = form_fields(&body, action);
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.post(action, &pairs).await
    }
}

/// The hidden fields of the form whose action is `action` (as written in the
/// page, HTML-escaped).
pub(crate) fn form_fields(body: &str, action: &str) -> Vec<(String, String)> {
    let escaped = action.replace('&', "&#38;");
    let start = body
        .find(&format!("method=\"post\" action=\"{action}\""))
        .or_else(|| body.find(&format!("method=\"post\" action=\"{escaped}\"")))
        .unwrap_or_else(|| panic!("no form posting to {action} in:\n{body}"));
    let form = &body[start..start + body[start..].find("</form>").unwrap()];
    form.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .map(|part| {
            let (name, rest) = part.split_once('"').unwrap();
            let value = rest
                .split_once("value=\"")
                .unwrap()
                .1
                .split_once('"')
                .unwrap()
                .0;
            (name.to_string(), unescape(value))
        })
        .collect()
}

fn unescape(text: &str) -> String {
    text.replace("&#38;", "&")
        .replace("&amp;", "&")
        .replace("&#47;", "/")
        .replace("&#x2f;", "/")
        .replace("&#35;", "#")
}

/// The value of the hidden field `name` among `fields`.
fn field(fields: &[(String, String)], name: &str) -> String {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no field {name} in {fields:?}"))
        .1
        .clone()
}

#[derive(diesel::QueryableByName)]
struct Text1 {
    #[diesel(sql_type = Text)]
    t: String,
}

#[derive(diesel::QueryableByName)]
struct MaybeAt {
    #[diesel(sql_type = Nullable<BigInt>)]
    at: Option<i64>,
}

/// Every outcome the default rules give, on orders A-1.. (A-1 ends paid with
/// a `paid_again` flag).
async fn every_outcome(app: &TestApp) {
    use CallbackForm::{Ss2, Ss3};
    for (id, amount) in [("A-1", 1250), ("A-2", 1250), ("A-3", 1250), ("A-4", 1250)] {
        app.register(id, amount, "EUR").await;
    }
    app.register("A-5", 1250, "EUR").await;
    let paid = |id: &str, amount: &str| paid_fields(id, amount, "EUR");
    let status = |id: &str, code: &str| with(paid(id, "1250"), "status", code);
    let a1 = paid("A-1", "1250");
    let sms: Vec<(String, String)> = [
        ("projectid", "123"),
        ("to", "1679"),
        ("sms", "KEY hi"),
        ("from", "370600"),
        ("id", "77"),
        ("amount", "100"),
        ("currency", "EUR"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .to_vec();
    let steps: Vec<(&str, String)> = vec![
        ("fulfilled", sign(&a1, Ss2)),
        ("duplicate", sign(&a1, Ss2)),
        ("paid_again", sign(&with(a1.clone(), "requestid", "2"), Ss2)),
        ("not_paid", sign(&status("A-1", "0"), Ss2)),
        ("amount_mismatch", sign(&paid("A-2", "1"), Ss2)),
        (
            "currency_mismatch",
            sign(&paid_fields("A-3", "1250", "USD"), Ss3),
        ),
        ("refunded", sign(&status("A-4", "5"), Ss2)),
        ("paid_after_refund", sign(&paid("A-4", "1250"), Ss2)),
        ("pending", sign(&status("A-5", "2"), Ss2)),
        ("info", sign(&status("A-5", "3"), Ss2)),
        (
            "test_ignored",
            sign(&with(paid("A-5", "1250"), "test", "1"), Ss2),
        ),
        ("unknown_order", sign(&paid("NOPE", "1"), Ss2)),
        ("sms_received", sign(&sms, Ss2)),
        ("rejected", sign(&a1, Ss2).replacen("data=c", "data=d", 1)),
        (
            "rejected",
            sign(&without(paid("A-5", "1250"), "orderid"), Ss2),
        ),
    ];
    for (outcome, query) in steps {
        app.get_callback(&query).await;
        let stored = app.query::<Text1>(
            "SELECT outcome AS t FROM callbacks WHERE id = (SELECT max(id) FROM callbacks)",
        );
        assert_eq!(stored[0].t, outcome, "{query}");
    }
}

fn last_callback_id(app: &TestApp) -> i64 {
    app.count("SELECT max(id) AS n FROM callbacks")
}

/// The first callback stored with `outcome`.
fn id_of(app: &TestApp, outcome: &str) -> i64 {
    app.count(&format!(
        "SELECT min(id) AS n FROM callbacks WHERE outcome = '{outcome}'"
    ))
}

const PAGES: [&str; 8] = [
    "/ui/",
    "/ui/check",
    "/ui/callbacks",
    "/ui/callbacks/1",
    "/ui/orders",
    "/ui/orders/A-1",
    "/ui/notifications",
    "/ui/notifications?state=dead",
];

async fn no_page_without_a_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    every_outcome(&app).await;
    let mut anonymous = Console::new(&app);
    for path in PAGES {
        let page = anonymous.get(path).await;
        assert_eq!(page.status, 303, "{path}");
        let location = page.location.unwrap();
        assert!(location.starts_with("/ui/login"), "{path}: {location}");
        assert!(!page.body.contains("A-1"), "{path}");
    }
    // Back to the page after signing in.
    assert_eq!(
        anonymous.get("/ui/orders/A-1").await.location.as_deref(),
        Some("/ui/login?next=%2Fui%2Forders%2FA-1")
    );
    // A made-up or stale cookie is no session either.
    anonymous.cookie = Some("00".repeat(32));
    assert_eq!(anonymous.get("/ui/").await.status, 303);
    anonymous.cookie = Some("<script>".into());
    assert_eq!(anonymous.get("/ui/").await.status, 303);
    // Actions neither: nothing replayed, nothing closed.
    let before = last_callback_id(&app);
    let page = anonymous
        .post("/ui/callbacks/1/replay", &[("csrf", "x"), ("nonce", "y")])
        .await;
    assert_eq!(page.status, 303);
    let page = anonymous.post("/ui/orders/A-1/close", &[]).await;
    assert_eq!(page.status, 303);
    assert_eq!(last_callback_id(&app), before);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM orders WHERE closed_at IS NOT NULL"),
        0
    );
    // The sign-in form and the stylesheet need none.
    let login = anonymous.get("/ui/login").await;
    assert_eq!(login.status, 200);
    assert!(login.body.contains("name=\"token\""));
    let css = anonymous.get("/ui/static/payhook.css").await;
    assert_eq!(css.status, 200);
    assert!(css.body.contains(".chart"));
}

async fn sign_in_sets_a_strict_cookie_and_sign_out_ends_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut console = Console::new(&app);
    let page = console.sign_in(ADMIN_TOKEN).await;
    assert_eq!(page.status, 303);
    assert_eq!(page.location.as_deref(), Some("/ui/"));
    let cookie = &page.set_cookie[0];
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=28800"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "{cookie}");
    // The database holds the id's hash, never the id.
    let id = console.cookie.clone().unwrap();
    let rows = app.query::<Text1>("SELECT id_hash AS t FROM ui_sessions");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].t, hex::encode(Sha256::digest(id.as_bytes())));
    assert!(console.ok("/ui/").await.contains("Overview"));

    // Sign-out needs the form's CSRF token, then ends the session for good.
    assert_eq!(console.post("/ui/logout", &[]).await.status, 403);
    assert_eq!(console.get("/ui/").await.status, 200);
    let out = console.submit("/ui/", "/ui/logout").await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location.as_deref(), Some("/ui/login"));
    assert!(
        out.set_cookie[0].contains("Max-Age=0"),
        "{:?}",
        out.set_cookie
    );
    assert_eq!(app.count("SELECT count(*) AS n FROM ui_sessions"), 0);
    assert_eq!(console.get("/ui/").await.status, 303);
}

async fn a_wrong_token_is_a_counted_401_and_limited_per_address(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let counted = |m: &std::collections::HashMap<String, f64>, interface: &str| {
        m[&format!("payhook_admin_unauthorized_total{{interface=\"{interface}\"}}")]
    };
    let before = app.metrics().await;
    let mut console = Console::new(&app);
    let page = console.sign_in("not-the-admin-token").await;
    assert_eq!(page.status, 401);
    assert!(
        page.body.contains("missing or wrong token"),
        "{}",
        page.body
    );
    assert!(page.set_cookie.is_empty());
    assert_eq!(console.sign_in("").await.status, 401);
    // The API's own 401 lands in the same metric.
    let api = app
        .client
        .get(format!("{}/api/v1/callbacks", app.admin))
        .bearer_auth("not-the-admin-token")
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401);
    let after = app.metrics().await;
    assert_eq!(
        counted(&after, "console") - counted(&before, "console"),
        2.0
    );
    assert_eq!(counted(&after, "api") - counted(&before, "api"), 1.0);
    assert_eq!(app.count("SELECT count(*) AS n FROM ui_sessions"), 0);

    // Ten wrong tokens per address and window, the API's counted with the
    // console's (one budget per address); then even the right one waits.
    for _ in 3..10 {
        assert_eq!(console.sign_in("still-wrong-token").await.status, 401);
    }
    let limited = console.sign_in("still-wrong-token").await;
    assert_eq!(limited.status, 429);
    assert_eq!(console.sign_in(ADMIN_TOKEN).await.status, 429);
    assert_eq!(app.count("SELECT count(*) AS n FROM ui_sessions"), 0);
}

async fn every_page_renders_every_outcome(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    every_outcome(&app).await;
    let console = Console::signed_in(&app).await;

    let overview = console.ok("/ui/").await;
    for outcome in [
        "fulfilled",
        "duplicate",
        "paid_again",
        "not_paid",
        "amount_mismatch",
        "currency_mismatch",
        "refunded",
        "paid_after_refund",
        "pending",
        "info",
        "test_ignored",
        "unknown_order",
        "sms_received",
        "rejected",
    ] {
        assert!(
            overview.contains(&format!("<title>{outcome}: ")),
            "{outcome} not in the chart"
        );
    }
    assert!(overview.contains("<svg class=\"chart\""));
    // 2 of 15 rejected.
    assert!(overview.contains("13.3 %"), "{overview}");
    assert!(overview.contains("<strong>1</strong> in review") || overview.contains("in review"));
    assert!(
        overview.contains("href=\"/ui/orders/A-1\""),
        "flagged order linked"
    );
    // No check results on the overview itself (running them sends a test
    // event): a link to the self-check page, which runs them.
    assert!(
        overview.contains("href=\"/ui/check\"") && !overview.contains("tag-check-"),
        "the overview links to the self-check, and shows no results of its own"
    );

    let ids = app.ids("callbacks");
    assert_eq!(ids.len(), 15);
    let list = console.ok("/ui/callbacks").await;
    for &id in &ids {
        assert!(
            list.contains(&format!("href=\"/ui/callbacks/{id}\"")),
            "{id}"
        );
    }
    let filtered = console.ok("/ui/callbacks?outcome=paid_again").await;
    assert!(filtered.contains("tag-paid_again\">paid_again"));
    assert!(!filtered.contains("tag-fulfilled\">fulfilled"));
    let by_order = console.ok("/ui/callbacks?orderid=A-4&since=24h").await;
    assert!(by_order.contains("paid_after_refund") && !by_order.contains(">A-1<"));
    assert_eq!(console.get("/ui/callbacks?outcome=nope").await.status, 400);
    assert_eq!(console.get("/ui/callbacks?since=1y").await.status, 400);

    for &id in &ids {
        let page = console.ok(&format!("/ui/callbacks/{id}")).await;
        assert!(page.contains(&format!("<h1>Callback {id}</h1>")));
    }
    let decoded = console.ok("/ui/callbacks/1").await;
    assert!(
        decoded.contains("<th scope=\"row\">orderid</th><td>A-1</td>"),
        "{decoded}"
    );
    let tampered = console
        .ok(&format!("/ui/callbacks/{}", id_of(&app, "rejected")))
        .await;
    assert!(tampered.contains("ss2 signature does not verify"));
    assert!(tampered.contains("does not verify, so it is not decoded"));
    assert_eq!(console.get("/ui/callbacks/999").await.status, 404);

    let story = console.ok("/ui/orders/A-1").await;
    for text in ["fulfilled", "duplicate", "paid_again", "not_paid", "event "] {
        assert!(story.contains(text), "{text} not in the story");
    }
    assert!(story.contains("tag flag\">paid_again"), "{story}");
    assert!(
        story.contains("flag paid_again"),
        "the flag is on its callback"
    );
    assert_eq!(
        console
            .get("/ui/orders?orderid=A-2")
            .await
            .location
            .as_deref(),
        Some("/ui/orders/A-2")
    );
    assert_eq!(console.get("/ui/orders?orderid=NONE").await.status, 404);
    assert_eq!(console.get("/ui/orders/NONE").await.status, 404);

    let pending = console.ok("/ui/notifications").await;
    for kind in [
        "order.paid",
        "order.paid_again",
        "order.needs_review",
        "order.refunded",
    ] {
        assert!(pending.contains(kind), "{kind}");
    }
    console.ok("/ui/notifications?state=delivered").await;
    assert_eq!(
        console.get("/ui/notifications?state=lost").await.status,
        400
    );
}

async fn actions_work_once_and_land_in_the_database(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    every_outcome(&app).await;
    let console = Console::signed_in(&app).await;

    // Replay from the callback's page: a new row, method REPLAY, duplicate.
    let before = last_callback_id(&app);
    let body = console.ok("/ui/callbacks/1").await;
    let fields = form_fields(&body, "/ui/callbacks/1/replay");
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let nonce = field(&fields, "nonce");
    let first = console.post("/ui/callbacks/1/replay", &pairs).await;
    assert_eq!(first.status, 303);
    let new = before + 1;
    // The page says what the form did, read back by the form's nonce.
    assert_eq!(
        first.location.as_deref(),
        Some(format!("/ui/callbacks/{new}?done={nonce}").as_str())
    );
    let replayed = console.ok(&first.location.unwrap()).await;
    assert!(replayed.contains("tag-duplicate\">duplicate"), "{replayed}");
    assert!(replayed.contains("This is the replay of callback 1: duplicate."));
    let row = app.query::<Text1>(&format!(
        "SELECT method || ' ' || outcome AS t FROM callbacks WHERE id = {new}"
    ));
    assert_eq!(row[0].t, "REPLAY duplicate");
    // The same form again (a double click): sent to the same place, not run again.
    let again = console.post("/ui/callbacks/1/replay", &pairs).await;
    assert_eq!(again.status, 303);
    assert_eq!(
        again.location.as_deref(),
        Some(format!("/ui/callbacks/{new}?done={nonce}").as_str())
    );
    assert_eq!(last_callback_id(&app), new);
    // A fresh form replays again.
    assert_eq!(
        console
            .submit("/ui/callbacks/1", "/ui/callbacks/1/replay")
            .await
            .status,
        303
    );
    assert_eq!(last_callback_id(&app), new + 1);

    // Replay from the order's story comes back to the story, the new row marked.
    let paid_again = id_of(&app, "paid_again");
    let replay_paid_again = console
        .submit(
            "/ui/orders/A-1",
            &format!("/ui/callbacks/{paid_again}/replay"),
        )
        .await;
    let location = replay_paid_again.location.unwrap();
    assert!(
        location.starts_with("/ui/orders/A-1?done=")
            && location.ends_with(&format!("#callback-{}", new + 2)),
        "{location}"
    );
    let story = console.ok(location.split('#').next().unwrap()).await;
    assert!(story.contains(&format!(
        "Replay stored as callback {}: duplicate.",
        new + 2
    )));
    // The anchor is the new row's (the stylesheet marks it as the target).
    assert!(story.contains(&format!("<li id=\"callback-{}\">", new + 2)));

    // Close: the order leaves the missed-callback count; once per form.
    let body = console.ok("/ui/orders/A-5").await;
    let fields = form_fields(&body, "/ui/orders/A-5/close?project_id=123");
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let closed = console
        .post("/ui/orders/A-5/close?project_id=123", &pairs)
        .await;
    let done = format!("/ui/orders/A-5?done={}", field(&fields, "nonce"));
    assert_eq!(closed.location.as_deref(), Some(done.as_str()));
    let at = app.query::<MaybeAt>("SELECT closed_at AS at FROM orders WHERE orderid = 'A-5'");
    let closed_at = at[0].at.expect("closed");
    let again = console
        .post("/ui/orders/A-5/close?project_id=123", &pairs)
        .await;
    assert_eq!(again.location.as_deref(), Some(done.as_str()));
    let at = app.query::<MaybeAt>("SELECT closed_at AS at FROM orders WHERE orderid = 'A-5'");
    assert_eq!(at[0].at, Some(closed_at));
    let page = console.ok(&done).await;
    assert!(page.contains("closed by an operator"));
    assert!(page.contains("Closed: the missed-callback count leaves this order out."));
    assert!(
        !page.contains("/ui/orders/A-5/close"),
        "no Close button once closed"
    );

    // Retry notification: a dead event is pending again, same id.
    let event = app.count("SELECT min(id) AS n FROM outbox WHERE orderid = 'A-1'");
    app.query::<Text1>(&format!(
        "UPDATE outbox SET state = 'dead', dead_at = 1 WHERE id = {event} RETURNING state AS t"
    ));
    let dead = console.ok("/ui/notifications?state=dead").await;
    assert!(dead.contains(&format!("id=\"event-{event}\"")));
    let retried = console
        .submit(
            "/ui/notifications?state=dead",
            &format!("/ui/events/{event}/retry"),
        )
        .await;
    assert_eq!(retried.status, 303);
    let location = retried.location.unwrap();
    assert!(
        location.starts_with("/ui/notifications?state=dead&done=")
            && location.ends_with(&format!("#event-{event}")),
        "{location}"
    );
    let page = console.ok(location.split('#').next().unwrap()).await;
    assert!(page.contains(&format!(
        "Event {event} is pending again: the worker sends it."
    )));
    let state = app.query::<Text1>(&format!("SELECT state AS t FROM outbox WHERE id = {event}"));
    assert_eq!(state[0].t, "pending");
    assert_eq!(
        app.count(&format!(
            "SELECT count(*) AS n FROM outbox WHERE id = {event} AND requeued_at IS NOT NULL"
        )),
        1
    );
    // From the order's story too, back to the story.
    let from_story = console
        .submit("/ui/orders/A-1", &format!("/ui/events/{event}/retry"))
        .await;
    let location = from_story.location.unwrap();
    assert!(
        location.starts_with("/ui/orders/A-1?done=")
            && location.ends_with(&format!("#event-{event}")),
        "{location}"
    );
    assert_eq!(
        console.post("/ui/events/99999/retry", &[]).await.status,
        403
    );
}

async fn a_missing_or_wrong_csrf_token_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    every_outcome(&app).await;
    let console = Console::signed_in(&app).await;
    let other = Console::signed_in(&app).await;
    let before = last_callback_id(&app);
    let body = console.ok("/ui/callbacks/1").await;
    let mut fields = form_fields(&body, "/ui/callbacks/1/replay");
    let nonce = fields.iter().find(|(k, _)| k == "nonce").unwrap().1.clone();
    // Missing.
    let page = console
        .post("/ui/callbacks/1/replay", &[("nonce", nonce.as_str())])
        .await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("CSRF"));
    // Another session's token.
    let theirs = form_fields(&other.ok("/ui/callbacks/1").await, "/ui/callbacks/1/replay");
    let their_csrf = theirs.iter().find(|(k, _)| k == "csrf").unwrap().1.clone();
    for (k, v) in fields.iter_mut() {
        if k == "csrf" {
            *v = their_csrf.clone();
        }
    }
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        console.post("/ui/callbacks/1/replay", &pairs).await.status,
        403
    );
    let garbage = [("csrf", "0000"), ("nonce", nonce.as_str())];
    assert_eq!(
        console
            .post("/ui/callbacks/1/replay", &garbage)
            .await
            .status,
        403
    );
    for path in ["/ui/orders/A-5/close", "/ui/events/1/retry", "/ui/logout"] {
        assert_eq!(console.post(path, &garbage).await.status, 403, "{path}");
    }
    assert_eq!(last_callback_id(&app), before);
    assert_eq!(
        app.count("SELECT count(*) AS n FROM orders WHERE closed_at IS NOT NULL"),
        0
    );
    assert_eq!(app.count("SELECT count(*) AS n FROM ui_sessions"), 2);
}

async fn what_the_gateway_sent_renders_as_text(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("X-1", 1250, "EUR").await;
    let fields = with(
        with(
            with(
                paid_fields("X-1", "1250", "EUR"),
                "paytext",
                "<script>alert(1)</script>",
            ),
            "p_email",
            "buyer@example.com",
        ),
        "name",
        "\"Quote' <b>",
    );
    let reply = app.get_callback(&sign(&fields, CallbackForm::Ss2)).await;
    assert_eq!(reply.body, "OK");
    // A raw request with the markup as is (a rejection stores it verbatim).
    app.post_callback("paytext=<script>alert(1)</script>&q=\"'")
        .await;
    let console = Console::signed_in(&app).await;
    for id in [1, 2] {
        let page = console.ok(&format!("/ui/callbacks/{id}")).await;
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<b>"), "{page}");
    }
    let decoded = console.ok("/ui/callbacks/1").await;
    assert!(
        decoded.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
            || decoded.contains("&lt;script&gt;alert(1)"),
        "{decoded}"
    );
    // Buyer data masked (PAYHOOK_LOG_PII off).
    assert!(!decoded.contains("buyer@example.com"));
    assert!(decoded.contains("<th scope=\"row\">p_email</th><td>***</td>"));
    let raw = console.ok("/ui/callbacks/2").await;
    assert!(
        raw.contains("&#60;script&#62;") || raw.contains("&lt;script&gt;"),
        "{raw}"
    );
    let list = console.ok("/ui/callbacks").await;
    assert!(!list.contains("<script>"));
    // An order id with markup, in the story and the list.
    app.register("<i>x\"", 100, "EUR").await;
    let story = console.ok("/ui/orders/%3Ci%3Ex%22").await;
    assert!(!story.contains("<i>x"), "{story}");
}

/// Text a link carries (what a phisher would write) in every query parameter
/// a page once turned into a notice.
const PHISH: &str = "Your token has leaked: paste it at evil.example";

fn encoded(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A page's status notice, if it has one.
fn notice(body: &str) -> Option<&str> {
    let start = body.find("<p class=\"notice\" role=\"status\">")?;
    let rest = &body[start..];
    Some(&rest[..rest.find("</p>").unwrap()])
}

/// A notice is what this session's form did, read back
/// by the form's nonce (`?done=`); text in the URL is never shown, not even
/// carried through sign-in by `next=`.
async fn a_notice_comes_only_from_the_form_that_led_there(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("N-1", 1250, "EUR").await;
    let paid = sign(&paid_fields("N-1", "1250", "EUR"), CallbackForm::Ss2);
    assert_eq!(app.get_callback(&paid).await.body, "OK");
    let event = app.count("SELECT min(id) AS n FROM outbox");
    let phish = encoded(PHISH);
    let mut console = Console::new(&app);
    // What every page once read as a notice, the session's own or not.
    let crafted = [
        format!("/ui/notifications?tested={phish}"),
        format!("/ui/notifications?retried={event}"),
        "/ui/callbacks/1?replayed_from=77&replay=fulfilled".to_string(),
        "/ui/orders/N-1?closed=1&replayed=1".to_string(),
        format!("/ui/orders/N-1?done={phish}"),
        format!("/ui/orders/N-1?done={}", "ab".repeat(16)),
    ];
    // Through sign-in: the link's `next` leads there, and shows nothing.
    let next = encoded(&crafted[0]);
    let login = console.get(&format!("/ui/login?next={next}")).await;
    assert_eq!(login.status, 200);
    let carried = field(&form_fields(&login.body, "/ui/login"), "next");
    assert_eq!(carried, crafted[0]);
    let response = console
        .client
        .post(format!("{}/ui/login", console.admin))
        .form(&[("token", ADMIN_TOKEN), ("next", carried.as_str())])
        .send()
        .await
        .unwrap();
    let signed_in = Console::page(response).await;
    assert_eq!(signed_in.status, 303);
    assert_eq!(signed_in.location.as_deref(), Some(crafted[0].as_str()));
    let cookie = signed_in
        .set_cookie
        .iter()
        .find_map(|c| c.strip_prefix("payhook_session="))
        .unwrap();
    console.cookie = Some(cookie.split(';').next().unwrap().to_string());
    for path in &crafted {
        let page = console.ok(path).await;
        assert_eq!(notice(&page), None, "{path}:\n{page}");
        assert!(!page.contains("evil.example"), "{path}");
    }

    // The form's own result is shown, to this session only.
    let retried = console
        .submit("/ui/notifications", &format!("/ui/events/{event}/retry"))
        .await;
    assert_eq!(retried.status, 303, "{}", retried.body);
    let location = retried.location.unwrap();
    let location = location.split('#').next().unwrap();
    let page = console.ok(location).await;
    assert_eq!(
        notice(&page),
        Some(format!(
            "<p class=\"notice\" role=\"status\">Event {event} is pending again: the worker sends it."
        ))
        .as_deref()
    );
    let other = Console::signed_in(&app).await;
    let theirs = other.ok(location).await;
    assert_eq!(notice(&theirs), None, "another session's nonce:\n{theirs}");
    // Its nonce names the notification form; on another page it says the same.
    let (_, done) = location.split_once("done=").unwrap();
    let elsewhere = console.ok(&format!("/ui/orders/N-1?done={done}")).await;
    assert!(notice(&elsewhere).is_some_and(|n| n.contains("pending again")));
}

/// Refuses every change to `orders` with a database error (both backends).
fn refuse_order_updates(app: &TestApp) {
    app.execute(match app.backend {
        Backend::Postgres => {
            "CREATE FUNCTION refuse_update() RETURNS trigger LANGUAGE plpgsql AS \
                 $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$; \
                 CREATE TRIGGER refuse_update BEFORE UPDATE ON orders \
                 FOR EACH ROW EXECUTE FUNCTION refuse_update();"
        }
        Backend::Sqlite => {
            "CREATE TRIGGER refuse_update BEFORE UPDATE ON orders \
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
        }
    });
}

/// A form whose action failed is not answered as done
/// when it is sent again. A replay of a truncated row is a 409 each time; a
/// close that failed on the database (503) acts when the same form is sent
/// again; a form still running is a 409 too.
async fn a_failed_form_is_never_a_silent_success(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // A rejection of 4 KiB, stored cut to its first 2 KiB.
    let junk = format!("x={}", "j".repeat(4096));
    assert_eq!(app.post_callback(&junk).await.status, 400);
    let truncated = last_callback_id(&app);
    app.register("F-1", 1250, "EUR").await;
    let console = Console::signed_in(&app).await;
    let page = console.ok(&format!("/ui/callbacks/{truncated}")).await;
    assert!(page.contains("Cannot be replayed"), "{page}");
    // The form a stale page would have (the button is gone now).
    let csrf = field(
        &form_fields(&console.ok("/ui/").await, "/ui/logout"),
        "csrf",
    );
    let nonce = "0123456789abcdef".repeat(2);
    let replay = format!("/ui/callbacks/{truncated}/replay");
    let pairs = [("csrf", csrf.as_str()), ("nonce", nonce.as_str())];
    for attempt in ["first", "again"] {
        let answer = console.post(&replay, &pairs).await;
        assert_eq!(answer.status, 409, "{attempt}: {:?}", answer.location);
        assert!(
            answer
                .body
                .contains("only the beginning of this request is stored"),
            "{attempt}: {}",
            answer.body
        );
    }
    assert_eq!(last_callback_id(&app), truncated);

    // Close while the database refuses it: 503, and nothing closed.
    let action = "/ui/orders/F-1/close?project_id=123";
    let fields = form_fields(&console.ok("/ui/orders/F-1").await, action);
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    refuse_order_updates(&app);
    let failed = console.post(action, &pairs).await;
    assert_eq!(failed.status, 503, "{:?}", failed.location);
    let at = app.query::<MaybeAt>("SELECT closed_at AS at FROM orders WHERE orderid = 'F-1'");
    assert_eq!(at[0].at, None);
    // The database recovers; the same form (a reload) acts this time.
    app.execute(match backend {
        Backend::Postgres => "DROP TRIGGER refuse_update ON orders;",
        Backend::Sqlite => "DROP TRIGGER refuse_update;",
    });
    let retried = console.post(action, &pairs).await;
    let done = format!("/ui/orders/F-1?done={}", field(&fields, "nonce"));
    assert_eq!(retried.status, 303, "{}", retried.body);
    assert_eq!(retried.location.as_deref(), Some(done.as_str()));
    let at = app.query::<MaybeAt>("SELECT closed_at AS at FROM orders WHERE orderid = 'F-1'");
    assert!(at[0].at.is_some(), "the retried form closed the order");
    assert!(console
        .ok(&done)
        .await
        .contains("Closed: the missed-callback count leaves this order out."));

    // A form whose first POST has not finished (its nonce claimed, nothing
    // stored: still running, or cut short by a stop) is answered 409 with
    // the reason, not sent on as if done.
    let session = hex::encode(Sha256::digest(console.cookie.clone().unwrap().as_bytes()));
    let running = "fedcba9876543210".repeat(2);
    app.execute(&format!(
        "INSERT INTO ui_actions (session_hash, nonce, created_at) \
             VALUES ('{session}', '{running}', 1)"
    ));
    let pending = console
        .post(
            "/ui/events/1/retry",
            &[("csrf", csrf.as_str()), ("nonce", running.as_str())],
        )
        .await;
    assert_eq!(pending.status, 409, "{:?}", pending.location);
    assert!(
        pending.body.contains("has not finished"),
        "{}",
        pending.body
    );
}

/// `GET /ui/check` runs nothing (no test event to the
/// shop, no probe stored); it shows the session's last run and the button.
/// The button's POST, with the session's CSRF token and a nonce, runs the
/// checks once per form.
async fn the_self_check_runs_only_on_a_posted_form(backend: Backend) {
    use crate::notify::receiver::{Receiver, Reply};
    let shop = Receiver::always(Reply::Status(204)).await;
    let url = shop.url();
    let app = TestApp::spawn_with(
        backend,
        &[
            ("SHOP_NOTIFY_URL", &url),
            (
                "SHOP_NOTIFY_SECRET",
                "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            ),
        ],
    )
    .await;
    let probes = || app.count("SELECT count(*) AS n FROM callbacks WHERE outcome = 'rejected'");
    let console = Console::signed_in(&app).await;
    for _ in 0..3 {
        let page = console.ok("/ui/check").await;
        assert!(page.contains("Not run in this session yet."), "{page}");
        assert!(page.contains("action=\"/ui/check\""), "{page}");
    }
    assert_eq!((probes(), shop.received().len()), (0, 0));
    // A POST without the form's CSRF token runs nothing either.
    let forged = console
        .post("/ui/check", &[("nonce", "ab".repeat(16).as_str())])
        .await;
    assert_eq!(forged.status, 403);
    assert_eq!((probes(), shop.received().len()), (0, 0));

    let fields = form_fields(&console.ok("/ui/check").await, "/ui/check");
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let ran = console.post("/ui/check", &pairs).await;
    assert_eq!(ran.status, 303, "{}", ran.body);
    let done = format!("/ui/check?done={}", field(&fields, "nonce"));
    assert_eq!(ran.location.as_deref(), Some(done.as_str()));
    assert_eq!((probes(), shop.received().len()), (1, 1));
    let shop_row = "<td>shop notifications</td>\n<td><span class=\"tag tag-check-ok\">ok</span>";
    // The result, shown again and again without running again: by its
    // nonce, as the last run, and for a repeat of the form.
    for path in [done.as_str(), "/ui/check"] {
        let page = console.ok(path).await;
        assert!(page.contains(shop_row), "{path}:\n{page}");
        assert!(page.contains("Nothing failed."), "{path}:\n{page}");
    }
    let again = console.post("/ui/check", &pairs).await;
    assert_eq!(again.location.as_deref(), Some(done.as_str()));
    assert_eq!((probes(), shop.received().len()), (1, 1));
    // Another session has its own (none yet).
    let other = Console::signed_in(&app).await;
    assert!(other
        .ok("/ui/check")
        .await
        .contains("Not run in this session yet."));
    assert!(!other.ok(&done).await.contains(shop_row));
}

both_backends!(
    no_page_without_a_session,
    sign_in_sets_a_strict_cookie_and_sign_out_ends_it,
    a_wrong_token_is_a_counted_401_and_limited_per_address,
    every_page_renders_every_outcome,
    actions_work_once_and_land_in_the_database,
    a_missing_or_wrong_csrf_token_is_refused,
    what_the_gateway_sent_renders_as_text,
    a_notice_comes_only_from_the_form_that_led_there,
    a_failed_form_is_never_a_silent_success,
    the_self_check_runs_only_on_a_posted_form,
);

/// Several instances, one database: a session made on one is good on the
/// other, and signing out on either ends it on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_shared_by_instances_on_one_database() {
    let a = TestApp::spawn(Backend::Postgres).await;
    let b = TestApp::spawn_on(
        Backend::Postgres,
        &a.database_url,
        tempfile::tempdir().unwrap(),
        &[],
    )
    .await;
    let on_a = Console::signed_in(&a).await;
    let mut on_b = Console::new(&b);
    on_b.cookie = on_a.cookie.clone();
    assert!(on_b.ok("/ui/").await.contains("Overview"));
    // A form rendered by one instance is acted on by the other, once.
    a.register("S-1", 100, "EUR").await;
    let body = on_a.ok("/ui/orders/S-1").await;
    let fields = form_fields(&body, "/ui/orders/S-1/close?project_id=123");
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        on_b.post("/ui/orders/S-1/close?project_id=123", &pairs)
            .await
            .status,
        303
    );
    assert_eq!(
        on_a.post("/ui/orders/S-1/close?project_id=123", &pairs)
            .await
            .status,
        303
    );
    assert_eq!(on_b.submit("/ui/", "/ui/logout").await.status, 303);
    assert_eq!(on_a.get("/ui/").await.status, 303);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire_after_their_ttl_and_cookies_can_be_secure() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("PAYHOOK_UI_SESSION_TTL", "1s"),
            ("PAYHOOK_PUBLIC_URL", "https://pay.shop.example"),
        ],
    )
    .await;
    let mut console = Console::new(&app);
    let page = console.sign_in(ADMIN_TOKEN).await;
    assert!(
        page.set_cookie[0].contains("Secure"),
        "{:?}",
        page.set_cookie
    );
    assert!(
        page.set_cookie[0].contains("Max-Age=1"),
        "{:?}",
        page.set_cookie
    );
    assert_eq!(console.get("/ui/").await.status, 200);
    // The session's one second passes: the time is what is tested.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    assert_eq!(console.get("/ui/").await.status, 303);

    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("PAYHOOK_UI_SECURE_COOKIE", "false"),
            ("PAYHOOK_PUBLIC_URL", "https://pay.shop.example"),
        ],
    )
    .await;
    let page = Console::new(&app).sign_in(ADMIN_TOKEN).await;
    assert!(
        !page.set_cookie[0].contains("Secure"),
        "{:?}",
        page.set_cookie
    );
}

/// The API's replay is the console's: same row, same outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_api_replays_through_the_same_action() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    every_outcome(&app).await;
    let response = app
        .client
        .post(format!("{}/api/v1/callbacks/1/replay", app.admin))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["outcome"], "duplicate");
    assert_eq!(body["callback_id"], last_callback_id(&app));
    let missing = app
        .client
        .post(format!("{}/api/v1/callbacks/999/replay", app.admin))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

/// "Send a test event" sends a signed `payhook.test` to the shop as `payhook
/// check` does, once per form, and the page says what the shop answered. An
/// order's story says the state after each callback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_event_reaches_the_shop_once_and_the_story_tells_each_state() {
    use crate::notify::receiver::{Receiver, Reply};
    let shop = Receiver::always(Reply::Status(204)).await;
    let url = shop.url();
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("SHOP_NOTIFY_URL", &url),
            (
                "SHOP_NOTIFY_SECRET",
                "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            ),
        ],
    )
    .await;
    let console = Console::signed_in(&app).await;
    let body = console.ok("/ui/notifications").await;
    let fields = form_fields(&body, "/ui/notifications/test");
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let sent = console.post("/ui/notifications/test", &pairs).await;
    assert_eq!(sent.status, 303, "{}", sent.body);
    let location = sent.location.unwrap();
    assert_eq!(
        location,
        format!("/ui/notifications?done={}", field(&fields, "nonce"))
    );
    let page = console.ok(&location).await;
    assert!(
        page.contains("Test event (payhook.test): acknowledged (HTTP 204)"),
        "{page}"
    );
    let again = console.post("/ui/notifications/test", &pairs).await;
    assert_eq!(again.location.as_deref(), Some(location.as_str()));
    let received = shop.received();
    assert_eq!(received.len(), 1, "a double click sends once");
    assert_eq!(
        (received[0].id(), &received[0].json()["type"]),
        ("0".to_string(), &serde_json::json!("payhook.test"))
    );
    assert!(received[0].headers.contains_key("webhook-signature"));

    // Paid, then paid with another amount: the story says the state each left.
    app.register("S-1", 100, "EUR").await;
    let paid = sign(&paid_fields("S-1", "100", "EUR"), CallbackForm::Ss2);
    assert_eq!(app.get_callback(&paid).await.body, "OK");
    let other = sign(
        &with(paid_fields("S-1", "100", "EUR"), "requestid", "2"),
        CallbackForm::Ss2,
    );
    assert_eq!(app.get_callback(&other).await.body, "OK");
    let story = console.ok("/ui/orders/S-1").await;
    assert!(story.contains("answered 200; order paid"), "{story}");
    assert!(story.contains("flag paid_again; order paid"), "{story}");
}

/// The overview links to the self-check, whose button runs `payhook check`'s
/// checks in the service: the database answers, alerts and shop
/// notifications are off (skipped), and the 16 KiB probe is answered by
/// payhook itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_self_check_runs_the_commands_checks() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let console = Console::signed_in(&app).await;
    assert!(console.ok("/ui/").await.contains("href=\"/ui/check\""));
    // Opening the page runs nothing.
    let before = console.ok("/ui/check").await;
    assert!(before.contains("Not run in this session yet."), "{before}");
    let ran = console.submit("/ui/check", "/ui/check").await;
    assert_eq!(ran.status, 303, "{}", ran.body);
    let page = console.ok(&ran.location.unwrap()).await;
    for (check, status) in [
        ("configuration", "ok"),
        ("database", "ok"),
        ("smtp", "skip"),
        ("shop notifications", "skip"),
    ] {
        let row =
            format!("<td>{check}</td>\n<td><span class=\"tag tag-check-{status}\">{status}</span>");
        assert!(page.contains(&row), "{check} not {status}:\n{page}");
    }
    assert!(page.contains("Nothing failed."), "{page}");
    // The probe is stored as the rejection it is.
    assert_eq!(
        app.count("SELECT count(*) AS n FROM callbacks WHERE outcome = 'rejected'"),
        1
    );
}

/// Buyer data and registrations as the console shows them.
mod confirm;
mod operator_data;
mod registration;
