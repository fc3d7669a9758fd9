//! The pipeline between the store and the edges: parse → verify → decide →
//! store → answer, one shape for both APIs (classic callbacks, Checkout
//! webhooks). The HTTP handlers, the command line (`crate::operator`) and the
//! console all run a received or stored request through one [`Pipeline`],
//! and get one [`Handled`] back; [`Handled::answer`] says what the gateway is
//! answered (the domain's [`Answer`], through the one status table,
//! [`status_of`]), and [`Report`] writes its log line, metrics and alert once.
//!
//! Synchronous (diesel): callers on the async side run it through
//! [`Pipeline::bounded`], which bounds its store's work to the statement
//! bound.

pub mod actions;
mod classic;
pub mod erase;
mod gateway;
mod record;
pub mod registration;
mod report;
mod webhook;

use std::sync::Arc;

use crate::checkout::CheckoutError;
use crate::domain::{
    Answer, CheckoutWebhook, Outcome, PaidReturn, PaymentKind, Rules, VerifiedCallback,
};
use crate::paysera::{CallbackError, RejectClass, RequestParams, Verifier};
use crate::store::{Processed, Store, StoreError};

pub use actions::{CheckLine, SelfCheck};
pub use gateway::{ConfirmError, GatewayError};
pub use report::Report;
pub use webhook::WebhookError;

/// The APIs payhook receives, as stored in the journal's `api` column
/// and counted in the metrics' `api` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `GET|POST /paysera/callback`: the classic (`data`, `ss1`/`ss2`) callback.
    Classic,
    /// `POST /paysera/checkout/webhook`: a Checkout (Modern) webhook.
    Checkout,
    /// `GET|POST /gateways/{name}/callback`: a hash-signed gateway's
    /// notification (the journal's `project_id` is the gateway's name).
    Gateway,
}

impl Api {
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Classic => "classic",
            Api::Checkout => "checkout",
            Api::Gateway => "gateway",
        }
    }

    /// The API a journal row was received on (`api` column).
    pub fn of_stored(api: &str) -> Api {
        [Api::Checkout, Api::Gateway]
            .into_iter()
            .find(|a| a.as_str() == api)
            .unwrap_or(Api::Classic)
    }
}

/// Most callbacks are under 2 KiB; the gateway's GET query is at most a few KiB.
pub const MAX_CALLBACK_BYTES: usize = 64 * 1024;

/// What the pipeline is built from (see `config::Settings::pipeline`).
pub struct Parts {
    pub verifier: Arc<Verifier>,
    /// Checkout webhooks' verifier (`None` without a Checkout project).
    pub checkout: Option<Arc<crate::checkout::WebhookVerifier>>,
    /// What a Checkout webhook failing verification is answered and stored with.
    pub checkout_reject_status: u16,
    pub store: Store,
    pub rules: Rules,
    /// Bytes of a rejected request that are stored.
    pub rejected_max_bytes: usize,
    /// The hash-signed gateways (`PAYHOOK_GATEWAYS_FILE`).
    pub gateways: Arc<Vec<crate::gateways::Recipe>>,
}

/// What every clone of a pipeline shares: the parts but the store.
struct Shared {
    verifier: Arc<Verifier>,
    checkout: Option<Arc<crate::checkout::WebhookVerifier>>,
    checkout_reject_status: u16,
    rules: Rules,
    rejected_max_bytes: usize,
    gateways: Arc<Vec<crate::gateways::Recipe>>,
}

/// One pipeline for every caller: owned and cheap to clone, so that it can
/// move onto the blocking thread that runs it. Its store is a handle of its
/// own, so that [`Pipeline::bounded`] can hand the work a bounded one.
#[derive(Clone)]
pub struct Pipeline {
    shared: Arc<Shared>,
    store: Store,
}

