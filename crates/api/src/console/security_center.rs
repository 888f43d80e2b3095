//! The tenant's security center for its admin: the security policy (what
//! sign-ins must satisfy) and the security events of everyone in the
//! tenant; a user without the admin's permission sees their own events.

use axum::Form;
use axum::extract::Query;
use axum::response::{IntoResponse, Redirect, Response};
use mpanel_domain::SecurityEventId;
use mpanel_domain::identity::Permission;
use mpanel_domain::security::SecurityPolicy;
use mpanel_services::ServiceError;
use mpanel_services::security::{self, policy};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::listing::Listed;
use super::session::Viewer;
use super::view::{PageError, page};
use super::{Done, Notice};
use crate::routes::security_events::{EventView, EventsQuery};

#[derive(Serialize)]
struct PolicyPage {
    policy: SecurityPolicy,
    ip_allow_list: String,
    reauthenticate: bool,
    notice: Option<Notice>,
}

/// `GET /security/policy`.
pub async fn show(viewer: Viewer, Query(done): Query<Done>) -> Result<Response, PageError> {
    viewer.require(Permission::SecurityPolicyWrite)?;
    let current = policy::get(&viewer).await?;
    render(&viewer, current, false, done.notice())
}

fn render(
    viewer: &Viewer,
    policy: SecurityPolicy,
    reauthenticate: bool,
    notice: Option<Notice>,
) -> Result<Response, PageError> {
    let ip_allow_list = serde_json::to_value(&policy.ip_allow_list)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c.as_str().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("\n");
    let data = PolicyPage {
        policy,
        ip_allow_list,
        reauthenticate,
        notice,
    };
    page(
        viewer,
        "/security",
        "Security policy",
        "security_policy.html",
        data,
    )
}

#[derive(Deserialize)]
pub struct PolicyForm {
    mfa_required: String,
    password_min_length: u32,
    session_idle_timeout_minutes: u32,
    session_max_lifetime_hours: u32,
    api_token_max_lifetime_days: u32,
    #[serde(default)]
    ip_allow_list: String,
    domain_control: String,
}

/// `POST /security/policy`: the fields of the form over the current
/// policy, checked by the same rules as `PUT /api/security/policy`.
pub async fn update(viewer: Viewer, Form(f): Form<PolicyForm>) -> Result<Response, PageError> {
    viewer.require(Permission::SecurityPolicyWrite)?;
    let current = policy::get(&viewer).await?;
    let mut value = serde_json::to_value(&current).map_err(|e| {
        PageError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    })?;
    let cidrs: Vec<&str> = f
        .ip_allow_list
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    for (k, v) in [
        ("mfa_required", json!(f.mfa_required)),
        ("password_min_length", json!(f.password_min_length)),
        (
            "session_idle_timeout_minutes",
            json!(f.session_idle_timeout_minutes),
        ),
        (
            "session_max_lifetime_hours",
            json!(f.session_max_lifetime_hours),
        ),
        (
            "api_token_max_lifetime_days",
            json!(f.api_token_max_lifetime_days),
        ),
        ("ip_allow_list", json!(cidrs)),
        ("domain_control", json!(f.domain_control)),
    ] {
        value[k] = v;
    }
    let wanted: SecurityPolicy = serde_json::from_value(value).map_err(|e| {
        PageError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            format!("The policy is not valid: {e}"),
        )
    })?;
    let from = viewer.cx.ip.as_deref().and_then(|ip| ip.parse().ok());
    match policy::update(&viewer, &wanted, from).await {
        Ok(_) => Ok(Redirect::to("/security/policy?done=policy_saved").into_response()),
        // What was asked for stays on the page for the second try.
        Err(ServiceError::ReauthenticationRequired) => render(&viewer, wanted, true, None),
        Err(e) => Err(e.into()),
    }
}

#[derive(Serialize)]
struct EventsPage {
    events: Vec<EventView>,
    next_href: Option<String>,
    kind: String,
    tenant_wide: bool,
}

/// `GET /security/events`: the tenant's (its admin) or one's own.
pub async fn events(viewer: Viewer, listed: Listed<EventsQuery>) -> Result<Response, PageError> {
    viewer.require(Permission::SelfSecurity)?;
    let Listed { listing, links } = listed;
    let q = listing.filter;
    let paging = listing.paging;
    let before = paging.after::<SecurityEventId>()?;
    let fetched = security::events(
        &viewer,
        q.user_id,
        q.kind.as_deref(),
        before,
        paging.fetch(),
    )
    .await?;
    let found = paging.page(fetched, |e| e.record.id.to_string(), EventView::from);
    let data = EventsPage {
        next_href: links.next_href(found.next_cursor.as_deref()),
        events: found.items,
        kind: links.value("kind"),
        tenant_wide: viewer.may(Permission::SecurityEventsRead),
    };
    page(
        &viewer,
        "/security",
        "Security events",
        "security_events.html",
        data,
    )
}
