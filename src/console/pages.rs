//! The console's handlers: translate a request into store reads or an
//! operator action (`pipeline::actions`), and the result into a page.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

use super::error::ConsoleError;
use super::session::{nonce, safe_next, Session};
use super::views::{
    encode, html, AttemptLine, Bar, CallbackLine, CallbackPage, CallbacksPage, CheckPage, Chrome,
    EventLine, Flagged, Form, LoginPage, NotificationsPage, OrderPage, OrderSearchPage,
    OverviewPage, Period, StoryStep,
};
use super::ConsoleSettings;
use crate::domain::{AmountMode, OrderState, Outcome};
use crate::http::auth::{retry_after_seconds, Gate, Refusal};
use crate::http::AppState;
use crate::notify::EventType;
use crate::pipeline::actions::{self, CheckLine, ReplayError};
use crate::pipeline::registration;
use crate::pipeline::Pipeline;
use crate::store::{
    rfc3339, AttemptRow, EventFilter, EventState, FormClaim, FormDone, FormResult, JournalFilter,
};

type Page = Result<HttpResponse, ConsoleError>;

const STYLESHEET: &str = include_str!("static/payhook.css");
const PAGE_SIZE: i64 = 50;
const HOUR_MS: i64 = 3_600_000;

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn chrome(session: &Session, active: &'static str) -> Chrome {
    Chrome {
        csrf: session.csrf_token(),
        logout_nonce: nonce(),
        active,
    }
}

fn form(action: String, label: &'static str, back: Option<String>) -> Form {
    Form {
        action,
        nonce: nonce(),
        label,
        back,
    }
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// `location` with one more query parameter.
fn with_param(location: &str, name: &str, value: &str) -> String {
    let (path, anchor) = location.split_once('#').unwrap_or((location, ""));
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut out = format!("{path}{sep}{name}={}", encode(value));
    if !anchor.is_empty() {
        out.push('#');
        out.push_str(anchor);
    }
    out
}

/// The page of an order; the project is named when it is not the default one.
fn order_link(state: &AppState, project: Option<&str>, orderid: &str) -> String {
    let default = state.projects.first().map(|p| p.id.to_string());
    let mut link = format!("/ui/orders/{}", encode(orderid));
    if let Some(project) = project.filter(|p| Some(*p) != default.as_deref()) {
        link = with_param(&link, "project_id", project);
    }
    link
}

/// The configured project an order belongs to (default: the first one).
fn project_of(state: &AppState, requested: Option<&str>) -> Result<String, ConsoleError> {
    state
        .order_project(requested)
        .map_err(ConsoleError::BadRequest)
}

fn attempt_lines(attempts: Vec<AttemptRow>) -> Vec<AttemptLine> {
    attempts
        .into_iter()
        .map(|a| AttemptLine {
            at: rfc3339(a.attempted_at),
            status: a
                .status_code
                .map_or_else(|| "no answer".to_string(), |s| format!("HTTP {s}")),
            error: a.error.unwrap_or_default(),
            duration_ms: a.duration_ms,
        })
        .collect()
}

pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "max-age=3600"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(STYLESHEET)
}

pub async fn to_overview() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/ui/"))
        .finish()
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

pub async fn login_form(query: web::Query<LoginQuery>) -> Page {
    let next = query
        .next
        .clone()
        .filter(|n| safe_next(n))
        .unwrap_or_default();
    Ok(html(StatusCode::OK, &LoginPage { error: None, next })?)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
    next: Option<String>,
}

/// `POST /ui/login`: the admin token makes a session, bound to that token
/// (its fingerprint is stored with it). A wrong one is answered 401 like the
/// API's and counted in `payhook_admin_unauthorized_total`; an address that
/// has sent too many (`http::auth::Gate`, shared with the API) is refused
/// (429) before its token is even looked at.
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    settings: web::Data<ConsoleSettings>,
    gate: web::Data<Gate>,
    form: web::Form<LoginForm>,
) -> Page {
    let addr = gate.client(&req);
    let next = form.next.clone().filter(|n| safe_next(n));
    match gate.check(addr, Some(&form.token), &state.admin_token) {
        Ok(()) => {}
        Err(Refusal::Limited { retry_after }) => {
            tracing::debug!(remote = ?addr, "console sign-in refused: too many wrong tokens");
            let page = LoginPage {
                error: Some("Too many wrong tokens from this address; try again later.".into()),
                next: next.unwrap_or_default(),
            };
            let mut response = html(StatusCode::TOO_MANY_REQUESTS, &page)?;
            response.headers_mut().insert(
                header::RETRY_AFTER,
                header::HeaderValue::from(retry_after_seconds(retry_after)),
            );
            return Ok(response);
        }
        Err(Refusal::Wrong | Refusal::Missing) => {
            state.metrics.admin_unauthorized("console");
            tracing::warn!(remote = ?addr, "console sign-in with a missing or wrong token");
            let page = LoginPage {
                error: Some("missing or wrong token".into()),
                next: next.unwrap_or_default(),
            };
            return Ok(html(StatusCode::UNAUTHORIZED, &page)?);
        }
    }
    let session = Session::generate();
    let hash = session.hash().to_string();
    let (ttl, fingerprint) = (settings.session_ttl, settings.token_fingerprint.clone());
    let remote = addr.map(|a| a.to_string());
    state
        .store
        .bounded(move |store| {
            store.create_session(
                &hash,
                &fingerprint,
                i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX),
                remote.as_deref(),
            )
        })
        .await?;
    tracing::info!(session = %session.handle(), remote = ?addr, "console session started");
    let mut response = see_other(next.as_deref().unwrap_or("/ui/"));
    response
        .add_cookie(&session.cookie(ttl, settings.secure_cookie))
        .map_err(|e| ConsoleError::BadRequest(e.to_string()))?;
    Ok(response)
}

