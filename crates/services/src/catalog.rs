//! The catalog: products, price rules, and resolving what a request costs.

use mpanel_domain::catalog::product::{check_region, check_slug};
use mpanel_domain::catalog::{
    BillingModel, Currency, Period, PriceRequest, PriceRule, ProductStatus, UsagePricing, resolve,
};
use mpanel_domain::{PriceId, ProductId, TenantId};
use mpanel_store::catalog::{ProductFields, ProductFilter, ProductRecord};
use mpanel_store::{Store, StoreError};
use serde_json::json;

use crate::ServiceError;
use crate::context::{Audited, Context};

/// A price rule as asked for (checked here).
#[derive(Debug, Clone)]
pub struct PriceInput {
    pub period: Period,
    pub currency: String,
    pub amount_minor: i64,
    pub setup_fee_minor: i64,
    pub tenant: Option<TenantId>,
    pub region: Option<String>,
}

/// A resolved price, with the rule that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub rule: PriceRule,
    pub matched: mpanel_domain::catalog::MatchedRule,
}

fn conflict_on_slug(slug: &str) -> impl FnOnce(StoreError) -> ServiceError + '_ {
    move |e| match e {
        StoreError::Conflict(_) => {
            ServiceError::Conflict(format!("a product with slug {slug:?} already exists"))
        }
        other => other.into(),
    }
}

/// Checks a product's fields.
pub fn check_product(f: &ProductFields) -> Result<(), ServiceError> {
    let name = f.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ServiceError::invalid(
            "name",
            "must be 1 to 200 characters long",
        ));
    }
    check_slug(&f.slug).map_err(|m| ServiceError::invalid("slug", m))?;
    if f.description.chars().count() > 10_000 {
        return Err(ServiceError::invalid(
            "description",
            "must be at most 10,000 characters long",
        ));
    }
    f.template
        .check()
        .map_err(|m| ServiceError::invalid("provisioning_template", m))?;
    UsagePricing::check(f.usage.as_ref(), f.billing_model)
        .map_err(|m| ServiceError::invalid("usage", m))?;
    Ok(())
}

