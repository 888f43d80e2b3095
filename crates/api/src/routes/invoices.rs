//! `/api/billing/invoices`: drafts, issue, void, payments, credit notes and
//! PDFs for staff; `/api/me/invoices` for the customer.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mpanel_domain::billing::invoice::InvoiceStatus;
use mpanel_domain::{CreditNoteId, InvoiceId, TenantId};
use mpanel_services::billing::credit_notes::{self, CreditNoteInput};
use mpanel_services::billing::invoices::{self, DraftInput, InvoiceView};
use mpanel_services::billing::payments::{self, PaymentInput};
use mpanel_services::billing::{documents, settings};
use mpanel_store::TenantRecord;
use mpanel_store::billing::InvoiceFilter;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::caller::{Authorized, perm};
use crate::idempotency::{self, Idempotent};
use crate::json::ApiJson;
use crate::openapi::ProblemDoc;
use crate::problem::codes;
use crate::query::{self, ApiQuery, Page};
use crate::{AppState, Problem};

/// An invoice (lines only on a single one). See docs/billing.md.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct InvoiceDoc {
    id: String,
    number: Option<String>,
    /// DRAFT, ISSUED, PARTIALLY_PAID, PAID, OVERDUE, VOID.
    status: String,
    customer_id: String,
    currency: String,
    subtotal_minor: i64,
    tax_minor: i64,
    total_minor: i64,
    paid_minor: i64,
    amount_due_minor: i64,
    allowed_transitions: Vec<String>,
    #[schema(value_type = Option<Vec<Object>>)]
    lines: Option<Vec<Value>>,
}

/// `{customer_id, currency?, lines: [{kind, source?, description, quantity, unit_price, subscription_id?}], notes?}`;
/// decimals as strings.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct DraftDoc {
    customer_id: String,
    currency: Option<String>,
    #[schema(value_type = Vec<Object>)]
    lines: Vec<Value>,
    notes: Option<Vec<String>>,
}

/// `{amount_minor, provider: MANUAL | BANK_TRANSFER, reference?, currency?}`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct PaymentDoc {
    amount_minor: i64,
    provider: String,
    reference: Option<String>,
    currency: Option<String>,
}

/// `{amount_minor, disposition: REDUCE_BALANCE | REFUND | CREDIT, reason, payment_id?}`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct CreditNoteDoc {
    amount_minor: i64,
    disposition: String,
    reason: String,
    payment_id: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// As a reader sees it (an open invoice past due is OVERDUE).
    #[param(pattern = "^(DRAFT|ISSUED|PARTIALLY_PAID|PAID|OVERDUE|VOID)$")]
    status: Option<String>,
    customer_id: Option<Uuid>,
    /// Issued at or after (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<OffsetDateTime>)]
    from: Option<OffsetDateTime>,
    /// Issued before (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<OffsetDateTime>)]
    to: Option<OffsetDateTime>,
    /// 1 to 200; default 50.
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<uuid::Uuid>)]
    cursor: Option<String>,
}

pub(crate) async fn tenant_of(state: &AppState, id: TenantId) -> Result<TenantRecord, Problem> {
    state
        .store
        .tenant(id)
        .await?
        .ok_or_else(|| Problem::not_found("No such tenant."))
}

fn invoice_id(raw: &str) -> Result<InvoiceId, Problem> {
    raw.parse()
        .map_err(|_| Problem::not_found("No such invoice."))
}

async fn list_for(
    state: &AppState,
    tenant: TenantId,
    q: ListQuery,
    customer: Option<Uuid>,
) -> Result<Page<InvoiceView>, Problem> {
    let limit = query::limit(q.limit)?;
    let status = q
        .status
        .as_deref()
        .map(|s| {
            s.parse::<InvoiceStatus>().map_err(|m| {
                Problem::new(StatusCode::UNPROCESSABLE_ENTITY, codes::INVALID_QUERY, m)
                    .with("field", "status")
            })
        })
        .transpose()?;
    let filter = InvoiceFilter {
        status,
        customer: customer.or(q.customer_id),
        // One representation for both engines (SQLite compares text).
        from: q.from.map(|t| t.to_offset(time::UtcOffset::UTC)),
        to: q.to.map(|t| t.to_offset(time::UtcOffset::UTC)),
        before: query::cursor::<InvoiceId>(q.cursor.as_deref())?,
        limit: limit + 1,
        issued_only: customer.is_some(),
    };
    let now = state.clock.now();
    let fetched = state.store.list_invoices(tenant, &filter, now).await?;
    Ok(Page::from_fetched(
        fetched,
        limit,
        |i| i.id.to_string(),
        |i| invoices::view(i, None, now),
    ))
}

