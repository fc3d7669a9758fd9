//! Decoding an authentic body (§4–§6), with the SDK's tolerance where it is
//! right for a receiver and the spec's recommendation where the SDK is stricter
//! (§5.3). Section numbers (§) are those of `docs/checkout-modern.md`.
//!
//! serde_json parses the bytes into a `Value` and the fields are read from it
//! by hand rather than through `#[derive(Deserialize)]`, for three reasons:
//! a duplicated key must keep its last value as PHP does (derive rejects
//! duplicates); a JSON array must not fill a struct positionally (derive
//! accepts that, PHP does not); and serde's messages quote the offending
//! input, where these errors name a path and a fixed problem.

use serde_json::{Map, Value};

use super::error::{printable, BodyError, Problem};
use super::event::{
    Body, Event, MerchantDatum, OrderRef, OrderSnapshot, OrderStatus, Payer, Payload, Payment,
    PaymentLink, PaymentStatus, PaymentStatusUpdate, RefundStatus, RefundStatusUpdate,
};
use crate::domain::{Amount, Currency};

/// The only event the SDK handles (§4.1, DOC-E2).
const ORDER: &str = "order";
const AMOUNT_PAID_UPDATED: &str = "amount_paid_updated";
/// DOC-E1's prefixed spelling of the same event (§4.2).
const AMOUNT_PAID_UPDATED_ALIAS: &str = "order.amount_paid_updated";
const STATUS_UPDATED: &str = "status_updated";

/// Decodes a body whose signature has already been verified. Never panics,
/// whatever the bytes (serde_json bounds nesting at 128 levels).
pub fn decode_body(bytes: &[u8]) -> Result<Body, BodyError> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| BodyError::NotJson(e.to_string()))?;
    let root = value.as_object().ok_or(BodyError::NotAnObject)?;
    let event = read_event(root)?;
    let payload = route(&event, root)?;
    Ok(Body { event, payload })
}

/// §4.1 steps 3–4: `event` is an object whose `type` and `name` are strings
/// (or numbers, read as text) that are not blank.
fn read_event(root: &Map<String, Value>) -> Result<Event, BodyError> {
    let event = match root.get("event") {
        None | Some(Value::Null) => return Err(BodyError::field("event", Problem::Missing)),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(BodyError::field("event", Problem::WrongType("an object"))),
    };
    let label = |key: &'static str| -> Result<String, BodyError> {
        let path = format!("event.{key}");
        let text = match event.get(key) {
            None | Some(Value::Null) => return Err(BodyError::field(path, Problem::Missing)),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => {
                return Err(BodyError::field(
                    path,
                    Problem::WrongType("a string or a number"),
                ))
            }
        };
        if is_blank(&text) {
            return Err(BodyError::field(path, Problem::Blank));
        }
        Ok(text)
    };
    Ok(Event {
        object: label("type")?,
        name: label("name")?,
    })
}

/// §4.1 step 5: exact, case-sensitive routing on the untrimmed strings. Only
/// the SDK's own event is validated strictly; every other one is acknowledged,
/// and read only as far as its (unverified) shape allows.
fn route(event: &Event, root: &Map<String, Value>) -> Result<Payload, BodyError> {
    let loose_ref = || order_ref(root.get("order"));
    Ok(match (event.object.as_str(), event.name.as_str()) {
        (ORDER, AMOUNT_PAID_UPDATED) => Payload::OrderSnapshot {
            order: Box::new(order_snapshot(root.get("order"))?),
            via_alias: false,
        },
        (ORDER, AMOUNT_PAID_UPDATED_ALIAS) => match order_snapshot(root.get("order")) {
            Ok(order) => Payload::OrderSnapshot {
                order: Box::new(order),
                via_alias: true,
            },
            Err(_) => Payload::Unhandled { order: loose_ref() },
        },
        ("payment", STATUS_UPDATED) => match thin(root, &["payment"]) {
            Some(t) => Payload::PaymentStatus(PaymentStatusUpdate {
                order: loose_ref(),
                payment_id: t.id,
                status: PaymentStatus::parse(&t.status),
                amount: t.amount,
                currency: t.currency,
            }),
            None => Payload::Unhandled { order: loose_ref() },
        },
        ("refund", STATUS_UPDATED) => match thin(root, &["refund", "payment"]) {
            Some(t) => Payload::RefundStatus(RefundStatusUpdate {
                order: loose_ref(),
                refund_id: t.id,
                status: RefundStatus::parse(&t.status),
                amount: t.amount,
                currency: t.currency,
            }),
            None => Payload::Unhandled { order: loose_ref() },
        },
        _ => Payload::Unhandled { order: loose_ref() },
    })
}

