//! `POST /paysera/checkout/webhook`: Paysera Checkout (Modern) webhooks,
//! through the same pipeline as classic callbacks: verify the raw bytes
//! (`checkout::Verifier::verify`), store in one transaction
//! (`store::Store::record`, deciding with `domain::decide_webhook`), then
//! answer. 200 only after the transaction committed.

use std::time::Instant;

use actix_web::http::header::CONTENT_ENCODING;
use actix_web::{web, HttpRequest, HttpResponse};

use super::callback::{read_body, request_id, Pipeline, Unsupported};
use super::error::{callback_status, CallbackClass, CheckoutHttpError};
use super::AppState;
use crate::alerts::{Alert, AlertKind};
use crate::checkout::{CheckoutError, Headers, Verifier};
use crate::domain::{
    decide_webhook, webhook_order_to_lock, CheckoutWebhook, Outcome, PaymentKind, Rules,
};
use crate::paysera::RejectClass;
use crate::store::{CallbackMeta, Processed, RawRequest, Signed, Step, Store, StoreError};

const API: &str = "checkout";

/// What a webhook needs: the same for the endpoint and the operator's replay.
pub struct WebhookPipeline<'a> {
    pub verifier: &'a Verifier,
    pub store: &'a Store,
    pub rules: Rules,
    pub rejected_max_bytes: usize,
    /// What a header or signature failure is answered and stored with.
    pub reject_status: u16,
}

impl<'a> WebhookPipeline<'a> {
    /// The webhook pipeline beside a callback pipeline, when a Checkout
    /// project is configured.
    pub fn beside(pipeline: &Pipeline<'a>) -> Option<Self> {
        Some(WebhookPipeline {
            verifier: pipeline.checkout?,
            store: pipeline.store,
            rules: pipeline.rules,
            rejected_max_bytes: pipeline.rejected_max_bytes,
            reject_status: pipeline.checkout_reject_status,
        })
    }
}

/// How far a webhook got.
pub enum HandledWebhook {
    Unsupported(Unsupported),
    /// Headers or signature failed: not from Paysera, or a wrong secret.
    Rejected(CheckoutError),
    /// Authentic, but the body cannot be read.
    Malformed(CheckoutError),
    Done(Processed, Box<CheckoutWebhook>, String),
}

impl HandledWebhook {
    pub fn outcome(&self) -> Outcome {
        match self {
            HandledWebhook::Done(p, ..) => p.outcome,
            _ => Outcome::Rejected,
        }
    }

    pub fn reason(&self) -> Option<String> {
        match self {
            HandledWebhook::Unsupported(u) => Some(u.reason().to_string()),
            HandledWebhook::Rejected(e) | HandledWebhook::Malformed(e) => Some(e.to_string()),
            HandledWebhook::Done(p, ..) => p.reason.clone(),
        }
    }
}

