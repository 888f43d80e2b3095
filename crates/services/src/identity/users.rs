//! The tenant's users, managed by tenant admins: create, change (role
//! changes audited), disable (sessions and tokens stop at once), and a
//! user's own password change.

use mpanel_domain::identity::Role;
use mpanel_domain::identity::password::check_new_password;
use mpanel_domain::{Clock, TenantId, UserId};
use mpanel_store::{NewUser, Store, Tx, UserRecord, UserStatus};
use serde_json::{Value, json};

use super::passwords;
use crate::actor::Change;
use crate::{Actor, Context, ServiceError};

#[derive(Debug, Clone)]
pub struct CreateUser {
    pub email: String,
    pub display_name: String,
    pub role: Role,
    /// `None`: the user is INVITED and gets an e-mail with a link to set
    /// one.
    pub password: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct UpdateUser {
    pub display_name: Option<String>,
    pub role: Option<Role>,
}

fn summary(u: &UserRecord) -> Value {
    json!({"email": u.email, "display_name": u.display_name, "role": u.role, "status": u.status.as_str()})
}

fn check_email(email: &str) -> Result<String, ServiceError> {
    mpanel_domain::contact::email(email).map_err(|m| ServiceError::invalid("email", m))
}

fn check_name(name: &str) -> Result<String, ServiceError> {
    let name = name.trim();
    if name.chars().count() > 200 {
        return Err(ServiceError::invalid(
            "display_name",
            "must be at most 200 characters long",
        ));
    }
    Ok(name.to_owned())
}

/// Creates a user in a tenant, audited. `assigner` is the role of whoever
/// creates it (`None`: the command line, which may create any role).
pub async fn create_in(
    store: &Store,
    clock: &dyn Clock,
    actor: &Actor,
    tenant: TenantId,
    assigner: Option<Role>,
    input: &CreateUser,
) -> Result<UserRecord, ServiceError> {
    if assigner.is_some_and(|a| !a.can_assign(input.role)) {
        return Err(ServiceError::Forbidden(format!(
            "you may not give the {} role",
            input.role
        )));
    }
    let email = check_email(&input.email)?;
    let display_name = check_name(&input.display_name)?;
    let hash = match &input.password {
        Some(password) => Some(checked_hash(store, tenant, password).await?),
        None => None,
    };
    let tenant_record = store
        .tenant(tenant)
        .await?
        .ok_or_else(ServiceError::missing("tenant"))?;
    let now = clock.now();
    let mut tx = store.begin().await?;
    let user = tx
        .insert_user(
            &NewUser {
                id: UserId::new(),
                tenant_id: tenant,
                email: &email,
                display_name: &display_name,
                role: input.role,
                password_hash: hash.as_deref(),
                status: if hash.is_some() {
                    UserStatus::Active
                } else {
                    UserStatus::Invited
                },
            },
            now,
        )
        .await
        .map_err(|e| match e {
            mpanel_store::StoreError::Conflict(_) => {
                ServiceError::Conflict(format!("a user with e-mail {email:?} already exists"))
            }
            other => other.into(),
        })?;
    if user.status == UserStatus::Invited {
        let purpose = mpanel_domain::identity::account_link::LinkPurpose::Invitation;
        super::account_links::send_in(&mut tx, &tenant_record, &user, purpose, now).await?;
    }
    let change = user_change(tenant, "user.create", &user, now);
    tx.record_audit(&actor.audit(Change {
        before: None,
        after: Some(summary(&user)),
        ..change
    }))
    .await?;
    tx.commit().await?;
    Ok(user)
}

pub async fn create(cx: &Context, input: &CreateUser) -> Result<UserRecord, ServiceError> {
    let store = &cx.store;
    let clock = cx.clock.as_ref();
    let who = &cx.principal;
    let actor = &cx.actor;
    // A new staff member is a way to a fresh login (and so past the
    // step-up): making one is itself a step-up change.
    if input.role.is_staff() {
        super::step_up::require_recent(who, clock.now())?;
    }
    create_in(store, clock, actor, who.tenant_id, Some(who.role()), input).await
}

pub async fn get(cx: &Context, id: UserId) -> Result<UserRecord, ServiceError> {
    let store = &cx.store;
    let who = &cx.principal;
    store
        .user(who.tenant_id, id)
        .await?
        .ok_or_else(ServiceError::missing("user"))
}

pub async fn list(
    cx: &Context,
    after: Option<UserId>,
    limit: u32,
) -> Result<Vec<UserRecord>, ServiceError> {
    let store = &cx.store;
    let who = &cx.principal;
    Ok(store.list_users(who.tenant_id, after, limit).await?)
}

pub async fn update(
    cx: &Context,
    id: UserId,
    patch: &UpdateUser,
) -> Result<UserRecord, ServiceError> {
    let store = &cx.store;
    let who = &cx.principal;
    let actor = &cx.actor;
    let now = cx.now();
    if patch.role.is_some() {
        super::step_up::require_recent(who, now)?;
    }
    let mut tx = store.begin().await?;
    tx.lock_tenant_users(who.tenant_id).await?;
    let before = tx
        .user(who.tenant_id, id)
        .await?
        .ok_or_else(ServiceError::missing("user"))?;
    let mut after = before.clone();
    if let Some(name) = &patch.display_name {
        after.display_name = check_name(name)?;
    }
    if let Some(role) = patch.role
        && role != before.role
    {
        if !who.role().can_assign(role) || !who.role().can_assign(before.role) {
            return Err(ServiceError::Forbidden(format!(
                "you may not change a {} into a {role}",
                before.role
            )));
        }
        ensure_not_last_admin(&mut tx, &before).await?;
        after.role = role;
    }
    let after = tx
        .update_user(&after, now)
        .await?
        .ok_or_else(ServiceError::missing("user"))?;
    let action = if after.role == before.role {
        "user.update"
    } else {
        "user.role_change"
    };
    let change = user_change(who.tenant_id, action, &after, now);
    tx.record_audit(&actor.audit(Change {
        before: Some(summary(&before)),
        after: Some(summary(&after)),
        ..change
    }))
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Disables a user: their sessions and API tokens stop working at once.
pub async fn disable(cx: &Context, id: UserId) -> Result<UserRecord, ServiceError> {
    let store = &cx.store;
    let who = &cx.principal;
    let actor = &cx.actor;
    let now = cx.now();
    let mut tx = store.begin().await?;
    tx.lock_tenant_users(who.tenant_id).await?;
    let before = tx
        .user(who.tenant_id, id)
        .await?
        .ok_or_else(ServiceError::missing("user"))?;
    if before.id == who.user_id {
        return Err(ServiceError::Conflict("you cannot disable yourself".into()));
    }
    if !who.role().can_assign(before.role) {
        return Err(ServiceError::Forbidden(format!(
            "you may not disable a {}",
            before.role
        )));
    }
    if before.status == UserStatus::Disabled {
        return Ok(before);
    }
    ensure_not_last_admin(&mut tx, &before).await?;
    let mut after = before.clone();
    after.status = UserStatus::Disabled;
    let after = tx
        .update_user(&after, now)
        .await?
        .ok_or_else(ServiceError::missing("user"))?;
    let sessions = tx
        .revoke_user_sessions(who.tenant_id, id, None, "USER_DISABLED", now)
        .await?;
    let tokens = tx.revoke_user_api_tokens(who.tenant_id, id, now).await?;
    let mut after_summary = summary(&after);
    after_summary["sessions_revoked"] = json!(sessions);
    after_summary["tokens_revoked"] = json!(tokens);
    let change = user_change(who.tenant_id, "user.disable", &after, now);
    tx.record_audit(&actor.audit(Change {
        before: Some(summary(&before)),
        after: Some(after_summary),
        ..change
    }))
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// A password change as the user asks for it.
#[derive(Debug, Clone)]
pub struct PasswordChange {
    pub current: String,
    pub new: String,
    /// Revoke the user's API tokens too (the default: a password changed
    /// because it leaked may have leaked with tokens made under it).
    pub revoke_api_tokens: bool,
}

/// Changes the caller's own password and ends their other sessions (and,
/// unless asked not to, their API tokens).
pub async fn change_own_password(
    cx: &Context,
    change: &PasswordChange,
) -> Result<(), ServiceError> {
    let store = &cx.store;
    let clock = cx.clock.as_ref();
    let who = &cx.principal;
    let actor = &cx.actor;
    let (current, new) = (change.current.as_str(), change.new.as_str());
    let user = store
        .user(who.tenant_id, who.user_id)
        .await?
        .ok_or_else(ServiceError::missing("user"))?;
    super::reauthenticate(
        store,
        clock,
        who,
        user.password_hash.as_deref(),
        current,
        "current_password",
    )
    .await?;
    check_new_password(new).map_err(|m| ServiceError::invalid("new_password", m))?;
    check_policy_length(store, who.tenant_id, "new_password", new).await?;
    let hash = passwords::hash(new).await?;
    let now = clock.now();
    let mut tx = store.begin().await?;
    tx.set_password(who.tenant_id, who.user_id, &hash, now)
        .await?;
    let ended = tx
        .revoke_user_sessions(
            who.tenant_id,
            who.user_id,
            who.session_id,
            "PASSWORD_CHANGED",
            now,
        )
        .await?;
    let tokens = if change.revoke_api_tokens {
        tx.revoke_user_api_tokens(who.tenant_id, who.user_id, now)
            .await?
    } else {
        0
    };
    let change = user_change(who.tenant_id, "user.password_change", &user, now);
    tx.record_audit(&actor.audit(Change {
        before: None,
        after: Some(json!({"sessions_revoked": ended, "api_tokens_revoked": tokens})),
        ..change
    }))
    .await?;
    tx.record_security_event(&mpanel_store::identity::security_events::SecurityEvent {
        tenant_id: Some(who.tenant_id),
        user_id: Some(who.user_id),
        kind: "PASSWORD_CHANGED",
        ip: None,
        detail: Some(json!({"sessions_revoked": ended, "api_tokens_revoked": tokens})),
        at: now,
    })
    .await?;
    tx.commit().await?;
    Ok(())
}

/// The hash of a new password the platform's rules and the tenant's
/// policy accept.
async fn checked_hash(
    store: &Store,
    tenant: TenantId,
    password: &str,
) -> Result<String, ServiceError> {
    check_new_password(password).map_err(|m| ServiceError::invalid("password", m))?;
    check_policy_length(store, tenant, "password", password).await?;
    passwords::hash(password).await
}

/// The tenant's policy may ask for longer passwords than the platform's 12.
pub(crate) async fn check_policy_length(
    store: &Store,
    tenant: TenantId,
    field: &'static str,
    password: &str,
) -> Result<(), ServiceError> {
    let min = crate::security::policy::load(store, tenant)
        .await?
        .password_min_length;
    if password.chars().count() < min as usize {
        return Err(ServiceError::invalid(
            field,
            format!("must be at least {min} characters long (the tenant's policy)"),
        ));
    }
    Ok(())
}

/// A tenant keeps at least one active tenant admin.
async fn ensure_not_last_admin(tx: &mut Tx, user: &UserRecord) -> Result<(), ServiceError> {
    if user.role == Role::TenantAdmin
        && user.status == UserStatus::Active
        && tx
            .count_active_with_role(user.tenant_id, Role::TenantAdmin)
            .await?
            <= 1
    {
        return Err(ServiceError::Conflict(
            "this is the tenant's last active TENANT_ADMIN".into(),
        ));
    }
    Ok(())
}

/// The audit row of a change to `user` (its before and after to fill in).
fn user_change<'a>(
    tenant: TenantId,
    action: &'a str,
    user: &UserRecord,
    at: time::OffsetDateTime,
) -> Change<'a> {
    Change {
        tenant,
        action,
        target_type: "user",
        target_id: user.id.to_string(),
        before: None,
        after: None,
        at,
    }
}
