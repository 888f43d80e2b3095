//! Why a use case refused or failed.

use mpanel_domain::TenantRuleError;
use mpanel_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The input breaks a rule; nothing was changed.
    #[error("invalid {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The change conflicts with existing data; nothing was changed.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<TenantRuleError> for ServiceError {
    fn from(err: TenantRuleError) -> Self {
        let message = err.to_string();
        let message = message
            .strip_prefix(&format!("{}: ", err.field()))
            .unwrap_or(&message)
            .to_owned();
        Self::Invalid {
            field: err.field(),
            message,
        }
    }
}
