//! Deleting what is only kept for a while: login throttle rows gone quiet,
//! spent or expired auth challenges, answered idempotency keys, security
//! events past their tenant's retention, and finished webhook deliveries
//! after a month. Unauthenticated callers create the first three, so
//! without this they grow without bound.

use mpanel_domain::TenantId;
use time::{Duration, OffsetDateTime};

use crate::{Store, StoreResult};

/// How many rows one pass deleted, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pruned {
    pub throttles: u64,
    pub challenges: u64,
    pub idempotency_keys: u64,
    pub security_events: u64,
    pub webhook_deliveries: u64,
}

/// A throttle row is forgotten an hour after its last failure anyway.
const THROTTLE_KEPT: Duration = Duration::days(1);
/// A challenge lives minutes; kept a day for the record.
const CHALLENGE_KEPT: Duration = Duration::days(1);
/// A retry with the same key within a week gets the first answer.
const IDEMPOTENCY_KEPT: Duration = Duration::days(7);
/// A finished webhook delivery stays visible (and redeliverable) a month;
/// every event of every endpoint writes one, so they are not kept for ever.
const WEBHOOK_DELIVERY_KEPT: Duration = Duration::days(30);

impl Store {
    async fn delete_before(&self, sql: &'static str, before: OffsetDateTime) -> StoreResult<u64> {
        let n = on_pool!(self.writer, |p| {
            sqlx::query(sql)
                .bind(before)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(n)
    }

    /// Deletes throttle rows, challenges and idempotency keys past their
    /// time (security events: [`Store::prune_security_events`]).
    pub async fn prune_short_lived(&self, now: OffsetDateTime) -> StoreResult<Pruned> {
        Ok(Pruned {
            throttles: self
                .delete_before(
                    "DELETE FROM login_throttle WHERE last_failure_at < $1
                       AND (locked_until IS NULL OR locked_until < $1)",
                    now - THROTTLE_KEPT,
                )
                .await?,
            challenges: self
                .delete_before(
                    "DELETE FROM auth_challenges WHERE expires_at < $1",
                    now - CHALLENGE_KEPT,
                )
                .await?,
            idempotency_keys: self
                .delete_before(
                    "DELETE FROM idempotency_keys WHERE created_at < $1",
                    now - IDEMPOTENCY_KEPT,
                )
                .await?,
            security_events: 0,
            webhook_deliveries: self
                .delete_before(
                    "DELETE FROM webhook_deliveries WHERE status <> 'PENDING' AND created_at < $1",
                    now - WEBHOOK_DELIVERY_KEPT,
                )
                .await?,
        })
    }

    /// Deletes `tenant`'s security events (`None`: those of no tenant)
    /// older than `before`.
    pub async fn prune_security_events(
        &self,
        tenant: Option<TenantId>,
        before: OffsetDateTime,
    ) -> StoreResult<u64> {
        let n = on_pool!(self.writer, |p| {
            match tenant {
                Some(t) => sqlx::query(
                    "DELETE FROM security_events WHERE tenant_id = $1 AND created_at < $2",
                )
                .bind(t.as_uuid())
                .bind(before)
                .execute(p)
                .await?
                .rows_affected(),
                None => sqlx::query(
                    "DELETE FROM security_events WHERE tenant_id IS NULL AND created_at < $1",
                )
                .bind(before)
                .execute(p)
                .await?
                .rows_affected(),
            }
        });
        Ok(n)
    }
}
