//! The deadline that bounds database work, carried by the store handle that
//! does the work: a [`Store`] made by [`Store::until`] (or handed to the work
//! by [`Store::bounded`]) waits for a pooled connection only until its
//! deadline, and commits nothing once its caller has (nearly) stopped
//! waiting. A store without a deadline (start-up, migrations, the workers'
//! own loops) waits as long as the pool's and the server's own bounds let it.

use std::time::{Duration, Instant};

use super::{now_millis, Store, StoreError};

impl Store {
    /// This store, bounded to `deadline` (or to its own, if that is earlier).
    pub fn until(&self, deadline: Instant) -> Store {
        let mut bounded = self.clone();
        bounded.deadline = Some(self.deadline.map_or(deadline, |d| d.min(deadline)));
        bounded
    }

    /// When whoever waits for this store's work stops waiting, if anyone does.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Runs blocking database work on the blocking pool, handing it this
    /// store bounded to the statement bound from now, and waits for it at
    /// most that long. A stalled network never delivers the server's own
    /// timeout, so this is the bound the caller can rely on: past it the
    /// answer is `TimedOut`, and the work, still running on its thread, rolls
    /// back instead of committing (see `transaction`), so that what is stored
    /// matches what was answered.
    pub async fn bounded<T: Send + 'static>(
        &self,
        work: impl FnOnce(Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let bound = self.statement_timeout;
        let store = self.until(Instant::now() + bound);
        let deadline = store.deadline.unwrap_or_else(|| Instant::now() + bound);
        let task = tokio::task::spawn_blocking(move || work(store));
        match tokio::time::timeout_at(deadline.into(), task).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(StoreError::Unavailable(e.to_string())),
            Err(_) => Err(StoreError::TimedOut(bound)),
        }
    }

    /// How long a pooled connection may be waited for: the pool's own bound,
    /// cut short by the deadline.
    pub(super) fn acquire_within(&self) -> Result<Duration, StoreError> {
        match self.deadline {
            None => Ok(self.acquire_timeout),
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Ok(left.min(self.acquire_timeout)),
                _ => Err(StoreError::TimedOut(self.statement_timeout)),
            },
        }
    }

    /// The last moment work may commit: the deadline, less the tenth of the
    /// bound left for the commit's own round trip. `None` without a deadline.
    pub(super) fn commit_by(&self) -> Option<Instant> {
        self.deadline
            .map(|d| d.checked_sub(self.statement_timeout / 10).unwrap_or(d))
    }

    /// Refuses to commit work whose caller has (nearly) stopped waiting: a
    /// COMMIT sent now could land after the caller answered 503.
    pub(super) fn still_awaited(&self) -> Result<(), StoreError> {
        match self.commit_by() {
            Some(commit_by) if Instant::now() >= commit_by => {
                Err(StoreError::TimedOut(self.statement_timeout))
            }
            _ => Ok(()),
        }
    }

    /// `commit_by` on the wall clock, in unix milliseconds, for a statement
    /// that commits by itself on the server (`payhook_pay`), where a stalled
    /// network may deliver it late.
    pub(super) fn commit_by_millis(&self) -> Option<i64> {
        let left = self.commit_by()?.saturating_duration_since(Instant::now());
        Some(now_millis() + i64::try_from(left.as_millis()).unwrap_or(i64::MAX / 2))
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::store::{DatabaseConfig, Store, StoreError};

    fn sqlite(dir: &tempfile::TempDir) -> Store {
        let config = DatabaseConfig::Sqlite {
            path: dir.path().join("bounds.sqlite3"),
        };
        let bound = Duration::from_secs(5);
        let store = Store::connect(&config, 2, bound, bound).expect("opens");
        store.migrate().expect("migrates");
        store
    }

    #[test]
    fn a_handle_past_its_deadline_does_no_work_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite(&dir);
        assert!(store.deadline().is_none());
        let late = store.until(Instant::now());
        assert!(matches!(late.ready(), Err(StoreError::TimedOut(_))));
        assert!(matches!(
            late.journal_entry(1),
            Err(StoreError::TimedOut(_))
        ));
        // The handle it was made from is not bounded by it.
        store.ready().expect("the unbounded handle still works");
        store
            .until(Instant::now() + Duration::from_secs(5))
            .ready()
            .expect("a handle with time left works");
    }

    #[test]
    fn a_handle_keeps_the_earlier_of_two_deadlines() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite(&dir);
        let soon = Instant::now() + Duration::from_secs(1);
        let later = soon + Duration::from_secs(60);
        assert_eq!(store.until(soon).until(later).deadline(), Some(soon));
        assert_eq!(store.until(later).until(soon).deadline(), Some(soon));
    }

    #[tokio::test]
    async fn bounded_work_is_handed_a_handle_with_the_statement_bound() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite(&dir);
        let before = Instant::now();
        let deadline = store
            .bounded(|bounded| Ok(bounded.deadline()))
            .await
            .unwrap()
            .expect("the work's handle carries a deadline");
        assert!(deadline >= before + Duration::from_secs(5));
        assert!(deadline <= Instant::now() + Duration::from_secs(5));
    }
}
