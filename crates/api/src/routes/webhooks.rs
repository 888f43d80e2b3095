//! `/api/webhooks`: the tenant's endpoints, what was delivered to them,
//! and redelivery.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use mpanel_domain::{WebhookDeliveryId, WebhookEndpointId};
use mpanel_services::webhooks::deliveries::{self, DeliveryView};
use mpanel_services::webhooks::endpoints::{self, EndpointPatch, EndpointView, NewEndpoint};

use crate::caller::{Ctx, perm};
use crate::json::ApiJson;
use crate::query::{self, Listing, NoFilter, Page, PageParams};
use crate::{AppState, Problem};

fn endpoint_id(raw: &str) -> Result<WebhookEndpointId, Problem> {
    query::path_id(raw, "webhook endpoint")
}

/// The tenant's endpoints, newest first.
#[utoipa::path(get, path = "/api/webhooks/endpoints", tag = "webhooks", params(PageParams),
    security(("bearer" = ["WEBHOOKS_READ"])),
    responses((status = 200, description = "A page of endpoints", body = Page<EndpointView>)))]
pub async fn list(
    cx: Ctx<perm::WebhooksRead>,
    list: Listing<NoFilter>,
) -> Result<Json<Page<EndpointView>>, Problem> {
    let paging = &list.paging;
    let fetched = endpoints::list(&cx, paging.after()?, paging.fetch()).await?;
    Ok(Json(paging.page(fetched, |e| e.id.to_string(), |e| e)))
}

/// Subscribe a URL to events. The answer holds the signing secret
/// (`whsec_…`), shown this once.
#[utoipa::path(post, path = "/api/webhooks/endpoints", tag = "webhooks", request_body = NewEndpoint,
    security(("bearer" = ["WEBHOOKS_WRITE"])),
    responses((status = 201, description = "Created, with its secret", body = EndpointView),
        (status = 422, description = "The URL, its address or the events are not accepted")))]
pub async fn create(
    State(state): State<AppState>,
    cx: Ctx<perm::WebhooksWrite>,
    ApiJson(body): ApiJson<NewEndpoint>,
) -> Result<(StatusCode, Json<EndpointView>), Problem> {
    let endpoint = endpoints::create(&cx, &state.webhooks, body).await?;
    Ok((StatusCode::CREATED, Json(endpoint)))
}

/// One endpoint (never its secret).
#[utoipa::path(get, path = "/api/webhooks/endpoints/{id}", tag = "webhooks",
    params(("id" = String, Path)), security(("bearer" = ["WEBHOOKS_READ"])),
    responses((status = 200, description = "The endpoint", body = EndpointView),
        (status = 404, description = "No such endpoint")))]
pub async fn get(
    cx: Ctx<perm::WebhooksRead>,
    Path(id): Path<String>,
) -> Result<Json<EndpointView>, Problem> {
    Ok(Json(endpoints::get(&cx, endpoint_id(&id)?).await?))
}

/// Change the URL, events, description or status, or rotate the secret.
#[utoipa::path(patch, path = "/api/webhooks/endpoints/{id}", tag = "webhooks",
    request_body = EndpointPatch, params(("id" = String, Path)),
    security(("bearer" = ["WEBHOOKS_WRITE"])),
    responses((status = 200, description = "Changed (with the new secret when rotated)", body = EndpointView),
        (status = 404, description = "No such endpoint"),
        (status = 422, description = "The URL, its address or the events are not accepted")))]
pub async fn update(
    State(state): State<AppState>,
    cx: Ctx<perm::WebhooksWrite>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<EndpointPatch>,
) -> Result<Json<EndpointView>, Problem> {
    let id = endpoint_id(&id)?;
    Ok(Json(
        endpoints::update(&cx, &state.webhooks, id, body).await?,
    ))
}

/// Remove an endpoint and its deliveries.
#[utoipa::path(delete, path = "/api/webhooks/endpoints/{id}", tag = "webhooks",
    params(("id" = String, Path)), security(("bearer" = ["WEBHOOKS_WRITE"])),
    responses((status = 204, description = "Removed"),
        (status = 404, description = "No such endpoint")))]
pub async fn delete(
    cx: Ctx<perm::WebhooksWrite>,
    Path(id): Path<String>,
) -> Result<StatusCode, Problem> {
    endpoints::delete(&cx, endpoint_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What was sent to an endpoint, newest first.
#[utoipa::path(get, path = "/api/webhooks/endpoints/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path), PageParams), security(("bearer" = ["WEBHOOKS_READ"])),
    responses((status = 200, description = "A page of deliveries", body = Page<DeliveryView>),
        (status = 404, description = "No such endpoint")))]
pub async fn list_deliveries(
    cx: Ctx<perm::WebhooksRead>,
    Path(id): Path<String>,
    list: Listing<NoFilter>,
) -> Result<Json<Page<DeliveryView>>, Problem> {
    let paging = &list.paging;
    let id = endpoint_id(&id)?;
    let fetched = deliveries::list(&cx, id, paging.after()?, paging.fetch()).await?;
    Ok(Json(paging.page(fetched, |d| d.id.to_string(), |d| d)))
}

/// Send a delivery again now (same `webhook-id`, fresh signature).
#[utoipa::path(post, path = "/api/webhooks/deliveries/{id}/redeliver", tag = "webhooks",
    params(("id" = String, Path)), security(("bearer" = ["WEBHOOKS_WRITE"])),
    responses((status = 202, description = "Queued", body = DeliveryView),
        (status = 404, description = "No such delivery"),
        (status = 409, description = "The endpoint is disabled, or an attempt is running")))]
pub async fn redeliver(
    cx: Ctx<perm::WebhooksWrite>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<DeliveryView>), Problem> {
    let id: WebhookDeliveryId = query::path_id(&id, "webhook delivery")?;
    Ok((
        StatusCode::ACCEPTED,
        Json(deliveries::redeliver(&cx, id).await?),
    ))
}
