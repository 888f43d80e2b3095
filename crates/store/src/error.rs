//! Store errors, sorted by what a caller can do about them.
//!
//! "Not there" is not among them: a keyed read answers `Option` and a
//! change by key answers whether there was a row, so a failing database
//! can never be taken for a missing row (and shown as a 404).

use sqlx::error::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique or foreign-key rule refused the write; names the constraint.
    #[error("conflict with existing data ({0})")]
    Conflict(String),
    /// The database could not be reached or the pool is closed.
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    /// The database URL or an option could not be understood.
    #[error("invalid database configuration: {0}")]
    InvalidConfig(String),
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Database(db) => match db.kind() {
                ErrorKind::UniqueViolation | ErrorKind::ForeignKeyViolation => {
                    Self::Conflict(db.constraint().unwrap_or("unique").to_owned())
                }
                _ if db.code().is_some_and(|c| database_away(&c)) => Self::Unavailable(err),
                _ => Self::Database(err),
            },
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Self::Unavailable(err),
            // Includes `RowNotFound`: only statements that always answer a
            // row (a count, an upsert's RETURNING, a row just written) use
            // `fetch_one`, so its miss is a broken expectation, not a 404.
            _ => Self::Database(err),
        }
    }
}

/// Whether an error code says the database, not the statement, failed, so
/// the same request may succeed later: PostgreSQL shutting down or starting
/// up (class 57P: `admin_shutdown` to a query in flight during a restart,
/// `cannot_connect_now` while it starts), a lost connection (class 08), a
/// full disk (`53100`); SQLite's full disk (`SQLITE_FULL`, 13). These are
/// 503s, not 500s. (SQLite's codes are decimal, PostgreSQL's five
/// characters, so the two never collide.)
pub(crate) fn database_away(code: &str) -> bool {
    code.starts_with("57P") || code.starts_with("08") || code == "53100" || code == "13"
}

/// A text column read back as its domain type (a status, a state); text no
/// variant names is a corrupt row, a database error rather than a panic.
pub(crate) fn parse_text<T: std::str::FromStr>(what: &str, text: String) -> Result<T, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Database(sqlx::Error::Decode(format!("{what} {text:?}").into())))
}

#[cfg(test)]
mod tests {
    use super::database_away;

    #[test]
    fn restarts_lost_connections_and_full_disks_are_unavailability() {
        for code in ["57P01", "57P02", "57P03", "08006", "08001", "53100", "13"] {
            assert!(database_away(code), "{code}");
        }
    }

    #[test]
    fn statement_errors_are_not() {
        // syntax, serialization failure, statement timeout, SQLite's busy
        // and constraint codes
        for code in ["42601", "40001", "57014", "5", "1", "2067", "1555"] {
            assert!(!database_away(code), "{code}");
        }
    }
}
