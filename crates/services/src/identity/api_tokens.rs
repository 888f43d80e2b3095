//! A user's API tokens: created with scopes their role allows (and, when
//! made with a token, no more than that token's scopes), shown once,
//! stored as a hash, revocable.

use mpanel_domain::ApiTokenId;
use mpanel_domain::identity::api_token::{self, DISPLAY_CHARS, hash_secret};
use mpanel_domain::identity::{Scope, ScopeSet};
use mpanel_store::identity::api_tokens::ApiTokenRecord;
use mpanel_store::identity::security_events::SecurityEvent;
use serde_json::json;
use time::OffsetDateTime;

use super::{Principal, record_event_in, secrets};
use crate::actor::Change;
use crate::{Context, ServiceError};

#[derive(Debug, Clone)]
pub struct NewApiToken {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<OffsetDateTime>,
}

/// A created token: the secret is in `token`, shown this once.
#[derive(Debug, Clone)]
pub struct CreatedApiToken {
    pub token: String,
    pub record: ApiTokenRecord,
}

/// The token's trimmed name, once its scopes are ones the caller may
/// grant: its role allows them and, for a token making a token, the
/// token holds them itself.
fn check_request<'a>(who: &Principal, input: &'a NewApiToken) -> Result<&'a str, ServiceError> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ServiceError::invalid(
            "name",
            "must be 1 to 100 characters long",
        ));
    }
    if input.scopes.is_empty() {
        return Err(ServiceError::invalid("scopes", "name at least one scope"));
    }
    for scope in &input.scopes {
        if !scope.grantable_by(who.role()) {
            return Err(ServiceError::Forbidden(format!(
                "a {} may not create a token with the {} scope",
                who.role(),
                scope.as_str()
            )));
        }
        if let Some(own) = &who.access.scopes
            && !own.contains(*scope)
        {
            return Err(ServiceError::Forbidden(format!(
                "this token lacks the {} scope, so it cannot grant it",
                scope.as_str()
            )));
        }
    }
    Ok(name)
}

/// When the token expires: as asked, within the policy's longest life
/// (which is also the default).
fn expiry(
    asked: Option<OffsetDateTime>,
    max_days: u32,
    now: OffsetDateTime,
) -> Result<OffsetDateTime, ServiceError> {
    let latest = now + time::Duration::days(i64::from(max_days));
    match asked {
        None => Ok(latest),
        Some(e) if e > latest => Err(ServiceError::invalid(
            "expires_at",
            format!("API tokens live at most {max_days} days here"),
        )),
        Some(e) => Ok(e),
    }
}

pub async fn create(cx: &Context, input: &NewApiToken) -> Result<CreatedApiToken, ServiceError> {
    let store = &cx.store;
    let who = &cx.principal;
    let actor = &cx.actor;
    let now = cx.now();
    super::step_up::require_recent(who, now)?;
    let name = check_request(who, input)?;
    if input.expires_at.is_some_and(|e| e <= now) {
        return Err(ServiceError::invalid("expires_at", "must be in the future"));
    }
    let policy = crate::security::policy::load(store, who.tenant_id).await?;
    let expires_at = expiry(input.expires_at, policy.api_token_max_days(), now)?;
    let token = api_token::format(&secrets::random_bytes::<32>()?);
    let record = ApiTokenRecord {
        id: ApiTokenId::new(),
        tenant_id: who.tenant_id,
        user_id: who.user_id,
        name: name.to_owned(),
        token_start: token.chars().take(DISPLAY_CHARS).collect(),
        scopes: ScopeSet::new(input.scopes.iter().copied()),
        created_at: now,
        expires_at: Some(expires_at),
        last_used_at: None,
        revoked_at: None,
    };
    let ip = crate::notify::security_notice::caller_ip(cx);
    let mut tx = store.begin().await?;
    tx.insert_api_token(&record, &hash_secret(&token)).await?;
    tx.record_audit(&actor.audit(Change {
        tenant: who.tenant_id,
        action: "api_token.create",
        target_type: "api_token",
        target_id: record.id.to_string(),
        before: None,
        after: Some(json!({"name": record.name, "scopes": record.scopes.to_stored(), "expires_at": record.expires_at.map(|e| e.unix_timestamp())})),
        at: now,
    }))
    .await?;
    record_event_in(
        &mut tx,
        SecurityEvent {
            tenant_id: Some(who.tenant_id),
            user_id: Some(who.user_id),
            kind: "API_TOKEN_CREATED",
            ip: None,
            detail: Some(json!({"token_id": record.id})),
            at: now,
        },
    )
    .await?;
    crate::notify::api_token_created::enqueue_in(&mut tx, cx, &record, ip).await?;
    tx.commit().await?;
    Ok(CreatedApiToken { token, record })
}

pub async fn list(cx: &Context) -> Result<Vec<ApiTokenRecord>, ServiceError> {
    let store = &cx.store;
    let who = &cx.principal;
    Ok(store.api_tokens_of(who.tenant_id, who.user_id).await?)
}

pub async fn revoke(cx: &Context, id: ApiTokenId) -> Result<(), ServiceError> {
    let store = &cx.store;
    let who = &cx.principal;
    let actor = &cx.actor;
    let now = cx.now();
    let mut tx = store.begin().await?;
    tx.revoke_api_token(who.tenant_id, who.user_id, id, now)
        .await?
        .then_some(())
        .ok_or_else(ServiceError::missing("API token"))?;
    tx.record_audit(&actor.audit(Change {
        tenant: who.tenant_id,
        action: "api_token.revoke",
        target_type: "api_token",
        target_id: id.to_string(),
        before: None,
        after: None,
        at: now,
    }))
    .await?;
    record_event_in(
        &mut tx,
        SecurityEvent {
            tenant_id: Some(who.tenant_id),
            user_id: Some(who.user_id),
            kind: "API_TOKEN_REVOKED",
            ip: None,
            detail: Some(json!({"token_id": id})),
            at: now,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}
