//! "Service ready": sent to the customer when a subscription's
//! provisioning completes, in the transaction of its `subscription.activate`
//! step. What was made is known to the provisioning crate (it holds the
//! servers' settings), which calls [`enqueue_in`] with it; no password is
//! ever in it.

use mpanel_domain::notify::EmailKind;
use mpanel_domain::{EmailId, SubscriptionId};
use mpanel_store::{TenantRecord, Tx};
use serde::Serialize;
use time::OffsetDateTime;

use super::outbox;
use super::service_status::service_names;
use crate::ServiceError;

/// What provisioning made, as the customer needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Made {
    /// The DNS zone's name servers (none: no zone was made).
    pub name_servers: Vec<String>,
    /// The web server's public address, when a site was made.
    pub web_address: Option<String>,
    /// The site's SFTP user.
    pub sftp_user: Option<String>,
    /// The mailboxes made.
    pub mailboxes: Vec<String>,
    /// The server mail clients connect to (IMAP and SMTP).
    pub mail_host: Option<String>,
}

/// What the templates of this kind see, and nothing else.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceReady {
    pub name: String,
    pub sender: String,
    pub service: String,
    pub domain: Option<String>,
    #[serde(flatten)]
    pub made: Made,
}

impl ServiceReady {
    /// Made-up values, to check a tenant's templates with.
    pub fn sample() -> Self {
        Self {
            name: "Jane Doe".into(),
            sender: "Host & Co".into(),
            service: "Web Pro".into(),
            domain: Some("example.org".into()),
            made: Made {
                name_servers: vec!["ns1.host.example".into(), "ns2.host.example".into()],
                web_address: Some("192.0.2.10".into()),
                sftp_user: Some("mp0123".into()),
                mailboxes: vec!["postmaster@example.org".into()],
                mail_host: Some("mail.host.example".into()),
            },
        }
    }
}

/// Queues the message for the tenant's subscription `id`, just activated
/// in `tx`, to its customer.
pub async fn enqueue_in(
    tx: &mut Tx,
    tenant: &TenantRecord,
    id: SubscriptionId,
    made: Made,
    now: OffsetDateTime,
) -> Result<EmailId, ServiceError> {
    let sub = tx
        .subscription_for_update(tenant.id, id)
        .await?
        .ok_or_else(ServiceError::missing("subscription"))?;
    let customer = tx
        .customer(tenant.id, sub.customer_id)
        .await?
        .ok_or_else(ServiceError::missing("customer"))?;
    let (service, domain) = service_names(tx, &sub).await?;
    let context = ServiceReady {
        name: customer.name,
        sender: tenant.name.clone(),
        service,
        domain,
        made,
    };
    outbox::enqueue_plain(
        tx,
        tenant.id,
        EmailKind::ServiceReady,
        &customer.email,
        &context,
        now,
    )
    .await
}