/// The tenant's invoices, newest first.
#[utoipa::path(get, path = "/api/billing/invoices", tag = "billing", params(ListQuery),
    security(("bearer" = ["INVOICES_READ"])),
    responses((status = 200, description = "A page of invoices", body = Object)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Authorized<perm::InvoicesRead>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<InvoiceView>>, Problem> {
    Ok(Json(
        list_for(&state, caller.principal.tenant_id, q, None).await?,
    ))
}

/// A draft invoice for a customer (`Idempotency-Key` honoured).
#[utoipa::path(post, path = "/api/billing/invoices", tag = "billing", request_body = DraftDoc,
    security(("bearer" = ["INVOICES_WRITE"])),
    responses((status = 201, description = "The draft", body = InvoiceDoc),
        (status = 422, description = "A line or the customer is not valid", body = ProblemDoc, content_type = "application/problem+json")))]
pub async fn create(
    State(state): State<AppState>,
    caller: Authorized<perm::InvoicesWrite>,
    request: Idempotent<DraftInput>,
) -> Result<Response, Problem> {
    let tenant = tenant_of(&state, caller.principal.tenant_id).await?;
    let (st, ten, act, body) = (&state, &tenant, &caller.actor, &request.body);
    idempotency::run(&state, tenant.id, &request, |hold| async move {
        invoices::create_draft(
            &st.store,
            st.clock.as_ref(),
            ten,
            act,
            body.clone(),
            hold.as_ref(),
        )
        .await
    })
    .await
}

/// One invoice with its lines.
#[utoipa::path(get, path = "/api/billing/invoices/{id}", tag = "billing",
    params(("id" = String, Path)), security(("bearer" = ["INVOICES_READ"])),
    responses((status = 200, description = "The invoice", body = InvoiceDoc),
        (status = 404, description = "No such invoice", body = ProblemDoc, content_type = "application/problem+json")))]
pub async fn get(
    State(state): State<AppState>,
    caller: Authorized<perm::InvoicesRead>,
    Path(id): Path<String>,
) -> Result<Json<InvoiceView>, Problem> {
    Ok(Json(
        invoices::get(
            &state.store,
            state.clock.as_ref(),
            caller.principal.tenant_id,
            invoice_id(&id)?,
        )
        .await?,
    ))
}

/// Replace a draft's lines (an issued invoice is frozen: 409).
#[utoipa::path(put, path = "/api/billing/invoices/{id}", tag = "billing", request_body = DraftDoc,
    params(("id" = String, Path)), security(("bearer" = ["INVOICES_WRITE"])),
    responses((status = 200, description = "The draft", body = InvoiceDoc),
        (status = 409, description = "Not a draft", body = ProblemDoc, content_type = "application/problem+json")))]
pub async fn update(
    State(state): State<AppState>,
    caller: Authorized<perm::InvoicesWrite>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DraftInput>,
) -> Result<Json<InvoiceView>, Problem> {
    let id = invoice_id(&id)?;
    let tenant = tenant_of(&state, caller.principal.tenant_id).await?;
    Ok(Json(
        invoices::update_draft(
            &state.store,
            state.clock.as_ref(),
            &tenant,
            &caller.actor,
            id,
            body,
        )
        .await?,
    ))
}

/// Issue a draft: number, snapshot, freeze; the customer's credit pays
/// what it can.
#[utoipa::path(post, path = "/api/billing/invoices/{id}/issue", tag = "billing",
    params(("id" = String, Path)), security(("bearer" = ["INVOICES_WRITE"])),
    responses((status = 200, description = "Issued", body = InvoiceDoc),
        (status = 409, description = "Not a draft (`invalid_transition`, with `allowed`)", body = ProblemDoc, content_type = "application/problem+json")))]
pub async fn issue(
    State(state): State<AppState>,
    caller: Authorized<perm::InvoicesWrite>,
    Path(id): Path<String>,
) -> Result<Json<InvoiceView>, Problem> {
    let id = invoice_id(&id)?;
    let tenant = tenant_of(&state, caller.principal.tenant_id).await?;
    Ok(Json(
        invoices::issue(
            &state.store,
            state.clock.as_ref(),
            &tenant,
            &caller.actor,
            id,
        )
        .await?,
    ))
}

