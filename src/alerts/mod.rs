//! E-mail alerts: raised on the request path without waiting, sent in the
//! background, at most one e-mail per kind per `ALERT_MIN_INTERVAL`.

mod email;
mod missed;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

pub use email::{check_smtp_url, EmailSettings, Mailer};
pub use missed::spawn_scanner;

use crate::domain::Flag;

/// What alerting counts. `crate::metrics::Metrics` implements it; alerts sees
/// only this, so metrics may label its counters by `AlertKind` without a cycle.
pub trait AlertCounters: Send + Sync + 'static {
    fn alert_sent(&self, kind: AlertKind);
    fn alert_failed(&self);
    fn set_missing_callbacks(&self, n: i64);
}

/// What an alert is about: a flagged decision (the domain's `Flag`), or one of
/// the things only the service itself sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AlertKind {
    Flag(Flag),
    SignatureRejected,
    DatabaseError,
    MissedCallback,
    NotificationDead,
    /// One delivery sent again far more often than a gateway retries.
    DuplicateFlood,
}

impl AlertKind {
    /// Every kind, flags first.
    pub fn all() -> impl Iterator<Item = AlertKind> {
        Flag::ALL.into_iter().map(AlertKind::Flag).chain([
            AlertKind::SignatureRejected,
            AlertKind::DatabaseError,
            AlertKind::MissedCallback,
            AlertKind::NotificationDead,
            AlertKind::DuplicateFlood,
        ])
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Flag(flag) => flag.as_str(),
            AlertKind::SignatureRejected => "signature_rejected",
            AlertKind::DatabaseError => "database_error",
            AlertKind::MissedCallback => "missed_callback",
            AlertKind::NotificationDead => "notification_dead",
            AlertKind::DuplicateFlood => "duplicate_flood",
        }
    }

    /// What an operator should do about it, for the e-mail body.
    fn advice(self) -> &'static str {
        match self {
            AlertKind::SignatureRejected => "A callback or Checkout webhook failed verification. Repeated ones mean a forger, a wrong public key or Checkout client secret (rotation? PAYSERA_CHECKOUT_SECRET), or a proxy altering requests. Checkout webhooks are answered 403 so Paysera keeps retrying until the secret is fixed.",
            AlertKind::Flag(Flag::AmountMismatch | Flag::CurrencyMismatch) => "The payment does not match the registered order; the order is in state needs_review and was not fulfilled.",
            AlertKind::Flag(Flag::PaidAgain) => "The buyer paid an order that was already paid: refund the second payment.",
            AlertKind::Flag(Flag::PaidOrderUnpaid) => "The gateway reported 'not executed' for an order payhook already saw paid; the order stays paid. Check the payment in the gateway's panel.",
            AlertKind::Flag(Flag::PaidAfterRefund) => "A payment arrived for an order with a refund on record; the order is in state needs_review with flag paid_after_refund and was not fulfilled. Check both in the gateway's panel: fulfil, or refund this payment too.",
            AlertKind::Flag(Flag::UnknownOrder) => "A paid callback names an order nobody registered; payhook answered 409 so the gateway retries. Register the order (PUT /api/v1/orders/{orderid}) or check the shop's integration.",
            AlertKind::Flag(Flag::Overpaid) => "More than the order's amount was paid (Checkout); the order was fulfilled. Refund the excess.",
            AlertKind::Flag(Flag::Disputed) => "A payment of the order was charged back (Checkout); the order is in state disputed. Check the payment in Paysera's portal before shipping anything more.",
            AlertKind::Flag(Flag::RefundOverflow) => "A refund's total with the refunds before it is larger than payhook can record (more than 2^63 - 1 minor units); the callback was stored and acknowledged, the order's refunded_amount kept at the earlier total, and the order flagged refund_overflow. Check the refunds in the gateway's panel: such amounts are not a real refund.",
            AlertKind::Flag(Flag::TestRefused) => "A test payment arrived while test payments are not allowed; nothing was fulfilled.",
            AlertKind::DatabaseError => "payhook could not store a callback and answered 503; the gateway will retry. Check the database.",
            AlertKind::MissedCallback => "The buyer came back from the gateway but no callback arrived since: check callbackurl, firewalls and that payhook is reachable. If no callback is expected any more, close the order (POST /api/v1/orders/{orderid}/close or `payhook orders close`).",
            AlertKind::NotificationDead => "A notification to the shop could not be delivered after every retry.",
            AlertKind::DuplicateFlood => "One genuine callback has been sent again 100 times or more: far more than the gateway retries. Someone holding it (a buyer gets one in the return URL) is replaying it. Each copy is answered and stored bounded and changes nothing; check the sender's address in the journal and block it upstream if it goes on.",
        }
    }
}

