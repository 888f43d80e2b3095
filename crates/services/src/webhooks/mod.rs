//! Outbound webhooks: a tenant subscribes URLs to events ([`endpoints`]);
//! an event writes one delivery per subscribed endpoint in its own
//! transaction ([`emit`]); a job sends each, signed, and retries it on the
//! Standard Webhooks schedule ([`deliver`]).

pub mod deliver;
pub mod deliveries;
pub mod emit;
pub mod endpoints;

use mpanel_domain::WebhookDeliveryId;
use mpanel_domain::jobs::JobPayload;
use mpanel_domain::webhooks::Cidr;
use serde::{Deserialize, Serialize};

pub use emit::{emit, emit_many};

/// The operator's rule for where endpoints may point (`webhook_allowed_networks`).
#[derive(Debug, Clone, Default)]
pub struct WebhookPolicy {
    /// Loopback, private or link-local networks endpoints may use anyway.
    pub allowed_networks: Vec<Cidr>,
}

/// `webhook.deliver`: send one delivery (and schedule its next attempt).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliverWebhook {
    pub delivery_id: WebhookDeliveryId,
    /// The delivery's tenant: the queue shows its admin their own jobs
    /// (jobs queued before it was carried have none).
    #[serde(default)]
    pub tenant_id: Option<mpanel_domain::TenantId>,
}

impl JobPayload for DeliverWebhook {
    const KIND: &'static str = "webhook.deliver";
}
