//! The operator's actions, one code path each for the command line
//! (`crate::operator`), the admin API and the console: replay a stored
//! callback, run a pasted one, close an order, send an event again, end every
//! console session; and the decoded view of a stored callback. Each action is
//! logged with who asked (`actor`: `cli`, `api`, or the console session's
//! handle). Synchronous (diesel): callers on the async side run them through
//! `Pipeline::bounded`. And the self-diagnosis's lines, as the console shows them.

use std::sync::Arc;

use super::{Api, Handled, Pipeline, WebhookError};
use crate::checkout::Headers;
use crate::domain::{Fields, Outcome};
use crate::paysera::{RequestParams, Verifier};
use crate::store::raw::{escape, unescape, RawRequest};
use crate::store::{CallbackMeta, EventRow, JournalEntry, Store, StoreError};

/// One line of the self-diagnosis (`payhook check`), as the console shows it
/// (and keeps it, as JSON, for `GET /ui/check`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CheckLine {
    pub check: String,
    /// `ok`, `warn`, `fail` or `skip`.
    pub status: String,
    pub detail: String,
    pub fix: Option<String>,
}

/// Runs `payhook check`'s checks from inside the service: given by start-up,
/// which knows the settings (the pipeline sits below the command).
pub type SelfCheck = Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<CheckLine>> + Send>>
        + Send
        + Sync,
>;

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

impl From<WebhookError> for ReplayError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::NotConfigured => ReplayError::NoCheckout,
            WebhookError::Store(e) => ReplayError::Store(e),
        }
    }
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
    /// The pipeline decided it.
    pub decided: bool,
}

impl Replayed {
    fn of(handled: &Handled) -> Replayed {
        Replayed {
            callback_id: handled.callback_id(),
            outcome: handled.outcome(),
            reason: handled.reason(),
            decided: matches!(handled, Handled::Done(..)),
        }
    }

    pub fn outcome_name(&self) -> &'static str {
        self.outcome.map_or("error", Outcome::as_str)
    }
}

/// Runs raw classic request bytes through the pipeline, stored with
/// `method` (`REPLAY`, `INGEST`).
pub fn run_raw(pipeline: &Pipeline, method: &str, raw: &[u8]) -> Result<Handled, StoreError> {
    let meta = CallbackMeta {
        method: method.to_string(),
        raw: RawRequest::join(raw, b""),
        remote_addr: None,
        api: Api::Classic.as_str(),
    };
    pipeline.classic(raw, b"", &meta, None)
}

/// Runs a stored callback or webhook through the pipeline again; it is
/// stored as a new journal row with method `REPLAY`. Idempotent by nature: a
/// replayed paid callback is a `duplicate`.
pub fn replay(pipeline: &Pipeline, id: i64, actor: &str) -> Result<Replayed, ReplayError> {
    let entry = pipeline
        .store()
        .journal_entry(id)?
        .ok_or(ReplayError::NotFound(id))?;
    if entry.raw_truncated {
        return Err(ReplayError::Truncated);
    }
    if entry.erased_at.is_some() {
        return Err(ReplayError::Unreadable(
            "its personal data was erased: the request is no longer whole".into(),
        ));
    }
    let raw = unescape(&entry.raw_query).map_err(|e| ReplayError::Unreadable(e.to_string()))?;
    let handled = match Api::of_stored(&entry.api) {
        Api::Checkout => replay_webhook(pipeline, &raw)?,
        Api::Classic => run_raw(pipeline, "REPLAY", &raw)?,
        Api::Gateway => replay_gateway(pipeline, &entry, &raw)?,
    };
    let replayed = Replayed::of(&handled);
    tracing::info!(
        actor,
        callback = id,
        replayed_as = replayed.callback_id,
        outcome = replayed.outcome_name(),
        "callback replayed by an operator"
    );
    Ok(replayed)
}

