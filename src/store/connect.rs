//! Opening the pools: the session settings every connection gets, and the
//! socket bounds libpq is given, so that no statement, lock wait or stalled
//! network outlives the bound the caller waits for.

use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel::sqlite::SqliteConnection;
use secrecy::ExposeSecret;

use super::conninfo::{self, Form};
use super::redact::{url_secrets, ScrubbedConnectErrors};
use super::{pay, Backend, DatabaseConfig, Store, StoreError};

/// Session settings every PostgreSQL connection gets, so that no statement and
/// no lock wait outlives the bound the HTTP side waits for.
#[derive(Debug)]
pub(super) struct PgSession {
    pub(super) statement_timeout: Duration,
}

impl PgSession {
    pub(super) fn sql(&self) -> String {
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
    let form = Form::of(conninfo);
    let is_url = matches!(form, Form::Uri { .. });
    let params = match form {
        Form::Uri { after_scheme } => conninfo::uri_query(conninfo, after_scheme),
        Form::KeyValue | Form::Neither => conninfo::key_values(conninfo).0,
    };
    let names: Vec<&str> = params.iter().map(|p| &conninfo[p.name.clone()]).collect();
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
                pay_batcher = Some(std::sync::Arc::new(pay::PayBatcher::new(
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
            deadline: None,
        })
    }
}

/// `payhook.sqlite3` is migrated under `payhook.sqlite3.migrate-lock`.
fn sqlite_migration_lock(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".migrate-lock");
    PathBuf::from(name)
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
