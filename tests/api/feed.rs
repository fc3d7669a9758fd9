//! The events feed never skips: a shop that polls with `after=next_after`
//! receives every event exactly once, whatever order transactions commit in.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use futures::future::join_all;
use serde_json::Value;

use crate::helpers::{both_backends, Backend, TestApp, ADMIN_TOKEN};
use crate::support::gateway::paid;
use crate::support::{sqlite, wait};

/// Lock waits and a burst of writers on a shared machine: generous bounds, so
/// that what is tested is the feed's order, not the machine's speed.
const PATIENT: &[(&str, &str)] = &[
    ("PAYHOOK_DB_ACQUIRE_TIMEOUT", "30s"),
    ("PAYHOOK_DB_STATEMENT_TIMEOUT", "30s"),
    ("PAYHOOK_REQUEST_TIMEOUT", "60s"),
];

/// A shop polling the feed as documented: every `every`, `after` = the last
/// `next_after`. It records each event id in the order received.
struct Poller {
    received: Arc<Mutex<Vec<(i64, String)>>>,
    /// Pages read so far.
    pages: Arc<AtomicUsize>,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Poller {
    fn start(app: &TestApp, every: Duration) -> Poller {
        let received = Arc::new(Mutex::new(Vec::new()));
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let pages = Arc::new(AtomicUsize::new(0));
        let (client, admin, sink) = (app.client.clone(), app.admin.clone(), received.clone());
        let read = pages.clone();
        let task = tokio::spawn(async move {
            let mut after = 0i64;
            loop {
                let page: Value = client
                    .get(format!("{admin}/api/v1/events?after={after}&limit=1000"))
                    .bearer_auth(ADMIN_TOKEN)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                for e in page["events"].as_array().unwrap() {
                    let orderid = e["orderid"].as_str().unwrap_or_default().to_string();
                    sink.lock()
                        .unwrap()
                        .push((e["id"].as_i64().unwrap(), orderid));
                }
                after = page["next_after"].as_i64().unwrap();
                read.fetch_add(1, Ordering::SeqCst);
                if *stopped.borrow() {
                    return;
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = stopped.changed() => {}
                }
            }
        });
        Poller {
            received,
            pages,
            stop,
            task,
        }
    }

    /// Polls until `want` events arrived (or 30 s passed), once more after
    /// that, and returns what arrived.
    async fn finish(self, want: usize) -> Vec<(i64, String)> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.received.lock().unwrap().len() < want && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // One more whole page after everything arrived: nothing may follow twice.
        let pages = self.pages.load(Ordering::SeqCst);
        wait::until("one more page", Duration::from_secs(30), || {
            self.pages.load(Ordering::SeqCst) >= pages + 2
        })
        .await;
        self.stop.send(true).unwrap();
        self.task.await.unwrap();
        let received = self.received.lock().unwrap().clone();
        received
    }
}

/// Every event of `app`'s outbox arrived exactly once.
fn assert_each_event_once(app: &TestApp, received: &[(i64, String)], events: usize) {
    let mut seen: HashMap<i64, usize> = HashMap::new();
    for (id, _) in received {
        *seen.entry(*id).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "events received twice: {twice:?}");
    assert_eq!(
        app.count("SELECT count(*) AS n FROM outbox"),
        events as i64,
        "events written"
    );
    assert_eq!(
        seen.len(),
        events,
        "events received by the poller: {} of {events}",
        seen.len()
    );
}

/// Holds order `orderid`'s row (PostgreSQL) or the write lock (SQLite) for
/// `held`, from another session, as a slow transaction of another instance
/// would; returns once the lock is taken.
fn hold_order(app: &TestApp, orderid: &str, held: Duration) -> std::thread::JoinHandle<()> {
    let (taken_tx, taken_rx) = std::sync::mpsc::channel();
    let (url, orderid, backend) = (app.database_url.clone(), orderid.to_string(), app.backend);
    let holder = std::thread::spawn(move || match backend {
        Backend::Postgres => {
            let mut c = PgConnection::establish(&url).unwrap();
            c.transaction::<_, diesel::result::Error, _>(|c| {
                diesel::sql_query(format!(
                    "SELECT 1 FROM orders WHERE orderid = '{orderid}' FOR UPDATE"
                ))
                .execute(c)?;
                taken_tx.send(()).unwrap();
                std::thread::sleep(held);
                Ok(())
            })
            .unwrap();
        }
        Backend::Sqlite => {
            let mut c = sqlite::connect(&url);
            c.immediate_transaction::<_, diesel::result::Error, _>(|_| {
                taken_tx.send(()).unwrap();
                std::thread::sleep(held);
                Ok(())
            })
            .unwrap();
        }
    });
    taken_rx.recv().unwrap();
    holder
}

/// Order A's paid callback waits 2.5 s on a lock; B's comes 1 s later and
/// commits first. Paging by id, a shop saw B's event (the higher id) and never
/// A's.
async fn a_callback_that_waits_on_a_lock_is_not_skipped(backend: Backend) {
    let app = TestApp::spawn_with(backend, PATIENT).await;
    app.register("FEED-A", 1000, "EUR").await;
    app.register("FEED-B", 1000, "EUR").await;
    let poller = Poller::start(&app, Duration::from_millis(100));

    let holder = hold_order(&app, "FEED-A", Duration::from_millis(2500));
    let a = {
        let (client, base, query) = (app.client.clone(), app.base.clone(), paid("FEED-A", "1000"));
        tokio::spawn(async move {
            let r = client
                .get(format!("{base}/paysera/callback?{query}"))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    // The scenario's own delay: B comes while A waits on the lock.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let b = app.get_callback(&paid("FEED-B", "1000")).await;
    assert_eq!((b.status, b.body.as_str()), (200, "OK"));
    assert_eq!(a.await.unwrap(), (200, "OK".to_string()));
    holder.join().unwrap();

    let received = poller.finish(2).await;
    assert_each_event_once(&app, &received, 2);
    let mut orders: Vec<&str> = received.iter().map(|(_, o)| o.as_str()).collect();
    orders.sort();
    assert_eq!(orders, ["FEED-A", "FEED-B"]);
}

/// 400 paid callbacks from 32 senders at once, a shop polling every 20 ms:
/// all 400 events arrive, each once.
async fn a_burst_of_paid_callbacks_reaches_a_polling_shop_whole(backend: Backend) {
    let app = TestApp::spawn_with(backend, PATIENT).await;
    // Descending order ids: a batch writes in order-id order, against arrival.
    let orders: Vec<String> = (0..400).rev().map(|i| format!("BURST-{i:03}")).collect();
    for id in &orders {
        app.register(id, 700, "EUR").await;
    }
    let poller = Poller::start(&app, Duration::from_millis(20));
    let queries: Vec<String> = orders.iter().map(|id| paid(id, "700")).collect();
    let chunks: Vec<Vec<String>> = queries.chunks(400 / 32 + 1).map(<[_]>::to_vec).collect();
    let senders = chunks.into_iter().map(|chunk| {
        let (client, base) = (app.client.clone(), app.base.clone());
        tokio::spawn(async move {
            for query in chunk {
                let r = client
                    .get(format!("{base}/paysera/callback?{query}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        })
    });
    for sent in join_all(senders).await {
        sent.unwrap();
    }
    let received = poller.finish(400).await;
    assert_each_event_once(&app, &received, 400);
}

both_backends!(
    a_callback_that_waits_on_a_lock_is_not_skipped,
    a_burst_of_paid_callbacks_reaches_a_polling_shop_whole,
);
