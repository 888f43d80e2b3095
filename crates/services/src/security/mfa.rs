//! TOTP enrolment and use, recovery codes, and the factor check of a
//! login in progress.

use mpanel_domain::security::{base32, totp};
use mpanel_domain::{Clock, TenantId, UserId};
use mpanel_store::Store;
use mpanel_store::secret_box::{SecretBox, kind};
use serde_json::json;

use super::event;
use crate::identity::secrets;
use crate::notify::mfa_changed::{self, MfaChange};
use crate::notify::security_notice::caller_ip;
use crate::{Context, ServiceError};

/// What `enable` hands out: nothing is active until confirmed.
#[derive(Clone)]
pub struct Enrolment {
    pub secret: String,
    pub otpauth_uri: String,
}

/// The seed is shown once, to the user, never through `{:?}`.
impl std::fmt::Debug for Enrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Enrolment([redacted])")
    }
}

/// The row a user's TOTP seed is sealed to.
fn seed_row(tenant: TenantId, user: UserId) -> String {
    kind::tenant_row(tenant.as_uuid(), user.as_uuid())
}

/// How many random bits a recovery code carries (16 base32 characters).
pub const RECOVERY_CODE_BITS: usize = 80;

/// A new recovery code: 80 random bits as 16 base32 characters, shown in
/// groups of four (`abcd-efgh-ijkl-mnop`).
fn new_recovery_code() -> Result<String, ServiceError> {
    let s = base32::encode(&secrets::random_bytes::<{ RECOVERY_CODE_BITS / 8 }>()?)
        .to_ascii_lowercase();
    Ok(s.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-"))
}

/// What is stored for a recovery code: a keyed hash (HMAC-SHA256 under a
/// key derived from `secrets_key`) of the user and the code, so the same
/// code hashes differently per user and a stolen database cannot test
/// guesses. `k1:` marks the scheme (unkeyed hashes from before were 32
/// bytes and are invalidated at start-up).
pub fn recovery_code_hash(sb: &SecretBox, user: UserId, code: &str) -> Vec<u8> {
    let normal: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let mut data = user.as_uuid().as_bytes().to_vec();
    data.extend_from_slice(normal.as_bytes());
    let mut out = b"k1:".to_vec();
    out.extend(sb.mac(kind::RECOVERY_CODE, &data));
    out
}

/// Starts TOTP enrolment: a new secret, inactive until confirmed.
pub async fn enable(cx: &Context) -> Result<Enrolment, ServiceError> {
    let store = &cx.store;
    let who = &cx.principal;
    crate::identity::step_up::require_recent(who, cx.now())?;
    if store
        .totp(who.user_id)
        .await?
        .is_some_and(|t| t.confirmed_at.is_some())
    {
        return Err(ServiceError::Conflict(
            "TOTP is already enabled; disable it first".into(),
        ));
    }
    let secret = base32::encode(&secrets::random_bytes::<20>()?);
    let tenant = store
        .tenant(who.tenant_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound("no such tenant".into()))?;
    let sealed = crate::sealed::secret_box(store)?.seal_str(
        &secret,
        kind::TOTP_SEED,
        &seed_row(who.tenant_id, who.user_id),
    )?;
    let mut tx = store.begin().await?;
    tx.begin_totp(who.tenant_id, who.user_id, &sealed, cx.now())
        .await?;
    tx.commit().await?;
    Ok(Enrolment {
        otpauth_uri: totp::otpauth_uri(&format!("mPanel {}", tenant.name), &who.email, &secret),
        secret,
    })
}

/// A code valid now and not used before; records replays. `sealed` is the
/// stored seed: opened here, for this check only. A seed that does not
/// open (moved from another user's row) is refused like a wrong code.
async fn check_code(
    store: &Store,
    clock: &dyn Clock,
    tenant: TenantId,
    user: UserId,
    sealed: &str,
    code: &str,
    ip: Option<String>,
) -> Result<i64, ServiceError> {
    let now = clock.now();
    let opened = crate::sealed::secret_box(store)?
        .open_str(sealed, kind::TOTP_SEED, &seed_row(tenant, user))
        .inspect_err(|err| {
            tracing::warn!(%tenant, %user, %err, "a stored TOTP seed does not open; it is not used");
        })
        .ok()
        .and_then(|secret| base32::decode(&secret));
    let step = opened
        .as_deref()
        .and_then(|bytes| totp::matching_step(bytes, code.trim(), now.unix_timestamp()));
    let Some(step) = step else {
        event(store, tenant, Some(user), "MFA_FAILED", ip, None, now).await;
        return Err(ServiceError::invalid("code", "is not the current code"));
    };
    Ok(i64::try_from(step).unwrap_or(i64::MAX))
}

/// Confirms TOTP with a current code; returns 10 recovery codes (shown
/// once, stored hashed) and ends the user's other sessions.
pub async fn confirm(cx: &Context, code: &str) -> Result<Vec<String>, ServiceError> {
    let store = &cx.store;
    let clock = cx.clock.as_ref();
    let who = &cx.principal;
    let actor = &cx.actor;
    let totp = store
        .totp(who.user_id)
        .await?
        .filter(|t| t.confirmed_at.is_none())
        .ok_or_else(|| ServiceError::Conflict("start with /api/security/me/mfa/enable".into()))?;
    let step = check_code(
        store,
        clock,
        who.tenant_id,
        who.user_id,
        &totp.secret,
        code,
        None,
    )
    .await?;
    let codes: Vec<String> = (0..10)
        .map(|_| new_recovery_code())
        .collect::<Result<_, _>>()?;
    let sb = crate::sealed::secret_box(store)?;
    let hashes: Vec<Vec<u8>> = codes
        .iter()
        .map(|c| recovery_code_hash(sb, who.user_id, c))
        .collect();
    let now = clock.now();
    let ip = caller_ip(cx);
    let mut tx = store.begin().await?;
    tx.confirm_totp(who.user_id, step, now).await?;
    tx.replace_recovery_codes(who.tenant_id, who.user_id, &hashes, now)
        .await?;
    tx.revoke_user_sessions(
        who.tenant_id,
        who.user_id,
        who.session_id,
        "MFA_ENROLLED",
        now,
    )
    .await?;
    tx.record_audit(&actor.audit(crate::actor::Change {
        tenant: who.tenant_id,
        action: "mfa.enable",
        target_type: "user",
        target_id: who.user_id.to_string(),
        before: None,
        after: Some(json!({"method": "TOTP"})),
        at: now,
    }))
    .await?;
    mfa_changed::enqueue_in(&mut tx, cx, MfaChange::TotpOn, None, ip).await?;
    tx.commit().await?;
    event(
        store,
        who.tenant_id,
        Some(who.user_id),
        "MFA_ENROLLED",
        None,
        Some(json!({"method": "TOTP"})),
        now,
    )
    .await;
    Ok(codes)
}

/// A second factor as presented.
#[derive(Debug, Clone)]
pub enum Factor {
    Code(String),
    RecoveryCode(String),
}

/// Checks a TOTP code (once per time step) or a recovery code (once).
pub async fn verify_factor(
    store: &Store,
    clock: &dyn Clock,
    tenant: TenantId,
    user: UserId,
    factor: &Factor,
    ip: Option<String>,
) -> Result<(), ServiceError> {
    let now = clock.now();
    match factor {
        Factor::Code(code) => {
            let totp = store
                .totp(user)
                .await?
                .filter(|t| t.confirmed_at.is_some())
                .ok_or_else(|| ServiceError::invalid("code", "TOTP is not enabled"))?;
            let step =
                check_code(store, clock, tenant, user, &totp.secret, code, ip.clone()).await?;
            if !store.accept_totp_step(user, step).await? {
                event(store, tenant, Some(user), "MFA_REPLAY", ip, None, now).await;
                return Err(ServiceError::invalid(
                    "code",
                    "this code was used already; wait for the next one",
                ));
            }
            event(
                store,
                tenant,
                Some(user),
                "MFA_USED",
                ip,
                Some(json!({"method": "TOTP"})),
                now,
            )
            .await;
            Ok(())
        }
        Factor::RecoveryCode(code) => {
            if !store
                .use_recovery_code(
                    user,
                    &recovery_code_hash(crate::sealed::secret_box(store)?, user, code),
                    now,
                )
                .await?
            {
                event(
                    store,
                    tenant,
                    Some(user),
                    "MFA_FAILED",
                    ip,
                    Some(json!({"method": "RECOVERY_CODE"})),
                    now,
                )
                .await;
                return Err(ServiceError::invalid(
                    "recovery_code",
                    "is not a valid unused recovery code",
                ));
            }
            event(
                store,
                tenant,
                Some(user),
                "RECOVERY_CODE_USED",
                ip,
                None,
                now,
            )
            .await;
            Ok(())
        }
    }
}

/// [`verify_factor`], counted under the same throttle as a login's second
/// factor, so repeated guesses lock the account's factor checks wherever
/// they come from (a login, disabling MFA, re-authenticating).
pub async fn verify_factor_throttled(
    store: &Store,
    clock: &dyn Clock,
    tenant: mpanel_domain::TenantId,
    user: UserId,
    factor: &Factor,
    ip: Option<String>,
) -> Result<(), ServiceError> {
    let now = clock.now();
    let attempt = crate::identity::throttle::begin(
        store,
        format!("mfa:{user}"),
        mpanel_domain::identity::throttle::PER_ACCOUNT,
        now,
    )
    .await?;
    match verify_factor(store, clock, tenant, user, factor, ip).await {
        Ok(()) => crate::identity::throttle::succeeded(store, &attempt).await,
        Err(err) => {
            crate::identity::throttle::failed(store, &attempt, now).await?;
            Err(err)
        }
    }
}

/// Removing one's second factors, as asked.
#[derive(Debug, Clone)]
pub struct Disable {
    pub password: String,
    pub factor: Factor,
    /// Revoke the user's API tokens too (the default: whoever needed the
    /// factors gone may have made tokens).
    pub revoke_api_tokens: bool,
}

/// Removes every second factor; needs the password and a current code or
/// a recovery code; ends the user's other sessions and, unless asked not
/// to, their API tokens.
pub async fn disable(cx: &Context, request: &Disable) -> Result<(), ServiceError> {
    let store = &cx.store;
    let clock = cx.clock.as_ref();
    let who = &cx.principal;
    let actor = &cx.actor;
    let (password, factor) = (request.password.as_str(), &request.factor);
    let user = store
        .user(who.tenant_id, who.user_id)
        .await?
        .ok_or_else(ServiceError::missing("user"))?;
    crate::identity::reauthenticate(
        store,
        clock,
        who,
        user.password_hash.as_deref(),
        password,
        "password",
    )
    .await?;
    verify_factor_throttled(store, clock, who.tenant_id, who.user_id, factor, None).await?;
    let now = clock.now();
    let ip = caller_ip(cx);
    let mut tx = store.begin().await?;
    tx.delete_second_factors(who.user_id).await?;
    tx.revoke_user_sessions(
        who.tenant_id,
        who.user_id,
        who.session_id,
        "MFA_DISABLED",
        now,
    )
    .await?;
    let tokens = if request.revoke_api_tokens {
        tx.revoke_user_api_tokens(who.tenant_id, who.user_id, now)
            .await?
    } else {
        0
    };
    tx.record_audit(&actor.audit(crate::actor::Change {
        tenant: who.tenant_id,
        action: "mfa.disable",
        target_type: "user",
        target_id: who.user_id.to_string(),
        before: None,
        after: Some(json!({"api_tokens_revoked": tokens})),
        at: now,
    }))
    .await?;
    mfa_changed::enqueue_in(&mut tx, cx, MfaChange::AllOff, None, ip).await?;
    tx.commit().await?;
    event(
        store,
        who.tenant_id,
        Some(who.user_id),
        "MFA_DISABLED",
        None,
        None,
        now,
    )
    .await;
    Ok(())
}

/// The methods a user has enrolled.
pub async fn methods(store: &Store, user: UserId) -> Result<Vec<&'static str>, ServiceError> {
    let mut out = Vec::new();
    if store
        .totp(user)
        .await?
        .is_some_and(|t| t.confirmed_at.is_some())
    {
        out.push("TOTP");
        out.push("RECOVERY_CODE");
    }
    if !store.webauthn_credentials(user).await?.is_empty() {
        out.push("WEBAUTHN");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_carry_80_bits_and_hash_per_user() {
        let code = new_recovery_code().unwrap();
        let bare: String = code.chars().filter(|c| *c != '-').collect();
        assert_eq!(bare.len() * 5, RECOVERY_CODE_BITS, "{code}");
        assert_eq!(code.len(), 19, "{code}");
        let sb = SecretBox::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
        let (a, b) = (UserId::new(), UserId::new());
        assert_eq!(
            recovery_code_hash(&sb, a, &code),
            recovery_code_hash(&sb, a, &code.to_ascii_uppercase().replace('-', " "))
        );
        assert_ne!(
            recovery_code_hash(&sb, a, &code),
            recovery_code_hash(&sb, b, &code)
        );
    }
}
