//! A tenant's endpoints: create (the signing secret is shown once), read,
//! change (URL, events, description, status, a new secret), delete.

use std::net::IpAddr;

use mpanel_domain::WebhookEndpointId;
use mpanel_domain::webhooks::address::address_allowed;
use mpanel_domain::webhooks::{EndpointStatus, EventType, WebhookSecret, check_url};
use mpanel_store::secret_box::SecretBox;
use mpanel_store::webhooks::WebhookEndpointRecord;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::WebhookPolicy;
use crate::context::{Audited, Context};
use crate::{ServiceError, sealed};

/// A new endpoint.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// `https://` (or `http://`) URL the events are POSTed to.
    #[schema(max_length = 2048, format = "uri")]
    pub url: String,
    #[serde(default)]
    #[schema(max_length = 200)]
    pub description: String,
    /// The events it receives (at least one).
    #[schema(min_items = 1)]
    pub event_types: Vec<EventType>,
}

/// A change to an endpoint; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointPatch {
    #[schema(max_length = 2048, format = "uri")]
    pub url: Option<String>,
    #[schema(max_length = 200)]
    pub description: Option<String>,
    #[schema(min_items = 1)]
    pub event_types: Option<Vec<EventType>>,
    /// ACTIVE again (clears the failure record) or DISABLED.
    pub status: Option<EndpointStatus>,
    /// Replace the signing secret; the new one is in the answer, once.
    #[serde(default)]
    pub rotate_secret: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EndpointView {
    pub id: WebhookEndpointId,
    pub url: String,
    pub description: String,
    pub event_types: Vec<EventType>,
    pub status: EndpointStatus,
    /// Failing without a success since then; disabled after 5 days.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub failing_since: Option<OffsetDateTime>,
    pub disabled_reason: Option<String>,
    /// `whsec_…`: only in the answer that created or rotated it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

pub fn view(e: WebhookEndpointRecord, secret: Option<&WebhookSecret>) -> EndpointView {
    EndpointView {
        id: e.id,
        url: e.url,
        description: e.description,
        event_types: e.event_types,
        status: e.status,
        failing_since: e.failing_since,
        disabled_reason: e.disabled_reason,
        secret: secret.map(WebhookSecret::expose),
        created_at: e.created_at,
        updated_at: e.updated_at,
    }
}

/// How long saving waits for the host name to resolve.
const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// The URL, parsed and checked against the rules and the operator's policy:
/// an address literal, or a host name that resolves now, must reach only
/// allowed addresses (a name that does not resolve yet is checked at each
/// delivery).
pub async fn checked_url(raw: &str, policy: &WebhookPolicy) -> Result<String, ServiceError> {
    let bad = |m: String| ServiceError::invalid("url", m);
    let url = url::Url::parse(raw.trim()).map_err(|_| bad("is not an absolute URL".into()))?;
    let host_ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(url::Host::Domain(_)) => None,
        None => return Err(bad("has no host".into())),
    };
    let credentials = !url.username().is_empty() || url.password().is_some();
    check_url(
        url.scheme(),
        credentials,
        host_ip,
        raw.chars().count(),
        &policy.allowed_networks,
    )
    .map_err(|e| bad(e.to_string()))?;
    if let (Some(url::Host::Domain(name)), Some(port)) = (url.host(), url.port_or_known_default()) {
        let lookup = tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((name, port)));
        if let Ok(Ok(addrs)) = lookup.await {
            for addr in addrs {
                address_allowed(addr.ip(), &policy.allowed_networks).map_err(|class| {
                    bad(format!(
                        "resolves to a {} address, which this installation does not send to",
                        class.as_str()
                    ))
                })?;
            }
        }
    }
    Ok(url.to_string())
}

fn checked_events(types: &[EventType]) -> Result<Vec<EventType>, ServiceError> {
    if types.is_empty() {
        return Err(ServiceError::invalid(
            "event_types",
            "name at least one event",
        ));
    }
    let mut types = types.to_vec();
    types.sort();
    types.dedup();
    Ok(types)
}

fn checked_description(text: &str) -> Result<String, ServiceError> {
    let text = text.trim();
    if text.chars().count() > 200 || text.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "description",
            "at most 200 characters, no control characters",
        ));
    }
    Ok(text.to_owned())
}

/// A sealed secret opens only in the row it was sealed for.
fn binding(id: WebhookEndpointId) -> Vec<u8> {
    mpanel_store::secret_box::binding("webhook_endpoint", &id.to_string())
}

fn new_secret() -> Result<WebhookSecret, ServiceError> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| {
        ServiceError::internal_msg(format!("no randomness for a webhook secret: {e}"))
    })?;
    Ok(WebhookSecret::from_key(key))
}

fn seal(
    sb: &SecretBox,
    id: WebhookEndpointId,
    secret: &WebhookSecret,
) -> Result<String, ServiceError> {
    Ok(sb.seal(secret.expose().as_bytes(), &binding(id))?)
}

/// Opens an endpoint's secret (the delivery job signs with it).
pub fn open_secret(
    sb: &SecretBox,
    e: &WebhookEndpointRecord,
) -> Result<WebhookSecret, ServiceError> {
    open_sealed(sb, e, &e.secret)
}

/// How long deliveries are also signed with the secret a rotation
/// replaced, so receivers can switch without dropping any.
pub const ROTATION_GRACE: time::Duration = time::Duration::hours(24);

/// The secret a rotation replaced, while it is still in use.
pub fn open_previous_secret(
    sb: &SecretBox,
    e: &WebhookEndpointRecord,
    now: OffsetDateTime,
) -> Result<Option<WebhookSecret>, ServiceError> {
    match (&e.previous_secret, e.previous_secret_until) {
        (Some(sealed), Some(until)) if now < until => open_sealed(sb, e, sealed).map(Some),
        _ => Ok(None),
    }
}

