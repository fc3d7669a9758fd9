//! Persistence: PostgreSQL for production and several instances, SQLite as the
//! embedded default. One code path for both: each statement is written once and
//! compiled for each backend by `dispatch!`.

mod callbacks;
mod console;
mod journal;
mod models;
mod orders;
mod outbox;
mod pay_batch;
pub mod raw;
mod retention;
pub mod schema;

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use secrecy::{ExposeSecret, SecretString};

pub use callbacks::{CallbackMeta, Processed, Step};
pub use console::{FlagRow, FormClaim, FormDone, FormResult, Overview};
pub use journal::{JournalEntry, JournalFilter, PruneCount};
pub use models::{rfc3339, CallbackRow, OrderDetails};
pub use orders::{Expected, Registration};
pub use outbox::{
    AfterAttempt, Attempt, AttemptRow, Backlog, EventFilter, EventRow, EventState, FeedPage,
};
pub use raw::{RawRequest, Signed};
pub use retention::{spawn_pruner, Pruned};

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

/// A database URL fit for a log line: every password is replaced, whichever
/// form libpq reads it from: the user-info (`postgres://u:pw@h/db`), a query
/// parameter (`?password=pw`, `sslpassword=`), or a key=value connection string
/// (`host=h password=pw dbname=d`, quoted or not).
pub fn redact_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut at = 0;
    for range in password_ranges(url) {
        out.push_str(&url[at..range.start]);
        out.push_str("***");
        at = range.end;
    }
    out.push_str(&url[at..]);
    out
}

/// The passwords a URL holds, as written and as decoded, so a message that
/// quotes one back (libpq does, for a malformed URL) can be scrubbed.
pub fn url_secrets(url: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    for range in password_ranges(url) {
        let raw = &url[range];
        secrets.push(raw.to_string());
        secrets.push(
            percent_encoding::percent_decode_str(raw)
                .decode_utf8_lossy()
                .into_owned(),
        );
        if let Some(quoted) = raw.strip_prefix('\'') {
            let inner = quoted.strip_suffix('\'').unwrap_or(quoted);
            secrets.push(inner.to_string());
            secrets.push(inner.replace("\\'", "'").replace("\\\\", "\\"));
        }
    }
    secrets.retain(|s| !s.is_empty());
    secrets.sort();
    secrets.dedup();
    secrets
}

/// r2d2 logs every failed connection attempt, and libpq's message can quote a
/// malformed connection string back, password included: scrubbed first.
#[derive(Debug)]
struct ScrubbedConnectErrors(Vec<String>);

impl diesel::r2d2::HandleError<diesel::r2d2::Error> for ScrubbedConnectErrors {
    fn handle_error(&self, error: diesel::r2d2::Error) {
        let mut message = error.to_string();
        let mut secrets: Vec<&String> = self.0.iter().collect();
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        for secret in secrets {
            message = message.replace(secret.as_str(), "***");
        }
        tracing::error!(error = %message.trim_end(), "database connection failed");
    }
}

/// Sorted, disjoint byte ranges of `url` that hold a password.
fn password_ranges(url: &str) -> Vec<std::ops::Range<usize>> {
    // A URI only when it starts with a scheme: a key=value string whose
    // password happens to hold `://` is still a key=value string.
    let scheme = url.find("://").filter(|&end| {
        end > 0
            && url[..end]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+.-".contains(&b))
    });
    let mut ranges = match scheme {
        Some(scheme) => uri_password_ranges(url, scheme + 3),
        None if url.contains('=') => conninfo_password_ranges(url),
        None => Vec::new(),
    };
    ranges.retain(|r| !r.is_empty());
    ranges.sort_by_key(|r| r.start);
    let mut merged: Vec<std::ops::Range<usize>> = Vec::new();
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

fn uri_password_ranges(url: &str, start: usize) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let rest = &url[start..];
    // The last '@' ends the user-info: a password may hold '@', '/' or '?'
    // unencoded (libpq then fails, and may quote it). An '@' in the query only
    // widens what is hidden.
    if let Some(at) = rest.rfind('@') {
        if let Some(colon) = rest[..at].find(':') {
            ranges.push(start + colon + 1..start + at);
        }
    }
    // Every parameter after the first '?' whose name mentions a password; the
    // first '?' may sit inside the user-info, which only joins names.
    if let Some(q) = rest.find('?') {
        let mut pos = start + q + 1;
        let end = url[pos..].find('#').map_or(url.len(), |h| pos + h);
        for param in url[pos..end].split('&') {
            if let Some(eq) = param.find('=') {
                let name = percent_encoding::percent_decode_str(&param[..eq])
                    .decode_utf8_lossy()
                    .to_ascii_lowercase();
                if name.contains("password") {
                    ranges.push(pos + eq + 1..pos + param.len());
                }
            }
            pos += param.len() + 1;
        }
    }
    ranges
}

