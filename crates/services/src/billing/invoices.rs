//! Invoices: drafts that staff edit, issuing (which prices the lines under
//! the tax rules of that moment, takes the next gapless number in the
//! tenant's year, freezes everything and applies the customer's credit),
//! voiding, and what readers see.

use mpanel_domain::billing::compute::compute;
use mpanel_domain::billing::invoice::{self, InvoiceStatus, effective_status};
use mpanel_domain::billing::tax::Treatment;
use mpanel_domain::catalog::Currency;
use mpanel_domain::webhooks::EventType;
use mpanel_domain::{Clock, CustomerId, InvoiceId, OrderId, SubscriptionId, TenantId};
use mpanel_store::billing::{InvoiceFilter, InvoiceLineRecord, InvoiceRecord, IssueFields};
use mpanel_store::orders::CustomerRecord;
use mpanel_store::{Store, TenantRecord, Tx};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::lines::LineIn;
use super::payments;
use super::settings::{self, BillingSettings};
use crate::actor::Change;
use crate::idempotency::{self, IdempotencyHold};
use crate::{Actor, Context, ServiceError};

/// A draft: its customer, currency and lines.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftInput {
    pub customer_id: CustomerId,
    /// The tenant's default currency when left out.
    #[schema(pattern = "^[A-Za-z]{3}$")]
    pub currency: Option<String>,
    pub lines: Vec<LineIn>,
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct LineView {
    pub id: Uuid,
    pub kind: String,
    pub source: String,
    pub description: String,
    pub quantity: String,
    pub unit_price: String,
    pub amount_minor: i64,
    pub tax_rate: String,
    pub net_minor: i64,
    pub tax_minor: i64,
    pub subscription_id: Option<SubscriptionId>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct InvoiceView {
    pub id: InvoiceId,
    pub number: Option<String>,
    /// As of now: an open invoice past its due date reads `OVERDUE`.
    #[schema(value_type = InvoiceStatus)]
    pub status: String,
    pub customer_id: CustomerId,
    pub order_id: Option<OrderId>,
    pub currency: String,
    pub tax_mode: String,
    pub subtotal_minor: i64,
    pub tax_minor: i64,
    pub total_minor: i64,
    pub paid_minor: i64,
    pub credited_minor: i64,
    pub refunded_minor: i64,
    pub amount_due_minor: i64,
    /// The customer and seller as frozen at issue.
    pub customer: Option<Value>,
    pub seller: Option<Value>,
    pub notes: Vec<String>,
    pub disputed: bool,
    /// The statuses it may move to from here.
    #[schema(value_type = Vec<InvoiceStatus>)]
    pub allowed_transitions: Vec<&'static str>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub issued_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub due_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub paid_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub voided_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Only on a single invoice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<LineView>>,
}

pub fn balance(inv: &InvoiceRecord) -> invoice::Balance {
    invoice::Balance {
        total_minor: inv.total_minor,
        paid_minor: inv.paid_minor,
        credited_minor: inv.credited_minor,
        refunded_minor: inv.refunded_minor,
    }
}

pub fn view(
    inv: InvoiceRecord,
    lines: Option<Vec<InvoiceLineRecord>>,
    now: OffsetDateTime,
) -> InvoiceView {
    let status = effective_status(inv.status, inv.due_at, now);
    InvoiceView {
        id: inv.id,
        amount_due_minor: if matches!(inv.status, InvoiceStatus::Draft | InvoiceStatus::Void) {
            0
        } else {
            balance(&inv).due()
        },
        number: inv.number,
        status: status.as_str().to_owned(),
        customer_id: inv.customer_id,
        order_id: inv.order_id,
        currency: inv.currency,
        tax_mode: format!("{:?}", inv.tax_mode).to_uppercase(),
        subtotal_minor: inv.subtotal_minor,
        tax_minor: inv.tax_minor,
        total_minor: inv.total_minor,
        paid_minor: inv.paid_minor,
        credited_minor: inv.credited_minor,
        refunded_minor: inv.refunded_minor,
        customer: inv.customer_snapshot,
        seller: inv.seller_snapshot,
        notes: inv.notes,
        disputed: inv.disputed,
        allowed_transitions: status.next().iter().map(|s| s.as_str()).collect(),
        issued_at: inv.issued_at,
        due_at: inv.due_at,
        paid_at: inv.paid_at,
        voided_at: inv.voided_at,
        created_at: inv.created_at,
        lines: lines.map(|ls| {
            ls.into_iter()
                .map(|l| LineView {
                    id: l.id,
                    kind: l.kind,
                    source: l.source,
                    description: l.description,
                    quantity: l.quantity,
                    unit_price: l.unit_price,
                    amount_minor: l.amount_minor,
                    tax_rate: l.tax_rate,
                    net_minor: l.net_minor,
                    tax_minor: l.tax_minor,
                    subscription_id: l.subscription_id,
                })
                .collect()
        }),
    }
}

/// The invoice with its lines, as of now.
pub async fn get(cx: &Context, id: InvoiceId) -> Result<InvoiceView, ServiceError> {
    let (inv, lines) = cx
        .store
        .invoice_with_lines(cx.tenant_id(), id)
        .await?
        .ok_or_else(ServiceError::missing("invoice"))?;
    Ok(view(inv, Some(lines), cx.now()))
}

/// The tenant's invoices matching `filter`, as of now.
pub async fn list(
    cx: &Context,
    filter: &InvoiceFilter,
) -> Result<Vec<InvoiceRecord>, ServiceError> {
    Ok(cx
        .store
        .list_invoices(cx.tenant_id(), filter, cx.now())
        .await?)
}

/// Whether `id` is an issued invoice of the signed-in customer (drafts
/// are for staff only).
pub async fn is_customers_own(cx: &Context, id: InvoiceId) -> Result<bool, ServiceError> {
    let Some(customer) = crate::customers::own(cx).await? else {
        return Ok(false);
    };
    Ok(cx
        .store
        .invoice(cx.tenant_id(), id)
        .await?
        .is_some_and(|inv| inv.customer_id == customer && inv.status != InvoiceStatus::Draft))
}

fn check_notes(notes: &[String]) -> Result<(), ServiceError> {
    if notes.len() > 10
        || notes
            .iter()
            .any(|n| n.chars().count() > 1000 || n.chars().any(|c| c.is_control() && c != '\n'))
    {
        return Err(ServiceError::invalid(
            "notes",
            "at most 10 notes of 1,000 characters",
        ));
    }
    Ok(())
}

/// Prices `lines` for `customer` under the settings; the records to store.
pub(crate) fn price_lines(
    lines: &[LineIn],
    currency: Currency,
    settings: &BillingSettings,
    customer: &CustomerRecord,
) -> Result<(Vec<InvoiceLineRecord>, i64, i64, i64, Treatment), ServiceError> {
    let treatment = settings.treatment_for(&customer.country, customer.tax_id.as_deref());
    let inputs: Vec<_> = lines.iter().map(LineIn::input).collect();
    let computed = compute(&inputs, currency, &treatment, settings.tax_mode).map_err(|e| {
        if e.field == "lines" {
            ServiceError::invalid("lines", e.message)
        } else {
            ServiceError::invalid(format!("lines[{}].{}", e.index, e.field), e.message)
        }
    })?;
    let records = lines
        .iter()
        .zip(&computed.lines)
        .enumerate()
        .map(|(i, (line, c))| InvoiceLineRecord {
            id: Uuid::now_v7(),
            position: i32::try_from(i).unwrap_or(i32::MAX),
            kind: line.kind.as_str().to_owned(),
            source: line.source().as_str().to_owned(),
            description: line.description.trim().to_owned(),
            quantity: line.quantity.normalize().to_string(),
            unit_price: line.unit_price.to_string(),
            amount_minor: c.amount_minor,
            tax_rate: c.tax_rate.normalize().to_string(),
            net_minor: c.net_minor,
            tax_minor: c.tax_minor,
            subscription_id: line.subscription_id,
        })
        .collect();
    Ok((
        records,
        computed.subtotal_minor,
        computed.tax_minor,
        computed.total_minor,
        treatment,
    ))
}

/// A new draft's record: priced (`[subtotal, tax, total]`), nothing
/// received, nothing frozen yet.
pub(crate) fn draft_record(
    id: InvoiceId,
    tenant: TenantId,
    customer: CustomerId,
    currency: Currency,
    tax_mode: mpanel_domain::billing::tax::TaxMode,
    [subtotal, tax, total]: [i64; 3],
    now: OffsetDateTime,
) -> InvoiceRecord {
    InvoiceRecord {
        id,
        tenant_id: tenant,
        customer_id: customer,
        order_id: None,
        status: InvoiceStatus::Draft,
        number: None,
        currency: currency.code().to_owned(),
        tax_mode,
        subtotal_minor: subtotal,
        tax_minor: tax,
        total_minor: total,
        paid_minor: 0,
        credited_minor: 0,
        refunded_minor: 0,
        customer_snapshot: None,
        seller_snapshot: None,
        notes: Vec::new(),
        disputed: false,
        issued_at: None,
        due_at: None,
        paid_at: None,
        voided_at: None,
        created_at: now,
        updated_at: now,
    }
}

/// What a new draft invoice holds.
pub(crate) struct NewDraft<'a> {
    pub customer: &'a CustomerRecord,
    pub currency: Currency,
    pub lines: &'a [LineIn],
    pub notes: Vec<String>,
    /// The order it bills, for an order's invoice.
    pub order_id: Option<OrderId>,
}

