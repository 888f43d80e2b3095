//! `/api/billing/invoices`: drafts, issue, void, payments, credit notes and
//! PDFs for staff; `/api/me/invoices` for the customer.

use axum::Json;
use axum::extract::Path;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use mpanel_domain::billing::invoice::InvoiceStatus;
use mpanel_domain::{CreditNoteId, CustomerId, InvoiceId};
use mpanel_services::billing::credit_notes::{self, CreditNoteInput, CreditNoteView};
use mpanel_services::billing::invoices::{self, DraftInput, InvoiceView};
use mpanel_services::billing::movements::{self, CustomerCredit, Movements};
use mpanel_services::billing::payments::{self, PaymentInput, PaymentOutcome};
use mpanel_services::billing::{documents, settings};
use mpanel_services::{Context, customers};
use mpanel_store::billing::InvoiceFilter;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::Problem;
use crate::caller::{Ctx, perm};
use crate::idempotency::{self, Idempotent};
use crate::json::ApiJson;
use crate::query::{self, Listing, Page, PageParams};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListFilter {
    /// As a reader sees it (an open invoice past due is OVERDUE).
    #[serde(default, deserialize_with = "query::from_str_opt")]
    #[param(value_type = Option<InvoiceStatus>, inline)]
    status: Option<InvoiceStatus>,
    #[param(value_type = Option<uuid::Uuid>)]
    customer_id: Option<CustomerId>,
    /// Issued at or after (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<OffsetDateTime>)]
    from: Option<OffsetDateTime>,
    /// Issued before (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<OffsetDateTime>)]
    to: Option<OffsetDateTime>,
}

fn invoice_id(raw: &str) -> Result<InvoiceId, Problem> {
    query::path_id(raw, "invoice")
}

pub(crate) async fn list_for(
    cx: &Context,
    list: Listing<ListFilter>,
    customer: Option<CustomerId>,
) -> Result<Page<InvoiceView>, Problem> {
    let Listing { paging, filter: q } = list;
    let filter = InvoiceFilter {
        status: q.status,
        customer: customer.or(q.customer_id),
        // One representation for both engines (SQLite compares text).
        from: q.from.map(|t| t.to_offset(time::UtcOffset::UTC)),
        to: q.to.map(|t| t.to_offset(time::UtcOffset::UTC)),
        before: paging.after::<InvoiceId>()?,
        limit: paging.fetch(),
        issued_only: customer.is_some(),
    };
    let now = cx.now();
    let fetched = invoices::list(cx, &filter).await?;
    Ok(paging.page(
        fetched,
        |i| i.id.to_string(),
        |i| invoices::view(i, None, now),
    ))
}

/// The tenant's invoices, newest first.
#[utoipa::path(get, path = "/api/billing/invoices", tag = "billing", params(PageParams, ListFilter),
    security(("bearer" = ["INVOICES_READ"])),
    responses((status = 200, description = "A page of invoices", body = Page<InvoiceView>)))]
pub async fn list(
    cx: Ctx<perm::InvoicesRead>,
    list: Listing<ListFilter>,
) -> Result<Json<Page<InvoiceView>>, Problem> {
    Ok(Json(list_for(&cx, list, None).await?))
}

/// A draft invoice for a customer (`Idempotency-Key` honoured).
#[utoipa::path(post, path = "/api/billing/invoices", tag = "billing", request_body = DraftInput,
    security(("bearer" = ["INVOICES_WRITE"])),
    responses((status = 201, description = "The draft", body = InvoiceView),
        (status = 409, description = "A request with the same Idempotency-Key is still being processed (`request_in_flight`)"),
        (status = 422, description = "A line or the customer is not valid, or the Idempotency-Key was used for another request (`idempotency_key_reused`)")))]
pub async fn create(
    cx: Ctx<perm::InvoicesWrite>,
    request: Idempotent<DraftInput>,
) -> Result<Response, Problem> {
    let (cx, body) = (&*cx, &request.body);
    idempotency::run(cx, &request, |hold| async move {
        invoices::create_draft(cx, body.clone(), hold.as_ref()).await
    })
    .await
}

