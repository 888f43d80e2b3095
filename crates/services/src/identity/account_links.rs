//! Setting a password through a link sent by e-mail: an invitation (a
//! new user's first password) or a password reset. Both are
//! `auth_challenges` rows holding only the token's hash; a link is used
//! once, a new link of a kind retires the user's earlier ones, and using
//! one retires every link the user still has.

use mpanel_domain::identity::account_link::LinkPurpose;
use mpanel_domain::identity::api_token::hash_secret;
use mpanel_domain::identity::password::check_new_password;
use mpanel_domain::{Clock, TenantStatus};
use mpanel_store::identity::account_links::LinkOwner;
use mpanel_store::identity::second_factors::NewChallenge;
use mpanel_store::identity::security_events::SecurityEvent;
use mpanel_store::{ActorType, Store, TenantRecord, Tx, UserRecord, UserStatus};
use serde_json::json;
use time::OffsetDateTime;

use super::{passwords, secrets};
use crate::ServiceError;

/// The challenge of a sign-in waiting for its second factor.
const MFA_LOGIN: &str = "MFA_LOGIN";
use crate::actor::{Actor, Change};
use crate::notify::account_link;

/// Sends `user` a new link for `purpose`, in `tx`: the user's earlier
/// links of that kind stop working.
pub(crate) async fn send_in(
    tx: &mut Tx,
    tenant: &TenantRecord,
    user: &UserRecord,
    purpose: LinkPurpose,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    let kind = purpose.challenge_kind();
    // One link sender at a time per user: two sent at once would both
    // stay live.
    tx.lock_user(tenant.id, user.id).await?;
    tx.retire_links(tenant.id, user.id, kind, now).await?;
    let token = secrets::new_link_token()?;
    tx.insert_link(&NewChallenge {
        tenant: tenant.id,
        user: user.id,
        kind,
        token_hash: Some(&hash_secret(&token)),
        state: None,
        expires_at: now + purpose.ttl(),
    })
    .await?;
    let path = purpose.path_with(&token);
    account_link::enqueue_in(tx, tenant, user, purpose, path, now).await?;
    Ok(())
}

/// A link being used: its token and the password it sets.
#[derive(Debug, Clone)]
pub struct UseLink {
    pub token: String,
    pub password: String,
    pub ip: Option<String>,
}

/// A link that was used: whose password it set.
#[derive(Debug, Clone)]
pub struct LinkUsed {
    pub user: UserRecord,
    pub tenant: TenantRecord,
    /// Sessions ended (a reset ends them all).
    pub sessions_revoked: u64,
}

fn bad_token() -> ServiceError {
    ServiceError::invalid(
        "token",
        "is not a valid link: it was used, replaced or has expired",
    )
}

/// Sets the password a link of `purpose` allows, activating an invited
/// user. Everything is checked before the link is spent, so a password
/// the policy refuses leaves the link working.
pub async fn set_password(
    store: &Store,
    clock: &dyn Clock,
    purpose: LinkPurpose,
    input: &UseLink,
) -> Result<LinkUsed, ServiceError> {
    let hash = hash_secret(input.token.trim());
    let owner = store
        .live_link(purpose.challenge_kind(), &hash, clock.now())
        .await?
        .ok_or_else(bad_token)?;
    let (tenant, user) = owner_account(store, &owner).await?;
    check_new_password(&input.password).map_err(|m| ServiceError::invalid("password", m))?;
    super::users::check_policy_length(store, tenant.id, "password", &input.password).await?;
    let password_hash = passwords::hash(&input.password).await?;
    let now = clock.now();
    let mut tx = store.begin().await?;
    let (user, sessions_revoked) =
        spend(&mut tx, purpose, &hash, &user, &password_hash, now).await?;
    record(&mut tx, purpose, &user, sessions_revoked, input, now).await?;
    tx.commit().await?;
    Ok(LinkUsed {
        user,
        tenant,
        sessions_revoked,
    })
}

