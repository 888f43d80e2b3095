//! Turning a bearer token into a [`Principal`]: an API token (`mpt_…`) or
//! an access token (JWT). Every request re-reads the session or token and
//! its user, so revocation and disabling take effect at once.

use mpanel_domain::Clock;
use mpanel_domain::identity::Access;
use mpanel_domain::identity::api_token::{self, hash_secret};
use mpanel_store::{Store, UserStatus};

use super::{AccessTokens, Principal};
use crate::ServiceError;

pub async fn authenticate(
    store: &Store,
    clock: &dyn Clock,
    tokens: &AccessTokens,
    bearer: &str,
) -> Result<Principal, ServiceError> {
    let now = clock.now();
    if bearer.starts_with(api_token::PREFIX) {
        let refused =
            || ServiceError::Unauthenticated("the API token is invalid, expired or revoked".into());
        if !api_token::is_well_formed(bearer) {
            return Err(refused());
        }
        let Some(found) = store.api_token_by_hash(&hash_secret(bearer)).await? else {
            return Err(refused());
        };
        let t = &found.token;
        let expired = t.expires_at.is_some_and(|e| now >= e);
        if t.revoked_at.is_some() || expired || found.user_status != UserStatus::Active {
            return Err(refused());
        }
        store.touch_api_token(t.id, now).await?;
        return Ok(Principal {
            tenant_id: t.tenant_id,
            user_id: t.user_id,
            email: found.email.clone(),
            access: Access {
                role: found.role,
                scopes: Some(t.scopes.clone()),
            },
            session_id: None,
            api_token_id: Some(t.id),
        });
    }
    let claims = tokens.verify(bearer, now)?;
    let ended = || ServiceError::Unauthenticated("the session has ended".into());
    let auth = store
        .session_auth(claims.tenant_id, claims.user_id, claims.session_id)
        .await?
        .ok_or_else(ended)?;
    if auth.revoked || now >= auth.expires_at || auth.user_status != UserStatus::Active {
        return Err(ended());
    }
    Ok(Principal {
        tenant_id: claims.tenant_id,
        user_id: claims.user_id,
        email: auth.email,
        access: Access {
            role: auth.role,
            scopes: None,
        },
        session_id: Some(claims.session_id),
        api_token_id: None,
    })
}
