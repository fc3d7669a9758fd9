//! What the shop receives: the event types and the notification body, built
//! from an outbox row. Pure: no I/O.

use serde::{Deserialize, Serialize};

use crate::domain::Outcome;
use crate::store::{AttemptRow, EventRow};

/// The types a shop subscribes to; each outcome that notifies the shop is one
/// of them (`Outcome::notifies_shop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// The order was paid as expected (`fulfilled`).
    Paid,
    /// The order needs a person: a payment that does not match it, or a
    /// payment after a refund. Not fulfilled.
    NeedsReview,
    Refunded,
    /// A second payment for a paid order: refund it.
    PaidAgain,
    /// Checkout: part of the order is paid; `amount_due` is what remains.
    PartiallyPaid,
    /// Checkout: a payment was charged back.
    Disputed,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::Paid,
        EventType::NeedsReview,
        EventType::Refunded,
        EventType::PaidAgain,
        EventType::PartiallyPaid,
        EventType::Disputed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Paid => "order.paid",
            EventType::NeedsReview => "order.needs_review",
            EventType::Refunded => "order.refunded",
            EventType::PaidAgain => "order.paid_again",
            EventType::PartiallyPaid => "order.partially_paid",
            EventType::Disputed => "order.disputed",
        }
    }

    pub fn parse(text: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == text)
    }

    /// The type of an event written for this outcome.
    pub fn of(outcome: Outcome) -> Option<EventType> {
        match outcome {
            Outcome::Fulfilled => Some(EventType::Paid),
            Outcome::AmountMismatch | Outcome::CurrencyMismatch | Outcome::PaidAfterRefund => {
                Some(EventType::NeedsReview)
            }
            Outcome::Refunded => Some(EventType::Refunded),
            Outcome::PaidAgain => Some(EventType::PaidAgain),
            Outcome::PartiallyPaid => Some(EventType::PartiallyPaid),
            Outcome::Disputed => Some(EventType::Disputed),
            _ => None,
        }
    }

    /// The outbox `kind`s (outcome names) that are events of this type.
    pub fn kinds(self) -> Vec<String> {
        Outcome::ALL
            .into_iter()
            .filter(|o| EventType::of(*o) == Some(self))
            .map(|o| o.as_str().to_string())
            .collect()
    }

    /// The type of a stored `kind`; a kind this version does not know (a row
    /// written by a newer one) is shown as `order.<kind>`.
    pub fn name_of_kind(kind: &str) -> String {
        Outcome::parse(kind)
            .and_then(EventType::of)
            .map_or_else(|| format!("order.{kind}"), |t| t.as_str().to_string())
    }
}

/// The type of `payhook check`'s test event: never stored, never about an
/// order; a shop acknowledges it and does nothing else.
pub const TEST_EVENT_TYPE: &str = "payhook.test";

/// The decision's figures as the callback's transaction stored them. Every
/// field is optional: rows written by older versions lack some.
#[derive(Debug, Default, Deserialize)]
struct StoredPayload {
    amount: Option<i64>,
    currency: Option<String>,
    payamount: Option<i64>,
    paycurrency: Option<String>,
    payment: Option<String>,
    #[serde(default)]
    test: bool,
    refund_amount: Option<i64>,
    api: Option<String>,
    paysera_order_id: Option<String>,
    amount_paid: Option<i64>,
    amount_due: Option<i64>,
}

/// The JSON body POSTed to `SHOP_NOTIFY_URL` (and listed by the feed).
/// Amounts are integers in minor units.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Notification {
    pub id: i64,
    #[serde(rename = "type")]
    pub event_type: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The gateway project, a number as in the gateway's panel.
    #[schema(schema_with = project_id_schema)]
    pub project_id: serde_json::Value,
    pub orderid: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    /// What the buyer paid, when the gateway converted the currency.
    pub payamount: Option<i64>,
    pub paycurrency: Option<String>,
    /// The gateway's payment method (its `payment` field), when it sent one.
    pub payment: Option<String>,
    pub test: bool,
    /// The stored callback this event came from (`GET /api/v1/callbacks`).
    pub callback_id: i64,
    /// `order.refunded` only: the amount refunded, when the gateway stated it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_amount: Option<i64>,
    /// Checkout (Modern) events only: `"checkout"`, Paysera's order id, what
    /// was paid so far and what is still due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paysera_order_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_paid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_due: Option<i64>,
}

impl Notification {
    pub fn of(row: &EventRow) -> Notification {
        // A payload that does not parse (never written so) still yields the
        // row's own facts rather than no notification at all.
        let payload: StoredPayload = serde_json::from_str(&row.payload).unwrap_or_default();
        let event_type = EventType::name_of_kind(&row.kind);
        let refund_amount = (event_type == EventType::Refunded.as_str())
            .then_some(payload.refund_amount)
            .flatten();
        Notification {
            id: row.id,
            event_type,
            created_at: rfc3339(row.created_at),
            project_id: row
                .project_id
                .parse::<u64>()
                .map_or_else(|_| row.project_id.clone().into(), Into::into),
            orderid: row.orderid.clone(),
            amount: payload.amount,
            currency: payload.currency,
            payamount: payload.payamount,
            paycurrency: payload.paycurrency,
            payment: payload.payment,
            test: payload.test,
            callback_id: row.callback_id,
            refund_amount,
            api: payload.api,
            paysera_order_id: payload.paysera_order_id,
            amount_paid: payload.amount_paid,
            amount_due: payload.amount_due,
        }
    }

