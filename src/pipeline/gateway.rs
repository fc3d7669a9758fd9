//! A hash-signed gateway's notification: read by its recipe
//! (`gateways::Recipe::read`), then decided by the same domain rules as a
//! classic callback (`domain::decide_callback`) and stored the same way
//! (`record::record`). A gateway without a recipe (`weboplata`) only
//! captures: the notification is stored bounded, attached to the order it
//! names, and never a payment (`domain::decide_captured`).

use crate::domain::{
    decide_callback, decide_captured, order_to_lock, Amount, Currency, FieldError, FieldValue,
    Fields, PaymentKind, Proof, Recorded, VerifiedCallback,
};
use crate::gateways::{GatewayPayment, NotificationError, Recipe, Request, SignatureError};
use crate::paysera::RejectClass;
use crate::store::{CallbackMeta, Decided, Signed, StoreError};

use super::{record, status_of, AnswerClass, Handled, Pipeline, Rejection, Unsupported, Verified};

/// Why a gateway notification cannot go through the pipeline at all.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("no gateway {0:?} is configured")]
    Unknown(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a gateway's callback is stored as beside its fields: the fields a
/// decision reads, under the names the domain reads (`status` 1 when the
/// recipe says paid, else 2, "accepted, not yet executed"); the gateway's own
/// payment id as `requestid`.
pub(super) fn to_callback(
    gateway: &str,
    proof: Proof,
    payment: &GatewayPayment,
) -> Result<VerifiedCallback, FieldError> {
    let mut fields = Vec::new();
    let mut put = |name: &str, value: String| {
        fields.push((name.to_string(), FieldValue::Text(value)));
    };
    if let Some(orderid) = &payment.orderid {
        put("orderid", orderid.clone());
    }
    if let Some(amount) = payment.amount {
        put("amount", amount.minor_units().to_string());
    }
    if let Some(currency) = &payment.currency {
        put("currency", currency.as_str().to_string());
    }
    put("status", if payment.paid { "1" } else { "2" }.to_string());
    put("test", if payment.test { "1" } else { "0" }.to_string());
    if let Some(dedup) = &payment.dedup {
        put("requestid", dedup.clone());
    }
    let callback = VerifiedCallback::new(
        gateway.to_string(),
        proof,
        PaymentKind::Macro,
        Fields::new(fields),
    )?;
    // The signed part is what the gateway vouched for: the same part again
    // is the same delivery, whatever is sent beside it.
    Ok(callback.identified_by_signed_values(payment.signed.clone().into_bytes()))
}

/// A notification nothing verified, as the journal records it.
struct Captured<'a> {
    gateway: &'a str,
    orderid: Option<&'a str>,
    identity: [u8; 32],
}

impl Recorded for Captured<'_> {
    fn project_id(&self) -> &str {
        self.gateway
    }
    fn identity(&self) -> [u8; 32] {
        self.identity
    }
    fn orderid(&self) -> Option<&str> {
        self.orderid
    }
    fn amount(&self) -> Option<Amount> {
        None
    }
    fn currency(&self) -> Option<&Currency> {
        None
    }
    fn api(&self) -> &'static str {
        super::Api::Gateway.as_str()
    }
}

impl Pipeline {
    /// The gateway configured as `name`.
    pub fn gateway_recipe(&self, name: &str) -> Option<&Recipe> {
        self.shared.gateways.iter().find(|r| r.name == name)
    }

    /// The configured gateways' names: each is also its orders' project.
    pub fn gateway_names(&self) -> impl Iterator<Item = &str> {
        self.shared.gateways.iter().map(|r| r.name.as_str())
    }

    /// A notification received at `/gateways/{name}/callback`: allow-list →
    /// read by the recipe → store (claim, lock, decide, write); the caller
    /// answers, with the recipe's reply once it is stored.
    pub fn gateway(
        &self,
        name: &str,
        query: &[u8],
        body: &[u8],
        meta: &CallbackMeta,
        unsupported: Option<Unsupported>,
    ) -> Result<Handled, GatewayError> {
        let recipe = self
            .gateway_recipe(name)
            .ok_or_else(|| GatewayError::Unknown(name.to_string()))?;
        let max_bytes = self.shared.rejected_max_bytes;
        if let Some(unsupported) = unsupported {
            let status = status_of(AnswerClass::UnsupportedMediaType);
            self.store
                .record_rejected(meta, unsupported.reason(), status, max_bytes)?;
            return Ok(Handled::Unsupported(unsupported));
        }
        let sender = meta.remote_addr.as_deref().and_then(|a| a.parse().ok());
        if !recipe.allows(sender) {
            // Anyone can send from anywhere: counted and stored bounded, never an alert.
            return self.refuse(
                recipe,
                meta,
                "sender address not in the gateway's allow-list".into(),
                RejectClass::Disabled,
                403,
            );
        }
        self.gateway_request(recipe, &Request::of(recipe.read, query, body), meta)
    }

