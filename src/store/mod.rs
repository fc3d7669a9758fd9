//! Persistence: PostgreSQL for production and several instances, SQLite as the
//! embedded default. This module is the facade: the [`Store`] handle,
//! `transaction` and `migrate`. Most statements are written once and compiled
//! for each backend by `dispatch!`; a paid first delivery on PostgreSQL is
//! written by one SQL function instead (`pay/`, the fast path).
//!
//! Beside it: `connect` (the pools, session settings and socket bounds),
//! `bounds` (the deadline a store handle carries), `conninfo` (reading a
//! connection string), `redact` (database URLs fit for a log line),
//! `reconnect` (which failures leave a connection for another), and one
//! module per table group.

mod bounds;
mod callbacks;
mod connect;
mod conninfo;
mod console;
mod erasure;
mod incoming;
mod journal;
mod models;
mod orders;
mod outbox;
mod pay;
pub mod raw;
mod reconnect;
mod replication;
mod retention;
mod rollup;
pub mod schema;

mod redact;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use secrecy::{ExposeSecret, SecretString};

use connect::PgSession;
pub use conninfo::several_hosts_without_primary;
pub use redact::{redact_url, url_secrets};

pub use console::{FlagRow, FormClaim, FormDone, FormResult, Overview};
pub use erasure::Erased;
pub use incoming::{CallbackMeta, Decided, Incoming, Processed};
pub use journal::{JournalEntry, JournalFilter, PruneCount, PRUNE_JOURNAL_BATCH};
pub use models::{rfc3339, CallbackRow, OrderDetails};
pub use orders::{Expected, Registration};
pub use outbox::{
    AfterAttempt, Attempt, AttemptRow, Backlog, EventFilter, EventRow, EventState, FeedPage,
};
pub use pay::FirstPaid;
pub use raw::{RawRequest, Signed};
pub use replication::{Replication, Standby, REMOTE_DURABLE_COMMITS};
pub use retention::{spawn_pruner, Pruned, CONFIRMATION_PREFIX};
pub use rollup::spawn_rollup;

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Any constant unique to payhook: instances starting together migrate one at a time.
const MIGRATION_LOCK_KEY: i64 = 0x7061_7968_6f6f_6b00;

#[derive(Clone)]
pub enum DatabaseConfig {
    Postgres { url: SecretString },
    Sqlite { path: PathBuf },
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatabaseConfig::Postgres { url } => {
                write!(f, "postgres ({})", redact_url(url.expose_secret()))
            }
            DatabaseConfig::Sqlite { path } => write!(f, "sqlite ({})", path.display()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("database did not answer within {0:?}")]
    TimedOut(Duration),
}

pub(crate) type PgPooled = PooledConnection<ConnectionManager<PgConnection>>;
pub(crate) type SqlitePooled = PooledConnection<ConnectionManager<SqliteConnection>>;

#[derive(Clone)]
enum Backend {
    Postgres(Pool<ConnectionManager<PgConnection>>),
    Sqlite(Pool<ConnectionManager<SqliteConnection>>),
}

/// A borrowed connection of either backend.
pub(crate) enum Conn<'a> {
    Pg(&'a mut PgConnection),
    Sqlite(&'a mut SqliteConnection),
}

/// Runs the same diesel expression on whichever backend the connection is;
/// with `sql = (PG, SQLITE)`, `sql` is the backend's own value of the two
/// (its text of a hand-written statement: `$1` against `?`, `GREATEST`
/// against `max`).
macro_rules! dispatch {
    ($conn:expr, $c:ident => $body:expr) => {
        $crate::store::dispatch!($conn, _unused = ((), ()), $c => $body)
    };
    ($conn:expr, $sql:ident = ($pg:expr, $sqlite:expr $(,)?), $c:ident => $body:expr) => {
        match $conn {
            $crate::store::Conn::Pg($c) => {
                let $sql = $pg;
                let $c = &mut **$c;
                $body
            }
            $crate::store::Conn::Sqlite($c) => {
                let $sql = $sqlite;
                let $c = &mut **$c;
                $body
            }
        }
    };
}
pub(crate) use dispatch;

/// A handle on the database: cheap to clone, and carrying the deadline of the
/// work it does (`bounds`), if that work is awaited.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// PostgreSQL only: first deliveries of paid callbacks, written in batches.
    pay_batcher: Option<std::sync::Arc<pay::PayBatcher>>,
    statement_timeout: Duration,
    acquire_timeout: Duration,
    /// SQLite only: the file locked while migrating, beside the database.
    migration_lock: Option<PathBuf>,
    /// When whoever waits for this handle's work stops waiting (`bounds`).
    deadline: Option<Instant>,
}