/// libpq's `keyword = value` syntax: values bare (backslash escapes) or in
/// single quotes. Anything that does not parse is hidden from there on.
fn conninfo_password_ranges(s: &str) -> Vec<std::ops::Range<usize>> {
    let b = s.as_bytes();
    let skip_space = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    let mut ranges = Vec::new();
    let mut i = skip_space(0);
    while i < b.len() {
        let key_start = i;
        while i < b.len() && b[i] != b'=' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = s[key_start..i].to_ascii_lowercase();
        i = skip_space(i);
        if i >= b.len() || b[i] != b'=' {
            ranges.push(key_start..b.len());
            break;
        }
        i = skip_space(i + 1);
        let value_start = i;
        if i < b.len() && b[i] == b'\'' {
            i += 1;
            while i < b.len() {
                match b[i] {
                    b'\\' => i += 2,
                    b'\'' => {
                        i += 1;
                        break;
                    }
                    _ => i += 1,
                }
            }
        } else {
            while i < b.len() && !b[i].is_ascii_whitespace() {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
        }
        i = i.min(b.len());
        // A backslash before a multi-byte character can leave `i` inside it.
        while !s.is_char_boundary(i) {
            i += 1;
        }
        if key.contains("password") {
            ranges.push(value_start..i);
        }
        i = skip_space(i);
    }
    ranges
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

/// Session settings every PostgreSQL connection gets, so that no statement and
/// no lock wait outlives the bound the HTTP side waits for.
#[derive(Debug)]
struct PgSession {
    statement_timeout: Duration,
}

impl PgSession {
    fn sql(&self) -> String {
        let ms = self.statement_timeout.as_millis();
        // A client that vanished mid-transaction (its thread stuck on a stalled
        // network) must not keep the order rows it locked.
        format!(
            "SET statement_timeout = {ms}; SET lock_timeout = {ms}; \
             SET idle_in_transaction_session_timeout = {ms};"
        )
    }
}

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for PgSession {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(&self.sql())
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

#[derive(Debug)]
struct SqlitePragmas {
    busy_timeout: Duration,
}

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        // WAL lets readers run beside the one writer; writers queue on the busy
        // timeout (the statement bound) instead of failing with "database is
        // locked"; FULL sync because an answered OK must survive a power cut.
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
             PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
            self.busy_timeout.as_millis()
        ))
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// libpq's own socket bounds, added to the connection string unless it names
/// them already: a server that stops answering cannot hold a connect forever
/// (`connect_timeout`), nor a write that is never acknowledged
/// (`tcp_user_timeout`), nor an idle pooled connection whose peer is gone
/// (keepalives).
fn with_socket_bounds(conninfo: &str, bound: Duration) -> String {
    let secs = bound.as_secs().max(1);
    let options = [
        ("connect_timeout", secs.max(2).to_string()),
        ("keepalives", "1".to_string()),
        ("keepalives_idle", secs.to_string()),
        ("keepalives_interval", "1".to_string()),
        ("keepalives_count", "3".to_string()),
        ("tcp_user_timeout", bound.as_millis().max(1).to_string()),
    ];
    let is_url = conninfo.starts_with("postgres://") || conninfo.starts_with("postgresql://");
    let names: Vec<&str> = if is_url {
        conninfo
            .split_once('?')
            .map(|(_, query)| {
                query
                    .split('&')
                    .filter_map(|p| p.split('=').next())
                    .collect()
            })
            .unwrap_or_default()
    } else {
        conninfo
            .split_whitespace()
            .filter_map(|p| p.split('=').next())
            .collect()
    };
    let mut out = conninfo.to_string();
    for (name, value) in options {
        if names.iter().any(|n| n.trim() == name) {
            continue;
        }
        let separator = match (is_url, out.contains('?')) {
            (true, false) => "?",
            (true, true) if out.ends_with(['?', '&']) => "",
            (true, true) => "&",
            (false, _) => " ",
        };
        out.push_str(&format!("{separator}{name}={value}"));
    }
    out
}

thread_local! {
    /// When whoever waits for this thread's database work stops waiting (set by
    /// [`Store::bounded`]).
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Clears the thread's deadline when the bounded work ends, also on a panic.
struct DeadlineScope;

impl DeadlineScope {
    fn enter(deadline: Instant) -> DeadlineScope {
        DEADLINE.with(|d| d.set(Some(deadline)));
        DeadlineScope
    }
}

impl Drop for DeadlineScope {
    fn drop(&mut self) {
        DEADLINE.with(|d| d.set(None));
    }
}

fn deadline() -> Option<Instant> {
    DEADLINE.with(Cell::get)
}

#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// PostgreSQL only: first deliveries of paid callbacks, written in batches.
    pay_batcher: Option<std::sync::Arc<pay_batch::PayBatcher>>,
    statement_timeout: Duration,
    acquire_timeout: Duration,
    /// SQLite only: the file locked while migrating, beside the database.
    migration_lock: Option<PathBuf>,
}

impl Store {
    /// Opens a pool; `acquire_timeout` bounds how long a request waits for a
    /// connection before it is answered 503, `statement_timeout` every other
    /// wait on the database (statement, lock, socket).
    pub fn connect(
        config: &DatabaseConfig,
        pool_size: u32,
        acquire_timeout: Duration,
        statement_timeout: Duration,
    ) -> Result<Store, StoreError> {
        let mut migration_lock = None;
        let mut pay_batcher = None;
        let backend = match config {
            DatabaseConfig::Postgres { url } => {
                let manager = ConnectionManager::<PgConnection>::new(with_socket_bounds(
                    url.expose_secret(),
                    statement_timeout,
                ));
                let pool = Pool::builder()
                    .error_handler(Box::new(ScrubbedConnectErrors(url_secrets(
                        url.expose_secret(),
                    ))))
                    .max_size(pool_size)
                    .min_idle(Some(1))
                    .connection_timeout(acquire_timeout)
                    // No `SELECT 1` round trip before every callback: a dead
                    // connection shows itself on first use and the
                    // transaction is retried on a fresh one (see `transaction`).
                    .test_on_check_out(false)
                    .connection_customizer(Box::new(PgSession { statement_timeout }))
                    .build(manager)
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                pay_batcher = Some(std::sync::Arc::new(pay_batch::PayBatcher::new(
                    pool.clone(),
                    pay_writers(pool_size),
                    acquire_timeout,
                )));
                Backend::Postgres(pool)
            }
            DatabaseConfig::Sqlite { path } => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                migration_lock = Some(sqlite_migration_lock(path));
                let manager =
                    ConnectionManager::<SqliteConnection>::new(path.display().to_string());
                Backend::Sqlite(
                    Pool::builder()
                        .max_size(pool_size)
                        .connection_timeout(acquire_timeout)
                        .connection_customizer(Box::new(SqlitePragmas {
                            busy_timeout: statement_timeout,
                        }))
                        .build(manager)
                        .map_err(|e| StoreError::Unavailable(e.to_string()))?,
                )
            }
        };
        Ok(Store {
            backend,
            pay_batcher,
            statement_timeout,
            acquire_timeout,
            migration_lock,
        })
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Postgres(_) => "postgres",
            Backend::Sqlite(_) => "sqlite",
        }
    }

    /// Runs blocking database work on the blocking pool and waits for it at
    /// most the statement bound. A stalled network never delivers the
    /// server's own timeout, so this is the bound the caller can rely on: past
    /// it the answer is `TimedOut`, and the work, still running on its thread,
    /// rolls back instead of committing (see `transaction`), so that what is
    /// stored matches what was answered.
    pub async fn bounded<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let bound = self.statement_timeout;
        let deadline = Instant::now() + bound;
        let task = tokio::task::spawn_blocking(move || {
            let _scope = DeadlineScope::enter(deadline);
            work()
        });
        match tokio::time::timeout_at(deadline.into(), task).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => Err(StoreError::Unavailable(e.to_string())),
            Err(_) => Err(StoreError::TimedOut(bound)),
        }
    }

    /// How long a pooled connection may be waited for: the pool's own bound,
    /// cut short by the caller's deadline.
    fn acquire_within(&self) -> Result<Duration, StoreError> {
        match deadline() {
            None => Ok(self.acquire_timeout),
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Ok(left.min(self.acquire_timeout)),
                _ => Err(StoreError::TimedOut(self.statement_timeout)),
            },
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
                f(Conn::Pg(&mut c))
            }
            Backend::Sqlite(pool) => {
                let mut c: SqlitePooled = pool
                    .get_timeout(wait)
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                f(Conn::Sqlite(&mut c))
            }
        }
    }

    /// The last moment work may commit: the caller's deadline, less the tenth
    /// of the bound left for the commit's own round trip. `None` when no
    /// caller is waiting on a bound.
    fn commit_by(&self) -> Option<Instant> {
        deadline().map(|d| d.checked_sub(self.statement_timeout / 10).unwrap_or(d))
    }

    /// Refuses to commit work whose caller has (nearly) stopped waiting: a
    /// COMMIT sent now could land after the caller answered 503.
    fn still_awaited(&self) -> Result<(), StoreError> {
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
    fn commit_by_millis(&self) -> Option<i64> {
        let left = self.commit_by()?.saturating_duration_since(Instant::now());
        Some(now_millis() + i64::try_from(left.as_millis()).unwrap_or(i64::MAX / 2))
    }

    /// One transaction: PostgreSQL's default, SQLite's `BEGIN IMMEDIATE` so that
    /// writers queue for the lock up front instead of failing half-way.
    ///
    /// A connection that died while pooled (database restart, network cut) fails
    /// its first statement; the transaction then runs again on a fresh one. The
    /// pool may hold nothing but dead connections after a restart, and each
    /// failure discards one, so pool size + 1 attempts always reach a fresh one.
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
                Err(StoreError::Query(e)) if attempt < attempts && connection_lost(&e) => {
                    tracing::debug!(error = %e, attempt, "connection lost; retrying on a fresh one");
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

/// `payhook.sqlite3` is migrated under `payhook.sqlite3.migrate-lock`.
fn sqlite_migration_lock(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".migrate-lock");
    PathBuf::from(name)
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

fn connection_lost(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        )
        | Error::BrokenTransactionManager => true,
        // The COMMIT failed on a lost connection and so did the rollback after it.
        Error::RollbackErrorOnCommit { commit_error, .. } => connection_lost(commit_error),
        _ => false,
    }
}

