//! Links that let a person set a password without one: an invitation
//! (7 days) and a password reset (1 hour). Each carries a random token;
//! only its hash is stored, it is used once, and a new link of the same
//! kind retires the user's earlier ones.

use serde::{Deserialize, Serialize};
use time::Duration;

use super::throttle::ThrottlePolicy;
use crate::jobs::JobPayload;

/// What a link is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    Invitation,
    PasswordReset,
}

impl LinkPurpose {
    /// The `auth_challenges.kind` its tokens are kept under.
    pub fn challenge_kind(self) -> &'static str {
        match self {
            Self::Invitation => "INVITATION",
            Self::PasswordReset => "PASSWORD_RESET",
        }
    }

    /// How long a link works.
    pub fn ttl(self) -> Duration {
        match self {
            Self::Invitation => Duration::days(7),
            Self::PasswordReset => Duration::hours(1),
        }
    }

    /// The page of the portal the link opens.
    pub fn page(self) -> &'static str {
        match self {
            Self::Invitation => "/invitation",
            Self::PasswordReset => "/password-reset",
        }
    }

    /// The link below the portal's URL. The token is in the fragment, so
    /// a browser never sends it to a server (no access log, no Referer).
    pub fn path_with(self, token: &str) -> String {
        format!("{}#token={token}", self.page())
    }
}

/// Reset requests per e-mail address: three, then one an hour (a
/// stranger cannot fill someone's mailbox with reset mail). The request
/// that goes past the allowance is the one that locks: two free, the
/// third locks for the hour after it.
pub const RESET_PER_ADDRESS: ThrottlePolicy = ThrottlePolicy {
    free_failures: 2,
    first_lock: Duration::hours(1),
    max_lock: Duration::hours(1),
    forget_after: Duration::hours(1),
};

/// Reset requests per client address group: ten, then one an hour.
pub const RESET_PER_CLIENT: ThrottlePolicy = ThrottlePolicy {
    free_failures: 9,
    first_lock: Duration::hours(1),
    max_lock: Duration::hours(1),
    forget_after: Duration::hours(1),
};

/// The job that answers a reset request. Every request queues one, known
/// address or not, so the request takes the same time either way; the job
/// finds the account and sends the mail when there is one.
pub const RESET_JOB: &str = "identity.password_reset";

/// The reset job's payload: what the person typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordResetRequest {
    /// The tenant's slug.
    pub tenant: String,
    pub email: String,
    /// The client's address, for the security event.
    pub ip: Option<String>,
}

impl JobPayload for PasswordResetRequest {
    const KIND: &'static str = RESET_JOB;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_the_token_in_the_fragment() {
        assert_eq!(
            LinkPurpose::Invitation.path_with("abc"),
            "/invitation#token=abc"
        );
        assert_eq!(LinkPurpose::PasswordReset.ttl(), Duration::hours(1));
        assert_eq!(LinkPurpose::Invitation.ttl(), Duration::days(7));
        assert_ne!(
            LinkPurpose::Invitation.challenge_kind(),
            LinkPurpose::PasswordReset.challenge_kind()
        );
    }
}