impl Pipeline {
    pub fn new(parts: Parts) -> Pipeline {
        let Parts {
            verifier,
            checkout,
            checkout_reject_status,
            store,
            rules,
            rejected_max_bytes,
            gateways,
        } = parts;
        Pipeline {
            shared: Arc::new(Shared {
                verifier,
                checkout,
                checkout_reject_status,
                rules,
                rejected_max_bytes,
                gateways,
            }),
            store,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs `work` on the blocking pool with this pipeline over a store
    /// bounded as [`Store::bounded`] bounds it, and waits for it as long.
    pub async fn bounded<T: Send + 'static>(
        &self,
        work: impl FnOnce(Pipeline) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let shared = self.shared.clone();
        self.store
            .bounded(move |store| work(Pipeline { shared, store }))
            .await
    }

    pub fn verifier(&self) -> &Verifier {
        &self.shared.verifier
    }

    pub fn rules(&self) -> Rules {
        self.shared.rules
    }

    /// The paid order a buyer's return proves, if any: the gateway's
    /// appended parameters verified as a callback (on the query alone: a
    /// return is a GET) that says paid. A query longer than a callback may
    /// be is not looked at.
    pub fn paid_return(&self, query: &str) -> Option<PaidReturn> {
        if query.is_empty() || query.len() > MAX_CALLBACK_BYTES {
            return None;
        }
        let params = RequestParams::parse(query.as_bytes(), b"");
        let callback = self.shared.verifier.verify(&params).ok()?;
        PaidReturn::proven_by(&callback, self.shared.rules)
    }

    /// Whether Checkout webhooks are received (a Checkout project is configured).
    pub fn has_checkout(&self) -> bool {
        self.shared.checkout.is_some()
    }
}

/// The answer classes of both endpoints: the domain's, and those only the
/// transport knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerClass {
    Domain(Answer),
    /// Not a form, or a body in a content coding.
    UnsupportedMediaType,
    TooLarge,
    /// A body that could not be read as bytes.
    BadBody,
}

/// The one table: the HTTP status each class is answered with, and stored with.
pub fn status_of(class: AnswerClass) -> u16 {
    match class {
        AnswerClass::Domain(Answer::Ok(_)) => 200,
        AnswerClass::Domain(Answer::Unauthenticated | Answer::Malformed) | AnswerClass::BadBody => {
            400
        }
        AnswerClass::Domain(Answer::UnknownOrder) => 409,
        AnswerClass::Domain(Answer::Unavailable) => 503,
        AnswerClass::UnsupportedMediaType => 415,
        AnswerClass::TooLarge => 413,
    }
}

/// The text a rejected request is answered with, on both APIs.
pub fn rejection_text(reason: &str) -> String {
    format!("rejected: {reason}")
}

/// Refused before the body is read as anything but bytes.
#[derive(Debug, Clone, Copy)]
pub enum Unsupported {
    /// A classic callback that is not a form.
    ContentType,
    /// A body in a content coding: never decompressed, so a small request
    /// cannot grow into a large one.
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

/// A request that failed verification (or, for a webhook, an authentic body
/// payhook cannot read): stored as rejected with `status`, answered the same.
#[derive(Debug, Clone)]
pub struct Rejection {
    pub reason: String,
    pub class: RejectClass,
    /// Stored and answered.
    pub status: u16,
    /// Raise the `signature_rejected` alert.
    pub alert: bool,
    /// The answer's body, when the sender wants its own (a gateway's recipe);
    /// `None`: [`rejection_text`].
    pub body: Option<String>,
}

impl Rejection {
    fn classic(e: &CallbackError) -> Rejection {
        Rejection {
            reason: e.to_string(),
            class: e.class(),
            status: status_of(AnswerClass::Domain(e.answer())),
            alert: e.class() == RejectClass::Signature,
            body: None,
        }
    }

    /// Headers or signature: the configured status; an unreadable body: 400.
    fn webhook(e: &CheckoutError, reject_status: u16) -> Rejection {
        if e.is_verification() {
            Rejection {
                reason: e.to_string(),
                class: e.class(),
                status: reject_status,
                alert: true,
                body: None,
            }
        } else {
            Rejection {
                reason: e.to_string(),
                class: RejectClass::Malformed,
                status: status_of(AnswerClass::Domain(Answer::Malformed)),
                alert: false,
                body: None,
            }
        }
    }
}

/// What was verified and decided.
pub enum Verified {
    Callback(Box<VerifiedCallback>),
    Webhook {
        webhook: Box<CheckoutWebhook>,
        /// The label of the secret whose signature matched.
        secret: String,
    },
    /// A hash-signed gateway's notification, verified by its recipe.
    Gateway {
        callback: Box<VerifiedCallback>,
        /// The recipe's accepting reply, filled in.
        reply: String,
    },
    /// Not verified: a gateway without a recipe. Kept for review, answered
    /// with its reply once stored.
    Captured {
        gateway: String,
        orderid: Option<String>,
        reply: String,
    },
}

impl Verified {
    pub fn api(&self) -> Api {
        match self {
            Verified::Callback(_) => Api::Classic,
            Verified::Webhook { .. } => Api::Checkout,
            Verified::Gateway { .. } | Verified::Captured { .. } => Api::Gateway,
        }
    }

