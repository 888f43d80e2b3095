//! Creating a tenant: one hosting brand.

use mpanel_domain::{Clock, NewTenant, TenantId};
use mpanel_store::secret_box::kind;
use mpanel_store::{Store, StoreError, TenantRecord};
use serde_json::json;

use crate::actor::Change;
use crate::{Actor, Context, ServiceError};

/// The fields of a new tenant as given (checked here).
#[derive(Debug, Clone)]
pub struct CreateTenant {
    pub slug: String,
    pub name: String,
    pub timezone: String,
    pub default_currency: String,
    /// Support address, sender and logo (checked by the caller).
    pub profile: TenantProfile,
}

/// What a tenant's customers see of it beyond its name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantProfile {
    pub support_email: Option<String>,
    pub sender_name: Option<String>,
    pub sender_address: Option<String>,
    pub logo_url: Option<String>,
}

/// A new tenant and the secret its marketing site signs orders with
/// (shown this once).
#[derive(Clone)]
pub struct CreatedTenant {
    pub tenant: TenantRecord,
    pub webhook_secret: String,
}

/// The secret is shown once, to the caller, never through `{:?}`.
impl std::fmt::Debug for CreatedTenant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedTenant")
            .field("tenant", &self.tenant)
            .field("webhook_secret", &"[redacted]")
            .finish()
    }
}

/// How long a rotated-out webhook secret keeps working.
pub const SECRET_GRACE: time::Duration = time::Duration::hours(24);

/// A webhook secret: `whsec_` + 256 random bits.
fn new_webhook_secret() -> Result<String, ServiceError> {
    use base64::Engine as _;
    let bytes = crate::identity::secrets::random_bytes::<32>()?;
    Ok(format!(
        "whsec_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// Creates a tenant, its webhook secret and its audit row in one transaction.
pub async fn create_tenant(
    store: &Store,
    clock: &dyn Clock,
    actor: &Actor,
    input: &CreateTenant,
) -> Result<CreatedTenant, ServiceError> {
    let tenant = NewTenant::parse(
        &input.slug,
        &input.name,
        &input.timezone,
        &input.default_currency,
    )?;
    let now = clock.now();
    let id = TenantId::new();
    let mut tx = store.begin().await?;
    let mut record = match tx.insert_tenant(id, &tenant, now).await {
        Ok(record) => record,
        Err(StoreError::Conflict(_)) => {
            return Err(ServiceError::Conflict(format!(
                "a tenant with slug {:?} already exists",
                tenant.slug.as_str()
            )));
        }
        Err(other) => return Err(other.into()),
    };
    if input.profile != TenantProfile::default() {
        let p = input.profile.clone();
        record.support_email = p.support_email;
        record.sender_name = p.sender_name;
        record.sender_address = p.sender_address;
        record.logo_url = p.logo_url;
        tx.update_tenant(&record).await?;
    }
    tx.record_audit(&actor.audit(Change {
        tenant: id,
        action: "tenant.create",
        target_type: "tenant",
        target_id: id.to_string(),
        before: None,
        after: Some(json!({
            "slug": record.slug,
            "name": record.name,
            "timezone": record.timezone,
            "default_currency": record.default_currency,
        })),
        at: now,
    }))
    .await?;
    let webhook_secret = new_webhook_secret()?;
    let (row, sealed) = seal_webhook_secret(store, id, &webhook_secret)?;
    tx.insert_webhook_secret(row, id, &sealed, now).await?;
    tx.commit().await?;
    Ok(CreatedTenant {
        tenant: record,
        webhook_secret,
    })
}

/// A new webhook secret for the caller's tenant, shown once; the old one
/// keeps working for [`SECRET_GRACE`].
pub async fn rotate_webhook_secret(
    store: &Store,
    clock: &dyn Clock,
    tenant: TenantId,
    actor: &Actor,
) -> Result<(String, time::OffsetDateTime), ServiceError> {
    rotate(store, clock, tenant, actor, SECRET_GRACE).await
}

/// Staff rotating the order-webhook secret, a change that needs the user
/// (step-up). With `revoke_previous` (the secret leaked) the previous ones
/// stop verifying at once; otherwise they keep working for the grace.
pub async fn rotate_webhook_secret_as(
    cx: &Context,
    revoke_previous: bool,
) -> Result<(String, time::OffsetDateTime), ServiceError> {
    crate::identity::step_up::require_recent(&cx.principal, cx.now())?;
    let grace = if revoke_previous {
        time::Duration::ZERO
    } else {
        SECRET_GRACE
    };
    rotate(
        &cx.store,
        cx.clock.as_ref(),
        cx.tenant_id(),
        &cx.actor,
        grace,
    )
    .await
}

async fn rotate(
    store: &Store,
    clock: &dyn Clock,
    tenant: TenantId,
    actor: &Actor,
    grace: time::Duration,
) -> Result<(String, time::OffsetDateTime), ServiceError> {
    let now = clock.now();
    let old_until = now + grace;
    let secret = new_webhook_secret()?;
    let (row, sealed) = seal_webhook_secret(store, tenant, &secret)?;
    let mut tx = store.begin().await?;
    tx.retire_webhook_secrets(tenant, old_until).await?;
    tx.insert_webhook_secret(row, tenant, &sealed, now).await?;
    tx.record_audit(&actor.audit(Change {
        tenant,
        action: "webhook_secret.rotate",
        target_type: "tenant",
        target_id: tenant.to_string(),
        before: None,
        after: Some(json!({"previous_secret_valid_until": old_until.unix_timestamp()})),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok((secret, old_until))
}

/// A new row id and the secret sealed bound to it and its tenant.
fn seal_webhook_secret(
    store: &Store,
    tenant: TenantId,
    secret: &str,
) -> Result<(uuid::Uuid, String), ServiceError> {
    let row = uuid::Uuid::now_v7();
    let sealed = crate::sealed::secret_box(store)?.seal_str(
        secret,
        kind::ORDER_WEBHOOK_SECRET,
        &kind::tenant_row(tenant.as_uuid(), row),
    )?;
    Ok((row, sealed))
}

/// The secrets a tenant's webhooks may be signed with now (the current one
/// and rotated-out ones in their grace period), opened for the signature
/// check. A value that does not open (moved from another tenant's row, or
/// sealed under another key) is refused, logged without its value, and not
/// used.
pub async fn webhook_secrets(
    store: &Store,
    tenant: TenantId,
    now: time::OffsetDateTime,
) -> Result<Vec<String>, ServiceError> {
    let sb = crate::sealed::secret_box(store)?;
    let mut out = Vec::new();
    for (row, sealed) in store.webhook_secrets(tenant, now).await? {
        match sb.open_str(
            &sealed,
            kind::ORDER_WEBHOOK_SECRET,
            &kind::tenant_row(tenant.as_uuid(), row),
        ) {
            Ok(secret) => out.push(secret),
            Err(err) => {
                tracing::warn!(%tenant, webhook_secret = %row, %err, "a stored webhook secret does not open; it is not used");
            }
        }
    }
    Ok(out)
}
