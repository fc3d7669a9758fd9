//! Rows as diesel reads and writes them.

use diesel::prelude::*;
use serde::Serialize;

use super::schema::{callbacks, orders};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = orders)]
pub(crate) struct OrderRow {
    pub project_id: String,
    pub orderid: String,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub state: String,
    pub refunded_amount: Option<i64>,
    pub fulfilled_at: Option<i64>,
    pub returned_at: Option<i64>,
    pub return_token: Option<String>,
    pub closed_at: Option<i64>,
    pub test: bool,
    pub amount_paid: Option<i64>,
    pub snapshot_at: Option<i64>,
    pub paysera_order_id: Option<String>,
    pub amount_mode: String,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = orders)]
pub(crate) struct NewOrder<'a> {
    pub project_id: &'a str,
    pub orderid: &'a str,
    pub amount: Option<i64>,
    pub currency: Option<&'a str>,
    pub state: &'a str,
    pub test: bool,
    pub amount_mode: &'a str,
    pub return_token: Option<&'a str>,
    pub accept_url: Option<&'a str>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug)]
pub(crate) struct NewCallback<'a> {
    pub received_at: i64,
    pub project_id: Option<&'a str>,
    pub orderid: Option<&'a str>,
    pub identity: Option<&'a str>,
    pub outcome: &'a str,
    pub reason: Option<&'a str>,
    pub http_status: i32,
    pub method: &'a str,
    /// Escaped (see `raw`): what a verified callback's signature covers, or
    /// the beginning of a rejected request or a duplicate.
    pub raw_query: &'a str,
    pub remote_addr: Option<&'a str>,
    pub raw_length: i64,
    pub raw_sha256: &'a str,
    pub raw_truncated: bool,
    /// `classic` or `checkout`.
    pub api: &'a str,
    /// The beginning of the request as received, when `raw_query` holds only
    /// its signed part.
    pub raw_unsigned: Option<&'a str>,
    /// A duplicate's first row of the same delivery.
    pub duplicate_of: Option<i64>,
}

/// A stored callback as the admin API lists it.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, utoipa::ToSchema)]
#[diesel(table_name = callbacks)]
pub struct CallbackRow {
    pub id: i64,
    #[serde(serialize_with = "as_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub received_at: i64,
    pub project_id: Option<String>,
    pub orderid: Option<String>,
    pub outcome: String,
    pub reason: Option<String>,
    pub http_status: i32,
    /// Bytes received (query and body joined); `null` for rows stored before
    /// payhook kept it.
    pub raw_length: Option<i64>,
    /// Lower-case hex SHA-256 of those bytes; `null` as `raw_length`.
    pub raw_sha256: Option<String>,
    /// Only the beginning of the request is stored (a rejected request or a
    /// duplicate longer than `PAYHOOK_REJECTED_MAX_BYTES`).
    pub raw_truncated: bool,
    /// Which Paysera API it came through: `classic` or `checkout`.
    pub api: String,
    /// A duplicate: the id of the first row of the same delivery.
    pub duplicate_of: Option<i64>,
    /// When its personal data was erased (`PAYHOOK_PII_RETENTION`, or
    /// `payhook erase`); `null` while it is kept.
    #[serde(serialize_with = "opt_as_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub erased_at: Option<i64>,
}

/// An order as the admin API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OrderDetails {
    pub project_id: String,
    pub orderid: String,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    /// `fixed`: `amount` is what must be paid; `payer_sets`: the least a
    /// payer who chooses the amount may pay (Checkout).
    pub amount_mode: String,
    pub state: String,
    /// Every flag the order was given, oldest first (`paid_again`,
    /// `paid_order_unpaid`, `paid_after_refund`, `unmatched_payment`).
    pub flags: Vec<String>,
    pub refunded_amount: Option<i64>,
    #[serde(serialize_with = "opt_as_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub fulfilled_at: Option<i64>,
    #[serde(serialize_with = "opt_as_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub returned_at: Option<i64>,
    /// When an operator closed it (no callback expected any more).
    #[serde(serialize_with = "opt_as_rfc3339")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub closed_at: Option<i64>,
    /// Registered as a test order (Checkout webhooks carry no test flag).
    pub test: bool,
    /// What the last Checkout snapshot applied said was paid, and what is
    /// still due then (`null` for classic orders).
    pub amount_paid: Option<i64>,
    pub amount_due: Option<i64>,
    /// Paysera's own id of a Checkout order.
    pub paysera_order_id: Option<String>,
    /// The newest callbacks received for it (at most 50), oldest first.
    pub callbacks: Vec<CallbackRow>,
    /// Older callbacks exist: ask again with `callbacks_before=<this>`.
    pub callbacks_before: Option<i64>,
}

impl OrderDetails {
    /// What was registered, in words (`None`: nothing was).
    pub fn expectation(&self) -> Option<String> {
        let (amount, currency) = self.amount.zip(self.currency.as_deref())?;
        Some(
            if self.amount_mode == crate::domain::AmountMode::PayerSets.as_str() {
                format!("at least {amount} {currency} (minor units; the payer sets the amount)")
            } else {
                format!("{amount} {currency} (minor units)")
            },
        )
    }
}

pub fn rfc3339(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn as_rfc3339<S: serde::Serializer>(millis: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*millis))
}

fn opt_as_rfc3339<S: serde::Serializer>(millis: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match millis {
        Some(m) => s.serialize_str(&rfc3339(*m)),
        None => s.serialize_none(),
    }
}
