//! The four seed plans (MINI, PRO, BUSINESS, ENTERPRISE) as products a
//! tenant starts its CloudPod catalog from: made once each (slug
//! `cloudpod-<plan>`), priced monthly in the tenant's default currency,
//! then changed like any product.

use mpanel_domain::ProductId;
use mpanel_domain::billing::money::to_minor;
use mpanel_domain::catalog::{BillingModel, Category, Currency, Period, ProductStatus, Visibility};
use mpanel_domain::cloudpods::{SEED_PLANS, SeedPlan};
use mpanel_store::catalog::ProductFields;
use serde::Serialize;

use crate::catalog::{self, PriceInput};
use crate::{Context, ServiceError};

/// One seed plan's product.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SeededPlan {
    pub plan: String,
    pub product_id: ProductId,
    /// Made now (`false`: it existed, and was left as the tenant has it).
    pub created: bool,
}

fn slug(plan: &SeedPlan) -> String {
    format!("cloudpod-{}", plan.code.to_ascii_lowercase())
}

fn fields(plan: &SeedPlan, currency: Currency) -> ProductFields {
    let limit = |n: Option<u32>| n.map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
    ProductFields {
        name: format!("CloudPod {}", plan.code),
        slug: slug(plan),
        description: format!(
            "{} vCPU, {} GiB memory, {} GB disk; {} websites, {} mailboxes",
            plan.vcpus,
            plan.memory_mb / 1024,
            plan.disk_gb,
            limit(plan.websites),
            limit(plan.mailboxes)
        ),
        category: Category::CloudPod,
        billing_model: BillingModel::Recurring,
        status: ProductStatus::Active,
        visibility: Visibility::Public,
        base_currency: currency,
        template: plan.template(),
        usage: None,
    }
}

/// Makes the seed plans the tenant does not have yet.
pub async fn seed(cx: &Context) -> Result<Vec<SeededPlan>, ServiceError> {
    let currency = Currency::parse(&cx.tenant.default_currency)
        .map_err(|m| ServiceError::internal_msg(format!("the tenant's currency: {m}")))?;
    let existing = catalog::list_products(cx, Default::default(), None, 1000).await?;
    let mut out = Vec::new();
    for plan in &SEED_PLANS {
        let (product_id, created) = match existing.iter().find(|p| p.fields.slug == slug(plan)) {
            Some(p) => (p.id, false),
            None => (
                catalog::create_product(cx, &fields(plan, currency))
                    .await?
                    .id,
                true,
            ),
        };
        // A product made by an earlier call that stopped before its price
        // gets it now.
        if catalog::prices(cx, product_id).await?.is_empty() {
            let amount = to_minor(plan.monthly, currency)
                .ok_or_else(|| ServiceError::internal_msg("a seed price out of range"))?;
            let price = PriceInput {
                period: Period::Monthly,
                currency: currency.code().to_owned(),
                amount_minor: amount,
                setup_fee_minor: 0,
                tenant: None,
                region: None,
            };
            catalog::add_price(cx, product_id, &price).await?;
        }
        out.push(SeededPlan {
            plan: plan.code.to_owned(),
            product_id,
            created,
        });
    }
    Ok(out)
}