/// Void an invoice no money was received for.
#[utoipa::path(post, path = "/api/billing/invoices/{id}/void", tag = "billing",
    params(("id" = String, Path)), security(("bearer" = ["INVOICES_WRITE"])),
    responses((status = 200, description = "Void", body = InvoiceDoc),
        (status = 409, description = "Not allowed from its status, or money was received", body = ProblemDoc, content_type = "application/problem+json")))]
pub async fn void(
    State(state): State<AppState>,
    caller: Authorized<perm::InvoicesWrite>,
    Path(id): Path<String>,
) -> Result<Json<InvoiceView>, Problem> {
    let id = invoice_id(&id)?;
    let tenant = tenant_of(&state, caller.principal.tenant_id).await?;
    Ok(Json(
        invoices::void(
            &state.store,
            state.clock.as_ref(),
            &tenant,
            &caller.actor,
            id,
        )
        .await?,
    ))
}

/// Record a payment (`Idempotency-Key` honoured; a provider reference is
/// recorded once). Any excess goes to the customer's credit.
#[utoipa::path(post, path = "/api/billing/invoices/{id}/pay", tag = "billing", request_body = PaymentDoc,
    params(("id" = String, Path)), security(("bearer" = ["PAYMENTS_WRITE"])),
    responses((status = 201, description = "Recorded", body = Object),
        (status = 409, description = "Not payable from its status, or the reference is recorded", body = ProblemDoc, content_type = "application/problem+json")))]
pub async fn pay(
    State(state): State<AppState>,
    caller: Authorized<perm::PaymentsWrite>,
    Path(id): Path<String>,
    request: Idempotent<PaymentInput>,
) -> Result<Response, Problem> {
    let id = invoice_id(&id)?;
    let tenant = tenant_of(&state, caller.principal.tenant_id).await?;
    let (st, ten, act, body) = (&state, &tenant, &caller.actor, &request.body);
    idempotency::run(&state, tenant.id, &request, |hold| async move {
        payments::pay(
            &st.store,
            st.clock.as_ref(),
            ten,
            act,
            id,
            body.clone(),
            hold.as_ref(),
        )
        .await
    })
    .await
}

/// A credit note against an issued invoice (`Idempotency-Key` honoured).
#[utoipa::path(post, path = "/api/billing/invoices/{id}/credit-notes", tag = "billing", request_body = CreditNoteDoc,
    params(("id" = String, Path)), security(("bearer" = ["INVOICES_WRITE"])),
    responses((status = 201, description = "Issued", body = Object),
        (status = 422, description = "More than can be credited", body = ProblemDoc, content_type = "application/problem+json")))]
pub async fn credit_note(
    State(state): State<AppState>,
    caller: Authorized<perm::InvoicesWrite>,
    Path(id): Path<String>,
    request: Idempotent<CreditNoteInput>,
) -> Result<Response, Problem> {
    let id = invoice_id(&id)?;
    let tenant = tenant_of(&state, caller.principal.tenant_id).await?;
    let (st, ten, act, body) = (&state, &tenant, &caller.actor, &request.body);
    idempotency::run(&state, tenant.id, &request, |hold| async move {
        credit_notes::create(
            &st.store,
            st.clock.as_ref(),
            ten,
            act,
            id,
            body.clone(),
            hold.as_ref(),
        )
        .await
    })
    .await
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MoneyMovements {
    #[schema(value_type = Vec<Object>)]
    pub payments: Vec<Value>,
    #[schema(value_type = Vec<Object>)]
    pub credit_notes: Vec<Value>,
}

/// An invoice's payments and credit notes.
#[utoipa::path(get, path = "/api/billing/invoices/{id}/payments", tag = "billing",
    params(("id" = String, Path)), security(("bearer" = ["INVOICES_READ"])),
    responses((status = 200, description = "Payments and credit notes", body = MoneyMovements)))]
