//! The operator's actions, one code path each for the command line
//! (`crate::operator`), the admin API and the console: replay a stored
//! callback, run a pasted one, close an order, send an event again, end every
//! console session; and the decoded view of a stored callback. Each action is
//! logged with who asked (`actor`: `cli`, `api`, or the console session's
//! handle). Synchronous (diesel): callers on the async side run them through
//! `Store::bounded`.

use crate::checkout::Headers;
use crate::domain::{Fields, Outcome};
use crate::http::callback::{handle, Handled, Pipeline};
use crate::http::checkout::{handle as handle_webhook, HandledWebhook, WebhookPipeline};
use crate::paysera::{RequestParams, Verifier};
use crate::store::raw::{unescape, RawRequest};
use crate::store::{CallbackMeta, EventRow, JournalEntry, Store, StoreError};

/// Why a stored callback was not replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("callback {0} not found")]
    NotFound(i64),
    #[error("only the beginning of this request is stored")]
    Truncated,
    #[error("stored request is not readable: {0}")]
    Unreadable(String),
    #[error("no Checkout project is configured")]
    NoCheckout,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a replay came to.
#[derive(Debug, Clone)]
pub struct Replayed {
    /// The journal row the replay was stored as, when it was stored with one
    /// (a verified callback; a rejection's row id is not reported).
    pub callback_id: Option<i64>,
    /// `None`: nothing was stored (payhook itself cannot check it).
    pub outcome: Option<Outcome>,
    pub reason: Option<String>,
    /// The pipeline answered it `OK` (or the SMS reply): it was decided.
    pub decided: bool,
}

impl Replayed {
    fn of(handled: &Handled) -> Replayed {
        Replayed {
            callback_id: match handled {
                Handled::Done(p, _) => Some(p.callback_id),
                _ => None,
            },
            outcome: handled.outcome(),
            reason: handled.reason(),
            decided: matches!(handled, Handled::Done(..)),
        }
    }

    pub fn outcome_name(&self) -> &'static str {
        self.outcome.map_or("error", Outcome::as_str)
    }
}

/// Runs raw request bytes through the callback pipeline, stored with `method`
/// (`REPLAY`, `INGEST`).
pub fn run_raw(pipeline: &Pipeline<'_>, method: &str, raw: &[u8]) -> Result<Handled, StoreError> {
    let meta = CallbackMeta {
        method: method.to_string(),
        raw: RawRequest::join(raw, b""),
        remote_addr: None,
        api: "classic",
    };
    handle(pipeline, raw, b"", &meta, None)
}

/// Runs a stored callback through the pipeline again; it is stored as a new
/// journal row with method `REPLAY`. Idempotent by nature: a replayed paid
/// callback is a `duplicate`. A stored Checkout webhook goes through the
/// webhook pipeline.
pub fn replay(pipeline: &Pipeline<'_>, id: i64, actor: &str) -> Result<Replayed, ReplayError> {
    let entry = pipeline
        .store
        .journal_entry(id)?
        .ok_or(ReplayError::NotFound(id))?;
    if entry.raw_truncated {
        return Err(ReplayError::Truncated);
    }
    let raw = unescape(&entry.raw_query).map_err(|e| ReplayError::Unreadable(e.to_string()))?;
    let replayed = if entry.api == "checkout" {
        replay_webhook(pipeline, &raw)?
    } else {
        Replayed::of(&run_raw(pipeline, "REPLAY", &raw)?)
    };
    tracing::info!(
        actor,
        callback = id,
        replayed_as = replayed.callback_id,
        outcome = replayed.outcome_name(),
        "callback replayed by an operator"
    );
    Ok(replayed)
}

fn replay_webhook(pipeline: &Pipeline<'_>, raw: &[u8]) -> Result<Replayed, ReplayError> {
    let webhooks = WebhookPipeline::beside(pipeline).ok_or(ReplayError::NoCheckout)?;
    let (pairs, body) = RawRequest::split_webhook(raw).ok_or_else(|| {
        ReplayError::Unreadable("the stored webhook is not headers and a body".into())
    })?;
    let mut headers = Headers::new();
    for (name, value) in pairs {
        headers.push(name, value);
    }
    let meta = CallbackMeta {
        method: "REPLAY".into(),
        raw: RawRequest::webhook(headers.paysera(), body),
        remote_addr: None,
        api: "checkout",
    };
    let handled = handle_webhook(&webhooks, &headers, body, &meta, None)?;
    Ok(Replayed {
        callback_id: match &handled {
            HandledWebhook::Done(p, ..) => Some(p.callback_id),
            _ => None,
        },
        outcome: Some(handled.outcome()),
        reason: handled.reason(),
        decided: matches!(handled, HandledWebhook::Done(..)),
    })
}