pub async fn create_product(
    cx: &Context,
    f: &ProductFields,
) -> Result<ProductRecord, ServiceError> {
    check_product(f)?;
    let now = cx.now();
    let mut tx = cx.store.begin().await?;
    let product = tx
        .insert_product(ProductId::new(), cx.tenant_id(), f, now)
        .await
        .map_err(conflict_on_slug(&f.slug))?;
    tx.record_audit(&cx.audit(Audited {
        action: "product.create",
        target_type: "product",
        target_id: product.id.to_string(),
        before: None,
        after: Some(summary(&product)),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(product)
}

fn summary(p: &ProductRecord) -> serde_json::Value {
    json!({
        "name": p.fields.name, "slug": p.fields.slug, "status": p.fields.status,
        "visibility": p.fields.visibility, "billing_model": p.fields.billing_model,
        "archived": p.archived_at.is_some(),
    })
}

pub async fn get_product(cx: &Context, id: ProductId) -> Result<ProductRecord, ServiceError> {
    cx.store
        .product(cx.tenant_id(), id)
        .await?
        .ok_or_else(ServiceError::missing("product"))
}

/// The tenant's products, archived and hidden ones included (staff).
pub async fn list_products(
    cx: &Context,
    filter: ProductFilter,
    after: Option<ProductId>,
    limit: u32,
) -> Result<Vec<ProductRecord>, ServiceError> {
    Ok(cx
        .store
        .list_products(cx.tenant_id(), filter, after, limit)
        .await?)
}

/// Replaces a product's fields (`PUT`).
pub async fn update_product(
    cx: &Context,
    id: ProductId,
    f: &ProductFields,
) -> Result<ProductRecord, ServiceError> {
    check_product(f)?;
    let now = cx.now();
    let mut tx = cx.store.begin().await?;
    let before = tx
        .product(cx.tenant_id(), id)
        .await?
        .ok_or_else(ServiceError::missing("product"))?;
    if before.fields.billing_model != f.billing_model
        && !tx.prices_of(cx.tenant_id(), id).await?.is_empty()
    {
        return Err(ServiceError::Conflict(
            "the billing model cannot change while the product has prices; remove them first"
                .into(),
        ));
    }
    let after = tx
        .update_product(cx.tenant_id(), id, f, before.archived_at, now)
        .await
        .map_err(conflict_on_slug(&f.slug))?
        .ok_or_else(ServiceError::missing("product"))?;
    tx.record_audit(&cx.audit(Audited {
        action: "product.update",
        target_type: "product",
        target_id: id.to_string(),
        before: Some(summary(&before)),
        after: Some(summary(&after)),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Archives a product: it leaves the catalog and takes no new orders;
/// existing subscriptions keep it. Products are never deleted outright.
pub async fn archive_product(cx: &Context, id: ProductId) -> Result<ProductRecord, ServiceError> {
    let now = cx.now();
    let mut tx = cx.store.begin().await?;
    let before = tx
        .product(cx.tenant_id(), id)
        .await?
        .ok_or_else(ServiceError::missing("product"))?;
    let mut fields = before.fields.clone();
    fields.status = ProductStatus::Inactive;
    let after = tx
        .update_product(
            cx.tenant_id(),
            id,
            &fields,
            Some(before.archived_at.unwrap_or(now)),
            now,
        )
        .await?
        .ok_or_else(ServiceError::missing("product"))?;
    tx.record_audit(&cx.audit(Audited {
        action: "product.archive",
        target_type: "product",
        target_id: id.to_string(),
        before: Some(summary(&before)),
        after: Some(summary(&after)),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Which periods a billing model is priced in.
fn period_fits(model: BillingModel, period: Period) -> bool {
    match model {
        BillingModel::OneTime => period == Period::OneTime,
        _ => period != Period::OneTime,
    }
}

async fn checked_rule(
    store: &Store,
    product: &ProductRecord,
    id: PriceId,
    p: &PriceInput,
) -> Result<PriceRule, ServiceError> {
    let currency =
        Currency::parse(&p.currency).map_err(|m| ServiceError::invalid("currency", m))?;
    // A trillion minor units is beyond any price and keeps sums of many
    // lines far from overflow.
    const MAX_MINOR: i64 = 1_000_000_000_000;
    if !(0..=MAX_MINOR).contains(&p.amount_minor) || !(0..=MAX_MINOR).contains(&p.setup_fee_minor) {
        return Err(ServiceError::invalid(
            "amount_minor",
            "amounts must be 0 to 10^12 minor units",
        ));
    }
    if !period_fits(product.fields.billing_model, p.period) {
        return Err(ServiceError::invalid(
            "period",
            format!(
                "a {} product is not priced {}",
                product.fields.billing_model, p.period
            ),
        ));
    }
    if let Some(region) = &p.region {
        check_region(region).map_err(|m| ServiceError::invalid("region", m))?;
    }
    if let Some(tenant) = p.tenant
        && store.tenant(tenant).await?.is_none()
    {
        return Err(ServiceError::invalid("tenant_id", "no such tenant"));
    }
    Ok(PriceRule {
        id,
        period: p.period,
        currency,
        amount_minor: p.amount_minor,
        setup_fee_minor: p.setup_fee_minor,
        tenant: p.tenant,
        region: p.region.clone(),
    })
}

fn rule_json(r: &PriceRule) -> serde_json::Value {
    json!({
        "period": r.period, "currency": r.currency, "amount_minor": r.amount_minor,
        "setup_fee_minor": r.setup_fee_minor, "tenant_id": r.tenant, "region": r.region,
    })
}

fn duplicate_rule(e: StoreError) -> ServiceError {
    match e {
        StoreError::Conflict(_) => ServiceError::Conflict(
            "a price for this period, currency, tenant and region already exists; change that one"
                .into(),
        ),
        other => other.into(),
    }
}

pub async fn add_price(
    cx: &Context,
    product_id: ProductId,
    input: &PriceInput,
) -> Result<PriceRule, ServiceError> {
    let product = get_product(cx, product_id).await?;
    let rule = checked_rule(&cx.store, &product, PriceId::new(), input).await?;
    let now = cx.now();
    let mut tx = cx.store.begin().await?;
    tx.insert_price(cx.tenant_id(), product_id, &rule, now)
        .await
        .map_err(duplicate_rule)?;
    tx.record_audit(&cx.audit(Audited {
        action: "price.create",
        target_type: "price",
        target_id: rule.id.to_string(),
        before: None,
        after: Some(rule_json(&rule)),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(rule)
}

pub async fn update_price(
    cx: &Context,
    product_id: ProductId,
    price_id: PriceId,
    input: &PriceInput,
) -> Result<PriceRule, ServiceError> {
    let product = get_product(cx, product_id).await?;
    let rule = checked_rule(&cx.store, &product, price_id, input).await?;
    let now = cx.now();
    let mut tx = cx.store.begin().await?;
    let before = price_in(&mut tx, cx.tenant_id(), product_id, price_id).await?;
    tx.update_price(cx.tenant_id(), product_id, &rule, now)
        .await
        .map_err(duplicate_rule)?
        .then_some(())
        .ok_or_else(ServiceError::missing("price"))?;
    tx.record_audit(&cx.audit(Audited {
        action: "price.update",
        target_type: "price",
        target_id: price_id.to_string(),
        before: Some(rule_json(&before)),
        after: Some(rule_json(&rule)),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(rule)
}

pub async fn delete_price(
    cx: &Context,
    product_id: ProductId,
    price_id: PriceId,
) -> Result<(), ServiceError> {
    let now = cx.now();
    let mut tx = cx.store.begin().await?;
    let before = price_in(&mut tx, cx.tenant_id(), product_id, price_id).await?;
    tx.delete_price(cx.tenant_id(), product_id, price_id)
        .await?
        .then_some(())
        .ok_or_else(ServiceError::missing("price"))?;
    tx.record_audit(&cx.audit(Audited {
        action: "price.delete",
        target_type: "price",
        target_id: price_id.to_string(),
        before: Some(rule_json(&before)),
        after: None,
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn prices(cx: &Context, product: ProductId) -> Result<Vec<PriceRule>, ServiceError> {
    get_product(cx, product).await?;
    Ok(cx.store.prices_of(cx.tenant_id(), product).await?)
}

/// What `product` costs for `request`; `NotFound` when no rule applies.
pub async fn quote(
    cx: &Context,
    product: ProductId,
    request: &PriceRequest,
) -> Result<Quote, ServiceError> {
    let record = get_product(cx, product).await?;
    let rules = cx.store.prices_of(cx.tenant_id(), product).await?;
    quote_from(&record, &rules, request)
}

/// The same, from rules already read.
pub fn quote_from(
    product: &ProductRecord,
    rules: &[PriceRule],
    request: &PriceRequest,
) -> Result<Quote, ServiceError> {
    resolve(rules, product.fields.base_currency, request)
        .map(|r| Quote {
            rule: r.rule.clone(),
            matched: r.matched,
        })
        .ok_or_else(|| {
            ServiceError::NotFound(format!(
                "{} has no {} price in {}{}",
                product.fields.slug,
                request.period,
                request.currency,
                request
                    .region
                    .as_ref()
                    .map(|r| format!(" for region {r}"))
                    .unwrap_or_default()
            ))
        })
}

/// A product of the public catalog with what it costs in one currency
/// and region.
#[derive(Debug, Clone)]
pub struct PublicOffer {
    pub product: ProductRecord,
    /// One price per period that has one, in [`Period::ALL`] order.
    pub prices: Vec<PriceRule>,
}

/// The public catalog: the tenant's active public products that have a
/// price in `currency` (and `region`). It is asked without credentials,
/// so its cost does not grow with the products: the products page by
/// page, then every price in one query.
pub async fn public_offers(
    store: &Store,
    tenant: TenantId,
    currency: Currency,
    region: Option<&str>,
) -> Result<Vec<PublicOffer>, ServiceError> {
    let mut products = Vec::new();
    let mut after = None;
    loop {
        let storefront = ProductFilter {
            public_only: true,
            ..ProductFilter::default()
        };
        let page = store.list_products(tenant, storefront, after, 200).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        products.extend(page);
    }
    let mut prices = store.public_prices(tenant).await?;
    Ok(products
        .into_iter()
        .filter_map(|product| {
            let rules = prices.remove(&product.id).unwrap_or_default();
            let prices = public_prices(&product, &rules, currency, region);
            (!prices.is_empty()).then_some(PublicOffer { product, prices })
        })
        .collect())
}

/// The rule each period resolves to for a public visitor (no tenant).
fn public_prices(
    product: &ProductRecord,
    rules: &[PriceRule],
    currency: Currency,
    region: Option<&str>,
) -> Vec<PriceRule> {
    Period::ALL
        .iter()
        .filter_map(|period| {
            let request = PriceRequest {
                period: *period,
                currency,
                region: region.map(str::to_owned),
                tenant: None,
            };
            quote_from(product, rules, &request).ok()
        })
        .map(|quote| quote.rule)
        .collect()
}

/// One rule of a product, read in the caller's transaction.
async fn price_in(
    tx: &mut mpanel_store::Tx,
    tenant: TenantId,
    product: ProductId,
    id: PriceId,
) -> Result<PriceRule, ServiceError> {
    tx.prices_of(tenant, product)
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| ServiceError::NotFound("no such price".into()))
}