/// A gateway's stored signed part, read by its recipe again. A captured
/// notification has no signed part to read: it is confirmed, not replayed.
fn replay_gateway(
    pipeline: &Pipeline,
    entry: &JournalEntry,
    raw: &[u8],
) -> Result<Handled, ReplayError> {
    let name = entry.project_id.as_deref().unwrap_or_default();
    let recipe = pipeline
        .gateway_recipe(name)
        .ok_or_else(|| ReplayError::Unreadable(format!("no gateway {name:?} is configured")))?;
    if !recipe.verifies() || entry.outcome == Outcome::Captured.as_str() {
        return Err(ReplayError::Unreadable(
            "nothing of a captured notification is signed: confirm it instead".into(),
        ));
    }
    let meta = CallbackMeta {
        method: "REPLAY".into(),
        raw: RawRequest::join(raw, b""),
        remote_addr: None,
        api: Api::Gateway.as_str(),
    };
    pipeline
        .gateway_request(
            recipe,
            &crate::gateways::Request::from_urlencoded(raw),
            &meta,
        )
        .map_err(|e| match e {
            super::GatewayError::Store(e) => ReplayError::Store(e),
            e => ReplayError::Unreadable(e.to_string()),
        })
}

fn replay_webhook(pipeline: &Pipeline, raw: &[u8]) -> Result<Handled, ReplayError> {
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
        api: Api::Checkout.as_str(),
    };
    Ok(pipeline.webhook(&headers, body, &meta, None)?)
}

/// A callback URL copied from the gateway's panel, run through the pipeline
/// and stored like a received callback, with method `INGEST`.
pub fn ingest_url(pipeline: &Pipeline, url: &str, actor: &str) -> Result<Handled, StoreError> {
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
/// masked unless `show_pii` (`PAYHOOK_LOG_PII`): [`is_personal`] fields of a
/// classic callback, [`mask_payers`] text of a Checkout body.
pub fn decoded_fields(
    verifier: &Verifier,
    entry: &JournalEntry,
    show_pii: bool,
) -> Option<serde_json::Value> {
    if entry.erased_at.is_some() {
        // What was decoded at erasure; the request itself no longer verifies.
        return serde_json::from_str(entry.facts.as_deref()?).ok();
    }
    if entry.raw_truncated {
        return None;
    }
    let raw = unescape(&entry.raw_query).ok()?;
    if Api::of_stored(&entry.api) == Api::Checkout {
        let (_, body) = RawRequest::split_webhook(&raw)?;
        let body = if show_pii {
            body.to_vec()
        } else {
            mask_payers(body).0
        };
        return serde_json::from_slice(&body).ok();
    }
    if Api::of_stored(&entry.api) == Api::Gateway {
        // A recipe's fields as received; its signature was checked then.
        let fields = crate::gateways::Request::from_urlencoded(&raw);
        let mut value = serde_json::Value::Object(
            fields
                .iter()
                .map(|(name, value)| {
                    let value = String::from_utf8_lossy(value).into_owned();
                    (name.to_string(), serde_json::Value::String(value))
                })
                .collect(),
        );
        if !show_pii {
            mask_personal_values(&mut value);
        }
        return Some(value);
    }
    let params = RequestParams::parse(&raw, b"");
    let verified = verifier.verify(&params).ok()?;
    Some(mask_personal_data(verified.fields(), show_pii))
}

/// A classic callback's fields that carry the buyer's personal data: the
/// payer fields the shop sent and the gateway echoes (`p_email`,
/// `p_firstname`, `p_phone`, … every `p_` name), the names the payment system
/// gives (`name`, `surename`), the account paid from (`account`) and an SMS
/// sender's number (`from`); in a legacy callback the same names after `wp_`.
/// A hash-signed gateway's are matched without case: anything naming an
/// e-mail, a phone or the payer (FreeKassa's `P_EMAIL`, Robokassa's `EMail`,
/// WebMoney's `LMI_PAYER_PURSE`), YooMoney's `sender`, Interkassa's `ik_cli`.
pub fn is_personal(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let name = name.strip_prefix("wp_").unwrap_or(&name);
    name.starts_with("p_")
        || matches!(
            name,
            "name" | "surename" | "account" | "from" | "sender" | "ik_cli"
        )
        || ["mail", "phone", "payer"].iter().any(|p| name.contains(p))
}

/// Buyer personal data is masked unless `show` (`PAYHOOK_LOG_PII`).
pub fn mask_personal_data(fields: &Fields, show: bool) -> serde_json::Value {
    let mut value = serde_json::to_value(fields).unwrap_or_default();
    if !show {
        mask_personal_values(&mut value);
    }
    value
}

/// A field map's [`is_personal`] values that are not empty, masked.
fn mask_personal_values(value: &mut serde_json::Value) {
    if let Some(map) = value.as_object_mut() {
        for (k, v) in map.iter_mut() {
            if is_personal(k) && v.as_str().is_some_and(|s| !s.is_empty()) {
                *v = serde_json::Value::String(MASK.into());
            }
        }
    }
}

/// What a masked value is shown as.
const MASK: &str = "***";

/// A stored request as the console and `payhook callbacks show` show it, in
/// the journal's escaped form (`store::raw`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownRaw {
    pub text: String,
    /// Something was hidden: buyer data, shown with `PAYHOOK_LOG_PII`.
    pub masked: bool,
}

