//! Invoices: staff see the tenant's (filtered by state and customer),
//! record payments and void; a customer sees their own issued ones. Both
//! download the PDF. Another customer's invoice is the not-found page.

use std::str::FromStr;

use axum::Form;
use axum::extract::{Path, Query};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use mpanel_domain::InvoiceId;
use mpanel_domain::billing::payment::{CreditDisposition, PaymentProvider};
use mpanel_domain::catalog::Currency;
use mpanel_domain::identity::Permission;
use mpanel_services::billing::card_payment;
use mpanel_services::billing::credit_notes::{self, CreditNoteInput};
use mpanel_services::billing::documents;
use mpanel_services::billing::invoices::{self, InvoiceView};
use mpanel_services::billing::payments::{self, PaymentInput};
use mpanel_services::customers;
use serde::{Deserialize, Serialize};

use super::amount;
use super::listing::Listed;
use super::session::Viewer;
use super::view::{PageError, page};
use super::{Done, Notice, confirm};
use crate::idempotency::{self, Idempotent};
use crate::query::Page;
use crate::routes::invoices::{ListFilter, list_for, pdf_response};

const STATES: [&str; 6] = [
    "DRAFT",
    "ISSUED",
    "PARTIALLY_PAID",
    "OVERDUE",
    "PAID",
    "VOID",
];

