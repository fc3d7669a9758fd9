//! Erasing the buyer's personal data from the journal: after
//! `PAYHOOK_PII_RETENTION` by a pass on every instance, or for one order now
//! (`payhook erase`, the admin API, the console). A stored request keeps what
//! accounting and proof need — its order, outcome, time and answer, the
//! length and SHA-256 of the original request (the signature verdict is its
//! outcome), and the decoded fields with the personal ones masked — and loses
//! the rest: the request becomes its masked form (`actions::shown_raw`: a
//! classic `data` as its length and SHA-256, payer fields as `***`), the
//! bytes kept beside the signed part and the sender's address go.

use std::time::Duration;

use tokio::task::JoinHandle;

use super::actions::{decoded_fields, shown_raw};
use super::{Api, Pipeline};
use crate::gateways::Request;
use crate::paysera::{base64url, Verifier};
use crate::store::raw::unescape;
use crate::store::{now_millis, Erased, JournalEntry, StoreError};

/// Rows per batch: each row is its own short statement.
pub const ERASE_BATCH: i64 = 500;

impl Pipeline {
    /// `entry` with its personal data taken out.
    pub fn erased_form(&self, entry: &JournalEntry) -> Erased {
        Erased {
            raw_query: shown_raw(entry, false).text,
            facts: decoded_fields(self.verifier(), entry, false).map(|v| v.to_string()),
        }
    }

    /// Erases row `id`; `false` when there is nothing (left) to erase.
    fn erase_row(&self, id: i64, at: i64) -> Result<bool, StoreError> {
        let store = self.store();
        match store.journal_entry(id)? {
            Some(entry) if entry.erased_at.is_none() => {
                store.erase(id, &self.erased_form(&entry), at)
            }
            _ => Ok(false),
        }
    }

