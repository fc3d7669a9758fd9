//! Erasing a stored request's personal data in place: the rows a pass has to
//! look at (from the `erased_until` mark on, through `callbacks_received`,
//! never the erased past), the update, and the record of an erasure on
//! request. What replaces the request is decided above (`pipeline::erase`):
//! the store writes what it is handed.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use super::schema::callbacks;
use super::{dispatch, JournalEntry, Store, StoreError};

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

#[derive(QueryableByName)]
struct Due {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = BigInt)]
    received_at: i64,
}

#[derive(QueryableByName)]
struct Until {
    #[diesel(sql_type = BigInt)]
    until: i64,
}

/// A row's request with its personal data taken out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    /// The masked request, in the journal's escaped form.
    pub raw_query: String,
    /// The decoded fields, personal ones masked (JSON), when it decodes.
    pub facts: Option<String>,
}

impl Store {
    /// Where the last complete pass ended: every callback received before
    /// it is erased.
    pub fn erased_until(&self) -> Result<Option<i64>, StoreError> {
        self.with_conn(|mut conn| {
            let until = dispatch!(&mut conn, c => diesel::sql_query(
                "SELECT until FROM erased_until WHERE one = 1"
            )
            .get_result::<Until>(c)
            .optional())?;
            Ok(until.map(|u| u.until))
        })
    }

    /// Callbacks received from `from` to before `cutoff` whose personal data
    /// is still there, oldest first, at most `batch`: (id, received_at). A
    /// pass moves `from` to the last one's time, so no batch reads the rows
    /// erased by the batches before it again.
    pub fn unerased_between(
        &self,
        from: i64,
        cutoff: i64,
        batch: i64,
    ) -> Result<Vec<(i64, i64)>, StoreError> {
        self.with_conn(|mut conn| {
            let rows = dispatch!(&mut conn, sql = (
                "SELECT id, received_at FROM callbacks WHERE received_at >= $1 AND received_at < $2 \
                 AND erased_at IS NULL ORDER BY received_at LIMIT $3",
                "SELECT id, received_at FROM callbacks WHERE received_at >= ? AND received_at < ? \
                 AND erased_at IS NULL ORDER BY received_at LIMIT ?",
            ), c => diesel::sql_query(sql)
                    .bind::<BigInt, _>(from)
                    .bind::<BigInt, _>(cutoff)
                    .bind::<BigInt, _>(batch)
                    .load::<Due>(c))?;
            Ok(rows.into_iter().map(|r| (r.id, r.received_at)).collect())
        })
    }

    /// Callbacks with an id above `after` whose personal data is still
    /// there, by id, at most `batch`: what a search for an e-mail reads.
    pub fn unerased_after(&self, after: i64, batch: i64) -> Result<Vec<JournalEntry>, StoreError> {
        self.with_conn(|mut conn| {
            Ok(dispatch!(&mut conn, c => callbacks::table
                .filter(callbacks::id.gt(after))
                .filter(callbacks::erased_at.is_null())
                .order(callbacks::id.asc())
                .limit(batch)
                .select(JournalEntry::as_select())
                .load(c))?)
        })
    }

    /// Every callback received before `until` is erased: later passes start there.
    pub fn mark_erased_until(&self, until: i64) -> Result<(), StoreError> {
        self.with_conn(|mut conn| {
            dispatch!(&mut conn, sql = (
                "INSERT INTO erased_until (one, until) VALUES (1, $1) ON CONFLICT (one) \
                 DO UPDATE SET until = GREATEST(erased_until.until, excluded.until)",
                "INSERT INTO erased_until (one, until) VALUES (1, ?) ON CONFLICT (one) \
                 DO UPDATE SET until = max(erased_until.until, excluded.until)",
            ), c => diesel::sql_query(sql).bind::<BigInt, _>(until).execute(c))?;
            Ok(())
        })
    }

    /// Replaces row `id`'s request by `erased` and forgets the sender's
    /// address and anything stored beside the signed part; `false` when it
    /// was erased before (or is gone).
    pub fn erase(&self, id: i64, erased: &Erased, at: i64) -> Result<bool, StoreError> {
        self.with_conn(|mut conn| {
            let n = dispatch!(&mut conn, sql = (
                "UPDATE callbacks SET raw_query = $1, facts = $2, erased_at = $3, \
                 raw_unsigned = NULL, remote_addr = NULL WHERE id = $4 AND erased_at IS NULL",
                "UPDATE callbacks SET raw_query = ?, facts = ?, erased_at = ?, \
                 raw_unsigned = NULL, remote_addr = NULL WHERE id = ? AND erased_at IS NULL",
            ), c => diesel::sql_query(sql)
                    .bind::<Text, _>(&erased.raw_query)
                    .bind::<Nullable<Text>, _>(erased.facts.as_deref())
                    .bind::<BigInt, _>(at)
                    .bind::<BigInt, _>(id)
                    .execute(c))?;
            Ok(n == 1)
        })
    }

    /// Every callback row of one order, oldest first (`callbacks_order`).
    pub fn order_callback_ids(&self, project: &str, orderid: &str) -> Result<Vec<i64>, StoreError> {
        self.with_conn(|mut conn| {
            let ids = dispatch!(&mut conn, sql = (
                "SELECT id FROM callbacks WHERE orderid = $1 AND project_id = $2 ORDER BY id",
                "SELECT id FROM callbacks WHERE orderid = ? AND project_id = ? ORDER BY id",
            ), c => diesel::sql_query(sql)
                    .bind::<Text, _>(orderid)
                    .bind::<Text, _>(project)
                    .load::<Id>(c))?;
            Ok(ids.into_iter().map(|r| r.id).collect())
        })
    }

    /// The record of an erasure on request.
    pub fn record_erasure(
        &self,
        project: &str,
        orderid: &str,
        rows: i64,
        actor: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        self.with_conn(|mut conn| {
            dispatch!(&mut conn, sql = (
                "INSERT INTO erasures (project_id, orderid, rows_erased, actor, erased_at) \
                 VALUES ($1, $2, $3, $4, $5)",
                "INSERT INTO erasures (project_id, orderid, rows_erased, actor, erased_at) \
                 VALUES (?, ?, ?, ?, ?)",
            ), c => diesel::sql_query(sql)
                    .bind::<Text, _>(project)
                    .bind::<Text, _>(orderid)
                    .bind::<BigInt, _>(rows)
                    .bind::<Text, _>(actor)
                    .bind::<BigInt, _>(at)
                    .execute(c))?;
            Ok(())
        })
    }
}