pub async fn receive(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, CheckoutHttpError> {
    let started = Instant::now();
    let request_id = request_id(&req);
    let Some(verifier) = state.checkout.clone() else {
        return Err(CheckoutHttpError::NotConfigured);
    };
    let body = read_body(&req, payload)
        .await
        .map_err(CheckoutHttpError::Transport)?;
    let mut headers = Headers::new();
    for (name, value) in req.headers() {
        headers.push(name.as_str(), value.as_bytes());
    }
    let unsupported = req
        .headers()
        .contains_key(CONTENT_ENCODING)
        .then_some(Unsupported::ContentEncoding);
    let meta = CallbackMeta {
        method: req.method().to_string(),
        raw: RawRequest::webhook(headers.paysera(), &body),
        remote_addr: req.peer_addr().map(|a| a.ip().to_string()),
        api: API,
    };

    let worker = state.clone();
    let handled = Store::bounded(&state.store, move || {
        let pipeline = WebhookPipeline {
            verifier: &verifier,
            store: &worker.store,
            rules: worker.rules,
            rejected_max_bytes: worker.rejected_max_bytes,
            reject_status: worker.checkout_reject_status,
        };
        handle(&pipeline, &headers, &body, &meta, unsupported)
    })
    .await;

    report(&handled, &state, &request_id, started);
    match handled {
        Err(e) => Err(CheckoutHttpError::Unavailable(e)),
        Ok(HandledWebhook::Unsupported(u)) => Err(CheckoutHttpError::Unsupported(u.reason())),
        Ok(HandledWebhook::Rejected(e)) => Err(CheckoutHttpError::Rejected {
            status: state.checkout_reject_status,
            reason: e.to_string(),
        }),
        Ok(HandledWebhook::Malformed(e)) => Err(CheckoutHttpError::Malformed(e.to_string())),
        Ok(HandledWebhook::Done(p, ..)) if p.outcome == Outcome::UnknownOrder => {
            Err(CheckoutHttpError::UnknownOrder)
        }
        Ok(HandledWebhook::Done(..)) => Ok(HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body("OK")),
    }
}

/// verify → store (claim, lock, decide, write); the caller answers.
pub fn handle(
    pipeline: &WebhookPipeline<'_>,
    headers: &Headers,
    body: &[u8],
    meta: &CallbackMeta,
    unsupported: Option<Unsupported>,
) -> Result<HandledWebhook, StoreError> {
    let keep = pipeline.rejected_max_bytes;
    let store = pipeline.store;
    if let Some(unsupported) = unsupported {
        let status = callback_status(CallbackClass::UnsupportedMediaType).as_u16();
        store.record_rejected(meta, unsupported.reason(), status, keep)?;
        return Ok(HandledWebhook::Unsupported(unsupported));
    }
    let verified = match pipeline.verifier.verify(headers, body) {
        Ok(verified) => verified,
        Err(e) if e.is_verification() => {
            store.record_rejected(meta, &e.to_string(), pipeline.reject_status, keep)?;
            return Ok(HandledWebhook::Rejected(e));
        }
        Err(e) => {
            store.record_rejected(meta, &e.to_string(), 400, keep)?;
            return Ok(HandledWebhook::Malformed(e));
        }
    };
    let matched = verified.secret.label.clone();
    let webhook = verified.to_domain(body, "");
    let rules = pipeline.rules;
    let lock = webhook_order_to_lock(&webhook, rules);
    // The body and the headers the verifier read are the gateway's; any other
    // `X-Paysera-*` header is the sender's, kept bounded.
    let signed = Signed::new(
        (!headers.paysera_all_read())
            .then(|| RawRequest::webhook(headers.read_by_verifier(), body).into_bytes()),
        keep,
    );
    let processed = store.record(&webhook, meta, &signed, lock, |seen| {
        let decision = decide_webhook(&webhook, seen, rules);
        let answer = decision.outcome.answer(PaymentKind::Macro);
        Step {
            decision,
            http_status: callback_status(CallbackClass::Domain(answer)).as_u16(),
        }
    })?;
    Ok(HandledWebhook::Done(processed, Box::new(webhook), matched))
}

/// One log line, the metrics and any alert for one webhook.
fn report(
    handled: &Result<HandledWebhook, StoreError>,
    state: &AppState,
    request_id: &str,
    started: Instant,
) {
    let seconds = started.elapsed().as_secs_f64();
    let duration_ms = seconds * 1000.0;
    let handled = match handled {
        Err(e) => {
            state.metrics.callback(API, None, seconds);
            tracing::error!(request_id, api = API, error = %e, duration_ms, "webhook not stored; answered 503");
            state.alerter.raise(
                Alert::new(
                    AlertKind::DatabaseError,
                    "a Checkout webhook could not be stored (answered 503)",
                    "error",
                )
                .reason(Some(&e.to_string())),
            );
            return;
        }
        Ok(handled) => handled,
    };
    let outcome = handled.outcome();
    state.metrics.callback(API, Some(outcome), seconds);
    let reason = handled.reason().unwrap_or_default();
    match handled {
        HandledWebhook::Unsupported(_) | HandledWebhook::Malformed(_) => {
            state.metrics.rejected(RejectClass::Malformed);
            tracing::warn!(
                request_id,
                api = API,
                outcome = outcome.as_str(),
                reason,
                duration_ms,
                "webhook"
            );
        }
        HandledWebhook::Rejected(e) => {
            state.metrics.rejected(e.class());
            tracing::warn!(
                request_id,
                api = API,
                outcome = outcome.as_str(),
                reason,
                duration_ms,
                "webhook"
            );
            state.alerter.raise(
                Alert::new(
                    AlertKind::SignatureRejected,
                    format!("Checkout webhook rejected: {reason}"),
                    outcome.as_str(),
                )
                .reason(Some(&reason)),
            );
        }
        HandledWebhook::Done(processed, webhook, matched) => {
            let line = |flagged: bool| {
                let fields = (
                    webhook.project_id(),
                    webhook.orderid().unwrap_or(""),
                    webhook.event(),
                );
                if flagged {
                    tracing::warn!(
                        request_id,
                        api = API,
                        project = fields.0,
                        orderid = fields.1,
                        event = fields.2,
                        secret = matched.as_str(),
                        outcome = outcome.as_str(),
                        reason,
                        duration_ms,
                        "webhook"
                    );
                } else {
                    tracing::info!(
                        request_id,
                        api = API,
                        project = fields.0,
                        orderid = fields.1,
                        event = fields.2,
                        secret = matched.as_str(),
                        outcome = outcome.as_str(),
                        reason,
                        duration_ms,
                        "webhook"
                    );
                }
            };
            line(processed.flag.is_some() || processed.flood);
            let kind = processed
                .flag
                .map(AlertKind::Flag)
                .or(processed.flood.then_some(AlertKind::DuplicateFlood));
            if let Some(kind) = kind {
                let orderid = webhook.orderid();
                state.alerter.raise(
                    Alert::new(
                        kind,
                        format!("order {}: {}", orderid.unwrap_or("-"), outcome.as_str()),
                        outcome.as_str(),
                    )
                    .order(orderid)
                    .reason(processed.reason.as_deref()),
                );
            }
        }
    }
}
