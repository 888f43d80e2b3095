//! Stripe: a PaymentIntent for an invoice, and Stripe's webhook.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use mpanel_services::billing::stripe_flow::{self, IntentCreated, WebhookOutcome};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::caller::{Ctx, perm};
use crate::query::ApiQuery;
use crate::webhook_body::WebhookBody;
use crate::{AppState, Problem};

/// A Stripe PaymentIntent for what the invoice still owes (asking again
/// for the same amount returns the same intent).
#[utoipa::path(post, path = "/api/billing/invoices/{id}/stripe/payment-intent", tag = "billing",
    params(("id" = String, Path)), security(("bearer" = ["PAYMENTS_WRITE"])),
    responses((status = 201, description = "The intent", body = IntentCreated),
        (status = 409, description = "Not payable, Stripe is not set up, or Stripe refused the request"),
        (status = 422, description = "The amount due cannot be charged through Stripe (`validation_failed`, `amount_minor`)"),
        (status = 503, description = "Stripe is unreachable (`busy`); retry")))]
pub async fn payment_intent(
    State(state): State<AppState>,
    cx: Ctx<perm::PaymentsWrite>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<IntentCreated>), Problem> {
    let id = crate::query::path_id(&id, "invoice")?;
    let created = stripe_flow::create_payment_intent(&cx, &state.stripe, id).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WebhookQuery {
    /// The tenant's slug (one webhook endpoint per tenant in Stripe).
    tenant: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAnswer {
    /// `HANDLED`, `REPLAYED` (seen before: nothing changed) or `IGNORED`.
    pub outcome: &'static str,
}

/// Stripe's webhook: `Stripe-Signature` verified as Stripe specifies
/// (HMAC-SHA256 of `t.body`, ±300 s); each event applied once.
#[utoipa::path(post, path = "/api/billing/stripe/webhook", tag = "billing", params(WebhookQuery),
    request_body = Object,
    responses((status = 200, description = "Applied, replayed or ignored", body = WebhookAnswer),
        (status = 401, description = "Bad or stale signature, or a tenant without Stripe webhooks (the same answer)"),
        (status = 413, description = "Body over 256 KiB"),
        (status = 503, description = "About a payment not recorded yet: Stripe retries")))]
pub async fn webhook(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<WebhookQuery>,
    headers: HeaderMap,
    WebhookBody(body): WebhookBody,
) -> Result<Json<WebhookAnswer>, Problem> {
    let tenant = state.store.tenant_by_slug(&q.tenant).await?;
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    let outcome = stripe_flow::handle_webhook(
        &state.store,
        state.clock.as_ref(),
        tenant.as_ref(),
        signature,
        &body,
    )
    .await?;
    Ok(Json(WebhookAnswer {
        outcome: match outcome {
            WebhookOutcome::Handled => "HANDLED",
            WebhookOutcome::Replayed => "REPLAYED",
            WebhookOutcome::Ignored => "IGNORED",
        },
    }))
}
