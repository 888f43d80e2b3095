//! What moved money on an invoice (its payments and credit notes) and what
//! a customer holds as credit: read views for staff.

use mpanel_domain::billing::payment::{CreditDisposition, PaymentStatus};
use mpanel_domain::{CreditNoteId, CustomerId, InvoiceId, PaymentId};
use mpanel_store::billing::{CreditBalance, CreditNoteRecord, PaymentRecord};
use serde::Serialize;
use time::OffsetDateTime;

use crate::{Context, ServiceError};

/// An invoice's payments and credit notes, oldest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Movements {
    pub payments: Vec<PaymentView>,
    pub credit_notes: Vec<CreditNoteLine>,
}

/// Money received against an invoice.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PaymentView {
    pub id: PaymentId,
    #[schema(value_type = mpanel_domain::billing::payment::PaymentProvider)]
    pub provider: String,
    pub reference: Option<String>,
    pub currency: String,
    pub amount_minor: i64,
    /// The part that paid the invoice (the rest went to credit).
    pub applied_minor: i64,
    pub refunded_minor: i64,
    #[schema(value_type = PaymentStatus)]
    pub status: String,
    pub failure: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A credit note as listed on its invoice.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreditNoteLine {
    pub id: CreditNoteId,
    pub number: String,
    pub currency: String,
    pub amount_minor: i64,
    #[schema(value_type = CreditDisposition)]
    pub disposition: String,
    pub reason: String,
    pub payment_id: Option<PaymentId>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A customer's credit, one balance per currency.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CustomerCredit {
    pub balances: Vec<Balance>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Balance {
    pub currency: String,
    pub balance_minor: i64,
}

impl From<PaymentRecord> for PaymentView {
    fn from(p: PaymentRecord) -> Self {
        Self {
            id: p.id,
            provider: p.provider,
            reference: p.reference,
            currency: p.currency,
            amount_minor: p.amount_minor,
            applied_minor: p.applied_minor,
            refunded_minor: p.refunded_minor,
            status: p.status,
            failure: p.failure,
            created_at: p.created_at,
        }
    }
}

impl From<CreditNoteRecord> for CreditNoteLine {
    fn from(n: CreditNoteRecord) -> Self {
        Self {
            id: n.id,
            number: n.number,
            currency: n.currency,
            amount_minor: n.amount_minor,
            disposition: n.disposition,
            reason: n.reason,
            payment_id: n.payment_id,
            created_at: n.created_at,
        }
    }
}

impl From<CreditBalance> for Balance {
    fn from(b: CreditBalance) -> Self {
        Self {
            currency: b.currency,
            balance_minor: b.balance_minor,
        }
    }
}

/// The invoice's payments and credit notes; `NotFound` for another
/// tenant's invoice.
pub async fn of_invoice(cx: &Context, invoice: InvoiceId) -> Result<Movements, ServiceError> {
    let store = &cx.store;
    let tenant = cx.tenant_id();
    store
        .invoice(tenant, invoice)
        .await?
        .ok_or_else(ServiceError::missing("invoice"))?;
    let payments = store.payments_of(tenant, invoice).await?;
    let notes = store.credit_notes_of(tenant, invoice).await?;
    Ok(Movements {
        payments: payments.into_iter().map(PaymentView::from).collect(),
        credit_notes: notes.into_iter().map(CreditNoteLine::from).collect(),
    })
}

/// The customer's credit balances; `NotFound` for another tenant's customer.
pub async fn customer_credit(
    cx: &Context,
    customer: CustomerId,
) -> Result<CustomerCredit, ServiceError> {
    let store = &cx.store;
    let tenant = cx.tenant_id();
    store
        .customer(tenant, customer)
        .await?
        .ok_or_else(ServiceError::missing("customer"))?;
    let balances = store.credit_balances(tenant, customer).await?;
    Ok(CustomerCredit {
        balances: balances.into_iter().map(Balance::from).collect(),
    })
}
