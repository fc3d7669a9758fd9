//! `GET|POST /paysera/callback`, the pipeline in order: parse the request,
//! verify it (`paysera::Verifier::verify`), store it in one transaction
//! (`store::Store::record`: claim its identity, lock its order, decide it with
//! `domain::decide_callback`, write), then `answer`. `OK` is written only after
//! the transaction committed. Every callback ends in one report: one log line,
//! the metrics, and any alert.

use std::time::Instant;

use actix_web::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};

use super::error::{callback_status, CallbackClass, CallbackHttpError};
use super::{AppState, MAX_CALLBACK_BYTES};
use crate::alerts::{Alert, AlertKind};
use crate::domain::Rules;
use crate::domain::{decide_callback, order_to_lock, Answer, OkBody, Outcome, VerifiedCallback};
use crate::paysera::{CallbackError, RejectClass, RequestParams, Verifier};
use crate::store::{CallbackMeta, Processed, RawRequest, Signed, Step, Store, StoreError};

/// What the pipeline needs: the same for the endpoint and for the operator's
/// replay and ingest commands.
pub struct Pipeline<'a> {
    pub verifier: &'a Verifier,
    pub store: &'a Store,
    pub rules: Rules,
    /// Bytes of a rejected request that are stored.
    pub rejected_max_bytes: usize,
    /// Checkout webhooks' verifier, for replays of stored webhooks (`None`
    /// without a Checkout project).
    pub checkout: Option<&'a crate::checkout::Verifier>,
    /// What a Checkout webhook failing verification is answered.
    pub checkout_reject_status: u16,
}

/// How far a request got, for the answer and the report.
pub enum Handled {
    /// Not a form, or a form in a content coding: stored as rejected, answered 415.
    Unsupported(Unsupported),
    /// Verification failed: stored as rejected.
    Rejected(CallbackError),
    /// payhook itself cannot check it (no password for what it needs).
    Misconfigured(CallbackError),
    Done(Processed, Box<VerifiedCallback>),
}

impl Handled {
    /// The outcome stored (`None`: nothing was, payhook itself cannot check it).
    pub fn outcome(&self) -> Option<Outcome> {
        match self {
            Handled::Unsupported(_) | Handled::Rejected(_) => Some(Outcome::Rejected),
            Handled::Misconfigured(_) => None,
            Handled::Done(p, _) => Some(p.outcome),
        }
    }

