//! `/api/billing/products`: the catalog, its prices, and resolved prices
//! (the public catalog is `public_catalog`).

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use mpanel_domain::catalog::{
    BillingModel, Category, Currency, MatchedRule, Period, PriceRequest, PriceRule, ProductStatus,
    ProvisioningTemplate, UsagePricing, Visibility,
};
use mpanel_domain::{PriceId, ProductId, TenantId};
use mpanel_services::Context;
use mpanel_services::catalog::{self, PriceInput};
use mpanel_store::catalog::{ProductFields, ProductFilter, ProductRecord};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::caller::{Ctx, perm};
use crate::problem::codes;
use crate::query::{self, ApiQuery, Listing, Page, PageParams};
use crate::{ApiJson, Problem};

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductView {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub description: String,
    pub category: Category,
    pub billing_model: BillingModel,
    pub status: ProductStatus,
    pub visibility: Visibility,
    pub base_currency: Currency,
    /// `{"type": "HOSTING", "dns_zone": true, "mailboxes": 5}`, `{"type": "CLOUD_POD", …}`, `{"type": "NONE"}`.
    pub provisioning_template: ProvisioningTemplate,
    pub usage: Option<UsagePricing>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub archived_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<ProductRecord> for ProductView {
    fn from(p: ProductRecord) -> Self {
        let f = p.fields;
        Self {
            id: p.id.to_string(),
            name: f.name,
            slug: f.slug,
            description: f.description,
            category: f.category,
            billing_model: f.billing_model,
            status: f.status,
            visibility: f.visibility,
            base_currency: f.base_currency,
            provisioning_template: f.template,
            usage: f.usage,
            archived_at: p.archived_at,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// A product as written (`POST` creates, `PUT` replaces).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductBody {
    pub name: String,
    pub slug: String,
    #[serde(default)]
    pub description: String,
    pub category: Category,
    pub billing_model: BillingModel,
    pub status: ProductStatus,
    pub visibility: Visibility,
    /// The currency of the product's own price; default: the tenant's.
    pub base_currency: Option<Currency>,
    #[serde(default = "no_template")]
    pub provisioning_template: ProvisioningTemplate,
    pub usage: Option<UsagePricing>,
}

fn no_template() -> ProvisioningTemplate {
    ProvisioningTemplate::None
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PriceView {
    pub id: String,
    pub period: Period,
    pub currency: Currency,
    pub amount_minor: i64,
    pub setup_fee_minor: i64,
    /// Only for this tenant.
    pub tenant_id: Option<String>,
    /// Only for this region.
    pub region: Option<String>,
}

impl From<PriceRule> for PriceView {
    fn from(r: PriceRule) -> Self {
        Self {
            id: r.id.to_string(),
            period: r.period,
            currency: r.currency,
            amount_minor: r.amount_minor,
            setup_fee_minor: r.setup_fee_minor,
            tenant_id: r.tenant.map(|t| t.to_string()),
            region: r.region,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceBody {
    pub period: Period,
    /// ISO 4217, e.g. EUR.
    #[schema(value_type = Currency)]
    pub currency: String,
    /// In the currency's minor units (cents); an integer.
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub amount_minor: i64,
    #[serde(default)]
    #[schema(minimum = 0, maximum = 1_000_000_000_000_i64)]
    pub setup_fee_minor: i64,
    /// An override for one tenant.
    #[schema(value_type = Option<uuid::Uuid>)]
    pub tenant_id: Option<String>,
    /// An override for one region.
    #[schema(pattern = "^[a-z0-9-]{1,32}$")]
    pub region: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QuoteView {
    pub product_id: String,
    pub price_id: String,
    pub period: Period,
    pub currency: Currency,
    pub amount_minor: i64,
    pub setup_fee_minor: i64,
    /// TENANT, REGION, CURRENCY or BASE: which rule answered.
    pub matched_rule: MatchedRule,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PricingQuery {
    #[param(inline)]
    pub period: Period,
    /// ISO 4217; default: the tenant's default currency.
    #[param(value_type = Option<Currency>, inline)]
    pub currency: Option<String>,
    #[param(pattern = "^[a-z0-9-]{1,32}$")]
    pub region: Option<String>,
    /// Price as seen by this tenant (reseller overrides).
    #[param(value_type = Option<uuid::Uuid>)]
    pub tenant_id: Option<String>,
}

pub(super) fn unprocessable(code: &'static str, detail: String) -> Problem {
    Problem::new(StatusCode::UNPROCESSABLE_ENTITY, code, detail)
}

pub(super) fn currency_param(raw: Option<&str>, default: &str) -> Result<Currency, Problem> {
    Currency::parse(raw.unwrap_or(default))
        .map_err(|e| unprocessable(codes::INVALID_QUERY, format!("currency: {e}")))
}

/// The product as written, its base currency defaulting to the tenant's.
pub(crate) fn fields(cx: &Context, body: ProductBody) -> Result<ProductFields, Problem> {
    let base_currency = match body.base_currency {
        Some(c) => c,
        None => Currency::parse(&cx.tenant.default_currency)
            .map_err(|e| unprocessable(codes::VALIDATION_FAILED, format!("base_currency: {e}")))?,
    };
    Ok(ProductFields {
        name: body.name,
        slug: body.slug,
        description: body.description,
        category: body.category,
        billing_model: body.billing_model,
        status: body.status,
        visibility: body.visibility,
        base_currency,
        template: body.provisioning_template,
        usage: body.usage,
    })
}

fn price_input(body: PriceBody) -> Result<PriceInput, Problem> {
    let tenant = body
        .tenant_id
        .as_deref()
        .map(str::parse::<TenantId>)
        .transpose()
        .map_err(|_| unprocessable(codes::VALIDATION_FAILED, "tenant_id: not an id".into()))?;
    Ok(PriceInput {
        period: body.period,
        currency: body.currency,
        amount_minor: body.amount_minor,
        setup_fee_minor: body.setup_fee_minor,
        tenant,
        region: body.region,
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProductListFilter {
    #[serde(default, deserialize_with = "query::from_str_opt")]
    #[param(value_type = Option<String>, pattern = "^(ACTIVE|INACTIVE|DEPRECATED)$")]
    pub status: Option<ProductStatus>,
    #[serde(default, deserialize_with = "query::from_str_opt")]
    #[param(value_type = Option<String>, pattern = "^(CLOUDPOD|HOSTING|ADDON|EMAIL|DOMAIN|SECURITY|BACKUP|SUPPORT|OTHER)$")]
    pub category: Option<Category>,
}

/// The tenant's products, oldest first.
#[utoipa::path(get, path = "/api/billing/products", tag = "catalog", params(PageParams, ProductListFilter),
    security(("bearer" = ["CATALOG_READ"])),
    responses((status = 200, description = "A page of products", body = Page<ProductView>)))]
pub async fn list(
    cx: Ctx<perm::CatalogRead>,
    list: Listing<ProductListFilter>,
) -> Result<Json<Page<ProductView>>, Problem> {
    Ok(Json(list_for(&cx, list).await?))
}

/// A page of products, for the API and the console.
pub(crate) async fn list_for(
    cx: &mpanel_services::Context,
    list: Listing<ProductListFilter>,
) -> Result<Page<ProductView>, Problem> {
    let paging = &list.paging;
    let filter = ProductFilter {
        public_only: false,
        status: list.filter.status,
        category: list.filter.category,
    };
    let fetched = catalog::list_products(cx, filter, paging.after()?, paging.fetch()).await?;
    Ok(paging.page(fetched, |p| p.id.to_string(), ProductView::from))
}

/// Create a product.
#[utoipa::path(post, path = "/api/billing/products", tag = "catalog", request_body = ProductBody,
    security(("bearer" = ["CATALOG_WRITE"])),
    responses(
        (status = 201, description = "Created", body = ProductView),
        (status = 409, description = "The slug is taken"),
        (status = 422, description = "Invalid"),
    ))]
pub async fn create(
    cx: Ctx<perm::CatalogWrite>,
    ApiJson(body): ApiJson<ProductBody>,
) -> Result<(StatusCode, Json<ProductView>), Problem> {
    // Whatever this changes, the public catalog shows it next time.
    let _fresh = super::public_catalog::ForgetOnDrop(cx.tenant_id());
    let p = catalog::create_product(&cx, &fields(&cx, body)?).await?;
    Ok((StatusCode::CREATED, Json(p.into())))
}

/// One product.
#[utoipa::path(get, path = "/api/billing/products/{id}", tag = "catalog",
    params(("id" = String, Path, description = "Product id")),
    security(("bearer" = ["CATALOG_READ"])),
    responses((status = 200, description = "The product", body = ProductView),
        (status = 404, description = "No such product")))]
pub async fn get(
    cx: Ctx<perm::CatalogRead>,
    Path(id): Path<String>,
) -> Result<Json<ProductView>, Problem> {
    let id = query::path_id::<ProductId>(&id, "product")?;
    Ok(Json(catalog::get_product(&cx, id).await?.into()))
}

/// Replace a product's fields.
#[utoipa::path(put, path = "/api/billing/products/{id}", tag = "catalog", request_body = ProductBody,
    params(("id" = String, Path, description = "Product id")),
    security(("bearer" = ["CATALOG_WRITE"])),
    responses((status = 200, description = "Changed", body = ProductView),
        (status = 404, description = "No such product"),
        (status = 409, description = "The slug is taken, or the billing model changes while the product has prices")))]
pub async fn update(
    cx: Ctx<perm::CatalogWrite>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ProductBody>,
) -> Result<Json<ProductView>, Problem> {
    // Whatever this changes, the public catalog shows it next time.
    let _fresh = super::public_catalog::ForgetOnDrop(cx.tenant_id());
    let id = query::path_id::<ProductId>(&id, "product")?;
    let p = catalog::update_product(&cx, id, &fields(&cx, body)?).await?;
    Ok(Json(p.into()))
}

/// Archive a product: out of the catalog, no new orders; never deleted
/// outright, so subscriptions of it keep their product.
#[utoipa::path(delete, path = "/api/billing/products/{id}", tag = "catalog",
    params(("id" = String, Path, description = "Product id")),
    security(("bearer" = ["CATALOG_WRITE"])),
    responses((status = 200, description = "Archived", body = ProductView),
        (status = 404, description = "No such product")))]
pub async fn archive(
    cx: Ctx<perm::CatalogWrite>,
    Path(id): Path<String>,
) -> Result<Json<ProductView>, Problem> {
    // Whatever this changes, the public catalog shows it next time.
    let _fresh = super::public_catalog::ForgetOnDrop(cx.tenant_id());
    let id = query::path_id::<ProductId>(&id, "product")?;
    let p = catalog::archive_product(&cx, id).await?;
    Ok(Json(p.into()))
}

/// A product's price rules.
#[utoipa::path(get, path = "/api/billing/products/{id}/prices", tag = "catalog",
    params(("id" = String, Path, description = "Product id")),
    security(("bearer" = ["CATALOG_READ"])),
    responses((status = 200, description = "The rules", body = Page<PriceView>)))]