/// How many payment writers (batches of first paid deliveries in flight at
/// once): one per 8 connections, 1 to 4. Fewer writers make bigger batches,
/// and a batch's cost per callback falls with its size; a second writer sends
/// its batch while the first waits for its commit to reach the disk, which
/// is what bounds one writer when the disk is slow. With the default pool of
/// 16 on two cores, two did best or nearly in alternating runs
/// (`docs/performance.md`).
fn pay_writers(pool_size: u32) -> usize {
    (pool_size as usize).div_ceil(8).clamp(1, 4)
}

pub(crate) fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_bounds_are_added_to_every_connection_string_form() {
        let bound = Duration::from_millis(5_000);
        let all = "connect_timeout=5&keepalives=1&keepalives_idle=5&keepalives_interval=1\
                   &keepalives_count=3&tcp_user_timeout=5000";
        assert_eq!(
            with_socket_bounds("postgres://u@h/db", bound),
            format!("postgres://u@h/db?{all}")
        );
        assert_eq!(
            with_socket_bounds("postgresql://u@h/db?sslmode=require", bound),
            format!("postgresql://u@h/db?sslmode=require&{all}")
        );
        assert_eq!(
            with_socket_bounds("postgres://u@h/db?", bound),
            format!("postgres://u@h/db?{all}")
        );
        assert_eq!(
            with_socket_bounds("host=h dbname=db", bound),
            format!("host=h dbname=db {}", all.replace('&', " "))
        );
    }

    #[test]
    fn socket_bounds_the_operator_set_are_kept() {
        let url = with_socket_bounds(
            "postgres://h/db?tcp_user_timeout=100&connect_timeout=30",
            Duration::from_secs(5),
        );
        assert_eq!(url.matches("tcp_user_timeout=").count(), 1);
        assert_eq!(url.matches("connect_timeout=").count(), 1);
        assert!(url.contains("connect_timeout=30"));
        let short = with_socket_bounds("host=h", Duration::from_millis(300));
        assert!(short.contains("connect_timeout=2 "), "{short}");
        assert!(short.contains("tcp_user_timeout=300"), "{short}");
    }

    #[test]
    fn the_migration_lock_is_a_file_beside_the_database() {
        assert_eq!(
            sqlite_migration_lock(Path::new("/data/payhook.sqlite3")),
            PathBuf::from("/data/payhook.sqlite3.migrate-lock")
        );
    }
}

