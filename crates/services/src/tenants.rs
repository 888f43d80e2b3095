//! Creating a tenant: one hosting brand.

use mpanel_domain::{Clock, NewTenant, TenantId};
use mpanel_store::{Store, StoreError, TenantRecord};
use serde_json::json;

use crate::actor::Change;
use crate::{Actor, ServiceError};

/// The fields of a new tenant as given (checked here).
#[derive(Debug, Clone)]
pub struct CreateTenant {
    pub slug: String,
    pub name: String,
    pub timezone: String,
    pub default_currency: String,
}

/// Creates a tenant and its audit row in one transaction.
pub async fn create_tenant(
    store: &Store,
    clock: &dyn Clock,
    actor: &Actor,
    input: &CreateTenant,
) -> Result<TenantRecord, ServiceError> {
    let tenant = NewTenant::parse(
        &input.slug,
        &input.name,
        &input.timezone,
        &input.default_currency,
    )?;
    let now = clock.now();
    let id = TenantId::new();
    let mut tx = store.begin().await?;
    let record = match tx.insert_tenant(id, &tenant, now).await {
        Ok(record) => record,
        Err(StoreError::Conflict(_)) => {
            return Err(ServiceError::Conflict(format!(
                "a tenant with slug {:?} already exists",
                tenant.slug.as_str()
            )));
        }
        Err(other) => return Err(other.into()),
    };
    tx.record_audit(&actor.audit(Change {
        tenant: id,
        action: "tenant.create",
        target_type: "tenant",
        target_id: id.to_string(),
        before: None,
        after: Some(json!({
            "slug": record.slug,
            "name": record.name,
            "timezone": record.timezone,
            "default_currency": record.default_currency,
        })),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(record)
}
