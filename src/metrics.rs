//! Prometheus metrics, served on the admin listener at `/metrics`. Labels are
//! bounded (outcomes, reject classes, alert kinds), never an order id.

use prometheus::core::Metric as _;
use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use tokio::task::JoinHandle;

use crate::alerts::{AlertCounters, AlertKind};
use crate::domain::Outcome;
use crate::notify::metrics::NotifyMetrics;
use crate::paysera::RejectClass;
use crate::store::Store;

mod replication;
pub use replication::ReplicationGauges;

/// The `outcome` label of a callback that was not stored (answered 503).
const ERROR_OUTCOME: &str = "error";

/// The `api` label: which API a request came through (Paysera's two, or a
/// hash-signed gateway's; `payhook_gateway_callbacks_total` says which one).
pub const APIS: [&str; 3] = ["classic", "checkout", "gateway"];

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    callbacks: IntCounterVec,
    gateway_callbacks: IntCounterVec,
    rejected: IntCounterVec,
    duration: Histogram,
    fulfilments: IntCounter,
    alerts_sent: IntCounterVec,
    alerts_failed: IntCounter,
    db_errors: IntCounter,
    missing_callback: IntGauge,
    admin_unauthorized: IntCounterVec,
    /// Delivery of the outbox to the shop.
    pub notify: NotifyMetrics,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let notify = NotifyMetrics::default();
        let callbacks = IntCounterVec::new(
            Opts::new(
                "payhook_callbacks_total",
                "Callbacks and webhooks received, by API and outcome",
            ),
            &["api", "outcome"],
        )
        .expect("valid metric");
        let gateway_callbacks = IntCounterVec::new(
            Opts::new(
                "payhook_gateway_callbacks_total",
                "Hash-signed gateways' notifications received, by gateway name and outcome",
            ),
            &["gateway", "outcome"],
        )
        .expect("valid metric");
        let rejected = IntCounterVec::new(
            Opts::new(
                "payhook_callbacks_rejected_total",
                "Rejected callbacks, by reason",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "payhook_callback_duration_seconds",
                "Time from request to answer, every callback whatever its outcome",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
        )
        .expect("valid metric");
        let fulfilments =
            IntCounter::new("payhook_fulfilments_total", "Orders fulfilled").expect("valid metric");
        let alerts_sent = IntCounterVec::new(
            Opts::new("payhook_alerts_sent_total", "Alert e-mails sent, by kind"),
            &["kind"],
        )
        .expect("valid metric");
        let alerts_failed = IntCounter::new(
            "payhook_alerts_failed_total",
            "Alert e-mails that could not be sent",
        )
        .expect("valid metric");
        let db_errors = IntCounter::new(
            "payhook_db_errors_total",
            "Database errors on the request path (callbacks answered 503)",
        )
        .expect("valid metric");
        let missing_callback = IntGauge::new(
            "payhook_orders_missing_callback",
            "Orders whose buyer returned between MISSED_CALLBACK_AFTER and MISSED_CALLBACK_WINDOW ago, still awaiting payment, not closed, with no verified callback since",
        )
        .expect("valid metric");
        let admin_unauthorized = IntCounterVec::new(
            Opts::new(
                "payhook_admin_unauthorized_total",
                "Requests to the admin listener with a missing or wrong admin token, by interface (api: bearer token, console: the sign-in form)",
            ),
            &["interface"],
        )
        .expect("valid metric");
        for interface in ["api", "console"] {
            admin_unauthorized.with_label_values(&[interface]);
        }
        let build_info = IntGaugeVec::new(
            Opts::new("payhook_build_info", "payhook's version"),
            &["version"],
        )
        .expect("valid metric");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);

        // Every label value exists from the start, so increase() sees the first event.
        for api in APIS {
            for outcome in Outcome::ALL {
                callbacks.with_label_values(&[api, outcome.as_str()]);
            }
            callbacks.with_label_values(&[api, ERROR_OUTCOME]);
        }
        for class in RejectClass::ALL {
            rejected.with_label_values(&[class.as_str()]);
        }
        for kind in AlertKind::all() {
            alerts_sent.with_label_values(&[kind.as_str()]);
        }

        for collector in [
            Box::new(callbacks.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(gateway_callbacks.clone()),
            Box::new(rejected.clone()),
            Box::new(duration.clone()),
            Box::new(fulfilments.clone()),
            Box::new(alerts_sent.clone()),
            Box::new(alerts_failed.clone()),
            Box::new(db_errors.clone()),
            Box::new(missing_callback.clone()),
            Box::new(admin_unauthorized.clone()),
            Box::new(build_info),
        ]
        .into_iter()
        .chain(notify.collectors())
        {
            registry
                .register(collector)
                .expect("metric registered once");
        }
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("process metrics registered once");

        Metrics {
            registry,
            callbacks,
            gateway_callbacks,
            rejected,
            duration,
            fulfilments,
            alerts_sent,
            alerts_failed,
            db_errors,
            missing_callback,
            admin_unauthorized,
            notify,
        }
    }

    /// One callback answered: `Some(outcome)` when it was stored, `None` when
    /// the database failed and it was answered 503.
    /// `api` is one of [`APIS`].
    pub fn callback(&self, api: &'static str, outcome: Option<Outcome>, seconds: f64) {
        let label = outcome.map_or(ERROR_OUTCOME, Outcome::as_str);
        self.callbacks.with_label_values(&[api, label]).inc();
        self.duration.observe(seconds);
        match outcome {
            Some(Outcome::Fulfilled) => self.fulfilments.inc(),
            None => self.db_errors.inc(),
            Some(_) => {}
        }
    }

    /// One notification of the gateway `name` answered (beside
    /// [`Metrics::callback`]'s `api="gateway"`).
    pub fn gateway_callback(&self, name: &str, outcome: Option<Outcome>) {
        let label = outcome.map_or(ERROR_OUTCOME, Outcome::as_str);
        self.gateway_callbacks
            .with_label_values(&[name, label])
            .inc();
    }

    /// Every outcome of these gateways exists from the start, as the `api`
    /// label's do.
    pub fn gateways<'a>(&self, names: impl Iterator<Item = &'a str>) {
        for name in names {
            for outcome in Outcome::ALL {
                self.gateway_callbacks
                    .with_label_values(&[name, outcome.as_str()]);
            }
            self.gateway_callbacks
                .with_label_values(&[name, ERROR_OUTCOME]);
        }
    }

    pub fn rejected(&self, class: RejectClass) {
        self.rejected.with_label_values(&[class.as_str()]).inc();
    }

    /// A missing or wrong admin token: `api` (bearer) or `console` (sign-in).
    pub fn admin_unauthorized(&self, interface: &'static str) {
        self.admin_unauthorized
            .with_label_values(&[interface])
            .inc();
    }

    /// Alert e-mails sent by this instance since it started, by kind.
    pub fn alerts_sent(&self) -> Vec<(&'static str, u64)> {
        AlertKind::all()
            .map(|kind| {
                let n = self.alerts_sent.with_label_values(&[kind.as_str()]).get();
                (kind.as_str(), n)
            })
            .collect()
    }

    /// Callbacks this instance answered since it started.
    pub fn callbacks_answered(&self) -> u64 {
        self.duration.get_sample_count()
    }

    /// Time to answer a callback at quantile `q` (0 to 1), in seconds, over
    /// this instance's callbacks since it started: the upper bound of the
    /// histogram bucket the quantile falls in (`None`: no callback yet, or
    /// beyond the last bucket).
    pub fn answer_time_quantile(&self, q: f64) -> Option<f64> {
        let metric = self.duration.metric();
        let histogram = metric.get_histogram();
        let total = histogram.get_sample_count();
        if total == 0 {
            return None;
        }
        let rank = (q * total as f64).ceil().max(1.0) as u64;
        histogram
            .get_bucket()
            .iter()
            .find(|b| b.get_cumulative_count() >= rank)
            .map(|b| b.get_upper_bound())
    }

    /// On PostgreSQL, exports the replication gauges and keeps them fresh
    /// from `store` in a task of their own; on SQLite, nothing. Once per
    /// registry: a second call leaves the first one's gauges alone.
    pub fn watch_replication(&self, store: Store) -> Option<JoinHandle<()>> {
        if !store.has_replication() {
            return None;
        }
        let gauges = ReplicationGauges::new();
        for collector in gauges.collectors() {
            if let Err(e) = self.registry.register(collector) {
                tracing::warn!(error = %e, "replication gauges not registered");
                return None;
            }
        }
        Some(replication::spawn(store, gauges))
    }

    /// The text exposition format.
    pub fn render(&self) -> (String, String) {
        let encoder = TextEncoder::new();
        let mut out = Vec::new();
        if let Err(e) = encoder.encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        (
            encoder.format_type().to_string(),
            String::from_utf8(out).unwrap_or_default(),
        )
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl AlertCounters for Metrics {
    fn alert_sent(&self, kind: AlertKind) {
        self.alerts_sent.with_label_values(&[kind.as_str()]).inc();
    }

    fn alert_failed(&self) {
        self.alerts_failed.inc();
    }

    fn set_missing_callbacks(&self, n: i64) {
        self.missing_callback.set(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_exports_no_replication_gauges() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::store::DatabaseConfig::Sqlite {
            path: dir.path().join("metrics.sqlite3"),
        };
        let bound = std::time::Duration::from_secs(5);
        let store = Store::connect(&config, 1, bound, bound).expect("opens");
        let metrics = Metrics::new();
        metrics.watch_replication(store);
        let (_, text) = metrics.render();
        assert!(text.contains("payhook_build_info"), "{text}");
        assert!(!text.contains("payhook_db_sync_standbys"), "{text}");
        assert!(
            !text.contains("payhook_db_replication_lag_seconds"),
            "{text}"
        );
    }
}
