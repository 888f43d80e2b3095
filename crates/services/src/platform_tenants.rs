//! Tenants as the platform's operator manages them over the API
//! (`SUPER_ADMIN`): list, create (with the order-webhook secret, shown
//! once), read, change the profile, suspend and restore.

use mpanel_domain::{NewTenant, TenantId, TenantStatus, contact};
use mpanel_store::TenantRecord;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::ServiceError;
use crate::context::Context;
use crate::tenants::{CreateTenant, TenantProfile, create_tenant};

/// A new tenant.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenantInput {
    /// Lower-case letters, digits and dashes; fixed once made.
    #[schema(pattern = "^[a-z0-9][a-z0-9-]{1,62}$")]
    pub slug: String,
    #[schema(max_length = 200)]
    pub name: String,
    /// IANA time zone, e.g. `Europe/Berlin` (billing periods follow it).
    pub timezone: String,
    /// ISO 4217, e.g. `EUR`.
    #[schema(pattern = "^[A-Z]{3}$")]
    pub default_currency: String,
    /// Where customers write to (shown in messages).
    #[schema(max_length = 254)]
    pub support_email: Option<String>,
    /// The `From` name of its messages.
    #[schema(max_length = 100)]
    pub sender_name: Option<String>,
    /// The `From` address of its messages (its domain signs them).
    #[schema(max_length = 254)]
    pub sender_address: Option<String>,
    /// An `https://` URL of its logo.
    #[schema(max_length = 2048)]
    pub logo_url: Option<String>,
}

/// The profile fields of a request; an empty string clears one.
struct ProfileInput<'a> {
    support_email: &'a Option<String>,
    sender_name: &'a Option<String>,
    sender_address: &'a Option<String>,
    logo_url: &'a Option<String>,
}

macro_rules! profile_input {
    ($r:expr) => {
        ProfileInput {
            support_email: &$r.support_email,
            sender_name: &$r.sender_name,
            sender_address: &$r.sender_address,
            logo_url: &$r.logo_url,
        }
    };
}

