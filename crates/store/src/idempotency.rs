//! The marketing site's webhook secrets and idempotency keys: the first
//! answer to a key is kept and replayed; a key is fenced by the time its
//! holder took it, so a takeover cannot let two requests both finish.

use mpanel_domain::TenantId;
use sqlx::Row;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Store, StoreError, StoreResult, Tx};

/// How a request with an idempotency key may go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyStart {
    /// First time: go ahead. The key is held since `held_since`, which
    /// fences the request's writes (a takeover changes it).
    Fresh { held_since: OffsetDateTime },
    /// Done before: answer this again.
    Replay { status: u16, body: String },
    /// Another request with this key is still running.
    InFlight,
    /// The key was used with a different request.
    Mismatch,
}

/// A key held longer than this by an unfinished request is taken over.
const ABANDONED_AFTER: time::Duration = time::Duration::minutes(1);

impl Tx {
    /// Stores a webhook secret under `id` (the caller seals it bound to
    /// that id, so it picks the id).
    pub async fn insert_webhook_secret(
        &mut self,
        id: Uuid,
        tenant: TenantId,
        sealed: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query("INSERT INTO webhook_secrets (id, tenant_id, secret, created_at) VALUES ($1, $2, $3, $4)")
                .bind(id)
                .bind(tenant.as_uuid())
                .bind(sealed)
                .bind(now)
                .execute(conn)
                .await?;
        });
        Ok(())
    }

    /// The current secrets stop being current and expire at `expires_at`.
    pub async fn retire_webhook_secrets(
        &mut self,
        tenant: TenantId,
        expires_at: OffsetDateTime,
    ) -> StoreResult<()> {
        on_tx!(self, |conn| {
            // Live secrets end at `expires_at` at the latest: a secret still
            // in its grace is cut short too when the old ones are revoked.
            sqlx::query(
                "UPDATE webhook_secrets SET expires_at = $2
                 WHERE tenant_id = $1 AND (expires_at IS NULL OR expires_at > $2)",
            )
            .bind(tenant.as_uuid())
            .bind(expires_at)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    /// Stores the response for the key this request holds; `Conflict` if
    /// another request took the key over meanwhile (this one must not commit).
    pub async fn finish_idempotency(
        &mut self,
        tenant: TenantId,
        key: &str,
        held_since: OffsetDateTime,
        status: u16,
        body: &str,
    ) -> StoreResult<()> {
        let n = on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE idempotency_keys SET state = 'DONE', response_status = $3, response_body = $4
                 WHERE tenant_id = $1 AND key = $2 AND state = 'IN_FLIGHT' AND created_at = $5",
            )
            .bind(tenant.as_uuid())
            .bind(key)
            .bind(i32::from(status))
            .bind(body)
            .bind(held_since)
            .execute(conn)
            .await?
            .rows_affected()
        });
        if n != 1 {
            return Err(StoreError::Conflict("idempotency key taken over".into()));
        }
        Ok(())
    }
}

impl Store {
    /// The secrets that sign a tenant's webhooks now (current and rotated-out
    /// ones in their grace period), sealed, with their row ids.
    pub async fn webhook_secrets(
        &self,
        tenant: TenantId,
        now: OffsetDateTime,
    ) -> StoreResult<Vec<(Uuid, String)>> {
        let secrets = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(
                "SELECT id, secret FROM webhook_secrets WHERE tenant_id = $1 AND (expires_at IS NULL OR expires_at > $2)
                 ORDER BY id DESC",
            )
            .bind(tenant.as_uuid())
            .bind(now)
            .fetch_all(p)
            .await?
            {
                out.push((row.try_get("id")?, row.try_get("secret")?));
            }
            out
        });
        Ok(secrets)
    }

    /// Takes the key for this request, or says why not.
    pub async fn start_idempotency(
        &self,
        tenant: TenantId,
        key: &str,
        request_hash: &[u8],
        now: OffsetDateTime,
    ) -> StoreResult<IdempotencyStart> {
        let mut tx = self.begin().await?;
        let inserted = on_tx!(tx, |conn| {
            sqlx::query(
                "INSERT INTO idempotency_keys (tenant_id, key, request_hash, state, created_at)
                 VALUES ($1, $2, $3, 'IN_FLIGHT', $4) ON CONFLICT (tenant_id, key) DO NOTHING",
            )
            .bind(tenant.as_uuid())
            .bind(key)
            .bind(request_hash)
            .bind(now)
            .execute(conn)
            .await?
            .rows_affected()
        });
        let start = if inserted == 1 {
            IdempotencyStart::Fresh { held_since: now }
        } else {
            let row = on_tx!(tx, |conn| {
                let row = sqlx::query(
                    "SELECT request_hash, state, response_status, response_body, created_at
                     FROM idempotency_keys WHERE tenant_id = $1 AND key = $2",
                )
                .bind(tenant.as_uuid())
                .bind(key)
                .fetch_one(conn)
                .await?;
                let hash: Vec<u8> = row.try_get("request_hash")?;
                let state: String = row.try_get("state")?;
                let status: Option<i32> = row.try_get("response_status")?;
                let body: Option<String> = row.try_get("response_body")?;
                let created: OffsetDateTime = row.try_get("created_at")?;
                (hash, state, status, body, created)
            });
            let (hash, state, status, body, created) = row;
            if hash != request_hash {
                IdempotencyStart::Mismatch
            } else if state == "DONE" {
                IdempotencyStart::Replay {
                    status: u16::try_from(status.unwrap_or(200)).unwrap_or(200),
                    body: body.unwrap_or_default(),
                }
            } else if now - created < ABANDONED_AFTER {
                IdempotencyStart::InFlight
            } else {
                // Take over an abandoned key, unless another request just did.
                let taken = on_tx!(tx, |conn| {
                    sqlx::query(
                        "UPDATE idempotency_keys SET created_at = $3
                         WHERE tenant_id = $1 AND key = $2 AND state = 'IN_FLIGHT' AND created_at = $4",
                    )
                    .bind(tenant.as_uuid())
                    .bind(key)
                    .bind(now)
                    .bind(created)
                    .execute(conn)
                    .await?
                    .rows_affected()
                });
                if taken == 1 {
                    IdempotencyStart::Fresh { held_since: now }
                } else {
                    IdempotencyStart::InFlight
                }
            }
        };
        tx.commit().await?;
        Ok(start)
    }

    /// Lets go of a key whose request failed, so a retry runs afresh
    /// (unless another request has taken it over).
    pub async fn abandon_idempotency(
        &self,
        tenant: TenantId,
        key: &str,
        held_since: OffsetDateTime,
    ) -> StoreResult<()> {
        on_pool!(self.writer, |p| {
            sqlx::query(
                "DELETE FROM idempotency_keys
                 WHERE tenant_id = $1 AND key = $2 AND state = 'IN_FLIGHT' AND created_at = $3",
            )
            .bind(tenant.as_uuid())
            .bind(key)
            .bind(held_since)
            .execute(p)
            .await?;
        });
        Ok(())
    }
}
