//! Paysera Checkout's side of a webhook, for the simulator, demo mode and
//! tests: an order snapshot or a thin event as JSON, and the five
//! `X-Paysera-*` headers signed with the client secret (§3). Section numbers
//! (§) are those of `docs/checkout-modern.md`.

use sha2::Digest;

use crate::checkout::sign;

/// Signs webhooks with one client secret.
pub struct CheckoutSigner {
    secret: String,
}

/// A webhook ready to send: its headers and its exact body.
#[derive(Debug, Clone)]
pub struct SignedWebhook {
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// An `order` / `amount_paid_updated` snapshot's figures.
#[derive(Debug, Clone)]
pub struct OrderFigures<'a> {
    pub orderid: &'a str,
    pub amount: i64,
    pub amount_paid: i64,
    pub currency: &'a str,
    pub updated_at: i64,
    /// The payments' status, e.g. `settled`, or `chargeback`.
    pub payment_status: &'a str,
}

impl CheckoutSigner {
    pub fn new(secret: impl Into<String>) -> Self {
        CheckoutSigner {
            secret: secret.into(),
        }
    }

    /// Signs `body` as it is.
    pub fn sign(&self, body: Vec<u8>) -> SignedWebhook {
        let signature = sign(self.secret.as_bytes(), &body);
        let created_at = chrono::Utc::now().timestamp().to_string();
        SignedWebhook {
            headers: vec![
                ("Content-Type", "application/json".to_string()),
                ("X-Paysera-Signature", signature),
                ("X-Paysera-Signature-Alg", "HMAC-SHA256".to_string()),
                ("X-Paysera-Created-At", created_at),
                ("X-Paysera-Request-Id", uuid()),
                ("X-Paysera-Callback-Id", uuid()),
            ],
            body,
        }
    }

    /// An order snapshot, signed.
    pub fn snapshot(&self, order: &OrderFigures<'_>) -> SignedWebhook {
        self.sign(snapshot_body(order))
    }

    /// A thin `payment` / `status_updated` event, signed.
    pub fn payment_status(&self, orderid: &str, payment_id: &str, status: &str) -> SignedWebhook {
        let body = serde_json::json!({
            "version": 1,
            "event": {"type": "payment", "name": "status_updated"},
            "order": {"paysera_order_id": paysera_order_id(orderid), "merchant_order_id": orderid},
            "payment": {"id": payment_id, "status": status},
            "timestamp": chrono::Utc::now().timestamp(),
        });
        self.sign(body.to_string().into_bytes())
    }
}

/// The snapshot's JSON, in the shape of the spec's vector V1.
pub fn snapshot_body(order: &OrderFigures<'_>) -> Vec<u8> {
    let status = if order.amount_paid >= order.amount {
        "paid"
    } else {
        "pending_payment"
    };
    let payments = if order.amount_paid > 0 {
        serde_json::json!([{
            "id": format!("pay-{}-{}", order.orderid, order.updated_at),
            "method": "card",
            "status": order.payment_status,
            "purpose": format!("Order {}", order.orderid),
            "payment_currency": order.currency,
            "payment_amount": order.amount_paid,
            "created_at": order.updated_at,
            "updated_at": order.updated_at,
        }])
    } else {
        serde_json::json!([])
    };
    serde_json::json!({
        "event": {"name": "amount_paid_updated", "type": "order"},
        "order": {
            "paysera_order_id": paysera_order_id(order.orderid),
            "merchant_order_id": order.orderid,
            "source": "checkout_page",
            "amount": order.amount,
            "amount_paid": order.amount_paid,
            "currency": order.currency,
            "status": status,
            "created_at": order.updated_at - 60,
            "updated_at": order.updated_at,
            "merchant_data": [],
            "payment_links": [{
                "id": format!("link-{}", order.orderid),
                "name": format!("Order {}", order.orderid),
                "created_at": order.updated_at - 60,
                "updated_at": order.updated_at,
                "payments": payments,
            }],
        }
    })
    .to_string()
    .into_bytes()
}

/// Paysera's id of an order, stable per merchant order id.
fn paysera_order_id(orderid: &str) -> String {
    let digest = sha2::Sha256::digest(orderid.as_bytes());
    uuid_of(&digest[..16])
}

fn uuid() -> String {
    uuid_of(&rand::random::<[u8; 16]>())
}

/// A version-4-shaped UUID from 16 bytes, as the headers carry (§3.1).
fn uuid_of(bytes: &[u8]) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&bytes[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