pub async fn movements(
    State(state): State<AppState>,
    caller: Authorized<perm::InvoicesRead>,
    Path(id): Path<String>,
) -> Result<Json<MoneyMovements>, Problem> {
    let id = invoice_id(&id)?;
    let tenant = caller.principal.tenant_id;
    state
        .store
        .invoice(tenant, id)
        .await
        .map_err(mpanel_services::ServiceError::not_found_as("invoice"))?;
    let payments = state.store.payments_of(tenant, id).await?;
    let notes = state.store.credit_notes_of(tenant, id).await?;
    Ok(Json(MoneyMovements {
        payments: payments
            .into_iter()
            .map(|p| {
                serde_json::json!({
                    "id": p.id, "provider": p.provider, "reference": p.reference, "currency": p.currency,
                    "amount_minor": p.amount_minor, "applied_minor": p.applied_minor,
                    "refunded_minor": p.refunded_minor, "status": p.status, "failure": p.failure,
                    "created_at": p.created_at.format(&time::format_description::well_known::Rfc3339).ok(),
                })
            })
            .collect(),
        credit_notes: notes
            .into_iter()
            .map(|n| {
                serde_json::json!({
                    "id": n.id, "number": n.number, "currency": n.currency, "amount_minor": n.amount_minor,
                    "disposition": n.disposition, "reason": n.reason, "payment_id": n.payment_id,
                    "created_at": n.created_at.format(&time::format_description::well_known::Rfc3339).ok(),
                })
            })
            .collect(),
    }))
}

fn pdf_response(name: &str, bytes: Vec<u8>) -> Response {
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
pub async fn pdf(
    State(state): State<AppState>,
    caller: Authorized<perm::InvoicesRead>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let (name, bytes) = documents::invoice_pdf(
        &state.store,
        caller.principal.tenant_id,
        invoice_id(&id)?,
        state.clock.now(),
    )
    .await?;
    Ok(pdf_response(&name, bytes))
}

/// A credit note as a PDF.
#[utoipa::path(get, path = "/api/billing/credit-notes/{id}/pdf", tag = "billing",
    params(("id" = String, Path)), security(("bearer" = ["INVOICES_READ"])),
    responses((status = 200, description = "application/pdf")))]
pub async fn credit_note_pdf(
    State(state): State<AppState>,
    caller: Authorized<perm::InvoicesRead>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let id: CreditNoteId = id
        .parse()
        .map_err(|_| Problem::not_found("No such credit note."))?;
    let (name, bytes) =
        documents::credit_note_pdf(&state.store, caller.principal.tenant_id, id).await?;
    Ok(pdf_response(&name, bytes))
}

/// A customer's credit balances, one per currency.
#[utoipa::path(get, path = "/api/billing/customers/{id}/credit", tag = "billing",
    params(("id" = String, Path)), security(("bearer" = ["INVOICES_READ"])),
    responses((status = 200, description = "`{balances: [{currency, balance_minor}]}`", body = Object)))]
pub async fn customer_credit(
    State(state): State<AppState>,
    caller: Authorized<perm::InvoicesRead>,
    Path(id): Path<String>,
) -> Result<Json<Value>, Problem> {
    let tenant = caller.principal.tenant_id;
    let id: Uuid = id
        .parse()
        .map_err(|_| Problem::not_found("No such customer."))?;
    state
        .store
        .customer(tenant, id)
        .await
        .map_err(mpanel_services::ServiceError::not_found_as("customer"))?;
    let balances = state.store.credit_balances(tenant, id).await?;
    Ok(Json(serde_json::json!({
        "balances": balances.iter().map(|b| serde_json::json!({"currency": b.currency, "balance_minor": b.balance_minor})).collect::<Vec<_>>()
    })))
}

/// The signed-in user's customer record, if any.
pub(crate) async fn own_customer(
    state: &AppState,
    caller: &mpanel_services::identity::Principal,
) -> Result<Option<Uuid>, Problem> {
    Ok(state
        .store
        .customer_of_user(caller.tenant_id, caller.user_id)
        .await?
        .map(|c| c.id))
}

/// The signed-in customer's invoices (issued ones).
#[utoipa::path(get, path = "/api/me/invoices", tag = "billing", params(ListQuery),
    security(("bearer" = ["SELF_READ"])),
    responses((status = 200, description = "A page of invoices", body = Object)))]
