//! The platform's servers with their last health check (the operator's).

use std::str::FromStr;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use mpanel_domain::identity::Permission;
use mpanel_domain::provisioning::ServerRole;
use mpanel_services::servers::{self, ServerView};
use serde::{Deserialize, Serialize};

use super::session::Viewer;
use super::view::{PageError, page};
use crate::AppState;

#[derive(Serialize)]
struct ServersPage {
    servers: Vec<ServerView>,
    role: String,
}

/// `?role=WEB`: one role's servers (empty: all).
#[derive(Deserialize)]
pub struct RoleFilter {
    #[serde(default)]
    role: Option<String>,
}

/// `GET /servers`: the whole inventory (a provider's fleet, not paged),
/// or one role's.
pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(filter): Query<RoleFilter>,
) -> Result<Response, PageError> {
    viewer.require(Permission::ServersRead)?;
    let role = match filter
        .role
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        None => None,
        Some(r) => Some(ServerRole::from_str(r).map_err(|_| {
            PageError::new(StatusCode::UNPROCESSABLE_ENTITY, "No such server role.")
        })?),
    };
    let servers = servers::list(&viewer, state.secrets.as_ref(), role).await?;
    let role = role.map(|r| r.as_str().to_owned()).unwrap_or_default();
    page(
        &viewer,
        "/servers",
        "Servers",
        "servers.html",
        ServersPage { servers, role },
    )
}