    /// Why, when there is a reason.
    pub fn reason(&self) -> Option<String> {
        match self {
            Handled::Unsupported(u) => Some(u.reason().to_string()),
            Handled::Rejected(e) | Handled::Misconfigured(e) => Some(e.to_string()),
            Handled::Done(p, _) => p.reason.clone(),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Unsupported {
    ContentType,
    /// Refused before the body is read as anything but bytes: a body is never
    /// decompressed, so a small request cannot grow into a large one.
    ContentEncoding,
}

impl Unsupported {
    pub fn reason(self) -> &'static str {
        match self {
            Unsupported::ContentType => "unsupported content type",
            Unsupported::ContentEncoding => "unsupported content encoding",
        }
    }
}

pub async fn receive(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, CallbackHttpError> {
    let started = Instant::now();
    let request_id = request_id(&req);
    // `web::Payload` is the body as it came off the wire: unlike `web::Bytes`,
    // it is never decompressed (actix-web's `Decompress`), whatever the headers say.
    let body = read_body(&req, payload).await?;
    let query = req.query_string().to_string();
    let unsupported = if req.headers().contains_key(CONTENT_ENCODING) {
        Some(Unsupported::ContentEncoding)
    } else if !body.is_empty() && !is_form(&req) {
        Some(Unsupported::ContentType)
    } else {
        None
    };
    let meta = CallbackMeta {
        method: req.method().to_string(),
        raw: RawRequest::join(query.as_bytes(), &body),
        remote_addr: req.peer_addr().map(|a| a.ip().to_string()),
        api: "classic",
    };

    let worker = state.clone();
    // Bounded: a stalled database is answered 503 in time, not waited for.
    let handled = Store::bounded(&state.store, move || {
        handle(
            &worker.pipeline(),
            query.as_bytes(),
            &body,
            &meta,
            unsupported,
        )
    })
    .await;

    let report = Report::new(&handled, &request_id);
    report.record(&state, started);
    answer(handled, &state)
}

/// parse → verify → store (claim, lock, decide, write); the caller answers.
pub fn handle(
    state: &Pipeline<'_>,
    query: &[u8],
    body: &[u8],
    meta: &CallbackMeta,
    unsupported: Option<Unsupported>,
) -> Result<Handled, StoreError> {
    let keep = state.rejected_max_bytes;
    if let Some(unsupported) = unsupported {
        let status = callback_status(CallbackClass::UnsupportedMediaType);
        state
            .store
            .record_rejected(meta, unsupported.reason(), status.as_u16(), keep)?;
        return Ok(Handled::Unsupported(unsupported));
    }
    let params = RequestParams::parse(query, body);
    let callback = match state.verifier.verify(&params) {
        Ok(callback) => callback,
        Err(e) if e.is_configuration() => return Ok(Handled::Misconfigured(e)),
        Err(e) => {
            let status = callback_status(CallbackClass::Domain(e.answer()));
            state
                .store
                .record_rejected(meta, &e.to_string(), status.as_u16(), keep)?;
            return Ok(Handled::Rejected(e));
        }
    };
    let signed_query = params.signed_query();
    let signed = Signed::new(
        (!signed_query.covers_whole(meta.raw.bytes())).then_some(signed_query.query),
        keep,
    );
    let rules = state.rules;
    let lock = order_to_lock(&callback, rules);
    let processed = state.store.record(&callback, meta, &signed, lock, |seen| {
        let decision = decide_callback(&callback, seen, rules);
        let answer = decision.outcome.answer(callback.kind());
        Step {
            decision,
            http_status: callback_status(CallbackClass::Domain(answer)).as_u16(),
        }
    })?;
    Ok(Handled::Done(processed, Box::new(callback)))
}

/// The body's bytes, at most `MAX_CALLBACK_BYTES` of them (413 beyond, before
/// reading when the length is announced).
pub(super) async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<Bytes, CallbackHttpError> {
    let announced = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_CALLBACK_BYTES as u64) {
        return Err(CallbackHttpError::TooLarge);
    }
    match payload.to_bytes_limited(MAX_CALLBACK_BYTES).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(e)) => Err(CallbackHttpError::BadBody(e.to_string())),
        Err(_) => Err(CallbackHttpError::TooLarge),
    }
}

fn answer(
    handled: Result<Handled, StoreError>,
    state: &AppState,
) -> Result<HttpResponse, CallbackHttpError> {
    let (processed, callback) = match handled {
        Err(e) => return Err(CallbackHttpError::Unavailable(e)),
        Ok(Handled::Misconfigured(e)) => return Err(CallbackHttpError::Misconfigured(e)),
        Ok(Handled::Unsupported(u)) => {
            return Err(CallbackHttpError::UnsupportedMediaType(u.reason()))
        }
        Ok(Handled::Rejected(e)) => return Err(CallbackHttpError::Rejected(e)),
        Ok(Handled::Done(processed, callback)) => (processed, callback),
    };
    match processed.outcome.answer(callback.kind()) {
        Answer::Ok(OkBody::Ok) => Ok(plain("OK".to_string())),
        Answer::Ok(OkBody::SmsReply) => Ok(plain(match &state.sms_reply {
            Some(reply) => format!("OK {reply}"),
            None => "NOSMS".to_string(),
        })),
        Answer::UnknownOrder => Err(CallbackHttpError::UnknownOrder),
        Answer::Unauthenticated | Answer::Malformed | Answer::Unavailable => Err(
            CallbackHttpError::Undecidable(processed.reason.unwrap_or_default()),
        ),
    }
}

/// What one callback came to, for the log line, the metrics and the alerts.
struct Report<'a> {
    request_id: &'a str,
    /// `None`: not stored (answered 503).
    outcome: Option<Outcome>,
    reject_class: Option<RejectClass>,
    reason: Option<String>,
    project: Option<&'a str>,
    orderid: Option<&'a str>,
    alert: Option<AlertKind>,
    callback: Option<&'a VerifiedCallback>,
    error: Option<String>,
}

