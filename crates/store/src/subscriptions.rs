//! Subscriptions as the billing engine runs them: status, schedule (anchor,
//! next period to invoice), trial, addons and cancellation. Every call takes
//! the caller's tenant.

use mpanel_domain::billing::subscription::SubscriptionStatus;
use mpanel_domain::provisioning::ResourceStatus;
use mpanel_domain::{CustomerId, InvoiceId, ProductId, ResourceId, SubscriptionId, TenantId};
use serde_json::Value;
use sqlx::Row;
use sqlx::types::Json;
use time::OffsetDateTime;

use crate::error::parse_text;
use crate::{Engine, Store, StoreResult, Tx};

#[derive(Debug, Clone, PartialEq)]
pub struct SubscriptionRecord {
    pub id: SubscriptionId,
    pub tenant_id: TenantId,
    pub customer_id: CustomerId,
    pub product_id: ProductId,
    /// `HOURLY`, `MONTHLY`, `YEARLY` or `ONE_TIME`.
    pub period: String,
    pub currency: String,
    /// The price of one period of the plan.
    pub amount_minor: i64,
    pub status: SubscriptionStatus,
    pub external_ref: Option<String>,
    /// Period n starts at the anchor plus n cycles (tenant time zone).
    pub anchor_at: Option<OffsetDateTime>,
    /// The next period to invoice.
    pub next_period: i32,
    /// Its start; `None` while nothing more is billed.
    pub next_bill_at: Option<OffsetDateTime>,
    pub current_period_start: Option<OffsetDateTime>,
    pub current_period_end: Option<OffsetDateTime>,
    pub trial_end: Option<OffsetDateTime>,
    pub auto_renew: bool,
    pub cancel_at_period_end: bool,
    pub cancelled_at: Option<OffsetDateTime>,
    pub suspend_reason: Option<String>,
    /// `[{product_id, name, amount_minor}]`.
    pub addons: Value,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// What lists filter on.
#[derive(Debug, Clone, Default)]
pub struct SubscriptionFilter {
    pub customer: Option<CustomerId>,
    pub status: Option<SubscriptionStatus>,
    pub product: Option<ProductId>,
    /// Ids above this one (the cursor).
    pub after: Option<SubscriptionId>,
    pub limit: u32,
}

pub(crate) const COLUMNS: &str = "s.id, s.tenant_id, s.customer_id, s.product_id, s.period, s.currency, \
     s.amount_minor, s.status, s.external_ref, s.anchor_at, s.next_period, s.next_bill_at, \
     s.current_period_start, s.current_period_end, s.trial_end, s.auto_renew, s.cancel_at_period_end, \
     s.cancelled_at, s.suspend_reason, s.addons, s.created_at, s.updated_at";

macro_rules! subscription_from_row {
    ($row:expr) => {{
        let row = $row;
        let addons: sqlx::types::Json<serde_json::Value> = row.try_get("addons")?;
        SubscriptionRecord {
            id: SubscriptionId::from_uuid(row.try_get("id")?),
            tenant_id: mpanel_domain::TenantId::from_uuid(row.try_get("tenant_id")?),
            customer_id: CustomerId::from_uuid(row.try_get("customer_id")?),
            product_id: mpanel_domain::ProductId::from_uuid(row.try_get("product_id")?),
            period: row.try_get("period")?,
            currency: row.try_get("currency")?,
            amount_minor: row.try_get("amount_minor")?,
            status: $crate::error::parse_text("subscription status", row.try_get("status")?)?,
            external_ref: row.try_get("external_ref")?,
            anchor_at: row.try_get("anchor_at")?,
            next_period: row.try_get("next_period")?,
            next_bill_at: row.try_get("next_bill_at")?,
            current_period_start: row.try_get("current_period_start")?,
            current_period_end: row.try_get("current_period_end")?,
            trial_end: row.try_get("trial_end")?,
            auto_renew: row.try_get("auto_renew")?,
            cancel_at_period_end: row.try_get("cancel_at_period_end")?,
            cancelled_at: row.try_get("cancelled_at")?,
            suspend_reason: row.try_get("suspend_reason")?,
            addons: addons.0,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        }
    }};
}
pub(crate) use subscription_from_row;

impl Tx {
    pub async fn insert_subscription(&mut self, s: &SubscriptionRecord) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO subscriptions (id, tenant_id, customer_id, product_id, period, currency,
                    amount_minor, status, external_ref, anchor_at, next_period, next_bill_at,
                    current_period_start, current_period_end, trial_end, auto_renew,
                    cancel_at_period_end, cancelled_at, suspend_reason, addons, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                    $18, $19, $20, $21, $22)",
            )
            .bind(s.id.as_uuid())
            .bind(s.tenant_id.as_uuid())
            .bind(s.customer_id.as_uuid())
            .bind(s.product_id.as_uuid())
            .bind(&s.period)
            .bind(&s.currency)
            .bind(s.amount_minor)
            .bind(s.status.as_str())
            .bind(&s.external_ref)
            .bind(s.anchor_at)
            .bind(s.next_period)
            .bind(s.next_bill_at)
            .bind(s.current_period_start)
            .bind(s.current_period_end)
            .bind(s.trial_end)
            .bind(s.auto_renew)
            .bind(s.cancel_at_period_end)
            .bind(s.cancelled_at)
            .bind(&s.suspend_reason)
            .bind(Json(&s.addons))
            .bind(s.created_at)
            .bind(s.updated_at)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    /// The subscription, locked until this transaction ends (PostgreSQL;
    /// SQLite write transactions are serial already); `None` when the
    /// tenant has no such subscription.
    pub async fn subscription_for_update(
        &mut self,
        tenant: TenantId,
        id: SubscriptionId,
    ) -> StoreResult<Option<SubscriptionRecord>> {
        let lock = match self.engine() {
            Engine::Postgres => " FOR UPDATE",
            Engine::Sqlite => "",
        };
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM subscriptions s WHERE s.tenant_id = $1 AND s.id = $2{lock}"
        ));
        let found = on_tx!(self, |conn| {
            match sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(conn)
                .await?
            {
                Some(row) => Some(subscription_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// Writes every field that changes after creation.
    pub async fn save_subscription(&mut self, s: &SubscriptionRecord) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE subscriptions SET product_id = $3, period = $4, amount_minor = $5, status = $6,
                    external_ref = $7, anchor_at = $8, next_period = $9, next_bill_at = $10,
                    current_period_start = $11, current_period_end = $12, trial_end = $13,
                    auto_renew = $14, cancel_at_period_end = $15, cancelled_at = $16,
                    suspend_reason = $17, addons = $18, updated_at = $19
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(s.tenant_id.as_uuid())
            .bind(s.id.as_uuid())
            .bind(s.product_id.as_uuid())
            .bind(&s.period)
            .bind(s.amount_minor)
            .bind(s.status.as_str())
            .bind(&s.external_ref)
            .bind(s.anchor_at)
            .bind(s.next_period)
            .bind(s.next_bill_at)
            .bind(s.current_period_start)
            .bind(s.current_period_end)
            .bind(s.trial_end)
            .bind(s.auto_renew)
            .bind(s.cancel_at_period_end)
            .bind(s.cancelled_at)
            .bind(&s.suspend_reason)
            .bind(Json(&s.addons))
            .bind(s.updated_at)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    /// The subscription's hosting accounts that are not terminated:
    /// `(id, status)`.
    pub async fn hosting_accounts_of(
        &mut self,
        tenant: TenantId,
        subscription: SubscriptionId,
    ) -> StoreResult<Vec<(ResourceId, ResourceStatus)>> {
        let found = on_tx!(self, |conn| {
            let mut out = Vec::new();
            for row in sqlx::query(
                "SELECT id, status FROM hosting_accounts
                 WHERE tenant_id = $1 AND subscription_id = $2 AND status <> 'TERMINATED' ORDER BY id",
            )
            .bind(tenant.as_uuid())
            .bind(subscription.as_uuid())
            .fetch_all(conn)
            .await?
            {
                out.push((
                    ResourceId::from_uuid(row.try_get(0)?),
                    parse_text("resource status", row.try_get(1)?)?,
                ));
            }
            out
        });
        Ok(found)
    }

    /// Records new limits on the subscription's live hosting accounts and
    /// mailboxes (`None` leaves one as it is).
    pub async fn set_subscription_quotas(
        &mut self,
        subscription: SubscriptionId,
        disk_quota_mb: Option<i64>,
        mail_quota_mb: Option<i64>,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE hosting_accounts SET disk_quota_mb = COALESCE($2, disk_quota_mb), updated_at = $3
                 WHERE subscription_id = $1 AND status <> 'TERMINATED'",
            )
            .bind(subscription.as_uuid())
            .bind(disk_quota_mb)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "UPDATE mail_accounts SET quota_mb = COALESCE($2, quota_mb), updated_at = $3
                 WHERE subscription_id = $1 AND status <> 'DELETED'",
            )
            .bind(subscription.as_uuid())
            .bind(mail_quota_mb)
            .bind(now)
            .execute(&mut *conn)
            .await?;
        });
        Ok(())
    }

    /// The subscriptions an invoice's lines charge for.
    pub async fn subscriptions_of_invoice(
        &mut self,
        tenant: TenantId,
        invoice: InvoiceId,
    ) -> StoreResult<Vec<SubscriptionRecord>> {
        self.subscriptions_of_invoice_locked(tenant, invoice, "")
            .await
    }

    /// The same, to change them: locked as an update of their fields takes
    /// them (PostgreSQL's `FOR NO KEY UPDATE`, in id order), so each is
    /// read as a change committed while this waited left it (a copy read
    /// before, saved, would undo that change), and usage being checked
    /// against them (`FOR KEY SHARE`) is not waited for.
    pub async fn subscriptions_of_invoice_for_change(
        &mut self,
        tenant: TenantId,
        invoice: InvoiceId,
    ) -> StoreResult<Vec<SubscriptionRecord>> {
        let lock = match self.engine() {
            Engine::Postgres => " FOR NO KEY UPDATE OF s",
            Engine::Sqlite => "",
        };
        self.subscriptions_of_invoice_locked(tenant, invoice, lock)
            .await
    }

    async fn subscriptions_of_invoice_locked(
        &mut self,
        tenant: TenantId,
        invoice: InvoiceId,
        lock: &str,
    ) -> StoreResult<Vec<SubscriptionRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM subscriptions s WHERE s.tenant_id = $1 AND s.id IN
                (SELECT subscription_id FROM invoice_lines WHERE tenant_id = $1 AND invoice_id = $2)
             ORDER BY s.id{lock}"
        ));
        let found = on_tx!(self, |conn| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(invoice.as_uuid())
                .fetch_all(conn)
                .await?
            {
                out.push(subscription_from_row!(&row));
            }
            out
        });
        Ok(found)
    }
}