/// A change to a tenant; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantPatch {
    #[schema(max_length = 200)]
    pub name: Option<String>,
    pub timezone: Option<String>,
    #[schema(pattern = "^[A-Z]{3}$")]
    pub default_currency: Option<String>,
    /// SUSPENDED stops its sign-ins, public catalog and order webhook.
    pub status: Option<TenantStatus>,
    /// Where customers write to; `""` clears it (so do the three below).
    #[schema(max_length = 254)]
    pub support_email: Option<String>,
    /// The `From` name of its messages.
    #[schema(max_length = 100)]
    pub sender_name: Option<String>,
    /// The `From` address of its messages (its domain signs them).
    #[schema(max_length = 254)]
    pub sender_address: Option<String>,
    /// An `https://` URL of its logo.
    #[schema(max_length = 2048)]
    pub logo_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TenantView {
    #[schema(value_type = uuid::Uuid)]
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
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// A new tenant and the secret its marketing site signs orders with.
#[derive(Serialize, ToSchema)]
pub struct CreatedTenantView {
    pub tenant: TenantView,
    /// `whsec_…`, shown this once.
    pub webhook_secret: String,
}

pub fn view(t: TenantRecord) -> TenantView {
    TenantView {
        id: t.id,
        slug: t.slug,
        name: t.name,
        timezone: t.timezone,
        default_currency: t.default_currency,
        status: t.status,
        support_email: t.support_email,
        sender_name: t.sender_name,
        sender_address: t.sender_address,
        logo_url: t.logo_url,
        created_at: t.created_at,
        updated_at: t.updated_at,
    }
}

/// `Some("")` clears, `Some(x)` checks and sets, `None` keeps.
fn merged(
    field: &'static str,
    given: &Option<String>,
    current: &Option<String>,
    check: impl Fn(&str) -> Result<String, String>,
) -> Result<Option<String>, ServiceError> {
    match given.as_deref().map(str::trim) {
        None => Ok(current.clone()),
        Some("") => Ok(None),
        Some(value) => check(value)
            .map(Some)
            .map_err(|m| ServiceError::invalid(field, m)),
    }
}

fn sender_name(value: &str) -> Result<String, String> {
    if value.chars().count() > 100 || value.chars().any(|c| c.is_control() || "<>\"".contains(c)) {
        return Err("at most 100 characters, without control characters, quotes or <>".into());
    }
    Ok(value.to_owned())
}

fn logo_url(value: &str) -> Result<String, String> {
    let url = url::Url::parse(value).map_err(|_| "is not an absolute URL".to_owned())?;
    if url.scheme() != "https" || url.host().is_none() || value.chars().count() > 2048 {
        return Err("must be an https:// URL of at most 2048 characters".into());
    }
    Ok(url.to_string())
}

/// The profile after `input` is applied to `current`.
fn profile(
    input: &ProfileInput<'_>,
    current: &TenantProfile,
) -> Result<TenantProfile, ServiceError> {
    Ok(TenantProfile {
        support_email: merged(
            "support_email",
            input.support_email,
            &current.support_email,
            contact::email,
        )?,
        sender_name: merged(
            "sender_name",
            input.sender_name,
            &current.sender_name,
            sender_name,
        )?,
        sender_address: merged(
            "sender_address",
            input.sender_address,
            &current.sender_address,
            contact::email,
        )?,
        logo_url: merged("logo_url", input.logo_url, &current.logo_url, logo_url)?,
    })
}

fn profile_of(t: &TenantRecord) -> TenantProfile {
    TenantProfile {
        support_email: t.support_email.clone(),
        sender_name: t.sender_name.clone(),
        sender_address: t.sender_address.clone(),
        logo_url: t.logo_url.clone(),
    }
}

pub async fn list(
    cx: &Context,
    before: Option<TenantId>,
    limit: u32,
) -> Result<Vec<TenantView>, ServiceError> {
    let rows = cx.store.page_tenants(before, i64::from(limit)).await?;
    Ok(rows.into_iter().map(view).collect())
}

pub async fn get(cx: &Context, id: TenantId) -> Result<TenantView, ServiceError> {
    Ok(view(find(cx, id).await?))
}

async fn find(cx: &Context, id: TenantId) -> Result<TenantRecord, ServiceError> {
    cx.store
        .tenant(id)
        .await?
        .ok_or_else(|| ServiceError::NotFound("No such tenant.".into()))
}

pub async fn create(
    cx: &Context,
    input: NewTenantInput,
) -> Result<CreatedTenantView, ServiceError> {
    let profile = profile(&profile_input!(input), &TenantProfile::default())?;
    let created = create_tenant(
        &cx.store,
        cx.clock.as_ref(),
        &cx.actor,
        &CreateTenant {
            slug: input.slug,
            name: input.name,
            timezone: input.timezone,
            default_currency: input.default_currency,
            profile,
        },
    )
    .await?;
    Ok(CreatedTenantView {
        tenant: view(created.tenant),
        webhook_secret: created.webhook_secret,
    })
}

fn summary(t: &TenantRecord) -> serde_json::Value {
    json!({"name": t.name, "timezone": t.timezone, "default_currency": t.default_currency,
        "status": t.status, "support_email": t.support_email, "sender_name": t.sender_name,
        "sender_address": t.sender_address, "logo_url": t.logo_url})
}

/// Applies `patch`; the operator cannot suspend the tenant they sign in
/// through (they would lock themselves out).
pub async fn update(
    cx: &Context,
    id: TenantId,
    patch: TenantPatch,
) -> Result<TenantView, ServiceError> {
    let before = find(cx, id).await?;
    if patch.status == Some(TenantStatus::Suspended) && id == cx.tenant_id() {
        return Err(ServiceError::Conflict(
            "you sign in through this tenant: suspending it would lock you out".into(),
        ));
    }
    let mut after = before.clone();
    let checked = NewTenant::parse(
        &before.slug,
        patch.name.as_deref().unwrap_or(&before.name),
        patch.timezone.as_deref().unwrap_or(&before.timezone),
        patch
            .default_currency
            .as_deref()
            .unwrap_or(&before.default_currency),
    )?;
    after.name = checked.name;
    after.timezone = checked.timezone;
    after.default_currency = checked.default_currency;
    after.status = patch.status.unwrap_or(before.status);
    let p = profile(&profile_input!(patch), &profile_of(&before))?;
    (
        after.support_email,
        after.sender_name,
        after.sender_address,
        after.logo_url,
    ) = (p.support_email, p.sender_name, p.sender_address, p.logo_url);
    let now = cx.now();
    after.updated_at = now;
    let mut tx = cx.store.begin().await?;
    tx.update_tenant(&after).await?;
    let action = match (before.status, after.status) {
        (TenantStatus::Active, TenantStatus::Suspended) => "tenant.suspend",
        (TenantStatus::Suspended, TenantStatus::Active) => "tenant.restore",
        _ => "tenant.update",
    };
    tx.record_audit(&cx.actor.audit(crate::actor::Change {
        tenant: id,
        action,
        target_type: "tenant",
        target_id: id.to_string(),
        before: Some(summary(&before)),
        after: Some(summary(&after)),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(view(after))
}
