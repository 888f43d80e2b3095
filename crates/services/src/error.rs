//! Why a use case refused or failed. Each variant maps to one HTTP status
//! and problem code in the API.

use mpanel_domain::TenantRuleError;
use mpanel_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The input breaks a rule; nothing was changed.
    #[error("invalid {field}: {message}")]
    Invalid {
        field: std::borrow::Cow<'static, str>,
        message: String,
    },
    /// The input breaks a rule with a name of its own (`reason`, stable,
    /// for programs: e.g. `certificate_expired`); nothing was changed.
    #[error("invalid {field}: {message}")]
    Refused {
        field: &'static str,
        reason: &'static str,
        message: String,
    },
    /// The change conflicts with existing data or state; nothing was changed.
    #[error("{0}")]
    Conflict(String),
    /// A state change that is not allowed from where the thing stands.
    #[error("{what} is {from}; it cannot become {to} (allowed: {})", allowed.join(", "))]
    Transition {
        what: &'static str,
        from: &'static str,
        to: &'static str,
        allowed: Vec<&'static str>,
    },
    /// No such thing for this caller (another tenant's rows included).
    #[error("{0}")]
    NotFound(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// No valid credentials: missing, expired, revoked or forged.
    #[error("{0}")]
    Unauthenticated(String),
    /// Wrong e-mail, password or tenant (never says which).
    #[error("the e-mail address or password is wrong")]
    InvalidCredentials,
    /// Right password, but the account is disabled.
    #[error("this account is disabled")]
    AccountDisabled,
    /// The tenant is suspended by the platform: no sign-ins, no orders.
    #[error("this tenant is suspended")]
    TenantSuspended,
    /// The policy requires a second factor and this session has none yet.
    #[error("enrol a second factor first")]
    MfaEnrollmentRequired,
    /// A sensitive change, and the user has not proved who they are within
    /// the last few minutes (or the caller is an API token).
    #[error("re-enter your password first")]
    ReauthenticationRequired,
    /// Too many failed logins; try again after this many seconds.
    #[error("too many failed logins; try again in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    /// Something this depends on is not there yet; the caller may retry.
    #[error("{0}")]
    Unavailable(String),
    /// Too much at once (password hashing is saturated); try again shortly.
    #[error("the server is busy")]
    Busy,
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A failure that is ours (hashing, signing, a stored value we cannot
    /// read), with its causes; logged, never shown to a client. The causes
    /// are in the text (`{0:#}`: "what failed: why: why"), since that text
    /// is what the API's log, a job's `last_error` and the CLI show; so
    /// `source()` is not set, or the chain would be told twice.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

impl ServiceError {
    /// Our failure while doing `doing`, caused by `source` (kept, with its
    /// own causes).
    pub fn internal<E>(doing: impl Into<String>, source: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        Self::Internal(anyhow::Error::new(source).context(doing.into()))
    }

    /// Our failure with no error beneath it (a broken invariant, a missing
    /// setting).
    pub fn internal_msg(message: impl Into<String>) -> Self {
        Self::Internal(anyhow::Error::msg(message.into()))
    }

    pub fn invalid(
        field: impl Into<std::borrow::Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The one not-found rule for a keyed lookup that answers `Option`:
    /// `store.invoice(t, id).await?.ok_or_else(ServiceError::missing("invoice"))`
    /// is a 404 for a miss (or another tenant's row), while a store
    /// failure stays what it is (never a 404). A change by key answers
    /// whether there was a row: `.then_some(()).ok_or_else(missing(..))`.
    /// A row named by the request body is bad input instead:
    /// `.ok_or_else(|| ServiceError::invalid("customer_id", "no such customer"))`.
    pub fn missing(what: &str) -> impl FnOnce() -> Self + '_ {
        move || Self::NotFound(format!("no such {what}"))
    }
}

/// A secret at rest that cannot be sealed or opened is our failure (a wrong
/// `secrets_key`, or a value moved from another row); the message names no
/// value.
impl From<mpanel_store::secret_box::SealError> for ServiceError {
    fn from(err: mpanel_store::secret_box::SealError) -> Self {
        Self::Internal(anyhow::Error::new(err))
    }
}

impl From<TenantRuleError> for ServiceError {
    fn from(err: TenantRuleError) -> Self {
        let message = err.to_string();
        let message = message
            .strip_prefix(&format!("{}: ", err.field()))
            .unwrap_or(&message)
            .to_owned();
        Self::Invalid {
            field: err.field().into(),
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_miss_is_not_found_and_names_what() {
        let none: Option<u8> = None;
        let err = none
            .ok_or_else(ServiceError::missing("invoice"))
            .unwrap_err();
        assert!(
            matches!(&err, ServiceError::NotFound(m) if m == "no such invoice"),
            "{err:?}"
        );
    }

    #[test]
    fn an_internal_error_keeps_its_cause_and_tells_the_chain_once() {
        let cause = serde_json::from_str::<u32>("x").unwrap_err();
        let err = ServiceError::internal("billing settings", cause);
        let ServiceError::Internal(inner) = &err else {
            panic!("not internal: {err:?}");
        };
        assert!(
            inner
                .chain()
                .nth(1)
                .is_some_and(|c| c.is::<serde_json::Error>())
        );
        let text = err.to_string();
        assert!(
            text.starts_with("internal error: billing settings: expected value"),
            "{text}"
        );
        assert_eq!(text.matches("billing settings").count(), 1);
        assert!(
            std::error::Error::source(&err).is_none(),
            "the text has the chain"
        );
    }
}
