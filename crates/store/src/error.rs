//! Store errors, sorted by what a caller can do about them.

use sqlx::error::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No row matched (within the caller's tenant).
    #[error("not found")]
    NotFound,
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
            sqlx::Error::RowNotFound => Self::NotFound,
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
