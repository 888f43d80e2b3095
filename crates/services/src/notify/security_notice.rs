//! What the security notices to a user (a new sign-in, a second factor
//! turned on or off, a new API token) have in common: who it is to, when
//! (UTC), from which address if known, and the advice if it was not them
//! (the `not_you` template part). Never a secret.

use mpanel_store::UserRecord;
use serde::Serialize;
use time::OffsetDateTime;

use super::fields::{addressee, minute};
use crate::Context;

/// The part of a notice's context every security kind has.
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    /// The user's display name.
    pub name: String,
    /// The account's address.
    pub email: String,
    /// The tenant, who signs the message.
    pub sender: String,
    /// When it happened (UTC, to the minute).
    pub at: String,
    /// The address the user signed in from, when known.
    pub ip: Option<String>,
}

impl Notice {
    /// Made-up values, to check a tenant's templates with.
    pub fn sample() -> Self {
        Self {
            name: "Jane Doe".into(),
            email: "jane@example.org".into(),
            sender: "Host & Co".into(),
            at: "2026-11-21 09:05 UTC".into(),
            ip: Some("192.0.2.7".into()),
        }
    }
}

impl Notice {
    pub(crate) fn new(
        user: &UserRecord,
        tenant_name: &str,
        ip: Option<String>,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            name: addressee(user),
            email: user.email.clone(),
            sender: tenant_name.to_owned(),
            at: minute(now),
            ip: ip.filter(|ip| !ip.trim().is_empty()),
        }
    }
}

/// Where the request that made the change came from (not where its
/// session was opened: a stolen session is used from elsewhere).
pub(crate) fn caller_ip(cx: &Context) -> Option<String> {
    cx.ip.clone()
}
