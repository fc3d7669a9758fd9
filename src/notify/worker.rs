//! The delivery worker: its own tokio task, reading the outbox from the
//! database, so a slow or dead shop never delays a callback's answer. Each
//! instance runs one; claims keep them from sending the same event at once.
//! [`Worker::step`] is one look at the outbox on demand, the pass the timer
//! loop makes every [`POLL`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::task::JoinSet;

use super::event::{EventType, Notification};
use super::metrics::{NotificationResult, NotifyMetrics};
use super::retry::{after_failure, Next, JITTER};
use super::shop::{ShopClient, ShopUrl};
use super::signing::WebhookSecret;
use crate::alerts::{Alert, AlertKind, Alerter};
use crate::store::{AfterAttempt, Attempt, EventRow, Store, StoreError};

/// How often the outbox is looked at when nothing is in flight: the first
/// attempt starts within this of the callback's commit.
const POLL: Duration = Duration::from_millis(250);
/// Attempts in flight at once per instance; a shop that hangs holds at most
/// this many connections.
const IN_FLIGHT: usize = 32;
/// How often the outbox gauges are refreshed.
const GAUGES_EVERY: Duration = Duration::from_secs(5);
/// After a database error, before the next look.
const DATABASE_PAUSE: Duration = Duration::from_secs(1);

pub(super) struct Worker {
    /// Names this worker's claims: the process and a random part, so two
    /// instances (or a restarted one) never share it.
    id: String,
    store: Store,
    shop: ShopClient,
    timeout: Duration,
    max_interval: Duration,
    max_age: Duration,
    metrics: NotifyMetrics,
    alerter: Alerter,
    /// Cleared when the service stops: no new claims after that.
    running: Arc<AtomicBool>,
}

/// Where and how events are delivered: built at start-up from `SHOP_NOTIFY_*`.
pub struct Delivery {
    pub url: ShopUrl,
    pub secrets: Vec<WebhookSecret>,
    pub timeout: Duration,
    pub max_interval: Duration,
    pub max_age: Duration,
    /// Whether the worker looks at the outbox on its own timer: always in
    /// the service. Off, deliveries happen only when [`super::Outbox::step`]
    /// asks (tests that are not about retry timing). Not a setting.
    pub on_timer: bool,
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Worker {
    pub(super) fn new(
        config: Delivery,
        store: Store,
        metrics: NotifyMetrics,
        alerter: Alerter,
        running: Arc<AtomicBool>,
    ) -> anyhow::Result<Worker> {
        let shop = ShopClient::new(config.url, config.secrets, config.timeout)?;
        Ok(Worker {
            id: format!(
                "{}-{}",
                std::process::id(),
                hex::encode(rand::random::<[u8; 6]>())
            ),
            store,
            shop,
            timeout: config.timeout,
            max_interval: config.max_interval,
            max_age: config.max_age,
            metrics,
            alerter,
            running,
        })
    }

    /// A claim outlives any attempt (bounded by the time-out) with room for
    /// recording it; past it, a worker that died mid-attempt loses the event
    /// to another.
    fn lease(&self) -> Duration {
        self.timeout + Duration::from_secs(30)
    }

    pub(super) async fn run(self: Arc<Self>) {
        let mut in_flight = JoinSet::new();
        let mut gauges_at: Option<Instant> = None;
        let mut database_down = false;
        while self.running.load(Ordering::SeqCst) {
            if gauges_at.is_none_or(|t| t.elapsed() >= GAUGES_EVERY) {
                self.refresh_gauges().await;
                gauges_at = Some(Instant::now());
            }
            while in_flight.try_join_next().is_some() {}
            let free = IN_FLIGHT.saturating_sub(in_flight.len());
            match self.claim(free).await {
                Ok(events) if !events.is_empty() => {
                    database_down = false;
                    for event in events {
                        in_flight.spawn(self.clone().deliver(event));
                    }
                    continue;
                }
                Ok(_) => database_down = false,
                Err(e) => {
                    if !database_down {
                        tracing::warn!(error = %e, "outbox unreadable; delivery paused");
                    }
                    database_down = true;
                    tokio::time::sleep(DATABASE_PAUSE).await;
                    continue;
                }
            }
            // Nothing to claim: wait for the next poll, or for an attempt to
            // end (which may unblock the same order's next event).
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            }
        }
        while in_flight.join_next().await.is_some() {}
    }

    /// Claims up to `free` of the events due now.
    async fn claim(&self, free: usize) -> Result<Vec<EventRow>, StoreError> {
        if free == 0 {
            return Ok(Vec::new());
        }
        let (id, lease) = (self.id.clone(), self.lease());
        self.store
            .bounded(move |store| store.claim_events(&id, now_millis(), lease, free as i64))
            .await
    }

