//! Waiting for something to happen: poll a condition against a deadline,
//! never sleep a fixed time and hope. A fixed sleep stays only where the time
//! itself is under test (a slow client, a stall a test injects on purpose),
//! and says so.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is looked at again.
const EVERY: Duration = Duration::from_millis(10);

/// Polls `condition` until it holds; panics naming `what` if it still does
/// not after `within`.
pub async fn until(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(EVERY).await;
    }
}

/// [`until`] for a condition that has to wait for its answer (a request).
pub async fn until_async<F, Fut>(what: &str, within: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !condition().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(EVERY).await;
    }
}

/// Polls `probe` until it returns `Some`, and returns that; panics naming
/// `what` after `within`.
pub async fn until_some<T>(
    what: &str,
    within: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(EVERY).await;
    }
}

/// [`until`] for a test without a runtime: the thread sleeps between looks.
pub fn blocking_until(what: &str, within: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition() {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        std::thread::sleep(EVERY);
    }
}