/// A callback URL copied from the gateway's panel, run through the pipeline
/// and stored like a received callback, with method `INGEST`.
pub fn ingest_url(pipeline: &Pipeline<'_>, url: &str, actor: &str) -> Result<Handled, StoreError> {
    let query = crate::paysera::query_of(url);
    let handled = run_raw(pipeline, "INGEST", query.as_bytes())?;
    tracing::info!(
        actor,
        outcome = handled.outcome().map_or("error", Outcome::as_str),
        "callback URL ingested by an operator"
    );
    Ok(handled)
}

/// Closes an order (out of the missed-callback count). `None`: no such
/// order; else when it was closed and whether this call closed it.
pub fn close_order(
    store: &Store,
    project: &str,
    orderid: &str,
    actor: &str,
) -> Result<Option<(i64, bool)>, StoreError> {
    let closed = store.close_order(project, orderid)?;
    if let Some((_, true)) = closed {
        tracing::info!(actor, project, orderid, "order closed by an operator");
    }
    Ok(closed)
}

/// Sends an event again, the same id. `None`: no such event.
pub fn retry_event(store: &Store, id: i64, actor: &str) -> Result<Option<EventRow>, StoreError> {
    let row = store.retry_event(id)?;
    if row.is_some() {
        tracing::info!(actor, event = id, "event queued again by an operator");
    }
    Ok(row)
}

/// Signs every console session out, on every instance; how many ended.
pub fn revoke_sessions(store: &Store, actor: &str) -> Result<usize, StoreError> {
    let ended = store.revoke_sessions()?;
    tracing::info!(actor, ended, "every console session ended by an operator");
    Ok(ended)
}

/// A stored callback's decoded fields, when the stored request still verifies
/// (a truncated rejection cannot be decoded again); buyer personal data is
/// masked unless `show_pii` (`PAYHOOK_LOG_PII`).
pub fn decoded_fields(
    verifier: &Verifier,
    entry: &JournalEntry,
    show_pii: bool,
) -> Option<serde_json::Value> {
    if entry.raw_truncated {
        return None;
    }
    let raw = unescape(&entry.raw_query).ok()?;
    if entry.api == "checkout" {
        let (_, body) = RawRequest::split_webhook(&raw)?;
        let mut body: serde_json::Value = serde_json::from_slice(body).ok()?;
        if !show_pii {
            mask_payers(&mut body);
        }
        return Some(body);
    }
    let params = RequestParams::parse(&raw, b"");
    let verified = verifier.verify(&params).ok()?;
    Some(mask_personal_data(verified.fields(), show_pii))
}

/// A Checkout body's payer names and e-mails, masked (`payer_name`,
/// `payer_email`, and `name` / `email` of a `payer` object), wherever they are.
fn mask_payers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                let personal = matches!(k.as_str(), "payer_name" | "payer_email");
                if personal && v.as_str().is_some_and(|s| !s.is_empty()) {
                    *v = serde_json::Value::String("***".into());
                } else if k == "payer" {
                    if let Some(payer) = v.as_object_mut() {
                        for (pk, pv) in payer.iter_mut() {
                            if matches!(pk.as_str(), "name" | "email")
                                && pv.as_str().is_some_and(|s| !s.is_empty())
                            {
                                *pv = serde_json::Value::String("***".into());
                            }
                        }
                    }
                } else {
                    mask_payers(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(mask_payers),
        _ => {}
    }
}

/// Buyer personal data is masked unless `show` (`PAYHOOK_LOG_PII`).
pub fn mask_personal_data(fields: &Fields, show: bool) -> serde_json::Value {
    let mut value = serde_json::to_value(fields).unwrap_or_default();
    if !show {
        if let Some(map) = value.as_object_mut() {
            for (k, v) in map.iter_mut() {
                let personal = k.starts_with("p_") || k == "name" || k == "surename";
                if personal && v.as_str().is_some_and(|s| !s.is_empty()) {
                    *v = serde_json::Value::String("***".into());
                }
            }
        }
    }
    value
}
