//! "API token created": sent to the token's user in the transaction that
//! creates it: its name, scopes and expiry, never the secret (nor its
//! first characters).

use mpanel_domain::EmailId;
use mpanel_domain::notify::EmailKind;
use mpanel_store::Tx;
use mpanel_store::identity::api_tokens::ApiTokenRecord;
use serde::Serialize;

use super::fields::minute;
use super::outbox;
use super::security_notice::Notice;
use crate::{Context, ServiceError};

/// What the templates of this kind see, and nothing else.
#[derive(Debug, Clone, Serialize)]
pub struct ApiTokenCreated {
    #[serde(flatten)]
    pub notice: Notice,
    pub token_name: String,
    /// Its scopes, comma-separated.
    pub scopes: String,
    pub expires: String,
}

impl ApiTokenCreated {
    /// Made-up values, to check a tenant's templates with.
    pub fn sample() -> Self {
        Self {
            notice: Notice::sample(),
            token_name: "deploy".into(),
            scopes: "READ, BILLING".into(),
            expires: "2027-02-19 09:05 UTC".into(),
        }
    }
}

/// Queues the message for `token`, created in `tx` by the caller of `cx`
/// (signed in from `ip`).
pub(crate) async fn enqueue_in(
    tx: &mut Tx,
    cx: &Context,
    token: &ApiTokenRecord,
    ip: Option<String>,
) -> Result<EmailId, ServiceError> {
    let now = cx.now();
    let user = tx
        .user(token.tenant_id, token.user_id)
        .await?
        .ok_or_else(ServiceError::missing("user"))?;
    let context = ApiTokenCreated {
        notice: Notice::new(&user, &cx.tenant.name, ip, now),
        token_name: token.name.clone(),
        scopes: token
            .scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        expires: token
            .expires_at
            .map(minute)
            .unwrap_or_else(|| "never".into()),
    };
    outbox::enqueue_plain(
        tx,
        token.tenant_id,
        EmailKind::ApiTokenCreated,
        &user.email,
        &context,
        now,
    )
    .await
}
