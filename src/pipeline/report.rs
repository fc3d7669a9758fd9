//! What one received request came to, for its one log line, the metrics and
//! any alert: the same fields for both APIs, written once.

use crate::alerts::{Alert, AlertKind, Alerter};
use crate::domain::Outcome;
use crate::metrics::Metrics;
use crate::paysera::RejectClass;
use crate::store::StoreError;

use super::{Api, Handled, Verified};

/// The report of one request (see [`Report::of`]).
pub struct Report<'a> {
    api: Api,
    /// The gateway's name, for a hash-signed gateway's notification.
    gateway: Option<&'a str>,
    request_id: &'a str,
    /// `None`: not stored (answered 503).
    outcome: Option<Outcome>,
    reject_class: Option<RejectClass>,
    reason: Option<String>,
    verified: Option<&'a Verified>,
    alert: Option<AlertKind>,
    error: Option<String>,
}

impl<'a> Report<'a> {
    pub fn of(
        api: Api,
        handled: &'a Result<Handled, StoreError>,
        request_id: &'a str,
    ) -> Report<'a> {
        let blank = Report {
            api,
            gateway: None,
            request_id,
            outcome: None,
            reject_class: None,
            reason: None,
            verified: None,
            alert: None,
            error: None,
        };
        match handled {
            Err(e) => Report {
                error: Some(e.to_string()),
                alert: Some(AlertKind::DatabaseError),
                ..blank
            },
            Ok(Handled::Misconfigured(e)) => Report {
                error: Some(e.to_string()),
                ..blank
            },
            Ok(Handled::Unsupported(u)) => Report {
                outcome: Some(Outcome::Rejected),
                reject_class: Some(RejectClass::Malformed),
                reason: Some(u.reason().into()),
                ..blank
            },
            Ok(Handled::Rejected(r)) => Report {
                outcome: Some(Outcome::Rejected),
                reject_class: Some(r.class),
                reason: Some(r.reason.clone()),
                alert: r.alert.then_some(AlertKind::SignatureRejected),
                ..blank
            },
            Ok(Handled::Done(p, verified)) => Report {
                outcome: Some(p.outcome),
                reject_class: (p.outcome == Outcome::Rejected).then_some(RejectClass::Malformed),
                reason: p.reason.clone(),
                verified: Some(verified),
                alert: p
                    .flag
                    .map(AlertKind::Flag)
                    .or(p.flood.then_some(AlertKind::DuplicateFlood)),
                ..blank
            },
        }
    }

    /// A notification received for the gateway `name`.
    pub fn gateway(self, name: &'a str) -> Report<'a> {
        Report {
            gateway: Some(name),
            ..self
        }
    }

    /// The log line, the metrics and the alert. Buyer personal data (a
    /// classic callback's `p_email`, `name`, `surename`) only with `log_pii`.
    pub fn write(&self, metrics: &Metrics, alerter: &Alerter, log_pii: bool, seconds: f64) {
        let api = self.api.as_str();
        metrics.callback(api, self.outcome, seconds);
        if let Some(name) = self.gateway {
            metrics.gateway_callback(name, self.outcome);
        }
        if let Some(class) = self.reject_class {
            metrics.rejected(class);
        }
        let outcome = self.outcome.map_or("error", Outcome::as_str);
        let pii = |name: &str| match self.verified {
            Some(Verified::Callback(c)) if log_pii => c.fields().text(name).unwrap_or(""),
            _ => "",
        };
        let (event, secret) = match self.verified {
            Some(Verified::Webhook { webhook, secret }) => (webhook.event(), secret.as_str()),
            _ => ("", ""),
        };
        let project = self
            .verified
            .map(Verified::project)
            .or(self.gateway)
            .unwrap_or("");
        let orderid = self.verified.and_then(Verified::orderid);
        let what = match self.api {
            Api::Classic => "callback",
            Api::Checkout => "webhook",
            Api::Gateway => "gateway notification",
        };
        let message = if self.error.is_some() {
            format!("{what} not stored; answered 503")
        } else {
            what.to_string()
        };
        macro_rules! line {
            ($level:expr) => {
                tracing::event!(
                    $level,
                    request_id = self.request_id,
                    api,
                    project,
                    orderid = orderid.unwrap_or(""),
                    event,
                    secret,
                    outcome,
                    reason = self.reason.as_deref().unwrap_or(""),
                    error = self.error.as_deref().unwrap_or(""),
                    duration_ms = seconds * 1000.0,
                    p_email = pii("p_email"),
                    name = pii("name"),
                    surename = pii("surename"),
                    "{message}"
                )
            };
        }
        if self.error.is_some() {
            line!(tracing::Level::ERROR);
        } else if self.alert.is_some() || self.reject_class.is_some() {
            line!(tracing::Level::WARN);
        } else {
            line!(tracing::Level::INFO);
        }

        if let Some(kind) = self.alert {
            let reason = self.reason.as_deref().unwrap_or("");
            let summary = match (kind, orderid) {
                (AlertKind::SignatureRejected, _) => format!("{what} rejected: {reason}"),
                (AlertKind::DatabaseError, _) => {
                    format!("a {what} could not be stored (answered 503)")
                }
                (_, Some(orderid)) => format!("order {orderid}: {outcome}"),
                (_, None) => outcome.to_string(),
            };
            let reason = self.reason.as_deref().or(self.error.as_deref());
            alerter.raise(
                Alert::new(kind, summary, outcome)
                    .order(orderid)
                    .reason(reason),
            );
        }
    }
}
