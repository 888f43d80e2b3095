//! "Webhook endpoint disabled": sent to each of the tenant's active
//! tenant admins when an endpoint is disabled after failing for days, in
//! the transaction that disables it.

use mpanel_domain::identity::Role;
use mpanel_domain::notify::EmailKind;
use mpanel_store::webhooks::WebhookEndpointRecord;
use mpanel_store::{TenantRecord, Tx};
use serde::Serialize;
use time::OffsetDateTime;

use super::fields::{addressee, minute};
use super::outbox;
use crate::ServiceError;

/// What the templates of this kind see, and nothing else.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookEndpointDisabled {
    pub name: String,
    pub sender: String,
    pub url: String,
    pub description: String,
    /// When the failures began, and when it was disabled (UTC).
    pub failing_since: String,
    pub at: String,
}

impl WebhookEndpointDisabled {
    /// Made-up values, to check a tenant's templates with.
    pub fn sample() -> Self {
        Self {
            name: "Ann".into(),
            sender: "mPanel for Host & Co".into(),
            url: "https://hooks.example.com/in".into(),
            description: "ERP".into(),
            failing_since: "2026-11-16 09:00 UTC".into(),
            at: "2026-11-21 09:00 UTC".into(),
        }
    }
}

/// The endpoint's URL without what may be a secret in it (user and
/// password, query, fragment).
fn shown_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) => {
            // Cannot fail for an http(s) URL, the only kind an endpoint has.
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.set_fragment(None);
            url.to_string()
        }
        Err(_) => String::new(),
    }
}

/// Queues one message per active tenant admin; answers how many.
pub(crate) async fn enqueue_in(
    tx: &mut Tx,
    tenant: &TenantRecord,
    endpoint: &WebhookEndpointRecord,
    since: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<usize, ServiceError> {
    let admins = tx
        .active_users_with_role(tenant.id, Role::TenantAdmin)
        .await?;
    for admin in &admins {
        let context = WebhookEndpointDisabled {
            name: addressee(admin),
            sender: format!("mPanel for {}", tenant.name),
            url: shown_url(&endpoint.url),
            description: endpoint.description.clone(),
            failing_since: minute(since),
            at: minute(now),
        };
        outbox::enqueue_plain(
            tx,
            tenant.id,
            EmailKind::WebhookEndpointDisabled,
            &admin.email,
            &context,
            now,
        )
        .await?;
    }
    Ok(admins.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_credentials_or_query() {
        assert_eq!(
            shown_url("https://user:pw@hooks.example.com/in?token=abc#x"),
            "https://hooks.example.com/in"
        );
        assert_eq!(shown_url("not a url"), "");
    }
}