    /// One pass now: claims the events due, as one look of the timer loop
    /// does, attempts each and returns once every attempt is recorded; how
    /// many were attempted.
    pub(super) async fn step(self: &Arc<Self>) -> Result<usize, StoreError> {
        let events = self.claim(IN_FLIGHT).await?;
        let attempted = events.len();
        let mut attempts = JoinSet::new();
        for event in events {
            attempts.spawn(self.clone().deliver(event));
        }
        while attempts.join_next().await.is_some() {}
        Ok(attempted)
    }

    async fn refresh_gauges(&self) {
        match self
            .store
            .bounded(move |store| store.outbox_backlog())
            .await
        {
            Ok(backlog) => {
                let age = backlog
                    .oldest
                    .map_or(0, |oldest| (now_millis() - oldest).max(0) / 1000);
                self.metrics.set_outbox(backlog.pending, age);
            }
            Err(e) => tracing::debug!(error = %e, "outbox gauges not refreshed"),
        }
    }

    /// One attempt for one claimed event, recorded with what it becomes.
    async fn deliver(self: Arc<Self>, event: EventRow) {
        let body = Notification::of(&event).to_bytes();
        let at = now_millis();
        let answer = self.shop.post(&event.id.to_string(), body).await;
        let elapsed = answer.elapsed;
        let delivered = answer.acknowledged();
        let (status_code, error) = (answer.status_code, answer.error);
        let next = if delivered {
            AfterAttempt::Delivered
        } else {
            let jitter = rand::thread_rng().gen_range(JITTER);
            match after_failure(
                u32::try_from(event.failures).unwrap_or(0) + 1,
                event.age_from(),
                now_millis(),
                self.max_interval,
                self.max_age,
                jitter,
            ) {
                Next::Retry { at } => AfterAttempt::Retry { at },
                Next::Dead => AfterAttempt::Dead,
            }
        };
        let attempt = Attempt {
            at,
            duration_ms: i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX),
            status_code,
            error,
        };
        let result = if delivered {
            NotificationResult::Delivered
        } else {
            NotificationResult::Failed
        };
        self.metrics
            .notification(result, Some(elapsed.as_secs_f64()));
        let what = attempt_summary(&attempt);
        let event_type = EventType::name_of_kind(&event.kind);
        match next {
            AfterAttempt::Delivered => {
                tracing::info!(event = event.id, r#type = %event_type, attempt = event.attempts + 1, %what, "notification delivered")
            }
            AfterAttempt::Retry { at } => tracing::warn!(
                event = event.id,
                r#type = %event_type,
                attempt = event.attempts + 1,
                %what,
                retry_in_ms = at - now_millis(),
                "notification not acknowledged; will retry"
            ),
            AfterAttempt::Dead => {}
        }

        let worker = self.id.clone();
        let recorded = self
            .store
            .bounded(move |store| store.record_attempt(event.id, &worker, &attempt, next))
            .await;
        match recorded {
            Ok(true) => {
                if next == AfterAttempt::Dead {
                    self.dead(&event, &event_type, &what);
                }
            }
            Ok(false) => tracing::warn!(
                event = event.id,
                "the claim on this event expired during the attempt; another worker has it"
            ),
            // The claim expires and the event is sent again: at least once.
            Err(e) => tracing::error!(event = event.id, error = %e, "attempt not recorded"),
        }
    }

    fn dead(&self, event: &EventRow, event_type: &str, last: &str) {
        self.metrics.notification(NotificationResult::Dead, None);
        tracing::error!(
            event = event.id,
            r#type = %event_type,
            attempts = event.attempts + 1,
            last = %last,
            "notification dead: not acknowledged within SHOP_NOTIFY_MAX_AGE"
        );
        let id = event.id;
        self.alerter.raise(
            Alert::new(
                AlertKind::NotificationDead,
                format!(
                    "event {id} ({event_type}) not acknowledged by the shop after {} attempt(s)",
                    event.attempts + 1
                ),
                &event.kind,
            )
            .order(event.orderid.as_deref())
            .reason(Some(&format!(
                "last attempt: {last}. Look it up: GET /api/v1/events/{id}; send it again: \
                 POST /api/v1/events/{id}/retry"
            ))),
        );
    }
}

fn attempt_summary(attempt: &Attempt) -> String {
    match (&attempt.status_code, &attempt.error) {
        (Some(status), _) => format!("HTTP {status} in {}ms", attempt.duration_ms),
        (None, Some(error)) => format!("{error} after {}ms", attempt.duration_ms),
        (None, None) => format!("no answer after {}ms", attempt.duration_ms),
    }
}