impl<'a> Report<'a> {
    fn new(handled: &'a Result<Handled, StoreError>, request_id: &'a str) -> Report<'a> {
        let blank = Report {
            request_id,
            outcome: None,
            reject_class: None,
            reason: None,
            project: None,
            orderid: None,
            alert: None,
            callback: None,
            error: None,
        };
        match handled {
            Err(e) => Report {
                error: Some(e.to_string()),
                alert: Some(AlertKind::DatabaseError),
                ..blank
            },
            Ok(Handled::Misconfigured(e)) => Report {
                error: Some(e.to_string()),
                ..blank
            },
            Ok(Handled::Unsupported(u)) => Report {
                outcome: Some(Outcome::Rejected),
                reject_class: Some(RejectClass::Malformed),
                reason: Some(u.reason().into()),
                ..blank
            },
            Ok(Handled::Rejected(e)) => Report {
                outcome: Some(Outcome::Rejected),
                reject_class: Some(e.class()),
                reason: Some(e.to_string()),
                alert: (e.class() == RejectClass::Signature)
                    .then_some(AlertKind::SignatureRejected),
                ..blank
            },
            Ok(Handled::Done(p, callback)) => Report {
                outcome: Some(p.outcome),
                reject_class: (p.outcome == Outcome::Rejected).then_some(RejectClass::Malformed),
                reason: p.reason.clone(),
                project: Some(callback.project_id()),
                orderid: callback.orderid(),
                alert: p
                    .flag
                    .map(AlertKind::Flag)
                    .or(p.flood.then_some(AlertKind::DuplicateFlood)),
                callback: Some(callback),
                ..blank
            },
        }
    }

    fn record(&self, state: &AppState, started: Instant) {
        let seconds = started.elapsed().as_secs_f64();
        state.metrics.callback("classic", self.outcome, seconds);
        let outcome = self.outcome.map_or("error", Outcome::as_str);
        if let Some(class) = self.reject_class {
            state.metrics.rejected(class);
        }
        let pii = |name: &str| {
            self.callback
                .filter(|_| state.log_pii)
                .and_then(|c| c.fields().text(name))
                .unwrap_or("")
        };
        let line = |level: tracing::Level| match level {
            tracing::Level::ERROR => tracing::error!(
                request_id = self.request_id,
                outcome,
                error = self.error.as_deref().unwrap_or(""),
                duration_ms = seconds * 1000.0,
                "callback not stored; answered 503"
            ),
            tracing::Level::WARN => tracing::warn!(
                request_id = self.request_id,
                project = self.project.unwrap_or(""),
                orderid = self.orderid.unwrap_or(""),
                outcome,
                reason = self.reason.as_deref().unwrap_or(""),
                duration_ms = seconds * 1000.0,
                p_email = pii("p_email"),
                "callback"
            ),
            _ => tracing::info!(
                request_id = self.request_id,
                project = self.project.unwrap_or(""),
                orderid = self.orderid.unwrap_or(""),
                outcome,
                reason = self.reason.as_deref().unwrap_or(""),
                duration_ms = seconds * 1000.0,
                p_email = pii("p_email"),
                name = pii("name"),
                surename = pii("surename"),
                "callback"
            ),
        };
        line(if self.error.is_some() {
            tracing::Level::ERROR
        } else if self.alert.is_some() || self.reject_class.is_some() {
            tracing::Level::WARN
        } else {
            tracing::Level::INFO
        });

        if let Some(kind) = self.alert {
            let summary = match (kind, self.orderid) {
                (AlertKind::SignatureRejected, _) => {
                    format!(
                        "callback rejected: {}",
                        self.reason.as_deref().unwrap_or("")
                    )
                }
                (AlertKind::DatabaseError, _) => {
                    "a callback could not be stored (answered 503)".into()
                }
                (_, Some(orderid)) => format!("order {orderid}: {outcome}"),
                (_, None) => outcome.to_string(),
            };
            let reason = self.reason.as_deref().or(self.error.as_deref());
            state.alerter.raise(
                Alert::new(kind, summary, outcome)
                    .order(self.orderid)
                    .reason(reason),
            );
        }
    }
}

/// The caller's `X-Request-Id` when it is sane, else a fresh one.
pub(super) fn request_id(req: &HttpRequest) -> String {
    req.headers()
        .get("X-Request-Id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| hex::encode(rand::random::<[u8; 8]>()))
}

fn plain(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .body(body)
}

fn is_form(req: &HttpRequest) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
        .unwrap_or(false)
}
