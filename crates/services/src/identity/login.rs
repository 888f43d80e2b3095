//! Logging in, refreshing and logging out.

use mpanel_domain::identity::api_token::hash_secret;
use mpanel_domain::identity::refresh::{self, REFRESH_TOKEN_TTL, RefreshDecision};
use mpanel_domain::identity::throttle::{self as throttle_rules, PER_ACCOUNT, PER_ADDRESS};
use mpanel_domain::security::SecurityPolicy;
use mpanel_domain::{Clock, RefreshTokenId, SessionId, TenantId, TenantStatus, UserId};
use mpanel_store::identity::second_factors::{Challenge, NewChallenge};
use mpanel_store::identity::security_events::SecurityEvent;
use mpanel_store::identity::sessions::{RefreshTokenRecord, SessionRecord};
use mpanel_store::{Store, TenantRecord, Tx, UserStatus};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use super::access_tokens::AccessClaims;
use super::{AccessTokens, passwords, record_event, record_event_in, secrets, throttle};
use crate::ServiceError;
use crate::security::webauthn::{PasskeyAnswer, Passkeys};

/// A session lives at most this long, however often it is refreshed.
pub const SESSION_MAX_AGE: Duration = Duration::days(30);

#[derive(Debug, Clone)]
pub struct LoginInput {
    pub tenant: String,
    pub email: String,
    pub password: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// What a successful login or refresh hands out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub session_id: SessionId,
}

fn event(
    kind: &'static str,
    tenant: Option<TenantId>,
    user: Option<UserId>,
    ip: &Option<String>,
    at: OffsetDateTime,
) -> SecurityEvent {
    SecurityEvent {
        tenant_id: tenant,
        user_id: user,
        kind,
        ip: ip.clone(),
        detail: None,
        at,
    }
}

/// Where a correct password leads.
#[derive(Debug, Clone)]
pub enum LoginOutcome {
    /// Signed in.
    Signed(TokenPair),
    /// A second factor is needed: complete with `complete_mfa`.
    MfaRequired {
        mfa_token: String,
        methods: Vec<&'static str>,
        /// The WebAuthn request options, when a passkey is enrolled.
        webauthn: Option<serde_json::Value>,
    },
}

/// How long a login may wait for its second factor.
const MFA_TTL: Duration = Duration::minutes(5);

/// What signing in needs. There is no caller yet, so no request
/// [`Context`](crate::Context): the store, the clock, the token signer and
/// the WebAuthn party.
#[derive(Clone, Copy)]
pub struct SignIn<'a> {
    pub store: &'a Store,
    pub clock: &'a dyn Clock,
    pub tokens: &'a AccessTokens,
    pub passkeys: &'a Passkeys,
}

pub async fn login(sign_in: &SignIn<'_>, input: &LoginInput) -> Result<LoginOutcome, ServiceError> {
    let SignIn {
        store,
        clock,
        tokens,
        passkeys,
    } = *sign_in;
    let tenant = store.tenant_by_slug(&input.tenant).await?;
    let attempt = Attempt {
        store,
        input,
        tenant_id: tenant.as_ref().map(|t| t.id),
        address_key: input
            .ip
            .as_deref()
            .map(|ip| format!("address:{}", throttle_rules::client_group(ip))),
        now: clock.now(),
    };
    attempt.check_address_not_locked().await?;
    // Counted before the password is checked, so parallel guesses count too.
    let counted = attempt.count_account_attempt().await?;
    let user = match &tenant {
        Some(t) => store.user_by_email(t.id, &input.email).await?,
        None => None,
    };
    let stored_hash = user.as_ref().and_then(|u| u.password_hash.as_deref());
    if !passwords::verify(stored_hash, &input.password).await? {
        return Err(attempt
            .wrong_password(&counted, user.as_ref().map(|u| u.id))
            .await?);
    }
    let Some(user) = user else {
        return Err(ServiceError::InvalidCredentials);
    };
    if user.status == UserStatus::Disabled {
        attempt.event("LOGIN_DISABLED_ACCOUNT", Some(user.id)).await;
        return Err(ServiceError::AccountDisabled);
    }
    if tenant
        .as_ref()
        .is_some_and(|t| t.status == TenantStatus::Suspended)
    {
        return Err(ServiceError::TenantSuspended);
    }
    throttle::succeeded(store, &counted).await?;
    let policy = crate::security::policy::load(store, user.tenant_id).await?;
    let ip_addr = input.ip.as_deref().and_then(|ip| ip.parse().ok());
    if user.role.is_staff() && !policy.ip_allowed(ip_addr) {
        attempt.event("IP_BLOCKED", Some(user.id)).await;
        return Err(ServiceError::Forbidden(
            "staff sign-ins from this address are not allowed by the tenant's policy".into(),
        ));
    }
    let methods = crate::security::mfa::methods(store, user.id).await?;
    if !methods.is_empty() {
        return start_mfa(store, passkeys, &user, methods, attempt.now).await;
    }
    let start = SessionStart {
        ip: input.ip.clone(),
        user_agent: input.user_agent.clone(),
        restricted: policy.mfa_required_for(user.role),
        lifetime: Duration::hours(i64::from(policy.session_max_lifetime_hours)),
        tenant_name: tenant.map(|t| t.name).unwrap_or_default(),
    };
    let pair = open_session(store, tokens, &user, start, attempt.now).await?;
    Ok(LoginOutcome::Signed(pair))
}

