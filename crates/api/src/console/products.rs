//! Products and their prices: staff list the catalog, create a product
//! (with what an order of it provisions) and add prices, including a
//! region's own price. The same rules as `/api/billing/products`.

use std::str::FromStr;

use axum::Form;
use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use mpanel_domain::ProductId;
use mpanel_domain::catalog::{Currency, Period, ProductStatus, Visibility};
use mpanel_domain::identity::Permission;
use mpanel_services::catalog::{self, PriceInput};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::listing::Listed;
use super::session::Viewer;
use super::view::{PageError, page};
use super::{Done, Notice};
use crate::routes::catalog::{
    PriceView, ProductBody, ProductListFilter, ProductView, fields, list_for,
};
use crate::routes::public_catalog::ForgetOnDrop;

use super::amount::{self, unprocessable as invalid};

#[derive(Serialize)]
struct ProductsPage {
    products: Vec<ProductView>,
    next_href: Option<String>,
    may_write: bool,
    status: String,
    category: String,
}

/// `GET /products`.
pub async fn list(
    viewer: Viewer,
    listed: Listed<ProductListFilter>,
) -> Result<Response, PageError> {
    viewer.require(Permission::CatalogRead)?;
    let Listed { listing, links } = listed;
    let status = links.value("status");
    let category = links.value("category");
    let found = list_for(&viewer, listing).await?;
    let data = ProductsPage {
        next_href: links.next_href(found.next_cursor.as_deref()),
        products: found.items,
        may_write: viewer.may(Permission::CatalogWrite),
        status,
        category,
    };
    page(&viewer, "/products", "Products", "products.html", data)
}

#[derive(Deserialize)]
pub struct ProductForm {
    name: String,
    slug: String,
    #[serde(default)]
    description: String,
    category: String,
    billing_model: String,
    status: String,
    visibility: String,
    /// `NONE` or `HOSTING`.
    provisions: String,
    #[serde(default)]
    dns_zone: Option<String>,
    #[serde(default)]
    mailboxes: String,
}

/// The form as the API's product body (its enums and template read by
/// the same types).
fn product_body(f: ProductForm) -> Result<ProductBody, PageError> {
    let template = match f.provisions.as_str() {
        "HOSTING" => {
            let mailboxes: u32 = if f.mailboxes.trim().is_empty() {
                0
            } else {
                f.mailboxes
                    .trim()
                    .parse()
                    .map_err(|_| invalid("Mailboxes: a whole number."))?
            };
            json!({"type": "HOSTING", "dns_zone": f.dns_zone.is_some(), "mailboxes": mailboxes})
        }
        _ => json!({"type": "NONE"}),
    };
    let body = json!({
        "name": f.name.trim(), "slug": f.slug.trim(), "description": f.description,
        "category": f.category, "billing_model": f.billing_model, "status": f.status,
        "visibility": f.visibility, "provisioning_template": template,
    });
    serde_json::from_value(body).map_err(|e| invalid(format!("The product is not valid: {e}")))
}

/// `POST /products`.
pub async fn create(viewer: Viewer, Form(f): Form<ProductForm>) -> Result<Response, PageError> {
    viewer.require(Permission::CatalogWrite)?;
    let _fresh = ForgetOnDrop(viewer.tenant_id());
    let product = catalog::create_product(&viewer, &fields(&viewer, product_body(f)?)?).await?;
    Ok(Redirect::to(&format!("/products/{}?done=product_created", product.id)).into_response())
}

#[derive(Serialize)]
struct ProductPage {
    product: ProductView,
    prices: Vec<PriceView>,
    periods: [&'static str; 4],
    may_write: bool,
    notice: Option<Notice>,
}

/// `GET /products/{id}`.
pub async fn show(
    viewer: Viewer,
    Path(raw): Path<String>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    viewer.require(Permission::CatalogRead)?;
    let id: ProductId = raw.parse().map_err(|_| PageError::not_found())?;
    let product = catalog::get_product(&viewer, id).await?;
    let prices = catalog::prices(&viewer, id).await?;
    let title = product.fields.name.clone();
    let data = ProductPage {
        product: product.into(),
        prices: prices.into_iter().map(PriceView::from).collect(),
        periods: ["MONTHLY", "YEARLY", "ONE_TIME", "HOURLY"],
        may_write: viewer.may(Permission::CatalogWrite),
        notice: done.notice(),
    };
    page(&viewer, "/products", &title, "product.html", data)
}

#[derive(Deserialize)]
pub struct EditForm {
    name: String,
    #[serde(default)]
    description: String,
    status: String,
    visibility: String,
}

/// `POST /products/{id}`: the name, description, state and visibility
/// changed (what an order provisions and how it bills stay as made).
pub async fn edit(
    viewer: Viewer,
    Path(raw): Path<String>,
    Form(f): Form<EditForm>,
) -> Result<Response, PageError> {
    viewer.require(Permission::CatalogWrite)?;
    let id: ProductId = raw.parse().map_err(|_| PageError::not_found())?;
    let mut fields = catalog::get_product(&viewer, id).await?.fields;
    fields.name = f.name.trim().to_owned();
    fields.description = f.description;
    fields.status = ProductStatus::from_str(&f.status).map_err(|e| invalid(e.to_string()))?;
    fields.visibility = Visibility::from_str(&f.visibility).map_err(|e| invalid(e.to_string()))?;
    let _fresh = ForgetOnDrop(viewer.tenant_id());
    catalog::update_product(&viewer, id, &fields).await?;
    Ok(Redirect::to(&format!("/products/{id}?done=product_saved")).into_response())
}

#[derive(Deserialize)]
pub struct PriceForm {
    period: String,
    currency: String,
    amount: String,
    #[serde(default)]
    setup_fee: String,
    #[serde(default)]
    region: String,
}

/// `POST /products/{id}/prices`.
pub async fn add_price(
    viewer: Viewer,
    Path(raw): Path<String>,
    Form(f): Form<PriceForm>,
) -> Result<Response, PageError> {
    viewer.require(Permission::CatalogWrite)?;
    let id: ProductId = raw.parse().map_err(|_| PageError::not_found())?;
    let currency =
        Currency::parse(f.currency.trim().to_ascii_uppercase().as_str()).map_err(invalid)?;
    let period = Period::from_str(&f.period).map_err(|e| invalid(e.to_string()))?;
    let input = PriceInput {
        period,
        currency: currency.code().to_owned(),
        amount_minor: amount::minor(&f.amount, currency, "Price", true)?,
        setup_fee_minor: amount::minor(&f.setup_fee, currency, "Setup fee", true)?,
        tenant: None,
        region: Some(f.region.trim().to_owned()).filter(|r| !r.is_empty()),
    };
    let _fresh = ForgetOnDrop(viewer.tenant_id());
    catalog::add_price(&viewer, id, &input).await?;
    Ok(Redirect::to(&format!("/products/{id}?done=price_added")).into_response())
}