fn open_sealed(
    sb: &SecretBox,
    e: &WebhookEndpointRecord,
    sealed: &str,
) -> Result<WebhookSecret, ServiceError> {
    let raw = sb.open(sealed, &binding(e.id))?;
    std::str::from_utf8(&raw)
        .ok()
        .and_then(WebhookSecret::parse)
        .ok_or_else(|| ServiceError::internal_msg("a stored webhook secret cannot be read"))
}

fn summary(e: &WebhookEndpointRecord) -> serde_json::Value {
    json!({
        "url": e.url,
        "description": e.description,
        "event_types": e.event_types,
        "status": e.status,
    })
}

pub async fn create(
    cx: &Context,
    policy: &WebhookPolicy,
    input: NewEndpoint,
) -> Result<EndpointView, ServiceError> {
    let url = checked_url(&input.url, policy).await?;
    let event_types = checked_events(&input.event_types)?;
    let description = checked_description(&input.description)?;
    let sb = sealed::secret_box(&cx.store)?;
    let (id, now, secret) = (WebhookEndpointId::new(), cx.now(), new_secret()?);
    let record = WebhookEndpointRecord {
        id,
        tenant_id: cx.tenant_id(),
        url,
        description,
        event_types,
        secret: seal(sb, id, &secret)?,
        previous_secret: None,
        previous_secret_until: None,
        status: EndpointStatus::Active,
        failing_since: None,
        last_failure_at: None,
        disabled_reason: None,
        created_at: now,
        updated_at: now,
    };
    let mut tx = cx.store.begin().await?;
    tx.insert_webhook_endpoint(&record).await?;
    tx.record_audit(&cx.audit(Audited {
        action: "webhook_endpoint.create",
        target_type: "webhook_endpoint",
        target_id: id.to_string(),
        before: None,
        after: Some(summary(&record)),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(view(record, Some(&secret)))
}

/// The endpoint of this tenant, or 404.
pub async fn find(
    cx: &Context,
    id: WebhookEndpointId,
) -> Result<WebhookEndpointRecord, ServiceError> {
    cx.store
        .webhook_endpoint(cx.tenant_id(), id)
        .await?
        .ok_or_else(gone)
}

/// The 404 for an endpoint the tenant does not have.
fn gone() -> ServiceError {
    ServiceError::NotFound("No such webhook endpoint.".into())
}

pub async fn get(cx: &Context, id: WebhookEndpointId) -> Result<EndpointView, ServiceError> {
    Ok(view(find(cx, id).await?, None))
}

pub async fn list(
    cx: &Context,
    before: Option<WebhookEndpointId>,
    limit: u32,
) -> Result<Vec<EndpointView>, ServiceError> {
    let rows = cx
        .store
        .list_webhook_endpoints(cx.tenant_id(), before, i64::from(limit))
        .await?;
    Ok(rows.into_iter().map(|e| view(e, None)).collect())
}

/// Applies `patch` (not the secret).
async fn apply(
    e: &mut WebhookEndpointRecord,
    patch: &EndpointPatch,
    policy: &WebhookPolicy,
) -> Result<(), ServiceError> {
    if let Some(url) = &patch.url {
        e.url = checked_url(url, policy).await?;
    }
    if let Some(text) = &patch.description {
        e.description = checked_description(text)?;
    }
    if let Some(types) = &patch.event_types {
        e.event_types = checked_events(types)?;
    }
    match patch.status {
        Some(EndpointStatus::Active) => {
            e.status = EndpointStatus::Active;
            e.failing_since = None;
            e.disabled_reason = None;
        }
        Some(EndpointStatus::Disabled) if e.status == EndpointStatus::Active => {
            e.status = EndpointStatus::Disabled;
            e.disabled_reason = Some("disabled by staff".into());
        }
        _ => {}
    }
    Ok(())
}

pub async fn update(
    cx: &Context,
    policy: &WebhookPolicy,
    id: WebhookEndpointId,
    patch: EndpointPatch,
) -> Result<EndpointView, ServiceError> {
    let before = find(cx, id).await?;
    let mut record = before.clone();
    apply(&mut record, &patch, policy).await?;
    let now = cx.now();
    let secret = if patch.rotate_secret {
        let secret = new_secret()?;
        record.previous_secret = Some(record.secret.clone());
        record.previous_secret_until = Some(now + ROTATION_GRACE);
        record.secret = seal(sealed::secret_box(&cx.store)?, id, &secret)?;
        Some(secret)
    } else {
        None
    };
    record.updated_at = now;
    let mut tx = cx.store.begin().await?;
    if !tx.update_webhook_endpoint(&record).await? {
        return Err(gone());
    }
    let mut after = summary(&record);
    after["secret_rotated"] = json!(patch.rotate_secret);
    tx.record_audit(&cx.audit(Audited {
        action: "webhook_endpoint.update",
        target_type: "webhook_endpoint",
        target_id: id.to_string(),
        before: Some(summary(&before)),
        after: Some(after),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(view(record, secret.as_ref()))
}

pub async fn delete(cx: &Context, id: WebhookEndpointId) -> Result<(), ServiceError> {
    let before = find(cx, id).await?;
    let now = cx.now();
    let mut tx = cx.store.begin().await?;
    if !tx.delete_webhook_endpoint(cx.tenant_id(), id).await? {
        return Err(gone());
    }
    tx.record_audit(&cx.audit(Audited {
        action: "webhook_endpoint.delete",
        target_type: "webhook_endpoint",
        target_id: id.to_string(),
        before: Some(summary(&before)),
        after: None,
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(())
}