/// The fields every state-changing form carries. Optional here, so that a
/// form without them is refused as a CSRF failure (403), not a parse error.
#[derive(Deserialize)]
pub struct ActionForm {
    csrf: Option<String>,
    nonce: Option<String>,
    /// The console page to return to afterwards.
    back: Option<String>,
}

impl ActionForm {
    fn back(&self) -> Option<String> {
        self.back.clone().filter(|b| safe_next(b))
    }
}

/// What an action did: where it leads, and what the page there says about it.
struct Done {
    location: String,
    notice: Option<String>,
    /// The self-check's lines, shown again by `GET /ui/check`.
    check: Option<Vec<CheckLine>>,
}

impl Done {
    fn notice(location: String, notice: String) -> Done {
        Done {
            location,
            notice: Some(notice),
            check: None,
        }
    }
}

/// Checks the form's CSRF token, then runs `action` once per form nonce: the
/// first POST acts and stores what it came to; a repeat (a double click, a
/// reload) is sent to the same page without acting again. An action that
/// fails gives its nonce back: the same form sent again acts.
async fn act(
    state: web::Data<AppState>,
    session: Session,
    form: &ActionForm,
    action: impl FnOnce(&Pipeline, &str) -> Result<Done, ConsoleError> + Send + 'static,
) -> Page {
    let nonce = match claim(&state, &session, form).await? {
        NonceClaim::Repeat(page) => return Ok(page),
        NonceClaim::First(nonce) => nonce,
    };
    let actor = session.handle();
    let done = match state
        .pipeline
        .bounded(move |pipeline| Ok(action(&pipeline, &actor)))
        .await
    {
        Ok(done) => done,
        Err(e) => Err(e.into()),
    };
    settle(&state, &session, nonce, done).await
}

/// `act` for an action that waits on something else than the database (the
/// shop's endpoint): it runs on the async side, bounded by its own time-out.
async fn act_async<F>(
    state: web::Data<AppState>,
    session: Session,
    form: &ActionForm,
    action: impl FnOnce(web::Data<AppState>, String) -> F,
) -> Page
where
    F: std::future::Future<Output = Result<Done, ConsoleError>>,
{
    let nonce = match claim(&state, &session, form).await? {
        NonceClaim::Repeat(page) => return Ok(page),
        NonceClaim::First(nonce) => nonce,
    };
    let done = action(state.clone(), session.handle()).await;
    settle(&state, &session, nonce, done).await
}

enum NonceClaim {
    /// This form acted before: to where it led.
    Repeat(HttpResponse),
    /// The first time: its nonce, to store what it comes to.
    First(String),
}

