//! A Checkout (Modern) webhook: verify the raw bytes and headers
//! (`checkout::WebhookVerifier::verify`), then store it in one transaction
//! (`Store::record`, deciding with `domain::decide_webhook`).

use crate::checkout::Headers;
use crate::domain::{decide_webhook, webhook_order_to_lock, PaymentKind};
use crate::store::{CallbackMeta, Decided, RawRequest, Signed, StoreError};

use super::{record, status_of, AnswerClass, Handled, Pipeline, Rejection, Unsupported, Verified};

/// Why a webhook cannot go through the pipeline at all.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("no Checkout project is configured")]
    NotConfigured,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Pipeline {
    /// verify → store (claim, lock, decide, write); the caller answers.
    pub fn webhook(
        &self,
        headers: &Headers,
        body: &[u8],
        meta: &CallbackMeta,
        unsupported: Option<Unsupported>,
    ) -> Result<Handled, WebhookError> {
        let parts = &*self.shared;
        let verifier = parts.checkout.as_ref().ok_or(WebhookError::NotConfigured)?;
        let store = &self.store;
        let max_bytes = parts.rejected_max_bytes;
        if let Some(unsupported) = unsupported {
            let status = status_of(AnswerClass::UnsupportedMediaType);
            store.record_rejected(meta, unsupported.reason(), status, max_bytes)?;
            return Ok(Handled::Unsupported(unsupported));
        }
        let verified = match verifier.verify(headers, body) {
            Ok(verified) => verified,
            Err(e) => {
                let rejection = Rejection::webhook(&e, parts.checkout_reject_status);
                store.record_rejected(meta, &rejection.reason, rejection.status, max_bytes)?;
                return Ok(Handled::Rejected(rejection));
            }
        };
        let secret = verified.secret.label.clone();
        let webhook = verified.to_domain(body);
        let rules = parts.rules;
        let lock = webhook_order_to_lock(&webhook, rules);
        // The body and the headers the verifier read are the gateway's; any
        // other `X-Paysera-*` header is the sender's, kept bounded.
        let signed = Signed::new(
            (!headers.paysera_all_read())
                .then(|| RawRequest::webhook(headers.read_by_verifier(), body).into_bytes()),
            max_bytes,
        );
        let processed = record::record(store, &webhook, meta, &signed, lock, |seen| {
            let decision = decide_webhook(&webhook, seen, rules);
            let answer = decision.outcome.answer(PaymentKind::Macro);
            Decided {
                decision,
                http_status: status_of(AnswerClass::Domain(answer)),
            }
        })?;
        Ok(Handled::Done(
            processed,
            Verified::Webhook {
                webhook: Box::new(webhook),
                secret,
            },
        ))
    }
}
