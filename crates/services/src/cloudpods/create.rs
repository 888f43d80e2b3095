//! `POST /api/cloudpods`: staff make a pod for a customer. It goes the way
//! of an order (the same checks, an order with one item, its invoice, its
//! subscription and the pod in one transaction), provisioned once the
//! invoice is paid, or at once when staff say so.

use mpanel_domain::catalog::{Period, ProvisioningTemplate};
use mpanel_domain::{CustomerId, ProductId};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{PodView, view};
use crate::billing::staff_orders;
use crate::billing::subscriptions::{CreateInput, check_create};
use crate::idempotency::{self, IdempotencyHold};
use crate::{Context, ServiceError};

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPodInput {
    pub customer_id: CustomerId,
    /// A CloudPod product (its plan sizes the VM).
    pub product_id: ProductId,
    pub period: Period,
    /// The tenant's default currency when left out.
    pub currency: Option<String>,
    #[schema(max_length = 253)]
    pub hostname: Option<String>,
    #[schema(min_length = 1, max_length = 100)]
    pub name: Option<String>,
    /// One of the cluster's images (`debian-12`); its default otherwise.
    #[schema(max_length = 64)]
    pub os_image: Option<String>,
    /// OpenSSH public keys cloud-init installs.
    #[serde(default)]
    pub ssh_keys: Vec<String>,
    /// Provision now, before the first invoice is paid (dunning suspends
    /// the pod if it stays unpaid).
    #[serde(default)]
    pub provision_before_payment: bool,
    pub auto_renew: Option<bool>,
}

impl NewPodInput {
    fn options(&self) -> Value {
        let mut o = Map::new();
        for (k, v) in [
            ("hostname", &self.hostname),
            ("name", &self.name),
            ("os_image", &self.os_image),
        ] {
            if let Some(v) = v {
                o.insert(k.into(), Value::String(v.clone()));
            }
        }
        if !self.ssh_keys.is_empty() {
            o.insert("ssh_keys".into(), Value::from(self.ssh_keys.clone()));
        }
        Value::Object(o)
    }
}

/// Places the order and answers the pod it made.
pub async fn create(
    cx: &Context,
    input: NewPodInput,
    hold: Option<&IdempotencyHold>,
) -> Result<PodView, ServiceError> {
    let product = cx
        .store
        .product(cx.tenant_id(), input.product_id)
        .await?
        .ok_or_else(|| ServiceError::invalid("product_id", "no such product"))?;
    if !matches!(
        product.fields.template,
        ProvisioningTemplate::CloudPod { .. }
    ) {
        return Err(ServiceError::invalid(
            "product_id",
            "is not a CloudPod product",
        ));
    }
    let order = CreateInput {
        customer_id: input.customer_id,
        product_id: input.product_id,
        period: input.period,
        currency: input.currency.clone(),
        start_at: None,
        trial_days: 0,
        addons: Vec::new(),
        auto_renew: input.auto_renew,
        external_ref: None,
        domain: None,
        options: Some(input.options()),
        provision_before_payment: input.provision_before_payment,
    };
    let currency = check_create(&cx.tenant, &order)?;
    let (mut tx, sub) = staff_orders::place_in(cx, &order, currency, hold)
        .await
        .map_err(|e| match e {
            // The options are this request's own fields.
            ServiceError::Invalid { field, message } => ServiceError::Invalid {
                field: field
                    .strip_prefix("options.")
                    .map(|f| f.to_owned().into())
                    .unwrap_or(field),
                message,
            },
            other => other,
        })?;
    let pod = tx
        .cloud_pod_of_subscription(sub.id)
        .await?
        .ok_or_else(|| ServiceError::internal_msg("a CloudPod order made no pod"))?;
    let out = view(pod);
    idempotency::finish(&mut tx, cx.tenant_id(), hold, 201, &out).await?;
    tx.commit().await?;
    Ok(out)
}