/// A form's nonce: 32 hex digits, as `session::nonce` makes them.
fn well_formed(nonce: &str) -> bool {
    nonce.len() == 32 && nonce.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The form's CSRF token, then its nonce claimed for this session.
async fn claim(
    state: &web::Data<AppState>,
    session: &Session,
    form: &ActionForm,
) -> Result<NonceClaim, ConsoleError> {
    if !form.csrf.as_deref().is_some_and(|t| session.csrf_ok(t)) {
        tracing::warn!(session = %session.handle(), "console form refused: missing or wrong CSRF token");
        return Err(ConsoleError::Csrf);
    }
    let nonce = form
        .nonce
        .clone()
        .filter(|n| well_formed(n))
        .ok_or_else(|| ConsoleError::BadRequest("the form has no nonce; reload the page".into()))?;
    let (hash, n) = (session.hash().to_string(), nonce.clone());
    let claim = state
        .store
        .bounded(move |store| store.claim_form(&hash, &n))
        .await?;
    match claim {
        FormClaim::Repeat(Some(location)) => {
            tracing::info!(session = %session.handle(), "console form sent again: not acted on twice");
            Ok(NonceClaim::Repeat(see_other(&location)))
        }
        // Still running (a double click), or cut short (the instance stopped,
        // or the database failed after the claim and before the release).
        FormClaim::Repeat(None) => Err(ConsoleError::Conflict(
            "this form was sent before and its action has not finished; open the page again \
             to see what it did, and for a fresh form"
                .into(),
        )),
        FormClaim::First => Ok(NonceClaim::First(nonce)),
    }
}

/// Stores what the form's action came to and sends the operator to its page,
/// which reads the notice back by the nonce (`?done=`). A failed action's
/// nonce is given back, and its error answered.
async fn settle(
    state: &web::Data<AppState>,
    session: &Session,
    nonce: String,
    done: Result<Done, ConsoleError>,
) -> Page {
    let hash = session.hash().to_string();
    let done = match done {
        Ok(done) => done,
        Err(e) => {
            let n = nonce.clone();
            if let Err(release) = state
                .store
                .bounded(move |store| store.release_form(&hash, &n))
                .await
            {
                tracing::warn!(session = %session.handle(), error = %release,
                    "console form failed and its nonce was not given back");
            }
            return Err(e);
        }
    };
    let result = FormResult {
        location: with_param(&done.location, "done", &nonce),
        notice: done.notice,
        // Strings only: serialising cannot fail.
        check_lines: done
            .check
            .and_then(|lines| serde_json::to_string(&lines).ok()),
    };
    let location = result.location.clone();
    if let Err(e) = state
        .store
        .bounded(move |store| store.finish_form(&hash, &nonce, &result))
        .await
    {
        // It acted: its page shows the effect, without a notice.
        tracing::warn!(session = %session.handle(), error = %e,
            "console form acted, but what it came to was not stored");
    }
    Ok(see_other(&location))
}

/// What the form named by a page's `?done=` came to, when it is a finished
/// form of this session; anything else (another session's nonce, a made-up
/// one) shows nothing.
async fn done(
    state: &AppState,
    session: &Session,
    nonce: Option<&str>,
) -> Result<Option<FormDone>, ConsoleError> {
    let Some(nonce) = nonce.filter(|n| well_formed(n)).map(str::to_string) else {
        return Ok(None);
    };
    let hash = session.hash().to_string();
    Ok(state
        .store
        .bounded(move |store| store.form_done(&hash, &nonce))
        .await?)
}

/// `POST /ui/logout`: the session's row goes, on every instance at once.
pub async fn logout(
    state: web::Data<AppState>,
    settings: web::Data<ConsoleSettings>,
    session: Session,
    form: web::Form<ActionForm>,
) -> Page {
    if !form.csrf.as_deref().is_some_and(|t| session.csrf_ok(t)) {
        return Err(ConsoleError::Csrf);
    }
    let hash = session.hash().to_string();
    state
        .store
        .bounded(move |store| store.delete_session(&hash))
        .await?;
    tracing::info!(session = %session.handle(), "console session ended");
    signed_out(&settings)
}

/// To the sign-in page, with the session cookie removed.
fn signed_out(settings: &ConsoleSettings) -> Page {
    let mut response = see_other("/ui/login");
    response
        .add_cookie(&Session::removal(settings.secure_cookie))
        .map_err(|e| ConsoleError::BadRequest(e.to_string()))?;
    Ok(response)
}

/// `POST /ui/sessions/revoke`: "sign out everywhere". Every session ends, this
/// one with the others, on every instance (`actions::revoke_sessions`, as the
/// CLI and the API do it).
pub async fn revoke_sessions(
    state: web::Data<AppState>,
    settings: web::Data<ConsoleSettings>,
    session: Session,
    form: web::Form<ActionForm>,
) -> Page {
    if !form.csrf.as_deref().is_some_and(|t| session.csrf_ok(t)) {
        return Err(ConsoleError::Csrf);
    }
    let actor = session.handle();
    state
        .store
        .bounded(move |store| actions::revoke_sessions(&store, &actor))
        .await?;
    signed_out(&settings)
}

fn period(label: &'static str, since: &str, by_outcome: &[(String, i64)]) -> Period {
    // Known outcomes in their usual order, then anything else stored.
    let mut counts: Vec<(String, i64)> = Outcome::ALL
        .iter()
        .filter_map(|o| {
            by_outcome
                .iter()
                .find(|(name, _)| name == o.as_str())
                .map(|(name, n)| (name.clone(), *n))
        })
        .collect();
    for (name, n) in by_outcome {
        if Outcome::parse(name).is_none() {
            counts.push((name.clone(), *n));
        }
    }
    counts.retain(|(_, n)| *n > 0);
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    let rejected = counts
        .iter()
        .find(|(name, _)| name == Outcome::Rejected.as_str())
        .map_or(0, |(_, n)| *n);
    let max = counts.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1);
    const BAR_SPACE: i64 = 230;
    let bars = counts
        .iter()
        .enumerate()
        .map(|(i, (name, n))| {
            let y = i as i64 * 22 + 2;
            Bar {
                outcome: name.clone(),
                count: *n,
                width: (n * BAR_SPACE / max).max(1),
                y,
                text_y: y + 13,
                link: format!("/ui/callbacks?outcome={}&since={since}", encode(name)),
            }
        })
        .collect::<Vec<_>>();
    Period {
        label,
        total,
        rejected,
        rejected_share: if total == 0 {
            "–".into()
        } else {
            format!("{:.1} %", rejected as f64 * 100.0 / total as f64)
        },
        chart_height: bars.len() as i64 * 22 + 4,
        bars,
    }
}

fn seconds_text(seconds: Option<f64>) -> String {
    match seconds {
        None => "–".into(),
        Some(s) if s < 1.0 => format!("≤ {} ms", (s * 1000.0).round()),
        Some(s) => format!("≤ {s} s"),
    }
}

