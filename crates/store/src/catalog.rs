//! Products and their price rules. Every call takes the caller's tenant.

use mpanel_domain::catalog::{
    BillingModel, Category, Currency, Period, PriceRule, ProductStatus, ProvisioningTemplate,
    UsagePricing, Visibility,
};
use std::collections::HashMap;

use mpanel_domain::{PriceId, ProductId, TenantId};
use serde_json::Value;
use sqlx::Row;
use sqlx::types::Json;
use time::OffsetDateTime;

use crate::{Store, StoreError, StoreResult, Tx};

/// A product on the tenant's public catalog: active, public, not archived.
const PUBLIC: &str = "status = 'ACTIVE' AND visibility = 'PUBLIC' AND archived_at IS NULL";

/// The editable fields of a product.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductFields {
    pub name: String,
    pub slug: String,
    pub description: String,
    pub category: Category,
    pub billing_model: BillingModel,
    pub status: ProductStatus,
    pub visibility: Visibility,
    pub base_currency: Currency,
    pub template: ProvisioningTemplate,
    pub usage: Option<UsagePricing>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ProductRecord {
    pub id: ProductId,
    pub tenant_id: TenantId,
    pub fields: ProductFields,
    pub archived_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const COLUMNS: &str = "id, tenant_id, name, slug, description, category, billing_model, status, visibility, \
     base_currency, template, usage, archived_at, created_at, updated_at";

fn decode<T: std::str::FromStr<Err = String>>(s: &str) -> Result<T, sqlx::Error> {
    s.parse().map_err(|e: String| sqlx::Error::Decode(e.into()))
}

fn from_json<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, sqlx::Error> {
    serde_json::from_value(v).map_err(|e| sqlx::Error::Decode(e.into()))
}

macro_rules! product_from_row {
    ($row:expr) => {{
        let row = $row;
        let category: String = row.try_get("category")?;
        let model: String = row.try_get("billing_model")?;
        let status: String = row.try_get("status")?;
        let visibility: String = row.try_get("visibility")?;
        let currency: String = row.try_get("base_currency")?;
        let template: Json<Value> = row.try_get("template")?;
        let usage: Option<Json<Value>> = row.try_get("usage")?;
        ProductRecord {
            id: ProductId::from_uuid(row.try_get("id")?),
            tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
            fields: ProductFields {
                name: row.try_get("name")?,
                slug: row.try_get("slug")?,
                description: row.try_get("description")?,
                category: decode(&category)?,
                billing_model: decode(&model)?,
                status: decode(&status)?,
                visibility: decode(&visibility)?,
                base_currency: Currency::parse(&currency)
                    .map_err(|e| sqlx::Error::Decode(e.into()))?,
                template: from_json(template.0)?,
                usage: usage.map(|u| from_json(u.0)).transpose()?,
            },
            archived_at: row.try_get("archived_at")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        }
    }};
}

macro_rules! price_from_row {
    ($row:expr) => {{
        let row = $row;
        let period: String = row.try_get("period")?;
        let currency: String = row.try_get("currency")?;
        let scope: String = row.try_get("scope_tenant")?;
        let region: String = row.try_get("region")?;
        PriceRule {
            id: PriceId::from_uuid(row.try_get("id")?),
            period: decode::<Period>(&period)?,
            currency: Currency::parse(&currency).map_err(|e| sqlx::Error::Decode(e.into()))?,
            amount_minor: row.try_get("amount_minor")?,
            setup_fee_minor: row.try_get("setup_fee_minor")?,
            tenant: if scope.is_empty() {
                None
            } else {
                Some(
                    scope
                        .parse()
                        .map_err(|e: uuid::Error| sqlx::Error::Decode(e.into()))?,
                )
            },
            region: (!region.is_empty()).then_some(region),
        }
    }};
}

fn template_json(f: &ProductFields) -> Result<Json<Value>, StoreError> {
    serde_json::to_value(&f.template)
        .map(Json)
        .map_err(|e| StoreError::InvalidConfig(e.to_string()))
}

fn usage_json(f: &ProductFields) -> Result<Option<Json<Value>>, StoreError> {
    f.usage
        .as_ref()
        .map(|u| serde_json::to_value(u).map(Json))
        .transpose()
        .map_err(|e| StoreError::InvalidConfig(e.to_string()))
}

impl Tx {
    /// Inserts a product; a slug taken in the tenant is a `Conflict`.
    pub async fn insert_product(
        &mut self,
        id: ProductId,
        tenant: TenantId,
        f: &ProductFields,
        now: OffsetDateTime,
    ) -> StoreResult<ProductRecord> {
        let (template, usage) = (template_json(f)?, usage_json(f)?);
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO products (id, tenant_id, name, slug, description, category, billing_model, status,
                 visibility, base_currency, template, usage, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)
             RETURNING {COLUMNS}"
        ));
        let record = on_tx!(self, |conn| {
            let row = sqlx::query(sql)
                .bind(id.as_uuid())
                .bind(tenant.as_uuid())
                .bind(&f.name)
                .bind(&f.slug)
                .bind(&f.description)
                .bind(f.category.as_str())
                .bind(f.billing_model.as_str())
                .bind(f.status.as_str())
                .bind(f.visibility.as_str())
                .bind(f.base_currency.code())
                .bind(template)
                .bind(usage)
                .bind(now)
                .fetch_one(conn)
                .await?;
            product_from_row!(&row)
        });
        Ok(record)
    }

    /// The tenant's product, read inside this transaction; `None` when the
    /// tenant has no such product.
    pub async fn product(
        &mut self,
        tenant: TenantId,
        id: ProductId,
    ) -> StoreResult<Option<ProductRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM products WHERE tenant_id = $1 AND id = $2"
        ));
        let found = on_tx!(self, |conn| {
            match sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(conn)
                .await?
            {
                Some(row) => Some(product_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// Writes the product's fields; the row as written, `None` when the
    /// tenant has no such product.
    pub async fn update_product(
        &mut self,
        tenant: TenantId,
        id: ProductId,
        f: &ProductFields,
        archived_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> StoreResult<Option<ProductRecord>> {
        let (template, usage) = (template_json(f)?, usage_json(f)?);
        let sql = sqlx::AssertSqlSafe(format!(
            "UPDATE products SET name = $3, slug = $4, description = $5, category = $6, billing_model = $7,
                 status = $8, visibility = $9, base_currency = $10, template = $11, usage = $12,
                 archived_at = $13, updated_at = $14
             WHERE tenant_id = $1 AND id = $2
             RETURNING {COLUMNS}"
        ));
        let found = on_tx!(self, |conn| {
            match sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .bind(&f.name)
                .bind(&f.slug)
                .bind(&f.description)
                .bind(f.category.as_str())
                .bind(f.billing_model.as_str())
                .bind(f.status.as_str())
                .bind(f.visibility.as_str())
                .bind(f.base_currency.code())
                .bind(template)
                .bind(usage)
                .bind(archived_at)
                .bind(now)
                .fetch_optional(conn)
                .await?
            {
                Some(row) => Some(product_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// Inserts a price rule; the same period, currency, tenant and region
    /// twice is a `Conflict`.
    pub async fn insert_price(
        &mut self,
        tenant: TenantId,
        product: ProductId,
        rule: &PriceRule,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO product_prices (id, tenant_id, product_id, period, currency, amount_minor,
                     setup_fee_minor, scope_tenant, region, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
            )
            .bind(rule.id.as_uuid())
            .bind(tenant.as_uuid())
            .bind(product.as_uuid())
            .bind(rule.period.as_str())
            .bind(rule.currency.code())
            .bind(rule.amount_minor)
            .bind(rule.setup_fee_minor)
            .bind(rule.tenant.map(|t| t.to_string()).unwrap_or_default())
            .bind(rule.region.clone().unwrap_or_default())
            .bind(now)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    /// Replaces a rule's amounts and qualifiers; `false` when the product
    /// has no such rule.
    pub async fn update_price(
        &mut self,
        tenant: TenantId,
        product: ProductId,
        rule: &PriceRule,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let n = on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE product_prices SET period = $4, currency = $5, amount_minor = $6, setup_fee_minor = $7,
                     scope_tenant = $8, region = $9, updated_at = $10
                 WHERE tenant_id = $1 AND product_id = $2 AND id = $3",
            )
            .bind(tenant.as_uuid())
            .bind(product.as_uuid())
            .bind(rule.id.as_uuid())
            .bind(rule.period.as_str())
            .bind(rule.currency.code())
            .bind(rule.amount_minor)
            .bind(rule.setup_fee_minor)
            .bind(rule.tenant.map(|t| t.to_string()).unwrap_or_default())
            .bind(rule.region.clone().unwrap_or_default())
            .bind(now)
            .execute(conn)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Removes a rule; `false` when the product has no such rule.
    pub async fn delete_price(
        &mut self,
        tenant: TenantId,
        product: ProductId,
        id: PriceId,
    ) -> StoreResult<bool> {
        let n = on_tx!(self, |conn| {
            sqlx::query(
                "DELETE FROM product_prices WHERE tenant_id = $1 AND product_id = $2 AND id = $3",
            )
            .bind(tenant.as_uuid())
            .bind(product.as_uuid())
            .bind(id.as_uuid())
            .execute(conn)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// The price rules of a product, read inside this transaction.
    pub async fn prices_of(
        &mut self,
        tenant: TenantId,
        product: ProductId,
    ) -> StoreResult<Vec<PriceRule>> {
        let rules = on_tx!(self, |conn| {
            let mut out = Vec::new();
            for row in sqlx::query(
                "SELECT id, period, currency, amount_minor, setup_fee_minor, scope_tenant, region
                 FROM product_prices WHERE tenant_id = $1 AND product_id = $2 ORDER BY id",
            )
            .bind(tenant.as_uuid())
            .bind(product.as_uuid())
            .fetch_all(conn)
            .await?
            {
                out.push(price_from_row!(&row));
            }
            out
        });
        Ok(rules)
    }
}

/// Which products a list shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProductFilter {
    /// Active public ones that are not archived (the storefront's).
    pub public_only: bool,
    pub status: Option<ProductStatus>,
    pub category: Option<Category>,
}

impl Store {
    pub async fn product(
        &self,
        tenant: TenantId,
        id: ProductId,
    ) -> StoreResult<Option<ProductRecord>> {
        let mut tx = self.begin_read().await?;
        tx.product(tenant, id).await
    }

    pub async fn prices_of(
        &self,
        tenant: TenantId,
        product: ProductId,
    ) -> StoreResult<Vec<PriceRule>> {
        let mut tx = self.begin_read().await?;
        tx.prices_of(tenant, product).await
    }

    /// A page of the tenant's products, oldest first.
    pub async fn list_products(
        &self,
        tenant: TenantId,
        filter: ProductFilter,
        after: Option<ProductId>,
        limit: u32,
    ) -> StoreResult<Vec<ProductRecord>> {
        let ProductFilter {
            public_only,
            status,
            category,
        } = filter;
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM products
             WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2)
               AND (NOT $3 OR ({PUBLIC}))
               AND ($5 IS NULL OR status = $5) AND ($6 IS NULL OR category = $6)
             ORDER BY id LIMIT $4"
        ));
        let records = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(after.map(|a| a.as_uuid()))
                .bind(public_only)
                .bind(i64::from(limit))
                .bind(status.map(|s| s.as_str()))
                .bind(category.map(|c| c.as_str()))
                .fetch_all(p)
                .await?
            {
                out.push(product_from_row!(&row));
            }
            out
        });
        Ok(records)
    }

    /// The price rules of every product on the tenant's public catalog,
    /// by product (in id order), in one query: the catalog asked without
    /// credentials must not cost a query per product.
    pub async fn public_prices(
        &self,
        tenant: TenantId,
    ) -> StoreResult<HashMap<ProductId, Vec<PriceRule>>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT product_id, id, period, currency, amount_minor, setup_fee_minor, scope_tenant, region
             FROM product_prices
             WHERE tenant_id = $1
               AND product_id IN (SELECT id FROM products WHERE tenant_id = $1 AND {PUBLIC})
             ORDER BY product_id, id"
        ));
        let rules = on_pool!(self.pool, |p| {
            let mut out: HashMap<ProductId, Vec<PriceRule>> = HashMap::new();
            for row in sqlx::query(sql).bind(tenant.as_uuid()).fetch_all(p).await? {
                let product = ProductId::from_uuid(row.try_get("product_id")?);
                out.entry(product).or_default().push(price_from_row!(&row));
            }
            out
        });
        Ok(rules)
    }
}
