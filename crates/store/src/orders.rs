//! Orders and what they create: webhook secrets, idempotency keys,
//! customers, orders and items, subscriptions, domains, provisioning steps.

use mpanel_domain::catalog::{Currency, Period};
use mpanel_domain::jobs::JobState;
use mpanel_domain::orders::OrderStatus;
use mpanel_domain::{
    CustomerId, JobId, OrderId, OrderItemId, ProductId, SubscriptionId, TenantId, UserId,
};
use serde_json::Value;
use sqlx::Row;
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::parse_text;
use crate::name_claims::placeholders;
use crate::{Store, StoreResult, Tx};

macro_rules! item_from_row {
    ($row:expr) => {{
        let row = $row;
        OrderItemRecord {
            id: OrderItemId::from_uuid(row.try_get("id")?),
            product_id: ProductId::from_uuid(row.try_get("product_id")?),
            subscription_id: SubscriptionId::from_uuid(row.try_get("subscription_id")?),
            period: row.try_get("period")?,
            domain: row.try_get("domain")?,
            amount_minor: row.try_get("amount_minor")?,
            setup_fee_minor: row.try_get("setup_fee_minor")?,
            options: row
                .try_get::<Option<Json<Value>>, _>("options")?
                .map(|j| j.0),
        }
    }};
}

pub use crate::idempotency::IdempotencyStart;

#[derive(Debug, Clone, PartialEq)]
pub struct CustomerRecord {
    pub id: CustomerId,
    pub tenant_id: TenantId,
    pub email: String,
    pub name: String,
    pub company: Option<String>,
    pub country: String,
    pub tax_id: Option<String>,
    pub address: Option<Value>,
    pub credit_balance_minor: i64,
    pub portal_user_id: Option<UserId>,
    /// Set on a pending customer: an order used this (verified) customer's
    /// address without the marketing site saying that customer signed in.
    pub pending_for: Option<CustomerId>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// Which orders a list shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OrderFilter {
    pub customer: Option<CustomerId>,
    pub status: Option<OrderStatus>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderRecord {
    pub id: OrderId,
    pub tenant_id: TenantId,
    pub customer_id: CustomerId,
    pub status: OrderStatus,
    pub currency: String,
    pub total_minor: i64,
    pub payment: Option<Value>,
    pub created_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderItemRecord {
    pub id: OrderItemId,
    pub product_id: ProductId,
    pub subscription_id: SubscriptionId,
    pub period: String,
    pub domain: Option<String>,
    pub amount_minor: i64,
    pub setup_fee_minor: i64,
    /// What the site sent with the item (a mailbox password only hashed).
    pub options: Option<Value>,
}

/// A provisioning step of an order and where its job stands.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderStepRecord {
    pub order_item_id: OrderItemId,
    pub step: String,
    pub job_id: JobId,
    /// `None` once the job was pruned.
    pub job_state: Option<JobState>,
    pub attempts: Option<i32>,
    pub last_error: Option<String>,
}

/// A provisioning step of an order item, and the job that runs it.
#[derive(Debug, Clone, Copy)]
pub struct NewOrderStep<'a> {
    pub tenant: TenantId,
    pub order: OrderId,
    pub item: OrderItemId,
    /// e.g. `provision.dns_zone`.
    pub step: &'a str,
    pub job: JobId,
    pub at: OffsetDateTime,
}

/// An order to insert (its items follow with `insert_order_item`).
#[derive(Debug, Clone)]
pub struct NewOrder<'a> {
    pub id: OrderId,
    pub tenant: TenantId,
    pub customer: CustomerId,
    pub status: OrderStatus,
    pub currency: Currency,
    pub total_minor: i64,
    /// The payment the site reported, kept as sent; its provider and
    /// reference are also columns of their own (unique per tenant).
    pub payment: Option<&'a Value>,
    pub idempotency_key: &'a str,
}

/// An item to insert with its subscription.
#[derive(Debug, Clone)]
pub struct NewOrderItem {
    pub id: OrderItemId,
    pub subscription_id: SubscriptionId,
    pub product_id: ProductId,
    pub period: Period,
    pub domain: Option<String>,
    pub options: Option<Value>,
    pub amount_minor: i64,
    pub setup_fee_minor: i64,
}

const CUSTOMER_COLUMNS: &str = "id, tenant_id, email, name, company, country, tax_id, address, \
     credit_balance_minor, portal_user_id, pending_for_customer_id, created_at, updated_at";