pub async fn list_prices(
    cx: Ctx<perm::CatalogRead>,
    Path(id): Path<String>,
) -> Result<Json<Page<PriceView>>, Problem> {
    let id = query::path_id::<ProductId>(&id, "product")?;
    let items = catalog::prices(&cx, id)
        .await?
        .into_iter()
        .map(PriceView::from)
        .collect();
    Ok(Json(Page {
        items,
        next_cursor: None,
    }))
}

/// Add a price rule: a base price, or an override for a currency, region or tenant.
#[utoipa::path(post, path = "/api/billing/products/{id}/prices", tag = "catalog", request_body = PriceBody,
    params(("id" = String, Path, description = "Product id")),
    security(("bearer" = ["CATALOG_WRITE"])),
    responses((status = 201, description = "Added", body = PriceView),
        (status = 409, description = "A rule for this period, currency, tenant and region exists")))]
pub async fn add_price(
    cx: Ctx<perm::CatalogWrite>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<PriceBody>,
) -> Result<(StatusCode, Json<PriceView>), Problem> {
    // Whatever this changes, the public catalog shows it next time.
    let _fresh = super::public_catalog::ForgetOnDrop(cx.tenant_id());
    let id = query::path_id::<ProductId>(&id, "product")?;
    let rule = catalog::add_price(&cx, id, &price_input(body)?).await?;
    Ok((StatusCode::CREATED, Json(rule.into())))
}

