//! `/api/customers`: customers as staff see and edit them.

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use mpanel_domain::{CustomerId, CustomerNoteId};
use mpanel_services::customer_notes;
use mpanel_services::customers::{self, CustomerPatch};
use mpanel_services::orders::{CustomerInput, PortalInvitation};
use mpanel_store::customer_notes::CustomerNoteRecord;
use mpanel_store::orders::CustomerRecord;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::caller::{Ctx, perm};
use crate::query::{self, Listing, NoFilter, Page, PageParams};
use crate::{ApiJson, Problem};

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub company: Option<String>,
    pub country: String,
    pub tax_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub address: Option<Value>,
    // Credit is per currency: GET /api/billing/customers/{id}/credit.
    pub portal_user_id: Option<String>,
    /// `ACTIVE`, or `PENDING_VERIFICATION`: an order used the address of
    /// the customer `pending_for` without the marketing site saying that
    /// customer signed in, so it was kept apart (no credit, card or portal).
    pub status: String,
    pub pending_for: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<CustomerRecord> for CustomerView {
    fn from(c: CustomerRecord) -> Self {
        Self {
            id: c.id.to_string(),
            email: c.email,
            name: c.name,
            company: c.company,
            country: c.country,
            tax_id: c.tax_id,
            address: c.address,
            portal_user_id: c.portal_user_id.map(|u| u.to_string()),
            status: if c.pending_for.is_some() {
                "PENDING_VERIFICATION"
            } else {
                "ACTIVE"
            }
            .to_owned(),
            pending_for: c.pending_for.map(|id| id.to_string()),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomerBody {
    #[schema(pattern = "^[^@\\s]+@\\S*\\.\\S*$", max_length = 254)]
    pub email: String,
    #[schema(pattern = "\\S", max_length = 200)]
    pub name: String,
    pub company: Option<String>,
    /// ISO 3166-1 alpha-2.
    #[schema(schema_with = mpanel_services::api_schema::country_code)]
    pub country: String,
    #[schema(max_length = 64)]
    pub tax_id: Option<String>,
    /// Free-form lines of the postal address, as an object.
    #[schema(value_type = Option<Object>)]
    pub address: Option<serde_json::Map<String, Value>>,
    /// E-mail the customer an invitation to the portal now (default
    /// `true`); otherwise later with `POST /api/users/{id}/invite`.
    #[serde(default)]
    pub send_invitation: Option<bool>,
}

/// `null` clears a field; an absent field stays as it is.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerPatchBody {
    #[schema(pattern = "\\S", max_length = 200)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub company: Option<Option<String>>,
    #[schema(schema_with = mpanel_services::api_schema::country_code)]
    pub country: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 64)]
    pub tax_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    pub address: Option<Option<serde_json::Map<String, Value>>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CustomerFilter {
    /// Part of the e-mail, name or company, any case.
    #[param(max_length = 200)]
    pub q: Option<String>,
}

/// The tenant's customers, oldest first.
#[utoipa::path(get, path = "/api/customers", tag = "customers", params(PageParams, CustomerFilter),
    security(("bearer" = ["CUSTOMERS_READ"])),
    responses((status = 200, description = "A page of customers", body = Page<CustomerView>)))]
pub async fn list(
    cx: Ctx<perm::CustomersRead>,
    list: Listing<CustomerFilter>,
) -> Result<Json<Page<CustomerView>>, Problem> {
    Ok(Json(list_for(&cx, list).await?))
}

