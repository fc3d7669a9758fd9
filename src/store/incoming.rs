//! The shapes a verified callback is handed to the store in, and what the
//! store hands back: shared by the general path (`callbacks`) and the fast
//! path (`pay`).

use super::models::NewCallback;
use super::raw::{RawRequest, Signed, StoredRaw};
use crate::domain::{Decision, Flag, Outcome, Recorded};

/// What the HTTP layer knows about the request, stored beside the callback.
#[derive(Debug, Clone)]
pub struct CallbackMeta {
    pub method: String,
    /// The bytes received; stored escaped, whole for a verified callback.
    pub raw: RawRequest,
    pub remote_addr: Option<String>,
    /// `classic` or `checkout`: which endpoint received it.
    pub api: &'static str,
}

/// What the caller decided for a callback, as the store writes it.
#[derive(Debug, Clone)]
pub struct Decided {
    pub decision: Decision,
    /// The status the callback is answered with, stored beside it.
    pub http_status: u16,
}

/// What became of a stored callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    pub callback_id: i64,
    pub outcome: Outcome,
    pub reason: Option<String>,
    pub flag: Option<Flag>,
    /// A duplicate whose delivery has come [`DUPLICATE_FLOOD`] times or more:
    /// someone is replaying it (the `duplicate_flood` alert).
    pub flood: bool,
}

/// Duplicates of one delivery past which it counts as replayed on purpose. A
/// gateway retries a callback a handful of times at most.
pub const DUPLICATE_FLOOD: i64 = 100;

/// A verified callback on its way into the store, once per request: what the
/// fast path and the general path both write, and the attempt id written with
/// the duplicate guard, the same on both, so that a retry whose earlier
/// COMMIT landed though its reply was lost finds its own attempt there.
pub struct Incoming<'a> {
    pub(super) callback: &'a dyn Recorded,
    pub(super) meta: &'a CallbackMeta,
    /// As a verified callback is stored: what `signed` covers whole.
    pub(super) raw: StoredRaw,
    /// Bytes a duplicate keeps of the request.
    pub(super) duplicate_max_bytes: usize,
    pub(super) attempt: String,
}

impl<'a> Incoming<'a> {
    pub fn new(callback: &'a dyn Recorded, meta: &'a CallbackMeta, signed: &Signed) -> Self {
        Incoming {
            callback,
            meta,
            raw: meta.raw.stored_verified(signed),
            duplicate_max_bytes: signed.unsigned_max_bytes,
            attempt: hex::encode(rand::random::<[u8; 16]>()),
        }
    }

    pub(super) fn callback(&self) -> &'a dyn Recorded {
        self.callback
    }

    pub(super) fn attempt(&self) -> &str {
        &self.attempt
    }

    pub(super) fn row<'r>(
        &'r self,
        now: i64,
        identity: &'r str,
        decision: &'r Decision,
        http_status: u16,
    ) -> NewCallback<'r> {
        NewCallback {
            received_at: now,
            project_id: Some(self.callback.project_id()),
            orderid: self.callback.orderid(),
            identity: Some(identity),
            outcome: decision.outcome.as_str(),
            reason: decision.reason.as_deref(),
            http_status: i32::from(http_status),
            method: &self.meta.method,
            raw_query: &self.raw.text,
            remote_addr: self.meta.remote_addr.as_deref(),
            raw_length: self.raw.length,
            raw_sha256: &self.raw.sha256,
            raw_truncated: self.raw.truncated,
            api: self.callback.api(),
            raw_unsigned: self.raw.unsigned.as_deref(),
            duplicate_of: None,
        }
    }
}

/// A reason quotes the request at most through `printable`, which escapes
/// control characters; this keeps a NUL that slipped through any other way from
/// turning a rejection into a database error (PostgreSQL `TEXT` holds no NUL).
pub(super) fn no_nul(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        text.replace('\0', "\\x00").into()
    } else {
        text.into()
    }
}