/// One invoice with its lines.
#[utoipa::path(get, path = "/api/billing/invoices/{id}", tag = "billing",
    params(("id" = String, Path)), security(("bearer" = ["INVOICES_READ"])),
    responses((status = 200, description = "The invoice", body = InvoiceView),
        (status = 404, description = "No such invoice")))]
pub async fn get(
    cx: Ctx<perm::InvoicesRead>,
    Path(id): Path<String>,
) -> Result<Json<InvoiceView>, Problem> {
    Ok(Json(invoices::get(&cx, invoice_id(&id)?).await?))
}

/// Replace a draft's lines (an issued invoice is frozen: 409).
#[utoipa::path(put, path = "/api/billing/invoices/{id}", tag = "billing", request_body = DraftInput,
    params(("id" = String, Path)), security(("bearer" = ["INVOICES_WRITE"])),
    responses((status = 200, description = "The draft", body = InvoiceView),
        (status = 409, description = "Not a draft")))]
pub async fn update(
    cx: Ctx<perm::InvoicesWrite>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DraftInput>,
) -> Result<Json<InvoiceView>, Problem> {
    let id = invoice_id(&id)?;
    Ok(Json(invoices::update_draft(&cx, id, body).await?))
}

/// Issue a draft: number, snapshot, freeze; the customer's credit pays
/// what it can.
#[utoipa::path(post, path = "/api/billing/invoices/{id}/issue", tag = "billing",
    params(("id" = String, Path)), security(("bearer" = ["INVOICES_WRITE"])),
    responses((status = 200, description = "Issued", body = InvoiceView),
        (status = 409, description = "Not a draft (`invalid_transition`, with `allowed`)"),
        (status = 422, description = "The draft has no lines")))]
pub async fn issue(
    cx: Ctx<perm::InvoicesWrite>,
    Path(id): Path<String>,
) -> Result<Json<InvoiceView>, Problem> {
    let id = invoice_id(&id)?;
    Ok(Json(invoices::issue(&cx, id).await?))
}

/// Void an invoice no money was received for.
#[utoipa::path(post, path = "/api/billing/invoices/{id}/void", tag = "billing",
    params(("id" = String, Path)), security(("bearer" = ["INVOICES_WRITE"])),
    responses((status = 200, description = "Void", body = InvoiceView),
        (status = 409, description = "Not allowed from its status, or money was received")))]
pub async fn void(
    cx: Ctx<perm::InvoicesWrite>,
    Path(id): Path<String>,
) -> Result<Json<InvoiceView>, Problem> {
    let id = invoice_id(&id)?;
    Ok(Json(invoices::void(&cx, id).await?))
}

/// Record a payment (`Idempotency-Key` honoured; a provider reference is
/// recorded once). Any excess goes to the customer's credit.
#[utoipa::path(post, path = "/api/billing/invoices/{id}/pay", tag = "billing", request_body = PaymentInput,
    params(("id" = String, Path)), security(("bearer" = ["PAYMENTS_WRITE"])),
    responses((status = 201, description = "Recorded", body = PaymentOutcome),
        (status = 409, description = "Not payable from its status, the reference is recorded, or the same Idempotency-Key is still being processed (`request_in_flight`)")))]
pub async fn pay(
    cx: Ctx<perm::PaymentsWrite>,
    Path(id): Path<String>,
    request: Idempotent<PaymentInput>,
) -> Result<Response, Problem> {
    let id = invoice_id(&id)?;
    let (cx, body) = (&*cx, &request.body);
    idempotency::run(cx, &request, |hold| async move {
        payments::pay(cx, id, body.clone(), hold.as_ref()).await
    })
    .await
}