    /// Erases every callback received before `cutoff`, `ERASE_BATCH` rows at
    /// a time, from where the last complete pass ended; returns how many.
    pub fn erase_before(&self, cutoff: i64) -> Result<usize, StoreError> {
        let mut from = self.store().erased_until()?.unwrap_or(i64::MIN);
        let mut total = 0;
        loop {
            let due = self.store().unerased_between(from, cutoff, ERASE_BATCH)?;
            for (id, _) in &due {
                total += usize::from(self.erase_row(*id, now_millis())?);
            }
            match due.last() {
                Some((_, received_at)) if due.len() as i64 == ERASE_BATCH => from = *received_at,
                _ => {
                    self.store().mark_erased_until(cutoff)?;
                    return Ok(total);
                }
            }
            // A long backlog: let waiting callbacks have the connections first.
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Erases one order's personal data now, and records who asked; returns
    /// how many rows were erased (0: erased before), `None` when payhook
    /// knows no such order.
    pub fn erase_order(
        &self,
        project: &str,
        orderid: &str,
        actor: &str,
    ) -> Result<Option<usize>, StoreError> {
        let at = now_millis();
        let ids = self.store().order_callback_ids(project, orderid)?;
        if ids.is_empty() && self.store().order(project, orderid)?.is_none() {
            return Ok(None);
        }
        let mut erased = 0;
        for id in ids {
            erased += usize::from(self.erase_row(id, at)?);
        }
        self.store()
            .record_erasure(project, orderid, erased as i64, actor, at)?;
        tracing::info!(
            actor,
            project,
            orderid,
            rows = erased,
            "an order's personal data erased on request"
        );
        Ok(Some(erased))
    }
}

/// What `payhook erase --email` erased: the orders whose stored requests
/// carried the address, and the rows that carried it without naming an order
/// (a rejected copy of a genuine callback).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ErasedByEmail {
    pub orders: Vec<ErasedOrder>,
    pub rows_without_order: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ErasedOrder {
    pub project_id: String,
    pub orderid: String,
    pub rows_erased: usize,
}

impl ErasedByEmail {
    pub fn is_empty(&self) -> bool {
        self.orders.is_empty() && self.rows_without_order == 0
    }
}

impl Pipeline {
    /// Finds every stored request that still carries `email` and erases the
    /// personal data of each order they belong to, recorded as erasures on
    /// request. Reads every row not erased yet, `ERASE_BATCH` at a time (the
    /// address is not indexed: an index of it would be personal data kept
    /// past erasure). The address is never logged.
    pub fn erase_email(&self, email: &str, actor: &str) -> Result<ErasedByEmail, StoreError> {
        let mut orders = std::collections::BTreeSet::new();
        let mut outside = Vec::new();
        let mut after = 0;
        loop {
            let batch = self.store().unerased_after(after, ERASE_BATCH)?;
            for entry in &batch {
                if carries_email(self.verifier(), entry, email) {
                    match (&entry.project_id, &entry.orderid) {
                        (Some(p), Some(o)) => {
                            orders.insert((p.clone(), o.clone()));
                        }
                        _ => outside.push(entry.clone()),
                    }
                }
            }
            match batch.last() {
                Some(last) if batch.len() as i64 == ERASE_BATCH => after = last.id,
                _ => break,
            }
        }
        let mut erased = ErasedByEmail::default();
        for entry in outside {
            let at = now_millis();
            if self
                .store()
                .erase(entry.id, &self.erased_form(&entry), at)?
            {
                let project = entry.project_id.as_deref().unwrap_or_default();
                self.store().record_erasure(project, "", 1, actor, at)?;
                erased.rows_without_order += 1;
            }
        }
        for (project_id, orderid) in orders {
            let rows = self.erase_order(&project_id, &orderid, actor)?.unwrap_or(0);
            erased.orders.push(ErasedOrder {
                project_id,
                orderid,
                rows_erased: rows,
            });
        }
        tracing::info!(
            actor,
            orders = erased.orders.len(),
            rows_without_order = erased.rows_without_order,
            "personal data erased on request for the orders that carried an e-mail address"
        );
        Ok(erased)
    }
}

/// Whether a stored request carries `email`: a decoded value equal to it,
/// ignoring ASCII case and surrounding blanks, in its signed part or in what
/// came beside it (a gateway's unsigned `P_EMAIL`). A classic request that
/// no longer verifies (a rejected copy of a genuine callback) is read without
/// its signature: its `data`, unless encrypted, holds the same fields.
pub fn carries_email(verifier: &Verifier, entry: &JournalEntry, email: &str) -> bool {
    let email = email.trim();
    let is = |value: &[u8]| {
        String::from_utf8_lossy(value)
            .trim()
            .eq_ignore_ascii_case(email)
    };
    if entry.erased_at.is_some() || email.is_empty() {
        return false;
    }
    let in_form = |escaped: &str| {
        let Ok(raw) = unescape(escaped) else {
            return false;
        };
        let form = Request::from_urlencoded(&raw);
        let carries = |request: &Request| request.iter().any(|(_, value)| is(value));
        let data = form
            .iter()
            .find(|(name, _)| *name == "data")
            .and_then(|(_, value)| base64url::decode(value).ok());
        carries(&form) || data.is_some_and(|data| carries(&Request::from_urlencoded(&data)))
    };
    if entry.raw_unsigned.as_deref().is_some_and(in_form) {
        return true;
    }
    match decoded_fields(verifier, entry, true) {
        Some(decoded) => any_string(&decoded, &|s| is(s.as_bytes())),
        None => Api::of_stored(&entry.api) == Api::Classic && in_form(&entry.raw_query),
    }
}

/// Whether any string in `value`, at any depth, satisfies `is`.
fn any_string(value: &serde_json::Value, is: &impl Fn(&str) -> bool) -> bool {
    match value {
        serde_json::Value::String(s) => is(s),
        serde_json::Value::Array(items) => items.iter().any(|v| any_string(v, is)),
        serde_json::Value::Object(map) => map.values().any(|v| any_string(v, is)),
        _ => false,
    }
}

/// Erases what is past `retention` now and then every tenth of it (at least
/// every second, at most every minute). Every instance may run it: a row is
/// erased once (`erased_at IS NULL` in the update).
pub fn spawn_eraser(pipeline: Pipeline, retention: Duration) -> JoinHandle<()> {
    let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    let every = (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(60));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let cutoff = now_millis().saturating_sub(retention_ms);
            let pipeline = pipeline.clone();
            match tokio::task::spawn_blocking(move || pipeline.erase_before(cutoff)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(erased)) => tracing::info!(
                    erased,
                    retention_s = retention.as_secs(),
                    "personal data past retention erased"
                ),
                Ok(Err(e)) => tracing::warn!(error = %e, "erasing personal data failed"),
                Err(e) => tracing::warn!(error = %e, "erasing personal data panicked"),
            }
        }
    })
}