/// One password login on its way: what its throttling and security events
/// need.
struct Attempt<'a> {
    store: &'a Store,
    input: &'a LoginInput,
    tenant_id: Option<TenantId>,
    /// The throttle key of the client's address group, when it is known.
    address_key: Option<String>,
    now: OffsetDateTime,
}

impl Attempt<'_> {
    async fn event(&self, kind: &'static str, user: Option<UserId>) {
        record_event(
            self.store,
            event(kind, self.tenant_id, user, &self.input.ip, self.now),
        )
        .await;
    }

    /// An address group locked for too many failures is refused before
    /// anything else is looked at.
    async fn check_address_not_locked(&self) -> Result<(), ServiceError> {
        let Some(key) = &self.address_key else {
            return Ok(());
        };
        let now = self.now;
        if let Some(until) = self
            .store
            .throttle_state(key)
            .await?
            .and_then(|s| s.locked_until)
            .filter(|u| *u > now)
        {
            self.event("LOGIN_THROTTLED", None).await;
            return Err(ServiceError::Throttled {
                retry_after_secs: u64::try_from((until - now).whole_seconds().max(1)).unwrap_or(1),
            });
        }
        Ok(())
    }

    /// Counts an attempt on the account (refused when it is locked).
    async fn count_account_attempt(&self) -> Result<throttle::Attempt, ServiceError> {
        let input = self.input;
        let account_key =
            throttle_rules::account_key(&input.tenant, &input.email, input.ip.as_deref());
        match throttle::begin(self.store, account_key, PER_ACCOUNT, self.now).await {
            Ok(attempt) => Ok(attempt),
            Err(err) => {
                self.event("LOGIN_THROTTLED", None).await;
                Err(err)
            }
        }
    }

    /// Counts a wrong password against the account and the address group
    /// (either may lock now); answers the error to return.
    async fn wrong_password(
        &self,
        counted: &throttle::Attempt,
        user_id: Option<UserId>,
    ) -> Result<ServiceError, ServiceError> {
        let (store, now) = (self.store, self.now);
        let mut locked = throttle::failed(store, counted, now).await?;
        if let Some(key) = &self.address_key {
            let n = store
                .bump_throttle(key, now, now - PER_ADDRESS.forget_after)
                .await?;
            if let Some(until) = PER_ADDRESS.lock_after(n, now) {
                store.lock_throttle(key, until).await?;
                locked |= n == PER_ADDRESS.free_failures + 1;
            }
        }
        if locked {
            self.event("LOGIN_LOCKED", user_id).await;
        }
        self.event("LOGIN_FAILED", user_id).await;
        Ok(ServiceError::InvalidCredentials)
    }
}

/// A correct password of a user with a second factor: an MFA token (and a
/// passkey challenge when one is enrolled) instead of a session.
async fn start_mfa(
    store: &Store,
    passkeys: &Passkeys,
    user: &mpanel_store::UserRecord,
    methods: Vec<&'static str>,
    now: OffsetDateTime,
) -> Result<LoginOutcome, ServiceError> {
    let token = secrets::new_refresh_token()?;
    let webauthn = passkeys.login_start(store, user.id).await?;
    let state = json!({"webauthn": webauthn.as_ref().map(|(_, state)| state.clone())});
    store
        .insert_challenge(&NewChallenge {
            tenant: user.tenant_id,
            user: user.id,
            kind: "MFA_LOGIN",
            token_hash: Some(&hash_secret(&token)),
            state: Some(&state),
            expires_at: now + MFA_TTL,
        })
        .await?;
    Ok(LoginOutcome::MfaRequired {
        mfa_token: token,
        methods,
        webauthn: webauthn.map(|(options, _)| options),
    })
}

