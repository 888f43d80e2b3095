//! What provisioning made (DNS zones, hosting accounts, mailboxes), the
//! steps each subscription's provisioning finished, and the subscription's
//! activation.

use mpanel_domain::billing::subscription::SubscriptionStatus;
use mpanel_domain::provisioning::{ResourceStatus, StepState};
use mpanel_domain::{CustomerId, ResourceId, ServerId, SubscriptionId, TenantId};
use serde_json::Value;
use sqlx::Row;
use sqlx::types::Json;
use time::OffsetDateTime;

use crate::error::parse_text;
use crate::{Store, StoreResult, Tx};

/// Which resources a page shows.
#[derive(Debug, Clone, Default)]
pub struct ResourceQuery<'a> {
    pub customer: Option<CustomerId>,
    pub status: Option<ResourceStatus>,
    /// All but those in this state (the gone ones).
    pub without: Option<ResourceStatus>,
    /// Part of the name (domain, zone or address), any case.
    pub name_contains: Option<&'a str>,
    /// Those created before this one (the page's cursor).
    pub before: Option<ResourceId>,
    pub limit: u32,
}

/// A resource provisioning made: a zone, a site or a mailbox.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceRecord {
    pub id: ResourceId,
    pub tenant_id: TenantId,
    pub customer_id: CustomerId,
    pub subscription_id: SubscriptionId,
    pub server_id: ServerId,
    /// The zone name, the site's domain, or the mailbox address.
    pub name: String,
    pub status: ResourceStatus,
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
    pub fn gone(self) -> ResourceStatus {
        match self {
            Self::HostingAccount => ResourceStatus::Terminated,
            Self::DnsZone | Self::MailAccount => ResourceStatus::Deleted,
        }
    }
}

