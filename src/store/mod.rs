//! Persistence: PostgreSQL for production and several instances, SQLite as the
//! embedded default. One code path for both: each statement is written once and
//! compiled for each backend by `dispatch!`.

mod callbacks;
mod models;
mod orders;
pub mod raw;
mod retention;
pub mod schema;

use std::path::PathBuf;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use secrecy::{ExposeSecret, SecretString};

pub use callbacks::{CallbackMeta, Processed};
pub use models::{CallbackRow, OrderDetails};
pub use orders::Registration;
pub use raw::RawRequest;
pub use retention::spawn_pruner;

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

/// A database URL fit for a log line: the password is replaced.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            let user = creds.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
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

/// Runs the same diesel expression on whichever backend the connection is.
macro_rules! dispatch {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::store::Conn::Pg($c) => {
                let $c = &mut **$c;
                $body
            }
            $crate::store::Conn::Sqlite($c) => {
                let $c = &mut **$c;
                $body
            }
        }
    };
}
pub(crate) use dispatch;

#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        // WAL lets readers run beside the one writer; writers queue on the busy
        // timeout instead of failing with "database is locked"; FULL sync because
        // an answered OK must survive a power cut.
        conn.batch_execute(
            "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
             PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
        )
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

#[derive(Clone)]
pub struct Store {
    backend: Backend,
}

impl Store {
    /// Opens a pool; `acquire_timeout` bounds how long a request waits for a
    /// connection before it is answered 503.
    pub fn connect(
        config: &DatabaseConfig,
        pool_size: u32,
        acquire_timeout: Duration,
    ) -> Result<Store, StoreError> {
        let backend = match config {
            DatabaseConfig::Postgres { url } => {
                let manager = ConnectionManager::<PgConnection>::new(url.expose_secret());
                Backend::Postgres(
                    Pool::builder()
                        .max_size(pool_size)
                        .min_idle(Some(1))
                        .connection_timeout(acquire_timeout)
                        // No `SELECT 1` round trip before every callback: a dead
                        // connection shows itself on first use and the
                        // transaction is retried on a fresh one (see `transaction`).
                        .test_on_check_out(false)
                        .build(manager)
                        .map_err(|e| StoreError::Unavailable(e.to_string()))?,
                )
            }
            DatabaseConfig::Sqlite { path } => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                let manager =
                    ConnectionManager::<SqliteConnection>::new(path.display().to_string());
                Backend::Sqlite(
                    Pool::builder()
                        .max_size(pool_size)
                        .connection_timeout(acquire_timeout)
                        .connection_customizer(Box::new(SqlitePragmas))
                        .build(manager)
                        .map_err(|e| StoreError::Unavailable(e.to_string()))?,
                )
            }
        };
        Ok(Store { backend })
    }

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
        match &self.backend {
            Backend::Postgres(pool) => {
                let mut c: PgPooled = pool
                    .get()
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                f(Conn::Pg(&mut c))
            }
            Backend::Sqlite(pool) => {
                let mut c: SqlitePooled = pool
                    .get()
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                f(Conn::Sqlite(&mut c))
            }
        }
    }

    /// One transaction: PostgreSQL's default, SQLite's `BEGIN IMMEDIATE` so that
    /// writers queue for the lock up front instead of failing half-way.
    ///
    /// A connection that died while pooled (database restart, network cut) fails
    /// its first statement; the transaction then runs again on a fresh one.
    /// That is safe because every transaction here is idempotent: a retry of a
    /// commit that did land finds its own duplicate guard and answers the same.
    fn transaction<T>(
        &self,
        f: impl Fn(&mut Conn<'_>) -> Result<T, diesel::result::Error>,
    ) -> Result<T, StoreError> {
        const ATTEMPTS: usize = 3;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.with_conn(|conn| match conn {
                Conn::Pg(c) => Ok(c.transaction(|c| f(&mut Conn::Pg(c)))?),
                Conn::Sqlite(c) => Ok(c.immediate_transaction(|c| f(&mut Conn::Sqlite(c)))?),
            });
            match result {
                Err(StoreError::Query(e)) if attempt < ATTEMPTS && connection_lost(&e) => {
                    tracing::debug!(error = %e, attempt, "connection lost; retrying on a fresh one");
                }
                other => return other,
            }
        }
    }

    /// Applies pending migrations; on PostgreSQL under an advisory lock, so
    /// several instances starting together do not race.
    pub fn migrate(&self) -> Result<usize, StoreError> {
        let migration =
            |e: Box<dyn std::error::Error + Send + Sync>| StoreError::Migration(e.to_string());
        self.with_conn(|conn| match conn {
            Conn::Pg(c) => {
                diesel::sql_query(format!("SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
                    .execute(c)?;
                let applied = c.run_pending_migrations(PG_MIGRATIONS).map(|v| v.len());
                diesel::sql_query(format!("SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
                    .execute(c)?;
                applied.map_err(migration)
            }
            Conn::Sqlite(c) => c
                .run_pending_migrations(SQLITE_MIGRATIONS)
                .map(|v| v.len())
                .map_err(migration),
        })
    }

    /// Ready: the database answers and no migration is pending.
    pub fn ready(&self) -> Result<(), StoreError> {
        let pending =
            |e: Box<dyn std::error::Error + Send + Sync>| StoreError::Migration(e.to_string());
        self.with_conn(|conn| {
            let has_pending = match conn {
                Conn::Pg(c) => c.has_pending_migration(PG_MIGRATIONS).map_err(pending)?,
                Conn::Sqlite(c) => c
                    .has_pending_migration(SQLITE_MIGRATIONS)
                    .map_err(pending)?,
            };
            if has_pending {
                Err(StoreError::Migration("migrations pending".into()))
            } else {
                Ok(())
            }
        })
    }
}

fn connection_lost(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    matches!(
        e,
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _
        ) | Error::BrokenTransactionManager
    )
}

pub(crate) fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