macro_rules! customer_from_row {
    ($row:expr) => {{
        let row = $row;
        let address: Option<Json<Value>> = row.try_get("address")?;
        let portal: Option<Uuid> = row.try_get("portal_user_id")?;
        CustomerRecord {
            id: CustomerId::from_uuid(row.try_get("id")?),
            tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
            email: row.try_get("email")?,
            name: row.try_get("name")?,
            company: row.try_get("company")?,
            country: row.try_get("country")?,
            tax_id: row.try_get("tax_id")?,
            address: address.map(|a| a.0),
            credit_balance_minor: row.try_get("credit_balance_minor")?,
            portal_user_id: portal.map(UserId::from_uuid),
            pending_for: row
                .try_get::<Option<Uuid>, _>("pending_for_customer_id")?
                .map(CustomerId::from_uuid),
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        }
    }};
}

const ORDER_COLUMNS: &str =
    "id, tenant_id, customer_id, status, currency, total_minor, payment, created_at";

macro_rules! order_from_row {
    ($row:expr) => {{
        let row = $row;
        let payment: Option<Json<Value>> = row.try_get("payment")?;
        OrderRecord {
            id: OrderId::from_uuid(row.try_get("id")?),
            tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
            customer_id: CustomerId::from_uuid(row.try_get("customer_id")?),
            status: parse_text("order status", row.try_get("status")?)?,
            currency: row.try_get("currency")?,
            total_minor: row.try_get("total_minor")?,
            payment: payment.map(|p| p.0),
            created_at: row.try_get("created_at")?,
        }
    }};
}

