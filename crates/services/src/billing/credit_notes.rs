//! Credit notes (`CN-YYYY-NNNNNN`, numbered like invoices) against an
//! issued invoice: they lower what is still owed (`REDUCE_BALANCE`), give
//! paid money back (`REFUND`), or keep paid money as the customer's credit
//! (`CREDIT`).

use mpanel_domain::billing::invoice::{self, InvoiceStatus};
use mpanel_domain::billing::payment::{CreditDisposition, PaymentProvider, refund_status};
use mpanel_domain::{CreditNoteId, InvoiceId, PaymentId};
use mpanel_store::billing::{CreditEntry, CreditNoteRecord, InvoiceMoney, InvoiceRecord};
use mpanel_store::{StoreError, TenantRecord, Tx};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use super::invoices::{balance, tenant_year};
use crate::actor::Change;
use crate::idempotency::{self, IdempotencyHold};
use crate::{Actor, Context, ServiceError};

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditNoteInput {
    pub amount_minor: i64,
    pub disposition: CreditDisposition,
    pub reason: String,
    /// For `REFUND`: the payment to refund (newest refundable otherwise).
    pub payment_id: Option<PaymentId>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct CreditNoteView {
    pub id: CreditNoteId,
    pub number: String,
    pub invoice_id: InvoiceId,
    pub currency: String,
    pub amount_minor: i64,
    pub disposition: String,
    pub reason: String,
    pub payment_id: Option<PaymentId>,
    pub invoice_status: String,
    pub amount_due_minor: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

fn view(n: &CreditNoteRecord, inv: &InvoiceRecord) -> CreditNoteView {
    CreditNoteView {
        id: n.id,
        number: n.number.clone(),
        invoice_id: n.invoice_id,
        currency: n.currency.clone(),
        amount_minor: n.amount_minor,
        disposition: n.disposition.clone(),
        reason: n.reason.clone(),
        payment_id: n.payment_id,
        invoice_status: inv.status.as_str().to_owned(),
        amount_due_minor: balance(inv).due(),
        created_at: n.created_at,
    }
}

/// Issues a credit note on the locked `inv`, inside `tx`.
/// `provider_refund` is the reference of a refund already made at the
/// provider (Stripe), recorded once; without it a Stripe payment is not
/// refunded here (Stripe's webhook records it).
pub(crate) async fn create_in(
    tx: &mut Tx,
    tenant: &TenantRecord,
    inv: InvoiceRecord,
    input: &CreditNoteInput,
    provider_refund: Option<String>,
    actor: &Actor,
    now: OffsetDateTime,
) -> Result<(CreditNoteRecord, InvoiceRecord), ServiceError> {
    let reason = check_input(&inv, input)?;
    let mut b = balance(&inv);
    apply_to_balance(&mut b, input.disposition, input.amount_minor)?;
    let step = Crediting {
        tenant,
        inv: &inv,
        input,
        now,
    };
    let payment_id = if input.disposition == CreditDisposition::Refund {
        Some(step.refund_payment(tx, provider_refund.is_some()).await?)
    } else {
        None
    };
    let note = step
        .insert_note(tx, reason, payment_id, provider_refund)
        .await?;
    let status = step.settle_invoice(tx, &b).await?;
    tx.record_audit(&actor.audit(Change {
        tenant: tenant.id,
        action: "credit_note.create",
        target_type: "invoice",
        target_id: inv.id.to_string(),
        before: Some(json!({"status": inv.status.as_str(), "credited_minor": inv.credited_minor, "refunded_minor": inv.refunded_minor})),
        after: Some(json!({"status": status.as_str(), "credit_note": note.number, "disposition": note.disposition, "amount_minor": input.amount_minor})),
        at: now,
    }))
    .await?;
    let updated = tx
        .invoice_for_update(tenant.id, inv.id)
        .await?
        .ok_or_else(ServiceError::missing("invoice"))?;
    if status == InvoiceStatus::Paid && inv.status != InvoiceStatus::Paid {
        // Written off to zero: an order waiting on it goes ahead.
        super::payments::on_paid(tx, tenant, &updated, now).await?;
    }
    // The customer's credit after the subscriptions `on_paid` restores,
    // in the order billing takes them (see `payments::record_in`).
    if input.disposition == CreditDisposition::Credit {
        step.credit_customer(tx, &note).await?;
    }
    Ok((note, updated))
}

/// The note's trimmed reason, once the invoice can take a note and the
/// amount is positive.
fn check_input<'a>(
    inv: &InvoiceRecord,
    input: &'a CreditNoteInput,
) -> Result<&'a str, ServiceError> {
    if matches!(inv.status, InvoiceStatus::Draft | InvoiceStatus::Void) {
        return Err(ServiceError::Conflict(format!(
            "a credit note needs an issued invoice; this one is {}",
            inv.status.as_str()
        )));
    }
    let reason = input.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 || reason.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "reason",
            "must be 1 to 500 characters",
        ));
    }
    if input.amount_minor <= 0 {
        return Err(ServiceError::invalid(
            "amount_minor",
            "must be greater than zero",
        ));
    }
    Ok(reason)
}

/// Takes `amount` off what is due (`REDUCE_BALANCE`) or off what was paid
/// (`REFUND`, `CREDIT`), refusing more than there is.
fn apply_to_balance(
    b: &mut invoice::Balance,
    disposition: CreditDisposition,
    amount: i64,
) -> Result<(), ServiceError> {
    match disposition {
        CreditDisposition::ReduceBalance => {
            if amount > b.due() {
                return Err(ServiceError::invalid(
                    "amount_minor",
                    format!("only {} is still due", b.due()),
                ));
            }
            b.credited_minor += amount;
        }
        CreditDisposition::Refund | CreditDisposition::Credit => {
            if amount > b.received() {
                return Err(ServiceError::invalid(
                    "amount_minor",
                    format!("only {} was paid and not yet given back", b.received()),
                ));
            }
            b.credited_minor += amount;
            b.refunded_minor += amount;
        }
    }
    Ok(())
}

