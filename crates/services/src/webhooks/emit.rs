//! An event becomes one PENDING delivery per ACTIVE endpoint subscribed to
//! it, and one `webhook.deliver` job each, in the transaction of the
//! change that caused it: the event is sent if and only if it happened.

use mpanel_domain::webhooks::{DeliveryStatus, EventType};
use mpanel_domain::{TenantId, WebhookDeliveryId};
use mpanel_jobs::{JobOptions, enqueue_job};
use mpanel_store::Tx;
use mpanel_store::webhooks::WebhookDeliveryRecord;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::DeliverWebhook;
use crate::ServiceError;

/// Queues `event` with `data` for the tenant's subscribed endpoints.
pub async fn emit(
    tx: &mut Tx,
    tenant: TenantId,
    event: EventType,
    data: Value,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    emit_many(tx, tenant, vec![(event, data)], now).await
}

/// Queues several events of one tenant, reading its endpoints once (the
/// billing run issues invoices in batches).
pub async fn emit_many(
    tx: &mut Tx,
    tenant: TenantId,
    events: Vec<(EventType, Value)>,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    if events.is_empty() {
        return Ok(());
    }
    let endpoints = tx.active_webhook_endpoints(tenant).await?;
    if endpoints.is_empty() {
        return Ok(());
    }
    for (event, data) in events {
        let subscribed = endpoints.iter().filter(|e| e.event_types.contains(&event));
        let payload = envelope(event, data, now)?;
        for endpoint in subscribed {
            let delivery = WebhookDeliveryRecord {
                id: WebhookDeliveryId::new(),
                tenant_id: tenant,
                endpoint_id: endpoint.id,
                event_type: event,
                payload: payload.clone(),
                status: DeliveryStatus::Pending,
                attempts: 0,
                next_attempt_at: Some(now),
                last_attempt_at: None,
                last_status: None,
                last_error: None,
                created_at: now,
                delivered_at: None,
            };
            tx.insert_webhook_delivery(&delivery).await?;
            queue(tx, tenant, delivery.id, now).await?;
        }
    }
    Ok(())
}

/// The unique key of a delivery's job: one live job per delivery.
pub(crate) fn job_key(delivery: WebhookDeliveryId) -> String {
    format!("webhook.deliver:{delivery}")
}

/// Enqueues the job that sends `delivery` (also used by a redelivery).
pub(crate) async fn queue(
    tx: &mut Tx,
    tenant: mpanel_domain::TenantId,
    delivery: WebhookDeliveryId,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    let options = JobOptions {
        queue: "webhooks".into(),
        unique_key: Some(job_key(delivery)),
        ..JobOptions::default()
    };
    enqueue_job(
        tx,
        &DeliverWebhook {
            delivery_id: delivery,
            tenant_id: Some(tenant),
        },
        &options,
        now,
    )
    .await?;
    Ok(())
}

/// The Standard Webhooks body: `{"type", "timestamp", "data"}`.
fn envelope(event: EventType, data: Value, now: OffsetDateTime) -> Result<String, ServiceError> {
    let timestamp = now
        .format(&Rfc3339)
        .map_err(|e| ServiceError::internal("cannot format an event time", e))?;
    Ok(json!({ "type": event.as_str(), "timestamp": timestamp, "data": data }).to_string())
}
