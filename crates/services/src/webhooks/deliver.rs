//! The `webhook.deliver` job: send one delivery, signed, to an address the
//! policy allows, and decide what happens next: done on a 2xx, the next
//! attempt on the schedule otherwise, given up after three days; an
//! endpoint failing for five days is disabled.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use mpanel_domain::webhooks::address::address_allowed;
use mpanel_domain::webhooks::{DISABLE_AFTER, DeliveryStatus, EndpointStatus, next_attempt};
use mpanel_domain::{Clock, WebhookDeliveryId};
use mpanel_store::Store;
use mpanel_store::webhooks::{DeliveryAttempt, WebhookDeliveryRecord, WebhookEndpointRecord};
use time::OffsetDateTime;

use serde_json::json;

use super::WebhookPolicy;
use super::endpoints::open_secret;
use crate::Actor;
use crate::actor::Change;
use crate::{ServiceError, sealed};

/// A receiver has this long to answer.
const TIMEOUT: Duration = Duration::from_secs(15);

/// What the job does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Failed; try again at this time.
    RetryAt(OffsetDateTime),
    /// Failed for the last time (or the endpoint is disabled).
    GaveUp,
    /// Nothing to do: delivered already, or the endpoint is gone.
    Skipped,
}

/// Sends deliveries; one per worker process.
#[derive(Clone)]
pub struct Deliverer {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub policy: WebhookPolicy,
}

impl Deliverer {
    pub async fn deliver(&self, id: WebhookDeliveryId) -> Result<Outcome, ServiceError> {
        let Some(delivery) = self.store.webhook_delivery(id).await? else {
            return Ok(Outcome::Skipped);
        };
        if delivery.status != DeliveryStatus::Pending {
            return Ok(Outcome::Skipped);
        }
        let Some(endpoint) = self
            .store
            .webhook_endpoint_by_id(delivery.endpoint_id)
            .await?
        else {
            return Ok(Outcome::Skipped);
        };
        let now = self.clock.now();
        if endpoint.status == EndpointStatus::Disabled {
            let error = "the endpoint is disabled".to_owned();
            self.record(
                &delivery,
                DeliveryStatus::Failed,
                now,
                None,
                None,
                Some(error),
            )
            .await?;
            return Ok(Outcome::GaveUp);
        }
        match self.send(&endpoint, &delivery, now).await? {
            Ok(status) => {
                self.record(
                    &delivery,
                    DeliveryStatus::Succeeded,
                    now,
                    None,
                    Some(status),
                    None,
                )
                .await?;
                self.healthy(endpoint, now).await?;
                Ok(Outcome::Delivered)
            }
            Err((status, error)) => self.failed(&delivery, endpoint, now, status, error).await,
        }
    }

    async fn failed(
        &self,
        delivery: &WebhookDeliveryRecord,
        endpoint: WebhookEndpointRecord,
        now: OffsetDateTime,
        http_status: Option<i32>,
        error: String,
    ) -> Result<Outcome, ServiceError> {
        let attempts = u32::try_from(delivery.attempts + 1).unwrap_or(u32::MAX);
        let next = next_attempt(delivery.created_at, attempts, now);
        let status = match next {
            Some(_) => DeliveryStatus::Pending,
            None => DeliveryStatus::Failed,
        };
        self.record(delivery, status, now, next, http_status, Some(error))
            .await?;
        self.failing(endpoint, now).await?;
        Ok(next.map_or(Outcome::GaveUp, Outcome::RetryAt))
    }

    async fn record(
        &self,
        delivery: &WebhookDeliveryRecord,
        status: DeliveryStatus,
        at: OffsetDateTime,
        next_attempt_at: Option<OffsetDateTime>,
        http_status: Option<i32>,
        error: Option<String>,
    ) -> Result<(), ServiceError> {
        let attempt = DeliveryAttempt {
            status,
            at,
            next_attempt_at,
            http_status,
            error,
        };
        Ok(self
            .store
            .record_webhook_attempt(delivery.id, &attempt)
            .await?)
    }

    async fn healthy(
        &self,
        mut endpoint: WebhookEndpointRecord,
        now: OffsetDateTime,
    ) -> Result<(), ServiceError> {
        if endpoint.failing_since.is_none() {
            return Ok(());
        }
        endpoint.failing_since = None;
        endpoint.updated_at = now;
        Ok(self.store.record_webhook_endpoint_health(&endpoint).await?)
    }

