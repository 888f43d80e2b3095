//! What a driver reports.

/// Why a driver action did not finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DriverError {
    /// Worth retrying later: the service is unreachable, timed out, or
    /// answered 5xx/429.
    #[error("{0}")]
    Transient(String),
    /// Retrying will not help: refused credentials, invalid input, a
    /// configuration the service rejects.
    #[error("{0}")]
    Permanent(String),
    /// Nothing failed, but the work cannot go on yet (the customer has not
    /// proven control of the domain): look again after `retry_in`.
    #[error("{reason}")]
    Waiting {
        reason: String,
        retry_in: time::Duration,
    },
}

impl DriverError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

/// What an idempotent "make it so" action found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    /// It was missing (or different) and now is as asked.
    Created,
    /// It was already there, as asked: nothing was changed.
    AlreadyThere,
}
