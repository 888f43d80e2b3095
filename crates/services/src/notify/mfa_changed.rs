//! "Second factor changed": sent to a user when a second factor is turned
//! on (TOTP confirmed, a passkey registered) or they are all turned off,
//! in the transaction of the change.

use mpanel_domain::EmailId;
use mpanel_domain::notify::EmailKind;
use mpanel_store::Tx;
use serde::Serialize;

use super::outbox;
use super::security_notice::Notice;
use crate::{Context, ServiceError};

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MfaChange {
    TotpOn,
    PasskeyAdded,
    AllOff,
}

/// What the templates of this kind see, and nothing else.
#[derive(Debug, Clone, Serialize)]
pub struct MfaChanged {
    #[serde(flatten)]
    pub notice: Notice,
    /// A factor was added (else every factor was removed).
    pub enabled: bool,
    /// The factor added, in words.
    pub method: String,
}

impl MfaChanged {
    /// Made-up values, to check a tenant's templates with.
    pub fn sample() -> Self {
        Self {
            notice: Notice::sample(),
            enabled: true,
            method: "an authenticator app".into(),
        }
    }
}

fn method(change: MfaChange, passkey_name: Option<&str>) -> String {
    match (change, passkey_name) {
        (MfaChange::TotpOn, _) => "an authenticator app (one-time codes)".into(),
        (MfaChange::PasskeyAdded, Some(name)) if !name.trim().is_empty() => {
            format!("the passkey \"{}\"", name.trim())
        }
        (MfaChange::PasskeyAdded, _) => "a passkey".into(),
        (MfaChange::AllOff, _) => String::new(),
    }
}

/// Queues the message to the signed-in user of `cx`; `ip` is where the
/// session was signed in from (read before the transaction).
pub(crate) async fn enqueue_in(
    tx: &mut Tx,
    cx: &Context,
    change: MfaChange,
    passkey_name: Option<&str>,
    ip: Option<String>,
) -> Result<EmailId, ServiceError> {
    let who = &cx.principal;
    let now = cx.now();
    let user = tx
        .user(who.tenant_id, who.user_id)
        .await?
        .ok_or_else(ServiceError::missing("user"))?;
    let context = MfaChanged {
        notice: Notice::new(&user, &cx.tenant.name, ip, now),
        enabled: change != MfaChange::AllOff,
        method: method(change, passkey_name),
    };
    outbox::enqueue_plain(
        tx,
        who.tenant_id,
        EmailKind::MfaChanged,
        &user.email,
        &context,
        now,
    )
    .await
}