/// Change a price rule.
#[utoipa::path(put, path = "/api/billing/products/{id}/prices/{price_id}", tag = "catalog", request_body = PriceBody,
    params(("id" = String, Path, description = "Product id"), ("price_id" = String, Path, description = "Price id")),
    security(("bearer" = ["CATALOG_WRITE"])),
    responses((status = 200, description = "Changed", body = PriceView),
        (status = 409, description = "Another price of the product has the same period, currency, tenant and region (`conflict`)")))]
pub async fn update_price(
    cx: Ctx<perm::CatalogWrite>,
    Path((id, price_id)): Path<(String, String)>,
    ApiJson(body): ApiJson<PriceBody>,
) -> Result<Json<PriceView>, Problem> {
    // Whatever this changes, the public catalog shows it next time.
    let _fresh = super::public_catalog::ForgetOnDrop(cx.tenant_id());
    let id = query::path_id::<ProductId>(&id, "product")?;
    let price_id = query::path_id::<PriceId>(&price_id, "price")?;
    let rule = catalog::update_price(&cx, id, price_id, &price_input(body)?).await?;
    Ok(Json(rule.into()))
}

/// Remove a price rule.
#[utoipa::path(delete, path = "/api/billing/products/{id}/prices/{price_id}", tag = "catalog",
    params(("id" = String, Path, description = "Product id"), ("price_id" = String, Path, description = "Price id")),
    security(("bearer" = ["CATALOG_WRITE"])),
    responses((status = 204, description = "Removed")))]