impl Store {
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Postgres(_) => "postgres",
            Backend::Sqlite(_) => "sqlite",
        }
    }

    fn with_conn<T>(
        &self,
        f: impl FnOnce(Conn<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let wait = self.acquire_within()?;
        match &self.backend {
            Backend::Postgres(pool) => {
                let mut c: PgPooled = pool
                    .get_timeout(wait)
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                let result = f(Conn::Pg(&mut c));
                if let Err(StoreError::Query(e)) = &result {
                    reconnect::discard_if_read_only(&mut c, e);
                }
                result
            }
            Backend::Sqlite(pool) => {
                let mut c: SqlitePooled = pool
                    .get_timeout(wait)
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                f(Conn::Sqlite(&mut c))
            }
        }
    }

    /// One transaction: PostgreSQL's default, SQLite's `BEGIN IMMEDIATE` so that
    /// writers queue for the lock up front instead of failing half-way.
    ///
    /// A connection that died while pooled (database restart, network cut) fails
    /// its first statement, and one that reaches a server no longer the primary
    /// fails its first write (`reconnect`); the transaction then runs again on
    /// a fresh one. The pool may hold nothing but dead connections after a
    /// restart, and each failure discards one, so pool size + 1 attempts always
    /// reach a fresh one.
    /// That is safe because every transaction here is idempotent: a retry of a
    /// commit that did land recognises its own earlier attempt (see
    /// `process_in`) and answers what that attempt stored.
    fn transaction<T>(
        &self,
        f: impl Fn(&mut Conn<'_>) -> Result<T, diesel::result::Error>,
    ) -> Result<T, StoreError> {
        let attempts = match &self.backend {
            Backend::Postgres(pool) => pool.max_size() as usize + 1,
            Backend::Sqlite(pool) => pool.max_size() as usize + 1,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.with_conn(|conn| match conn {
                Conn::Pg(c) => c.transaction(|c| {
                    let value = f(&mut Conn::Pg(c))?;
                    self.still_awaited()?;
                    Ok(value)
                }),
                Conn::Sqlite(c) => c.immediate_transaction(|c| {
                    let value = f(&mut Conn::Sqlite(c))?;
                    self.still_awaited()?;
                    Ok(value)
                }),
            });
            match result {
                Err(StoreError::Query(e))
                    if attempt < attempts && reconnect::retry_elsewhere(&e) =>
                {
                    tracing::debug!(error = %e, attempt, "connection unusable; retrying on a fresh one");
                }
                other => return other,
            }
        }
    }

    /// Applies pending migrations, one instance at a time: on PostgreSQL under
    /// an advisory lock, on SQLite under an exclusive lock on a file beside the
    /// database. Waiting for another instance's migration is not bounded by
    /// the statement timeout: a long migration is no stalled database.
    pub fn migrate(&self) -> Result<usize, StoreError> {
        let migration =
            |e: Box<dyn std::error::Error + Send + Sync>| StoreError::Migration(e.to_string());
        self.with_conn(|conn| match conn {
            Conn::Pg(c) => {
                c.batch_execute("SET statement_timeout = 0; SET lock_timeout = 0;")?;
                diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
                    .execute(c)?;
                let applied = c.run_pending_migrations(PG_MIGRATIONS).map(|v| v.len());
                diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
                    .execute(c)?;
                let session = PgSession {
                    statement_timeout: self.statement_timeout,
                };
                c.batch_execute(&session.sql())?;
                applied.map_err(migration)
            }
            Conn::Sqlite(c) => {
                let _lock = match &self.migration_lock {
                    Some(path) => Some(lock_file(path)?),
                    None => None,
                };
                c.run_pending_migrations(SQLITE_MIGRATIONS)
                    .map(|v| v.len())
                    .map_err(migration)
            }
        })
    }

    /// Ready: the database answers and no migration is pending.
    pub fn ready(&self) -> Result<(), StoreError> {
        if self.pending_migrations()? {
            Err(StoreError::Migration("migrations pending".into()))
        } else {
            Ok(())
        }
    }

    /// Whether a migration embedded in this binary is not applied yet.
    pub fn pending_migrations(&self) -> Result<bool, StoreError> {
        let pending =
            |e: Box<dyn std::error::Error + Send + Sync>| StoreError::Migration(e.to_string());
        self.with_conn(|conn| match conn {
            Conn::Pg(c) => c.has_pending_migration(PG_MIGRATIONS).map_err(pending),
            Conn::Sqlite(c) => c.has_pending_migration(SQLITE_MIGRATIONS).map_err(pending),
        })
    }
}

/// An exclusive lock on `path`, held until the file is dropped. The file is
/// never removed: removing a lock file lets a third instance lock a new file
/// while the second still holds the old one.
fn lock_file(path: &Path) -> Result<std::fs::File, StoreError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| StoreError::Migration(format!("cannot open {}: {e}", path.display())))?;
    file.lock()
        .map_err(|e| StoreError::Migration(format!("cannot lock {}: {e}", path.display())))?;
    Ok(file)
}

pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
