//! Usage records: what metered subscriptions consumed, each recorded once
//! per (subscription, idempotency key), charged in arrears by the run.

use std::collections::HashMap;

use mpanel_domain::{SubscriptionId, TenantId};
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{QueryBuilder, Row};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::tx::TxInner;
use crate::{Engine, StoreResult, Tx};

/// A usage record to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUsage {
    pub subscription: SubscriptionId,
    pub metric: String,
    pub quantity: i64,
    pub occurred_at: OffsetDateTime,
    pub idempotency_key: String,
}

/// A subscription usage may be recorded against: its status and its
/// product's usage block.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageTarget {
    pub subscription: SubscriptionId,
    pub status: String,
    pub usage: Option<Value>,
}

impl Tx {
    /// The tenant's subscriptions among `ids` (others are absent). On
    /// PostgreSQL each is held `FOR KEY SHARE` until this transaction
    /// ends, taken in id order: a transaction ending a term first takes
    /// its subscription `FOR UPDATE` ([`Tx::close_usage_of`]), so this
    /// waits for it and then reads the subscription as it left it (ended:
    /// the usage is refused), or it goes first and the term's final
    /// invoice waits for the usage written here. Without the lock the
    /// status read here could be one a term ending meanwhile replaces,
    /// and the usage would be kept and never billed. The billing run's
    /// own lock (`FOR NO KEY UPDATE`) does not conflict with it.
    pub async fn usage_targets(
        &mut self,
        tenant: TenantId,
        ids: &[SubscriptionId],
    ) -> StoreResult<Vec<UsageTarget>> {
        let subs = self.usage_subscriptions(tenant, ids).await?;
        let mut products: Vec<Uuid> = subs.iter().map(|s| s.2).collect();
        products.sort_unstable();
        products.dedup();
        let usage = self.products_usage(&products).await?;
        Ok(subs
            .into_iter()
            .map(|(subscription, status, product)| UsageTarget {
                subscription,
                status,
                usage: usage.get(&product).cloned().flatten(),
            })
            .collect())
    }

    /// The subscriptions of [`Tx::usage_targets`], each with its status and
    /// product, locked on PostgreSQL. Its product is read apart: a row
    /// locked after a wait is read again as the transaction it waited for
    /// left it, but with a join the product row would be the one read
    /// before the wait, and a subscription moved to another product
    /// meanwhile would match neither and go missing.
    async fn usage_subscriptions(
        &mut self,
        tenant: TenantId,
        ids: &[SubscriptionId],
    ) -> StoreResult<Vec<(SubscriptionId, String, Uuid)>> {
        let mut sorted = ids.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let locks = self.engine() == Engine::Postgres;
        let mut out = Vec::with_capacity(sorted.len());
        for chunk in sorted.chunks(10_000) {
            on_tx!(self, |conn| {
                // By primary key; the tenant is checked below (and on
                // PostgreSQL here too, so no other tenant's row is locked).
                let mut q = QueryBuilder::new(
                    "SELECT id, status, product_id, tenant_id FROM subscriptions WHERE id IN (",
                );
                let mut sep = q.separated(", ");
                for id in chunk {
                    sep.push_bind(id.as_uuid());
                }
                q.push(")");
                if locks {
                    q.push(" AND tenant_id = ");
                    q.push_bind(tenant.as_uuid());
                    q.push(" ORDER BY id FOR KEY SHARE");
                }
                for row in q.build().fetch_all(&mut *conn).await? {
                    let owner: Uuid = row.try_get(3)?;
                    if owner == tenant.as_uuid() {
                        out.push((
                            SubscriptionId::from_uuid(row.try_get(0)?),
                            row.try_get(1)?,
                            row.try_get(2)?,
                        ));
                    }
                }
            });
        }
        Ok(out)
    }

    /// Each product's usage terms (`None`: it meters nothing).
    async fn products_usage(
        &mut self,
        products: &[Uuid],
    ) -> StoreResult<HashMap<Uuid, Option<Value>>> {
        let mut out = HashMap::with_capacity(products.len());
        for chunk in products.chunks(10_000) {
            on_tx!(self, |conn| {
                let mut q = QueryBuilder::new("SELECT id, usage FROM products WHERE id IN (");
                let mut sep = q.separated(", ");
                for id in chunk {
                    sep.push_bind(*id);
                }
                q.push(")");
                for row in q.build().fetch_all(&mut *conn).await? {
                    let usage: Option<Json<Value>> = row.try_get(1)?;
                    out.insert(row.try_get(0)?, usage.map(|u| u.0));
                }
            });
        }
        Ok(out)
    }

    /// Inserts the records; a (subscription, key) seen before is skipped.
    /// Returns how many were new.
    pub async fn insert_usage(
        &mut self,
        tenant: TenantId,
        records: &[NewUsage],
        now: OffsetDateTime,
    ) -> StoreResult<u64> {
        let mut inserted = 0;
        match &mut self.inner {
            TxInner::Postgres(conn) => {
                // One statement of arrays: far fewer parameters to bind.
                for chunk in records.chunks(10_000) {
                    let subs: Vec<Uuid> = chunk.iter().map(|r| r.subscription.as_uuid()).collect();
                    let keys: Vec<&str> =
                        chunk.iter().map(|r| r.idempotency_key.as_str()).collect();
                    let metrics: Vec<&str> = chunk.iter().map(|r| r.metric.as_str()).collect();
                    let quantities: Vec<i64> = chunk.iter().map(|r| r.quantity).collect();
                    let times: Vec<OffsetDateTime> = chunk.iter().map(|r| r.occurred_at).collect();
                    inserted += sqlx::query(
                        "INSERT INTO usage_records (subscription_id, idempotency_key, tenant_id, metric,
                            quantity, occurred_at, created_at)
                         SELECT u.s, u.k, $1, u.m, u.q, u.t, $2
                         FROM UNNEST($3::uuid[], $4::text[], $5::text[], $6::bigint[], $7::timestamptz[])
                            AS u(s, k, m, q, t)
                         ON CONFLICT (subscription_id, idempotency_key) DO NOTHING",
                    )
                    .bind(tenant.as_uuid())
                    .bind(now)
                    .bind(&subs)
                    .bind(&keys)
                    .bind(&metrics)
                    .bind(&quantities)
                    .bind(&times)
                    .execute(&mut **conn)
                    .await?
                    .rows_affected();
                }
            }
            TxInner::Sqlite(conn) => {
                for chunk in records.chunks(4_000) {
                    let mut q = QueryBuilder::new(
                        "INSERT INTO usage_records (subscription_id, idempotency_key, tenant_id, metric,
                            quantity, occurred_at, created_at) ",
                    );
                    q.push_values(chunk, |mut b, r| {
                        b.push_bind(r.subscription.as_uuid())
                            .push_bind(&r.idempotency_key)
                            .push_bind(tenant.as_uuid())
                            .push_bind(&r.metric)
                            .push_bind(r.quantity)
                            .push_bind(r.occurred_at)
                            .push_bind(now);
                    });
                    q.push(" ON CONFLICT (subscription_id, idempotency_key) DO NOTHING");
                    inserted += q.build().execute(&mut **conn).await?.rows_affected();
                }
            }
        }
        Ok(inserted)
    }
}
