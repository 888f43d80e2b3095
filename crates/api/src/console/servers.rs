//! The platform's servers with their last health check (the operator's).

use axum::extract::State;
use axum::response::Response;
use mpanel_domain::identity::Permission;
use mpanel_services::servers::{self, ServerView};
use serde::Serialize;

use super::session::Viewer;
use super::view::{PageError, page};
use crate::AppState;

#[derive(Serialize)]
struct ServersPage {
    servers: Vec<ServerView>,
}

/// `GET /servers`.
pub async fn list(State(state): State<AppState>, viewer: Viewer) -> Result<Response, PageError> {
    viewer.require(Permission::ServersRead)?;
    let servers = servers::list(&viewer, state.secrets.as_ref(), None).await?;
    page(
        &viewer,
        "/servers",
        "Servers",
        "servers.html",
        ServersPage { servers },
    )
}
