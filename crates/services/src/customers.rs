//! Customers, as staff manage them: billing contact, country, tax id,
//! address; the credit balance is shown here and changed by billing.

use mpanel_domain::CustomerId;
use mpanel_store::orders::CustomerRecord;
use serde_json::{Value, json};

use crate::ServiceError;
use crate::context::{Audited, Context};
use crate::orders::{CustomerInput, PortalInvitation, find_or_create_customer};

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
    cx: &Context,
    input: &CustomerInput,
    address: Option<Value>,
    invitation: PortalInvitation,
) -> Result<CustomerRecord, ServiceError> {
    crate::orders::check_customer(input)?;
    let now = cx.now();
    let mut tx = cx.store.begin().await?;
    let (mut customer, created) =
        find_or_create_customer(&mut tx, &cx.tenant, input, invitation, now).await?;
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
    tx.record_audit(&cx.audit(Audited {
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

pub async fn get(cx: &Context, id: CustomerId) -> Result<CustomerRecord, ServiceError> {
    cx.store
        .customer(cx.tenant_id(), id)
        .await?
        .ok_or_else(ServiceError::missing("customer"))
}

/// The signed-in user's customer record, if they have one.
pub async fn own(cx: &Context) -> Result<Option<CustomerId>, ServiceError> {
    Ok(cx
        .store
        .customer_of_user(cx.tenant_id(), cx.principal.user_id)
        .await?
        .map(|c| c.id))
}

/// The tenant's customers, oldest first; with `search`, those whose
/// e-mail, name or company contains it (any case).
pub async fn list(
    cx: &Context,
    after: Option<CustomerId>,
    limit: u32,
    search: Option<&str>,
) -> Result<Vec<CustomerRecord>, ServiceError> {
    let search = search.map(str::trim).filter(|s| !s.is_empty());
    if search.is_some_and(|s| s.chars().count() > 200) {
        return Err(ServiceError::invalid("q", "at most 200 characters"));
    }
    Ok(cx
        .store
        .list_customers(cx.tenant_id(), after, limit, search)
        .await?)
}

pub async fn update(
    cx: &Context,
    id: CustomerId,
    patch: &CustomerPatch,
) -> Result<CustomerRecord, ServiceError> {
    let now = cx.now();
    let mut tx = cx.store.begin().await?;
    let before = tx
        .customer(cx.tenant_id(), id)
        .await?
        .ok_or_else(ServiceError::missing("customer"))?;
    let mut after = before.clone();
    if let Some(name) = &patch.name {
        after.name = name.trim().to_owned();
    }
    if let Some(company) = &patch.company {
        after.company = company.clone();
    }
    if let Some(country) = &patch.country {
        after.country = mpanel_domain::contact::country(country)
            .map_err(|m| ServiceError::invalid("country", m))?;
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
    tx.record_audit(&cx.audit(Audited {
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