pub async fn delete_price(
    cx: Ctx<perm::CatalogWrite>,
    Path((id, price_id)): Path<(String, String)>,
) -> Result<StatusCode, Problem> {
    // Whatever this changes, the public catalog shows it next time.
    let _fresh = super::public_catalog::ForgetOnDrop(cx.tenant_id());
    let id = query::path_id::<ProductId>(&id, "product")?;
    let price_id = query::path_id::<PriceId>(&price_id, "price")?;
    catalog::delete_price(&cx, id, price_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What the product costs for a period, currency, region and tenant, and
/// which rule decided it. No applicable rule is a 404, never a guess.
#[utoipa::path(get, path = "/api/billing/products/{id}/pricing", tag = "catalog", params(("id" = String, Path, description = "Product id"), PricingQuery),
    security(("bearer" = ["CATALOG_READ"])),
    responses((status = 200, description = "The resolved price", body = QuoteView),
        (status = 404, description = "No price for this request")))]
pub async fn pricing(
    cx: Ctx<perm::CatalogRead>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PricingQuery>,
) -> Result<Json<QuoteView>, Problem> {
    let id = query::path_id::<ProductId>(&id, "product")?;
    let period = q.period;
    let currency = currency_param(q.currency.as_deref(), &cx.tenant.default_currency)?;
    if let Some(region) = &q.region {
        mpanel_domain::catalog::product::check_region(region)
            .map_err(|e| unprocessable(codes::INVALID_QUERY, e))?;
    }
    let for_tenant = q
        .tenant_id
        .as_deref()
        .map(str::parse::<TenantId>)
        .transpose()
        .map_err(|_| unprocessable(codes::INVALID_QUERY, "tenant_id: not an id".into()))?;
    let request = PriceRequest {
        period,
        currency,
        region: q.region,
        tenant: for_tenant,
    };
    let quote = catalog::quote(&cx, id, &request).await?;
    Ok(Json(QuoteView {
        product_id: id.to_string(),
        price_id: quote.rule.id.to_string(),
        period: quote.rule.period,
        currency: quote.rule.currency,
        amount_minor: quote.rule.amount_minor,
        setup_fee_minor: quote.rule.setup_fee_minor,
        matched_rule: quote.matched,
    }))
}
