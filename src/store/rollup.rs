//! The overview's "callbacks by outcome" at any depth of history: the hours
//! that are over are counted once, off the hot path, into `callback_hours`
//! (migration `000030_bounded_reads`); a period's figures are those counts
//! plus at most two hours read from the journal's index
//! `callbacks_received (received_at, outcome)`. Nothing on the callback's
//! path writes here, so concurrent callbacks never queue on a counter row.

use std::collections::BTreeMap;
use std::time::Duration;

use diesel::sql_types::{BigInt, Text};
use diesel::{OptionalExtension, QueryableByName, RunQueryDsl};
use tokio::task::JoinHandle;

use super::{dispatch, now_millis, Store, StoreError};

pub const HOUR_MS: i64 = 3_600_000;

/// An hour is counted once it ended this long ago: a callback's
/// `received_at` is taken before its transaction commits, and a commit comes
/// within the request's time-out (seconds), far less than this.
const SETTLE_MS: i64 = 5 * 60_000;

/// How far back counting starts on a fresh (or long stopped) database: the
/// overview's longest period, 7 days, and one more.
const BACKFILL_MS: i64 = 8 * 24 * HOUR_MS;

#[derive(QueryableByName)]
struct Until {
    #[diesel(sql_type = BigInt)]
    until: i64,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = Text)]
    outcome: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The statements, in each backend's placeholders.
struct Sql {
    sealed: &'static str,
    sealed_locked: &'static str,
    start: &'static str,
    forget: &'static str,
    forget_between: &'static str,
    count_hour: &'static str,
    advance: &'static str,
    next_received: &'static str,
    counted: &'static str,
    live: &'static str,
}

const PG: Sql = Sql {
    sealed: "SELECT until FROM callback_hours_sealed WHERE one = 1",
    // Instances counting at once queue here, and the second finds it done.
    sealed_locked: "SELECT until FROM callback_hours_sealed WHERE one = 1 FOR UPDATE",
    start: "INSERT INTO callback_hours_sealed (one, until) VALUES (1, $1) ON CONFLICT DO NOTHING",
    forget: "DELETE FROM callback_hours WHERE hour = $1",
    forget_between: "DELETE FROM callback_hours WHERE hour >= $1 AND hour < $2",
    count_hour: "INSERT INTO callback_hours (hour, outcome, n) SELECT $1, outcome, count(*) \
                 FROM callbacks WHERE received_at >= $1 AND received_at < $2 GROUP BY outcome",
    advance: "UPDATE callback_hours_sealed SET until = $1 WHERE one = 1",
    next_received: "SELECT received_at AS until FROM callbacks WHERE received_at >= $1 \
                    ORDER BY received_at LIMIT 1",
    counted: "SELECT outcome, CAST(sum(n) AS BIGINT) AS n FROM callback_hours \
              WHERE hour >= $1 AND hour < $2 GROUP BY outcome",
    live: "SELECT outcome, count(*) AS n FROM callbacks \
           WHERE received_at >= $1 AND received_at < $2 GROUP BY outcome",
};

const SQLITE: Sql = Sql {
    sealed: "SELECT until FROM callback_hours_sealed WHERE one = 1",
    // The transaction is IMMEDIATE: it holds the one write lock already.
    sealed_locked: "SELECT until FROM callback_hours_sealed WHERE one = 1",
    start: "INSERT INTO callback_hours_sealed (one, until) VALUES (1, ?) ON CONFLICT DO NOTHING",
    forget: "DELETE FROM callback_hours WHERE hour = ?",
    forget_between: "DELETE FROM callback_hours WHERE hour >= ? AND hour < ?",
    count_hour: "INSERT INTO callback_hours (hour, outcome, n) SELECT ?1, outcome, count(*) \
                 FROM callbacks WHERE received_at >= ?1 AND received_at < ?2 GROUP BY outcome",
    advance: "UPDATE callback_hours_sealed SET until = ? WHERE one = 1",
    next_received: "SELECT received_at AS until FROM callbacks WHERE received_at >= ? \
                    ORDER BY received_at LIMIT 1",
    counted: "SELECT outcome, CAST(sum(n) AS BIGINT) AS n FROM callback_hours \
              WHERE hour >= ? AND hour < ? GROUP BY outcome",
    live: "SELECT outcome, count(*) AS n FROM callbacks \
           WHERE received_at >= ? AND received_at < ? GROUP BY outcome",
};

fn floor_hour(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS) * HOUR_MS
}

fn ceil_hour(ms: i64) -> i64 {
    floor_hour(ms + HOUR_MS - 1)
}