    /// `payhook check`'s test event: the body of every event, id 0, no order,
    /// `test` true, so a shop's parser sees the shape it must handle.
    pub fn test(project_id: serde_json::Value, created_at_millis: i64) -> Notification {
        Notification {
            id: 0,
            event_type: TEST_EVENT_TYPE.to_string(),
            created_at: rfc3339(created_at_millis),
            project_id,
            orderid: None,
            amount: None,
            currency: None,
            payamount: None,
            paycurrency: None,
            payment: None,
            test: true,
            callback_id: 0,
            refund_amount: None,
            api: None,
            paysera_order_id: None,
            amount_paid: None,
            amount_due: None,
        }
    }

    /// The exact bytes sent and signed.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a notification always serialises")
    }
}

/// An event as the feed lists it: the notification, where it stands and how
/// many attempts were made.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FeedEvent {
    #[serde(flatten)]
    pub notification: Notification,
    pub state: String,
    pub attempts: i32,
    /// Its place in the feed (`after=`); `null` until it is placed, at the
    /// first feed read after its commit.
    pub position: Option<i64>,
}

impl FeedEvent {
    pub fn of(row: &EventRow) -> FeedEvent {
        FeedEvent {
            notification: Notification::of(row),
            state: row.state.clone(),
            attempts: row.attempts,
            position: row.feed_seq,
        }
    }
}

/// One event with its history (`GET /api/v1/events/{id}`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventDetails {
    #[serde(flatten)]
    pub event: FeedEvent,
    /// When the next attempt is due (pending events only).
    #[schema(format = DateTime)]
    pub next_attempt_at: Option<String>,
    #[schema(format = DateTime)]
    pub delivered_at: Option<String>,
    #[schema(format = DateTime)]
    pub dead_at: Option<String>,
    /// Every attempt, oldest first: time, HTTP status or error, duration.
    pub attempt_log: Vec<AttemptRow>,
}

impl EventDetails {
    pub fn of(row: &EventRow, attempts: Vec<AttemptRow>) -> EventDetails {
        let pending = row.state == "pending";
        EventDetails {
            event: FeedEvent::of(row),
            next_attempt_at: pending.then(|| rfc3339(row.next_attempt_at)),
            delivered_at: row.delivered_at.map(rfc3339),
            dead_at: row.dead_at.map(rfc3339),
            attempt_log: attempts,
        }
    }
}

/// The schema of a `project_id` as answers carry it: a classic project's
/// number, or a Checkout project's client id (for the admin API's contract,
/// `http::openapi`).
pub fn project_id_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    let one_of = OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .item(ObjectBuilder::new().schema_type(Type::String))
        .description(Some(
            "a classic project's number, or a Checkout project's client id",
        ))
        .build();
    Schema::OneOf(one_of)
}

fn rfc3339(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: &str, payload: &str) -> EventRow {
        EventRow {
            id: 42,
            kind: kind.into(),
            project_id: "123".into(),
            orderid: Some("A-1".into()),
            callback_id: 7,
            payload: payload.into(),
            attempts: 0,
            state: "pending".into(),
            failures: 0,
            next_attempt_at: 0,
            delivered_at: None,
            dead_at: None,
            created_at: 1_700_000_000_123,
            requeued_at: None,
            feed_seq: None,
        }
    }

    #[test]
    fn every_outcome_that_notifies_the_shop_has_a_type_and_no_other_does() {
        for outcome in Outcome::ALL {
            assert_eq!(
                EventType::of(outcome).is_some(),
                outcome.notifies_shop(),
                "{outcome:?}"
            );
        }
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            for kind in t.kinds() {
                assert_eq!(EventType::name_of_kind(&kind), t.as_str());
            }
        }
        assert_eq!(
            EventType::NeedsReview.kinds(),
            ["paid_after_refund", "amount_mismatch", "currency_mismatch"]
        );
        assert_eq!(EventType::name_of_kind("disputed"), "order.disputed");
    }

    #[test]
    fn the_body_has_the_documented_fields_in_minor_units() {
        let payload = r#"{"event":"fulfilled","project_id":"123","orderid":"A-1","status":1,
            "test":false,"amount":1250,"currency":"EUR","payamount":1250,"paycurrency":"EUR",
            "refund_amount":null,"requestid":"9","payment":"hanza"}"#;
        let body: serde_json::Value =
            serde_json::from_slice(&Notification::of(&row("fulfilled", payload)).to_bytes())
                .unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "id": 42, "type": "order.paid", "created_at": "2023-11-14T22:13:20.123Z",
                "project_id": 123, "orderid": "A-1", "amount": 1250, "currency": "EUR",
                "payamount": 1250, "paycurrency": "EUR", "payment": "hanza", "test": false,
                "callback_id": 7,
            })
        );
    }

    #[test]
    fn a_refund_says_how_much_and_old_rows_still_make_a_body() {
        let refund = Notification::of(&row(
            "refunded",
            r#"{"amount":1250,"currency":"EUR","refund_amount":500,"test":true}"#,
        ));
        assert_eq!(refund.event_type, "order.refunded");
        assert_eq!(refund.refund_amount, Some(500));
        assert!(refund.test && refund.payment.is_none());

        let broken = Notification::of(&row("amount_mismatch", "not json"));
        assert_eq!(broken.event_type, "order.needs_review");
        assert_eq!((broken.id, broken.callback_id), (42, 7));
        assert_eq!(broken.amount, None);
    }
}