/// One thing that went wrong, with how to look it up.
#[derive(Debug, Clone)]
pub struct Alert {
    pub kind: AlertKind,
    pub summary: String,
    pub orderid: Option<String>,
    pub outcome: String,
    pub reason: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
}

impl Alert {
    pub fn new(kind: AlertKind, summary: impl Into<String>, outcome: &str) -> Alert {
        Alert {
            kind,
            summary: summary.into(),
            orderid: None,
            outcome: outcome.to_string(),
            reason: None,
            at: chrono::Utc::now(),
        }
    }

    pub fn order(mut self, orderid: Option<&str>) -> Alert {
        self.orderid = orderid.map(str::to_string);
        self
    }

    pub fn reason(mut self, reason: Option<&str>) -> Alert {
        self.reason = reason.map(str::to_string);
        self
    }

    pub fn subject(&self) -> String {
        let summary: String = self
            .summary
            .chars()
            .filter(|c| !c.is_control())
            .take(120)
            .collect();
        format!("[payhook] {}: {summary}", self.kind.as_str())
    }

    /// The e-mail's text; with `admin_url` (`PAYHOOK_ADMIN_URL`), a link to
    /// the order's page in the console.
    pub fn body(&self, held_back: u32, admin_url: Option<&str>) -> String {
        let mut body = format!(
            "{}\n\nWhat happened: {}\nOutcome: {}\n",
            self.kind.advice(),
            self.summary,
            self.outcome
        );
        if let Some(orderid) = &self.orderid {
            body.push_str(&format!("Order: {orderid}\n"));
        }
        if let Some(reason) = &self.reason {
            body.push_str(&format!("Reason: {reason}\n"));
        }
        body.push_str(&format!("Time: {}\n", self.at.to_rfc3339()));
        if let (Some(base), Some(orderid)) = (admin_url, &self.orderid) {
            let path: String =
                percent_encoding::utf8_percent_encode(orderid, percent_encoding::NON_ALPHANUMERIC)
                    .collect();
            body.push_str(&format!("\nOpen the order: {base}/ui/orders/{path}\n"));
        }
        body.push_str("\nLook it up (admin listener):\n");
        if let Some(orderid) = &self.orderid {
            body.push_str(&format!("  GET /api/v1/orders/{orderid}\n"));
        }
        body.push_str(&format!(
            "  GET /api/v1/callbacks?outcome={}\n",
            self.outcome
        ));
        if held_back > 0 {
            body.push_str(&format!(
                "\n{held_back} more {} alert(s) were held back since the last e-mail of this kind.\n",
                self.kind.as_str()
            ));
        }
        body
    }
}

/// Raises alerts from anywhere; cheap to clone; never blocks the caller.
#[derive(Clone)]
pub struct Alerter {
    tx: Option<mpsc::Sender<Alert>>,
    counters: Arc<dyn AlertCounters>,
}

/// Alerts waiting to be sent beyond this are dropped and counted as failed:
/// a flood must not eat memory.
const QUEUE: usize = 1024;