/// A page of customers, for the API and the console.
pub(crate) async fn list_for(
    cx: &mpanel_services::Context,
    list: Listing<CustomerFilter>,
) -> Result<Page<CustomerView>, Problem> {
    let paging = &list.paging;
    let after = paging.after::<CustomerId>()?;
    let fetched = customers::list(cx, after, paging.fetch(), list.filter.q.as_deref()).await?;
    Ok(paging.page(fetched, |c| c.id.to_string(), CustomerView::from))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerNoteView {
    pub id: String,
    /// Who wrote it, as they were named then.
    pub author: String,
    pub body: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<CustomerNoteRecord> for CustomerNoteView {
    fn from(n: CustomerNoteRecord) -> Self {
        Self {
            id: n.id.to_string(),
            author: n.author_label,
            body: n.body,
            created_at: n.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNoteBody {
    #[schema(min_length = 1, max_length = 5000)]
    pub body: String,
}

/// A customer's notes, newest first.
#[utoipa::path(get, path = "/api/customers/{id}/notes", tag = "customers",
    params(("id" = String, Path, description = "Customer id"), PageParams),
    security(("bearer" = ["CUSTOMERS_READ"])),
    responses((status = 200, description = "A page of notes", body = Page<CustomerNoteView>),
        (status = 404, description = "No such customer")))]
pub async fn notes(
    cx: Ctx<perm::CustomersRead>,
    Path(id): Path<String>,
    list: Listing<NoFilter>,
) -> Result<Json<Page<CustomerNoteView>>, Problem> {
    let id = query::path_id::<CustomerId>(&id, "customer")?;
    let paging = &list.paging;
    let before = paging.after::<CustomerNoteId>()?;
    let fetched = customer_notes::list(&cx, id, before, paging.fetch()).await?;
    Ok(Json(paging.page(
        fetched,
        |n| n.id.to_string(),
        CustomerNoteView::from,
    )))
}

/// Keep a note on a customer (staff only; never shown to the customer).
#[utoipa::path(post, path = "/api/customers/{id}/notes", tag = "customers", request_body = NewNoteBody,
    params(("id" = String, Path, description = "Customer id")),
    security(("bearer" = ["CUSTOMERS_WRITE"])),
    responses((status = 201, description = "Kept", body = CustomerNoteView),
        (status = 404, description = "No such customer")))]
pub async fn add_note(
    cx: Ctx<perm::CustomersWrite>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<NewNoteBody>,
) -> Result<(StatusCode, Json<CustomerNoteView>), Problem> {
    let id = query::path_id::<CustomerId>(&id, "customer")?;
    let note = customer_notes::add(&cx, id, &body.body).await?;
    Ok((StatusCode::CREATED, Json(note.into())))
}

/// Create a customer and its portal user, who is e-mailed an invitation
/// (unless `send_invitation` is `false`).
#[utoipa::path(post, path = "/api/customers", tag = "customers", request_body = NewCustomerBody,
    security(("bearer" = ["CUSTOMERS_WRITE"])),
    responses((status = 201, description = "Created", body = CustomerView),
        (status = 409, description = "The e-mail address is a customer already")))]
pub async fn create(
    cx: Ctx<perm::CustomersWrite>,
    ApiJson(body): ApiJson<NewCustomerBody>,
) -> Result<(StatusCode, Json<CustomerView>), Problem> {
    let input = CustomerInput {
        email: body.email,
        name: body.name,
        company: body.company,
        country: body.country,
        tax_id: body.tax_id,
        // Staff know whom they create: an existing address is a conflict.
        authenticated: true,
    };
    let invitation = match body.send_invitation {
        Some(false) => PortalInvitation::Hold,
        _ => PortalInvitation::Send,
    };
    let c = customers::create(&cx, &input, body.address.map(Value::Object), invitation).await?;
    Ok((StatusCode::CREATED, Json(c.into())))
}

/// One customer.
#[utoipa::path(get, path = "/api/customers/{id}", tag = "customers",
    params(("id" = String, Path, description = "Customer id")),
    security(("bearer" = ["CUSTOMERS_READ"])),
    responses((status = 200, description = "The customer", body = CustomerView),
        (status = 404, description = "No such customer")))]
pub async fn get(
    cx: Ctx<perm::CustomersRead>,
    Path(id): Path<String>,
) -> Result<Json<CustomerView>, Problem> {
    let id = query::path_id::<CustomerId>(&id, "customer")?;
    Ok(Json(customers::get(&cx, id).await?.into()))
}

/// Change a customer's details.
#[utoipa::path(patch, path = "/api/customers/{id}", tag = "customers", request_body = CustomerPatchBody,
    params(("id" = String, Path, description = "Customer id")),
    security(("bearer" = ["CUSTOMERS_WRITE"])),
    responses((status = 200, description = "Changed", body = CustomerView),
        (status = 404, description = "No such customer")))]
pub async fn update(
    cx: Ctx<perm::CustomersWrite>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CustomerPatchBody>,
) -> Result<Json<CustomerView>, Problem> {
    let id = query::path_id::<CustomerId>(&id, "customer")?;
    let patch = CustomerPatch {
        name: body.name,
        company: body.company,
        country: body.country,
        tax_id: body.tax_id,
        address: body.address.map(|a| a.map(Value::Object)),
    };
    let c = customers::update(&cx, id, &patch).await?;
    Ok(Json(c.into()))
}