/// Inserts a draft inside `tx`, priced with the tenant's settings.
pub(crate) async fn create_in(
    tx: &mut Tx,
    tenant: &TenantRecord,
    draft: NewDraft<'_>,
    now: OffsetDateTime,
) -> Result<InvoiceRecord, ServiceError> {
    let NewDraft {
        customer,
        currency,
        lines,
        notes,
        order_id,
    } = draft;
    check_notes(&notes)?;
    let loaded = settings::load_in(tx, tenant.id).await?;
    let (records, subtotal, tax, total, _) =
        price_lines(lines, currency, &loaded.settings, customer)?;
    let inv = InvoiceRecord {
        order_id,
        notes,
        ..draft_record(
            InvoiceId::new(),
            tenant.id,
            customer.id,
            currency,
            loaded.settings.tax_mode,
            [subtotal, tax, total],
            now,
        )
    };
    tx.insert_invoice(&inv).await?;
    tx.replace_draft(&inv, &records).await?;
    Ok(inv)
}

async fn customer_in(
    tx: &mut Tx,
    tenant: TenantId,
    id: CustomerId,
) -> Result<CustomerRecord, ServiceError> {
    // A miss is bad input (the body named it); a failing database is not.
    tx.customer(tenant, id)
        .await?
        .ok_or_else(|| ServiceError::invalid("customer_id", "no such customer"))
}

