//! The outbox: a message is written in the transaction of the event that
//! causes it, with the `notify.email` job that delivers it, so it exists
//! if and only if the event committed. Staff see where each stands.

use mpanel_domain::notify::{Attachment, DeliverEmail, EmailKind, EmailStatus};
use mpanel_domain::{EmailId, TenantId};
use mpanel_jobs::{JobOptions, enqueue_job};
use mpanel_store::Tx;
use mpanel_store::notify::{EmailFilter, EmailRecord};
use serde::Serialize;
use time::OffsetDateTime;

use super::templates::Rendered;
use crate::{Context, ServiceError};

/// How often a message is tried before it is FAILED: with the queue's
/// back-off (2 s doubling, at most an hour) about three hours of retries.
pub const MAX_ATTEMPTS: i32 = 12;

/// A message to send.
#[derive(Debug, Clone)]
pub struct NewEmail {
    pub tenant: TenantId,
    pub kind: EmailKind,
    pub recipient: String,
    pub rendered: Rendered,
    pub attachments: Vec<Attachment>,
}

/// Writes the message and queues its delivery, both in `tx`.
pub async fn enqueue(
    tx: &mut Tx,
    email: NewEmail,
    now: OffsetDateTime,
) -> Result<EmailId, ServiceError> {
    let id = EmailId::new();
    let attachments = serde_json::to_string(&email.attachments)
        .map_err(|e| ServiceError::internal("encoding attachments", e))?;
    let record = EmailRecord {
        id,
        tenant_id: email.tenant,
        kind: email.kind,
        recipient: email.recipient,
        subject: email.rendered.subject,
        text_body: email.rendered.text,
        html_body: email.rendered.html,
        attachments,
        sender: None,
        sender_name: None,
        message_id: None,
        status: EmailStatus::Queued,
        attempts: 0,
        last_error: None,
        created_at: now,
        updated_at: now,
        sent_at: None,
    };
    tx.insert_email(&record).await?;
    let job = DeliverEmail {
        tenant_id: email.tenant,
        email_id: id,
    };
    let options = JobOptions {
        queue: "notify".into(),
        max_attempts: MAX_ATTEMPTS,
        unique_key: Some(format!("{}:{id}", mpanel_domain::notify::EMAIL_JOB)),
        ..JobOptions::default()
    };
    enqueue_job(tx, &job, &options, now).await?;
    Ok(id)
}

/// A message as staff see it: where it stands, never its body.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct OutboxView {
    pub id: EmailId,
    pub kind: EmailKind,
    pub recipient: String,
    pub subject: String,
    pub status: EmailStatus,
    /// SMTP conversations tried.
    pub attempts: i32,
    /// Why the last attempt did not deliver it.
    pub last_error: Option<String>,
    /// Set at the first attempt; every resend carries the same one.
    pub message_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
}

pub fn view(e: EmailRecord) -> OutboxView {
    OutboxView {
        id: e.id,
        kind: e.kind,
        recipient: e.recipient,
        subject: e.subject,
        status: e.status,
        attempts: e.attempts,
        last_error: e.last_error,
        message_id: e.message_id,
        created_at: e.created_at,
        sent_at: e.sent_at,
    }
}

/// `GET /api/notifications/outbox`: the caller's tenant's messages,
/// newest first (`limit` rows after `before`).
pub async fn list(
    cx: &Context,
    status: Option<EmailStatus>,
    before: Option<EmailId>,
    limit: u32,
) -> Result<Vec<EmailRecord>, ServiceError> {
    let filter = EmailFilter {
        status,
        before,
        limit,
    };
    Ok(cx.store.list_emails(cx.tenant_id(), &filter).await?)
}
