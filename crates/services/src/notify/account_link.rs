//! "Invitation" and "password reset": a message with a link to set a
//! password. The templates see the placeholder for the link; the link
//! itself (with its token) is sealed beside the message.

use mpanel_domain::EmailId;
use mpanel_domain::identity::account_link::LinkPurpose;
use mpanel_domain::notify::{EmailKind, LINK_PLACEHOLDER};
use mpanel_store::{TenantRecord, Tx, UserRecord};
use serde::Serialize;
use time::OffsetDateTime;

use super::fields::minute;
use super::outbox::{self, NewEmail};
use super::templates;
use crate::ServiceError;

/// What the templates of these kinds see, and nothing else.
#[derive(Debug, Clone, Serialize)]
pub struct AccountLink {
    pub name: String,
    pub email: String,
    pub tenant_name: String,
    /// The link (a placeholder until the message is built).
    pub link: String,
    /// When the link stops working (UTC, to the minute).
    pub expires_at: String,
    /// How long it works, in minutes.
    pub valid_minutes: i64,
}

fn kind(purpose: LinkPurpose) -> EmailKind {
    match purpose {
        LinkPurpose::Invitation => EmailKind::Invitation,
        LinkPurpose::PasswordReset => EmailKind::PasswordReset,
    }
}

/// Queues the message that carries `path` (the link below the portal's
/// URL, token included) to `user`, for a link expiring at `expires_at`.
pub(crate) async fn enqueue_in(
    tx: &mut Tx,
    tenant: &TenantRecord,
    user: &UserRecord,
    purpose: LinkPurpose,
    path: String,
    now: OffsetDateTime,
) -> Result<EmailId, ServiceError> {
    let context = AccountLink {
        name: user.display_name.clone(),
        email: user.email.clone(),
        tenant_name: tenant.name.clone(),
        link: LINK_PLACEHOLDER.into(),
        expires_at: minute(now + purpose.ttl()),
        valid_minutes: purpose.ttl().whole_minutes(),
    };
    let email = NewEmail {
        tenant: tenant.id,
        kind: kind(purpose),
        recipient: user.email.clone(),
        rendered: templates::render(kind(purpose), &context)?,
        attachments: Vec::new(),
        link: Some(path),
    };
    outbox::enqueue(tx, email, now).await
}
