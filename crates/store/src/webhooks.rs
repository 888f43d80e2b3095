//! Outbound webhooks: a tenant's endpoints and the deliveries sent to them.

use mpanel_domain::webhooks::{DeliveryStatus, EndpointStatus, EventType};
use mpanel_domain::{TenantId, WebhookDeliveryId, WebhookEndpointId};
use sqlx::Row;
use time::OffsetDateTime;

use crate::{Store, StoreResult, Tx};

#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEndpointRecord {
    pub id: WebhookEndpointId,
    pub tenant_id: TenantId,
    pub url: String,
    pub description: String,
    pub event_types: Vec<EventType>,
    /// Sealed; only the services crate opens it.
    pub secret: String,
    /// The secret before the last rotation (sealed), and until when
    /// deliveries are also signed with it.
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<OffsetDateTime>,
    pub status: EndpointStatus,
    pub failing_since: Option<OffsetDateTime>,
    pub last_failure_at: Option<OffsetDateTime>,
    pub disabled_reason: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WebhookDeliveryRecord {
    pub id: WebhookDeliveryId,
    pub tenant_id: TenantId,
    pub endpoint_id: WebhookEndpointId,
    pub event_type: EventType,
    pub payload: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: Option<OffsetDateTime>,
    pub last_attempt_at: Option<OffsetDateTime>,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: OffsetDateTime,
    pub delivered_at: Option<OffsetDateTime>,
}

/// What one attempt changed on a delivery.
#[derive(Debug, Clone)]
pub struct DeliveryAttempt {
    pub status: DeliveryStatus,
    pub at: OffsetDateTime,
    pub next_attempt_at: Option<OffsetDateTime>,
    pub http_status: Option<i32>,
    pub error: Option<String>,
}

const ENDPOINT_COLUMNS: &str = "id, tenant_id, url, description, event_types, secret, \
     previous_secret, previous_secret_until, status, failing_since, last_failure_at, disabled_reason, \
     created_at, updated_at";
const DELIVERY_COLUMNS: &str = "id, tenant_id, endpoint_id, event_type, payload, status, attempts, \
     next_attempt_at, last_attempt_at, last_status, last_error, created_at, delivered_at";

fn bad(what: &str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("unknown {what} {value:?}").into())
}

fn event_types_text(types: &[EventType]) -> String {
    serde_json::Value::from(types.iter().map(|t| t.as_str()).collect::<Vec<_>>()).to_string()
}

fn event_types_from(text: &str) -> Result<Vec<EventType>, sqlx::Error> {
    let names: Vec<String> =
        serde_json::from_str(text).map_err(|e| sqlx::Error::Decode(e.into()))?;
    names
        .iter()
        .map(|n| EventType::parse(n).ok_or_else(|| bad("event type", n)))
        .collect()
}

macro_rules! endpoint_from_row {
    ($row:expr) => {{
        let row = $row;
        let status: String = row.try_get("status")?;
        let types: String = row.try_get("event_types")?;
        WebhookEndpointRecord {
            id: WebhookEndpointId::from_uuid(row.try_get("id")?),
            tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
            url: row.try_get("url")?,
            description: row.try_get("description")?,
            event_types: event_types_from(&types)?,
            secret: row.try_get("secret")?,
            previous_secret: row.try_get("previous_secret")?,
            previous_secret_until: row.try_get("previous_secret_until")?,
            status: EndpointStatus::parse(&status)
                .ok_or_else(|| bad("endpoint status", &status))?,
            failing_since: row.try_get("failing_since")?,
            last_failure_at: row.try_get("last_failure_at")?,
            disabled_reason: row.try_get("disabled_reason")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        }
    }};
}

macro_rules! delivery_from_row {
    ($row:expr) => {{
        let row = $row;
        let status: String = row.try_get("status")?;
        let event: String = row.try_get("event_type")?;
        WebhookDeliveryRecord {
            id: WebhookDeliveryId::from_uuid(row.try_get("id")?),
            tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
            endpoint_id: WebhookEndpointId::from_uuid(row.try_get("endpoint_id")?),
            event_type: EventType::parse(&event).ok_or_else(|| bad("event type", &event))?,
            payload: row.try_get("payload")?,
            status: DeliveryStatus::parse(&status)
                .ok_or_else(|| bad("delivery status", &status))?,
            attempts: row.try_get("attempts")?,
            next_attempt_at: row.try_get("next_attempt_at")?,
            last_attempt_at: row.try_get("last_attempt_at")?,
            last_status: row.try_get("last_status")?,
            last_error: row.try_get("last_error")?,
            created_at: row.try_get("created_at")?,
            delivered_at: row.try_get("delivered_at")?,
        }
    }};
}

