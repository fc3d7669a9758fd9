//! What a verified webhook says, as typed values a decision can read (§4–§8).
//! Section numbers (§) are those of `docs/checkout-modern.md`.

use serde::Serialize;

use crate::domain::{Amount, Currency};

/// `event.type` and `event.name` exactly as sent (untrimmed: the SDK routes on
/// the exact strings, §4.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    #[serde(rename = "type")]
    pub object: String,
    pub name: String,
}

impl Event {
    /// The SDK's display form, `type:name` (e.g. `order:amount_paid_updated`).
    pub fn label(&self) -> String {
        format!("{}:{}", self.object, self.name)
    }
}

/// A decoded, authentic body: its event and what the event carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Body {
    pub event: Event,
    pub payload: Payload,
}

/// What the event carries, by the events §4.2 knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Payload {
    /// `order` / `amount_paid_updated`: the full order snapshot (§5). Also the
    /// DOC-E1 spelling `order.amount_paid_updated` when its body is a valid
    /// snapshot (`via_alias`), which the SDK would have ignored.
    OrderSnapshot {
        order: Box<OrderSnapshot>,
        via_alias: bool,
    },
    /// `payment` / `status_updated`, a thin envelope (§6; shape unverified).
    PaymentStatus(PaymentStatusUpdate),
    /// `refund` / `status_updated`, a thin envelope (§6; shape unverified).
    RefundStatus(RefundStatusUpdate),
    /// Any other authentic event, or a thin one whose body does not have the
    /// expected shape: kept and acknowledged, never an error (§4.2).
    Unhandled { order: OrderRef },
}

impl Payload {
    /// A short fixed name for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::OrderSnapshot { .. } => "order_snapshot",
            Payload::PaymentStatus(_) => "payment_status",
            Payload::RefundStatus(_) => "refund_status",
            Payload::Unhandled { .. } => "unhandled",
        }
    }

    /// Which order the webhook is about, as far as the body says.
    pub fn order_ref(&self) -> OrderRef {
        match self {
            Payload::OrderSnapshot { order, .. } => OrderRef {
                paysera_order_id: Some(order.paysera_order_id.clone()),
                merchant_order_id: Some(order.merchant_order_id.clone()),
            },
            Payload::PaymentStatus(p) => p.order.clone(),
            Payload::RefundStatus(r) => r.order.clone(),
            Payload::Unhandled { order } => order.clone(),
        }
    }

    pub fn order_snapshot(&self) -> Option<&OrderSnapshot> {
        match self {
            Payload::OrderSnapshot { order, .. } => Some(order),
            _ => None,
        }
    }
}

/// The order ids a body names, when it names them as strings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OrderRef {
    pub paysera_order_id: Option<String>,
    pub merchant_order_id: Option<String>,
}

/// `order` of an `amount_paid_updated` event: the complete order state when
/// the event fired (§5.2). Amounts are minor units of `currency`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrderSnapshot {
    /// Paysera's order id (the create-order response's `order_id`).
    pub paysera_order_id: String,
    /// The shop's reference, what payhook matches the order by (§8.1).
    pub merchant_order_id: String,
    /// Free text; empty when absent.
    pub source: String,
    /// Amount due, > 0. For a payer-set order, what the payer entered.
    pub amount: Amount,
    /// Total paid so far. 0 is accepted (§5.3), unlike in the SDK.
    pub amount_paid: Amount,
    pub currency: Currency,
    pub status: OrderStatus,
    pub created_at: Option<i64>,
    /// The ordering key of snapshots (§9).
    pub updated_at: Option<i64>,
    pub merchant_data: Vec<MerchantDatum>,
    /// May be empty (§5.3), unlike in the SDK.
    pub payment_links: Vec<PaymentLink>,
    pub payer_sets_amount: bool,
    pub minimum_amount: Option<Amount>,
    pub maximum_amount: Option<Amount>,
}

impl OrderSnapshot {
    /// The SDK-documented rule (§8.2): `amount_paid >= amount`.
    pub fn is_fully_paid(&self) -> bool {
        self.amount_paid >= self.amount
    }

