//! What provisioning made (DNS zones, hosting accounts, mailboxes), the
//! steps each subscription's provisioning finished, and the subscription's
//! activation.

use mpanel_domain::{ServerId, TenantId};
use serde_json::Value;
use sqlx::Row;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{Store, StoreResult, Tx};

/// A resource provisioning made: a zone, a site or a mailbox.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceRecord {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub customer_id: Uuid,
    pub subscription_id: Uuid,
    pub server_id: ServerId,
    /// The zone name, the site's domain, or the mailbox address.
    pub name: String,
    pub status: String,
    /// Sites: disk quota; mailboxes: quota.
    pub quota_mb: Option<i64>,
    pub php_version: Option<String>,
    pub archive_path: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// Which kind of resource, and its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    DnsZone,
    HostingAccount,
    MailAccount,
}

impl ResourceKind {
    fn select(self) -> &'static str {
        match self {
            Self::DnsZone => {
                "SELECT id, tenant_id, customer_id, subscription_id, server_id, name, status,
                    NULL AS quota_mb, NULL AS php_version, NULL AS archive_path, created_at, updated_at
                 FROM dns_zones"
            }
            Self::HostingAccount => {
                "SELECT id, tenant_id, customer_id, subscription_id, server_id, domain AS name, status,
                    disk_quota_mb AS quota_mb, php_version, archive_path, created_at, updated_at
                 FROM hosting_accounts"
            }
            Self::MailAccount => {
                "SELECT id, tenant_id, customer_id, subscription_id, server_id, address AS name, status,
                    quota_mb, NULL AS php_version, NULL AS archive_path, created_at, updated_at
                 FROM mail_accounts"
            }
        }
    }

    fn table(self) -> &'static str {
        match self {
            Self::DnsZone => "dns_zones",
            Self::HostingAccount => "hosting_accounts",
            Self::MailAccount => "mail_accounts",
        }
    }

    /// The status of a resource that is gone.
    pub fn gone(self) -> &'static str {
        match self {
            Self::HostingAccount => "TERMINATED",
            Self::DnsZone | Self::MailAccount => "DELETED",
        }
    }
}

macro_rules! resource_from_row {
    ($row:expr) => {{
        let row = $row;
        ResourceRecord {
            id: row.try_get("id")?,
            tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
            customer_id: row.try_get("customer_id")?,
            subscription_id: row.try_get("subscription_id")?,
            server_id: ServerId::from_uuid(row.try_get("server_id")?),
            name: row.try_get("name")?,
            status: row.try_get("status")?,
            quota_mb: row.try_get("quota_mb")?,
            php_version: row.try_get("php_version")?,
            archive_path: row.try_get("archive_path")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        }
    }};
}

/// The subscription a provisioning job works for.
#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionRef {
    pub id: Uuid,
    pub tenant_id: TenantId,
    pub customer_id: Uuid,
    pub product_id: mpanel_domain::ProductId,
    pub status: String,
}