fn currency_of(input: Option<&str>, tenant: &TenantRecord) -> Result<Currency, ServiceError> {
    Currency::parse(input.unwrap_or(&tenant.default_currency))
        .map_err(|m| ServiceError::invalid("currency", m))
}

/// `POST /api/billing/invoices`: a draft.
pub async fn create_draft(
    cx: &Context,
    input: DraftInput,
    hold: Option<&IdempotencyHold>,
) -> Result<InvoiceView, ServiceError> {
    let Context {
        store,
        tenant,
        actor,
        ..
    } = cx;
    let currency = currency_of(input.currency.as_deref(), tenant)?;
    let now = cx.now();
    let mut tx = store.begin().await?;
    let customer = customer_in(&mut tx, tenant.id, input.customer_id).await?;
    let draft = NewDraft {
        customer: &customer,
        currency,
        lines: &input.lines,
        notes: input.notes,
        order_id: None,
    };
    let inv = create_in(&mut tx, tenant, draft, now).await?;
    let lines = tx.invoice_lines(tenant.id, inv.id).await?;
    tx.record_audit(&actor.audit(Change {
        tenant: tenant.id,
        action: "invoice.create",
        target_type: "invoice",
        target_id: inv.id.to_string(),
        before: None,
        after: Some(json!({"customer_id": inv.customer_id, "currency": inv.currency, "total_minor": inv.total_minor, "lines": lines.len()})),
        at: now,
    }))
    .await?;
    let out = view(inv, Some(lines), now);
    idempotency::finish(&mut tx, tenant.id, hold, 201, &out).await?;
    tx.commit().await?;
    Ok(out)
}

fn refuse(from: InvoiceStatus, to: InvoiceStatus) -> ServiceError {
    ServiceError::Transition {
        what: "invoice",
        from: from.as_str(),
        to: to.as_str(),
        allowed: from.next().iter().map(|s| s.as_str()).collect(),
    }
}