/// The raw request with buyer data hidden unless `show_pii`, whether it
/// verifies or not (a rejected request can hold a genuine callback's data):
/// a classic request's `data` parameter (base64 of every field, the e-mail
/// among them) becomes its length and SHA-256, a personal field sent in the
/// clear (legacy callbacks) `***`; a Checkout body's payer text `***`, the
/// rest of the bytes as received.
pub fn shown_raw(entry: &JournalEntry, show_pii: bool) -> ShownRaw {
    let as_stored = ShownRaw {
        text: entry.raw_query.clone(),
        masked: false,
    };
    if show_pii {
        return as_stored;
    }
    if entry.erased_at.is_some() {
        // Masked when it was erased; masking it again would hash the mask.
        return ShownRaw {
            masked: true,
            ..as_stored
        };
    }
    let Ok(raw) = unescape(&entry.raw_query) else {
        return as_stored;
    };
    let (bytes, masked) = if Api::of_stored(&entry.api) == Api::Checkout {
        // The headers are payhook's own `X-Paysera-*` lines; the body follows
        // the first empty line (`RawRequest::webhook`).
        let start = if raw.first() == Some(&b'\n') {
            1
        } else {
            match raw.windows(2).position(|w| w == b"\n\n") {
                Some(i) => i + 2,
                None => return as_stored,
            }
        };
        let (body, masked) = mask_payers(&raw[start..]);
        ([&raw[..start], &body[..]].concat(), masked)
    } else {
        mask_query(&raw)
    };
    ShownRaw {
        text: escape(&bytes),
        masked,
    }
}

/// `name=value&…` with `data` hidden and [`is_personal`] values masked.
fn mask_query(raw: &[u8]) -> (Vec<u8>, bool) {
    use sha2::{Digest, Sha256};
    let mut masked = false;
    let mut out = Vec::with_capacity(raw.len());
    for (i, pair) in raw.split(|b| *b == b'&').enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        let Some(eq) = pair.iter().position(|b| *b == b'=') else {
            out.extend_from_slice(pair);
            continue;
        };
        let (name, value) = (&pair[..eq], &pair[eq + 1..]);
        let decoded = percent_encoding::percent_decode(name).decode_utf8_lossy();
        let shown = if value.is_empty() {
            None
        } else if decoded == "data" {
            Some(format!(
                "[{} bytes hidden, sha256 {}]",
                value.len(),
                hex::encode(Sha256::digest(value))
            ))
        } else if is_personal(&decoded) {
            Some(MASK.to_string())
        } else {
            None
        };
        out.extend_from_slice(name);
        out.push(b'=');
        match shown {
            Some(text) => {
                masked = true;
                out.extend_from_slice(text.as_bytes());
            }
            None => out.extend_from_slice(value),
        }
    }
    (out, masked)
}