impl Store {
    pub async fn subscription(
        &self,
        tenant: TenantId,
        id: SubscriptionId,
    ) -> StoreResult<Option<SubscriptionRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM subscriptions s WHERE s.tenant_id = $1 AND s.id = $2"
        ));
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(p)
                .await?
            {
                Some(row) => Some(subscription_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// How many subscriptions (of one tenant, or all) are due by `as_of`.
    pub async fn count_due_subscriptions(
        &self,
        tenant: Option<TenantId>,
        as_of: OffsetDateTime,
    ) -> StoreResult<u64> {
        let n = on_pool!(self.pool, |p| {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM subscriptions WHERE ($1 IS NULL OR tenant_id = $1)
                   AND next_bill_at IS NOT NULL AND next_bill_at <= $2 AND status IN ('ACTIVE', 'SUSPENDED')",
            )
            .bind(tenant.map(|t| t.as_uuid()))
            .bind(as_of)
            .fetch_one(p)
            .await?
        });
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// A page of the tenant's subscriptions, oldest first.
    pub async fn list_subscriptions(
        &self,
        tenant: TenantId,
        f: &SubscriptionFilter,
    ) -> StoreResult<Vec<SubscriptionRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM subscriptions s WHERE s.tenant_id = $1
               AND ($2 IS NULL OR s.customer_id = $2)
               AND ($3 IS NULL OR s.status = $3)
               AND ($4 IS NULL OR s.product_id = $4)
               AND ($5 IS NULL OR s.id > $5)
             ORDER BY s.id LIMIT $6"
        ));
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(f.customer.map(|v| v.as_uuid()))
                .bind(f.status.map(SubscriptionStatus::as_str))
                .bind(f.product.map(|p| p.as_uuid()))
                .bind(f.after.map(|v| v.as_uuid()))
                .bind(i64::from(f.limit))
                .fetch_all(p)
                .await?
            {
                out.push(subscription_from_row!(&row));
            }
            out
        });
        Ok(found)
    }
}
