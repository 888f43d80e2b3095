//! Second factors (TOTP, recovery codes, WebAuthn credentials), sign-in
//! challenges, and tenant security policies.

use mpanel_domain::{TenantId, UserId};
use serde_json::Value;
use sqlx::Row;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Store, StoreResult, Tx};

#[derive(Clone, PartialEq, Eq)]
pub struct TotpRecord {
    /// The seed (base32), sealed (`v1:…`) bound to the tenant and user.
    pub secret: String,
    pub confirmed_at: Option<OffsetDateTime>,
    pub last_step: Option<i64>,
}

/// The seed never reaches a log through `{:?}`, sealed or not.
impl std::fmt::Debug for TotpRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpRecord")
            .field("secret", &"[redacted]")
            .field("confirmed_at", &self.confirmed_at)
            .field("last_step", &self.last_step)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebauthnCredential {
    pub id: Uuid,
    pub name: String,
    pub passkey: Value,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
}

/// A consumed challenge.
#[derive(Debug, Clone, PartialEq)]
pub struct Challenge {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub state: Option<Value>,
}

/// A login or WebAuthn ceremony to remember until it is answered.
#[derive(Debug, Clone, Copy)]
pub struct NewChallenge<'a> {
    pub tenant: TenantId,
    pub user: UserId,
    /// `MFA_LOGIN`, `WEBAUTHN_REGISTER` …
    pub kind: &'a str,
    pub token_hash: Option<&'a [u8]>,
    pub state: Option<&'a Value>,
    pub expires_at: OffsetDateTime,
}

impl Tx {
    /// Starts (or restarts, while unconfirmed) TOTP enrolment.
    pub async fn begin_totp(
        &mut self,
        tenant: TenantId,
        user: UserId,
        secret: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query("DELETE FROM mfa_totp WHERE user_id = $1 AND confirmed_at IS NULL")
                .bind(user.as_uuid())
                .execute(&mut *conn)
                .await?;
            sqlx::query(
                "INSERT INTO mfa_totp (user_id, tenant_id, secret, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(user.as_uuid())
            .bind(tenant.as_uuid())
            .bind(secret)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    pub async fn confirm_totp(
        &mut self,
        user: UserId,
        step: i64,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query("UPDATE mfa_totp SET confirmed_at = $2, last_step = $3 WHERE user_id = $1")
                .bind(user.as_uuid())
                .bind(now)
                .bind(step)
                .execute(conn)
                .await?;
        });
        Ok(())
    }

    /// Removes every second factor of a user.
    pub async fn delete_second_factors(&mut self, user: UserId) -> StoreResult<()> {
        for sql in [
            "DELETE FROM mfa_totp WHERE user_id = $1",
            "DELETE FROM mfa_recovery_codes WHERE user_id = $1",
            "DELETE FROM webauthn_credentials WHERE user_id = $1",
        ] {
            on_tx!(self, |conn| {
                sqlx::query(sql).bind(user.as_uuid()).execute(conn).await?;
            });
        }
        Ok(())
    }

    pub async fn replace_recovery_codes(
        &mut self,
        tenant: TenantId,
        user: UserId,
        hashes: &[Vec<u8>],
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
                .bind(user.as_uuid())
                .execute(&mut *conn)
                .await?;
        });
        for hash in hashes {
            on_tx!(self, |conn| {
                sqlx::query(
                    "INSERT INTO mfa_recovery_codes (id, tenant_id, user_id, code_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(Uuid::now_v7())
                .bind(tenant.as_uuid())
                .bind(user.as_uuid())
                .bind(hash)
                .bind(now)
                .execute(conn)
                .await?;
            });
        }
        Ok(())
    }

    pub async fn insert_webauthn_credential(
        &mut self,
        tenant: TenantId,
        user: UserId,
        name: &str,
        passkey: &Value,
        now: OffsetDateTime,
    ) -> StoreResult<Uuid> {
        let id = Uuid::now_v7();
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO webauthn_credentials (id, tenant_id, user_id, name, passkey, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .bind(name)
            .bind(Json(passkey))
            .bind(now)
            .execute(conn)
            .await?;
        });
        Ok(id)
    }

    pub async fn save_security_policy(
        &mut self,
        tenant: TenantId,
        policy: &Value,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO security_policies (tenant_id, policy, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (tenant_id) DO UPDATE SET policy = $2, updated_at = $3",
            )
            .bind(tenant.as_uuid())
            .bind(Json(policy))
            .bind(now)
            .execute(conn)
            .await?;
        });
        Ok(())
    }
}

