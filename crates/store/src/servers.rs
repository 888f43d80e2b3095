//! The server inventory: the platform's, not a tenant's.

use mpanel_domain::ServerId;
use mpanel_domain::provisioning::{ServerRole, ServerStatus};
use serde_json::Value;
use sqlx::Row;
use sqlx::types::Json;
use time::OffsetDateTime;

use crate::{Store, StoreResult};

#[derive(Debug, Clone, PartialEq)]
pub struct ServerRecord {
    pub id: ServerId,
    pub name: String,
    pub role: ServerRole,
    pub address: String,
    pub port: i32,
    /// Sealed; only the services crate opens it.
    pub credentials: String,
    pub settings: Value,
    pub capacity: i64,
    pub status: ServerStatus,
    pub last_check_at: Option<OffsetDateTime>,
    pub last_latency_ms: Option<i64>,
    pub last_error: Option<String>,
    /// What the last check read beyond reachability (a cluster's nodes).
    pub health: Option<Value>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const COLUMNS: &str = "id, name, role, address, port, credentials, settings, capacity, status, \
     last_check_at, last_latency_ms, last_error, health, created_at, updated_at";

fn decode<T: std::str::FromStr<Err = String>>(s: &str) -> Result<T, sqlx::Error> {
    s.parse().map_err(|e: String| sqlx::Error::Decode(e.into()))
}

macro_rules! server_from_row {
    ($row:expr) => {{
        let row = $row;
        let role: String = row.try_get("role")?;
        let status: String = row.try_get("status")?;
        let settings: Json<Value> = row.try_get("settings")?;
        ServerRecord {
            id: ServerId::from_uuid(row.try_get("id")?),
            name: row.try_get("name")?,
            role: decode(&role)?,
            address: row.try_get("address")?,
            port: row.try_get("port")?,
            credentials: row.try_get("credentials")?,
            settings: settings.0,
            capacity: row.try_get("capacity")?,
            status: decode(&status)?,
            last_check_at: row.try_get("last_check_at")?,
            last_latency_ms: row.try_get("last_latency_ms")?,
            last_error: row.try_get("last_error")?,
            health: row
                .try_get::<Option<Json<Value>>, _>("health")?
                .map(|h| h.0),
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        }
    }};
}

impl Store {
    pub async fn insert_server(&self, s: &ServerRecord) -> StoreResult<()> {
        on_pool!(self.writer, |p| {
            sqlx::query(
                "INSERT INTO servers (id, name, role, address, port, credentials, settings, capacity, status,
                    last_check_at, last_latency_ms, last_error, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(s.id.as_uuid())
            .bind(&s.name)
            .bind(s.role.as_str())
            .bind(&s.address)
            .bind(s.port)
            .bind(&s.credentials)
            .bind(Json(&s.settings))
            .bind(s.capacity)
            .bind(s.status.as_str())
            .bind(s.last_check_at)
            .bind(s.last_latency_ms)
            .bind(&s.last_error)
            .bind(s.created_at)
            .bind(s.updated_at)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Writes the editable fields (not the health check); `false` when the
    /// server is not in the inventory.
    pub async fn update_server(&self, s: &ServerRecord) -> StoreResult<bool> {
        let n = on_pool!(self.writer, |p| {
            sqlx::query(
                "UPDATE servers SET name = $2, address = $3, port = $4, credentials = $5, settings = $6,
                    capacity = $7, status = $8, updated_at = $9
                 WHERE id = $1",
            )
            .bind(s.id.as_uuid())
            .bind(&s.name)
            .bind(&s.address)
            .bind(s.port)
            .bind(&s.credentials)
            .bind(Json(&s.settings))
            .bind(s.capacity)
            .bind(s.status.as_str())
            .bind(s.updated_at)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// The server; `None` when it is not in the inventory.
    pub async fn server(&self, id: ServerId) -> StoreResult<Option<ServerRecord>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM servers WHERE id = $1"));
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(sql)
                .bind(id.as_uuid())
                .fetch_optional(p)
                .await?
            {
                Some(row) => Some(server_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// All servers, or those of one role, by name.
    pub async fn list_servers(&self, role: Option<ServerRole>) -> StoreResult<Vec<ServerRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM servers WHERE ($1 IS NULL OR role = $1) ORDER BY lower(name)"
        ));
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(role.map(|r| r.as_str()))
                .fetch_all(p)
                .await?
            {
                out.push(server_from_row!(&row));
            }
            out
        });
        Ok(found)
    }

    /// Records a health check.
    pub async fn record_server_check(
        &self,
        id: ServerId,
        at: OffsetDateTime,
        latency_ms: Option<i64>,
        error: Option<&str>,
        health: Option<&Value>,
    ) -> StoreResult<()> {
        on_pool!(self.writer, |p| {
            sqlx::query(
                "UPDATE servers SET last_check_at = $2, last_latency_ms = $3, last_error = $4, health = $5 WHERE id = $1",
            )
            .bind(id.as_uuid())
            .bind(at)
            .bind(latency_ms)
            .bind(error)
            .bind(health.map(Json))
            .execute(p)
            .await?;
        });
        Ok(())
    }
}