/// `GET /ui/`: the overview.
pub async fn overview(
    session: Session,
    state: web::Data<AppState>,
    settings: web::Data<ConsoleSettings>,
) -> Page {
    let now = now_millis();
    let missed_cutoff = now - settings.missed_after.as_millis() as i64;
    let missed_since = now - settings.missed_window.as_millis() as i64;
    let (day, week, flagged) = state
        .store
        .bounded(move |store| {
            let day = store.overview(now - 24 * HOUR_MS, missed_since, missed_cutoff)?;
            let week = store.callbacks_by_outcome(now - 7 * 24 * HOUR_MS)?;
            let flagged = store.flagged_orders(10)?;
            Ok((day, week, flagged))
        })
        .await?;
    let events = |s: EventState| {
        day.events
            .iter()
            .find(|(name, _)| name == s.as_str())
            .map_or(0, |(_, n)| *n)
    };
    let alerts = state.metrics.alerts_sent();
    let page = OverviewPage {
        chrome: chrome(&session, "overview"),
        periods: vec![
            period("last 24 h", "24h", &day.by_outcome),
            period("last 7 d", "7d", &week),
        ],
        answered: state.metrics.callbacks_answered(),
        p50: seconds_text(state.metrics.answer_time_quantile(0.5)),
        p99: seconds_text(state.metrics.answer_time_quantile(0.99)),
        awaiting_payment: day.awaiting_payment,
        needs_review: day.needs_review,
        missing_callback: day.missing_callback,
        events_pending: events(EventState::Pending),
        events_dead: events(EventState::Dead),
        alerts_total: alerts.iter().map(|(_, n)| n).sum(),
        alerts,
        flagged: flagged
            .into_iter()
            .map(|(project, orderid, flag)| Flagged {
                link: order_link(&state, Some(&project), &orderid),
                orderid,
                flag,
            })
            .collect(),
    };
    Ok(html(StatusCode::OK, &page)?)
}

/// The time filter's choices: value, label, age in hours (0: any time).
const SINCES: [(&str, &str, i64); 5] = [
    ("all", "any time", 0),
    ("1h", "last hour", 1),
    ("24h", "last 24 h", 24),
    ("7d", "last 7 d", 7 * 24),
    ("30d", "last 30 d", 30 * 24),
];

#[derive(Deserialize)]
pub struct CallbacksQuery {
    outcome: Option<String>,
    orderid: Option<String>,
    since: Option<String>,
    api: Option<String>,
    before: Option<i64>,
}

/// `GET /ui/callbacks`: the journal, newest first, filtered, in pages.
pub async fn callbacks(
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<CallbacksQuery>,
) -> Page {
    let query = query.into_inner();
    let outcome_text = query.outcome.unwrap_or_default();
    let outcome = match outcome_text.as_str() {
        "" => None,
        name => Some(
            Outcome::parse(name)
                .ok_or_else(|| ConsoleError::BadRequest(format!("unknown outcome {name:?}")))?,
        ),
    };
    let since_text = query.since.unwrap_or_else(|| "all".into());
    let since = match SINCES.iter().find(|(v, _, _)| *v == since_text) {
        Some((_, _, 0)) => None,
        Some((_, _, hours)) => Some(now_millis() - hours * HOUR_MS),
        None => {
            return Err(ConsoleError::BadRequest(format!(
                "since must be one of {} (not {since_text:?})",
                SINCES.map(|(v, _, _)| v).join(", ")
            )))
        }
    };
    let orderid = query.orderid.unwrap_or_default().trim().to_string();
    let api = query.api.unwrap_or_default();
    if !api.is_empty() && !crate::metrics::APIS.contains(&api.as_str()) {
        return Err(ConsoleError::BadRequest(format!(
            "api must be classic or checkout (not {api:?})"
        )));
    }
    let filter = JournalFilter {
        outcome,
        orderid: (!orderid.is_empty()).then(|| orderid.clone()),
        since,
        api: (!api.is_empty()).then(|| api.clone()),
        before: query.before,
        limit: PAGE_SIZE,
    };
    let rows = state
        .store
        .bounded(move |store| store.journal(&filter))
        .await?;
    let older = (rows.len() as i64 == PAGE_SIZE).then(|| {
        let last = rows.last().map_or(0, |r| r.id);
        format!(
            "/ui/callbacks?outcome={}&orderid={}&since={}&api={}&before={last}",
            encode(&outcome_text),
            encode(&orderid),
            encode(&since_text),
            encode(&api)
        )
    });
    let page = CallbacksPage {
        chrome: chrome(&session, "callbacks"),
        rows: rows
            .into_iter()
            .map(|r| CallbackLine {
                order_link: r
                    .orderid
                    .as_deref()
                    .map(|o| order_link(&state, r.project_id.as_deref(), o)),
                id: r.id,
                at: rfc3339(r.received_at),
                outcome: r.outcome,
                orderid: r.orderid.unwrap_or_else(|| "-".into()),
                http_status: r.http_status,
                reason: r.reason.unwrap_or_default(),
                truncated: r.raw_truncated,
            })
            .collect(),
        outcomes: Outcome::ALL.iter().map(|o| o.as_str()).collect(),
        outcome: outcome_text,
        orderid,
        since: since_text,
        sinces: SINCES.iter().map(|(v, l, _)| (*v, *l)).collect(),
        api,
        apis: crate::metrics::APIS.to_vec(),
        older,
    };
    Ok(html(StatusCode::OK, &page)?)
}

/// `?done=`: the nonce of the form that led here, whose notice the page shows.
#[derive(Deserialize)]
pub struct DoneQuery {
    done: Option<String>,
}