impl Alerter {
    pub fn disabled(counters: Arc<dyn AlertCounters>) -> Alerter {
        Alerter { tx: None, counters }
    }

    /// Starts the sender task on the current tokio runtime.
    pub fn start(
        mailer: Mailer,
        min_interval: Duration,
        counters: Arc<dyn AlertCounters>,
        admin_url: Option<String>,
    ) -> Alerter {
        let (tx, rx) = mpsc::channel(QUEUE);
        let mail = Mail { mailer, admin_url };
        tokio::spawn(run(rx, mail, min_interval, counters.clone()));
        Alerter {
            tx: Some(tx),
            counters,
        }
    }

    pub fn raise(&self, alert: Alert) {
        let Some(tx) = &self.tx else { return };
        if tx.try_send(alert).is_err() {
            self.counters.alert_failed();
            tracing::warn!("alert queue full; alert dropped");
        }
    }
}

#[derive(Default)]
struct KindState {
    last_sent: Option<Instant>,
    held: u32,
    latest_held: Option<Alert>,
}

/// The mailer, and where alert e-mails link to.
struct Mail {
    mailer: Mailer,
    admin_url: Option<String>,
}

async fn run(
    mut rx: mpsc::Receiver<Alert>,
    mail: Mail,
    interval: Duration,
    counters: Arc<dyn AlertCounters>,
) {
    let mut kinds: HashMap<AlertKind, KindState> = HashMap::new();
    let mut tick =
        tokio::time::interval(Duration::from_secs(1).min(interval.max(Duration::from_millis(100))));
    loop {
        tokio::select! {
            received = rx.recv() => {
                let Some(alert) = received else { return };
                let state = kinds.entry(alert.kind).or_default();
                if state.last_sent.is_none_or(|t| t.elapsed() >= interval) {
                    let held = std::mem::take(&mut state.held);
                    state.latest_held = None;
                    state.last_sent = Some(Instant::now());
                    deliver(&mail, counters.as_ref(), &alert, held).await;
                } else {
                    state.held += 1;
                    state.latest_held = Some(alert);
                }
            }
            _ = tick.tick() => {
                // Held-back alerts are not forgotten: once the interval has passed,
                // the latest one goes out saying how many it stands for.
                for state in kinds.values_mut() {
                    if state.held > 0 && state.last_sent.is_none_or(|t| t.elapsed() >= interval) {
                        if let Some(alert) = state.latest_held.take() {
                            let held = std::mem::take(&mut state.held) - 1;
                            state.last_sent = Some(Instant::now());
                            deliver(&mail, counters.as_ref(), &alert, held).await;
                        }
                    }
                }
            }
        }
    }
}

async fn deliver(mail: &Mail, counters: &dyn AlertCounters, alert: &Alert, held: u32) {
    let body = alert.body(held, mail.admin_url.as_deref());
    match mail.mailer.send(&alert.subject(), &body).await {
        Ok(()) => {
            counters.alert_sent(alert.kind);
            tracing::info!(
                kind = alert.kind.as_str(),
                held_back = held,
                "alert e-mail sent"
            );
        }
        Err(e) => {
            counters.alert_failed();
            tracing::error!(kind = alert.kind.as_str(), error = %e, "alert e-mail failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_an_admin_url_the_body_links_the_orders_console_page() {
        let alert = Alert::new(AlertKind::all().next().unwrap(), "x", "amount_mismatch")
            .order(Some("A 1/ü"));
        let body = alert.body(0, Some("https://admin.shop.example"));
        assert!(
            body.contains("Open the order: https://admin.shop.example/ui/orders/A%201%2F%C3%BC\n"),
            "{body}"
        );
        assert!(!alert.body(0, None).contains("/ui/"));
        let no_order = Alert::new(AlertKind::all().next().unwrap(), "x", "rejected");
        assert!(!no_order
            .body(0, Some("https://admin.shop.example"))
            .contains("/ui/"));
    }
}