/// `PUT /api/billing/invoices/:id`: replaces a draft's lines (and notes,
/// customer or currency). An issued invoice is a 409.
pub async fn update_draft(
    cx: &Context,
    id: InvoiceId,
    input: DraftInput,
) -> Result<InvoiceView, ServiceError> {
    let Context {
        store,
        tenant,
        actor,
        ..
    } = cx;
    let currency = currency_of(input.currency.as_deref(), tenant)?;
    check_notes(&input.notes)?;
    let now = cx.now();
    let mut tx = store.begin().await?;
    let mut inv = tx
        .invoice_for_update(tenant.id, id)
        .await?
        .ok_or_else(ServiceError::missing("invoice"))?;
    if inv.status != InvoiceStatus::Draft {
        return Err(ServiceError::Conflict(format!(
            "invoice {} is {}: only a DRAFT's lines can change; issue a credit note instead",
            inv.number.as_deref().unwrap_or("(draft)"),
            inv.status.as_str()
        )));
    }
    let customer = customer_in(&mut tx, tenant.id, input.customer_id).await?;
    let loaded = settings::load_in(&mut tx, tenant.id).await?;
    let (records, subtotal, tax, total, _) =
        price_lines(&input.lines, currency, &loaded.settings, &customer)?;
    let before = json!({"customer_id": inv.customer_id, "currency": inv.currency, "total_minor": inv.total_minor});
    inv.customer_id = customer.id;
    inv.currency = currency.code().to_owned();
    inv.tax_mode = loaded.settings.tax_mode;
    inv.subtotal_minor = subtotal;
    inv.tax_minor = tax;
    inv.total_minor = total;
    inv.notes = input.notes;
    inv.updated_at = now;
    tx.replace_draft(&inv, &records).await?;
    tx.record_audit(&actor.audit(Change {
        tenant: tenant.id,
        action: "invoice.update",
        target_type: "invoice",
        target_id: inv.id.to_string(),
        before: Some(before),
        after: Some(json!({"customer_id": inv.customer_id, "currency": inv.currency, "total_minor": inv.total_minor, "lines": records.len()})),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(view(inv, Some(records), now))
}

/// The calendar year of `at` in the tenant's time zone.
pub fn tenant_year(tenant: &TenantRecord, at: OffsetDateTime) -> Result<i32, ServiceError> {
    let zone = jiff::tz::TimeZone::get(&tenant.timezone)
        .map_err(|e| ServiceError::internal("tenant time zone", e))?;
    let ts = jiff::Timestamp::from_second(at.unix_timestamp())
        .map_err(|e| ServiceError::internal("timestamp out of range", e))?;
    Ok(i32::from(ts.to_zoned(zone).year()))
}

pub(crate) fn customer_snapshot(c: &CustomerRecord) -> Value {
    json!({
        "name": c.name, "company": c.company, "email": c.email, "country": c.country,
        "tax_id": c.tax_id, "address": c.address,
    })
}

pub(crate) fn seller_snapshot(tenant: &TenantRecord, s: &BillingSettings) -> Value {
    json!({
        "name": s.legal_name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| tenant.name.clone()),
        "address_lines": s.address_lines, "country": s.country, "tax_id": s.tax_id,
    })
}

/// Issues a draft inside `tx`: prices it again under today's rules,
/// freezes it with its number, and (if `apply_credit`) pays what it can
/// from the customer's credit.
pub(crate) async fn issue_in(
    tx: &mut Tx,
    tenant: &TenantRecord,
    id: InvoiceId,
    actor: &Actor,
    apply_credit: bool,
    now: OffsetDateTime,
) -> Result<InvoiceRecord, ServiceError> {
    let mut inv = tx
        .invoice_for_update(tenant.id, id)
        .await?
        .ok_or_else(ServiceError::missing("invoice"))?;
    inv.status
        .check_transition(InvoiceStatus::Issued)
        .map_err(|_| refuse(inv.status, InvoiceStatus::Issued))?;
    // Before the invoice numbers: the lock order every billing path keeps
    // (invoice, subscriptions, numbers, credit).
    super::restore::hold_for_restore(tx, tenant, &inv).await?;
    let stored = tx.invoice_lines(tenant.id, id).await?;
    if stored.is_empty() {
        return Err(ServiceError::invalid(
            "lines",
            "an invoice needs at least one line",
        ));
    }
    let lines = stored
        .iter()
        .map(super::lines::from_record)
        .collect::<Result<Vec<_>, _>>()?;
    let currency = Currency::parse(&inv.currency).map_err(ServiceError::internal_msg)?;
    let customer = customer_in(tx, tenant.id, inv.customer_id).await?;
    let loaded = settings::load_in(tx, tenant.id).await?;
    let (records, subtotal, tax, total, treatment) =
        price_lines(&lines, currency, &loaded.settings, &customer)?;
    inv.tax_mode = loaded.settings.tax_mode;
    inv.subtotal_minor = subtotal;
    inv.tax_minor = tax;
    inv.total_minor = total;
    inv.updated_at = now;
    tx.replace_draft(&inv, &records).await?;

    let year = tenant_year(tenant, now)?;
    let sequence = tx.next_document_number(tenant.id, "INV", year).await?;
    let mut notes = inv.notes.clone();
    if treatment == Treatment::ReverseCharge {
        notes.push(mpanel_domain::billing::tax::REVERSE_CHARGE_NOTE.to_owned());
    }
    let fields = IssueFields {
        number: invoice::number("INV", year, sequence),
        customer_snapshot: customer_snapshot(&customer),
        seller_snapshot: seller_snapshot(tenant, &loaded.settings),
        notes,
        issued_at: now,
        due_at: now + time::Duration::days(i64::from(loaded.settings.payment_terms_days)),
    };
    tx.issue_invoice(tenant.id, id, &fields).await?;
    tx.record_audit(&actor.audit(Change {
        tenant: tenant.id,
        action: "invoice.issue",
        target_type: "invoice",
        target_id: id.to_string(),
        before: Some(json!({"status": "DRAFT"})),
        after: Some(json!({"status": "ISSUED", "number": fields.number, "total_minor": total, "currency": inv.currency})),
        at: now,
    }))
    .await?;
    let event = json!({"id": id, "number": fields.number, "customer_id": inv.customer_id,
        "total_minor": total, "currency": inv.currency, "due_at": fields.due_at.unix_timestamp()});
    crate::webhooks::emit(tx, tenant.id, EventType::InvoiceIssued, event, now).await?;
    let mut issued = tx
        .invoice_for_update(tenant.id, id)
        .await?
        .ok_or_else(ServiceError::missing("invoice"))?;
    if issued.total_minor == 0 {
        // Nothing to pay: settled on issue.
        issued = payments::settle_if_nothing_due(tx, tenant, issued, actor, now).await?;
    } else if apply_credit {
        issued = payments::apply_credit(tx, tenant, issued, actor, now).await?;
    }
    // The customer's copy, sent once this commits.
    crate::notify::invoice_issued::enqueue_in(tx, &tenant.name, &issued, now).await?;
    Ok(issued)
}

/// `POST /api/billing/invoices/:id/issue`.
pub async fn issue(cx: &Context, id: InvoiceId) -> Result<InvoiceView, ServiceError> {
    let Context {
        store,
        tenant,
        actor,
        ..
    } = cx;
    let now = cx.now();
    let mut tx = store.begin().await?;
    let inv = issue_in(&mut tx, tenant, id, actor, true, now).await?;
    let lines = tx.invoice_lines(tenant.id, id).await?;
    tx.commit().await?;
    Ok(view(inv, Some(lines), now))
}

/// `POST /api/billing/invoices/:id/void`: only without money received.
pub async fn void(cx: &Context, id: InvoiceId) -> Result<InvoiceView, ServiceError> {
    let Context {
        store,
        tenant,
        actor,
        ..
    } = cx;
    let now = cx.now();
    let mut tx = store.begin().await?;
    let inv = tx
        .invoice_for_update(tenant.id, id)
        .await?
        .ok_or_else(ServiceError::missing("invoice"))?;
    let status = effective_status(inv.status, inv.due_at, now);
    status
        .check_transition(InvoiceStatus::Void)
        .map_err(|_| refuse(status, InvoiceStatus::Void))?;
    if inv.paid_minor > 0 {
        return Err(ServiceError::Conflict(
            "money was received for this invoice: issue a credit note instead of voiding it".into(),
        ));
    }
    // What it charges is taken before anything is written: the order
    // payments keep (invoice, then subscriptions).
    super::restore::hold_for_restore(&mut tx, tenant, &inv).await?;
    tx.void_invoice(tenant.id, id, now).await?;
    tx.record_audit(&actor.audit(Change {
        tenant: tenant.id,
        action: "invoice.void",
        target_type: "invoice",
        target_id: id.to_string(),
        before: Some(json!({"status": status.as_str()})),
        after: Some(json!({"status": "VOID"})),
        at: now,
    }))
    .await?;
    let inv = tx
        .invoice_for_update(tenant.id, id)
        .await?
        .ok_or_else(ServiceError::missing("invoice"))?;
    // Voided, it no longer keeps what dunning suspended for it suspended.
    super::restore::lift_dunning_suspensions(&mut tx, tenant, &inv, now).await?;
    let lines = tx.invoice_lines(tenant.id, id).await?;
    tx.commit().await?;
    Ok(view(inv, Some(lines), now))
}

/// Records `OVERDUE` on open invoices past due (the periodic job).
pub async fn mark_overdue(store: &Store, clock: &dyn Clock) -> Result<usize, ServiceError> {
    let now = clock.now();
    let mut tx = store.begin().await?;
    let marked = tx.mark_overdue_invoices(now, 1000).await?;
    for (tenant, id) in &marked {
        tx.record_audit(&Actor::system("billing").audit(Change {
            tenant: *tenant,
            action: "invoice.overdue",
            target_type: "invoice",
            target_id: id.to_string(),
            before: None,
            after: Some(json!({"status": "OVERDUE"})),
            at: now,
        }))
        .await?;
    }
    tx.commit().await?;
    Ok(marked.len())
}
