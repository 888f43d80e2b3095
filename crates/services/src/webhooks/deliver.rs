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
use serde_json::json;
use time::OffsetDateTime;

use super::WebhookPolicy;
use super::endpoints::{open_previous_secret, open_secret};
use crate::actor::Change;
use crate::{Actor, ServiceError, sealed};

/// A receiver has this long to answer.
const TIMEOUT: Duration = Duration::from_secs(15);
/// And its name this long to resolve.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// A failure this long after the last one starts a new run of failures
/// (retries are at most 10 h apart while a delivery is being tried).
const NEW_RUN_AFTER: time::Duration = time::Duration::days(1);
/// What a tenant is told when its URL reaches no address mPanel sends to
/// (the details, which could map the provider's network, go to the log).
const NOT_ALLOWED: &str =
    "the host did not resolve to an address this installation sends webhooks to";

/// What the job does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Failed; try again at this time.
    RetryAt(OffsetDateTime),
    /// Failed for the last time (or the endpoint is disabled).
    GaveUp,
    /// Nothing to do: delivered already, the endpoint is gone, or another
    /// attempt recorded meanwhile.
    Skipped,
}

/// One attempt's result as the receiver gave it.
struct Answer {
    http_status: Option<i32>,
    error: Option<String>,
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
            let answer = Answer {
                http_status: None,
                error: Some("the endpoint is disabled".into()),
            };
            return self
                .record(&delivery, DeliveryStatus::Failed, now, None, answer)
                .await
                .map(|recorded| {
                    if recorded {
                        Outcome::GaveUp
                    } else {
                        Outcome::Skipped
                    }
                });
        }
        let answer = self.send(&endpoint, &delivery, now).await?;
        if answer.error.is_none() {
            if !self
                .record(&delivery, DeliveryStatus::Succeeded, now, None, answer)
                .await?
            {
                return Ok(Outcome::Skipped);
            }
            self.store.webhook_endpoint_succeeded(endpoint.id).await?;
            return Ok(Outcome::Delivered);
        }
        self.failed(&delivery, &endpoint, now, answer).await
    }

    /// The job behind a delivery died (our side kept failing): the
    /// delivery is FAILED, not PENDING for ever.
    pub async fn abandon(&self, id: WebhookDeliveryId, reason: &str) -> Result<(), ServiceError> {
        let Some(delivery) = self.store.webhook_delivery(id).await? else {
            return Ok(());
        };
        if delivery.status == DeliveryStatus::Pending {
            let answer = Answer {
                http_status: None,
                error: Some(format!("mPanel could not send it: {reason}")),
            };
            let now = self.clock.now();
            self.record(&delivery, DeliveryStatus::Failed, now, None, answer)
                .await?;
        }
        Ok(())
    }

    async fn failed(
        &self,
        delivery: &WebhookDeliveryRecord,
        endpoint: &WebhookEndpointRecord,
        now: OffsetDateTime,
        answer: Answer,
    ) -> Result<Outcome, ServiceError> {
        let attempts = u32::try_from(delivery.attempts + 1).unwrap_or(u32::MAX);
        let next = next_attempt(delivery.created_at, attempts, now);
        let status = match next {
            Some(_) => DeliveryStatus::Pending,
            None => DeliveryStatus::Failed,
        };
        if !self.record(delivery, status, now, next, answer).await? {
            return Ok(Outcome::Skipped);
        }
        self.failing(endpoint, now).await?;
        Ok(next.map_or(Outcome::GaveUp, Outcome::RetryAt))
    }

    /// Records the attempt unless another one was recorded meanwhile.
    async fn record(
        &self,
        delivery: &WebhookDeliveryRecord,
        status: DeliveryStatus,
        at: OffsetDateTime,
        next_attempt_at: Option<OffsetDateTime>,
        answer: Answer,
    ) -> Result<bool, ServiceError> {
        let attempt = DeliveryAttempt {
            status,
            at,
            next_attempt_at,
            http_status: answer.http_status,
            error: answer.error,
        };
        Ok(self
            .store
            .record_webhook_attempt(delivery.id, delivery.attempts, &attempt)
            .await?)
    }

    /// Notes the failure; five days of failures (without a day's pause)
    /// disable the endpoint, in the tenant's audit log, and its admins are
    /// told by e-mail.
    async fn failing(
        &self,
        endpoint: &WebhookEndpointRecord,
        now: OffsetDateTime,
    ) -> Result<(), ServiceError> {
        let continues = endpoint
            .last_failure_at
            .is_some_and(|last| now - last < NEW_RUN_AFTER);
        let since = match endpoint.failing_since {
            Some(since) if continues => since,
            _ => now,
        };
        self.store
            .webhook_endpoint_failed(endpoint.id, since, now)
            .await?;
        if now - since < DISABLE_AFTER {
            return Ok(());
        }
        self.disable(endpoint, since, now).await
    }

    async fn disable(
        &self,
        endpoint: &WebhookEndpointRecord,
        since: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), ServiceError> {
        let reason = format!(
            "every delivery failed for {} days",
            DISABLE_AFTER.whole_days()
        );
        let tenant = self
            .store
            .tenant(endpoint.tenant_id)
            .await?
            .ok_or_else(ServiceError::missing("tenant"))?;
        let mut tx = self.store.begin().await?;
        if !tx
            .disable_webhook_endpoint(endpoint.id, &reason, now)
            .await?
        {
            return Ok(());
        }
        crate::notify::webhook_endpoint_disabled::enqueue_in(
            &mut tx, &tenant, endpoint, since, now,
        )
        .await?;
        tx.record_audit(&Actor::system("webhooks").audit(Change {
            tenant: endpoint.tenant_id,
            action: "webhook_endpoint.disabled",
            target_type: "webhook_endpoint",
            target_id: endpoint.id.to_string(),
            before: Some(json!({"status": "ACTIVE", "failing_since": since.unix_timestamp()})),
            after: Some(json!({"status": "DISABLED", "reason": reason})),
            at: now,
        }))
        .await?;
        tx.commit().await?;
        tracing::warn!(endpoint = %endpoint.id, tenant = %endpoint.tenant_id,
            "webhook endpoint disabled: failing for 5 days");
        Ok(())
    }

    /// One HTTP attempt; `Err` only when our side failed.
    async fn send(
        &self,
        endpoint: &WebhookEndpointRecord,
        delivery: &WebhookDeliveryRecord,
        now: OffsetDateTime,
    ) -> Result<Answer, ServiceError> {
        let sb = sealed::secret_box(&self.store)?;
        let secret = open_secret(sb, endpoint)?;
        let previous = open_previous_secret(sb, endpoint, now)?;
        let refused = |error: String| Answer {
            http_status: None,
            error: Some(error),
        };
        let Ok(url) = url::Url::parse(&endpoint.url) else {
            return Ok(refused("the URL cannot be parsed".into()));
        };
        let client = match self.pinned_client(&url).await {
            Ok(client) => client,
            Err(why) => {
                tracing::info!(endpoint = %endpoint.id, "webhook not sent: {why}");
                return Ok(refused(NOT_ALLOWED.into()));
            }
        };
        let message_id = format!("msg_{}", delivery.id);
        let body = delivery.payload.as_bytes();
        let headers = secret.headers(&message_id, now.unix_timestamp(), body);
        let mut signature = headers.signature;
        if let Some(previous) = previous {
            signature.push(' ');
            signature.push_str(&previous.sign(&message_id, now.unix_timestamp(), body));
        }
        let sent = client
            .post(url)
            .header("content-type", "application/json")
            .header("user-agent", "mPanel-Webhooks/1")
            .header("webhook-id", headers.id)
            .header("webhook-timestamp", headers.timestamp)
            .header("webhook-signature", signature)
            .body(delivery.payload.clone())
            .send()
            .await;
        Ok(match sent {
            Ok(res) => {
                let code = res.status().as_u16();
                Answer {
                    http_status: Some(i32::from(code)),
                    error: (!res.status().is_success())
                        .then(|| format!("the receiver answered HTTP {code}")),
                }
            }
            Err(e) if e.is_timeout() => refused("no answer within 15 s".into()),
            Err(_) => refused("the receiver could not be reached".into()),
        })
    }

    /// A client that connects only to the addresses checked here (so a
    /// name cannot resolve to a public address for the check and a private
    /// one for the connection), uses no proxy (a proxy would resolve the
    /// name itself), follows no redirects and times out.
    async fn pinned_client(&self, url: &url::Url) -> Result<reqwest::Client, String> {
        let host = url.host_str().ok_or("the URL has no host")?.to_owned();
        let port = url.port_or_known_default().ok_or("the URL has no port")?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> =
            tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((bare, port)))
                .await
                .map_err(|_| format!("{host} did not resolve in time"))?
                .map_err(|e| format!("{host} cannot be resolved: {e}"))?
                .collect();
        if addrs.is_empty() {
            return Err(format!("{host} has no address"));
        }
        for addr in &addrs {
            address_allowed(addr.ip(), &self.policy.allowed_networks).map_err(|class| {
                format!(
                    "{host} resolves to {}, a {} address",
                    addr.ip(),
                    class.as_str()
                )
            })?;
        }
        crate::tls::install_crypto_provider();
        reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .resolve_to_addrs(bare, &addrs)
            .build()
            .map_err(|e| format!("no HTTP client: {e}"))
    }
}
