//! The tenant's settings for its staff: billing (seller details, payment
//! terms, the Stripe keys, write-only), the marketing site's webhook
//! secret (rotated, shown once), and the e-mail templates, with the
//! sender the platform sends as. The same services and permissions as
//! `/api/billing/settings`, `/api/settings` and `/api/notifications`.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use mpanel_domain::identity::Permission;
use mpanel_domain::notify::EmailKind;
use mpanel_services::ServiceError;
use mpanel_services::billing::settings::{self, BillingSettings, SettingsUpdate};
use mpanel_services::notify::templates::Sources;
use mpanel_services::notify::tenant_templates::{self, TemplateView};
use mpanel_services::tenants::rotate_webhook_secret_as;
use serde::{Deserialize, Serialize};

use super::session::Viewer;
use super::view::{PageError, page};
use super::{Done, Notice};
use crate::AppState;

#[derive(Serialize, Default)]
struct SettingsPage {
    billing: Option<BillingSettings>,
    address: String,
    stripe_secret_key_set: bool,
    stripe_webhook_secret_set: bool,
    templates: Vec<TemplateView>,
    sender: String,
    may_settings: bool,
    new_webhook_secret: Option<String>,
    reauthenticate: bool,
    notice: Option<Notice>,
}

fn may_see(viewer: &Viewer) -> Result<(), PageError> {
    if viewer.may(Permission::BillingSettingsWrite) || viewer.may(Permission::SettingsWrite) {
        Ok(())
    } else {
        viewer.require(Permission::SettingsWrite)
    }
}

async fn render(
    state: &AppState,
    viewer: &Viewer,
    mut data: SettingsPage,
) -> Result<Response, PageError> {
    if viewer.may(Permission::BillingSettingsWrite) {
        let loaded = settings::get(viewer).await?;
        data.address = loaded.settings.address_lines.join("\n");
        data.stripe_secret_key_set = loaded.stripe_secret_key.is_some();
        data.stripe_webhook_secret_set = loaded.stripe_webhook_secret.is_some();
        data.billing = Some(loaded.settings);
    }
    if viewer.may(Permission::NotificationsRead) {
        data.templates = tenant_templates::list(viewer).await?;
    }
    data.sender = state.mail.sender.to_string();
    data.may_settings = viewer.may(Permission::SettingsWrite);
    page(viewer, "/settings", "Settings", "settings.html", data)
}

/// `GET /settings`.
pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    may_see(&viewer)?;
    let data = SettingsPage {
        notice: done.notice(),
        ..SettingsPage::default()
    };
    render(&state, &viewer, data).await
}

#[derive(Deserialize)]
pub struct BillingForm {
    #[serde(default)]
    legal_name: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    tax_id: String,
    payment_terms_days: u32,
    #[serde(default)]
    stripe_publishable_key: String,
    /// Replaced only when given.
    #[serde(default)]
    stripe_secret_key: String,
    #[serde(default)]
    stripe_webhook_secret: String,
}

fn some(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// `POST /settings/billing`.
pub async fn billing(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(f): Form<BillingForm>,
) -> Result<Response, PageError> {
    viewer.require(Permission::BillingSettingsWrite)?;
    let mut wanted = settings::get(&viewer).await?.settings;
    wanted.legal_name = some(&f.legal_name);
    wanted.address_lines = f
        .address
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    wanted.country = some(&f.country).map(|c| c.to_ascii_uppercase());
    wanted.tax_id = some(&f.tax_id);
    wanted.payment_terms_days = f.payment_terms_days;
    wanted.stripe_publishable_key = some(&f.stripe_publishable_key);
    let update = SettingsUpdate {
        settings: wanted,
        stripe_secret_key: some(&f.stripe_secret_key),
        stripe_webhook_secret: some(&f.stripe_webhook_secret),
    };
    match settings::update(&viewer, update).await {
        Ok(_) => Ok(Redirect::to("/settings?done=settings_saved").into_response()),
        Err(ServiceError::ReauthenticationRequired) => {
            let data = SettingsPage {
                reauthenticate: true,
                ..SettingsPage::default()
            };
            render(&state, &viewer, data).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    revoke_previous: Option<String>,
}

/// `POST /settings/webhook-secret`: a new secret, shown this once.
pub async fn rotate(
    State(state): State<AppState>,
    viewer: Viewer,
    Form(f): Form<RotateForm>,
) -> Result<Response, PageError> {
    viewer.require(Permission::SettingsWrite)?;
    let data = match rotate_webhook_secret_as(&viewer, f.revoke_previous.is_some()).await {
        Ok((secret, _)) => SettingsPage {
            new_webhook_secret: Some(secret),
            ..SettingsPage::default()
        },
        Err(ServiceError::ReauthenticationRequired) => SettingsPage {
            reauthenticate: true,
            ..SettingsPage::default()
        },
        Err(e) => return Err(e.into()),
    };
    render(&state, &viewer, data).await
}

fn kind_of(raw: &str) -> Result<EmailKind, PageError> {
    raw.parse().map_err(|_| PageError::not_found())
}

#[derive(Serialize)]
struct TemplatePage {
    template: TemplateView,
    may_edit: bool,
    notice: Option<Notice>,
}

/// `GET /settings/templates/{kind}`.
pub async fn template(
    viewer: Viewer,
    Path(raw): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    viewer.require(Permission::NotificationsRead)?;
    let template = tenant_templates::get(&viewer, kind_of(&raw)?).await?;
    let data = TemplatePage {
        may_edit: viewer.may(Permission::SettingsWrite) && template.customizable,
        notice: done.notice(),
        template,
    };
    page(
        &viewer,
        "/settings",
        "E-mail template",
        "template.html",
        data,
    )
}

#[derive(Deserialize)]
pub struct TemplateForm {
    subject: String,
    text: String,
    html: String,
}

/// `POST /settings/templates/{kind}`: checked by rendering it first.
pub async fn save_template(
    viewer: Viewer,
    Path(raw): Path<String>,
    Form(f): Form<TemplateForm>,
) -> Result<Response, PageError> {
    viewer.require(Permission::SettingsWrite)?;
    let kind = kind_of(&raw)?;
    let sources = Sources {
        subject: f.subject,
        text: f.text.replace("\r\n", "\n"),
        html: f.html.replace("\r\n", "\n"),
    };
    tenant_templates::put(&viewer, kind, sources).await?;
    Ok(Redirect::to(&format!("/settings/templates/{raw}?done=template_saved")).into_response())
}

/// `POST /settings/templates/{kind}/reset`: the built-in ones again.
pub async fn reset_template(
    viewer: Viewer,
    Path(raw): Path<String>,
) -> Result<Response, PageError> {
    viewer.require(Permission::SettingsWrite)?;
    tenant_templates::reset(&viewer, kind_of(&raw)?).await?;
    Ok(Redirect::to(&format!("/settings/templates/{raw}?done=template_reset")).into_response())
}
