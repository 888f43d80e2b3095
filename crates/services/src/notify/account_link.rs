//! "Invitation" and "password reset": a message with a link to set a
//! password. The templates see the placeholder for the link; the link
//! itself (with its token) is sealed beside the message.

use mpanel_domain::EmailId;
use mpanel_domain::identity::account_link::LinkPurpose;
use mpanel_domain::notify::EmailKind;
use mpanel_store::{TenantRecord, Tx, UserRecord};
use serde::Serialize;
use time::OffsetDateTime;

use super::fields::minute;
use super::outbox::{self, Link, NewEmail};
use super::templates::{self, Templates};
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

impl AccountLink {
    /// Made-up values, to check a tenant's templates with.
    pub fn sample() -> Self {
        Self {
            name: "Jane Doe".into(),
            email: "jane@example.com".into(),
            tenant_name: "Host & Co".into(),
            link: "https://portal.example.com/invitation#token=sample".into(),
            expires_at: "2026-12-08 09:00 UTC".into(),
            valid_minutes: 60,
        }
    }
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
    let link = Link::new(path)?;
    let context = AccountLink {
        name: user.display_name.clone(),
        email: user.email.clone(),
        tenant_name: tenant.name.clone(),
        link: link.placeholder.clone(),
        expires_at: minute(now + purpose.ttl()),
        valid_minutes: purpose.ttl().whole_minutes(),
    };
    // A staff member's link is never in a template another admin wrote.
    let which = if user.role.is_staff() {
        Templates::BuiltIn
    } else {
        Templates::Tenant
    };
    let email = NewEmail {
        tenant: tenant.id,
        kind: kind(purpose),
        recipient: user.email.clone(),
        rendered: templates::render_in(tx, tenant.id, kind(purpose), &context, which).await?,
        attachments: Vec::new(),
        link: Some(link),
    };
    outbox::enqueue(tx, email, now).await
}
