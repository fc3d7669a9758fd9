//! Telling the shop: every event the callback's transaction writes to the
//! outbox is POSTed to `SHOP_NOTIFY_URL`, signed per Standard Webhooks, retried
//! with backoff until a 2xx or `SHOP_NOTIFY_MAX_AGE`; shops that cannot take
//! requests page through the same events (`GET /api/v1/events`).

pub mod event;
pub mod metrics;
pub mod retry;
pub mod settings;
pub mod signing;
mod worker;

use std::sync::Arc;

pub use event::{EventType, Notification};
pub use settings::NotifySettings;
pub use signing::WebhookSecret;

use crate::http::AppState;

/// Starts the delivery worker on the current runtime, when a URL is set; it
/// stops claiming events once the service stops accepting (`StopHandle`).
pub fn start(settings: &NotifySettings, state: &AppState) -> anyhow::Result<()> {
    let (Some(url), Some(secret)) = (&settings.url, &settings.secret) else {
        tracing::info!(
            "shop notifications off (no SHOP_NOTIFY_URL): events stay in the outbox, \
             readable at GET /api/v1/events"
        );
        return Ok(());
    };
    tracing::info!(notify = %settings.summary(), "shop notifications on");
    let config = worker::WorkerConfig {
        url: url.clone(),
        secrets: std::iter::once(secret.clone())
            .chain(settings.previous_secret.clone())
            .collect(),
        timeout: settings.timeout,
        max_interval: settings.max_interval,
        max_age: settings.max_age,
    };
    let worker = worker::Worker::new(
        config,
        state.store.clone(),
        state.metrics.clone(),
        state.alerter.clone(),
        state.accepting.clone(),
    )?;
    tokio::spawn(Arc::new(worker).run());
    Ok(())
}
