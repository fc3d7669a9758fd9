//! Telling the shop: every event the callback's transaction writes to the
//! outbox is POSTed to `SHOP_NOTIFY_URL`, signed per Standard Webhooks, retried
//! with backoff until a 2xx or `SHOP_NOTIFY_MAX_AGE`; shops that cannot take
//! requests page through the same events (`GET /api/v1/events`).

pub mod event;
pub mod metrics;
pub mod retry;
mod shop;
pub mod signing;
mod worker;

use std::sync::Arc;

pub use event::{EventType, Notification, TEST_EVENT_TYPE};
pub use shop::{describe as describe_http_error, ShopAnswer, ShopClient, ShopUrl};
pub use signing::WebhookSecret;
pub use worker::Delivery;

use std::sync::atomic::AtomicBool;

use crate::alerts::Alerter;
use crate::store::Store;

/// Starts the delivery worker on the current runtime; it stops claiming events
/// once `running` is cleared (the service's `StopHandle`).
pub fn start(
    delivery: Delivery,
    store: Store,
    metrics: metrics::NotifyMetrics,
    alerter: Alerter,
    running: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let worker = worker::Worker::new(delivery, store, metrics, alerter, running)?;
    tokio::spawn(Arc::new(worker).run());
    Ok(())
}
