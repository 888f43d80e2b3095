//! What was sent to an endpoint, and sending one again.

use mpanel_domain::webhooks::{DeliveryStatus, EventType};
use mpanel_domain::{WebhookDeliveryId, WebhookEndpointId};
use mpanel_store::webhooks::WebhookDeliveryRecord;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;

use mpanel_domain::jobs::JobState;
use mpanel_domain::webhooks::EndpointStatus;

use super::emit::{job_key, queue};
use super::endpoints::find;
use crate::ServiceError;
use crate::context::{Audited, Context};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryView {
    /// Also the `webhook-id` the receiver saw, after `msg_`.
    pub id: WebhookDeliveryId,
    pub endpoint_id: WebhookEndpointId,
    pub event_type: EventType,
    pub status: DeliveryStatus,
    pub attempts: i32,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_attempt_at: Option<OffsetDateTime>,
    /// The receiver's HTTP status at the last attempt.
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    /// The body sent (a JSON text).
    pub payload: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub delivered_at: Option<OffsetDateTime>,
}

pub fn view(d: WebhookDeliveryRecord) -> DeliveryView {
    DeliveryView {
        id: d.id,
        endpoint_id: d.endpoint_id,
        event_type: d.event_type,
        status: d.status,
        attempts: d.attempts,
        next_attempt_at: d.next_attempt_at,
        last_attempt_at: d.last_attempt_at,
        last_status: d.last_status,
        last_error: d.last_error,
        payload: d.payload,
        created_at: d.created_at,
        delivered_at: d.delivered_at,
    }
}

pub async fn list(
    cx: &Context,
    endpoint: WebhookEndpointId,
    before: Option<WebhookDeliveryId>,
    limit: u32,
) -> Result<Vec<DeliveryView>, ServiceError> {
    find(cx, endpoint).await?;
    let rows = cx
        .store
        .list_webhook_deliveries(cx.tenant_id(), endpoint, before, i64::from(limit))
        .await?;
    Ok(rows.into_iter().map(view).collect())
}

/// Sends a delivery again now, whatever became of it (the receiver
/// deduplicates by `webhook-id`, which stays the same): the job waiting
/// for its next attempt is brought forward, or a new one queued.
pub async fn redeliver(cx: &Context, id: WebhookDeliveryId) -> Result<DeliveryView, ServiceError> {
    let missing = || ServiceError::NotFound("No such webhook delivery.".into());
    let delivery = cx
        .store
        .webhook_delivery_of(cx.tenant_id(), id)
        .await?
        .ok_or_else(missing)?;
    let endpoint = find(cx, delivery.endpoint_id).await?;
    if endpoint.status == EndpointStatus::Disabled {
        return Err(ServiceError::Conflict(
            "the endpoint is disabled: set it ACTIVE first".into(),
        ));
    }
    let now = cx.now();
    let mut tx = cx.store.begin().await?;
    match tx.live_job(&job_key(id)).await? {
        Some((_, JobState::Running)) => {
            return Err(ServiceError::Conflict(
                "an attempt is being sent right now; try again in a moment".into(),
            ));
        }
        Some((job, _)) => {
            tx.run_job_now(job, now).await?;
        }
        None => queue(&mut tx, cx.tenant_id(), id, now).await?,
    }
    // Only a miss is a 404; a failing database stays what it is.
    tx.reset_webhook_delivery(cx.tenant_id(), id, now)
        .await?
        .then_some(())
        .ok_or_else(missing)?;
    tx.record_audit(&cx.audit(Audited {
        action: "webhook_delivery.redeliver",
        target_type: "webhook_delivery",
        target_id: id.to_string(),
        before: Some(serde_json::json!({ "status": delivery.status })),
        after: Some(serde_json::json!({ "status": DeliveryStatus::Pending })),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(view(WebhookDeliveryRecord {
        status: DeliveryStatus::Pending,
        next_attempt_at: Some(now),
        ..delivery
    }))
}