impl Store {
    pub async fn totp(&self, user: UserId) -> StoreResult<Option<TotpRecord>> {
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(
                "SELECT secret, confirmed_at, last_step FROM mfa_totp WHERE user_id = $1",
            )
            .bind(user.as_uuid())
            .fetch_optional(p)
            .await?
            {
                None => None,
                Some(row) => Some(TotpRecord {
                    secret: row.try_get("secret")?,
                    confirmed_at: row.try_get("confirmed_at")?,
                    last_step: row.try_get("last_step")?,
                }),
            }
        });
        Ok(found)
    }

    /// Accepts time step `step` for the user once: `false` if it (or a
    /// later one) was accepted before, a replay.
    pub async fn accept_totp_step(&self, user: UserId, step: i64) -> StoreResult<bool> {
        let n = on_pool!(self.writer, |p| {
            sqlx::query(
                "UPDATE mfa_totp SET last_step = $2
                 WHERE user_id = $1 AND confirmed_at IS NOT NULL AND (last_step IS NULL OR last_step < $2)",
            )
            .bind(user.as_uuid())
            .bind(step)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// Uses a recovery code once; `false` if unknown or used.
    pub async fn use_recovery_code(
        &self,
        user: UserId,
        hash: &[u8],
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let n = on_pool!(self.writer, |p| {
            sqlx::query(
                "UPDATE mfa_recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
            )
            .bind(user.as_uuid())
            .bind(hash)
            .bind(now)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    pub async fn recovery_codes_left(&self, user: UserId) -> StoreResult<i64> {
        let n = on_pool!(self.pool, |p| {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NULL",
            )
            .bind(user.as_uuid())
            .fetch_one(p)
            .await?
        });
        Ok(n)
    }

    pub async fn webauthn_credentials(&self, user: UserId) -> StoreResult<Vec<WebauthnCredential>> {
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(
                "SELECT id, name, passkey, created_at, last_used_at FROM webauthn_credentials WHERE user_id = $1 ORDER BY id",
            )
            .bind(user.as_uuid())
            .fetch_all(p)
            .await?
            {
                let passkey: Json<Value> = row.try_get("passkey")?;
                out.push(WebauthnCredential {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    passkey: passkey.0,
                    created_at: row.try_get("created_at")?,
                    last_used_at: row.try_get("last_used_at")?,
                });
            }
            out
        });
        Ok(found)
    }

    pub async fn update_webauthn_credential(
        &self,
        id: Uuid,
        passkey: &Value,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_pool!(self.writer, |p| {
            sqlx::query(
                "UPDATE webauthn_credentials SET passkey = $2, last_used_at = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(Json(passkey))
            .bind(now)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Stores a challenge; `token_hash` finds it again (or its id does).
    pub async fn insert_challenge(&self, c: &NewChallenge<'_>) -> StoreResult<Uuid> {
        let NewChallenge {
            tenant,
            user,
            kind,
            token_hash,
            state,
            expires_at,
        } = *c;
        let id = Uuid::now_v7();
        on_pool!(self.writer, |p| {
            sqlx::query(
                "INSERT INTO auth_challenges (id, tenant_id, user_id, kind, token_hash, state, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(id)
            .bind(tenant.as_uuid())
            .bind(user.as_uuid())
            .bind(kind)
            .bind(token_hash)
            .bind(state.map(Json))
            .bind(expires_at)
            .execute(p)
            .await?;
        });
        Ok(id)
    }

    /// Consumes a live challenge of `kind` found by token hash: single use.
    pub async fn take_challenge(
        &self,
        kind: &str,
        token_hash: &[u8],
        now: OffsetDateTime,
    ) -> StoreResult<Option<Challenge>> {
        self.take_challenge_where("token_hash = $3", kind, ChallengeKey::Hash(token_hash), now)
            .await
    }

    /// Whose challenge of `kind` the token is, live or not: `(tenant,
    /// user, used)`; `None` when no challenge has that token. For telling
    /// the owner of a replayed or expired token's refusal.
    pub async fn challenge_owner(
        &self,
        kind: &str,
        token_hash: &[u8],
    ) -> StoreResult<Option<(TenantId, UserId, bool)>> {
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(
                "SELECT tenant_id, user_id, used_at FROM auth_challenges WHERE kind = $1 AND token_hash = $2",
            )
            .bind(kind)
            .bind(token_hash.to_vec())
            .fetch_optional(p)
            .await?
            {
                None => None,
                Some(row) => {
                    let used: Option<OffsetDateTime> = row.try_get("used_at")?;
                    Some((
                        TenantId::from_uuid(row.try_get("tenant_id")?),
                        UserId::from_uuid(row.try_get("user_id")?),
                        used.is_some(),
                    ))
                }
            }
        });
        Ok(found)
    }

    /// Consumes a live challenge of `kind` of this user, by id.
    pub async fn take_challenge_by_id(
        &self,
        kind: &str,
        id: Uuid,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Challenge>> {
        self.take_challenge_where("id = $3", kind, ChallengeKey::Id(id), now)
            .await
    }

    async fn take_challenge_where(
        &self,
        condition: &str,
        kind: &str,
        key: ChallengeKey<'_>,
        now: OffsetDateTime,
    ) -> StoreResult<Option<Challenge>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE auth_challenges SET used_at = $1
             WHERE kind = $2 AND {condition} AND used_at IS NULL AND expires_at > $1
             RETURNING id, tenant_id, user_id, state"
        ));
        let found = on_pool!(self.writer, |p| {
            let q = sqlx::query(sql).bind(now).bind(kind);
            let q = match key {
                ChallengeKey::Hash(h) => q.bind(h.to_vec()),
                ChallengeKey::Id(id) => q.bind(id),
            };
            match q.fetch_optional(p).await? {
                None => None,
                Some(row) => {
                    let state: Option<Json<Value>> = row.try_get("state")?;
                    Some(Challenge {
                        id: row.try_get("id")?,
                        tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
                        user_id: UserId::from_uuid(row.try_get("user_id")?),
                        state: state.map(|s| s.0),
                    })
                }
            }
        });
        Ok(found)
    }

    pub async fn security_policy(&self, tenant: TenantId) -> StoreResult<Option<Value>> {
        let found = on_pool!(self.pool, |p| {
            sqlx::query_scalar::<_, Json<Value>>(
                "SELECT policy FROM security_policies WHERE tenant_id = $1",
            )
            .bind(tenant.as_uuid())
            .fetch_optional(p)
            .await?
            .map(|j| j.0)
        });
        Ok(found)
    }
}

enum ChallengeKey<'a> {
    Hash(&'a [u8]),
    Id(Uuid),
}
