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
use crate::store::{Store, StoreError};

/// Starts the delivery worker on the current runtime (its timer loop only
/// with `delivery.on_timer`); it stops claiming events once `running` is
/// cleared (the service's `StopHandle`).
pub fn start(
    delivery: Delivery,
    store: Store,
    metrics: metrics::NotifyMetrics,
    alerter: Alerter,
    running: Arc<AtomicBool>,
) -> anyhow::Result<Outbox> {
    let on_timer = delivery.on_timer;
    let worker = Arc::new(worker::Worker::new(
        delivery, store, metrics, alerter, running,
    )?);
    if on_timer {
        tokio::spawn(worker.clone().run());
    }
    Ok(Outbox(worker))
}

/// A running service's delivery worker, for a pass on demand.
#[derive(Clone)]
pub struct Outbox(Arc<worker::Worker>);

impl Outbox {
    /// One delivery pass now: the events due are claimed, attempted and
    /// recorded before it returns; how many were attempted.
    pub async fn step(&self) -> Result<usize, StoreError> {
        self.0.step().await
    }
}