    /// Something but not everything paid (§8.3).
    pub fn is_partially_paid(&self) -> bool {
        self.amount_paid.minor_units() > 0 && !self.is_fully_paid()
    }

    /// What is still to pay, never below 0.
    pub fn amount_due(&self) -> Amount {
        let due = self.amount.minor_units() - self.amount_paid.minor_units();
        Amount::from_minor(due.max(0)).unwrap_or(self.amount)
    }

    /// How much more than `amount` was paid (§8.4), if anything.
    pub fn overpaid_by(&self) -> Option<Amount> {
        let extra = self.amount_paid.minor_units() - self.amount.minor_units();
        (extra > 0)
            .then(|| Amount::from_minor(extra).ok())
            .flatten()
    }

    /// The status agrees with the amounts? (§8.2: if not, trust the amounts.)
    pub fn status_agrees(&self) -> bool {
        (self.status == OrderStatus::Paid) == self.is_fully_paid()
    }

    /// A payer-set order's amount lies within its limits (§8.1). Orders with
    /// a fixed amount have no limits and always pass.
    pub fn within_limits(&self) -> bool {
        self.minimum_amount.is_none_or(|min| self.amount >= min)
            && self.maximum_amount.is_none_or(|max| self.amount <= max)
    }

    pub fn payments(&self) -> impl Iterator<Item = &Payment> {
        self.payment_links.iter().flat_map(|l| l.payments.iter())
    }

    /// A payment charged back (§8.6): the order is disputed.
    pub fn has_chargeback(&self) -> bool {
        self.payments()
            .any(|p| p.status == PaymentStatus::Chargeback)
    }

    /// Payments that were refunded (§8.5).
    pub fn refunded_payments(&self) -> impl Iterator<Item = &Payment> {
        self.payments()
            .filter(|p| p.status == PaymentStatus::Refunded)
    }
}

/// `order.status` (§7.1). Compared case-insensitively, like the SDK's `isPaid()`;
/// an unknown value is kept, never an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderStatus {
    PendingPayment,
    Paid,
    Canceled,
    Closed,
    Other(String),
}

impl OrderStatus {
    pub fn parse(text: &str) -> Self {
        match text.to_ascii_lowercase().as_str() {
            "pending_payment" => OrderStatus::PendingPayment,
            "paid" => OrderStatus::Paid,
            "canceled" | "cancelled" => OrderStatus::Canceled,
            "closed" => OrderStatus::Closed,
            _ => OrderStatus::Other(text.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            OrderStatus::PendingPayment => "pending_payment",
            OrderStatus::Paid => "paid",
            OrderStatus::Canceled => "canceled",
            OrderStatus::Closed => "closed",
            OrderStatus::Other(s) => s,
        }
    }
}

impl Serialize for OrderStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A payment attempt's status (§7.2). The SDK spells `cancelled`, the docs
/// `canceled`: both are read as one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentStatus {
    Initiated,
    AwaitingAuthorization,
    Authorized,
    Processing,
    PendingSettlement,
    OnHold,
    Settled,
    Failed,
    Rejected,
    Canceled,
    Expired,
    Refunded,
    Chargeback,
    /// Unknown or empty (the SDK defaults a missing status to "").
    Other(String),
}