#[derive(Serialize)]
struct InvoicesPage {
    invoices: Vec<InvoiceView>,
    next_href: Option<String>,
    status: String,
    customer_id: String,
    states: [&'static str; 6],
}

/// `GET /invoices`.
pub async fn list(viewer: Viewer, listed: Listed<ListFilter>) -> Result<Response, PageError> {
    let Listed { listing, links } = listed;
    let status = links.value("status");
    let customer_id = links.value("customer_id");
    let found: Page<InvoiceView> = if viewer.is_staff() {
        viewer.require(Permission::InvoicesRead)?;
        list_for(&viewer, listing, None).await?
    } else {
        match customers::own(&viewer).await? {
            Some(own) => list_for(&viewer, listing, Some(own)).await?,
            None => Page::empty(),
        }
    };
    let data = InvoicesPage {
        next_href: links.next_href(found.next_cursor.as_deref()),
        invoices: found.items,
        status,
        customer_id,
        states: STATES,
    };
    page(&viewer, "/invoices", "Invoices", "invoices.html", data)
}

/// The invoice, if the viewer may see it (a customer: their own issued
/// invoices only).
pub(super) async fn visible(viewer: &Viewer, raw: &str) -> Result<InvoiceId, PageError> {
    let id: InvoiceId = raw.parse().map_err(|_| PageError::not_found())?;
    if viewer.is_staff() {
        viewer.require(Permission::InvoicesRead)?;
    } else if !invoices::is_customers_own(viewer, id).await? {
        return Err(PageError::not_found());
    }
    Ok(id)
}

#[derive(Serialize)]
struct InvoicePage {
    invoice: InvoiceView,
    amount_due: String,
    may_pay: bool,
    may_void: bool,
    may_issue: bool,
    may_credit: bool,
    /// The key the payment form sends.
    payment_key: String,
    notice: Option<Notice>,
    /// A card payment is offered (Stripe is set up, something is due).
    may_pay_card: bool,
    /// Back from Stripe's payment page: what the page says of it.
    card: CardState,
}

/// Back from Stripe's payment page (`?paying=1`, with Stripe's
/// `redirect_status`), and the how-many-th look at the invoice this is.
#[derive(Deserialize, Default)]
pub struct Paying {
    paying: Option<String>,
    n: Option<u32>,
    redirect_status: Option<String>,
}

/// A card payment as the invoice's page tells it.
#[derive(Serialize, PartialEq)]
#[serde(tag = "state", rename_all = "SCREAMING_SNAKE_CASE")]
enum CardState {
    None,
    /// Stripe's webhook is awaited; the page looks again (`next`).
    Waiting {
        next: u32,
    },
    /// Looked long enough: the payment may still come.
    GaveUp,
    /// Stripe said the payment failed (a 3-D Secure check, say).
    Failed,
}

/// Looks at an invoice whose card payment Stripe has yet to report: two
/// seconds apart, five minutes at most.
const MAX_LOOKS: u32 = 150;

/// `GET /invoices/{id}`.
pub async fn show(
    viewer: Viewer,
    Path(raw): Path<String>,
    Query(done): Query<Done>,
    Query(paying): Query<Paying>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let id = visible(&viewer, &raw).await?;
    let invoice = invoices::get(&viewer, id).await?;
    let allowed = |s: &str| invoice.allowed_transitions.contains(&s);
    let payable = payable(&invoice);
    if paying.paying.is_some() && invoice.status == "PAID" {
        // Paid while the page looked: shown afresh, with thanks.
        let to = format!("/invoices/{id}?done=card_paid");
        return Ok(if headers.contains_key("hx-request") {
            ([("hx-redirect", to)], "").into_response()
        } else {
            Redirect::to(&to).into_response()
        });
    }
    let card = card_state(&paying, payable);
    let may_pay_card = payable
        && matches!(card, CardState::None | CardState::Failed)
        && viewer.may(Permission::InvoicesPay)
        && card_payment::publishable_key(&viewer).await?.is_some();
    let data = InvoicePage {
        may_pay_card,
        card,
        amount_due: major(invoice.amount_due_minor, &invoice.currency),
        may_pay: viewer.may(Permission::PaymentsWrite) && payable,
        may_void: viewer.may(Permission::InvoicesWrite) && allowed("VOID"),
        may_issue: viewer.may(Permission::InvoicesWrite) && invoice.status == "DRAFT",
        may_credit: viewer.may(Permission::InvoicesWrite)
            && invoice.number.is_some()
            && invoice.status != "VOID"
            && invoice.total_minor > invoice.credited_minor,
        payment_key: uuid::Uuid::now_v7().to_string(),
        notice: done.notice(),
        invoice,
    };
    let title = format!(
        "Invoice {}",
        data.invoice
            .number
            .clone()
            .unwrap_or_else(|| "draft".into())
    );
    page(&viewer, "/invoices", &title, "invoice.html", data)
}

/// Whether something is owed on the invoice and it can still be paid.
pub(super) fn payable(invoice: &InvoiceView) -> bool {
    let allowed = |s: &str| invoice.allowed_transitions.contains(&s);
    invoice.amount_due_minor > 0 && (allowed("PAID") || allowed("PARTIALLY_PAID"))
}

fn card_state(paying: &Paying, payable: bool) -> CardState {
    let look = paying.n.unwrap_or(0);
    match (&paying.paying, paying.redirect_status.as_deref()) {
        (None, _) => CardState::None,
        _ if !payable => CardState::None,
        (_, Some("failed")) => CardState::Failed,
        _ if look >= MAX_LOOKS => CardState::GaveUp,
        _ => CardState::Waiting { next: look + 1 },
    }
}

/// `GET /invoices/{id}/pdf`.
pub async fn pdf(viewer: Viewer, Path(raw): Path<String>) -> Result<Response, PageError> {
    let id = visible(&viewer, &raw).await?;
    let (name, bytes) = documents::invoice_pdf(&viewer, id).await?;
    Ok(pdf_response(&name, bytes))
}

/// An amount in major units as typed (`12.5` → `12.50` in EUR).
fn major(minor: i64, currency: &str) -> String {
    Currency::parse(currency)
        .map(|c| mpanel_domain::billing::money::from_minor(minor, c).to_string())
        .unwrap_or_else(|_| minor.to_string())
}

#[derive(Deserialize)]
pub struct PaymentForm {
    amount: String,
    provider: String,
    #[serde(default)]
    reference: String,
    /// Made when the page was shown: the same form sent twice records
    /// one payment.
    #[serde(default)]
    idempotency_key: String,
}

/// `POST /invoices/{id}/payments`: a payment staff record by hand.
pub async fn record_payment(
    viewer: Viewer,
    Path(raw): Path<String>,
    Form(f): Form<PaymentForm>,
) -> Result<Response, PageError> {
    viewer.require(Permission::PaymentsWrite)?;
    let id = visible(&viewer, &raw).await?;
    let invoice = invoices::get(&viewer, id).await?;
    let currency = amount::currency(&invoice.currency)?;
    let amount_minor = amount::minor(&f.amount, currency, "Amount", false)?;
    let provider =
        PaymentProvider::from_str(&f.provider).map_err(|e| amount::unprocessable(e.to_string()))?;
    let reference = Some(f.reference.trim().to_owned()).filter(|r| !r.is_empty());
    let fields = serde_json::json!({"amount_minor": amount_minor, "provider": provider.as_str(),
        "reference": reference});
    let input = PaymentInput {
        amount_minor,
        provider,
        reference,
        currency: None,
    };
    let path = format!("/invoices/{id}/payments");
    let request = Idempotent::of_form(&f.idempotency_key, &path, &fields, input);
    let (cx, body) = (&viewer.cx, &request.body);
    idempotency::run(cx, &request, |hold| async move {
        payments::pay(cx, id, body.clone(), hold.as_ref()).await
    })
    .await?;
    Ok(Redirect::to(&format!("/invoices/{id}?done=payment_recorded")).into_response())
}

/// `GET /invoices/{id}/void`: asks first.
pub async fn void_confirm(viewer: Viewer, Path(raw): Path<String>) -> Result<Response, PageError> {
    viewer.require(Permission::InvoicesWrite)?;
    let id = visible(&viewer, &raw).await?;
    let invoice = invoices::get(&viewer, id).await?;
    confirm(
        &viewer,
        "/invoices",
        confirm::Question {
            title: "Void this invoice?".into(),
            detail: format!(
                "Invoice {} for {} will be void: the customer no longer owes it. This cannot be undone.",
                invoice.number.unwrap_or_else(|| "draft".into()),
                documents::money(invoice.total_minor, &invoice.currency)
            ),
            action: format!("/invoices/{id}/void"),
            button: "Void the invoice".into(),
            back: format!("/invoices/{id}"),
        },
    )
}

/// `POST /invoices/{id}/void`.
pub async fn void(viewer: Viewer, Path(raw): Path<String>) -> Result<Response, PageError> {
    viewer.require(Permission::InvoicesWrite)?;
    let id = visible(&viewer, &raw).await?;
    invoices::void(&viewer, id).await?;
    Ok(Redirect::to(&format!("/invoices/{id}?done=invoice_voided")).into_response())
}

/// `POST /invoices/{id}/issue`: a draft numbered and sent.
pub async fn issue(viewer: Viewer, Path(raw): Path<String>) -> Result<Response, PageError> {
    viewer.require(Permission::InvoicesWrite)?;
    let id = visible(&viewer, &raw).await?;
    invoices::issue(&viewer, id).await?;
    Ok(Redirect::to(&format!("/invoices/{id}?done=invoice_issued")).into_response())
}

#[derive(Deserialize)]
pub struct CreditForm {
    amount: String,
    disposition: String,
    reason: String,
    #[serde(default)]
    idempotency_key: String,
}

/// `POST /invoices/{id}/credit-notes`: part or all of an issued invoice
/// taken back (owed less, money refunded or kept as credit).
pub async fn credit_note(
    viewer: Viewer,
    Path(raw): Path<String>,
    Form(f): Form<CreditForm>,
) -> Result<Response, PageError> {
    viewer.require(Permission::InvoicesWrite)?;
    let id = visible(&viewer, &raw).await?;
    let invoice = invoices::get(&viewer, id).await?;
    let currency = amount::currency(&invoice.currency)?;
    let amount_minor = amount::minor(&f.amount, currency, "Amount", false)?;
    let disposition = CreditDisposition::from_str(&f.disposition)
        .map_err(|e| amount::unprocessable(e.to_string()))?;
    let fields = serde_json::json!({"amount_minor": amount_minor, "disposition": disposition.as_str(),
        "reason": f.reason});
    let input = CreditNoteInput {
        amount_minor,
        disposition,
        reason: f.reason,
        payment_id: None,
    };
    let path = format!("/invoices/{id}/credit-notes");
    let request = Idempotent::of_form(&f.idempotency_key, &path, &fields, input);
    let (cx, body) = (&viewer.cx, &request.body);
    idempotency::run(cx, &request, |hold| async move {
        credit_notes::create(cx, id, body.clone(), hold.as_ref()).await
    })
    .await?;
    Ok(Redirect::to(&format!("/invoices/{id}?done=credit_note_issued")).into_response())
}
