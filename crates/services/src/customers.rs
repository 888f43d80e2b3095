//! Customers, as staff manage them: billing contact, country, tax id,
//! address; the credit balance is shown here and changed by billing.

use mpanel_domain::{Clock, CustomerId};
use mpanel_store::orders::CustomerRecord;
use mpanel_store::{Store, TenantRecord};
use serde_json::{Value, json};

use crate::actor::Change;
use crate::identity::Principal;
use crate::orders::{CustomerInput, find_or_create_customer};
use crate::{Actor, ServiceError};

/// Changes to a customer; absent fields stay.
#[derive(Debug, Clone, Default)]
pub struct CustomerPatch {
    pub name: Option<String>,
    pub company: Option<Option<String>>,
    pub country: Option<String>,
    pub tax_id: Option<Option<String>>,
    pub address: Option<Option<Value>>,
}

fn summary(c: &CustomerRecord) -> Value {
    json!({"email": c.email, "name": c.name, "company": c.company, "country": c.country, "tax_id": c.tax_id})
}

/// Creates a customer and its invited portal user; a known e-mail is a conflict.
pub async fn create(
    store: &Store,
    clock: &dyn Clock,
    who: &Principal,
    actor: &Actor,
    input: &CustomerInput,
    address: Option<Value>,
) -> Result<CustomerRecord, ServiceError> {
    crate::orders::check_customer(input)?;
    let tenant: TenantRecord = store
        .tenant(who.tenant_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound("no such tenant".into()))?;
    let now = clock.now();
    let mut tx = store.begin().await?;
    let (mut customer, created) = find_or_create_customer(&mut tx, &tenant, input, now).await?;
    if !created {
        return Err(ServiceError::Conflict(format!(
            "a customer with e-mail {:?} exists",
            input.email.trim()
        )));
    }
    if address.is_some() {
        customer.address = address;
        tx.save_customer(&customer).await?;
    }
    tx.record_audit(&actor.audit(Change {
        tenant: who.tenant_id,
        action: "customer.create",
        target_type: "customer",
        target_id: customer.id.to_string(),
        before: None,
        after: Some(summary(&customer)),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(customer)
}

pub async fn get(
    store: &Store,
    who: &Principal,
    id: CustomerId,
) -> Result<CustomerRecord, ServiceError> {
    store
        .customer(who.tenant_id, id)
        .await
        .map_err(ServiceError::not_found_as("customer"))
}

pub async fn list(
    store: &Store,
    who: &Principal,
    after: Option<CustomerId>,
    limit: u32,
) -> Result<Vec<CustomerRecord>, ServiceError> {
    Ok(store.list_customers(who.tenant_id, after, limit).await?)
}

pub async fn update(
    store: &Store,
    clock: &dyn Clock,
    who: &Principal,
    actor: &Actor,
    id: CustomerId,
    patch: &CustomerPatch,
) -> Result<CustomerRecord, ServiceError> {
    let now = clock.now();
    let mut tx = store.begin().await?;
    let before = tx
        .customer(who.tenant_id, id)
        .await
        .map_err(ServiceError::not_found_as("customer"))?;
    let mut after = before.clone();
    if let Some(name) = &patch.name {
        after.name = name.trim().to_owned();
    }
    if let Some(company) = &patch.company {
        after.company = company.clone();
    }
    if let Some(country) = &patch.country {
        after.country = country.clone();
    }
    if let Some(tax_id) = &patch.tax_id {
        after.tax_id = tax_id.clone();
    }
    if let Some(address) = &patch.address {
        after.address = address.clone();
    }
    crate::orders::check_customer(&CustomerInput {
        email: after.email.clone(),
        name: after.name.clone(),
        company: after.company.clone(),
        country: after.country.clone(),
        tax_id: after.tax_id.clone(),
        authenticated: true,
    })?;
    after.updated_at = now;
    tx.save_customer(&after).await?;
    tx.record_audit(&actor.audit(Change {
        tenant: who.tenant_id,
        action: "customer.update",
        target_type: "customer",
        target_id: id.to_string(),
        before: Some(summary(&before)),
        after: Some(summary(&after)),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(after)
}
