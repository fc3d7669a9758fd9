//! Which failures mean "this connection is no use any more: drop it and run
//! the work again on another one".
//!
//! Two kinds: a connection that died while pooled (database restart, network
//! cut), and one that reaches a server which no longer takes writes. The second
//! happens after a failover: a connection opened to the old primary, or through
//! a proxy that still routes there, gets SQLSTATE 25006 (read-only
//! transaction) on its first write. The server is fine and the connection
//! healthy, so the pool would keep handing it out; it is marked broken
//! instead, and a new connection (libpq's `target_session_attrs=read-write`)
//! finds the primary (`docs/ha.md`).

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::pg::PgConnection;
use diesel::result::{DatabaseErrorKind, Error};

/// The work may run again on a fresh connection: it failed on this one alone.
pub(super) fn retry_elsewhere(e: &Error) -> bool {
    connection_lost(e) || read_only_server(e)
}

/// After a failed statement: a connection to a server that takes no writes is
/// marked broken, so that the pool drops it when it comes back.
pub(super) fn discard_if_read_only(conn: &mut PgConnection, e: &Error) {
    if read_only_server(e) {
        tracing::warn!(
            "the database server takes no writes (no longer the primary?); reconnecting"
        );
        AnsiTransactionManager::transaction_manager_status_mut(conn).set_in_error();
    }
}

fn connection_lost(e: &Error) -> bool {
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

/// SQLSTATE 25006: a write on a standby, or on a server set read-only.
fn read_only_server(e: &Error) -> bool {
    match e {
        Error::DatabaseError(DatabaseErrorKind::ReadOnlyTransaction, _) => true,
        Error::RollbackErrorOnCommit { commit_error, .. } => read_only_server(commit_error),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Info(&'static str);
    impl diesel::result::DatabaseErrorInformation for Info {
        fn message(&self) -> &str {
            self.0
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            None
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            None
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    fn db(kind: DatabaseErrorKind) -> Error {
        Error::DatabaseError(kind, Box::new(Info("x")))
    }

    #[test]
    fn lost_and_read_only_connections_are_retried_elsewhere_and_nothing_else() {
        assert!(retry_elsewhere(&db(DatabaseErrorKind::ClosedConnection)));
        assert!(retry_elsewhere(&db(DatabaseErrorKind::ReadOnlyTransaction)));
        assert!(retry_elsewhere(&Error::BrokenTransactionManager));
        assert!(!retry_elsewhere(&db(DatabaseErrorKind::UniqueViolation)));
        assert!(!retry_elsewhere(&db(DatabaseErrorKind::CheckViolation)));
        assert!(!retry_elsewhere(&Error::NotFound));
    }
}
