//! `SignedOrder`: what `POST /api/orders` accepts before it runs. The
//! marketing site names the tenant (`X-Mpanel-Tenant`), signs
//! `"<t>.<Idempotency-Key>.<body>"` with the tenant's webhook secret
//! (`X-Mpanel-Signature`) and sends the order as JSON, within the webhook
//! body limit. The checks run in this order, each answering as it always
//! has: 413 (body), 400 (tenant, key), 401 (signature), 415 (content type),
//! 400/422 (the JSON).

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use mpanel_domain::TenantId;
use mpanel_domain::orders::signature;
use mpanel_services::orders::OrderInput;
use mpanel_store::tenants::TenantRecord;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::idempotency::{IdempotencyKey, RequestHash};
use crate::problem::codes;
use crate::webhook_body::WebhookBody;
use crate::{AppState, Problem};

/// An order whose signature proves it came from `tenant`.
pub struct SignedOrder {
    pub tenant: TenantRecord,
    pub key: IdempotencyKey,
    /// What a retry under `key` must send again: the raw body.
    pub hash: RequestHash,
    pub input: OrderInput,
}

impl FromRequest<AppState> for SignedOrder {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Problem> {
        let headers = req.headers().clone();
        let WebhookBody(body) = WebhookBody::from_request(req, state).await?;
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let slug = header("x-mpanel-tenant").ok_or_else(|| {
            Problem::new(
                StatusCode::BAD_REQUEST,
                codes::TENANT_REQUIRED,
                "Name the tenant in X-Mpanel-Tenant.",
            )
        })?;
        let key = IdempotencyKey::signable(&headers)?;
        let now = state.clock.now();
        let signed = signature::order_payload(key.as_str(), &body);
        let tenant = signed_tenant(state, slug, header("x-mpanel-signature"), &signed, now).await?;
        if !is_order_json(&headers) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                codes::UNSUPPORTED_MEDIA_TYPE,
                "Send the order as application/json.",
            ));
        }
        let input: OrderInput = crate::json::parse(&body)?;
        Ok(Self {
            tenant,
            key,
            hash: RequestHash::of_raw(&body),
            input,
        })
    }
}

/// The order webhook's content-type test (a prefix test, looser and
/// stricter in places than `ApiJson`'s; kept as the marketing site knows
/// it).
fn is_order_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

/// The tenant `slug` names, once `signature` proves the body came from it.
/// An unknown tenant costs the same work (its secrets are looked up, the
/// same number of MACs computed) and gets the answer a bad signature gets,
/// so neither the answer nor its time tells who exists.
async fn signed_tenant(
    state: &AppState,
    slug: &str,
    signature: Option<&str>,
    body: &[u8],
    now: OffsetDateTime,
) -> Result<TenantRecord, Problem> {
    let refused = |e: signature::SignatureError| {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            codes::INVALID_SIGNATURE,
            e.to_string(),
        )
    };
    let tenant = state.store.tenant_by_slug(slug).await?;
    let lookup = tenant
        .as_ref()
        .map_or(TenantId::from_uuid(Uuid::nil()), |t| t.id);
    let secrets = mpanel_services::tenants::webhook_secrets(&state.store, lookup, now).await?;
    let checked = signature::verify(&secrets, signature, body, now.unix_timestamp());
    match (tenant, checked) {
        // Told only to whoever holds its secret.
        (Some(tenant), Ok(())) if tenant.status == mpanel_domain::TenantStatus::Suspended => {
            Err(mpanel_services::ServiceError::TenantSuspended.into())
        }
        (Some(tenant), Ok(())) => Ok(tenant),
        (_, Err(e)) => Err(refused(e)),
        (None, Ok(())) => Err(refused(signature::SignatureError::Mismatch)),
    }
}