    /// What the answer depends on: a webhook is always a bank payment.
    pub fn kind(&self) -> PaymentKind {
        match self {
            Verified::Callback(c) => c.kind(),
            _ => PaymentKind::Macro,
        }
    }

    pub fn project(&self) -> &str {
        match self {
            Verified::Callback(c) | Verified::Gateway { callback: c, .. } => c.project_id(),
            Verified::Webhook { webhook, .. } => webhook.project_id(),
            Verified::Captured { gateway, .. } => gateway,
        }
    }

    pub fn orderid(&self) -> Option<&str> {
        match self {
            Verified::Callback(c) | Verified::Gateway { callback: c, .. } => c.orderid(),
            Verified::Webhook { webhook, .. } => webhook.orderid(),
            Verified::Captured { orderid, .. } => orderid.as_deref(),
        }
    }

    /// The body a gateway wants when it is told its notification is taken
    /// (`None`: Paysera's `OK`).
    pub fn gateway_reply(&self) -> Option<&str> {
        match self {
            Verified::Gateway { reply, .. } | Verified::Captured { reply, .. } => Some(reply),
            _ => None,
        }
    }
}

/// How far a request got, for the answer, the report and the operator.
pub enum Handled {
    /// Stored as rejected, answered 415.
    Unsupported(Unsupported),
    /// Stored as rejected.
    Rejected(Rejection),
    /// payhook itself cannot check it (no password for what it needs):
    /// nothing stored, answered 503.
    Misconfigured(CallbackError),
    /// Verified, decided and stored.
    Done(Processed, Verified),
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
            Handled::Rejected(r) => Some(r.reason.clone()),
            Handled::Misconfigured(e) => Some(e.to_string()),
            Handled::Done(p, _) => p.reason.clone(),
        }
    }

    /// The journal row of a verified request.
    pub fn callback_id(&self) -> Option<i64> {
        match self {
            Handled::Done(p, _) => Some(p.callback_id),
            _ => None,
        }
    }

    /// What a decided request is answered, by the domain's rule for its
    /// outcome (`None`: not decided, the transport answers).
    pub fn answer(&self) -> Option<Answer> {
        match self {
            Handled::Done(p, verified) => Some(p.outcome.answer(verified.kind())),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OkBody;

    fn webhook_done(outcome: Outcome) -> Handled {
        let webhook = CheckoutWebhook::new(
            "client".into(),
            b"{}",
            Some("W-1".into()),
            None,
            "order.updated".into(),
            crate::domain::WebhookFact::Unhandled {
                what: "test".into(),
            },
        );
        Handled::Done(
            Processed {
                callback_id: 1,
                outcome,
                reason: None,
                flag: None,
                flood: false,
            },
            Verified::Webhook {
                webhook: Box::new(webhook),
                secret: "primary".into(),
            },
        )
    }

    #[test]
    fn a_decided_webhook_is_answered_by_the_domain_and_the_one_table() {
        let rejected = webhook_done(Outcome::Rejected).answer().unwrap();
        assert_eq!(rejected, Answer::Malformed);
        assert_eq!(status_of(AnswerClass::Domain(rejected)), 400);
        let unknown = webhook_done(Outcome::UnknownOrder).answer().unwrap();
        assert_eq!(status_of(AnswerClass::Domain(unknown)), 409);
        for outcome in [Outcome::Fulfilled, Outcome::Duplicate, Outcome::Info] {
            assert_eq!(
                webhook_done(outcome).answer(),
                Some(Answer::Ok(OkBody::Ok)),
                "{outcome:?}"
            );
        }
    }
}