/// What the write steps of one credit note share, inside its transaction.
struct Crediting<'a> {
    tenant: &'a TenantRecord,
    /// The invoice as locked, before the note.
    inv: &'a InvoiceRecord,
    input: &'a CreditNoteInput,
    now: OffsetDateTime,
}

impl Crediting<'_> {
    /// Marks the refund on the payment it gives back (the one named, else
    /// the newest refundable); a Stripe payment only when Stripe already
    /// refunded it.
    async fn refund_payment(
        &self,
        tx: &mut Tx,
        refunded_at_provider: bool,
    ) -> Result<PaymentId, ServiceError> {
        let amount = self.input.amount_minor;
        let payments = tx.refundable_payments(self.tenant.id, self.inv.id).await?;
        let payment = match self.input.payment_id {
            Some(id) => payments.into_iter().find(|p| p.id == id).ok_or_else(|| {
                ServiceError::invalid("payment_id", "no refundable payment of this invoice")
            })?,
            None => payments.into_iter().next().ok_or_else(|| {
                ServiceError::invalid("amount_minor", "no payment of this invoice can be refunded")
            })?,
        };
        if payment.applied_minor - payment.refunded_minor < amount {
            return Err(ServiceError::invalid(
                "amount_minor",
                format!(
                    "payment {} has {} left to refund",
                    payment.id,
                    payment.applied_minor - payment.refunded_minor
                ),
            ));
        }
        if payment.provider == PaymentProvider::Stripe.as_str() && !refunded_at_provider {
            return Err(ServiceError::invalid(
                "payment_id",
                "refund Stripe payments in Stripe: its charge.refunded webhook records the credit note",
            ));
        }
        let refunded = payment.refunded_minor + amount;
        tx.set_payment_refunded(
            self.tenant.id,
            payment.id,
            refunded,
            refund_status(payment.applied_minor, refunded).as_str(),
            self.now,
        )
        .await?;
        Ok(payment.id)
    }

    /// The numbered note; a provider refund recorded before is a conflict.
    async fn insert_note(
        &self,
        tx: &mut Tx,
        reason: &str,
        payment_id: Option<PaymentId>,
        external_ref: Option<String>,
    ) -> Result<CreditNoteRecord, ServiceError> {
        let year = tenant_year(self.tenant, self.now)?;
        let sequence = tx.next_document_number(self.tenant.id, "CN", year).await?;
        let note = CreditNoteRecord {
            id: CreditNoteId::new(),
            tenant_id: self.tenant.id,
            invoice_id: self.inv.id,
            customer_id: self.inv.customer_id,
            number: invoice::number("CN", year, sequence),
            currency: self.inv.currency.clone(),
            amount_minor: self.input.amount_minor,
            disposition: self.input.disposition.as_str().to_owned(),
            reason: reason.to_owned(),
            payment_id,
            external_ref,
            created_at: self.now,
        };
        tx.insert_credit_note(&note).await.map_err(|e| match e {
            StoreError::Conflict(_) => {
                ServiceError::Conflict("this refund is already recorded".into())
            }
            other => other.into(),
        })?;
        Ok(note)
    }

    /// `CREDIT`: the money stays with the customer as credit.
    async fn credit_customer(
        &self,
        tx: &mut Tx,
        note: &CreditNoteRecord,
    ) -> Result<(), ServiceError> {
        tx.adjust_credit(&CreditEntry {
            tenant: self.tenant.id,
            customer: self.inv.customer_id,
            currency: &self.inv.currency,
            delta_minor: self.input.amount_minor,
            reason: "credit note",
            invoice: Some(self.inv.id),
            payment: None,
            credit_note: Some(note.id),
            at: self.now,
        })
        .await?;
        Ok(())
    }

    /// Writes the invoice's new amounts and status (a paid invoice stays
    /// paid; an open one may now be settled); answers the status.
    async fn settle_invoice(
        &self,
        tx: &mut Tx,
        b: &invoice::Balance,
    ) -> Result<InvoiceStatus, ServiceError> {
        let inv = self.inv;
        let status = match inv.status {
            InvoiceStatus::Paid => InvoiceStatus::Paid,
            open => b.settled_status(open),
        };
        let money = InvoiceMoney {
            status,
            paid_minor: b.paid_minor,
            credited_minor: b.credited_minor,
            refunded_minor: b.refunded_minor,
            paid_at: if status == InvoiceStatus::Paid {
                inv.paid_at.or(Some(self.now))
            } else {
                inv.paid_at
            },
        };
        tx.update_invoice_money(self.tenant.id, inv.id, &money, self.now)
            .await?;
        Ok(status)
    }
}

/// `POST /api/billing/invoices/:id/credit-notes`.
pub async fn create(
    cx: &Context,
    id: InvoiceId,
    input: CreditNoteInput,
    hold: Option<&IdempotencyHold>,
) -> Result<CreditNoteView, ServiceError> {
    let store = &cx.store;
    let tenant = &cx.tenant;
    let actor = &cx.actor;
    let now = cx.now();
    let mut tx = store.begin().await?;
    let inv = tx
        .invoice_for_update(tenant.id, id)
        .await?
        .ok_or_else(ServiceError::missing("invoice"))?;
    let (note, updated) = create_in(&mut tx, tenant, inv, &input, None, actor, now).await?;
    let out = view(&note, &updated);
    idempotency::finish(&mut tx, tenant.id, hold, 201, &out).await?;
    tx.commit().await?;
    Ok(out)
}