    /// A notification's fields, read by `recipe` and stored (the HTTP path,
    /// and a replay of a stored signed part).
    pub(crate) fn gateway_request(
        &self,
        recipe: &Recipe,
        request: &Request,
        meta: &CallbackMeta,
    ) -> Result<Handled, GatewayError> {
        let payment = match recipe.read(request) {
            Ok(payment) => payment,
            Err(e) => {
                let class = match e {
                    NotificationError::Signature(SignatureError::Mismatch(_)) => {
                        RejectClass::Signature
                    }
                    _ => RejectClass::Malformed,
                };
                return self.refuse(recipe, meta, e.to_string(), class, recipe.reject_status);
            }
        };
        if !payment.verified {
            return self.capture(recipe, &payment, meta);
        }
        let callback = match to_callback(&recipe.name, Proof::Recipe, &payment) {
            Ok(callback) => callback,
            Err(e) => {
                let status = recipe.reject_status;
                return self.refuse(recipe, meta, e.to_string(), RejectClass::Malformed, status);
            }
        };
        let signed = Signed::new(
            Some(payment.signed.into_bytes()),
            self.shared.rejected_max_bytes,
        );
        let rules = self.shared.rules;
        let lock = order_to_lock(&callback, rules);
        let processed = record::record(&self.store, &callback, meta, &signed, lock, |seen| {
            let decision = decide_callback(&callback, seen, rules);
            let answer = decision.outcome.answer(PaymentKind::Macro);
            Decided {
                decision,
                http_status: status_of(AnswerClass::Domain(answer)),
            }
        })?;
        Ok(Handled::Done(
            processed,
            Verified::Gateway {
                callback: Box::new(callback),
                reply: payment.reply,
            },
        ))
    }

    /// Stored as rejected (bounded) and answered with the recipe's refusal.
    fn refuse(
        &self,
        recipe: &Recipe,
        meta: &CallbackMeta,
        reason: String,
        class: RejectClass,
        status: u16,
    ) -> Result<Handled, GatewayError> {
        let reason = format!("gateway {}: {reason}", recipe.name);
        let max_bytes = self.shared.rejected_max_bytes;
        self.store
            .record_rejected(meta, &reason, status, max_bytes)?;
        Ok(Handled::Rejected(Rejection {
            reason,
            class,
            status,
            alert: class == RejectClass::Signature,
            body: Some(recipe.reject_body.clone()),
        }))
    }

    /// A notification of a gateway without a recipe: nothing in it is the
    /// gateway's for sure, so all of it is kept bounded, as rejected input is,
    /// and it changes no order.
    fn capture(
        &self,
        recipe: &Recipe,
        payment: &GatewayPayment,
        meta: &CallbackMeta,
    ) -> Result<Handled, GatewayError> {
        let captured = Captured {
            gateway: &recipe.name,
            orderid: payment.orderid.as_deref(),
            identity: payment.identity,
        };
        let signed = Signed::nothing(self.shared.rejected_max_bytes);
        let processed = record::record(&self.store, &captured, meta, &signed, None, |seen| {
            let decision = decide_captured(seen);
            let answer = decision.outcome.answer(PaymentKind::Macro);
            Decided {
                decision,
                http_status: status_of(AnswerClass::Domain(answer)),
            }
        })?;
        Ok(Handled::Done(
            processed,
            Verified::Captured {
                gateway: recipe.name.clone(),
                orderid: payment.orderid.clone(),
                reply: payment.reply.clone(),
            },
        ))
    }
}

