//! What a verified webhook means, in the domain's terms: the project whose
//! secret matched, the order it names, and the one fact a decision reads.

use super::event::{Payload, PaymentStatus, RefundStatus};
use super::verify::VerifiedWebhook;
use crate::domain::{Amount, CheckoutWebhook, Snapshot, WebhookFact};

impl VerifiedWebhook {
    /// `body` is the raw body that was authenticated (it identifies the
    /// webhook); the project is the matched secret's (empty when the secret
    /// was configured without one).
    pub fn to_domain(&self, body: &[u8]) -> CheckoutWebhook {
        let order = self.body.payload.order_ref();
        let project = self.secret.project.clone().unwrap_or_default();
        CheckoutWebhook::new(
            project,
            body,
            order.merchant_order_id,
            order.paysera_order_id,
            self.body.event.label(),
            fact(&self.body.payload, &self.body.event.label()),
        )
    }
}

fn fact(payload: &Payload, label: &str) -> WebhookFact {
    match payload {
        Payload::OrderSnapshot { order, .. } => WebhookFact::Snapshot(Snapshot {
            amount: order.amount,
            amount_paid: order.amount_paid,
            currency: order.currency.clone(),
            updated_at: order.updated_at,
            payer_sets_amount: order.payer_sets_amount,
            within_limits: order.within_limits(),
            chargeback: order.has_chargeback(),
        }),
        Payload::PaymentStatus(p) if p.status == PaymentStatus::Chargeback => {
            WebhookFact::Chargeback {
                payment_id: p.payment_id.clone(),
            }
        }
        Payload::PaymentStatus(p) => WebhookFact::Unhandled {
            what: format!("payment {} is {}", p.payment_id, p.status.as_str()),
        },
        Payload::RefundStatus(r) if r.status == RefundStatus::Completed => {
            WebhookFact::RefundCompleted {
                amount: r.amount.and_then(|a| Amount::from_minor(a).ok()),
            }
        }
        Payload::RefundStatus(r) => WebhookFact::Unhandled {
            what: format!("refund {} is {}", r.refund_id, r.status.as_str()),
        },
        Payload::Unhandled { .. } => WebhookFact::Unhandled {
            what: format!("event {label} is not handled"),
        },
    }
}
