//! Notes staff keep on a customer: what was agreed on the phone, why a
//! discount was given. Written once, never edited (an audit of its own),
//! newest first.

use mpanel_domain::{CustomerId, CustomerNoteId};
use mpanel_store::customer_notes::CustomerNoteRecord;
use serde_json::json;

use crate::ServiceError;
use crate::context::{Audited, Context};

/// A note's longest body, in characters.
pub const MAX_NOTE: usize = 5_000;

/// Keeps a note on customer `id` (of the caller's tenant).
pub async fn add(
    cx: &Context,
    id: CustomerId,
    body: &str,
) -> Result<CustomerNoteRecord, ServiceError> {
    // A browser sends a textarea's line breaks as CRLF: counted once.
    let body = body.replace("\r\n", "\n");
    let body = body.trim();
    if body.is_empty() || body.chars().count() > MAX_NOTE {
        return Err(ServiceError::invalid(
            "body",
            format!("a note is 1 to {MAX_NOTE} characters"),
        ));
    }
    if body
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(ServiceError::invalid("body", "no control characters"));
    }
    let now = cx.now();
    let mut tx = cx.store.begin().await?;
    tx.customer(cx.tenant_id(), id)
        .await?
        .ok_or_else(ServiceError::missing("customer"))?;
    let note = CustomerNoteRecord {
        id: CustomerNoteId::new(),
        tenant_id: cx.tenant_id(),
        customer_id: id,
        author_id: cx.actor.id,
        author_label: cx.actor.label.clone(),
        body: body.to_owned(),
        created_at: now,
    };
    tx.insert_customer_note(&note).await?;
    tx.record_audit(&cx.audit(Audited {
        action: "customer.note",
        target_type: "customer",
        target_id: id.to_string(),
        before: None,
        after: Some(json!({"note_id": note.id.to_string()})),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(note)
}

/// Customer `id`'s notes, newest first (those before `before`).
pub async fn list(
    cx: &Context,
    id: CustomerId,
    before: Option<CustomerNoteId>,
    limit: u32,
) -> Result<Vec<CustomerNoteRecord>, ServiceError> {
    cx.store
        .customer(cx.tenant_id(), id)
        .await?
        .ok_or_else(ServiceError::missing("customer"))?;
    Ok(cx
        .store
        .customer_notes(cx.tenant_id(), id, before, limit)
        .await?)
}