impl Tx {
    /// The subscription ended: its domains stop holding their names (the
    /// zone and site keep holding them until they are removed).
    pub async fn release_domains(
        &mut self,
        subscription: SubscriptionId,
        now: OffsetDateTime,
    ) -> StoreResult<u64> {
        let n = on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE domains SET status = 'RELEASED', updated_at = $2
                 WHERE subscription_id = $1 AND status IN ('PENDING', 'ACTIVE')",
            )
            .bind(subscription.as_uuid())
            .bind(now)
            .execute(conn)
            .await?
            .rows_affected()
        });
        Ok(n)
    }

    /// The domain a subscription was ordered for (its newest, released
    /// or not); `None` for a subscription without one.
    pub async fn subscription_domain(
        &mut self,
        subscription: SubscriptionId,
    ) -> StoreResult<Option<String>> {
        let name = on_tx!(self, |conn| {
            sqlx::query_scalar::<_, String>(
                "SELECT name FROM domains WHERE subscription_id = $1
                 ORDER BY created_at DESC, id DESC LIMIT 1",
            )
            .bind(subscription.as_uuid())
            .fetch_optional(conn)
            .await?
        });
        Ok(name)
    }

    pub async fn order_items(
        &mut self,
        tenant: TenantId,
        order: OrderId,
    ) -> StoreResult<Vec<OrderItemRecord>> {
        let found = on_tx!(self, |conn| {
            let mut out = Vec::new();
            for row in sqlx::query(
                "SELECT id, product_id, subscription_id, period, domain, amount_minor, setup_fee_minor, options
                 FROM order_items WHERE tenant_id = $1 AND order_id = $2 ORDER BY id",
            )
            .bind(tenant.as_uuid())
            .bind(order.as_uuid())
            .fetch_all(conn)
            .await?
            {
                out.push(item_from_row!(&row));
            }
            out
        });
        Ok(found)
    }

    /// The order's total, once its invoice priced the tax.
    pub async fn set_order_total(
        &mut self,
        tenant: TenantId,
        order: OrderId,
        total_minor: i64,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query("UPDATE orders SET total_minor = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.as_uuid())
                .bind(order.as_uuid())
                .bind(total_minor)
                .bind(now)
                .execute(conn)
                .await?;
        });
        Ok(())
    }

    /// `PENDING_PAYMENT` → `PAID`; `false` if the order was not waiting.
    pub async fn mark_order_paid(
        &mut self,
        tenant: TenantId,
        order: OrderId,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let n = on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE orders SET status = 'PAID', updated_at = $3
                 WHERE tenant_id = $1 AND id = $2 AND status = 'PENDING_PAYMENT'",
            )
            .bind(tenant.as_uuid())
            .bind(order.as_uuid())
            .bind(now)
            .execute(conn)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    pub async fn customer_by_email(
        &mut self,
        tenant: TenantId,
        email: &str,
    ) -> StoreResult<Option<CustomerRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers
             WHERE tenant_id = $1 AND lower(email) = lower($2) AND pending_for_customer_id IS NULL"
        ));
        let found = on_tx!(self, |conn| {
            match sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(email)
                .fetch_optional(conn)
                .await?
            {
                Some(row) => Some(customer_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// The tenant's customer, read inside this transaction; `None` when the
    /// tenant has no such customer.
    pub async fn customer(
        &mut self,
        tenant: TenantId,
        id: CustomerId,
    ) -> StoreResult<Option<CustomerRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE tenant_id = $1 AND id = $2"
        ));
        let found = on_tx!(self, |conn| {
            match sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(conn)
                .await?
            {
                Some(row) => Some(customer_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// The tenant's customers among `ids`.
    pub async fn customers_by_ids(
        &mut self,
        tenant: TenantId,
        ids: &[CustomerId],
    ) -> StoreResult<Vec<CustomerRecord>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(10_000) {
            on_tx!(self, |conn| {
                // By primary key only (a tenant condition made SQLite walk
                // the tenant's index instead); the tenant is checked below.
                let mut q = sqlx::QueryBuilder::new(format!(
                    "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id IN ("
                ));
                let mut sep = q.separated(", ");
                for id in chunk {
                    sep.push_bind(id.as_uuid());
                }
                q.push(")");
                for row in q.build().fetch_all(&mut *conn).await? {
                    out.push(customer_from_row!(&row));
                }
            });
        }
        out.retain(|c| c.tenant_id == tenant);
        Ok(out)
    }

    /// Inserts or (same id) replaces a customer's details.
    pub async fn save_customer(&mut self, c: &CustomerRecord) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO customers (id, tenant_id, email, name, company, country, tax_id, address,
                     credit_balance_minor, portal_user_id, created_at, updated_at,
                     pending_for_customer_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                 ON CONFLICT (id) DO UPDATE SET name = $4, company = $5, country = $6, tax_id = $7,
                     address = $8, portal_user_id = $10, updated_at = $12",
            )
            .bind(c.id.as_uuid())
            .bind(c.tenant_id.as_uuid())
            .bind(&c.email)
            .bind(&c.name)
            .bind(&c.company)
            .bind(&c.country)
            .bind(&c.tax_id)
            .bind(c.address.as_ref().map(Json))
            .bind(c.credit_balance_minor)
            .bind(c.portal_user_id.map(|u| u.as_uuid()))
            .bind(c.created_at)
            .bind(c.updated_at)
            .bind(c.pending_for.map(|c| c.as_uuid()))
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    pub async fn insert_order(&mut self, o: &NewOrder<'_>, now: OffsetDateTime) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO orders (id, tenant_id, customer_id, status, currency, total_minor, payment,
                     idempotency_key, created_at, updated_at, payment_provider, payment_reference)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11)",
            )
            .bind(o.id.as_uuid())
            .bind(o.tenant.as_uuid())
            .bind(o.customer.as_uuid())
            .bind(o.status.as_str())
            .bind(o.currency.code())
            .bind(o.total_minor)
            .bind(o.payment.map(Json))
            .bind(o.idempotency_key)
            .bind(now)
            .bind(o.payment.and_then(|p| p.get("provider")).and_then(Value::as_str))
            .bind(o.payment.and_then(|p| p.get("reference")).and_then(Value::as_str))
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    /// Inserts an item with its subscription (`PENDING_ACTIVATION`) and,
    /// when it names one, its domain (`PENDING`).
    pub async fn insert_order_item(
        &mut self,
        tenant: TenantId,
        order: OrderId,
        customer: CustomerId,
        currency: Currency,
        item: &NewOrderItem,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO subscriptions (id, tenant_id, customer_id, product_id, period, currency, amount_minor,
                     status, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, 'PENDING_ACTIVATION', $8, $8)",
            )
            .bind(item.subscription_id.as_uuid())
            .bind(tenant.as_uuid())
            .bind(customer.as_uuid())
            .bind(item.product_id.as_uuid())
            .bind(item.period.as_str())
            .bind(currency.code())
            .bind(item.amount_minor)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            sqlx::query(
                "INSERT INTO order_items (id, tenant_id, order_id, product_id, subscription_id, period, domain,
                     options, amount_minor, setup_fee_minor, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(item.id.as_uuid())
            .bind(tenant.as_uuid())
            .bind(order.as_uuid())
            .bind(item.product_id.as_uuid())
            .bind(item.subscription_id.as_uuid())
            .bind(item.period.as_str())
            .bind(&item.domain)
            .bind(item.options.as_ref().map(Json))
            .bind(item.amount_minor)
            .bind(item.setup_fee_minor)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            if let Some(domain) = &item.domain {
                sqlx::query(
                    "INSERT INTO domains (id, tenant_id, customer_id, subscription_id, name, status, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, 'PENDING', $6, $6)",
                )
                .bind(Uuid::now_v7())
                .bind(tenant.as_uuid())
                .bind(customer.as_uuid())
                .bind(item.subscription_id.as_uuid())
                .bind(domain)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            }
        });
        Ok(())
    }

    /// Whether provisioning was queued for this order item already.
    pub async fn order_item_has_steps(
        &mut self,
        tenant: TenantId,
        item: OrderItemId,
    ) -> StoreResult<bool> {
        let n = on_tx!(self, |conn| {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM order_steps WHERE tenant_id = $1 AND order_item_id = $2",
            )
            .bind(tenant.as_uuid())
            .bind(item.as_uuid())
            .fetch_one(conn)
            .await?
        });
        Ok(n > 0)
    }

    pub async fn insert_order_step(&mut self, s: &NewOrderStep<'_>) -> StoreResult<()> {
        let NewOrderStep {
            tenant,
            order,
            item,
            step,
            job,
            at: now,
        } = *s;
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO order_steps (id, tenant_id, order_id, order_item_id, step, job_id, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(Uuid::now_v7())
            .bind(tenant.as_uuid())
            .bind(order.as_uuid())
            .bind(item.as_uuid())
            .bind(step)
            .bind(job.as_uuid())
            .bind(now)
            .execute(conn)
            .await?;
        });
        Ok(())
    }
}

