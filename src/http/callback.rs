//! `GET|POST /paysera/callback`, `POST /paysera/checkout/webhook` and
//! `GET|POST /gateways/{name}/callback`: read
//! the request, run it through the pipeline (`crate::pipeline`) on a blocking
//! thread under the store's bound, report it, and answer it once
//! ([`respond`]). `OK` is written only after the transaction committed.

use std::time::Instant;

use actix_web::http::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};

use super::error::CallbackHttpError;
use super::{AppState, MAX_CALLBACK_BYTES};
use crate::checkout::Headers;
use crate::domain::{Answer, OkBody};
use crate::pipeline::{Api, GatewayError, Handled, Report, Unsupported, WebhookError};
use crate::store::{CallbackMeta, RawRequest, StoreError};

/// A classic callback.
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
    let unsupported = unsupported(&req, Api::Classic, &body);
    let meta = meta(
        &req,
        Api::Classic,
        RawRequest::join(query.as_bytes(), &body),
    );
    // Bounded: a stalled database is answered 503 in time, not waited for.
    let handled = state
        .pipeline
        .bounded(move |pipeline| pipeline.classic(query.as_bytes(), &body, &meta, unsupported))
        .await;
    finish(Api::Classic, handled, &state, &request_id, started)
}

/// A Checkout (Modern) webhook.
pub async fn receive_webhook(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, CallbackHttpError> {
    let started = Instant::now();
    let request_id = request_id(&req);
    if !state.pipeline.has_checkout() {
        return Err(CallbackHttpError::NotConfigured(
            "no Checkout project is configured",
        ));
    }
    let body = read_body(&req, payload).await?;
    // actix's header map iterates in no fixed order: sorted by name (values of
    // one name keep theirs), the same delivery is stored as the same bytes.
    let mut pairs: Vec<_> = req.headers().iter().collect();
    pairs.sort_by_key(|(name, _)| name.as_str());
    let headers: Headers = pairs
        .into_iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
        .collect();
    let unsupported = unsupported(&req, Api::Checkout, &body);
    let meta = meta(
        &req,
        Api::Checkout,
        RawRequest::webhook(headers.paysera(), &body),
    );
    let handled = state
        .pipeline
        .bounded(move |pipeline| Ok(pipeline.webhook(&headers, &body, &meta, unsupported)))
        .await;
    let handled = match handled {
        Ok(Ok(handled)) => Ok(handled),
        Ok(Err(WebhookError::NotConfigured)) => {
            return Err(CallbackHttpError::NotConfigured(
                "no Checkout project is configured",
            ))
        }
        Ok(Err(WebhookError::Store(e))) | Err(e) => Err(e),
    };
    finish(Api::Checkout, handled, &state, &request_id, started)
}

/// A hash-signed gateway's notification (`PAYHOOK_GATEWAYS_FILE`). Its body
/// is whatever the gateway sends (a form, usually): it is read as its recipe
/// says, never decompressed.
pub async fn receive_gateway(
    req: HttpRequest,
    name: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, CallbackHttpError> {
    let started = Instant::now();
    let request_id = request_id(&req);
    let name = name.into_inner();
    if state.pipeline.gateway_recipe(&name).is_none() {
        return Err(CallbackHttpError::NotConfigured("no such gateway"));
    }
    let body = read_body(&req, payload).await?;
    let query = req.query_string().to_string();
    let unsupported = unsupported(&req, Api::Gateway, &body);
    let mut meta = meta(
        &req,
        Api::Gateway,
        RawRequest::join(query.as_bytes(), &body),
    );
    // The sender, as the allow-list checks it: behind a trusted proxy, the
    // client it names.
    meta.remote_addr = state.clients.of(&req).map(|ip| ip.to_string());
    let gateway = name.clone();
    let handled = state
        .pipeline
        .bounded(move |pipeline| {
            Ok(pipeline.gateway(&gateway, query.as_bytes(), &body, &meta, unsupported))
        })
        .await;
    let handled = match handled {
        Ok(Ok(handled)) => Ok(handled),
        Ok(Err(GatewayError::Unknown(_))) => {
            return Err(CallbackHttpError::NotConfigured("no such gateway"))
        }
        Ok(Err(GatewayError::Store(e))) | Err(e) => Err(e),
    };
    let seconds = started.elapsed().as_secs_f64();
    Report::of(Api::Gateway, &handled, &request_id)
        .gateway(&name)
        .write(&state.metrics, &state.alerter, state.log_pii, seconds);
    respond(handled, &state)
}

fn finish(
    api: Api,
    handled: Result<Handled, StoreError>,
    state: &AppState,
    request_id: &str,
    started: Instant,
) -> Result<HttpResponse, CallbackHttpError> {
    let seconds = started.elapsed().as_secs_f64();
    Report::of(api, &handled, request_id).write(
        &state.metrics,
        &state.alerter,
        state.log_pii,
        seconds,
    );
    respond(handled, state)
}

/// The one mapping from what the pipeline came to, to the HTTP answer.
fn respond(
    handled: Result<Handled, StoreError>,
    state: &AppState,
) -> Result<HttpResponse, CallbackHttpError> {
    let handled = handled.map_err(CallbackHttpError::Unavailable)?;
    let answer = handled.answer();
    let reason = handled.reason();
    match handled {
        Handled::Misconfigured(e) => Err(CallbackHttpError::Misconfigured(e)),
        Handled::Unsupported(u) => Err(CallbackHttpError::UnsupportedMediaType(u.reason())),
        Handled::Rejected(r) => Err(match r.body {
            Some(body) => CallbackHttpError::Refused {
                status: r.status,
                body,
            },
            None => CallbackHttpError::Rejected {
                status: r.status,
                reason: r.reason,
            },
        }),
        Handled::Done(_, verified) => match answer {
            Some(Answer::Ok(_)) if verified.gateway_reply().is_some() => Ok(plain(
                verified.gateway_reply().unwrap_or_default().to_string(),
            )),
            Some(Answer::Ok(OkBody::Ok)) => Ok(plain("OK".to_string())),
            Some(Answer::Ok(OkBody::SmsReply)) => Ok(plain(match &state.sms_reply {
                Some(reply) => format!("OK {reply}"),
                None => "NOSMS".to_string(),
            })),
            Some(Answer::UnknownOrder) => Err(CallbackHttpError::UnknownOrder),
            Some(Answer::Unauthenticated | Answer::Malformed | Answer::Unavailable) | None => {
                Err(CallbackHttpError::Undecidable(reason.unwrap_or_default()))
            }
        },
    }
}

/// What the request is stored with beside its outcome.
fn meta(req: &HttpRequest, api: Api, raw: RawRequest) -> CallbackMeta {
    CallbackMeta {
        method: req.method().to_string(),
        raw,
        remote_addr: req.peer_addr().map(|a| a.ip().to_string()),
        api: api.as_str(),
    }
}

/// A body in a content coding is refused on both APIs; a classic callback's
/// body must be a form (a Checkout body is read as JSON whatever it is labelled).
fn unsupported(req: &HttpRequest, api: Api, body: &[u8]) -> Option<Unsupported> {
    if req.headers().contains_key(CONTENT_ENCODING) {
        Some(Unsupported::ContentEncoding)
    } else if api == Api::Classic && !body.is_empty() && !is_form(req) {
        Some(Unsupported::ContentType)
    } else {
        None
    }
}

/// The body's bytes, at most `MAX_CALLBACK_BYTES` of them (413 beyond, before
/// reading when the length is announced).
async fn read_body(req: &HttpRequest, payload: web::Payload) -> Result<Bytes, CallbackHttpError> {
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