/// In `tx`: uses the link (of two requests with one link, only one takes
/// it), sets the password and activates an invited user, read again with
/// its row locked so a disable or role change meanwhile holds;
/// retires every link the user still has, and for a reset ends every
/// session and any sign-in waiting for its second factor.
async fn spend(
    tx: &mut Tx,
    purpose: LinkPurpose,
    hash: &[u8],
    user: &UserRecord,
    password_hash: &str,
    now: OffsetDateTime,
) -> Result<(UserRecord, u64), ServiceError> {
    let tenant = user.tenant_id;
    let user = tx.lock_user(tenant, user.id).await?.ok_or_else(bad_token)?;
    tx.take_link(purpose.challenge_kind(), hash, now)
        .await?
        .ok_or_else(bad_token)?;
    if user.status == UserStatus::Disabled {
        return Err(ServiceError::AccountDisabled);
    }
    tx.set_password(tenant, user.id, password_hash, now).await?;
    let user = activate(tx, user, now).await?;
    let mut retire = vec![
        LinkPurpose::Invitation.challenge_kind(),
        LinkPurpose::PasswordReset.challenge_kind(),
    ];
    let sessions_revoked = match purpose {
        LinkPurpose::PasswordReset => {
            retire.push(MFA_LOGIN);
            tx.revoke_user_sessions(tenant, user.id, None, "PASSWORD_RESET", now)
                .await?
        }
        LinkPurpose::Invitation => 0,
    };
    for kind in retire {
        tx.retire_links(tenant, user.id, kind, now).await?;
    }
    Ok((user, sessions_revoked))
}

/// The link's user and tenant, when the link may still be used: not for
/// a disabled user or a suspended tenant.
async fn owner_account(
    store: &Store,
    owner: &LinkOwner,
) -> Result<(TenantRecord, UserRecord), ServiceError> {
    let tenant = store.tenant(owner.tenant_id).await?.ok_or_else(bad_token)?;
    let user = store
        .user(owner.tenant_id, owner.user_id)
        .await?
        .ok_or_else(bad_token)?;
    if user.status == UserStatus::Disabled {
        return Err(ServiceError::AccountDisabled);
    }
    if tenant.status == TenantStatus::Suspended {
        return Err(ServiceError::TenantSuspended);
    }
    Ok((tenant, user))
}

/// An invited user is active once they have a password.
async fn activate(
    tx: &mut Tx,
    user: UserRecord,
    now: OffsetDateTime,
) -> Result<UserRecord, ServiceError> {
    if user.status != UserStatus::Invited {
        return Ok(user);
    }
    let mut active = user;
    active.status = UserStatus::Active;
    tx.update_user(&active, now)
        .await?
        .ok_or_else(ServiceError::missing("user"))
}

/// The audit row and the security event of a used link.
async fn record(
    tx: &mut Tx,
    purpose: LinkPurpose,
    user: &UserRecord,
    sessions_revoked: u64,
    input: &UseLink,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    let (action, event) = match purpose {
        LinkPurpose::Invitation => ("user.invitation_accept", "INVITATION_ACCEPTED"),
        LinkPurpose::PasswordReset => ("user.password_reset", "PASSWORD_RESET"),
    };
    let actor = Actor {
        kind: ActorType::User,
        id: Some(user.id.as_uuid()),
        label: user.email.clone(),
        request_id: None,
    };
    let detail = json!({"sessions_revoked": sessions_revoked, "status": user.status.as_str()});
    tx.record_audit(&actor.audit(Change {
        tenant: user.tenant_id,
        action,
        target_type: "user",
        target_id: user.id.to_string(),
        before: None,
        after: Some(detail.clone()),
        at: now,
    }))
    .await?;
    tx.record_security_event(&SecurityEvent {
        tenant_id: Some(user.tenant_id),
        user_id: Some(user.id),
        kind: event,
        ip: input.ip.clone(),
        detail: Some(detail),
        at: now,
    })
    .await?;
    Ok(())
}

/// `POST /api/users/{id}/invite`: a new invitation for a user who has not
/// accepted one; the earlier link stops working.
pub async fn invite_again(
    cx: &crate::Context,
    id: mpanel_domain::UserId,
) -> Result<UserRecord, ServiceError> {
    let now = cx.now();
    let mut tx = cx.store.begin().await?;
    let user = tx
        .user(cx.tenant_id(), id)
        .await?
        .ok_or_else(ServiceError::missing("user"))?;
    if user.status != UserStatus::Invited {
        return Err(ServiceError::Conflict(format!(
            "the user is {}: only an INVITED user gets an invitation (an active one can reset their password)",
            user.status.as_str()
        )));
    }
    if !cx.principal.role().can_assign(user.role) {
        return Err(ServiceError::Forbidden(format!(
            "you may not invite a {}",
            user.role
        )));
    }
    send_in(&mut tx, &cx.tenant, &user, LinkPurpose::Invitation, now).await?;
    tx.record_audit(&cx.actor.audit(Change {
        tenant: cx.tenant_id(),
        action: "user.invite",
        target_type: "user",
        target_id: user.id.to_string(),
        before: None,
        after: Some(json!({"email": user.email})),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(user)
}
