//! `GET|POST /paysera/callback`: verify, decide and store in one blocking step,
//! then answer. `OK` is written only after the transaction committed.

use std::time::Instant;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, HttpRequest, HttpResponse};

use super::error::CallbackHttpError;
use super::AppState;
use crate::domain::{Outcome, PaymentKind};
use crate::paysera::RequestParams;
use crate::store::{CallbackMeta, Processed, StoreError};

enum Step {
    Rejected(String),
    Misconfigured(crate::paysera::CallbackError),
    Done(Processed, PaymentKind),
}

pub async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> Result<HttpResponse, CallbackHttpError> {
    let started = Instant::now();
    if !body.is_empty() && !is_form(&req) {
        return Err(CallbackHttpError::UnsupportedMediaType);
    }
    let query = req.query_string().to_string();
    let meta = CallbackMeta {
        method: req.method().to_string(),
        raw_query: raw_request(&query, &body),
        remote_addr: req.peer_addr().map(|a| a.ip().to_string()),
    };

    let worker_state = state.clone();
    let step = web::block(move || -> Result<Step, StoreError> {
        let params = RequestParams::parse(query.as_bytes(), &body);
        match worker_state.verifier.verify(&params) {
            Err(e) if e.is_configuration() => Ok(Step::Misconfigured(e)),
            Err(e) => {
                let reason = e.to_string();
                worker_state.store.record_rejected(&meta, &reason)?;
                Ok(Step::Rejected(reason))
            }
            Ok(callback) => {
                let processed = worker_state
                    .store
                    .process(&callback, &meta, worker_state.rules)?;
                Ok(Step::Done(processed, callback.kind()))
            }
        }
    })
    .await
    .map_err(|e| CallbackHttpError::Unavailable(StoreError::Unavailable(e.to_string())))?;

    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    match step {
        Err(e) => {
            tracing::error!(error = %e, elapsed_ms, "callback not stored; answered 503");
            Err(CallbackHttpError::Unavailable(e))
        }
        Ok(Step::Misconfigured(e)) => {
            tracing::error!(error = %e, "callback cannot be checked: configuration");
            Err(CallbackHttpError::Misconfigured(e))
        }
        Ok(Step::Rejected(reason)) => {
            tracing::warn!(outcome = "rejected", %reason, elapsed_ms, "callback");
            Err(CallbackHttpError::Rejected(reason))
        }
        Ok(Step::Done(p, kind)) => {
            tracing::info!(
                outcome = p.outcome.as_str(),
                reason = p.reason.as_deref().unwrap_or(""),
                callback_id = p.callback_id,
                elapsed_ms,
                "callback"
            );
            match p.outcome {
                Outcome::Rejected => Err(CallbackHttpError::Rejected(p.reason.unwrap_or_default())),
                Outcome::UnknownOrder => Err(CallbackHttpError::UnknownOrder),
                Outcome::SmsReceived | Outcome::Duplicate if kind == PaymentKind::Micro => {
                    Ok(plain(match &state.sms_reply {
                        Some(reply) => format!("OK {reply}"),
                        None => "NOSMS".to_string(),
                    }))
                }
                _ => Ok(plain("OK".to_string())),
            }
        }
    }
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

/// What is stored: the query, the form body, or both joined so that replaying
/// it gives the same parameters (the body wins, as in PHP's `$_REQUEST`).
fn raw_request(query: &str, body: &[u8]) -> String {
    let body = String::from_utf8_lossy(body);
    match (query.is_empty(), body.is_empty()) {
        (_, true) => query.to_string(),
        (true, false) => body.into_owned(),
        (false, false) => format!("{query}&{body}"),
    }
}