/// A Checkout body's payer text, masked: every string under a key that
/// starts with `payer_` (`payer_name`, `payer_email`, `payer_country`,
/// `payer_ip_country`, …) and every string inside a `payer` object or list
/// (a refund's payer). It reads the JSON text as a stream, so a body cut
/// short (a stored rejection) or not quite JSON is masked as far as it goes,
/// and everything else keeps its bytes and order.
pub fn mask_payers(body: &[u8]) -> (Vec<u8>, bool) {
    /// Where the scanner is: the containers open around it, each marked
    /// when it is a payer's.
    struct Scan {
        payer: Vec<bool>,
        key: Option<Vec<u8>>,
        masked: bool,
    }
    let mut scan = Scan {
        payer: Vec::new(),
        key: None,
        masked: false,
    };
    let is_payer_key = |key: &[u8]| key.starts_with(b"payer_") || key == b"payer";
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        match b {
            b'"' => {
                // A string, to its closing quote (or the end of a cut body).
                let mut end = i + 1;
                while end < body.len() && body[end] != b'"' {
                    end += if body[end] == b'\\' { 2 } else { 1 };
                }
                let end = end.min(body.len());
                let content = &body[i + 1..end];
                let mut next = end + 1;
                while next < body.len() && body[next].is_ascii_whitespace() {
                    next += 1;
                }
                let is_key = body.get(next) == Some(&b':');
                let in_payer = scan.payer.last().copied().unwrap_or(false);
                let under_payer_key = scan
                    .key
                    .as_deref()
                    .is_some_and(|k| k.starts_with(b"payer_"));
                out.push(b'"');
                if !is_key && !content.is_empty() && (in_payer || under_payer_key) {
                    out.extend_from_slice(MASK.as_bytes());
                    scan.masked = true;
                } else {
                    out.extend_from_slice(content);
                }
                if end < body.len() {
                    out.push(b'"');
                }
                scan.key = is_key.then(|| content.to_vec());
                i = end + 1;
                continue;
            }
            b'{' | b'[' => {
                let in_payer = scan.payer.last().copied().unwrap_or(false);
                let opens_payer = scan.key.as_deref().is_some_and(is_payer_key);
                scan.payer.push(in_payer || opens_payer);
                scan.key = None;
            }
            b'}' | b']' => {
                scan.payer.pop();
                scan.key = None;
            }
            b',' => scan.key = None,
            _ => {}
        }
        out.push(b);
        i += 1;
    }
    (out, scan.masked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(api: &str, raw: &[u8]) -> JournalEntry {
        JournalEntry {
            id: 1,
            received_at: 0,
            project_id: None,
            orderid: None,
            outcome: "rejected".into(),
            reason: None,
            http_status: 400,
            method: "POST".into(),
            raw_query: escape(raw),
            raw_length: None,
            raw_sha256: None,
            raw_truncated: false,
            api: api.into(),
            erased_at: None,
            facts: None,
            raw_unsigned: None,
        }
    }

    #[test]
    fn payer_text_is_masked_and_the_rest_kept_byte_for_byte() {
        let body = br#"{"order":{"amount":2500,"payer_sets_amount":true,"payment_links":[{"name":"Order #1","payer_name":"John Doe","payer_email" : "john@example.com","payer_country":"LT","payments":[{"payer_ip_country":"LT","purpose":"x"}]}],"refund":{"payer":{"name":"J","iban":["LT12"]},"reason":"r"}}}"#;
        let (masked, changed) = mask_payers(body);
        assert!(changed);
        assert_eq!(
            String::from_utf8(masked).unwrap(),
            r#"{"order":{"amount":2500,"payer_sets_amount":true,"payment_links":[{"name":"Order #1","payer_name":"***","payer_email" : "***","payer_country":"***","payments":[{"payer_ip_country":"***","purpose":"x"}]}],"refund":{"payer":{"name":"***","iban":["***"]},"reason":"r"}}}"#
        );
        // A body cut short (a stored rejection) is masked as far as it goes.
        let (cut, _) = mask_payers(br#"{"payer_email":"john@exam"#);
        assert_eq!(cut, br#"{"payer_email":"***"#);
        // Escaped quotes do not end a string early; nothing else is touched.
        let plain = br#"{"name":"a \"payer_email\": \"x\"","n":1}"#;
        assert_eq!(mask_payers(plain), (plain.to_vec(), false));
    }

    #[test]
    fn a_classic_raw_request_hides_data_and_personal_fields() {
        let raw = b"data=ZW1haWw9YkBleGFtcGxlLmNvbQ&ss1=abc&wp_p_email=b%40example.com&p%5Fphone=+370&name=&x=1";
        let shown = shown_raw(&entry("classic", raw), false);
        assert!(shown.masked);
        assert_eq!(
            shown.text,
            "data=[26 bytes hidden, sha256 \
             6db94d6f022a53de6c278521e3b012ee4cee6e66f6d9bf07520fa3a9e41a6c06]\
             &ss1=abc&wp_p_email=***&p%5Fphone=***&name=&x=1"
        );
        assert_eq!(
            shown_raw(&entry("classic", raw), true).text,
            escape(raw),
            "PAYHOOK_LOG_PII shows it as stored"
        );
        let webhook = b"x-paysera-signature: ab\n\n{\"payer_email\":\"b@example.com\"}";
        let shown = shown_raw(&entry("checkout", webhook), false);
        assert_eq!(
            shown.text,
            "x-paysera-signature: ab\n\n{\"payer_email\":\"***\"}"
        );
        let nothing = shown_raw(&entry("classic", b"a=1&b"), false);
        assert_eq!((nothing.text.as_str(), nothing.masked), ("a=1&b", false));
    }
}
