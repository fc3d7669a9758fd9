//! When an event that was not acknowledged is tried again, and when it is
//! given up (`dead`). Pure: the caller passes the clock and the jitter.

use std::time::Duration;

/// The first retry waits about this long; each further one twice as long.
pub const FIRST_DELAY: Duration = Duration::from_secs(1);
/// Each delay is multiplied by a factor drawn from this range, so that events
/// failed together (a shop that was down) do not come back together.
pub const JITTER: std::ops::RangeInclusive<f64> = 0.8..=1.2;

/// What becomes of an event after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Try again at this time (milliseconds since the epoch).
    Retry { at: i64 },
    /// Older than `max_age`: no further attempt.
    Dead,
}

/// The wait after the `failures`-th failed attempt in a row (1 for the
/// first): 1 s doubling, times `jitter`, never more than `max_interval`.
pub fn backoff(failures: u32, max_interval: Duration, jitter: f64) -> Duration {
    let exponent = failures.saturating_sub(1).min(40);
    let base = FIRST_DELAY
        .checked_mul(1u32 << exponent.min(31))
        .unwrap_or(max_interval)
        .min(max_interval);
    base.mul_f64(jitter.clamp(*JITTER.start(), *JITTER.end()))
        .min(max_interval)
}

/// After a failed attempt at `now`: retry after the backoff, but never later
/// than the moment the event reaches `max_age` (counted from `age_from`), so
/// that the last attempt is made then; at or past that moment, it is dead.
pub fn after_failure(
    failures: u32,
    age_from: i64,
    now: i64,
    max_interval: Duration,
    max_age: Duration,
    jitter: f64,
) -> Next {
    let deadline = age_from.saturating_add(millis(max_age));
    if now >= deadline {
        return Next::Dead;
    }
    let at = now.saturating_add(millis(backoff(failures, max_interval, jitter)));
    Next::Retry {
        at: at.min(deadline),
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);
    const DAYS3: Duration = Duration::from_secs(3 * 86400);

    #[test]
    fn one_second_doubling_capped_at_the_max_interval() {
        let delays: Vec<u64> = (1..=14).map(|n| backoff(n, HOUR, 1.0).as_secs()).collect();
        assert_eq!(
            delays,
            [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3600, 3600]
        );
        assert_eq!(backoff(u32::MAX, HOUR, 1.0), HOUR);
        assert_eq!(backoff(3, Duration::from_secs(3), 1.0).as_secs(), 3);
    }

    #[test]
    fn jitter_stays_within_twenty_percent_and_under_the_cap() {
        assert_eq!(backoff(3, HOUR, 0.8), Duration::from_millis(3200));
        assert_eq!(backoff(3, HOUR, 1.2), Duration::from_millis(4800));
        // Out-of-range factors are clamped.
        assert_eq!(backoff(3, HOUR, 5.0), Duration::from_millis(4800));
        assert_eq!(backoff(20, HOUR, 1.2), HOUR);
    }

    /// What docs/notifications.md promises with the defaults: attempts 2 to 4 within 60 s of
    /// the first, whatever the jitter.
    #[test]
    fn with_the_defaults_four_attempts_fit_in_a_minute() {
        for jitter in [0.8, 1.0, 1.2] {
            let mut now = 0;
            for failures in 1..=3 {
                match after_failure(failures, 0, now, HOUR, DAYS3, jitter) {
                    Next::Retry { at } => now = at,
                    Next::Dead => panic!("dead after {failures}"),
                }
            }
            assert!(now <= 60_000, "fourth attempt at {now} ms");
        }
    }

    #[test]
    fn the_last_attempt_is_made_at_max_age_then_the_event_is_dead() {
        let max_age = Duration::from_secs(10);
        assert_eq!(
            after_failure(4, 1_000, 9_000, HOUR, max_age, 1.0),
            Next::Retry { at: 11_000 },
            "8 s of backoff cut to the deadline"
        );
        assert_eq!(
            after_failure(5, 1_000, 11_000, HOUR, max_age, 1.0),
            Next::Dead
        );
        // A requeued event counts its age from the requeue.
        assert_eq!(
            after_failure(1, 50_000, 51_000, HOUR, max_age, 1.0),
            Next::Retry { at: 52_000 }
        );
    }
}
