//! Tenants: rows of the `tenants` table.

use mpanel_domain::{NewTenant, TenantId};
use sqlx::Row;
use time::OffsetDateTime;

use crate::{Store, StoreResult, Tx};

/// A tenant as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRecord {
    pub id: TenantId,
    pub slug: String,
    pub name: String,
    pub timezone: String,
    pub default_currency: String,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const COLUMNS: &str = "id, slug, name, timezone, default_currency, created_at, updated_at";

fn from_row<R: Row>(row: &R) -> Result<TenantRecord, sqlx::Error>
where
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> uuid::Uuid: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> OffsetDateTime: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    Ok(TenantRecord {
        id: TenantId::from_uuid(row.try_get("id")?),
        slug: row.try_get("slug")?,
        name: row.try_get("name")?,
        timezone: row.try_get("timezone")?,
        default_currency: row.try_get("default_currency")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

impl Tx {
    /// Inserts a tenant; a taken slug is a `Conflict`.
    pub async fn insert_tenant(
        &mut self,
        id: TenantId,
        tenant: &NewTenant,
        now: OffsetDateTime,
    ) -> StoreResult<TenantRecord> {
        let record = on_tx!(self, |conn| {
            let row = sqlx::query(
                "INSERT INTO tenants (id, slug, name, timezone, default_currency, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6)
                 RETURNING id, slug, name, timezone, default_currency, created_at, updated_at",
            )
            .bind(id.as_uuid())
            .bind(tenant.slug.as_str())
            .bind(&tenant.name)
            .bind(&tenant.timezone)
            .bind(&tenant.default_currency)
            .bind(now)
            .fetch_one(conn)
            .await?;
            from_row(&row)?
        });
        Ok(record)
    }
}

impl Store {
    pub async fn tenant_by_slug(&self, slug: &str) -> StoreResult<Option<TenantRecord>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM tenants WHERE slug = $1"));
        let record = on_pool!(self.pool, |p| {
            match sqlx::query(sql).bind(slug).fetch_optional(p).await? {
                Some(row) => Some(from_row(&row)?),
                None => None,
            }
        });
        Ok(record)
    }

    pub async fn tenant(&self, id: TenantId) -> StoreResult<Option<TenantRecord>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM tenants WHERE id = $1"));
        let record = on_pool!(self.pool, |p| {
            match sqlx::query(sql)
                .bind(id.as_uuid())
                .fetch_optional(p)
                .await?
            {
                Some(row) => Some(from_row(&row)?),
                None => None,
            }
        });
        Ok(record)
    }

    /// Every tenant, oldest first.
    pub async fn list_tenants(&self) -> StoreResult<Vec<TenantRecord>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM tenants ORDER BY id"));
        let records = on_pool!(self.pool, |p| {
            sqlx::query(sql)
                .fetch_all(p)
                .await?
                .iter()
                .map(from_row)
                .collect::<Result<Vec<_>, _>>()?
        });
        Ok(records)
    }
}
