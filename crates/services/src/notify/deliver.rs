//! The `notify.email` job: delivers one outbox message over SMTP, DKIM
//! signed. An attempt claims the message (QUEUED → SENDING) before it
//! talks to the server, so a job retried after the server accepted (its
//! outcome lost) never delivers twice: it finds SENDING and marks the
//! message UNKNOWN. An error is recorded and retried with the queue's
//! back-off; the server refusing the message itself (55x) makes it FAILED
//! at once, as does the last attempt. Without `smtp_url` the message is
//! UNDELIVERABLE.

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
///
/// Only the attempt that moves the message from QUEUED to SENDING hands
/// it to the SMTP server. An attempt that finds it SENDING (an earlier
/// one sent it, or tried to, and its outcome was never recorded) does not
/// send it again: it marks it UNKNOWN for staff. A message already SENT,
/// FAILED, UNDELIVERABLE or UNKNOWN is left alone.
pub async fn deliver(
    store: &Store,
    clock: &dyn Clock,
    mailer: &Mailer,
    job: &DeliverEmail,
    last: bool,
) -> Result<(), JobError> {
    let email = match store.email(job.tenant_id, job.email_id).await {
        Ok(Some(email)) => email,
        Ok(None) => {
            return Err(JobError::Permanent(
                "the message is not in the outbox".into(),
            ));
        }
        Err(e) => return Err(before_send(store, clock, job, e, last).await),
    };
    match email.status {
        EmailStatus::Queued => {}
        EmailStatus::Sending => {
            store
                .mark_email_unknown(email.tenant_id, email.id, UNKNOWN_WHY, clock.now())
                .await
                .map_err(JobError::retry)?;
            tracing::warn!(email = %email.id, "an earlier attempt's outcome was lost: UNKNOWN");
            return Ok(());
        }
        EmailStatus::Sent
        | EmailStatus::Failed
        | EmailStatus::Undeliverable
        | EmailStatus::Unknown => return Ok(()),
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
        Err((_, BuildError::Internal(e))) => {
            return Err(before_send(store, clock, job, e, last).await);
        }
    };
    match store
        .claim_email(email.tenant_id, email.id, clock.now())
        .await
    {
        Ok(true) => {}
        // Another attempt claimed it: that one sends it.
        Ok(false) => return Ok(()),
        Err(e) => return Err(before_send(store, clock, job, e, last).await),
    }
    let sent = transport.send(message).await;
    after_send(store, clock, &email, sent, last).await
}

/// What an attempt that finds the message SENDING records.
pub const UNKNOWN_WHY: &str = "an earlier attempt handed this message to the SMTP server and its \
     outcome was not recorded: it may or may not have been delivered, so it is not sent again \
     (staff decide)";

/// An error before any SMTP conversation (the database, the invoice PDF,
/// the DKIM key, a missing tenant): recorded as `last_error`, the message
/// kept QUEUED for the retry or FAILED on the last attempt.
async fn before_send(
    store: &Store,
    clock: &dyn Clock,
    job: &DeliverEmail,
    e: impl std::fmt::Display,
    last: bool,
) -> JobError {
    let why = format!("before sending: {e}");
    if let Err(err) = store
        .record_email_error(job.tenant_id, job.email_id, &why, last, clock.now())
        .await
    {
        tracing::warn!(email = %job.email_id, error = %err, "cannot record why a message was not sent");
    }
    JobError::Retry(why)
}

/// Whether the server refused the message itself: a 5xx in the 55x range
/// (what MAIL FROM, RCPT TO and DATA are refused with: no such user,
/// mailbox unavailable, too big, not accepted). lettre does not say which
/// command an error answers, so the code decides. Any other error (an
/// authentication or STARTTLS refusal such as 530/534/535/538, a 4xx, a
/// connection or TLS failure) is the server's or the configuration's and
/// is retried.
pub fn refused_for_good(e: &lettre::transport::smtp::Error) -> bool {
    e.is_permanent()
        && e.status()
            .map(u16::from)
            .is_some_and(|code| (550..=559).contains(&code))
}

/// Records what the SMTP server answered: SENT, or the error (FAILED when
/// the server refused the message itself or on the last attempt, else
/// QUEUED for the retry).
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
    let permanent = refused_for_good(&e);
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
    match signed(store, clock, &fixed, mailer.settings.portal_url()).await {
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
        .ok_or_else(ServiceError::missing("tenant"))?;
    let own = store
        .tenant_sender(email.tenant_id)
        .await?
        .ok_or_else(ServiceError::missing("tenant"))?;
    let from = sender::effective(&tenant, &own, &mailer.settings);
    let id = message_id(email.id, from.email.domain());
    store
        .fix_email_headers(
            email.tenant_id,
            email.id,
            from.name.as_deref(),
            from.email.as_ref(),
            &id,
        )
        .await?
        .ok_or_else(ServiceError::missing("message"))
}

async fn signed(
    store: &Store,
    clock: &dyn Clock,
    email: &EmailRecord,
    portal_url: &str,
) -> Result<lettre::Message, BuildError> {
    let address = email
        .sender
        .as_deref()
        .unwrap_or_default()
        .parse()
        .map_err(|e| BuildError::Permanent(format!("the sender is not an address: {e}")))?;
    let from = sender::mailbox(email.sender_name.clone(), address);
    let domain = domain_of(from.email.as_ref())
        .ok_or_else(|| BuildError::Permanent("the sender has no domain".into()))?;
    let key = dkim::key_for(store, email.tenant_id, &domain, clock.now()).await?;
    let config = dkim::signing_config(store, &key)?;
    let mut message = message::build(store, email, from, portal_url).await?;
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