impl Tx {
    pub async fn insert_webhook_endpoint(&mut self, e: &WebhookEndpointRecord) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO webhook_endpoints (id, tenant_id, url, description, event_types, secret,
                     previous_secret, previous_secret_until, status, failing_since, last_failure_at,
                     disabled_reason, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(e.id.as_uuid())
            .bind(e.tenant_id.as_uuid())
            .bind(&e.url)
            .bind(&e.description)
            .bind(event_types_text(&e.event_types))
            .bind(&e.secret)
            .bind(&e.previous_secret)
            .bind(e.previous_secret_until)
            .bind(e.status.as_str())
            .bind(e.failing_since)
            .bind(e.last_failure_at)
            .bind(&e.disabled_reason)
            .bind(e.created_at)
            .bind(e.updated_at)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    /// Writes a staff change: everything but the id, tenant, creation
    /// time and the last failure (the delivery job's); `false` when the
    /// tenant has no such endpoint.
    pub async fn update_webhook_endpoint(
        &mut self,
        e: &WebhookEndpointRecord,
    ) -> StoreResult<bool> {
        let n = on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE webhook_endpoints SET url = $3, description = $4, event_types = $5,
                     secret = $6, previous_secret = $7, previous_secret_until = $8, status = $9,
                     failing_since = $10, disabled_reason = $11, updated_at = $12
                 WHERE id = $1 AND tenant_id = $2",
            )
            .bind(e.id.as_uuid())
            .bind(e.tenant_id.as_uuid())
            .bind(&e.url)
            .bind(&e.description)
            .bind(event_types_text(&e.event_types))
            .bind(&e.secret)
            .bind(&e.previous_secret)
            .bind(e.previous_secret_until)
            .bind(e.status.as_str())
            .bind(e.failing_since)
            .bind(&e.disabled_reason)
            .bind(e.updated_at)
            .execute(conn)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// Removes the endpoint and its deliveries; false when there was none.
    pub async fn delete_webhook_endpoint(
        &mut self,
        tenant: TenantId,
        id: WebhookEndpointId,
    ) -> StoreResult<bool> {
        let n = on_tx!(self, |conn| {
            sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint_id = $1 AND tenant_id = $2")
                .bind(id.as_uuid())
                .bind(tenant.as_uuid())
                .execute(&mut *conn)
                .await?;
            sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1 AND tenant_id = $2")
                .bind(id.as_uuid())
                .bind(tenant.as_uuid())
                .execute(conn)
                .await?
                .rows_affected()
        });
        Ok(n > 0)
    }

    /// The tenant's ACTIVE endpoints (each subscribes to its own events).
    pub async fn active_webhook_endpoints(
        &mut self,
        tenant: TenantId,
    ) -> StoreResult<Vec<WebhookEndpointRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints
             WHERE tenant_id = $1 AND status = 'ACTIVE' ORDER BY id"
        ));
        let found = on_tx!(self, |conn| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(tenant.as_uuid())
                .fetch_all(conn)
                .await?
            {
                out.push(endpoint_from_row!(&row));
            }
            out
        });
        Ok(found)
    }

    pub async fn insert_webhook_delivery(&mut self, d: &WebhookDeliveryRecord) -> StoreResult<()> {
        on_tx!(self, |conn| {
            sqlx::query(
                "INSERT INTO webhook_deliveries (id, tenant_id, endpoint_id, event_type, payload, status,
                     attempts, next_attempt_at, last_attempt_at, last_status, last_error, created_at,
                     delivered_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(d.id.as_uuid())
            .bind(d.tenant_id.as_uuid())
            .bind(d.endpoint_id.as_uuid())
            .bind(d.event_type.as_str())
            .bind(&d.payload)
            .bind(d.status.as_str())
            .bind(d.attempts)
            .bind(d.next_attempt_at)
            .bind(d.last_attempt_at)
            .bind(d.last_status)
            .bind(&d.last_error)
            .bind(d.created_at)
            .bind(d.delivered_at)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    /// Makes a delivery of `tenant` PENDING again for a redelivery; `false`
    /// when the tenant has no such delivery.
    pub async fn reset_webhook_delivery(
        &mut self,
        tenant: TenantId,
        id: WebhookDeliveryId,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let n = on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE webhook_deliveries SET status = 'PENDING', next_attempt_at = $3
                 WHERE id = $1 AND tenant_id = $2",
            )
            .bind(id.as_uuid())
            .bind(tenant.as_uuid())
            .bind(at)
            .execute(conn)
            .await?
            .rows_affected()
        });
        Ok(n > 0)
    }

    /// A staff or delivery-job decision to disable an ACTIVE endpoint;
    /// false when it was not ACTIVE any more.
    pub async fn disable_webhook_endpoint(
        &mut self,
        id: WebhookEndpointId,
        reason: &str,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let n = on_tx!(self, |conn| {
            sqlx::query(
                "UPDATE webhook_endpoints SET status = 'DISABLED', disabled_reason = $2, updated_at = $3
                 WHERE id = $1 AND status = 'ACTIVE'",
            )
            .bind(id.as_uuid())
            .bind(reason)
            .bind(at)
            .execute(conn)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }
}

impl Store {
    /// The endpoint of `tenant`.
    pub async fn webhook_endpoint(
        &self,
        tenant: TenantId,
        id: WebhookEndpointId,
    ) -> StoreResult<Option<WebhookEndpointRecord>> {
        Ok(self
            .webhook_endpoint_by_id(id)
            .await?
            .filter(|e| e.tenant_id == tenant))
    }

    /// Newest first, `limit` of them after the cursor `before`.
    pub async fn list_webhook_endpoints(
        &self,
        tenant: TenantId,
        before: Option<WebhookEndpointId>,
        limit: i64,
    ) -> StoreResult<Vec<WebhookEndpointRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints
             WHERE tenant_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
        ));
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(before.map(|b| b.as_uuid()))
                .bind(limit)
                .fetch_all(p)
                .await?
            {
                out.push(endpoint_from_row!(&row));
            }
            out
        });
        Ok(found)
    }

    pub async fn webhook_delivery(
        &self,
        id: WebhookDeliveryId,
    ) -> StoreResult<Option<WebhookDeliveryRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE id = $1"
        ));
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(sql)
                .bind(id.as_uuid())
                .fetch_optional(p)
                .await?
            {
                Some(row) => Some(delivery_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// A delivery of `tenant`.
    pub async fn webhook_delivery_of(
        &self,
        tenant: TenantId,
        id: WebhookDeliveryId,
    ) -> StoreResult<Option<WebhookDeliveryRecord>> {
        Ok(self
            .webhook_delivery(id)
            .await?
            .filter(|d| d.tenant_id == tenant))
    }

    /// An endpoint's deliveries, newest first.
    pub async fn list_webhook_deliveries(
        &self,
        tenant: TenantId,
        endpoint: WebhookEndpointId,
        before: Option<WebhookDeliveryId>,
        limit: i64,
    ) -> StoreResult<Vec<WebhookDeliveryRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries
             WHERE tenant_id = $1 AND endpoint_id = $2 AND ($3 IS NULL OR id < $3)
             ORDER BY id DESC LIMIT $4"
        ));
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(endpoint.as_uuid())
                .bind(before.map(|b| b.as_uuid()))
                .bind(limit)
                .fetch_all(p)
                .await?
            {
                out.push(delivery_from_row!(&row));
            }
            out
        });
        Ok(found)
    }

    /// Records one attempt of a PENDING delivery that had `seen` attempts;
    /// false when it moved meanwhile (the attempt counts for nothing).
    pub async fn record_webhook_attempt(
        &self,
        id: WebhookDeliveryId,
        seen: i32,
        attempt: &DeliveryAttempt,
    ) -> StoreResult<bool> {
        let delivered = (attempt.status == DeliveryStatus::Succeeded).then_some(attempt.at);
        let n = on_pool!(self.writer, |p| {
            sqlx::query(
                "UPDATE webhook_deliveries SET status = $3, attempts = attempts + 1,
                     last_attempt_at = $4, next_attempt_at = $5, last_status = $6, last_error = $7,
                     delivered_at = COALESCE($8, delivered_at)
                 WHERE id = $1 AND attempts = $2 AND status = 'PENDING'",
            )
            .bind(id.as_uuid())
            .bind(seen)
            .bind(attempt.status.as_str())
            .bind(attempt.at)
            .bind(attempt.next_attempt_at)
            .bind(attempt.http_status)
            .bind(&attempt.error)
            .bind(delivered)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(n == 1)
    }

    /// A delivery to the endpoint succeeded: it is healthy again.
    pub async fn webhook_endpoint_succeeded(&self, id: WebhookEndpointId) -> StoreResult<()> {
        on_pool!(self.writer, |p| {
            sqlx::query(
                "UPDATE webhook_endpoints SET failing_since = NULL, last_failure_at = NULL
                 WHERE id = $1 AND failing_since IS NOT NULL",
            )
            .bind(id.as_uuid())
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// A delivery to the ACTIVE endpoint failed at `at`; its failures run
    /// since `since` (the caller decided whether a new run starts).
    pub async fn webhook_endpoint_failed(
        &self,
        id: WebhookEndpointId,
        since: OffsetDateTime,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        on_pool!(self.writer, |p| {
            sqlx::query(
                "UPDATE webhook_endpoints SET failing_since = $2, last_failure_at = $3
                 WHERE id = $1 AND status = 'ACTIVE'",
            )
            .bind(id.as_uuid())
            .bind(since)
            .bind(at)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// An endpoint by id alone, for the delivery job.
    pub async fn webhook_endpoint_by_id(
        &self,
        id: WebhookEndpointId,
    ) -> StoreResult<Option<WebhookEndpointRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1"
        ));
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(sql)
                .bind(id.as_uuid())
                .fetch_optional(p)
                .await?
            {
                Some(row) => Some(endpoint_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }
}
