//! `/api/servers`: the platform's server inventory (SUPER_ADMIN).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mpanel_domain::ServerId;
use mpanel_domain::provisioning::ServerRole;
use mpanel_services::servers::{self, NewServer, ServerPatch, ServerView};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::caller::{Ctx, perm};
use crate::json::ApiJson;
use crate::query::ApiQuery;
use crate::{AppState, Problem};

/// The servers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Servers {
    pub items: Vec<ServerView>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default, deserialize_with = "crate::query::from_str_opt")]
    #[param(value_type = Option<ServerRole>, inline)]
    role: Option<ServerRole>,
}

fn server_id(raw: &str) -> Result<ServerId, Problem> {
    crate::query::path_id(raw, "server")
}

/// The servers, by name (credentials never included).
#[utoipa::path(get, path = "/api/servers", tag = "servers", params(ListQuery),
    security(("bearer" = ["SERVERS_READ"])),
    responses((status = 200, description = "The servers", body = Servers),
        (status = 409, description = "No secrets_key is configured")))]
pub async fn list(
    State(state): State<AppState>,
    cx: Ctx<perm::ServersRead>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Servers>, Problem> {
    let items = servers::list(&cx, state.secrets.as_ref(), q.role).await?;
    Ok(Json(Servers { items }))
}

/// Add a server; its credentials are sealed and never shown again.
#[utoipa::path(post, path = "/api/servers", tag = "servers", request_body = NewServer,
    security(("bearer" = ["SERVERS_WRITE"])),
    responses((status = 201, description = "Added", body = ServerView),
        (status = 409, description = "The name is taken, or no secrets_key is configured"),
        (status = 422, description = "A field is not valid (the problem names it)")))]
pub async fn create(
    State(state): State<AppState>,
    cx: Ctx<perm::ServersWrite>,
    ApiJson(body): ApiJson<NewServer>,
) -> Result<(StatusCode, Json<ServerView>), Problem> {
    let created = servers::create(&cx, state.secrets.as_ref(), body).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// One server.
#[utoipa::path(get, path = "/api/servers/{id}", tag = "servers", params(("id" = String, Path)),
    security(("bearer" = ["SERVERS_READ"])),
    responses((status = 200, description = "The server", body = ServerView),
        (status = 409, description = "No secrets_key is configured")))]
pub async fn get(
    State(state): State<AppState>,
    cx: Ctx<perm::ServersRead>,
    Path(id): Path<String>,
) -> Result<Json<ServerView>, Problem> {
    Ok(Json(
        servers::get(&cx, state.secrets.as_ref(), server_id(&id)?).await?,
    ))
}

/// Change a server (status, capacity, address, credentials …).
#[utoipa::path(patch, path = "/api/servers/{id}", tag = "servers", params(("id" = String, Path)),
    request_body = ServerPatch, security(("bearer" = ["SERVERS_WRITE"])),
    responses((status = 200, description = "The server", body = ServerView),
        (status = 409, description = "The name is taken, or no secrets_key is configured"),
        (status = 422, description = "A field is not valid (the problem names it)")))]
pub async fn update(
    State(state): State<AppState>,
    cx: Ctx<perm::ServersWrite>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ServerPatch>,
) -> Result<Json<ServerView>, Problem> {
    Ok(Json(
        servers::update(&cx, state.secrets.as_ref(), server_id(&id)?, body).await?,
    ))
}
