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

/// A text column read back as its domain type (a status, a state); text no
/// variant names is a corrupt row, a database error rather than a panic.
pub(crate) fn parse_text<T: std::str::FromStr>(what: &str, text: String) -> Result<T, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Database(sqlx::Error::Decode(format!("{what} {text:?}").into())))
}
