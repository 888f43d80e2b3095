//! The PDFs customers receive: an invoice or a credit note laid out from
//! what was frozen at issue.

use std::collections::BTreeMap;

use mpanel_domain::billing::money::from_minor;
use mpanel_domain::catalog::Currency;
use mpanel_domain::{CreditNoteId, InvoiceId, TenantId};
use mpanel_store::Store;
use serde_json::Value;
use time::OffsetDateTime;

use super::invoices::balance;
use super::pdf::{self, Document, Line, Party, TaxRow};
use crate::{Context, ServiceError};

/// `1234` in EUR → `12.34 EUR`.
pub fn money(minor: i64, currency: &str) -> String {
    match Currency::parse(currency) {
        Ok(c) => format!("{} {}", from_minor(minor, c), c.code()),
        Err(_) => format!("{minor} {currency}"),
    }
}

fn date(at: Option<OffsetDateTime>) -> String {
    at.map(|t| t.date().to_string()).unwrap_or_default()
}

fn party(snapshot: Option<&Value>) -> Party {
    let field = |k: &str| {
        snapshot
            .and_then(|s| s.get(k))
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let mut lines = Vec::new();
    if let Some(company) = field("company") {
        lines.push(company);
    }
    if let Some(address) = snapshot
        .and_then(|s| s.get("address_lines"))
        .and_then(Value::as_array)
    {
        lines.extend(address.iter().filter_map(Value::as_str).map(str::to_owned));
    }
    if let Some(address) = snapshot
        .and_then(|s| s.get("address"))
        .filter(|a| !a.is_null())
    {
        match address {
            Value::String(s) => lines.push(s.clone()),
            Value::Object(map) => lines.extend(
                map.values()
                    .filter_map(Value::as_str)
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned),
            ),
            _ => {}
        }
    }
    if let Some(country) = field("country") {
        lines.push(country);
    }
    if let Some(tax_id) = field("tax_id") {
        lines.push(format!("VAT ID: {tax_id}"));
    }
    if let Some(email) = field("email") {
        lines.push(email);
    }
    Party {
        name: field("name").unwrap_or_default(),
        lines,
    }
}

/// The invoice's PDF. Drafts render too, marked DRAFT and unnumbered.
pub async fn invoice_pdf(cx: &Context, id: InvoiceId) -> Result<(String, Vec<u8>), ServiceError> {
    render_invoice_pdf(&cx.store, cx.tenant_id(), id, cx.now()).await
}

/// The invoice's PDF as of `now`, for a caller without a request (the
/// e-mail job attaches it as of the message's date).
pub async fn render_invoice_pdf(
    store: &Store,
    tenant: TenantId,
    id: InvoiceId,
    now: OffsetDateTime,
) -> Result<(String, Vec<u8>), ServiceError> {
    let inv = store
        .invoice(tenant, id)
        .await?
        .ok_or_else(ServiceError::missing("invoice"))?;
    let lines = store.invoice_lines(tenant, id).await?;
    let cur = inv.currency.clone();
    let mut rates: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for l in &lines {
        let entry = rates.entry(l.tax_rate.clone()).or_default();
        entry.0 += l.net_minor;
        entry.1 += l.tax_minor;
    }
    let b = balance(&inv);
    let status = mpanel_domain::billing::invoice::effective_status(inv.status, inv.due_at, now);
    let mut totals = vec![
        ("Subtotal".to_owned(), money(inv.subtotal_minor, &cur)),
        ("Tax".to_owned(), money(inv.tax_minor, &cur)),
        ("Total".to_owned(), money(inv.total_minor, &cur)),
    ];
    if inv.credited_minor > 0 {
        totals.push(("Credited".to_owned(), money(inv.credited_minor, &cur)));
    }
    if inv.paid_minor > 0 {
        totals.push(("Paid".to_owned(), money(b.received(), &cur)));
    }
    totals.push(("Amount due".to_owned(), money(b.due().max(0), &cur)));
    let number = inv.number.clone().unwrap_or_else(|| "DRAFT".to_owned());
    let doc = Document {
        title: "Invoice".to_owned(),
        number: number.clone(),
        seller: party(inv.seller_snapshot.as_ref()),
        customer: party(inv.customer_snapshot.as_ref()),
        dates: vec![
            ("Issued".to_owned(), date(inv.issued_at)),
            ("Due".to_owned(), date(inv.due_at)),
        ],
        lines: lines
            .iter()
            .map(|l| Line {
                description: l.description.clone(),
                quantity: l.quantity.clone(),
                unit_price: l.unit_price.clone(),
                tax_rate: rate_label(&l.tax_rate),
                amount: money(l.amount_minor, &cur),
            })
            .collect(),
        tax_summary: rates
            .into_iter()
            .map(|(rate, (net, tax))| TaxRow {
                label: rate_label(&rate),
                net: money(net, &cur),
                tax: money(tax, &cur),
            })
            .collect(),
        totals,
        status: status.as_str().to_owned(),
        notes: inv.notes.clone(),
    };
    Ok((number, pdf::render(&doc)))
}

fn rate_label(rate: &str) -> String {
    match rate.parse::<rust_decimal::Decimal>() {
        Ok(r) => format!("{}%", (r * rust_decimal::Decimal::from(100)).normalize()),
        Err(_) => rate.to_owned(),
    }
}

/// A credit note's PDF.
pub async fn credit_note_pdf(
    cx: &Context,
    id: CreditNoteId,
) -> Result<(String, Vec<u8>), ServiceError> {
    let store = &cx.store;
    let tenant = cx.tenant_id();
    let note = store
        .credit_note(tenant, id)
        .await?
        .ok_or_else(ServiceError::missing("credit note"))?;
    let inv = store
        .invoice(tenant, note.invoice_id)
        .await?
        .ok_or_else(ServiceError::missing("invoice"))?;
    let cur = note.currency.clone();
    let doc = Document {
        title: "Credit note".to_owned(),
        number: note.number.clone(),
        seller: party(inv.seller_snapshot.as_ref()),
        customer: party(inv.customer_snapshot.as_ref()),
        dates: vec![
            ("Issued".to_owned(), date(Some(note.created_at))),
            (
                "For invoice".to_owned(),
                inv.number.clone().unwrap_or_default(),
            ),
        ],
        lines: vec![Line {
            description: note.reason.clone(),
            quantity: "1".to_owned(),
            unit_price: from_minor(
                note.amount_minor,
                Currency::parse(&cur).map_err(ServiceError::internal_msg)?,
            )
            .to_string(),
            tax_rate: String::new(),
            amount: money(note.amount_minor, &cur),
        }],
        tax_summary: Vec::new(),
        totals: vec![("Credited".to_owned(), money(note.amount_minor, &cur))],
        status: note.disposition.clone(),
        notes: Vec::new(),
    };
    Ok((note.number, pdf::render(&doc)))
}
