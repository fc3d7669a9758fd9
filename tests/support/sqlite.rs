//! Migrated SQLite databases for integration tests.
//!
//! Migrating costs more than copying a file, so each process migrates one
//! database once, keeps its bytes, and every [`migrated_database`] is a copy.
//! The service's start-up still runs its migrations and finds none pending;
//! the tests of migrating itself start from a path with no file.

use std::path::Path;
use std::sync::OnceLock;

use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// The service's SQLite migrations, the same folder its binary embeds.
const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Writes a database with every migration applied to `path` (a file that
/// does not exist yet) and returns its `sqlite:` URL.
pub fn migrated_database(path: &Path) -> String {
    static TEMPLATE: OnceLock<Result<Vec<u8>, String>> = OnceLock::new();
    let template = match TEMPLATE.get_or_init(migrate_template) {
        Ok(bytes) => bytes,
        Err(msg) => panic!("cannot build the migrated SQLite template: {msg}"),
    };
    std::fs::write(path, template)
        .unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
    format!("sqlite:{}", path.display())
}

/// A connection of the test's own to the database at `url` (`sqlite:` and a
/// path) that waits for the write lock as the service's connections do: a
/// running service's background writers hold it for a moment, and so does
/// one that stops (the last connection to close checkpoints the WAL).
pub fn connect(url: &str) -> SqliteConnection {
    let path = url.trim_start_matches("sqlite:");
    let mut conn =
        SqliteConnection::establish(path).unwrap_or_else(|err| panic!("cannot open {path}: {err}"));
    conn.batch_execute("PRAGMA busy_timeout = 10000")
        .unwrap_or_else(|err| panic!("{path}: busy_timeout: {err}"));
    conn
}

/// Migrates a new file and returns its bytes; the connection is closed first,
/// so the file holds everything (no journal beside it).
fn migrate_template() -> Result<Vec<u8>, String> {
    let dir = tempfile::tempdir().map_err(|err| format!("temp dir: {err}"))?;
    let path = dir.path().join("template.sqlite3");
    {
        let mut conn = SqliteConnection::establish(&path.display().to_string())
            .map_err(|err| format!("{}: {err}", path.display()))?;
        conn.run_pending_migrations(MIGRATIONS)
            .map_err(|err| format!("migrating {}: {err}", path.display()))?;
    }
    std::fs::read(&path).map_err(|err| format!("{}: {err}", path.display()))
}
