//! Missed callbacks: the gateway gives up after about a day, so a buyer who came
//! back while no callback followed is the usual sign of a wrong `callbackurl`, a
//! firewall or a dead receiver. Only what can still be acted on is counted: a
//! buyer who came back within `MISSED_CALLBACK_WINDOW`, an order that still waits
//! for payment and that nobody closed. Scanned from the shared database, so
//! every instance reports the same gauge and only one alerts.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::{Alert, AlertCounters, AlertKind, Alerter};
use crate::store::Store;

pub fn spawn_scanner(
    store: Store,
    after: Duration,
    window: Duration,
    counters: Arc<dyn AlertCounters>,
    alerter: Alerter,
) -> JoinHandle<()> {
    let every = (after / 4).clamp(Duration::from_millis(200), Duration::from_secs(30));
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let now = chrono::Utc::now().timestamp_millis();
            let cutoff = now - after.as_millis() as i64;
            let since = now - window.as_millis() as i64;
            let store = store.clone();
            match tokio::task::spawn_blocking(move || store.missed_callbacks(since, cutoff)).await {
                Ok(Ok((count, claimed))) => {
                    counters.set_missing_callbacks(count);
                    for (project, orderid) in claimed {
                        tracing::warn!(project, orderid, "buyer returned but no callback arrived");
                        alerter.raise(
                            Alert::new(
                                AlertKind::MissedCallback,
                                format!(
                                    "order {orderid}: buyer returned, no paid callback after {}s",
                                    after.as_secs()
                                ),
                                "missed_callback",
                            )
                            .order(Some(&orderid)),
                        );
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "missed-callback scan failed"),
                Err(e) => tracing::warn!(error = %e, "missed-callback scan panicked"),
            }
        }
    })
}