/// A credit note against an issued invoice (`Idempotency-Key` honoured).
#[utoipa::path(post, path = "/api/billing/invoices/{id}/credit-notes", tag = "billing", request_body = CreditNoteInput,
    params(("id" = String, Path)), security(("bearer" = ["INVOICES_WRITE"])),
    responses((status = 201, description = "Issued", body = CreditNoteView),
        (status = 409, description = "The invoice is a draft or void, or the same Idempotency-Key is still being processed (`request_in_flight`)"),
        (status = 422, description = "More than can be credited, or the Idempotency-Key was used for another request (`idempotency_key_reused`)")))]
pub async fn credit_note(
    cx: Ctx<perm::InvoicesWrite>,
    Path(id): Path<String>,
    request: Idempotent<CreditNoteInput>,
) -> Result<Response, Problem> {
    let id = invoice_id(&id)?;
    let (cx, body) = (&*cx, &request.body);
    idempotency::run(cx, &request, |hold| async move {
        credit_notes::create(cx, id, body.clone(), hold.as_ref()).await
    })
    .await
}

/// An invoice's payments and credit notes.
#[utoipa::path(get, path = "/api/billing/invoices/{id}/payments", tag = "billing",
    params(("id" = String, Path)), security(("bearer" = ["INVOICES_READ"])),
    responses((status = 200, description = "Payments and credit notes", body = Movements)))]
pub async fn movements(
    cx: Ctx<perm::InvoicesRead>,
    Path(id): Path<String>,
) -> Result<Json<Movements>, Problem> {
    Ok(Json(movements::of_invoice(&cx, invoice_id(&id)?).await?))
}

pub(crate) fn pdf_response(name: &str, bytes: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{name}.pdf\""),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// The invoice as a PDF.
#[utoipa::path(get, path = "/api/billing/invoices/{id}/pdf", tag = "billing",
    params(("id" = String, Path)), security(("bearer" = ["INVOICES_READ"])),
    responses((status = 200, description = "application/pdf")))]
pub async fn pdf(cx: Ctx<perm::InvoicesRead>, Path(id): Path<String>) -> Result<Response, Problem> {
    let (name, bytes) = documents::invoice_pdf(&cx, invoice_id(&id)?).await?;
    Ok(pdf_response(&name, bytes))
}

/// A credit note as a PDF.
#[utoipa::path(get, path = "/api/billing/credit-notes/{id}/pdf", tag = "billing",
    params(("id" = String, Path)), security(("bearer" = ["INVOICES_READ"])),
    responses((status = 200, description = "application/pdf")))]
pub async fn credit_note_pdf(
    cx: Ctx<perm::InvoicesRead>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let id: CreditNoteId = query::path_id(&id, "credit note")?;
    let (name, bytes) = documents::credit_note_pdf(&cx, id).await?;
    Ok(pdf_response(&name, bytes))
}

/// A customer's credit balances, one per currency.
#[utoipa::path(get, path = "/api/billing/customers/{id}/credit", tag = "billing",
    params(("id" = String, Path)), security(("bearer" = ["INVOICES_READ"])),
    responses((status = 200, description = "The customer's credit", body = CustomerCredit)))]
pub async fn customer_credit(
    cx: Ctx<perm::InvoicesRead>,
    Path(id): Path<String>,
) -> Result<Json<CustomerCredit>, Problem> {
    let customer = query::path_id::<CustomerId>(&id, "customer")?;
    Ok(Json(movements::customer_credit(&cx, customer).await?))
}

/// The signed-in customer's invoices (issued ones).
#[utoipa::path(get, path = "/api/me/invoices", tag = "billing", params(PageParams, ListFilter),
    security(("bearer" = ["SELF_READ"])),
    responses((status = 200, description = "A page of invoices", body = Page<InvoiceView>)))]
pub async fn my_list(
    cx: Ctx<perm::SelfRead>,
    list: Listing<ListFilter>,
) -> Result<Json<Page<InvoiceView>>, Problem> {
    // A caller without a customer record gets an empty page; a bad query
    // was already refused by the extractor, for everyone alike.
    let Some(customer) = customers::own(&cx).await? else {
        return Ok(Json(Page::empty()));
    };
    Ok(Json(list_for(&cx, list, Some(customer)).await?))
}

