//! A classic callback: parse the query and body (`RequestParams::parse`),
//! verify (`paysera::Verifier::verify`), then store it in one transaction
//! (`Store::record`: claim its identity, lock its order, decide it with
//! `domain::decide_callback`, write).

use crate::domain::{decide_callback, order_to_lock};
use crate::paysera::RequestParams;
use crate::store::{CallbackMeta, Decided, Signed, StoreError};

use super::{record, status_of, AnswerClass, Handled, Pipeline, Rejection, Unsupported, Verified};

impl Pipeline {
    /// parse → verify → store (claim, lock, decide, write); the caller answers.
    pub fn classic(
        &self,
        query: &[u8],
        body: &[u8],
        meta: &CallbackMeta,
        unsupported: Option<Unsupported>,
    ) -> Result<Handled, StoreError> {
        let parts = &*self.shared;
        let store = &self.store;
        let max_bytes = parts.rejected_max_bytes;
        if let Some(unsupported) = unsupported {
            let status = status_of(AnswerClass::UnsupportedMediaType);
            store.record_rejected(meta, unsupported.reason(), status, max_bytes)?;
            return Ok(Handled::Unsupported(unsupported));
        }
        let params = RequestParams::parse(query, body);
        let callback = match parts.verifier.verify(&params) {
            Ok(callback) => callback,
            Err(e) if e.is_configuration() => return Ok(Handled::Misconfigured(e)),
            Err(e) => {
                let rejection = Rejection::classic(&e);
                store.record_rejected(meta, &rejection.reason, rejection.status, max_bytes)?;
                return Ok(Handled::Rejected(rejection));
            }
        };
        let signed_query = params.signed_query();
        let signed = Signed::new(
            (!signed_query.covers_whole(meta.raw.bytes())).then_some(signed_query.query),
            max_bytes,
        );
        let rules = parts.rules;
        let lock = order_to_lock(&callback, rules);
        let processed = record::record(store, &callback, meta, &signed, lock, |seen| {
            let decision = decide_callback(&callback, seen, rules);
            let answer = decision.outcome.answer(callback.kind());
            Decided {
                decision,
                http_status: status_of(AnswerClass::Domain(answer)),
            }
        })?;
        Ok(Handled::Done(
            processed,
            Verified::Callback(Box::new(callback)),
        ))
    }
}
