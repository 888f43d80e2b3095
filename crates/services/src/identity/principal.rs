//! The authenticated caller of a request.

use mpanel_domain::identity::{Access, Permission, Role};
use mpanel_domain::{ApiTokenId, SessionId, TenantId, UserId};

use crate::ServiceError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub email: String,
    pub access: Access,
    /// The session of a signed-in user.
    pub session_id: Option<SessionId>,
    /// The API token used, if any.
    pub api_token_id: Option<ApiTokenId>,
    /// Signed in without the second factor the policy requires: may only
    /// read itself and enrol one.
    pub restricted: bool,
    /// When a signed-in user last proved who they are (the login, or the
    /// password or a second factor entered again); `None` for API tokens.
    pub authenticated_at: Option<time::OffsetDateTime>,
}

impl Principal {
    pub fn role(&self) -> Role {
        self.access.role
    }

    /// `Forbidden` unless the matrix (and the token's scopes) allow this.
    pub fn require(&self, permission: Permission) -> Result<(), ServiceError> {
        if self.restricted
            && !matches!(
                permission,
                Permission::SelfRead | Permission::SelfMfa | Permission::SelfSecurity
            )
        {
            return Err(ServiceError::MfaEnrollmentRequired);
        }
        if self.access.permits(permission) {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(format!(
                "this needs the {permission} permission, which your role or token does not have"
            )))
        }
    }
}