#[cfg(test)]
mod redact_tests {
    use super::{redact_url, url_secrets};
    use proptest::prelude::*;

    #[test]
    fn every_database_url_form_loses_its_password() {
        let cases = [
            ("postgres://u:hunter2@h/db", "postgres://u:***@h/db"),
            (
                "postgresql://u:hun@ter2@h:5432/db",
                "postgresql://u:***@h:5432/db",
            ),
            (
                "postgres://h/db?user=u&password=hunter2",
                "postgres://h/db?user=u&password=***",
            ),
            (
                "postgres://h/db?sslmode=require&password=hunter2&application_name=x",
                "postgres://h/db?sslmode=require&password=***&application_name=x",
            ),
            (
                "postgres://h/db?PassWord=hunter2#frag",
                "postgres://h/db?PassWord=***#frag",
            ),
            (
                "postgres://h/db?%70assword=hunter2",
                "postgres://h/db?%70assword=***",
            ),
            (
                "postgres://u:hunter2@h/db?sslpassword=hunter3",
                "postgres://u:***@h/db?sslpassword=***",
            ),
            (
                "host=h password=hunter2 dbname=d",
                "host=h password=*** dbname=d",
            ),
            // Found by the property test below: `://` inside a key=value
            // password does not make the string a URI.
            (
                "host=db.internal password='0A0A://0' dbname=payhook",
                "host=db.internal password=*** dbname=payhook",
            ),
            (
                "host=h password = 'hun ter\\'2' dbname=d",
                "host=h password = *** dbname=d",
            ),
            ("password=hunter2", "password=***"),
            ("host=h sslpassword=hunter2", "host=h sslpassword=***"),
            ("host=h oops password hunter2", "host=h ***"),
            ("postgres://h/db", "postgres://h/db"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            (
                "host=/run/postgresql dbname=d",
                "host=/run/postgresql dbname=d",
            ),
        ];
        for (url, redacted) in cases {
            assert_eq!(redact_url(url), redacted, "{url}");
            for secret in ["hunter", "ter2", "hunter3"] {
                assert!(!redact_url(url).contains(secret), "{url}");
            }
        }
    }

    #[test]
    fn secrets_are_listed_as_written_and_decoded() {
        let secrets = url_secrets("postgres://u:p%40ss@h/db?password=x%2Fy");
        for s in ["p%40ss", "p@ss", "x%2Fy", "x/y"] {
            assert!(secrets.contains(&s.to_string()), "{s}: {secrets:?}");
        }
        let secrets = url_secrets("host=h password='a b\\'c'");
        assert!(secrets.contains(&"a b'c".to_string()), "{secrets:?}");
    }

    fn conninfo_quote(password: &str) -> String {
        format!("'{}'", password.replace('\\', "\\\\").replace('\'', "\\'"))
    }

    proptest! {
        #[test]
        fn no_form_shows_the_password(password in "[A-Za-z0-9!$%^*()_+:;,.@/?' \\\\-]{8,24}") {
            prop_assume!(!password.trim().is_empty());
            let encoded = percent_encoding::utf8_percent_encode(
                &password,
                percent_encoding::NON_ALPHANUMERIC,
            )
            .to_string();
            let forms = [
                format!("postgres://payhook:{password}@db.internal:5432/payhook"),
                format!("postgres://payhook:{encoded}@db.internal/payhook?sslmode=require"),
                format!("postgres://db.internal/payhook?user=payhook&password={encoded}"),
                format!("host=db.internal password={} dbname=payhook", conninfo_quote(&password)),
                format!("host=db.internal password = {} user=payhook", conninfo_quote(&password)),
            ];
            for url in forms {
                let shown = redact_url(&url);
                prop_assert!(!shown.contains(&password), "{} -> {}", url, shown);
                prop_assert!(!shown.contains(&encoded), "{} -> {}", url, shown);
                prop_assert!(shown.contains("db.internal"), "{} -> {}", url, shown);
            }
        }
    }
}
