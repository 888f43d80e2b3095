//! Paying an invoice by card: Stripe's payment element on a page of its
//! own, the only console page whose CSP lets Stripe.js in. The invoice's
//! page then waits for Stripe's webhook to record the payment.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use mpanel_domain::identity::Permission;
use mpanel_services::ServiceError;
use mpanel_services::billing::card_payment;
use mpanel_services::billing::invoices::{self, InvoiceView};
use mpanel_services::billing::stripe::StripeInBrowser;
use serde::Serialize;

use super::session::Viewer;
use super::view::{PageError, page};
use crate::AppState;

#[derive(Serialize)]
struct PayPage {
    invoice: InvoiceView,
    amount_minor: i64,
    currency: String,
    publishable_key: String,
    client_secret: String,
    stripe_js: String,
}

/// `GET /invoices/{id}/pay`.
pub async fn pay(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(raw): Path<String>,
) -> Result<Response, PageError> {
    let id = super::invoices::visible(&viewer, &raw).await?;
    viewer.require(Permission::InvoicesPay)?;
    let invoice = invoices::get(&viewer, id).await?;
    if !super::invoices::payable(&invoice) {
        return Ok(Redirect::to(&format!("/invoices/{id}")).into_response());
    }
    let started = card_payment::start(&viewer, &state.stripe, id)
        .await
        .map_err(unavailable)?;
    let browser = state.stripe.browser();
    let data = PayPage {
        amount_minor: started.intent.amount_minor,
        currency: started.intent.currency,
        publishable_key: started.publishable_key,
        client_secret: started.client_secret,
        stripe_js: browser.js_url.clone(),
        invoice,
    };
    let title = format!(
        "Pay invoice {}",
        data.invoice.number.as_deref().unwrap_or("")
    );
    let mut res = page(&viewer, "/invoices", &title, "invoice_pay.html", data)?;
    if let Ok(csp) = HeaderValue::from_str(&csp(&browser)) {
        res.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    Ok(res)
}

/// Stripe down or refusing: said in the customer's words (Stripe's own
/// message, which may name the provider's key, goes to the log).
fn unavailable(err: ServiceError) -> PageError {
    match err {
        ServiceError::Busy => PageError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Card payments cannot be taken right now: Stripe could not be reached. Please try again in a few minutes.",
        ),
        ServiceError::Conflict(message) if message.starts_with("Stripe refused") => {
            tracing::warn!(%message, "Stripe refused a card payment's intent");
            PageError::new(
                StatusCode::CONFLICT,
                "Card payments cannot be taken for this invoice right now. Please contact us, or pay by bank transfer.",
            )
        }
        other => other.into(),
    }
}

/// The console's CSP with Stripe.js's sources added, as Stripe's guide
/// lists them.
fn csp(stripe: &StripeInBrowser) -> String {
    format!(
        "default-src 'none'; script-src 'self' {script}; style-src 'self'; \
         img-src 'self' data:; connect-src 'self' {connect}; frame-src {frame}; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        script = stripe.script_src,
        connect = stripe.connect_src,
        frame = stripe.frame_src,
    )
}