impl PaymentStatus {
    pub fn parse(text: &str) -> Self {
        use PaymentStatus::*;
        match text.to_ascii_lowercase().as_str() {
            "initiated" => Initiated,
            "awaiting_authorization" => AwaitingAuthorization,
            "authorized" => Authorized,
            "processing" => Processing,
            "pending_settlement" => PendingSettlement,
            "on_hold" => OnHold,
            "settled" => Settled,
            "failed" => Failed,
            "rejected" => Rejected,
            "canceled" | "cancelled" => Canceled,
            "expired" => Expired,
            "refunded" => Refunded,
            "chargeback" => Chargeback,
            _ => Other(text.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        use PaymentStatus::*;
        match self {
            Initiated => "initiated",
            AwaitingAuthorization => "awaiting_authorization",
            Authorized => "authorized",
            Processing => "processing",
            PendingSettlement => "pending_settlement",
            OnHold => "on_hold",
            Settled => "settled",
            Failed => "failed",
            Rejected => "rejected",
            Canceled => "canceled",
            Expired => "expired",
            Refunded => "refunded",
            Chargeback => "chargeback",
            Other(s) => s,
        }
    }
}

impl Serialize for PaymentStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A refund's status (§7.4): the SDK says `processing`, the docs `pending`;
/// both mean in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundStatus {
    InProgress,
    Completed,
    Failed,
    Other(String),
}

impl RefundStatus {
    pub fn parse(text: &str) -> Self {
        match text.to_ascii_lowercase().as_str() {
            "pending" | "processing" => RefundStatus::InProgress,
            "completed" => RefundStatus::Completed,
            "failed" => RefundStatus::Failed,
            _ => RefundStatus::Other(text.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            RefundStatus::InProgress => "in_progress",
            RefundStatus::Completed => "completed",
            RefundStatus::Failed => "failed",
            RefundStatus::Other(s) => s,
        }
    }
}

impl Serialize for RefundStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One `merchant_data` entry. The webhook sample sends a list of
/// `{key, value}`, the create-order request an object: both are read (§12 #10).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MerchantDatum {
    pub key: String,
    /// The value as text; a non-string value as its JSON.
    pub value: String,
}

/// `order.payment_links[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentLink {
    pub id: String,
    pub name: String,
    /// Not read by the SDK; kept when present (§7.3).
    pub status: Option<String>,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
    pub payer: Payer,
    pub payer_sets_amount: bool,
    pub payments: Vec<Payment>,
}

/// Payer details a link or a payment may carry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Payer {
    pub name: Option<String>,
    pub email: Option<String>,
    pub ip_country: Option<String>,
    pub country: Option<String>,
}

/// `order.payment_links[].payments[]`: one payment attempt. Informational:
/// decisions use the order's `amount_paid` (§8.7), so its amounts stay as sent
/// (signed minor units of `payment_currency`) and its currencies as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Payment {
    pub id: String,
    pub method: String,
    pub status: PaymentStatus,
    pub purpose: String,
    pub payment_country: Option<String>,
    pub payment_currency: String,
    pub payment_amount: i64,
    pub original_amount: Option<i64>,
    pub original_currency: Option<String>,
    pub payer: Payer,
    pub created_at: Option<i64>,
    pub updated_at: Option<i64>,
}

/// A thin `payment` / `status_updated` envelope (§6, [3P] shape):
/// `{"order":{ids},"payment":{"id","status","amount","currency"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentStatusUpdate {
    pub order: OrderRef,
    pub payment_id: String,
    pub status: PaymentStatus,
    pub amount: Option<i64>,
    pub currency: Option<String>,
}

/// A thin `refund` / `status_updated` envelope, the same shape with the inner
/// object under `refund` (or, as no source says which, `payment`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefundStatusUpdate {
    pub order: OrderRef,
    pub refund_id: String,
    pub status: RefundStatus,
    pub amount: Option<i64>,
    pub currency: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_both_spellings_and_keep_unknowns() {
        assert_eq!(PaymentStatus::parse("cancelled"), PaymentStatus::Canceled);
        assert_eq!(PaymentStatus::parse("canceled"), PaymentStatus::Canceled);
        assert_eq!(
            PaymentStatus::parse("CHARGEBACK"),
            PaymentStatus::Chargeback
        );
        assert_eq!(
            PaymentStatus::parse("new_thing"),
            PaymentStatus::Other("new_thing".into())
        );
        assert_eq!(OrderStatus::parse("PAID"), OrderStatus::Paid);
        assert_eq!(OrderStatus::parse("x").as_str(), "x");
        assert_eq!(RefundStatus::parse("pending"), RefundStatus::InProgress);
        assert_eq!(RefundStatus::parse("processing"), RefundStatus::InProgress);
    }
}
