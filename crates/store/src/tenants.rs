//! Tenants: rows of the `tenants` table.

use mpanel_domain::{NewTenant, TenantId, TenantStatus};
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
    pub status: TenantStatus,
    pub support_email: Option<String>,
    pub sender_name: Option<String>,
    pub sender_address: Option<String>,
    pub logo_url: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const COLUMNS: &str = "id, slug, name, timezone, default_currency, status, support_email, \
     sender_name, sender_address, logo_url, created_at, updated_at";

/// [`COLUMNS`] of the tenants table named `alias` in a join.
pub(crate) fn columns_of(alias: &str) -> String {
    COLUMNS
        .split(',')
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn from_row<R: Row>(row: &R) -> Result<TenantRecord, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> uuid::Uuid: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> OffsetDateTime: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    from_row_at(row, 0)
}

/// The tenant whose [`COLUMNS`] start at column `first` of `row` (by
/// position: a join's other tables have columns of the same names).
pub(crate) fn from_row_at<R: Row>(row: &R, first: usize) -> Result<TenantRecord, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> uuid::Uuid: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> OffsetDateTime: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let status: String = row.try_get(first + 5)?;
    Ok(TenantRecord {
        id: TenantId::from_uuid(row.try_get(first)?),
        slug: row.try_get(first + 1)?,
        name: row.try_get(first + 2)?,
        timezone: row.try_get(first + 3)?,
        default_currency: row.try_get(first + 4)?,
        status: TenantStatus::parse(&status).ok_or_else(|| {
            sqlx::Error::Decode(format!("unknown tenant status {status:?}").into())
        })?,
        support_email: row.try_get(first + 6)?,
        sender_name: row.try_get(first + 7)?,
        sender_address: row.try_get(first + 8)?,
        logo_url: row.try_get(first + 9)?,
        created_at: row.try_get(first + 10)?,
        updated_at: row.try_get(first + 11)?,
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
            sqlx::query(
                "INSERT INTO tenants (id, slug, name, timezone, default_currency, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(id.as_uuid())
            .bind(tenant.slug.as_str())
            .bind(&tenant.name)
            .bind(&tenant.timezone)
            .bind(&tenant.default_currency)
            .bind(now)
            .execute(&mut *conn)
            .await?;
            let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM tenants WHERE id = $1"));
            let row = sqlx::query(sql).bind(id.as_uuid()).fetch_one(conn).await?;
            from_row(&row)?
        });
        Ok(record)
    }

    /// Writes what the platform's operator changes of a tenant.
    pub async fn update_tenant(&mut self, t: &TenantRecord) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE tenants SET name = $2, timezone = $3, default_currency = $4, status = $5,
                     support_email = $6, sender_name = $7, sender_address = $8, logo_url = $9,
                     updated_at = $10
                 WHERE id = $1",
            )
            .bind(t.id.as_uuid())
            .bind(&t.name)
            .bind(&t.timezone)
            .bind(&t.default_currency)
            .bind(t.status.as_str())
            .bind(&t.support_email)
            .bind(&t.sender_name)
            .bind(&t.sender_address)
            .bind(&t.logo_url)
            .bind(t.updated_at)
            .execute(conn)
            .await?;
        });
        Ok(())
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

    /// A page of tenants, newest first, after the cursor `before`.
    pub async fn page_tenants(
        &self,
        before: Option<TenantId>,
        limit: i64,
    ) -> StoreResult<Vec<TenantRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM tenants WHERE ($1 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2"
        ));
        let records = on_pool!(self.pool, |p| {
            sqlx::query(sql)
                .bind(before.map(|b| b.as_uuid()))
                .bind(limit)
                .fetch_all(p)
                .await?
                .iter()
                .map(from_row)
                .collect::<Result<Vec<_>, _>>()?
        });
        Ok(records)
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