impl Store {
    /// Counts the next hour that is over and not yet counted, in one
    /// transaction; `false` when there is none (every hour up to `now` less
    /// the settling time is counted).
    pub fn seal_next_hour(&self, now: i64) -> Result<bool, StoreError> {
        let target = floor_hour(now - SETTLE_MS);
        let earliest = floor_hour(now - BACKFILL_MS);
        self.transaction(|conn| {
            dispatch!(conn, sql = (&PG, &SQLITE), c => {
                diesel::sql_query(sql.start).bind::<BigInt, _>(earliest).execute(c)?;
                let until = diesel::sql_query(sql.sealed_locked).get_result::<Until>(c)?.until;
                // Hours older than the longest period are never read: skip them.
                let hour = until.max(earliest);
                if hour >= target {
                    return Ok(false);
                }
                // Hours without a callback (a quiet night, a fresh database)
                // are passed over at once, not one transaction each.
                let next = diesel::sql_query(sql.next_received)
                    .bind::<BigInt, _>(hour)
                    .get_result::<Until>(c)
                    .optional()?
                    .map_or(target, |r| floor_hour(r.until).min(target));
                if next > hour {
                    diesel::sql_query(sql.forget_between)
                        .bind::<BigInt, _>(hour)
                        .bind::<BigInt, _>(next)
                        .execute(c)?;
                    diesel::sql_query(sql.advance).bind::<BigInt, _>(next).execute(c)?;
                    return Ok(next < target);
                }
                diesel::sql_query(sql.forget).bind::<BigInt, _>(hour).execute(c)?;
                diesel::sql_query(sql.count_hour)
                    .bind::<BigInt, _>(hour)
                    .bind::<BigInt, _>(hour + HOUR_MS)
                    .execute(c)?;
                diesel::sql_query(sql.advance)
                    .bind::<BigInt, _>(hour + HOUR_MS)
                    .execute(c)?;
                Ok(true)
            })
        })
    }

    /// Counts every hour that is over; returns how many it counted.
    pub fn seal_hours(&self, now: i64) -> Result<usize, StoreError> {
        let mut sealed = 0;
        while self.seal_next_hour(now)? {
            sealed += 1;
        }
        Ok(sealed)
    }

    /// Callbacks received since `since`, by outcome: the counted hours from
    /// `callback_hours`, the rest (the part of an hour at the start, and what
    /// is not counted yet) from the journal's index.
    pub fn callbacks_by_outcome(&self, since: i64) -> Result<Vec<(String, i64)>, StoreError> {
        self.with_conn(|mut conn| {
            let rows = dispatch!(&mut conn, sql = (&PG, &SQLITE), c => {
                // Read first: every hour below it is counted and final, so the
                // two reads below neither miss nor repeat a row, whatever
                // counting runs between them.
                let until = diesel::sql_query(sql.sealed)
                    .get_result::<Until>(c)
                    .optional()?
                    .map(|u| u.until);
                let from = ceil_hour(since);
                let mut rows = Vec::new();
                let live_from = match until {
                    Some(until) if until > from => {
                        rows.extend(
                            diesel::sql_query(sql.live)
                                .bind::<BigInt, _>(since)
                                .bind::<BigInt, _>(from)
                                .load::<Count>(c)?,
                        );
                        rows.extend(
                            diesel::sql_query(sql.counted)
                                .bind::<BigInt, _>(from)
                                .bind::<BigInt, _>(until)
                                .load::<Count>(c)?,
                        );
                        until
                    }
                    _ => since,
                };
                rows.extend(
                    diesel::sql_query(sql.live)
                        .bind::<BigInt, _>(live_from)
                        .bind::<BigInt, _>(i64::MAX)
                        .load::<Count>(c)?,
                );
                rows
            });
            let mut by_outcome: BTreeMap<String, i64> = BTreeMap::new();
            for row in rows {
                *by_outcome.entry(row.outcome).or_default() += row.n;
            }
            Ok(by_outcome.into_iter().collect())
        })
    }
}

/// Counts the hours that are over, now and then every minute. Every instance
/// may run it: the sealed row's lock (PostgreSQL) or the one writer (SQLite)
/// makes each hour counted once.
pub fn spawn_rollup(store: Store) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let store = store.clone();
            match tokio::task::spawn_blocking(move || store.seal_hours(now_millis())).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "counting the journal's hours failed"),
                Err(e) => tracing::warn!(error = %e, "counting the journal's hours panicked"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_round_to_their_boundaries() {
        assert_eq!(floor_hour(HOUR_MS + 1), HOUR_MS);
        assert_eq!(ceil_hour(HOUR_MS + 1), 2 * HOUR_MS);
        assert_eq!(ceil_hour(HOUR_MS), HOUR_MS);
        assert_eq!(floor_hour(-1), -HOUR_MS);
    }
}
