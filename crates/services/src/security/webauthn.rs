//! WebAuthn (passkeys and security keys) as a second factor. Ceremony
//! state is kept server-side, single use, with an expiry.

use std::sync::Arc;

use mpanel_domain::{Clock, TenantId, UserId};
use mpanel_store::Store;
use mpanel_store::identity::second_factors::NewChallenge;
use serde_json::{Value, json};
use time::Duration;
use uuid::Uuid;
use webauthn_rs::prelude::{Passkey, PasskeyAuthentication, PasskeyRegistration, Url};
use webauthn_rs::{Webauthn, WebauthnBuilder};

use super::event;
use crate::{Context, ServiceError};

const CEREMONY_TTL: Duration = Duration::minutes(5);

/// The relying party: its id (a domain) and origin (the panel's URL).
#[derive(Clone)]
pub struct Passkeys {
    webauthn: Arc<Webauthn>,
}

impl std::fmt::Debug for Passkeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passkeys")
    }
}

fn internal(e: impl std::error::Error + Send + Sync + 'static) -> ServiceError {
    ServiceError::Internal(anyhow::Error::new(e))
}

impl Passkeys {
    pub fn new(rp_id: &str, origin: &str) -> Result<Self, ServiceError> {
        let origin = Url::parse(origin)
            .map_err(|e| ServiceError::invalid("webauthn_origin", e.to_string()))?;
        let webauthn = WebauthnBuilder::new(rp_id, &origin)
            .map_err(|e| ServiceError::invalid("webauthn_rp_id", e.to_string()))?
            .rp_name("mPanel")
            .build()
            .map_err(|e| ServiceError::invalid("webauthn_rp_id", e.to_string()))?;
        Ok(Self {
            webauthn: Arc::new(webauthn),
        })
    }

    /// Starts registering a passkey; returns the browser's options and the
    /// ceremony id to finish with.
    pub async fn register_start(&self, cx: &Context) -> Result<(Value, Uuid), ServiceError> {
        let (store, clock, who) = (&cx.store, cx.clock.as_ref(), &cx.principal);
        crate::identity::step_up::require_recent(who, clock.now())?;
        let existing: Vec<Passkey> = passkeys(store, who.user_id)
            .await?
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        let exclude = Some(existing.iter().map(|p| p.cred_id().clone()).collect());
        let (options, state) = self
            .webauthn
            .start_passkey_registration(who.user_id.as_uuid(), &who.email, &who.email, exclude)
            .map_err(internal)?;
        let state = serde_json::to_value(&state).map_err(internal)?;
        let id = store
            .insert_challenge(&NewChallenge {
                tenant: who.tenant_id,
                user: who.user_id,
                kind: "WEBAUTHN_REGISTER",
                token_hash: None,
                state: Some(&state),
                expires_at: clock.now() + CEREMONY_TTL,
            })
            .await?;
        Ok((serde_json::to_value(&options).map_err(internal)?, id))
    }