pub async fn my_list(
    State(state): State<AppState>,
    caller: Authorized<perm::SelfRead>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Page<InvoiceView>>, Problem> {
    // A caller without a customer record gets an empty page, but a bad
    // query is refused for everyone alike.
    query::limit(q.limit)?;
    let Some(customer) = own_customer(&state, &caller.principal).await? else {
        return Ok(Json(Page {
            items: Vec::new(),
            next_cursor: None,
        }));
    };
    Ok(Json(
        list_for(&state, caller.principal.tenant_id, q, Some(customer)).await?,
    ))
}

async fn my_invoice(
    state: &AppState,
    caller: &mpanel_services::identity::Principal,
    raw: &str,
) -> Result<InvoiceId, Problem> {
    let id = invoice_id(raw)?;
    let customer = own_customer(state, caller).await?;
    match state.store.invoice(caller.tenant_id, id).await {
        Ok(inv) if Some(inv.customer_id) == customer && inv.status != InvoiceStatus::Draft => {
            Ok(id)
        }
        Ok(_) | Err(mpanel_store::StoreError::NotFound) => {
            Err(Problem::not_found("No such invoice."))
        }
        Err(other) => Err(other.into()),
    }
}

/// One of the signed-in customer's invoices.
#[utoipa::path(get, path = "/api/me/invoices/{id}", tag = "billing",
    params(("id" = String, Path)), security(("bearer" = ["SELF_READ"])),
    responses((status = 200, description = "The invoice", body = InvoiceDoc),
        (status = 404, description = "Not one of yours", body = ProblemDoc, content_type = "application/problem+json")))]
pub async fn my_get(
    State(state): State<AppState>,
    caller: Authorized<perm::SelfRead>,
    Path(id): Path<String>,
) -> Result<Json<InvoiceView>, Problem> {
    let id = my_invoice(&state, &caller.principal, &id).await?;
    Ok(Json(
        invoices::get(
            &state.store,
            state.clock.as_ref(),
            caller.principal.tenant_id,
            id,
        )
        .await?,
    ))
}

/// One of the signed-in customer's invoices as a PDF.
#[utoipa::path(get, path = "/api/me/invoices/{id}/pdf", tag = "billing",
    params(("id" = String, Path)), security(("bearer" = ["SELF_READ"])),
    responses((status = 200, description = "application/pdf")))]
pub async fn my_pdf(
    State(state): State<AppState>,
    caller: Authorized<perm::SelfRead>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let id = my_invoice(&state, &caller.principal, &id).await?;
    let (name, bytes) = documents::invoice_pdf(
        &state.store,
        caller.principal.tenant_id,
        id,
        state.clock.now(),
    )
    .await?;
    Ok(pdf_response(&name, bytes))
}

/// The tenant's billing settings (Stripe keys: only whether they are set).
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsView {
    #[schema(value_type = Object)]
    #[serde(flatten)]
    pub settings: Value,
    pub stripe_secret_key_set: bool,
    pub stripe_webhook_secret_set: bool,
}

fn settings_view(s: settings::LoadedSettings) -> SettingsView {
    SettingsView {
        settings: serde_json::to_value(&s.settings).unwrap_or_default(),
        stripe_secret_key_set: s.stripe_secret_key.is_some(),
        stripe_webhook_secret_set: s.stripe_webhook_secret.is_some(),
    }
}

/// Billing settings: seller details, tax mode and rates, payment terms.
#[utoipa::path(get, path = "/api/billing/settings", tag = "billing",
    security(("bearer" = ["BILLING_SETTINGS_WRITE"])),
    responses((status = 200, description = "The settings", body = SettingsView)))]
pub async fn get_settings(
    State(state): State<AppState>,
    caller: Authorized<perm::BillingSettingsWrite>,
) -> Result<Json<SettingsView>, Problem> {
    Ok(Json(settings_view(
        settings::load(&state.store, caller.principal.tenant_id).await?,
    )))
}

/// Replace the billing settings; Stripe keys are write-only.
#[utoipa::path(put, path = "/api/billing/settings", tag = "billing", request_body = Object,
    security(("bearer" = ["BILLING_SETTINGS_WRITE"])),
    responses((status = 200, description = "The settings", body = SettingsView),
        (status = 422, description = "A value breaks a rule", body = ProblemDoc, content_type = "application/problem+json")))]
pub async fn put_settings(
    State(state): State<AppState>,
    caller: Authorized<perm::BillingSettingsWrite>,
    ApiJson(body): ApiJson<settings::SettingsUpdate>,
) -> Result<Json<SettingsView>, Problem> {
    Ok(Json(settings_view(
        settings::update(
            &state.store,
            state.clock.as_ref(),
            &caller.principal,
            &caller.actor,
            body,
        )
        .await?,
    )))
}
