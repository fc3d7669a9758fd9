//! The delivery metrics, registered with the service's others (`crate::metrics`).

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts};

/// Delivery of the outbox to the shop.
#[derive(Clone)]
pub struct NotifyMetrics {
    results: IntCounterVec,
    pending: IntGauge,
    oldest_pending: IntGauge,
    duration: Histogram,
}

/// How a notification attempt ended, for `payhook_notifications_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationResult {
    /// A 2xx.
    Delivered,
    /// Anything else; retried (or, the last time, followed by `Dead`).
    Failed,
    /// Given up after `SHOP_NOTIFY_MAX_AGE`: counted once per event.
    Dead,
}

impl NotificationResult {
    pub const ALL: [NotificationResult; 3] = [
        NotificationResult::Delivered,
        NotificationResult::Failed,
        NotificationResult::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotificationResult::Delivered => "delivered",
            NotificationResult::Failed => "failed",
            NotificationResult::Dead => "dead",
        }
    }
}

impl Default for NotifyMetrics {
    fn default() -> Self {
        NotifyMetrics::new()
    }
}

impl NotifyMetrics {
    fn new() -> NotifyMetrics {
        let results = IntCounterVec::new(
            Opts::new(
                "payhook_notifications_total",
                "Notification attempts to the shop (delivered, failed) and events given up (dead)",
            ),
            &["result"],
        )
        .expect("valid metric");
        for result in NotificationResult::ALL {
            results.with_label_values(&[result.as_str()]);
        }
        NotifyMetrics {
            results,
            pending: IntGauge::new(
                "payhook_outbox_pending",
                "Events not yet delivered to the shop (nor dead)",
            )
            .expect("valid metric"),
            oldest_pending: IntGauge::new(
                "payhook_outbox_oldest_pending_seconds",
                "Age of the oldest pending event (0 when none)",
            )
            .expect("valid metric"),
            duration: Histogram::with_opts(
                HistogramOpts::new(
                    "payhook_notification_duration_seconds",
                    "Time of one notification attempt, whatever its result",
                )
                .buckets(vec![
                    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ]),
            )
            .expect("valid metric"),
        }
    }

    pub(crate) fn collectors(&self) -> [Box<dyn prometheus::core::Collector>; 4] {
        [
            Box::new(self.results.clone()),
            Box::new(self.pending.clone()),
            Box::new(self.oldest_pending.clone()),
            Box::new(self.duration.clone()),
        ]
    }

    /// One notification attempt ended (`Delivered`, `Failed`, with its time),
    /// or an event was given up (`Dead`, no time).
    pub fn notification(&self, result: NotificationResult, seconds: Option<f64>) {
        self.results.with_label_values(&[result.as_str()]).inc();
        if let Some(seconds) = seconds {
            self.duration.observe(seconds);
        }
    }

    /// The pending events and the age of the oldest, in seconds.
    pub fn set_outbox(&self, pending: i64, oldest_seconds: i64) {
        self.pending.set(pending);
        self.oldest_pending.set(oldest_seconds);
    }
}