    /// Finishes registration: stores the credential, ends other sessions.
    pub async fn register_finish(
        &self,
        cx: &Context,
        answer: RegistrationAnswer<'_>,
    ) -> Result<Uuid, ServiceError> {
        let (store, clock, who, actor) = (&cx.store, cx.clock.as_ref(), &cx.principal, &cx.actor);
        let RegistrationAnswer {
            ceremony,
            response,
            name,
        } = answer;
        let now = clock.now();
        let challenge = store
            .take_challenge_by_id("WEBAUTHN_REGISTER", ceremony, now)
            .await?
            .filter(|c| c.user_id == who.user_id)
            .ok_or_else(|| {
                ServiceError::invalid(
                    "ceremony_id",
                    "no such registration in progress (expired or used)",
                )
            })?;
        let state: PasskeyRegistration =
            serde_json::from_value(challenge.state.unwrap_or_default()).map_err(internal)?;
        let credential = serde_json::from_value(response.clone())
            .map_err(|e| ServiceError::invalid("credential", e.to_string()))?;
        let passkey = self
            .webauthn
            .finish_passkey_registration(&credential, &state)
            .map_err(|e| ServiceError::invalid("credential", e.to_string()))?;
        let stored = serde_json::to_value(&passkey).map_err(internal)?;
        let ip = crate::notify::security_notice::caller_ip(cx);
        let mut tx = store.begin().await?;
        let id = tx
            .insert_webauthn_credential(who.tenant_id, who.user_id, name, &stored, now)
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
            after: Some(json!({"method": "WEBAUTHN", "name": name})),
            at: now,
        }))
        .await?;
        use crate::notify::mfa_changed::{MfaChange, enqueue_in};
        enqueue_in(&mut tx, cx, MfaChange::PasskeyAdded, Some(name), ip).await?;
        tx.commit().await?;
        event(
            store,
            who.tenant_id,
            Some(who.user_id),
            "MFA_ENROLLED",
            None,
            Some(json!({"method": "WEBAUTHN"})),
            now,
        )
        .await;
        Ok(id)
    }

    /// Starts an authentication for a login in progress: the browser's
    /// options and the state to keep with the login challenge.
    pub async fn login_start(
        &self,
        store: &Store,
        user: UserId,
    ) -> Result<Option<(Value, Value)>, ServiceError> {
        let keys: Vec<Passkey> = passkeys(store, user)
            .await?
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        if keys.is_empty() {
            return Ok(None);
        }
        let (options, state) = self
            .webauthn
            .start_passkey_authentication(&keys)
            .map_err(internal)?;
        Ok(Some((
            serde_json::to_value(&options).map_err(internal)?,
            serde_json::to_value(&state).map_err(internal)?,
        )))
    }

    /// Checks the authenticator's answer against the kept state.
    pub async fn login_finish(
        &self,
        store: &Store,
        clock: &dyn Clock,
        answer: PasskeyAnswer<'_>,
        ip: Option<String>,
    ) -> Result<(), ServiceError> {
        let PasskeyAnswer {
            tenant,
            user,
            state,
            response,
        } = answer;
        let now = clock.now();
        let state: PasskeyAuthentication =
            serde_json::from_value(state.clone()).map_err(internal)?;
        let credential = serde_json::from_value(response.clone())
            .map_err(|e| ServiceError::invalid("webauthn_response", e.to_string()))?;
        let result = match self
            .webauthn
            .finish_passkey_authentication(&credential, &state)
        {
            Ok(r) => r,
            Err(e) => {
                event(
                    store,
                    tenant,
                    Some(user),
                    "MFA_FAILED",
                    ip,
                    Some(json!({"method": "WEBAUTHN"})),
                    now,
                )
                .await;
                return Err(ServiceError::invalid("webauthn_response", e.to_string()));
            }
        };
        for (id, mut key) in passkeys(store, user).await? {
            if key.update_credential(&result).is_some() {
                let stored = serde_json::to_value(&key).map_err(internal)?;
                store.update_webauthn_credential(id, &stored, now).await?;
            }
        }
        event(
            store,
            tenant,
            Some(user),
            "MFA_USED",
            ip,
            Some(json!({"method": "WEBAUTHN"})),
            now,
        )
        .await;
        Ok(())
    }
}

/// A passkey registration to finish: the ceremony begun by
/// `register_start`, the authenticator's answer, and the key's name.
pub struct RegistrationAnswer<'a> {
    pub ceremony: Uuid,
    pub response: &'a Value,
    pub name: &'a str,
}

/// A passkey sign-in to check: whose it is, the state kept when it began
/// and the authenticator's answer.
pub struct PasskeyAnswer<'a> {
    pub tenant: TenantId,
    pub user: UserId,
    pub state: &'a Value,
    pub response: &'a Value,
}

async fn passkeys(store: &Store, user: UserId) -> Result<Vec<(Uuid, Passkey)>, ServiceError> {
    store
        .webauthn_credentials(user)
        .await?
        .into_iter()
        .map(|c| {
            serde_json::from_value(c.passkey)
                .map(|p| (c.id, p))
                .map_err(internal)
        })
        .collect()
}