macro_rules! resource_from_row {
    ($row:expr) => {{
        let row = $row;
        ResourceRecord {
            id: ResourceId::from_uuid(row.try_get("id")?),
            tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
            customer_id: CustomerId::from_uuid(row.try_get("customer_id")?),
            subscription_id: SubscriptionId::from_uuid(row.try_get("subscription_id")?),
            server_id: ServerId::from_uuid(row.try_get("server_id")?),
            name: row.try_get("name")?,
            status: parse_text("resource status", row.try_get("status")?)?,
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
    pub id: SubscriptionId,
    pub tenant_id: TenantId,
    pub customer_id: CustomerId,
    pub product_id: mpanel_domain::ProductId,
    pub status: SubscriptionStatus,
}

impl Store {
    /// Resources of `kind` of one subscription that are not gone.
    pub async fn resources_of(
        &self,
        kind: ResourceKind,
        subscription: SubscriptionId,
    ) -> StoreResult<Vec<ResourceRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "{} WHERE subscription_id = $1 AND status <> $2 ORDER BY created_at, id",
            kind.select()
        ));
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(subscription.as_uuid())
                .bind(kind.gone().as_str())
                .fetch_all(p)
                .await?
            {
                out.push(resource_from_row!(&row));
            }
            out
        });
        Ok(found)
    }

    /// One resource of the tenant; `None` when the tenant has no such
    /// resource of `kind`.
    pub async fn resource(
        &self,
        kind: ResourceKind,
        tenant: TenantId,
        id: ResourceId,
    ) -> StoreResult<Option<ResourceRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "{} WHERE tenant_id = $1 AND id = $2",
            kind.select()
        ));
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(p)
                .await?
            {
                Some(row) => Some(resource_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// The tenant's resources of `kind` (optionally one customer's), newest first.
    pub async fn list_resources(
        &self,
        kind: ResourceKind,
        tenant: TenantId,
        customer: Option<CustomerId>,
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
                .bind(customer.map(|v| v.as_uuid()))
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

    /// A page of the tenant's resources of `kind`, newest first, as
    /// `query` narrows them.
    pub async fn resources_page(
        &self,
        kind: ResourceKind,
        tenant: TenantId,
        query: &ResourceQuery<'_>,
    ) -> StoreResult<Vec<ResourceRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT * FROM ({}) r
             WHERE tenant_id = $1 AND ($2 IS NULL OR customer_id = $2) AND ($3 IS NULL OR status = $3)
               AND ($4 IS NULL OR lower(name) LIKE lower($4) ESCAPE '\\') AND ($5 IS NULL OR id < $5)
               AND ($7 IS NULL OR status <> $7)
             ORDER BY id DESC LIMIT $6",
            kind.select()
        ));
        let pattern = query.name_contains.map(crate::contains_pattern);
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(query.customer.map(|v| v.as_uuid()))
                .bind(query.status.map(|s| s.as_str()))
                .bind(pattern.as_deref())
                .bind(query.before.map(|v| v.as_uuid()))
                .bind(i64::from(query.limit))
                .bind(query.without.map(|s| s.as_str()))
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
            for row in sqlx::query(sql)
                .bind(kind.gone().as_str())
                .fetch_all(p)
                .await?
            {
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
        id: ResourceId,
        status: ResourceStatus,
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
        on_pool!(self.writer, |p| {
            let mut q = sqlx::query(sql)
                .bind(id.as_uuid())
                .bind(status.as_str())
                .bind(now);
            if kind == ResourceKind::HostingAccount {
                q = q.bind(archive_path);
            }
            q.execute(p).await?;
        });
        Ok(())
    }

    /// The subscription's tenant, customer and status (any tenant: a job
    /// knows only the subscription); `None` when there is none.
    pub async fn subscription_ref(
        &self,
        id: SubscriptionId,
    ) -> StoreResult<Option<SubscriptionRef>> {
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(
                "SELECT id, tenant_id, customer_id, product_id, status FROM subscriptions WHERE id = $1",
            )
            .bind(id.as_uuid())
            .fetch_optional(p)
            .await?
            {
                Some(row) => Some(SubscriptionRef {
                    id: SubscriptionId::from_uuid(row.try_get("id")?),
                    tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
                    customer_id: CustomerId::from_uuid(row.try_get("customer_id")?),
                    product_id: mpanel_domain::ProductId::from_uuid(row.try_get("product_id")?),
                    status: parse_text("subscription status", row.try_get("status")?)?,
                }),
                None => None,
            }
        });
        Ok(found)
    }

    /// The steps of a subscription's provisioning and their state.
    pub async fn provisioning_steps(
        &self,
        subscription: SubscriptionId,
    ) -> StoreResult<Vec<(String, StepState, Option<Value>)>> {
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(
                "SELECT step, state, detail FROM provisioning_steps WHERE subscription_id = $1",
            )
            .bind(subscription.as_uuid())
            .fetch_all(p)
            .await?
            {
                let detail: Option<Json<Value>> = row.try_get("detail")?;
                out.push((
                    row.try_get("step")?,
                    parse_text("provisioning step state", row.try_get("state")?)?,
                    detail.map(|d| d.0),
                ));
            }
            out
        });
        Ok(found)
    }

    pub async fn mark_provisioning_step(
        &self,
        subscription: SubscriptionId,
        step: &str,
        state: StepState,
        detail: Option<&Value>,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_pool!(self.writer, |p| {
            sqlx::query(
                "INSERT INTO provisioning_steps (subscription_id, step, state, detail, updated_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (subscription_id, step) DO UPDATE SET state = excluded.state,
                    detail = COALESCE(excluded.detail, provisioning_steps.detail), updated_at = excluded.updated_at",
            )
            .bind(subscription.as_uuid())
            .bind(step)
            .bind(state.as_str())
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
        subscription: SubscriptionId,
    ) -> StoreResult<i64> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {} WHERE subscription_id = $1 AND status <> $2",
            kind.table()
        ));
        let n = on_tx!(self, |conn| {
            sqlx::query_scalar::<_, i64>(sql)
                .bind(subscription.as_uuid())
                .bind(kind.gone().as_str())
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
                .bind(r.id.as_uuid())
                .bind(r.tenant_id.as_uuid())
                .bind(r.customer_id.as_uuid())
                .bind(r.subscription_id.as_uuid())
                .bind(r.server_id.as_uuid())
                .bind(&r.name)
                .bind(r.status.as_str())
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
        id: SubscriptionId,
        external_ref: &str,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let n = on_tx!(self, |conn| {
            let n = sqlx::query(
                "UPDATE subscriptions SET status = 'ACTIVE', external_ref = $2, updated_at = $3
                 WHERE id = $1 AND status = 'PENDING_ACTIVATION'",
            )
            .bind(id.as_uuid())
            .bind(external_ref)
            .bind(now)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            sqlx::query("UPDATE domains SET status = 'ACTIVE', updated_at = $2 WHERE subscription_id = $1 AND status = 'PENDING'")
                .bind(id.as_uuid())
                .bind(now)
                .execute(&mut *conn)
                .await?;
            n
        });
        Ok(n == 1)
    }
}
