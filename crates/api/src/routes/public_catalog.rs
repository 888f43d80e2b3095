//! `/api/public/products`: what the marketing site shows, without
//! credentials, kept briefly per tenant, currency and region.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mpanel_domain::catalog::{BillingModel, Category, Currency, Period};
use mpanel_services::catalog;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use super::catalog::{currency_param, unprocessable};
use crate::problem::codes;
use crate::query::ApiQuery;
use crate::{AppState, Problem};

pub use public_cache::ForgetOnDrop;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PublicQuery {
    /// The tenant's slug.
    pub tenant: String,
    /// ISO 4217; default: the tenant's default currency.
    pub currency: Option<String>,
    pub region: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicPrice {
    #[schema(value_type = String)]
    pub period: Period,
    #[schema(value_type = String)]
    pub currency: Currency,
    pub amount_minor: i64,
    pub setup_fee_minor: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicProduct {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub description: String,
    #[schema(value_type = String)]
    pub category: Category,
    #[schema(value_type = String)]
    pub billing_model: BillingModel,
    pub prices: Vec<PublicPrice>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicCatalog {
    pub tenant: String,
    #[schema(value_type = String)]
    pub currency: Currency,
    pub region: Option<String>,
    pub items: Vec<PublicProduct>,
}

/// The public catalog of a tenant: active public products with their
/// prices for a currency and region. No credentials; cache with the ETag.
#[utoipa::path(get, path = "/api/public/products", tag = "catalog", params(PublicQuery),
    responses((status = 200, description = "The catalog", body = PublicCatalog),
        (status = 304, description = "Not changed since the ETag given in If-None-Match"),
        (status = 403, description = "The tenant is suspended (`tenant_suspended`)"),
        (status = 404, description = "No such tenant")))]
pub async fn public_catalog(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<PublicQuery>,
) -> Result<Response, Problem> {
    let tenant = state
        .store
        .tenant_by_slug(&q.tenant)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no tenant {:?}", q.tenant)))?;
    if tenant.status == mpanel_domain::TenantStatus::Suspended {
        return Err(mpanel_services::ServiceError::TenantSuspended.into());
    }
    let currency = currency_param(q.currency.as_deref(), &tenant.default_currency)?;
    if let Some(region) = &q.region {
        mpanel_domain::catalog::product::check_region(region)
            .map_err(|e| unprocessable(codes::INVALID_QUERY, e))?;
    }
    let now = state.clock.now();
    let key = (tenant.id, currency, q.region.clone());
    let body = match public_cache::get(&key, now) {
        Some(body) => body,
        None => {
            let body = public_catalog_body(&state, &tenant, currency, q.region.clone()).await?;
            public_cache::put(key, body.clone(), now);
            body
        }
    };
    let digest = Sha256::digest(&body);
    let etag = format!(
        "\"{}\"",
        digest[..12]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    let cache = [
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=60"),
        ),
        (header::VARY, HeaderValue::from_static("origin")),
    ];
    let etag_value = HeaderValue::from_str(&etag).map_err(|e| Problem::internal(&e))?;
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return Ok((
            StatusCode::NOT_MODIFIED,
            cache,
            [(header::ETAG, etag_value)],
        )
            .into_response());
    }
    Ok((
        StatusCode::OK,
        cache,
        [
            (header::ETAG, etag_value),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ],
        body.to_vec(),
    )
        .into_response())
}

/// The public catalog's JSON for one tenant, currency and region.
async fn public_catalog_body(
    state: &AppState,
    tenant: &mpanel_store::tenants::TenantRecord,
    currency: Currency,
    region: Option<String>,
) -> Result<std::sync::Arc<[u8]>, Problem> {
    let items = catalog::public_offers(&state.store, tenant.id, currency, region.as_deref())
        .await?
        .into_iter()
        .map(|offer| PublicProduct {
            id: offer.product.id.to_string(),
            name: offer.product.fields.name,
            slug: offer.product.fields.slug,
            description: offer.product.fields.description,
            category: offer.product.fields.category,
            billing_model: offer.product.fields.billing_model,
            prices: offer
                .prices
                .into_iter()
                .map(|rule| PublicPrice {
                    period: rule.period,
                    currency: rule.currency,
                    amount_minor: rule.amount_minor,
                    setup_fee_minor: rule.setup_fee_minor,
                })
                .collect(),
        })
        .collect();
    let body = serde_json::to_vec(&PublicCatalog {
        tenant: tenant.slug.clone(),
        currency,
        region,
        items,
    })
    .map_err(|e| Problem::internal(&e))?;
    Ok(std::sync::Arc::from(body))
}

/// The public catalog, kept briefly per tenant, currency and region: it is
/// asked without credentials, so repeated requests must not reach the
/// database each time. Only this process's
/// copy: a change made through this process shows at once, one made through
/// another node within [`public_cache::TTL`].
pub mod public_cache {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};

    use mpanel_domain::TenantId;
    use mpanel_domain::catalog::Currency;
    use time::{Duration, OffsetDateTime};

    pub const TTL: Duration = Duration::seconds(30);
    /// Past this many entries the cache starts again empty.
    const MAX_ENTRIES: usize = 10_000;

    pub type Key = (TenantId, Currency, Option<String>);
    type Entries = HashMap<Key, (OffsetDateTime, Arc<[u8]>)>;

    fn entries() -> &'static Mutex<Entries> {
        static ENTRIES: OnceLock<Mutex<Entries>> = OnceLock::new();
        ENTRIES.get_or_init(|| Mutex::new(HashMap::new()))
    }

    pub fn get(key: &Key, now: OffsetDateTime) -> Option<Arc<[u8]>> {
        let entries = entries().lock().ok()?;
        entries
            .get(key)
            .filter(|(at, _)| now >= *at && now - *at < TTL)
            .map(|(_, body)| body.clone())
    }

    /// Forgets a tenant's entries when dropped: at the end of a handler
    /// that changes its catalog, after the change (a read that raced the
    /// change may still put the old catalog back, for at most [`TTL`]).
    pub struct ForgetOnDrop(pub TenantId);

    impl Drop for ForgetOnDrop {
        fn drop(&mut self) {
            if let Ok(mut entries) = entries().lock() {
                entries.retain(|(tenant, _, _), _| *tenant != self.0);
            }
        }
    }

    pub fn put(key: Key, body: Arc<[u8]>, now: OffsetDateTime) {
        if let Ok(mut entries) = entries().lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(key, (now, body));
        }
    }
}

/// The same as `/api/public/products`.
#[utoipa::path(get, path = "/api/billing/products/catalog/public", tag = "catalog", params(PublicQuery),
    responses((status = 200, description = "The catalog", body = PublicCatalog),
        (status = 304, description = "Not changed since the ETag given in If-None-Match"),
        (status = 403, description = "The tenant is suspended (`tenant_suspended`)"),
        (status = 404, description = "No such tenant")))]
pub async fn public_catalog_alias(
    state: State<AppState>,
    headers: HeaderMap,
    q: ApiQuery<PublicQuery>,
) -> Result<Response, Problem> {
    public_catalog(state, headers, q).await
}