impl Store {
    pub async fn customer(
        &self,
        tenant: TenantId,
        id: CustomerId,
    ) -> StoreResult<Option<CustomerRecord>> {
        self.begin_read().await?.customer(tenant, id).await
    }

    pub async fn customer_of_user(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> StoreResult<Option<CustomerRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE tenant_id = $1 AND portal_user_id = $2"
        ));
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(user.as_uuid())
                .fetch_optional(p)
                .await?
            {
                Some(row) => Some(customer_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    pub async fn list_customers(
        &self,
        tenant: TenantId,
        after: Option<CustomerId>,
        limit: u32,
        search: Option<&str>,
    ) -> StoreResult<Vec<CustomerRecord>> {
        // Part of the e-mail, name or company, any case (both sides
        // folded by the engine's lower(): SQLite folds ASCII letters only,
        // so "Ö" finds "Ö" but not "ö" there).
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2)
               AND ($4 IS NULL OR lower(email) LIKE lower($4) ESCAPE '\\' OR lower(name) LIKE lower($4) ESCAPE '\\'
                    OR lower(coalesce(company, '')) LIKE lower($4) ESCAPE '\\')
             ORDER BY id LIMIT $3"
        ));
        let pattern = search.map(crate::contains_pattern);
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(after.map(|a| a.as_uuid()))
                .bind(i64::from(limit))
                .bind(pattern.as_deref())
                .fetch_all(p)
                .await?
            {
                out.push(customer_from_row!(&row));
            }
            out
        });
        Ok(found)
    }

    pub async fn order(&self, tenant: TenantId, id: OrderId) -> StoreResult<Option<OrderRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE tenant_id = $1 AND id = $2"
        ));
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(p)
                .await?
            {
                Some(row) => Some(order_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// A page of orders, newest first, optionally of one customer or in
    /// one state.
    pub async fn list_orders(
        &self,
        tenant: TenantId,
        filter: OrderFilter,
        before: Option<OrderId>,
        limit: u32,
    ) -> StoreResult<Vec<OrderRecord>> {
        let OrderFilter { customer, status } = filter;
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {ORDER_COLUMNS} FROM orders
             WHERE tenant_id = $1 AND ($2 IS NULL OR customer_id = $2) AND ($3 IS NULL OR id < $3)
               AND ($5 IS NULL OR status = $5)
             ORDER BY id DESC LIMIT $4"
        ));
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(customer.map(|c| c.as_uuid()))
                .bind(before.map(|v| v.as_uuid()))
                .bind(i64::from(limit))
                .bind(status.map(|s| s.as_str()))
                .fetch_all(p)
                .await?
            {
                out.push(order_from_row!(&row));
            }
            out
        });
        Ok(found)
    }

    pub async fn order_items(
        &self,
        tenant: TenantId,
        order: OrderId,
    ) -> StoreResult<Vec<OrderItemRecord>> {
        self.begin_read().await?.order_items(tenant, order).await
    }

    /// An order's provisioning steps with their jobs' state.
    pub async fn order_steps(
        &self,
        tenant: TenantId,
        order: OrderId,
    ) -> StoreResult<Vec<OrderStepRecord>> {
        self.order_steps_of(tenant, &[order]).await
    }

    /// The items of several orders (one query), each with its order's id,
    /// in insertion order.
    pub async fn order_items_of(
        &self,
        tenant: TenantId,
        orders: &[OrderId],
    ) -> StoreResult<Vec<(OrderId, OrderItemRecord)>> {
        let ids: Vec<Uuid> = orders.iter().map(|o| o.as_uuid()).collect();
        self.order_items_where(tenant, "order_id", &ids).await
    }

    /// The order items that made these subscriptions (one query), each
    /// with its order's id; a subscription staff made without an order has
    /// none.
    pub async fn order_items_of_subscriptions(
        &self,
        tenant: TenantId,
        subscriptions: &[SubscriptionId],
    ) -> StoreResult<Vec<(OrderId, OrderItemRecord)>> {
        let ids: Vec<Uuid> = subscriptions.iter().map(|s| s.as_uuid()).collect();
        self.order_items_where(tenant, "subscription_id", &ids)
            .await
    }

    /// The tenant's order items whose `column` (a column name of this
    /// module's, never input) is one of `ids`, in insertion order.
    async fn order_items_where(
        &self,
        tenant: TenantId,
        column: &'static str,
        ids: &[Uuid],
    ) -> StoreResult<Vec<(OrderId, OrderItemRecord)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT order_id, id, product_id, subscription_id, period, domain, amount_minor, setup_fee_minor, options
             FROM order_items WHERE tenant_id = $1 AND {column} IN ({}) ORDER BY id",
            placeholders(2, ids.len())
        ));
        let found = on_pool!(self.pool, |p| {
            let mut q = sqlx::query(sql).bind(tenant.as_uuid());
            for id in ids {
                q = q.bind(*id);
            }
            let mut out = Vec::new();
            for row in q.fetch_all(p).await? {
                let order = OrderId::from_uuid(row.try_get("order_id")?);
                out.push((order, item_from_row!(&row)));
            }
            out
        });
        Ok(found)
    }

    /// The provisioning steps of several orders (one query) with their
    /// jobs' state, in insertion order.
    pub async fn order_steps_of(
        &self,
        tenant: TenantId,
        orders: &[OrderId],
    ) -> StoreResult<Vec<OrderStepRecord>> {
        if orders.is_empty() {
            return Ok(Vec::new());
        }
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT s.order_item_id, s.step, s.job_id, j.state, j.attempts, j.last_error
             FROM order_steps s LEFT JOIN jobs j ON j.id = s.job_id
             WHERE s.tenant_id = $1 AND s.order_id IN ({}) ORDER BY s.id",
            placeholders(2, orders.len())
        ));
        let found = on_pool!(self.pool, |p| {
            let mut q = sqlx::query(sql).bind(tenant.as_uuid());
            for order in orders {
                q = q.bind(order.as_uuid());
            }
            let mut out = Vec::new();
            for row in q.fetch_all(p).await? {
                let state: Option<String> = row.try_get("state")?;
                out.push(OrderStepRecord {
                    order_item_id: OrderItemId::from_uuid(row.try_get("order_item_id")?),
                    step: row.try_get("step")?,
                    job_id: JobId::from_uuid(row.try_get("job_id")?),
                    job_state: state.and_then(|s| s.parse().ok()),
                    attempts: row.try_get("attempts")?,
                    last_error: row.try_get("last_error")?,
                });
            }
            out
        });
        Ok(found)
    }

    /// How many rows each order table holds for a tenant (for checks that
    /// a failed order left nothing behind).
    #[cfg(feature = "testing")]
    pub async fn order_footprint(&self, tenant: TenantId) -> StoreResult<[i64; 6]> {
        let mut out = [0i64; 6];
        for (i, table) in [
            "customers",
            "orders",
            "order_items",
            "subscriptions",
            "domains",
            "order_steps",
        ]
        .iter()
        .enumerate()
        {
            let sql =
                sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = $1"));
            out[i] = on_pool!(self.pool, |p| {
                sqlx::query_scalar::<_, i64>(sql)
                    .bind(tenant.as_uuid())
                    .fetch_one(p)
                    .await?
            });
        }
        Ok(out)
    }
}