/// Why a captured notification was not confirmed.
#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error("callback {0} not found")]
    NotFound(i64),
    #[error("no gateway {0:?} is configured")]
    UnknownGateway(String),
    /// The row is not what the operator named: another gateway or order, or
    /// not a captured notification (a verified one needs no confirmation).
    #[error("callback {id} is not a captured notification of gateway {gateway:?} for order {orderid:?}: {why}")]
    NotCaptured {
        id: i64,
        gateway: String,
        orderid: String,
        why: String,
    },
    #[error("order {0:?} is not registered: register it with its amount and currency first")]
    NotRegistered(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Pipeline {
    /// An operator's confirmation of a captured notification (`payhook
    /// orders confirm ID --project-id GATEWAY --callback N`): the order is
    /// paid as registered, decided by the domain's rules like any payment
    /// (fulfilled once, the shop told), and the confirmation is a journal row
    /// of its own, method `CONFIRM`. Confirming the same notification again
    /// is a duplicate; another one for a paid order is `paid_again`.
    pub fn confirm(
        &self,
        gateway: &str,
        orderid: &str,
        callback: i64,
        actor: &str,
    ) -> Result<crate::store::Processed, ConfirmError> {
        let entry = self
            .store
            .journal_entry(callback)?
            .ok_or(ConfirmError::NotFound(callback))?;
        self.confirm_entry(&entry, gateway, orderid, actor)
    }

    /// [`Pipeline::confirm`] for the notification's own gateway and order,
    /// read from its row once (the console acts on the row itself); returns
    /// the order id with what was done.
    pub fn confirm_captured(
        &self,
        callback: i64,
        actor: &str,
    ) -> Result<(crate::store::Processed, String), ConfirmError> {
        let entry = self
            .store
            .journal_entry(callback)?
            .ok_or(ConfirmError::NotFound(callback))?;
        let gateway = entry.project_id.clone().unwrap_or_default();
        let orderid = entry.orderid.clone().unwrap_or_default();
        let processed = self.confirm_entry(&entry, &gateway, &orderid, actor)?;
        Ok((processed, orderid))
    }

    fn confirm_entry(
        &self,
        entry: &crate::store::JournalEntry,
        gateway: &str,
        orderid: &str,
        actor: &str,
    ) -> Result<crate::store::Processed, ConfirmError> {
        let store = &self.store;
        let callback = entry.id;
        let refuse = |why: String| ConfirmError::NotCaptured {
            id: callback,
            gateway: gateway.to_string(),
            orderid: orderid.to_string(),
            why,
        };
        if entry.api != super::Api::Gateway.as_str() || entry.project_id.as_deref() != Some(gateway)
        {
            return Err(refuse("it was received for another project".into()));
        }
        if entry.orderid.as_deref() != Some(orderid) {
            return Err(refuse(format!(
                "it names order {:?}",
                entry.orderid.as_deref().unwrap_or("")
            )));
        }
        if entry.outcome != crate::domain::Outcome::Captured.as_str() {
            return Err(refuse(format!("its outcome is {}", entry.outcome)));
        }
        self.gateway_recipe(gateway)
            .ok_or_else(|| ConfirmError::UnknownGateway(gateway.to_string()))?;
        let order = store.order(gateway, orderid)?;
        let registered = order.as_ref().and_then(|o| {
            let currency = Currency::parse(o.currency.as_deref()?).ok()?;
            Some((Amount::from_minor(o.amount?).ok()?, currency))
        });
        let rules = self.shared.rules;
        if registered.is_none() && rules.order_check == crate::domain::OrderCheck::Registered {
            return Err(ConfirmError::NotRegistered(orderid.to_string()));
        }
        let what = format!("{}{callback}", crate::store::CONFIRMATION_PREFIX);
        let payment = GatewayPayment {
            verified: false,
            orderid: Some(orderid.to_string()),
            amount: registered.as_ref().map(|(a, _)| *a),
            currency: registered.map(|(_, c)| c),
            paid: true,
            test: false,
            dedup: None,
            signed: what.clone(),
            unsigned: String::new(),
            identity: [0; 32],
            reply: String::new(),
        };
        let confirmation =
            to_callback(gateway, Proof::Operator, &payment).map_err(|e| refuse(e.to_string()))?;
        let meta = CallbackMeta {
            method: "CONFIRM".into(),
            raw: crate::store::RawRequest::join(what.as_bytes(), b""),
            remote_addr: None,
            api: super::Api::Gateway.as_str(),
        };
        let signed = Signed::new(None, self.shared.rejected_max_bytes);
        let lock = order_to_lock(&confirmation, rules);
        let processed = record::record(store, &confirmation, &meta, &signed, lock, |seen| {
            let decision = decide_callback(&confirmation, seen, rules);
            let answer = decision.outcome.answer(PaymentKind::Macro);
            Decided {
                decision,
                http_status: status_of(AnswerClass::Domain(answer)),
            }
        })?;
        tracing::info!(
            actor,
            gateway,
            orderid,
            callback,
            confirmed_as = processed.callback_id,
            outcome = processed.outcome.as_str(),
            "gateway notification confirmed by an operator"
        );
        Ok(processed)
    }
}
