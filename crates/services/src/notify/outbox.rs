//! The outbox: a message is written in the transaction of the event that
//! causes it, with the `notify.email` job that delivers it, so it exists
//! if and only if the event committed. The billing run's invoices are the
//! exception: their chunk's transaction queues a `notify.invoice_copies`
//! job, which writes their messages (see `invoice_issued`). Staff see
//! where each stands.

use mpanel_domain::notify::{Attachment, DeliverEmail, EmailKind, EmailStatus};
use mpanel_domain::{EmailId, TenantId};
use mpanel_jobs::{JobOptions, enqueue_job, enqueue_jobs};
use mpanel_store::Tx;
use mpanel_store::notify::{EmailFilter, EmailRecord};
use mpanel_store::secret_box::kind;
use serde::Serialize;
use time::OffsetDateTime;

use super::templates::{Rendered, Templates};
use crate::context::Audited;
use crate::{Context, ServiceError};
use mpanel_domain::jobs::JobState;

/// How often a message is tried before it is FAILED: with the queue's
/// back-off (2 s doubling, at most an hour, less up to half for jitter)
/// about half an hour to an hour of retries.
pub const MAX_ATTEMPTS: i32 = 12;

/// A message to send.
#[derive(Debug, Clone)]
pub struct NewEmail {
    pub tenant: TenantId,
    pub kind: EmailKind,
    pub recipient: String,
    pub rendered: Rendered,
    pub attachments: Vec<Attachment>,
    /// The link with a secret the rendered parts hold a placeholder for;
    /// kept sealed.
    pub link: Option<Link>,
}

/// A message's link: a random placeholder the templates were rendered
/// with (nobody can put it in a name or an address beforehand), and the
/// path below the portal's URL that replaces it when the message is built.
#[derive(Debug, Clone)]
pub struct Link {
    pub placeholder: String,
    pub path: String,
}

impl Link {
    /// A link to `path` with a fresh placeholder.
    pub fn new(path: String) -> Result<Self, ServiceError> {
        let nonce: String = crate::identity::secrets::random_bytes::<16>()?
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Self {
            placeholder: format!("MPANEL-LINK-{nonce}"),
            path,
        })
    }
}

/// Writes the message and queues its delivery, both in `tx`.
pub async fn enqueue(
    tx: &mut Tx,
    email: NewEmail,
    now: OffsetDateTime,
) -> Result<EmailId, ServiceError> {
    enqueue_many(tx, vec![email], now)
        .await?
        .pop()
        .ok_or_else(|| ServiceError::internal_msg("no message was written"))
}

/// Writes the messages and queues their deliveries, both in `tx`; their
/// ids in order.
pub async fn enqueue_many(
    tx: &mut Tx,
    emails: Vec<NewEmail>,
    now: OffsetDateTime,
) -> Result<Vec<EmailId>, ServiceError> {
    let emails = emails.into_iter().map(|e| (EmailId::new(), e)).collect();
    enqueue_many_as(tx, emails, now).await
}

/// Writes the messages under the ids given and queues their deliveries,
/// both in `tx`, many rows per statement (the billing run's copies, whose
/// ids were chosen when their invoices were issued); their ids in order.
pub async fn enqueue_many_as(
    tx: &mut Tx,
    emails: Vec<(EmailId, NewEmail)>,
    now: OffsetDateTime,
) -> Result<Vec<EmailId>, ServiceError> {
    let records = emails
        .into_iter()
        .map(|(id, email)| outbox_record(tx, id, email, now))
        .collect::<Result<Vec<_>, _>>()?;
    tx.insert_emails(&records).await?;
    let jobs: Vec<(DeliverEmail, JobOptions)> = records
        .iter()
        .map(|r| delivery(r.tenant_id, r.id))
        .collect();
    enqueue_jobs(tx, &jobs, now).await?;
    Ok(records.into_iter().map(|r| r.id).collect())
}

/// The row a new message is kept as, its link sealed.
fn outbox_record(
    tx: &Tx,
    id: EmailId,
    email: NewEmail,
    now: OffsetDateTime,
) -> Result<EmailRecord, ServiceError> {
    let attachments = serde_json::to_string(&email.attachments)
        .map_err(|e| ServiceError::internal("encoding attachments", e))?;
    let link_sealed = match &email.link {
        Some(link) => Some(seal_link(tx, email.tenant, id, link)?),
        None => None,
    };
    Ok(EmailRecord {
        id,
        tenant_id: email.tenant,
        kind: email.kind,
        recipient: email.recipient,
        subject: email.rendered.subject,
        text_body: email.rendered.text,
        html_body: email.rendered.html,
        attachments,
        link_sealed,
        sender: None,
        sender_name: None,
        message_id: None,
        status: EmailStatus::Queued,
        attempts: 0,
        last_error: None,
        created_at: now,
        updated_at: now,
        sent_at: None,
    })
}

fn job_key(id: EmailId) -> String {
    format!("{}:{id}", mpanel_domain::notify::EMAIL_JOB)
}

/// The message's `notify.email` job (at most one lives at a time).
fn delivery(tenant: TenantId, id: EmailId) -> (DeliverEmail, JobOptions) {
    let job = DeliverEmail {
        tenant_id: tenant,
        email_id: id,
    };
    let options = JobOptions {
        queue: "notify".into(),
        max_attempts: MAX_ATTEMPTS,
        unique_key: Some(job_key(id)),
        ..JobOptions::default()
    };
    (job, options)
}

/// Queues the message's `notify.email` job.
async fn queue_delivery(
    tx: &mut Tx,
    tenant: TenantId,
    id: EmailId,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    let (job, options) = delivery(tenant, id);
    enqueue_job(tx, &job, &options, now).await?;
    Ok(())
}

