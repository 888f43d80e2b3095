//! Hosting accounts' measured disk use, and whether their quota is what
//! suspended them (written by the `hosting.disk_usage` job).

use std::collections::HashMap;

use mpanel_domain::provisioning::ResourceStatus;
use mpanel_domain::{CustomerId, ResourceId, ServerId, SubscriptionId, TenantId};
use sqlx::Row;
use time::OffsetDateTime;

use crate::error::parse_text;
use crate::{Store, StoreResult, Tx};

/// What the last measurement recorded about an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiskUsage {
    pub used_bytes: Option<i64>,
    pub measured_at: Option<OffsetDateTime>,
    /// The first measurement of the current stretch over quota.
    pub over_quota_since: Option<OffsetDateTime>,
    pub suspended_for_quota: bool,
}

/// A live hosting account as the measuring job sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskAccount {
    pub id: ResourceId,
    pub tenant_id: TenantId,
    pub subscription_id: SubscriptionId,
    pub server_id: ServerId,
    pub domain: String,
    pub status: ResourceStatus,
    pub quota_mb: Option<i64>,
    pub usage: DiskUsage,
}

const USAGE: &str = "disk_used_bytes, disk_measured_at, over_quota_since, suspended_for_quota";

macro_rules! usage_from_row {
    ($row:expr) => {{
        let row = $row;
        DiskUsage {
            used_bytes: row.try_get("disk_used_bytes")?,
            measured_at: row.try_get("disk_measured_at")?,
            over_quota_since: row.try_get("over_quota_since")?,
            suspended_for_quota: row.try_get("suspended_for_quota")?,
        }
    }};
}

macro_rules! account_from_row {
    ($row:expr) => {{
        let row = $row;
        DiskAccount {
            id: ResourceId::from_uuid(row.try_get("id")?),
            tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
            subscription_id: SubscriptionId::from_uuid(row.try_get("subscription_id")?),
            server_id: ServerId::from_uuid(row.try_get("server_id")?),
            domain: row.try_get("domain")?,
            status: parse_text("resource status", row.try_get("status")?)?,
            quota_mb: row.try_get("disk_quota_mb")?,
            usage: usage_from_row!(row),
        }
    }};
}

impl Store {
    /// The hosting accounts a web node serves (ACTIVE or SUSPENDED), by
    /// domain.
    pub async fn disk_accounts_on(&self, server: ServerId) -> StoreResult<Vec<DiskAccount>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT id, tenant_id, subscription_id, server_id, domain, status, disk_quota_mb, {USAGE}
             FROM hosting_accounts WHERE server_id = $1 AND status IN ('ACTIVE', 'SUSPENDED')
             ORDER BY domain"
        ));
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql).bind(server.as_uuid()).fetch_all(p).await? {
                out.push(account_from_row!(&row));
            }
            out
        });
        Ok(found)
    }

    /// The recorded disk use of the tenant's hosting accounts (optionally
    /// one customer's), by account id.
    pub async fn disk_usage_of(
        &self,
        tenant: TenantId,
        customer: Option<CustomerId>,
    ) -> StoreResult<HashMap<ResourceId, DiskUsage>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT id, {USAGE} FROM hosting_accounts
             WHERE tenant_id = $1 AND ($2 IS NULL OR customer_id = $2)"
        ));
        let found = on_pool!(self.pool, |p| {
            let mut out = HashMap::new();
            for row in sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(customer.map(|v| v.as_uuid()))
                .fetch_all(p)
                .await?
            {
                out.insert(
                    ResourceId::from_uuid(row.try_get("id")?),
                    usage_from_row!(&row),
                );
            }
            out
        });
        Ok(found)
    }
}

impl Tx {
    /// The account as it is now, read in this transaction; `None` when
    /// there is no such hosting account.
    pub async fn disk_account(&mut self, id: ResourceId) -> StoreResult<Option<DiskAccount>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT id, tenant_id, subscription_id, server_id, domain, status, disk_quota_mb, {USAGE}
             FROM hosting_accounts WHERE id = $1"
        ));
        let found = on_tx!(self, |conn| {
            match sqlx::query(sql)
                .bind(id.as_uuid())
                .fetch_optional(conn)
                .await?
            {
                Some(row) => Some(account_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    pub async fn save_disk_usage(&mut self, id: ResourceId, usage: &DiskUsage) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE hosting_accounts SET disk_used_bytes = $2, disk_measured_at = $3,
                    over_quota_since = $4, suspended_for_quota = $5 WHERE id = $1",
            )
            .bind(id.as_uuid())
            .bind(usage.used_bytes)
            .bind(usage.measured_at)
            .bind(usage.over_quota_since)
            .bind(usage.suspended_for_quota)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    /// The subscription's live hosting accounts its quota keeps suspended
    /// (a payment or staff's resume must leave them so).
    pub async fn held_by_quota(
        &mut self,
        tenant: TenantId,
        subscription: SubscriptionId,
    ) -> StoreResult<Vec<ResourceId>> {
        let found = on_tx!(self, |conn| {
            let mut out = Vec::new();
            for row in sqlx::query(
                "SELECT id FROM hosting_accounts
                 WHERE tenant_id = $1 AND subscription_id = $2 AND suspended_for_quota
                   AND status <> 'TERMINATED'",
            )
            .bind(tenant.as_uuid())
            .bind(subscription.as_uuid())
            .fetch_all(conn)
            .await?
            {
                out.push(ResourceId::from_uuid(row.try_get("id")?));
            }
            out
        });
        Ok(found)
    }
}
