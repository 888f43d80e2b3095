//! `/api/servers`: the platform's server inventory (SUPER_ADMIN).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mpanel_domain::ServerId;
use mpanel_domain::provisioning::ServerRole;
use mpanel_services::servers::{self, NewServer, ServerPatch, ServerView};
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::caller::{Authorized, perm};
use crate::json::ApiJson;
use crate::openapi::ProblemDoc;
use crate::problem::codes;
use crate::query::ApiQuery;
use crate::{AppState, Problem};

/// `{name, role: WEB|MAIL|DNS|CLOUD|DB|BACKUP, address, port?, credentials:
/// {type: SSH, user, private_key} | {type: API, url, key}, settings?, capacity, status?}`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct ServerDoc {
    name: String,
    role: String,
    address: String,
    port: Option<u16>,
    #[schema(value_type = Object)]
    credentials: Value,
    #[schema(value_type = Option<Object>)]
    settings: Option<Value>,
    capacity: i64,
    status: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[param(pattern = "^(WEB|MAIL|DNS|CLOUD|DB|BACKUP)$")]
    role: Option<String>,
}

fn server_id(raw: &str) -> Result<ServerId, Problem> {
    raw.parse()
        .map_err(|_| Problem::not_found("No such server."))
}

/// The servers, by name (credentials never included).
#[utoipa::path(get, path = "/api/servers", tag = "servers", params(ListQuery),
    security(("bearer" = ["SERVERS_READ"])),
    responses((status = 200, description = "`{items: [server]}`", body = Object)))]
pub async fn list(
    State(state): State<AppState>,
    _caller: Authorized<perm::ServersRead>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<serde_json::Value>, Problem> {
    let role = q
        .role
        .as_deref()
        .map(|r| {
            r.parse::<ServerRole>().map_err(|m| {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, codes::INVALID_QUERY, m)
                    .with("field", "role")
            })
        })
        .transpose()?;
    let items = servers::list(&state.store, state.secrets.as_ref(), role).await?;
    Ok(Json(serde_json::json!({ "items": items })))
}

/// Add a server; its credentials are sealed and never shown again.
#[utoipa::path(post, path = "/api/servers", tag = "servers", request_body = ServerDoc,
    security(("bearer" = ["SERVERS_WRITE"])),
    responses((status = 201, description = "Added", body = Object),
        (status = 409, description = "The name is taken, or no secrets_key is configured", body = ProblemDoc, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    caller: Authorized<perm::ServersWrite>,
    ApiJson(body): ApiJson<NewServer>,
) -> Result<(StatusCode, Json<ServerView>), Problem> {
    let created = servers::create(
        &state.store,
        state.clock.as_ref(),
        state.secrets.as_ref(),
        &caller.actor,
        caller.principal.tenant_id,
        body,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// One server.
#[utoipa::path(get, path = "/api/servers/{id}", tag = "servers", params(("id" = String, Path)),
    security(("bearer" = ["SERVERS_READ"])),
    responses((status = 200, description = "The server", body = Object)))]
pub async fn get(
    State(state): State<AppState>,
    _caller: Authorized<perm::ServersRead>,
    Path(id): Path<String>,
) -> Result<Json<ServerView>, Problem> {
    Ok(Json(
        servers::get(&state.store, state.secrets.as_ref(), server_id(&id)?).await?,
    ))
}

/// Change a server (status, capacity, address, credentials …).
#[utoipa::path(patch, path = "/api/servers/{id}", tag = "servers", params(("id" = String, Path)),
    request_body = Object, security(("bearer" = ["SERVERS_WRITE"])),
    responses((status = 200, description = "The server", body = Object)))]
pub async fn update(
    State(state): State<AppState>,
    caller: Authorized<perm::ServersWrite>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ServerPatch>,
) -> Result<Json<ServerView>, Problem> {
    Ok(Json(
        servers::update(
            &state.store,
            state.clock.as_ref(),
            state.secrets.as_ref(),
            &caller.actor,
            caller.principal.tenant_id,
            server_id(&id)?,
            body,
        )
        .await?,
    ))
}