/// Renders `kind` with `context` and queues it to `recipient`, in `tx`:
/// a message with neither link nor attachments, as most kinds are.
pub(crate) async fn enqueue_plain<C: Serialize>(
    tx: &mut Tx,
    tenant: TenantId,
    kind: EmailKind,
    recipient: &str,
    context: &C,
    now: OffsetDateTime,
) -> Result<EmailId, ServiceError> {
    let email = NewEmail {
        tenant,
        kind,
        recipient: recipient.to_owned(),
        rendered: super::templates::render_in(tx, tenant, kind, context, Templates::Tenant).await?,
        attachments: Vec::new(),
        link: None,
    };
    enqueue(tx, email, now).await
}

/// `POST /api/notifications/outbox/{id}/resend`: a message that was not
/// delivered (FAILED, UNKNOWN, UNDELIVERABLE) goes back to the queue, as
/// staff decide (for UNKNOWN: knowing the customer may get it twice). A
/// message with a link is not resent (its link may be spent or replaced):
/// a new invitation or reset is sent instead.
pub async fn resend(cx: &Context, id: EmailId) -> Result<OutboxView, ServiceError> {
    let email = cx
        .store
        .email(cx.tenant_id(), id)
        .await?
        .ok_or_else(ServiceError::missing("message"))?;
    check_resendable(&email)?;
    let now = cx.now();
    let mut tx = cx.store.begin().await?;
    if !tx.requeue_email(cx.tenant_id(), id, now).await? {
        return Err(ServiceError::Conflict(
            "the message moved meanwhile; look again".into(),
        ));
    }
    match tx.live_job(&job_key(id)).await? {
        Some((_, JobState::Running)) => {
            return Err(ServiceError::Conflict(
                "an attempt is running right now; try again in a moment".into(),
            ));
        }
        Some((job, _)) => {
            tx.run_job_now(job, now).await?;
        }
        None => queue_delivery(&mut tx, cx.tenant_id(), id, now).await?,
    }
    tx.record_audit(&cx.audit(Audited {
        action: "email.resend",
        target_type: "email",
        target_id: id.to_string(),
        before: Some(serde_json::json!({"status": email.status})),
        after: Some(serde_json::json!({"status": EmailStatus::Queued})),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(view(EmailRecord {
        status: EmailStatus::Queued,
        updated_at: now,
        ..email
    }))
}

fn check_resendable(email: &EmailRecord) -> Result<(), ServiceError> {
    match email.status {
        EmailStatus::Failed | EmailStatus::Unknown | EmailStatus::Undeliverable => {}
        EmailStatus::Sent => {
            return Err(ServiceError::Conflict("the message was delivered".into()));
        }
        EmailStatus::Queued | EmailStatus::Sending => {
            return Err(ServiceError::Conflict("the message is on its way".into()));
        }
    }
    if email.link_sealed.is_some() {
        return Err(ServiceError::Conflict(
            "a message with a link is not resent: send a new invitation or password reset".into(),
        ));
    }
    Ok(())
}

/// Seals a message's link (its placeholder, a line break, its path),
/// bound to the message.
fn seal_link(tx: &Tx, tenant: TenantId, id: EmailId, link: &Link) -> Result<String, ServiceError> {
    let sb = tx.secrets().ok_or_else(|| {
        ServiceError::internal_msg("no secrets_key is configured: a link cannot be sealed")
    })?;
    let plain = format!("{}\n{}", link.placeholder, link.path);
    Ok(sb.seal_str(&plain, kind::EMAIL_LINK, &link_row(tenant, id))?)
}

fn link_row(tenant: TenantId, id: EmailId) -> String {
    kind::tenant_row(tenant.as_uuid(), id.as_uuid())
}

/// The message's parts with its link put in (`portal_url` and the
/// unsealed path), or as written when it has none.
pub fn with_link(
    store: &mpanel_store::Store,
    email: &EmailRecord,
    portal_url: &str,
) -> Result<Rendered, ServiceError> {
    let parts = Rendered {
        subject: email.subject.clone(),
        text: email.text_body.clone(),
        html: email.html_body.clone(),
    };
    let Some(sealed) = &email.link_sealed else {
        return Ok(parts);
    };
    let sb = crate::sealed::secret_box(store)?;
    let plain = sb.open_str(
        sealed,
        kind::EMAIL_LINK,
        &link_row(email.tenant_id, email.id),
    )?;
    let (placeholder, path) = plain
        .split_once('\n')
        .ok_or_else(|| ServiceError::internal_msg("a sealed link without its placeholder"))?;
    let link = format!("{}{path}", portal_url.trim_end_matches('/'));
    Ok(Rendered {
        subject: parts.subject.replace(placeholder, &link),
        text: parts.text.replace(placeholder, &link),
        html: parts.html.replace(placeholder, &html_escape(&link)),
    })
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#x27;")
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

/// `GET /api/notifications/outbox`: the caller's tenant's messages of
/// a status and a kind (when given), newest first (`limit` rows after
/// `before`).
pub async fn list(
    cx: &Context,
    status: Option<EmailStatus>,
    kind: Option<EmailKind>,
    before: Option<EmailId>,
    limit: u32,
) -> Result<Vec<EmailRecord>, ServiceError> {
    // Security notices tell of admins' sign-ins, factors, tokens and
    // webhooks: only those who may read security events see them.
    let admin = cx
        .principal
        .access
        .permits(mpanel_domain::identity::Permission::SecurityEventsRead);
    let filter = EmailFilter {
        status,
        kind,
        without_security_notices: !admin,
        before,
        limit,
    };
    Ok(cx.store.list_emails(cx.tenant_id(), &filter).await?)
}