/// PHP's `trim()` set.
fn is_blank(s: &str) -> bool {
    s.trim_matches([' ', '\t', '\n', '\r', '\0', '\x0B'])
        .is_empty()
}

/// The order ids, best effort: for linking a kept event to its order.
fn order_ref(order: Option<&Value>) -> OrderRef {
    let text = |key| {
        order
            .and_then(|o| o.get(key))
            .and_then(Value::as_str)
            .filter(|s| !is_blank(s))
            .map(str::to_string)
    };
    OrderRef {
        paysera_order_id: text("paysera_order_id"),
        merchant_order_id: text("merchant_order_id"),
    }
}

struct Thin {
    id: String,
    status: String,
    amount: Option<i64>,
    currency: Option<String>,
}

/// A thin envelope's inner object under the first of `keys` present, when it
/// has a non-blank `id` and `status` and sensible amounts; `None` otherwise.
fn thin(root: &Map<String, Value>, keys: &[&'static str]) -> Option<Thin> {
    let key = keys.iter().find(|k| root.contains_key(**k))?;
    let obj = JsonObject::new(root.get(*key)?.as_object()?, key.to_string());
    let id = obj.text("id").ok()?;
    let status = obj.text("status").ok()?;
    if is_blank(&id) || is_blank(&status) {
        return None;
    }
    Some(Thin {
        id,
        status,
        amount: obj.int("amount").ok()?,
        currency: obj.opt_text("currency").ok()?,
    })
}

/// §5.2, with §5.3's relaxations: `amount_paid` may be 0, `payment_links` empty.
fn order_snapshot(order: Option<&Value>) -> Result<OrderSnapshot, BodyError> {
    let empty = Map::new();
    let map = match order {
        // The SDK reads a missing order as `{}`: the required fields then fail.
        None | Some(Value::Null) => &empty,
        Some(Value::Object(map)) => map,
        Some(_) => return Err(BodyError::field("order", Problem::WrongType("an object"))),
    };
    let o = JsonObject::new(map, "order".into());

    let paysera_order_id = o.required_text("paysera_order_id")?;
    let merchant_order_id = o.required_text("merchant_order_id")?;
    let amount = o.required_amount("amount")?;
    if amount.minor_units() == 0 {
        return Err(o.err("amount", Problem::NotPositive));
    }
    // 0 is accepted (§5.3); absent is not: the SDK would read 0 and refuse it,
    // and a snapshot that does not say what was paid cannot move an order.
    let amount_paid = o.required_amount("amount_paid")?;
    let currency_text = o.required_text("currency")?;
    let currency = Currency::parse(&currency_text).map_err(|_| {
        o.err(
            "currency",
            Problem::NotCurrency(printable(currency_text.as_bytes())),
        )
    })?;
    let status = OrderStatus::parse(&o.required_text("status")?);

    Ok(OrderSnapshot {
        paysera_order_id,
        merchant_order_id,
        source: o.text("source")?,
        amount,
        amount_paid,
        currency,
        status,
        created_at: o.int("created_at")?,
        updated_at: o.int("updated_at")?,
        merchant_data: merchant_data(map.get("merchant_data")),
        payment_links: o.list("payment_links", payment_link)?,
        payer_sets_amount: o.flag("payer_sets_amount"),
        minimum_amount: o.amount("minimum_amount")?,
        maximum_amount: o.amount("maximum_amount")?,
    })
}

fn payment_link(l: &JsonObject) -> Result<PaymentLink, BodyError> {
    Ok(PaymentLink {
        id: l.text("id")?,
        name: l.text("name")?,
        status: l.opt_text("status")?,
        created_at: l.int("created_at")?,
        updated_at: l.int("updated_at")?,
        payer: payer(l)?,
        payer_sets_amount: l.flag("payer_sets_amount"),
        payments: l.list("payments", payment)?,
    })
}

fn payment(p: &JsonObject) -> Result<Payment, BodyError> {
    Ok(Payment {
        id: p.text("id")?,
        method: p.text("method")?,
        status: PaymentStatus::parse(&p.text("status")?),
        purpose: p.text("purpose")?,
        payment_country: p.opt_text("payment_country")?,
        payment_currency: p.text("payment_currency")?,
        payment_amount: p.int("payment_amount")?.unwrap_or(0),
        original_amount: p.int("original_amount")?,
        original_currency: p.opt_text("original_currency")?,
        payer: payer(p)?,
        created_at: p.int("created_at")?,
        updated_at: p.int("updated_at")?,
    })
}

fn payer(f: &JsonObject) -> Result<Payer, BodyError> {
    Ok(Payer {
        name: f.opt_text("payer_name")?,
        email: f.opt_text("payer_email")?,
        ip_country: f.opt_text("payer_ip_country")?,
        country: f.opt_text("payer_country")?,
    })
}

/// A list of `{key, value}` objects or an object of key → value (§12 #10).
/// Entries without a usable key are skipped: the raw body is journaled, and
/// nothing payhook decides depends on this data.
fn merchant_data(value: Option<&Value>) -> Vec<MerchantDatum> {
    let as_text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match value {
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| MerchantDatum {
                key: k.clone(),
                value: as_text(v),
            })
            .collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| {
                let key = item.get("key")?.as_str()?.to_string();
                let value = item.get("value").map(as_text).unwrap_or_default();
                Some(MerchantDatum { key, value })
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// One JSON object being read, with the path errors are reported under.
struct JsonObject<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> JsonObject<'a> {
    fn new(map: &'a Map<String, Value>, path: String) -> Self {
        JsonObject { map, path }
    }

    fn err(&self, key: &str, problem: Problem) -> BodyError {
        BodyError::field(format!("{}.{key}", self.path), problem)
    }

    /// Present and not null.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// A string (a number is read as its text, as PHP's cast does); absent or
    /// null is `None`.
    fn opt_text(&self, key: &str) -> Result<Option<String>, BodyError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(self.err(key, Problem::WrongType("a string"))),
        }
    }

    /// `opt_text` with the SDK's default of "".
    fn text(&self, key: &str) -> Result<String, BodyError> {
        Ok(self.opt_text(key)?.unwrap_or_default())
    }

    /// The SDK's "non-empty" validation.
    fn required_text(&self, key: &str) -> Result<String, BodyError> {
        match self.opt_text(key)? {
            None => Err(self.err(key, Problem::Missing)),
            Some(s) if is_blank(&s) => Err(self.err(key, Problem::Blank)),
            Some(s) => Ok(s),
        }
    }

    /// A whole number: a JSON integer, or a string of ASCII digits (with an
    /// optional leading `-`), which the SDK's `(int)` cast also reads. A
    /// fraction is refused where PHP would truncate it: "25.00" is not 25.
    fn int(&self, key: &str) -> Result<Option<i64>, BodyError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => Ok(Some(i)),
                None if n.is_u64() => Err(self.err(key, Problem::OutOfRange)),
                None => Err(self.err(key, Problem::NotWhole(printable(n.to_string().as_bytes())))),
            },
            Some(Value::String(s)) => {
                let digits = s.strip_prefix('-').unwrap_or(s);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(self.err(key, Problem::NotWhole(printable(s.as_bytes()))));
                }
                s.parse::<i64>()
                    .map(Some)
                    .map_err(|_| self.err(key, Problem::OutOfRange))
            }
            Some(_) => Err(self.err(key, Problem::WrongType("an integer"))),
        }
    }

    /// An amount in minor units: a whole number that is not negative.
    fn amount(&self, key: &str) -> Result<Option<Amount>, BodyError> {
        match self.int(key)? {
            None => Ok(None),
            Some(n) => Amount::from_minor(n)
                .map(Some)
                .map_err(|_| self.err(key, Problem::Negative)),
        }
    }

    fn required_amount(&self, key: &str) -> Result<Amount, BodyError> {
        self.amount(key)?
            .ok_or_else(|| self.err(key, Problem::Missing))
    }

    /// The SDK's boolean conversion: true, a non-zero number, or one of
    /// "1", "true", "on", "yes"; anything else (absent included) is false.
    fn flag(&self, key: &str) -> bool {
        match self.get(key) {
            Some(Value::Bool(b)) => *b,
            Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
            Some(Value::String(s)) => {
                matches!(s.to_ascii_lowercase().as_str(), "1" | "true" | "on" | "yes")
            }
            _ => false,
        }
    }

    /// A list of objects; absent or null is empty. A non-object element is an
    /// error (PHP fails with a `TypeError` there, §4.1).
    fn list<T>(
        &self,
        key: &str,
        item: impl Fn(&JsonObject) -> Result<T, BodyError>,
    ) -> Result<Vec<T>, BodyError> {
        let items = match self.get(key) {
            None => return Ok(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(self.err(key, Problem::WrongType("a list"))),
        };
        items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let path = format!("{}.{key}[{i}]", self.path);
                match v.as_object() {
                    Some(map) => item(&JsonObject::new(map, path)),
                    None => Err(BodyError::field(path, Problem::WrongType("an object"))),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Result<Body, BodyError> {
        decode_body(v.to_string().as_bytes())
    }

    fn snapshot(order: Value) -> Result<OrderSnapshot, BodyError> {
        let b = body(json!({"event":{"type":"order","name":"amount_paid_updated"},"order":order}))?;
        match b.payload {
            Payload::OrderSnapshot { order, .. } => Ok(*order),
            other => panic!("not a snapshot: {other:?}"),
        }
    }

    fn minimal() -> Value {
        json!({"paysera_order_id":"p","merchant_order_id":"m","amount":2500,
               "amount_paid":1000,"currency":"EUR","status":"pending_payment"})
    }

    fn with(key: &str, value: Value) -> Value {
        let mut o = minimal();
        o[key] = value;
        o
    }

    fn field_err(r: Result<OrderSnapshot, BodyError>) -> (String, Problem) {
        match r {
            Err(BodyError::Field { path, problem }) => (path, problem),
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn minimal_snapshot_with_sdk_defaults() {
        let s = snapshot(minimal()).unwrap();
        assert_eq!(s.amount.minor_units(), 2500);
        assert_eq!(s.amount_due().minor_units(), 1500);
        assert!(s.is_partially_paid() && !s.is_fully_paid());
        assert_eq!(s.source, "");
        assert_eq!((s.created_at, s.updated_at), (None, None));
        assert!(s.payment_links.is_empty() && s.merchant_data.is_empty());
        assert!(!s.payer_sets_amount);
    }

    #[test]
    fn required_fields_name_their_path() {
        for key in [
            "paysera_order_id",
            "merchant_order_id",
            "currency",
            "status",
        ] {
            let mut o = minimal();
            o.as_object_mut().unwrap().remove(key);
            assert_eq!(
                field_err(snapshot(o)),
                (format!("order.{key}"), Problem::Missing)
            );
            assert_eq!(
                field_err(snapshot(with(key, json!(" \t")))),
                (format!("order.{key}"), Problem::Blank)
            );
        }
        for key in ["amount", "amount_paid"] {
            let mut o = minimal();
            o.as_object_mut().unwrap().remove(key);
            assert_eq!(
                field_err(snapshot(o)),
                (format!("order.{key}"), Problem::Missing)
            );
        }
        assert_eq!(
            field_err(snapshot(with("amount", json!(0)))).1,
            Problem::NotPositive
        );
    }

    #[test]
    fn amounts_tolerate_digit_strings_and_refuse_fractions() {
        assert_eq!(
            snapshot(with("amount_paid", json!("2500")))
                .unwrap()
                .amount_paid
                .minor_units(),
            2500
        );
        assert_eq!(
            snapshot(with("amount_paid", json!(0)))
                .unwrap()
                .amount_paid
                .minor_units(),
            0
        );
        assert_eq!(
            field_err(snapshot(with("amount_paid", json!(null)))).1,
            Problem::Missing
        );
        assert_eq!(
            field_err(snapshot(with("amount", json!("25.00")))),
            ("order.amount".into(), Problem::NotWhole("25.00".into()))
        );
        assert_eq!(
            field_err(snapshot(with("amount", json!(25.5)))).1,
            Problem::NotWhole("25.5".into())
        );
        assert_eq!(
            field_err(snapshot(with("amount_paid", json!(-1)))).1,
            Problem::Negative
        );
        assert_eq!(
            field_err(snapshot(with("amount", json!(u64::MAX)))).1,
            Problem::OutOfRange
        );
        assert_eq!(
            field_err(snapshot(with("amount", json!(true)))).1,
            Problem::WrongType("an integer")
        );
    }

    #[test]
    fn merchant_data_in_both_shapes() {
        let list = snapshot(with(
            "merchant_data",
            json!([{"key":"a","value":"1"},{"key":"b","value":2},{"nokey":1}]),
        ))
        .unwrap();
        let pairs: Vec<_> = list
            .merchant_data
            .iter()
            .map(|d| (d.key.as_str(), d.value.as_str()))
            .collect();
        assert_eq!(pairs, [("a", "1"), ("b", "2")]);
        let obj = snapshot(with("merchant_data", json!({"a":"1"}))).unwrap();
        assert_eq!(obj.merchant_data[0].key, "a");
        assert!(snapshot(with("merchant_data", json!("x")))
            .unwrap()
            .merchant_data
            .is_empty());
    }

    #[test]
    fn nested_errors_carry_indexes() {
        let o = with(
            "payment_links",
            json!([{"payments":[]},{"payments":[{"payment_amount":1},{"payment_amount":"x"}]}]),
        );
        assert_eq!(
            field_err(snapshot(o)),
            (
                "order.payment_links[1].payments[1].payment_amount".into(),
                Problem::NotWhole("x".into())
            )
        );
        assert_eq!(
            field_err(snapshot(with("payment_links", json!([1])))),
            (
                "order.payment_links[0]".into(),
                Problem::WrongType("an object")
            )
        );
    }

    #[test]
    fn a_chargeback_in_a_snapshot_is_visible() {
        let o = with(
            "payment_links",
            json!([{"payments":[{"status":"settled"},{"status":"chargeback","payment_amount":1000}]}]),
        );
        let s = snapshot(o).unwrap();
        assert!(s.has_chargeback());
        assert_eq!(s.refunded_payments().count(), 0);
    }

    #[test]
    fn the_event_must_be_an_object_with_non_blank_labels() {
        let cases = [
            (json!({}), "event", Problem::Missing),
            (json!({"event":null}), "event", Problem::Missing),
            (
                json!({"event":["order","amount_paid_updated"]}),
                "event",
                Problem::WrongType("an object"),
            ),
            (
                json!({"event":{"name":"x"}}),
                "event.type",
                Problem::Missing,
            ),
            (
                json!({"event":{"type":" ","name":"x"}}),
                "event.type",
                Problem::Blank,
            ),
            (
                json!({"event":{"type":"order","name":{}}}),
                "event.name",
                Problem::WrongType("a string or a number"),
            ),
        ];
        for (v, path, problem) in cases {
            assert_eq!(body(v.clone()), Err(BodyError::field(path, problem)), "{v}");
        }
        let numeric = body(json!({"event":{"type":7,"name":"x"}})).unwrap();
        assert_eq!(numeric.event.object, "7");
        assert!(matches!(numeric.payload, Payload::Unhandled { .. }));
    }

    #[test]
    fn routing_is_exact_and_everything_else_is_kept() {
        // Untrimmed and case-sensitive, as the SDK compares.
        for (t, n) in [
            (" order", "amount_paid_updated"),
            ("ORDER", "amount_paid_updated"),
            ("order", "order.created"),
        ] {
            let b = body(json!({"event":{"type":t,"name":n},"order":{"merchant_order_id":"M-1"}}))
                .unwrap();
            assert_eq!(
                b.payload,
                Payload::Unhandled {
                    order: OrderRef {
                        paysera_order_id: None,
                        merchant_order_id: Some("M-1".into())
                    }
                }
            );
            assert_eq!(b.event.object, t);
        }
        // An unhandled event's body is not validated.
        assert!(body(json!({"event":{"type":"x","name":"y"},"order":"nonsense"})).is_ok());
    }

    #[test]
    fn the_prefixed_alias_is_a_snapshot_only_when_it_decodes() {
        let b = body(
            json!({"event":{"type":"order","name":"order.amount_paid_updated"},"order":minimal()}),
        )
        .unwrap();
        assert!(matches!(
            b.payload,
            Payload::OrderSnapshot {
                via_alias: true,
                ..
            }
        ));
        let b =
            body(json!({"event":{"type":"order","name":"order.amount_paid_updated"},"order":{}}))
                .unwrap();
        assert!(matches!(b.payload, Payload::Unhandled { .. }));
    }

    #[test]
    fn thin_envelopes() {
        let b = body(json!({"event":{"type":"payment","name":"status_updated"},
            "order":{"paysera_order_id":"p","merchant_order_id":"m"},
            "payment":{"id":"pay-1","status":"chargeback","amount":2500,"currency":"EUR"}}))
        .unwrap();
        match b.payload {
            Payload::PaymentStatus(p) => {
                assert_eq!(p.status, PaymentStatus::Chargeback);
                assert_eq!(p.amount, Some(2500));
                assert_eq!(p.order.merchant_order_id.as_deref(), Some("m"));
            }
            other => panic!("{other:?}"),
        }
        let b = body(json!({"event":{"type":"refund","name":"status_updated"},
            "payment":{"id":"r-1","status":"processing"}}))
        .unwrap();
        assert!(matches!(
            b.payload,
            Payload::RefundStatus(RefundStatusUpdate {
                status: RefundStatus::InProgress,
                ..
            })
        ));
        // Not the expected shape: kept, not refused.
        let b =
            body(json!({"event":{"type":"payment","name":"status_updated"},"payment":{"id":"x"}}))
                .unwrap();
        assert_eq!(b.payload.kind(), "unhandled");
    }

    #[test]
    fn a_missing_order_fails_its_required_fields_and_a_scalar_order_is_refused() {
        let b = body(json!({"event":{"type":"order","name":"amount_paid_updated"}}));
        assert_eq!(
            b,
            Err(BodyError::field("order.paysera_order_id", Problem::Missing))
        );
        let b = body(json!({"event":{"type":"order","name":"amount_paid_updated"},"order":[1]}));
        assert_eq!(
            b,
            Err(BodyError::field("order", Problem::WrongType("an object")))
        );
    }

    #[test]
    fn duplicate_keys_keep_the_last_value_like_php() {
        let raw = br#"{"event":{"type":"x","name":"y"},"event":{"type":"order","name":"amount_paid_updated"},"order":{"paysera_order_id":"p","merchant_order_id":"m","amount":1,"amount":2,"amount_paid":2,"currency":"EUR","status":"paid"}}"#;
        let b = decode_body(raw).unwrap();
        assert_eq!(b.payload.order_snapshot().unwrap().amount.minor_units(), 2);
    }

    #[test]
    fn not_json_or_not_an_object() {
        assert!(matches!(decode_body(b""), Err(BodyError::NotJson(_))));
        assert!(matches!(
            decode_body(b"\xef\xbb\xbf{}"),
            Err(BodyError::NotJson(_))
        ));
        assert_eq!(decode_body(b"[1]"), Err(BodyError::NotAnObject));
        assert_eq!(decode_body(b"\"x\""), Err(BodyError::NotAnObject));
        let deep = "[".repeat(100_000);
        assert!(matches!(
            decode_body(deep.as_bytes()),
            Err(BodyError::NotJson(_))
        ));
    }

    #[test]
    fn errors_never_quote_much_of_the_body() {
        let long = "9".repeat(5000) + ".5";
        let e = field_err(snapshot(with("amount", json!(long))));
        let text = BodyError::field(e.0, e.1).to_string();
        assert!(text.len() < 120, "{text}");
        let e =
            decode_body(format!("{{\"event\":\"{}", "\u{7}".repeat(3000)).as_bytes()).unwrap_err();
        assert!(e.to_string().len() < 120, "{e}");
    }
}