/// What completes a login waiting for its second factor.
#[derive(Debug, Clone)]
pub struct MfaInput {
    pub mfa_token: String,
    pub code: Option<String>,
    pub recovery_code: Option<String>,
    pub webauthn_response: Option<serde_json::Value>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Completes a login with a TOTP code, a recovery code or a WebAuthn
/// answer. The MFA token works once, for its user, for five minutes;
/// failures are throttled like passwords.
pub async fn complete_mfa(
    sign_in: &SignIn<'_>,
    input: &MfaInput,
) -> Result<TokenPair, ServiceError> {
    let SignIn {
        store,
        clock,
        tokens,
        passkeys,
    } = *sign_in;
    let now = clock.now();
    let hash = hash_secret(&input.mfa_token);
    let Some(challenge) = store.take_challenge("MFA_LOGIN", &hash, now).await? else {
        refused_token(store, &hash, input, now).await?;
        return Err(ServiceError::Unauthenticated(
            "the MFA token is invalid, expired or used; log in again".into(),
        ));
    };
    let attempt = throttle::begin(
        store,
        format!("mfa:{}", challenge.user_id),
        PER_ACCOUNT,
        now,
    )
    .await?;
    if let Err(err) = check_second_factor(store, clock, passkeys, &challenge, input).await {
        throttle::failed(store, &attempt, now).await?;
        return Err(err);
    }
    throttle::succeeded(store, &attempt).await?;
    let user = store
        .user(challenge.tenant_id, challenge.user_id)
        .await?
        .ok_or_else(ServiceError::missing("user"))?;
    if user.status != UserStatus::Active {
        return Err(ServiceError::AccountDisabled);
    }
    let tenant = check_tenant_trades(store, challenge.tenant_id).await?;
    let policy = crate::security::policy::load(store, user.tenant_id).await?;
    let start = SessionStart {
        ip: input.ip.clone(),
        user_agent: input.user_agent.clone(),
        restricted: false,
        lifetime: Duration::hours(i64::from(policy.session_max_lifetime_hours)),
        tenant_name: tenant.map(|t| t.name).unwrap_or_default(),
    };
    open_session(store, tokens, &user, start, now).await
}

/// A second factor sent with a used or expired MFA token is refused;
/// its owner's security events say so (`MFA_REPLAY` for a used one, as
/// a replayed answer is, `MFA_FAILED` for an expired one). A token that
/// was never issued names nobody.
async fn refused_token(
    store: &Store,
    hash: &[u8],
    input: &MfaInput,
    now: time::OffsetDateTime,
) -> Result<(), ServiceError> {
    let Some((tenant, user, used)) = store.challenge_owner("MFA_LOGIN", hash).await? else {
        return Ok(());
    };
    let method = match (&input.code, &input.recovery_code, &input.webauthn_response) {
        (_, _, Some(_)) => "WEBAUTHN",
        (_, Some(_), _) => "RECOVERY_CODE",
        _ => "TOTP",
    };
    let (kind, reason) = if used {
        ("MFA_REPLAY", "the MFA token was used already")
    } else {
        ("MFA_FAILED", "the MFA token expired")
    };
    crate::security::event(
        store,
        tenant,
        Some(user),
        kind,
        input.ip.clone(),
        Some(serde_json::json!({"method": method, "reason": reason})),
        now,
    )
    .await;
    Ok(())
}

/// Checks the one factor the client sent against the challenge's user.
async fn check_second_factor(
    store: &Store,
    clock: &dyn Clock,
    passkeys: &Passkeys,
    challenge: &Challenge,
    input: &MfaInput,
) -> Result<(), ServiceError> {
    use crate::security::mfa::{Factor, verify_factor};
    let (tenant, user) = (challenge.tenant_id, challenge.user_id);
    match (&input.code, &input.recovery_code, &input.webauthn_response) {
        (Some(code), None, None) => {
            let factor = Factor::Code(code.clone());
            verify_factor(store, clock, tenant, user, &factor, input.ip.clone()).await
        }
        (None, Some(code), None) => {
            let factor = Factor::RecoveryCode(code.clone());
            verify_factor(store, clock, tenant, user, &factor, input.ip.clone()).await
        }
        (None, None, Some(response)) => {
            let state = challenge
                .state
                .as_ref()
                .and_then(|s| s.get("webauthn"))
                .filter(|s| !s.is_null());
            match state {
                Some(state) => {
                    let answer = PasskeyAnswer {
                        tenant,
                        user,
                        state,
                        response,
                    };
                    passkeys
                        .login_finish(store, clock, answer, input.ip.clone())
                        .await
                }
                None => Err(ServiceError::invalid(
                    "webauthn_response",
                    "no passkey is enrolled",
                )),
            }
        }
        _ => Err(ServiceError::invalid(
            "code",
            "send exactly one of code, recovery_code, webauthn_response",
        )),
    }
}

/// Where and how a new session starts.
struct SessionStart {
    ip: Option<String>,
    user_agent: Option<String>,
    /// Signed in only to enrol a second factor the policy requires.
    restricted: bool,
    lifetime: Duration,
    /// Who signs the message about a sign-in from a new address.
    tenant_name: String,
}

/// A new session with its first token pair.
async fn open_session(
    store: &Store,
    tokens: &AccessTokens,
    user: &mpanel_store::UserRecord,
    start: SessionStart,
    now: OffsetDateTime,
) -> Result<TokenPair, ServiceError> {
    let SessionStart {
        ip,
        user_agent,
        restricted,
        lifetime,
        tenant_name,
    } = start;
    let session = SessionRecord {
        id: SessionId::new(),
        tenant_id: user.tenant_id,
        user_id: user.id,
        created_at: now,
        last_used_at: now,
        expires_at: now + lifetime.min(SESSION_MAX_AGE * 3),
        revoked_at: None,
        ip: ip.clone(),
        user_agent,
        restricted,
    };
    let mut tx = store.begin().await?;
    let from = crate::notify::new_sign_in::SignIn {
        ip: session.ip.as_deref(),
        user_agent: session.user_agent.as_deref(),
        tenant_name: &tenant_name,
    };
    crate::notify::new_sign_in::enqueue_if_new_in(&mut tx, user, &from, now).await?;
    tx.insert_session(&session).await?;
    let refresh_token = issue_refresh_token(&mut tx, session.id, now).await?;
    let mut succeeded = event(
        "LOGIN_SUCCEEDED",
        Some(user.tenant_id),
        Some(user.id),
        &ip,
        now,
    );
    if restricted {
        succeeded.detail = Some(json!({"restricted": "MFA_ENROLLMENT_REQUIRED"}));
    }
    record_event_in(&mut tx, succeeded).await?;
    tx.commit().await?;
    pair(tokens, &session, refresh_token, now)
}

async fn issue_refresh_token(
    tx: &mut Tx,
    session: SessionId,
    now: OffsetDateTime,
) -> Result<String, ServiceError> {
    let token = secrets::new_refresh_token()?;
    store_refresh_token(tx, session, &token, now).await?;
    Ok(token)
}

async fn store_refresh_token(
    tx: &mut Tx,
    session: SessionId,
    token: &str,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    tx.insert_refresh_token(
        RefreshTokenId::new(),
        session,
        &hash_secret(token),
        now,
        now + REFRESH_TOKEN_TTL,
    )
    .await?;
    Ok(())
}

fn pair(
    tokens: &AccessTokens,
    session: &SessionRecord,
    refresh_token: String,
    now: OffsetDateTime,
) -> Result<TokenPair, ServiceError> {
    let access_token = tokens.issue(
        AccessClaims {
            tenant_id: session.tenant_id,
            user_id: session.user_id,
            session_id: session.id,
        },
        now,
    )?;
    Ok(TokenPair {
        access_token,
        refresh_token,
        expires_in: AccessTokens::ttl_secs(),
        session_id: session.id,
    })
}

/// Trades a refresh token for a new pair. A token already used (outside
/// the grace period) revokes its whole session.
pub async fn refresh(
    store: &Store,
    clock: &dyn Clock,
    tokens: &AccessTokens,
    refresh_token: &str,
    ip: Option<String>,
) -> Result<TokenPair, ServiceError> {
    let now = clock.now();
    let Some(rec) = store
        .refresh_token_by_hash(&hash_secret(refresh_token))
        .await?
    else {
        return Err(session_ended());
    };
    if rec.session_revoked || now >= rec.session_expires_at {
        return Err(session_ended());
    }
    let user = store
        .user(rec.tenant_id, rec.user_id)
        .await?
        .ok_or_else(ServiceError::missing("user"))?;
    if user.status != UserStatus::Active {
        return Err(session_ended());
    }
    check_tenant_trades(store, rec.tenant_id).await?;
    let session = store
        .session(rec.tenant_id, rec.session_id)
        .await?
        .ok_or_else(ServiceError::missing("session"))?;
    let policy = crate::security::policy::load(store, rec.tenant_id).await?;
    let ip_addr = ip.as_deref().and_then(|ip| ip.parse().ok());
    if user.role.is_staff() && !policy.ip_allowed(ip_addr) {
        super::authenticate::ip_blocked(
            store,
            rec.tenant_id,
            rec.user_id,
            ip_addr,
            Some(json!({"session_id": rec.session_id})),
            now,
        )
        .await;
        return Err(ServiceError::Forbidden(
            "staff sessions may not be refreshed from this address under the tenant's policy"
                .into(),
        ));
    }
    if let Some(reason) = session_end_reason(&policy, session.created_at, session.last_used_at, now)
    {
        let mut tx = store.begin().await?;
        tx.revoke_session(rec.tenant_id, rec.user_id, rec.session_id, reason, now)
            .await?
            .then_some(())
            .ok_or_else(ServiceError::missing("session"))?;
        tx.commit().await?;
        return Err(session_ended());
    }
    let mut tx = store.begin().await?;
    match refresh::decide(rec.used_at, rec.expires_at, now) {
        RefreshDecision::Expired => return Err(session_ended()),
        RefreshDecision::Reused => {
            revoke_reused(&mut tx, &rec, &ip, now).await?;
            tx.commit().await?;
            return Err(ServiceError::Unauthenticated(
                "this refresh token was already used; the session has been revoked".into(),
            ));
        }
        RefreshDecision::Rotate => {
            // The first of two racing refreshes stores the successor; the
            // other (within the grace) hands out the same one.
            if tx.mark_refresh_token_used(rec.id, now).await? {
                let successor = tokens.successor_of(refresh_token);
                store_refresh_token(&mut tx, rec.session_id, &successor, now).await?;
            }
        }
        RefreshDecision::WithinGrace => {}
    }
    tx.touch_session(rec.session_id, now).await?;
    tx.commit().await?;
    pair(tokens, &session, tokens.successor_of(refresh_token), now)
}

fn session_ended() -> ServiceError {
    ServiceError::Unauthenticated("the refresh token is invalid, expired or revoked".into())
}

/// Why the tenant's policy ends a session now (idle too long, or older
/// than its maximum lifetime), if it does: the reason its revocation
/// records.
pub(super) fn session_end_reason(
    policy: &SecurityPolicy,
    created_at: OffsetDateTime,
    last_used_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Option<&'static str> {
    let idle = i64::from(policy.session_idle_timeout_minutes);
    let idle_out = idle > 0 && now - last_used_at > Duration::minutes(idle);
    let too_old = now - created_at > Duration::hours(i64::from(policy.session_max_lifetime_hours));
    if idle_out {
        Some(IDLE_TIMEOUT)
    } else if too_old {
        Some("MAX_LIFETIME")
    } else {
        None
    }
}

pub(super) const IDLE_TIMEOUT: &str = "IDLE_TIMEOUT";

/// A token used before, past the grace: someone holds a copy, so the
/// whole session is revoked (and the event recorded) in `tx`.
async fn revoke_reused(
    tx: &mut Tx,
    rec: &RefreshTokenRecord,
    ip: &Option<String>,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    tx.revoke_session(
        rec.tenant_id,
        rec.user_id,
        rec.session_id,
        "REFRESH_TOKEN_REUSED",
        now,
    )
    .await?
    .then_some(())
    .ok_or_else(ServiceError::missing("session"))?;
    let mut reuse = event(
        "REFRESH_TOKEN_REUSED",
        Some(rec.tenant_id),
        Some(rec.user_id),
        ip,
        now,
    );
    reuse.detail = Some(json!({"session_id": rec.session_id}));
    record_event_in(tx, reuse).await?;
    Ok(())
}

/// A suspended tenant's users cannot sign in or stay signed in; answers
/// the tenant.
async fn check_tenant_trades(
    store: &Store,
    tenant: TenantId,
) -> Result<Option<TenantRecord>, ServiceError> {
    match store.tenant(tenant).await? {
        Some(t) if t.status == TenantStatus::Suspended => Err(ServiceError::TenantSuspended),
        found => Ok(found),
    }
}
