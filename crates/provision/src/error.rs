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

/// The one place a driver's outcome becomes a job's: a transient failure
/// is retried with back-off, a permanent one makes the job dead, and a
/// wait defers it without spending an attempt.
impl From<DriverError> for mpanel_jobs::JobError {
    fn from(e: DriverError) -> Self {
        match e {
            DriverError::Transient(m) => Self::Retry(m),
            DriverError::Permanent(m) => Self::Permanent(m),
            DriverError::Waiting { reason, retry_in } => Self::Wait { reason, retry_in },
        }
    }
}