async fn my_invoice(cx: &Context, raw: &str) -> Result<InvoiceId, Problem> {
    let id = invoice_id(raw)?;
    if invoices::is_customers_own(cx, id).await? {
        Ok(id)
    } else {
        Err(Problem::not_found("No such invoice."))
    }
}

/// One of the signed-in customer's invoices.
#[utoipa::path(get, path = "/api/me/invoices/{id}", tag = "billing",
    params(("id" = String, Path)), security(("bearer" = ["SELF_READ"])),
    responses((status = 200, description = "The invoice", body = InvoiceView),
        (status = 404, description = "Not one of yours")))]
pub async fn my_get(
    cx: Ctx<perm::SelfRead>,
    Path(id): Path<String>,
) -> Result<Json<InvoiceView>, Problem> {
    let id = my_invoice(&cx, &id).await?;
    Ok(Json(invoices::get(&cx, id).await?))
}

/// One of the signed-in customer's invoices as a PDF.
#[utoipa::path(get, path = "/api/me/invoices/{id}/pdf", tag = "billing",
    params(("id" = String, Path)), security(("bearer" = ["SELF_READ"])),
    responses((status = 200, description = "application/pdf")))]
pub async fn my_pdf(cx: Ctx<perm::SelfRead>, Path(id): Path<String>) -> Result<Response, Problem> {
    let id = my_invoice(&cx, &id).await?;
    let (name, bytes) = documents::invoice_pdf(&cx, id).await?;
    Ok(pdf_response(&name, bytes))
}

/// The tenant's billing settings (Stripe keys: only whether they are set).
#[derive(Debug, Serialize)]
pub struct SettingsView {
    #[serde(flatten)]
    pub settings: settings::BillingSettings,
    pub stripe_secret_key_set: bool,
    pub stripe_webhook_secret_set: bool,
}

impl utoipa::PartialSchema for SettingsView {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let set = |name| mpanel_services::api_schema::Extra {
            name,
            schema: bool::schema(),
            required: true,
        };
        settings::settings_schema_with(vec![
            set("stripe_secret_key_set"),
            set("stripe_webhook_secret_set"),
        ])
    }
}

impl ToSchema for SettingsView {
    fn schemas(
        out: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <settings::BillingSettings as ToSchema>::schemas(out);
    }
}

fn settings_view(s: settings::LoadedSettings) -> SettingsView {
    SettingsView {
        settings: s.settings,
        stripe_secret_key_set: s.stripe_secret_key.is_some(),
        stripe_webhook_secret_set: s.stripe_webhook_secret.is_some(),
    }
}

/// Billing settings: seller details, tax mode and rates, payment terms.
#[utoipa::path(get, path = "/api/billing/settings", tag = "billing",
    security(("bearer" = ["BILLING_SETTINGS_WRITE"])),
    responses((status = 200, description = "The settings", body = SettingsView)))]
pub async fn get_settings(
    cx: Ctx<perm::BillingSettingsWrite>,
) -> Result<Json<SettingsView>, Problem> {
    Ok(Json(settings_view(settings::get(&cx).await?)))
}

/// Replace the billing settings; Stripe keys are write-only.
#[utoipa::path(put, path = "/api/billing/settings", tag = "billing", request_body = settings::SettingsUpdate,
    security(("bearer" = ["BILLING_SETTINGS_WRITE"])),
    responses((status = 200, description = "The settings", body = SettingsView),
        (status = 422, description = "A value breaks a rule")))]
pub async fn put_settings(
    cx: Ctx<perm::BillingSettingsWrite>,
    ApiJson(body): ApiJson<settings::SettingsUpdate>,
) -> Result<Json<SettingsView>, Problem> {
    Ok(Json(settings_view(settings::update(&cx, body).await?)))
}
