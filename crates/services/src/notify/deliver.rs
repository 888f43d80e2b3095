//! The `notify.email` job: delivers one outbox message over SMTP, DKIM
//! signed. A message already SENT is left alone, so a job retried after
//! the server accepted (its completion lost) never delivers twice. A
//! transient SMTP error is recorded and retried with the queue's back-off;
//! a permanent one (5xx) makes the message FAILED at once. Without
//! `smtp_url` the message is UNDELIVERABLE.

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use mpanel_domain::Clock;
use mpanel_domain::notify::{DeliverEmail, EmailStatus, domain_of, message_id};
use mpanel_jobs::JobError;
use mpanel_store::Store;
use mpanel_store::notify::{EmailOutcome, EmailRecord};

use super::message::{self, BuildError};
use super::settings::MailSettings;
use super::{dkim, sender};
use crate::ServiceError;

/// What delivering needs: the settings and the transport built from them.
#[derive(Clone, Debug)]
pub struct Mailer {
    pub settings: MailSettings,
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
}

impl Mailer {
    pub fn new(settings: MailSettings) -> Result<Self, String> {
        let transport = settings.transport()?;
        Ok(Self {
            settings,
            transport,
        })
    }
}

/// Runs one attempt of the job; `last` when no retry follows.
pub async fn deliver(
    store: &Store,
    clock: &dyn Clock,
    mailer: &Mailer,
    job: &DeliverEmail,
    last: bool,
) -> Result<(), JobError> {
    let email = match store.email(job.tenant_id, job.email_id).await {
        Ok(email) => email,
        Err(mpanel_store::StoreError::NotFound) => {
            return Err(JobError::Permanent(
                "the message is not in the outbox".into(),
            ));
        }
        Err(e) => return Err(JobError::retry(e)),
    };
    if email.status == EmailStatus::Sent {
        return Ok(());
    }
    let Some(transport) = &mailer.transport else {
        let outcome = EmailOutcome {
            status: EmailStatus::Undeliverable,
            attempted: false,
            last_error: Some("no smtp_url is configured".into()),
            sent_at: None,
        };
        return record(store, clock, &email, &outcome).await;
    };
    let (message, email) = match prepare(store, clock, mailer, email).await {
        Ok(ready) => ready,
        Err((email, BuildError::Permanent(why))) => {
            let outcome = failed(EmailStatus::Failed, why.clone());
            record(store, clock, &email, &outcome).await?;
            return Err(JobError::Permanent(why));
        }
        Err((_, BuildError::Internal(e))) => return Err(JobError::retry(e)),
    };
    let sent = transport.send(message).await;
    after_send(store, clock, &email, sent, last).await
}

/// Records what the SMTP server answered: SENT, or the error (FAILED for
/// a 5xx or on the last attempt, else QUEUED for the retry).
async fn after_send(
    store: &Store,
    clock: &dyn Clock,
    email: &EmailRecord,
    sent: Result<lettre::transport::smtp::response::Response, lettre::transport::smtp::Error>,
    last: bool,
) -> Result<(), JobError> {
    let e = match sent {
        Ok(_) => {
            let outcome = EmailOutcome {
                status: EmailStatus::Sent,
                attempted: true,
                last_error: None,
                sent_at: Some(clock.now()),
            };
            return record(store, clock, email, &outcome).await;
        }
        Err(e) => e,
    };
    let why = format!("SMTP: {e}");
    let permanent = e.is_permanent();
    let status = if permanent || last {
        EmailStatus::Failed
    } else {
        EmailStatus::Queued
    };
    record(store, clock, email, &failed(status, why.clone())).await?;
    Err(if permanent {
        JobError::Permanent(why)
    } else {
        JobError::Retry(why)
    })
}

fn failed(status: EmailStatus, why: String) -> EmailOutcome {
    EmailOutcome {
        status,
        attempted: true,
        last_error: Some(why),
        sent_at: None,
    }
}

/// Fixes the sender and `Message-ID` (at the first attempt) and builds
/// the signed message.
async fn prepare(
    store: &Store,
    clock: &dyn Clock,
    mailer: &Mailer,
    email: EmailRecord,
) -> Result<(lettre::Message, EmailRecord), (EmailRecord, BuildError)> {
    let fixed = match fix_headers(store, mailer, &email).await {
        Ok(fixed) => fixed,
        Err(e) => return Err((email, e.into())),
    };
    match signed(store, clock, &fixed).await {
        Ok(message) => Ok((message, fixed)),
        Err(e) => Err((fixed, e)),
    }
}

async fn fix_headers(
    store: &Store,
    mailer: &Mailer,
    email: &EmailRecord,
) -> Result<EmailRecord, ServiceError> {
    if email.sender.is_some() && email.message_id.is_some() {
        return Ok(email.clone());
    }
    let tenant = store
        .tenant(email.tenant_id)
        .await?
        .ok_or_else(|| ServiceError::NotFound("no such tenant".into()))?;
    let own = store.tenant_sender(email.tenant_id).await?;
    let from = sender::effective(&tenant, &own, &mailer.settings);
    let id = message_id(email.id, from.email.domain());
    Ok(store
        .fix_email_headers(email.tenant_id, email.id, &from.to_string(), &id)
        .await?)
}

async fn signed(
    store: &Store,
    clock: &dyn Clock,
    email: &EmailRecord,
) -> Result<lettre::Message, BuildError> {
    let from: Mailbox = email
        .sender
        .as_deref()
        .unwrap_or_default()
        .parse()
        .map_err(|e| BuildError::Permanent(format!("the sender is not an address: {e}")))?;
    let domain = domain_of(from.email.as_ref())
        .ok_or_else(|| BuildError::Permanent("the sender has no domain".into()))?;
    let key = dkim::key_for(store, email.tenant_id, &domain, clock.now()).await?;
    let config = dkim::signing_config(store, &key)?;
    let mut message = message::build(store, email, from).await?;
    message.sign(&config);
    Ok(message)
}

async fn record(
    store: &Store,
    clock: &dyn Clock,
    email: &EmailRecord,
    outcome: &EmailOutcome,
) -> Result<(), JobError> {
    store
        .record_email_outcome(email.tenant_id, email.id, outcome, clock.now())
        .await
        .map_err(JobError::retry)
}
