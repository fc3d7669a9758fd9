//! The console's pages as askama templates (`templates/console/`): checked
//! when payhook compiles, and every value escaped unless a template says
//! otherwise (none does).

use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;
use askama::Template;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// What a value in a link's path or query keeps as is.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A path segment or query value, percent-encoded.
pub fn encode(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).collect()
}

/// Nothing is loaded from elsewhere, nothing runs: the pages need no script.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// A page, answered with the headers every console page carries.
pub fn html(status: StatusCode, page: &impl Template) -> Result<HttpResponse, askama::Error> {
    let body = page.render()?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(body))
}

/// The signed-in frame of every page: the navigation and the sign-out form.
pub struct Chrome {
    pub csrf: String,
    pub logout_nonce: String,
    pub active: &'static str,
}

/// One state-changing form: where it posts, its nonce, its button.
pub struct Form {
    pub action: String,
    pub nonce: String,
    pub label: &'static str,
    /// The console page to return to afterwards.
    pub back: Option<String>,
}

#[derive(Template)]
#[template(path = "console/login.html")]
pub struct LoginPage {
    pub error: Option<String>,
    pub next: String,
}

#[derive(Template)]
#[template(path = "console/error.html")]
pub struct ErrorPage {
    pub status: u16,
    pub message: String,
}

/// One bar of the outcome chart.
pub struct Bar {
    pub outcome: String,
    pub count: i64,
    /// Bar length in chart units (0 to `BAR_SPACE`).
    pub width: i64,
    pub y: i64,
    pub text_y: i64,
    pub link: String,
}

pub struct Period {
    pub label: &'static str,
    pub total: i64,
    pub rejected: i64,
    pub rejected_share: String,
    pub bars: Vec<Bar>,
    pub chart_height: i64,
}

pub struct Flagged {
    pub orderid: String,
    pub flag: String,
    pub link: String,
}

#[derive(Template)]
#[template(path = "console/overview.html")]
pub struct OverviewPage {
    pub chrome: Chrome,
    pub periods: Vec<Period>,
    pub answered: u64,
    pub p50: String,
    pub p99: String,
    pub awaiting_payment: i64,
    pub needs_review: i64,
    pub missing_callback: i64,
    pub events_pending: i64,
    pub events_dead: i64,
    pub alerts: Vec<(&'static str, u64)>,
    pub alerts_total: u64,
    pub flagged: Vec<Flagged>,
}

pub struct CallbackLine {
    pub id: i64,
    pub at: String,
    pub outcome: String,
    pub orderid: String,
    pub order_link: Option<String>,
    pub http_status: i32,
    pub reason: String,
    pub truncated: bool,
}

#[derive(Template)]
#[template(path = "console/callbacks.html")]
pub struct CallbacksPage {
    pub chrome: Chrome,
    pub rows: Vec<CallbackLine>,
    pub outcomes: Vec<&'static str>,
    pub outcome: String,
    pub orderid: String,
    pub since: String,
    pub sinces: Vec<(&'static str, &'static str)>,
    /// `""` (both), `classic` or `checkout`.
    pub api: String,
    pub apis: Vec<&'static str>,
    pub older: Option<String>,
}

#[derive(Template)]
#[template(path = "console/callback.html")]
pub struct CallbackPage {
    pub chrome: Chrome,
    pub id: i64,
    pub at: String,
    pub method: String,
    pub project_id: String,
    pub orderid: String,
    pub order_link: Option<String>,
    pub outcome: String,
    pub reason: String,
    pub http_status: i32,
    pub raw: String,
    /// Buyer data was hidden from `raw` (`PAYHOOK_LOG_PII` shows it).
    pub raw_masked: bool,
    pub raw_length: String,
    pub raw_sha256: String,
    pub truncated: bool,
    pub fields: Option<Vec<(String, String)>>,
    pub replay: Option<Form>,
    /// A captured gateway notification's confirmation.
    pub confirm: Option<Form>,
    pub notice: Option<String>,
}

#[derive(Template)]
#[template(path = "console/orders.html")]
pub struct OrderSearchPage {
    pub chrome: Chrome,
    pub orderid: String,
    /// Every project an order can belong to (classic numbers, Checkout ids).
    pub projects: Vec<String>,
    pub not_found: bool,
    /// The registration form: what the gateway must be paid for an order.
    pub register: Form,
    /// A Checkout project is served, so a payer-set amount can be registered.
    pub payer_sets: bool,
}

pub struct AttemptLine {
    pub at: String,
    pub status: String,
    pub error: String,
    pub duration_ms: i64,
}

/// One step of an order's story.
pub struct StoryStep {
    pub at: String,
    pub what: String,
    pub anchor: String,
    /// An outcome or a state, shown as a tag.
    pub tag: String,
    pub detail: String,
    pub link: Option<String>,
    pub attempts: Vec<AttemptLine>,
    pub form: Option<Form>,
}

#[derive(Template)]
#[template(path = "console/order.html")]
pub struct OrderPage {
    pub chrome: Chrome,
    pub orderid: String,
    pub project_id: String,
    pub expected: String,
    pub state: String,
    pub flags: Vec<String>,
    pub refunded: String,
    pub closed: Option<String>,
    pub steps: Vec<StoryStep>,
    pub close: Option<Form>,
    /// Erase the order's personal data now.
    pub erase: Form,
    pub notice: Option<String>,
    /// The page of the older callbacks, when the order has more than one page.
    pub older: Option<String>,
}

pub struct EventLine {
    pub id: i64,
    pub at: String,
    pub event_type: String,
    pub orderid: String,
    pub order_link: Option<String>,
    pub state: String,
    pub attempts: Vec<AttemptLine>,
    pub retry: Form,
}

#[derive(Template)]
#[template(path = "console/check.html")]
pub struct CheckPage {
    pub chrome: Chrome,
    /// The session's last run, if any.
    pub lines: Option<Vec<crate::pipeline::actions::CheckLine>>,
    pub ran_at: Option<String>,
    pub failed: bool,
    /// The form that runs the checks.
    pub run: Form,
}

#[derive(Template)]
#[template(path = "console/notifications.html")]
pub struct NotificationsPage {
    pub chrome: Chrome,
    pub state: String,
    pub states: Vec<&'static str>,
    pub events: Vec<EventLine>,
    pub more: Option<String>,
    pub notice: Option<String>,
    /// The "Send a test event" form, when shop notifications are on.
    pub send_test: Option<Form>,
}