/// `GET /ui/callbacks/{id}`: one stored request, raw and decoded.
pub async fn callback(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    query: web::Query<DoneQuery>,
) -> Page {
    let id = path.into_inner();
    let entry = state
        .store
        .bounded(move |store| store.journal_entry(id))
        .await?
        .ok_or_else(|| ConsoleError::NotFound(format!("callback {id}")))?;
    let fields =
        actions::decoded_fields(state.pipeline.verifier(), &entry, state.log_pii).map(|v| {
            v.as_object()
                .map(|map| {
                    map.iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                v.as_str().map_or_else(|| v.to_string(), str::to_string),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default()
        });
    let raw = actions::shown_raw(&entry, state.log_pii);
    let notice = done(&state, &session, query.done.as_deref())
        .await?
        .and_then(|d| d.notice);
    // A gateway notification nothing verified waits for an operator's word.
    let confirm =
        (entry.outcome == Outcome::Captured.as_str() && entry.orderid.is_some()).then(|| {
            form(
                format!("/ui/callbacks/{id}/confirm"),
                "Confirm payment",
                None,
            )
        });
    // Nothing of a gateway's notification is read again without a recipe.
    let unsigned_gateway = entry.api == crate::pipeline::Api::Gateway.as_str()
        && !entry
            .project_id
            .as_deref()
            .and_then(|name| state.pipeline.gateway_recipe(name))
            .is_some_and(|recipe| recipe.verifies());
    let replayable = !entry.raw_truncated && !unsigned_gateway && confirm.is_none();
    let page = CallbackPage {
        chrome: chrome(&session, "callbacks"),
        confirm,
        replay: replayable.then(|| form(format!("/ui/callbacks/{id}/replay"), "Replay", None)),
        order_link: entry
            .orderid
            .as_deref()
            .map(|o| order_link(&state, entry.project_id.as_deref(), o)),
        id,
        at: entry.received_at_rfc3339(),
        method: entry.method,
        project_id: entry.project_id.unwrap_or_else(|| "-".into()),
        orderid: entry.orderid.unwrap_or_else(|| "-".into()),
        outcome: entry.outcome,
        reason: entry.reason.unwrap_or_else(|| "-".into()),
        http_status: entry.http_status,
        raw: raw.text,
        raw_masked: raw.masked,
        raw_length: entry.raw_length.map_or("?".into(), |n| n.to_string()),
        raw_sha256: entry.raw_sha256.unwrap_or_else(|| "?".into()),
        truncated: entry.raw_truncated,
        fields,
        notice,
    };
    Ok(html(StatusCode::OK, &page)?)
}

/// `POST /ui/callbacks/{id}/replay`: through the pipeline again, once per form.
pub async fn replay(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    form: web::Form<ActionForm>,
) -> Page {
    let id = path.into_inner();
    let back = form.back();
    act(state, session, &form, move |pipeline, actor| {
        let replayed = match actions::replay(pipeline, id, actor) {
            Ok(r) => r,
            Err(ReplayError::NotFound(_)) => {
                return Err(ConsoleError::NotFound(format!("callback {id}")))
            }
            Err(ReplayError::Store(e)) => return Err(ConsoleError::Unavailable(e)),
            Err(e) => return Err(ConsoleError::Conflict(e.to_string())),
        };
        let outcome = replayed.outcome_name();
        Ok(match (back, replayed.callback_id) {
            (Some(back), Some(new)) => Done::notice(
                format!(
                    "{}#callback-{new}",
                    back.split('#').next().unwrap_or_default()
                ),
                format!("Replay stored as callback {new}: {outcome}."),
            ),
            (None, Some(new)) => Done::notice(
                format!("/ui/callbacks/{new}"),
                format!("This is the replay of callback {id}: {outcome}."),
            ),
            (_, None) => Done::notice(
                format!("/ui/callbacks/{id}"),
                format!("Replayed: {outcome} (not stored as a new row with an order)."),
            ),
        })
    })
    .await
}

/// `POST /ui/callbacks/{id}/confirm`: a captured gateway notification
/// confirmed as its order's payment (`Pipeline::confirm_captured`, the
/// checks of `payhook orders confirm` and the admin API), once per form.
pub async fn confirm(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    form: web::Form<ActionForm>,
) -> Page {
    let id = path.into_inner();
    act(state, session, &form, move |pipeline, actor| {
        let (processed, orderid) = pipeline.confirm_captured(id, actor)?;
        Ok(Done::notice(
            format!("/ui/callbacks/{id}"),
            format!(
                "Confirmed as callback {}: {} for order {orderid}.",
                processed.callback_id,
                processed.outcome.as_str()
            ),
        ))
    })
    .await
}

#[derive(Deserialize)]
pub struct OrderSearch {
    orderid: Option<String>,
    /// A classic project's number or a Checkout project's client id.
    project_id: Option<String>,
}

/// `GET /ui/orders?orderid=`: to the order's page, when there is one.
pub async fn order_search(
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<OrderSearch>,
) -> Page {
    let orderid = query.orderid.clone().unwrap_or_default().trim().to_string();
    let mut not_found = false;
    if !orderid.is_empty() {
        let project = project_of(&state, query.project_id.as_deref())?;
        let (p, o) = (project.clone(), orderid.clone());
        let found = state
            .store
            .bounded(move |store| store.order(&p, &o))
            .await?;
        if found.is_some() {
            return Ok(see_other(&order_link(&state, Some(&project), &orderid)));
        }
        not_found = true;
    }
    let projects = state.project_ids();
    let page = OrderSearchPage {
        chrome: chrome(&session, "orders"),
        orderid,
        payer_sets: projects.iter().any(|p| state.is_checkout_project(p)),
        projects,
        not_found,
        register: form("/ui/orders".into(), "Register", None),
    };
    let status = if not_found {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::OK
    };
    Ok(html(status, &page)?)
}

#[derive(Deserialize)]
pub struct RegisterForm {
    #[serde(flatten)]
    form: ActionForm,
    orderid: String,
    project_id: Option<String>,
    /// Minor units, as the admin API takes them.
    amount: String,
    currency: String,
    /// `fixed` (absent: fixed) or `payer_sets`.
    amount_mode: Option<String>,
    /// A checked box sends a value; an unchecked one sends nothing.
    test: Option<String>,
}

/// `POST /ui/orders`: registers what an order must be paid, by the rules
/// `PUT /api/v1/orders/{id}` applies (`pipeline::registration`), then to the
/// order's page.
pub async fn register_order(
    session: Session,
    state: web::Data<AppState>,
    form: web::Form<RegisterForm>,
) -> Page {
    let RegisterForm {
        form,
        orderid,
        project_id,
        amount,
        currency,
        amount_mode,
        test,
    } = form.into_inner();
    let project = project_of(&state, project_id.as_deref().filter(|p| !p.is_empty()))?;
    let checkout = state.is_checkout_project(&project);
    let link = order_link(&state, Some(&project), orderid.trim());
    act(state.clone(), session, &form, move |pipeline, actor| {
        let order = registration::NewOrder {
            orderid: registration::order_id(orderid.trim().to_string())?,
            amount: registration::amount(amount.trim().parse().ok())?,
            currency: registration::currency(Some(currency.trim()))?,
            amount_mode: registration::amount_mode(
                amount_mode.as_deref().filter(|m| !m.is_empty()),
                &project,
                checkout,
            )?,
            test: test.is_some(),
            project_id: project,
        };
        let registered = registration::register(pipeline.store(), &order, None, actor)?;
        let notice = if registered.created {
            let at_least = match order.amount_mode {
                AmountMode::Fixed => "",
                AmountMode::PayerSets => "at least ",
            };
            let test = if order.test { " (a test order)" } else { "" };
            format!(
                "Registered: order {} expects {at_least}{} {} (minor units){test}.",
                order.orderid,
                order.amount,
                order.currency.as_str()
            )
        } else {
            "Registered before with the same values: nothing changed.".to_string()
        };
        Ok(Done::notice(link, notice))
    })
    .await
}

#[derive(Deserialize)]
pub struct OrderQuery {
    /// A classic project's number or a Checkout project's client id.
    project_id: Option<String>,
    /// Only callbacks below this id (the order's older callbacks).
    callbacks_before: Option<i64>,
    done: Option<String>,
}

/// `GET /ui/orders/{orderid}`: the order's story.
pub async fn order(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<OrderQuery>,
) -> Page {
    let orderid = path.into_inner();
    let project = project_of(&state, query.project_id.as_deref())?;
    let (p, o) = (project.clone(), orderid.clone());
    let before = query.callbacks_before;
    let found = state
        .store
        .bounded(move |store| {
            let Some(order) = store.order_page(&p, &o, before)? else {
                return Ok(None);
            };
            let flags = store.order_flags(&p, &o)?;
            let rows = store.events(&EventFilter {
                limit: 1000,
                order: Some((p.clone(), o.clone())),
                ..EventFilter::default()
            })?;
            let mut events = Vec::with_capacity(rows.len());
            for row in rows {
                let attempts = store.event(row.id)?.map(|(_, a)| a).unwrap_or_default();
                events.push((row, attempts));
            }
            Ok(Some((order, flags, events)))
        })
        .await?;
    let (order, flags, events) =
        found.ok_or_else(|| ConsoleError::NotFound(format!("order {orderid}")))?;
    let here = order_link(&state, Some(&project), &orderid);

    let mut steps: Vec<(i64, StoryStep)> = Vec::new();
    let blank = |at: i64, what: String, anchor: String| StoryStep {
        at: if at == i64::MIN {
            String::new()
        } else {
            rfc3339(at)
        },
        what,
        anchor,
        tag: String::new(),
        detail: String::new(),
        link: None,
        attempts: Vec::new(),
        form: None,
    };
    let expectation = order.expectation();
    let expected = expectation
        .clone()
        .unwrap_or_else(|| "nothing registered".into());
    let mut registered = blank(i64::MIN, "registered".into(), "registered".into());
    registered.detail = match expectation {
        Some(expected) => format!("expects {expected}"),
        None => "made by a callback; no expectation registered".into(),
    };
    steps.push((i64::MIN, registered));
    let mut state_then = OrderState::AwaitingPayment;
    for c in &order.callbacks {
        let mut step = blank(
            c.received_at,
            format!("callback {}", c.id),
            format!("callback-{}", c.id),
        );
        step.tag = c.outcome.clone();
        let raised: Vec<&str> = flags
            .iter()
            .filter(|f| f.callback_id == Some(c.id))
            .map(|f| f.flag.as_str())
            .collect();
        let mut detail = format!("answered {}", c.http_status);
        if let Some(reason) = &c.reason {
            detail.push_str(&format!("; {reason}"));
        }
        if !raised.is_empty() {
            detail.push_str(&format!("; flag {}", raised.join(", ")));
        }
        if let Some(outcome) = Outcome::parse(&c.outcome) {
            state_then = state_then.after(outcome);
            detail.push_str(&format!("; order {}", state_then.as_str()));
        }
        step.detail = detail;
        step.link = Some(format!("/ui/callbacks/{}", c.id));
        if !c.raw_truncated {
            step.form = Some(form(
                format!("/ui/callbacks/{}/replay", c.id),
                "Replay",
                Some(here.clone()),
            ));
        }
        steps.push((c.received_at, step));
    }
    for (row, attempts) in events {
        let mut step = blank(
            row.created_at,
            format!("event {} {}", row.id, EventType::name_of_kind(&row.kind)),
            format!("event-{}", row.id),
        );
        step.tag = row.state.clone();
        step.detail = format!(
            "{} attempt(s); from callback {}",
            row.attempts, row.callback_id
        );
        step.attempts = attempt_lines(attempts);
        step.form = Some(form(
            format!("/ui/events/{}/retry", row.id),
            "Retry notification",
            Some(format!("{here}#event-{}", row.id)),
        ));
        steps.push((row.created_at, step));
    }
    for (at, what) in [
        (order.returned_at, "the buyer came back"),
        (order.fulfilled_at, "fulfilled"),
        (order.closed_at, "closed by an operator"),
    ] {
        if let Some(at) = at {
            steps.push((at, blank(at, what.into(), what.replace(' ', "-"))));
        }
    }
    steps.sort_by_key(|(at, _)| *at);

    let notice = done(&state, &session, query.done.as_deref())
        .await?
        .and_then(|d| d.notice);
    let older = order
        .callbacks_before
        .map(|id| with_param(&here, "callbacks_before", &id.to_string()));
    let page = OrderPage {
        older,
        chrome: chrome(&session, "orders"),
        close: order.closed_at.is_none().then(|| {
            form(
                format!(
                    "/ui/orders/{}/close?project_id={}",
                    encode(&orderid),
                    encode(&project)
                ),
                "Close",
                None,
            )
        }),
        erase: form(
            format!(
                "/ui/orders/{}/erase?project_id={}",
                encode(&orderid),
                encode(&project)
            ),
            "Erase personal data",
            None,
        ),
        orderid: order.orderid,
        project_id: order.project_id,
        expected,
        state: order.state,
        flags: order.flags,
        refunded: order
            .refunded_amount
            .map_or_else(|| "no".into(), |r| r.to_string()),
        closed: order.closed_at.map(rfc3339),
        steps: steps.into_iter().map(|(_, s)| s).collect(),
        notice,
    };
    Ok(html(StatusCode::OK, &page)?)
}

#[derive(Deserialize)]
pub struct ProjectParam {
    /// A classic project's number or a Checkout project's client id.
    project_id: Option<String>,
}

/// `POST /ui/orders/{orderid}/close`: out of the missed-callback count.
pub async fn close(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<ProjectParam>,
    form: web::Form<ActionForm>,
) -> Page {
    let orderid = path.into_inner();
    let project = project_of(&state, query.project_id.as_deref())?;
    let here = order_link(&state, Some(&project), &orderid);
    act(
        state,
        session,
        &form,
        move |pipeline, actor| match actions::close_order(
            pipeline.store(),
            &project,
            &orderid,
            actor,
        )? {
            Some(_) => Ok(Done::notice(
                here,
                "Closed: the missed-callback count leaves this order out.".into(),
            )),
            None => Err(ConsoleError::NotFound(format!("order {orderid}"))),
        },
    )
    .await
}

/// `POST /ui/orders/{orderid}/erase`: the order's personal data erased from
/// the journal now (`Pipeline::erase_order`, as `payhook erase` and the API).
pub async fn erase(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: web::Query<ProjectParam>,
    form: web::Form<ActionForm>,
) -> Page {
    let orderid = path.into_inner();
    let project = project_of(&state, query.project_id.as_deref())?;
    let here = order_link(&state, Some(&project), &orderid);
    act(state, session, &form, move |pipeline, actor| match pipeline
        .erase_order(&project, &orderid, actor)?
    {
        Some(rows) => Ok(Done::notice(
            here,
            format!("Erased: personal data taken out of {rows} stored request(s)."),
        )),
        None => Err(ConsoleError::NotFound(format!("order {orderid}"))),
    })
    .await
}

/// `POST /ui/events/{id}/retry`: the event is sent again, the same id.
pub async fn retry(
    session: Session,
    state: web::Data<AppState>,
    path: web::Path<i64>,
    form: web::Form<ActionForm>,
) -> Page {
    let id = path.into_inner();
    let back = form
        .back()
        .unwrap_or_else(|| format!("/ui/notifications?state=pending#event-{id}"));
    act(
        state,
        session,
        &form,
        move |pipeline, actor| match actions::retry_event(pipeline.store(), id, actor)? {
            Some(_) => Ok(Done::notice(
                back,
                format!("Event {id} is pending again: the worker sends it."),
            )),
            None => Err(ConsoleError::NotFound(format!("event {id}"))),
        },
    )
    .await
}

/// `POST /ui/notifications/test`: a signed `payhook.test` event to the
/// shop's endpoint, sent as `payhook check` sends it; the page says what the
/// shop answered.
pub async fn send_test_event(
    session: Session,
    state: web::Data<AppState>,
    form: web::Form<ActionForm>,
) -> Page {
    act_async(state, session, &form, |state, actor| async move {
        let Some(shop) = state.shop.clone() else {
            return Err(ConsoleError::Conflict(
                "shop notifications are off (no SHOP_NOTIFY_URL)".into(),
            ));
        };
        let project = state
            .order_project(None)
            .map_err(ConsoleError::BadRequest)?;
        // A classic project's number stays a number, as in every event.
        let project: serde_json::Value = project
            .parse::<u64>()
            .map_or_else(|_| project.clone().into(), Into::into);
        let answer = shop.send_test_event(project).await;
        let acknowledged = answer.acknowledged();
        let result = match (answer.status_code, answer.error) {
            (Some(status), _) if acknowledged => format!("acknowledged (HTTP {status})"),
            (Some(status), _) => format!("answered HTTP {status} (not acknowledged)"),
            (None, error) => error.unwrap_or_else(|| "no answer".into()),
        };
        tracing::info!(actor, result, "test event sent to the shop by an operator");
        Ok(Done::notice(
            "/ui/notifications".into(),
            format!(
                "Test event (payhook.test): {result}, in {} ms.",
                answer.elapsed.as_millis()
            ),
        ))
    })
    .await
}

/// `GET /ui/check`: the last self-check this session ran (the one `?done=`
/// names, or else the newest), and the button that runs it. Showing it runs
/// nothing.
pub async fn check_page(
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<DoneQuery>,
) -> Page {
    if state.self_check.is_none() {
        return Err(ConsoleError::NotFound("the self-check".into()));
    }
    let named = done(&state, &session, query.done.as_deref())
        .await?
        .filter(|d| d.check_lines.is_some());
    let shown = match named {
        Some(named) => Some(named),
        None => {
            let hash = session.hash().to_string();
            state
                .store
                .bounded(move |store| store.last_check(&hash))
                .await?
        }
    };
    let (lines, ran_at) = match shown {
        Some(d) => (
            d.check_lines
                .and_then(|json| serde_json::from_str::<Vec<CheckLine>>(&json).ok()),
            Some(rfc3339(d.created_at)),
        ),
        None => (None, None),
    };
    let page = CheckPage {
        chrome: chrome(&session, "overview"),
        failed: lines
            .as_ref()
            .is_some_and(|l| l.iter().any(|l| l.status == "fail")),
        lines,
        ran_at,
        run: form("/ui/check".into(), "Run the checks", None),
    };
    Ok(html(StatusCode::OK, &page)?)
}

/// `POST /ui/check`: `payhook check`'s checks, run by this instance now, once
/// per form. Its side effects are the command's: a signed test event to the
/// shop and one rejected probe request in the journal.
pub async fn self_check(
    session: Session,
    state: web::Data<AppState>,
    form: web::Form<ActionForm>,
) -> Page {
    let Some(run) = state.self_check.clone() else {
        return Err(ConsoleError::NotFound("the self-check".into()));
    };
    act_async(state, session, &form, |_, actor| async move {
        tracing::info!(actor, "self-check run from the console");
        Ok(Done {
            location: "/ui/check".into(),
            notice: None,
            check: Some(run().await),
        })
    })
    .await
}

#[derive(Deserialize)]
pub struct NotificationsQuery {
    state: Option<String>,
    after: Option<i64>,
    done: Option<String>,
}

/// `GET /ui/notifications?state=`: the shop's events with their attempts.
pub async fn notifications(
    session: Session,
    state: web::Data<AppState>,
    query: web::Query<NotificationsQuery>,
) -> Page {
    let state_text = query.state.clone().unwrap_or_else(|| "pending".into());
    let wanted = EventState::parse(&state_text).ok_or_else(|| {
        ConsoleError::BadRequest(format!(
            "state must be pending, delivered or dead (not {state_text:?})"
        ))
    })?;
    let after = query.after.unwrap_or(0);
    let events = state
        .store
        .bounded(move |store| {
            let rows = store.events(&EventFilter {
                after,
                limit: PAGE_SIZE,
                state: Some(wanted),
                ..EventFilter::default()
            })?;
            let mut events = Vec::with_capacity(rows.len());
            for row in rows {
                let attempts = store.event(row.id)?.map(|(_, a)| a).unwrap_or_default();
                events.push((row, attempts));
            }
            Ok(events)
        })
        .await?;
    let more = (events.len() as i64 == PAGE_SIZE).then(|| {
        let last = events.last().map_or(0, |(r, _)| r.id);
        format!("/ui/notifications?state={state_text}&after={last}")
    });
    let here = format!("/ui/notifications?state={state_text}");
    let page = NotificationsPage {
        chrome: chrome(&session, "notifications"),
        notice: done(&state, &session, query.done.as_deref())
            .await?
            .and_then(|d| d.notice),
        send_test: state.shop.is_some().then(|| {
            form(
                "/ui/notifications/test".to_string(),
                "Send a test event",
                None,
            )
        }),
        events: events
            .into_iter()
            .map(|(row, attempts)| EventLine {
                id: row.id,
                at: rfc3339(row.created_at),
                event_type: EventType::name_of_kind(&row.kind),
                order_link: row
                    .orderid
                    .as_deref()
                    .map(|o| order_link(&state, Some(&row.project_id), o)),
                orderid: row.orderid.unwrap_or_else(|| "-".into()),
                state: row.state,
                attempts: attempt_lines(attempts),
                retry: form(
                    format!("/ui/events/{}/retry", row.id),
                    "Retry",
                    Some(format!("{here}#event-{}", row.id)),
                ),
            })
            .collect(),
        state: state_text,
        states: EventState::ALL.iter().map(|s| s.as_str()).collect(),
        more,
    };
    Ok(html(StatusCode::OK, &page)?)
}