    /// Notes the failure; five days of failures disable the endpoint, in
    /// the tenant's audit log (staff see it there and on the endpoint).
    async fn failing(
        &self,
        mut endpoint: WebhookEndpointRecord,
        now: OffsetDateTime,
    ) -> Result<(), ServiceError> {
        let since = *endpoint.failing_since.get_or_insert(now);
        endpoint.updated_at = now;
        if now - since < DISABLE_AFTER {
            return Ok(self.store.record_webhook_endpoint_health(&endpoint).await?);
        }
        endpoint.status = EndpointStatus::Disabled;
        endpoint.disabled_reason = Some(format!(
            "every delivery failed for {} days",
            DISABLE_AFTER.whole_days()
        ));
        tracing::warn!(endpoint = %endpoint.id, tenant = %endpoint.tenant_id,
            "webhook endpoint disabled: failing for 5 days");
        let mut tx = self.store.begin().await?;
        tx.update_webhook_endpoint(&endpoint).await?;
        tx.record_audit(&Actor::system("webhooks").audit(Change {
            tenant: endpoint.tenant_id,
            action: "webhook_endpoint.disabled",
            target_type: "webhook_endpoint",
            target_id: endpoint.id.to_string(),
            before: Some(json!({"status": "ACTIVE", "failing_since": since.unix_timestamp()})),
            after: Some(json!({"status": "DISABLED", "reason": endpoint.disabled_reason})),
            at: now,
        }))
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// One HTTP attempt: `Ok(Ok(status))` on a 2xx, `Ok(Err(..))` on any
    /// other answer or a refused address, `Err` when our side failed.
    async fn send(
        &self,
        endpoint: &WebhookEndpointRecord,
        delivery: &WebhookDeliveryRecord,
        now: OffsetDateTime,
    ) -> Result<Result<i32, (Option<i32>, String)>, ServiceError> {
        let secret = open_secret(sealed::secret_box(&self.store)?, endpoint)?;
        let url = match url::Url::parse(&endpoint.url) {
            Ok(url) => url,
            Err(e) => return Ok(Err((None, format!("the URL cannot be parsed: {e}")))),
        };
        let client = match self.pinned_client(&url).await {
            Ok(client) => client,
            Err(why) => return Ok(Err((None, why))),
        };
        let message_id = format!("msg_{}", delivery.id);
        let headers = secret.headers(
            &message_id,
            now.unix_timestamp(),
            delivery.payload.as_bytes(),
        );
        let sent = client
            .post(url)
            .header("content-type", "application/json")
            .header("user-agent", "mPanel-Webhooks/1")
            .header("webhook-id", headers.id)
            .header("webhook-timestamp", headers.timestamp)
            .header("webhook-signature", headers.signature)
            .body(delivery.payload.clone())
            .send()
            .await;
        Ok(match sent {
            Ok(res) if res.status().is_success() => Ok(i32::from(res.status().as_u16())),
            Ok(res) => {
                let code = res.status().as_u16();
                Err((
                    Some(i32::from(code)),
                    format!("the receiver answered HTTP {code}"),
                ))
            }
            Err(e) => Err((None, format!("no answer: {}", error_chain(&e)))),
        })
    }

    /// A client that connects only to the addresses checked here (so a
    /// name cannot resolve to a public address for the check and a private
    /// one for the connection), follows no redirects and times out.
    async fn pinned_client(&self, url: &url::Url) -> Result<reqwest::Client, String> {
        let host = url.host_str().ok_or("the URL has no host")?.to_owned();
        let port = url.port_or_known_default().ok_or("the URL has no port")?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
            .await
            .map_err(|e| format!("{host} cannot be resolved: {e}"))?
            .collect();
        if addrs.is_empty() {
            return Err(format!("{host} has no address"));
        }
        for addr in &addrs {
            address_allowed(addr.ip(), &self.policy.allowed_networks).map_err(|class| {
                format!(
                    "{host} resolves to {}, a {} address this installation does not send to",
                    addr.ip(),
                    class.as_str()
                )
            })?;
        }
        crate::tls::install_crypto_provider();
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .resolve_to_addrs(bare, &addrs)
            .build()
            .map_err(|e| format!("no HTTP client: {e}"))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