impl Store {
    /// Resources of `kind` of one subscription that are not gone.
    pub async fn resources_of(
        &self,
        kind: ResourceKind,
        subscription: Uuid,
    ) -> StoreResult<Vec<ResourceRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "{} WHERE subscription_id = $1 AND status <> $2 ORDER BY created_at, id",
            kind.select()
        ));
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(subscription)
                .bind(kind.gone())
                .fetch_all(p)
                .await?
            {
                out.push(resource_from_row!(&row));
            }
            out
        });
        Ok(found)
    }

    /// One resource of the tenant.
    pub async fn resource(
        &self,
        kind: ResourceKind,
        tenant: TenantId,
        id: Uuid,
    ) -> StoreResult<ResourceRecord> {
        let sql = sqlx::AssertSqlSafe(format!(
            "{} WHERE tenant_id = $1 AND id = $2",
            kind.select()
        ));
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(id)
                .fetch_optional(p)
                .await?
            {
                Some(row) => Some(resource_from_row!(&row)),
                None => None,
            }
        });
        found.ok_or(crate::StoreError::NotFound)
    }

    /// The tenant's resources of `kind` (optionally one customer's), newest first.
    pub async fn list_resources(
        &self,
        kind: ResourceKind,
        tenant: TenantId,
        customer: Option<Uuid>,
        limit: u32,
    ) -> StoreResult<Vec<ResourceRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "{} WHERE tenant_id = $1 AND ($2 IS NULL OR customer_id = $2) ORDER BY created_at DESC, id DESC LIMIT $3",
            kind.select()
        ));
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(customer)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await?
            {
                out.push(resource_from_row!(&row));
            }
            out
        });
        Ok(found)
    }

    /// How many live resources of `kind` each server holds.
    pub async fn server_usage(&self, kind: ResourceKind) -> StoreResult<Vec<(ServerId, i64)>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT server_id, COUNT(*) AS n FROM {} WHERE status <> $1 GROUP BY server_id",
            kind.table()
        ));
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql).bind(kind.gone()).fetch_all(p).await? {
                out.push((
                    ServerId::from_uuid(row.try_get("server_id")?),
                    row.try_get::<i64, _>("n")?,
                ));
            }
            out
        });
        Ok(found)
    }

    pub async fn insert_resource(&self, kind: ResourceKind, r: &ResourceRecord) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        tx.insert_resource(kind, r).await?;
        tx.commit().await
    }

    pub async fn set_resource_status(
        &self,
        kind: ResourceKind,
        id: Uuid,
        status: &str,
        archive_path: Option<&str>,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        let archive = if kind == ResourceKind::HostingAccount {
            ", archive_path = COALESCE($4, archive_path)"
        } else {
            ""
        };
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE {} SET status = $2, updated_at = $3{archive} WHERE id = $1",
            kind.table()
        ));
        on_pool!(self.pool, |p| {
            let mut q = sqlx::query(sql).bind(id).bind(status).bind(now);
            if kind == ResourceKind::HostingAccount {
                q = q.bind(archive_path);
            }
            q.execute(p).await?;
        });
        Ok(())
    }

    /// The subscription's tenant, customer and status.
    pub async fn subscription_ref(&self, id: Uuid) -> StoreResult<SubscriptionRef> {
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(
                "SELECT id, tenant_id, customer_id, product_id, status FROM subscriptions WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(p)
            .await?
            {
                Some(row) => Some(SubscriptionRef {
                    id: row.try_get("id")?,
                    tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
                    customer_id: row.try_get("customer_id")?,
                    product_id: mpanel_domain::ProductId::from_uuid(row.try_get("product_id")?),
                    status: row.try_get("status")?,
                }),
                None => None,
            }
        });
        found.ok_or(crate::StoreError::NotFound)
    }

    /// The steps of a subscription's provisioning and their state.
    pub async fn provisioning_steps(
        &self,
        subscription: Uuid,
    ) -> StoreResult<Vec<(String, String, Option<Value>)>> {
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(
                "SELECT step, state, detail FROM provisioning_steps WHERE subscription_id = $1",
            )
            .bind(subscription)
            .fetch_all(p)
            .await?
            {
                let detail: Option<Json<Value>> = row.try_get("detail")?;
                out.push((
                    row.try_get("step")?,
                    row.try_get("state")?,
                    detail.map(|d| d.0),
                ));
            }
            out
        });
        Ok(found)
    }

    pub async fn mark_provisioning_step(
        &self,
        subscription: Uuid,
        step: &str,
        state: &str,
        detail: Option<&Value>,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_pool!(self.pool, |p| {
            sqlx::query(
                "INSERT INTO provisioning_steps (subscription_id, step, state, detail, updated_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (subscription_id, step) DO UPDATE SET state = excluded.state,
                    detail = COALESCE(excluded.detail, provisioning_steps.detail), updated_at = excluded.updated_at",
            )
            .bind(subscription)
            .bind(step)
            .bind(state)
            .bind(detail.map(Json))
            .bind(now)
            .execute(p)
            .await?;
        });
        Ok(())
    }
}

impl Tx {
    /// How many resources of `kind` the subscription holds that are not
    /// gone, read inside this transaction (after the subscription is locked,
    /// a count no concurrent insert can pass).
    pub async fn count_live_resources(
        &mut self,
        kind: ResourceKind,
        subscription: Uuid,
    ) -> StoreResult<i64> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {} WHERE subscription_id = $1 AND status <> $2",
            kind.table()
        ));
        let n = on_tx!(self, |conn| {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(subscription)
                .bind(kind.gone())
                .fetch_one(conn)
                .await?
        });
        Ok(n)
    }
}

impl Tx {
    pub async fn insert_resource(
        &mut self,
        kind: ResourceKind,
        r: &ResourceRecord,
    ) -> StoreResult<()> {
        let sql = match kind {
            ResourceKind::DnsZone => {
                "INSERT INTO dns_zones (id, tenant_id, customer_id, subscription_id, server_id, name, status,
                    created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            }
            ResourceKind::HostingAccount => {
                "INSERT INTO hosting_accounts (id, tenant_id, customer_id, subscription_id, server_id, domain,
                    status, created_at, updated_at, disk_quota_mb, php_version)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            }
            ResourceKind::MailAccount => {
                "INSERT INTO mail_accounts (id, tenant_id, customer_id, subscription_id, server_id, address,
                    status, created_at, updated_at, quota_mb)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            }
        };
        on_tx!(self, |conn| {
            let mut q = sqlx::query(sql)
                .bind(r.id)
                .bind(r.tenant_id.as_uuid())
                .bind(r.customer_id)
                .bind(r.subscription_id)
                .bind(r.server_id.as_uuid())
                .bind(&r.name)
                .bind(&r.status)
                .bind(r.created_at)
                .bind(r.updated_at);
            match kind {
                ResourceKind::DnsZone => {}
                ResourceKind::HostingAccount => q = q.bind(r.quota_mb).bind(&r.php_version),
                ResourceKind::MailAccount => q = q.bind(r.quota_mb),
            }
            q.execute(conn).await?;
        });
        Ok(())
    }

    /// PENDING_ACTIVATION → ACTIVE with the resource it runs; its domains
    /// become ACTIVE. `false` if it was not waiting.
    pub async fn activate_subscription(
        &mut self,
        id: Uuid,
        external_ref: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let n = on_tx!(self, |conn| {
            let n = sqlx::query(
                "UPDATE subscriptions SET status = 'ACTIVE', external_ref = $2, updated_at = $3
                 WHERE id = $1 AND status = 'PENDING_ACTIVATION'",
            )
            .bind(id)
            .bind(external_ref)
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            sqlx::query("UPDATE domains SET status = 'ACTIVE', updated_at = $2 WHERE subscription_id = $1 AND status = 'PENDING'")
                .bind(id)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            n
        });
        Ok(n == 1)
    }
}
