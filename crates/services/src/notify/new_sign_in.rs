//! "New sign-in": sent to a user who signs in from an address (IPv4, or
//! IPv6 /64: the login throttle's client group) that none of their earlier
//! sessions came from, in the transaction that opens the session. Not for
//! an account's very first sign-in, nor when the address is unknown.

use mpanel_domain::EmailId;
use mpanel_domain::identity::throttle::client_group;
use mpanel_domain::notify::EmailKind;
use mpanel_store::{Tx, UserRecord};
use serde::Serialize;
use time::OffsetDateTime;

use super::outbox;
use super::security_notice::Notice;
use crate::ServiceError;

/// What the templates of this kind see, and nothing else.
#[derive(Debug, Clone, Serialize)]
pub struct NewSignIn {
    #[serde(flatten)]
    pub notice: Notice,
    pub user_agent: Option<String>,
}

impl NewSignIn {
    /// Made-up values, to check a tenant's templates with.
    pub fn sample() -> Self {
        Self {
            notice: Notice::sample(),
            user_agent: Some("Firefox".into()),
        }
    }
}

/// Whether a sign-in from `ip` is new for a user whose earlier sessions
/// came from `earlier` (each address and whether it is trusted; empty:
/// this is the first sign-in, not news).
pub(crate) fn is_new(ip: Option<&str>, earlier: &[(Option<String>, bool)]) -> bool {
    let Some(ip) = ip else {
        return false;
    };
    let group = client_group(ip);
    !earlier.is_empty()
        && !earlier
            .iter()
            .filter(|(_, trusted)| *trusted)
            .filter_map(|(seen, _)| seen.as_deref())
            .any(|seen| client_group(seen) == group)
}

/// Where a session is being opened from.
pub(crate) struct SignIn<'a> {
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub tenant_name: &'a str,
}

/// Queues the message when `user` signs in from a new address; call it
/// before the new session is written. Answers whether it queued one.
pub(crate) async fn enqueue_if_new_in(
    tx: &mut Tx,
    user: &UserRecord,
    sign_in: &SignIn<'_>,
    now: OffsetDateTime,
) -> Result<Option<EmailId>, ServiceError> {
    let earlier = tx.session_addresses(user.tenant_id, user.id).await?;
    if !is_new(sign_in.ip, &earlier) {
        return Ok(None);
    }
    let context = NewSignIn {
        notice: Notice::new(
            user,
            sign_in.tenant_name,
            sign_in.ip.map(str::to_owned),
            now,
        ),
        user_agent: sign_in
            .user_agent
            .map(plain_agent)
            .filter(|ua| !ua.is_empty()),
    };
    let id = outbox::enqueue_plain(
        tx,
        user.tenant_id,
        EmailKind::NewSignIn,
        &user.email,
        &context,
        now,
    )
    .await?;
    Ok(Some(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_address_group_no_earlier_session_used_is_new() {
        let seen = |ips: &[&str]| {
            ips.iter()
                .map(|ip| (Some((*ip).to_owned()), true))
                .collect::<Vec<_>>()
        };
        assert!(!is_new(Some("192.0.2.1"), &[]), "the first sign-in");
        assert!(!is_new(None, &seen(&["192.0.2.1"])), "an unknown address");
        assert!(!is_new(Some("192.0.2.1"), &seen(&["192.0.2.1"])));
        assert!(is_new(Some("192.0.2.2"), &seen(&["192.0.2.1"])));
        // One IPv6 /64 is one client.
        assert!(!is_new(
            Some("2001:db8:1:2::9"),
            &seen(&["2001:db8:1:2::1"])
        ));
        assert!(is_new(Some("2001:db8:1:3::1"), &seen(&["2001:db8:1:2::1"])));
        // Earlier sessions of unknown address do not make one familiar.
        assert!(is_new(Some("192.0.2.1"), &[(None, true)]));
        // An address whose sessions were ended for security is not known.
        let intruder = [(Some("192.0.2.9".to_owned()), false)];
        assert!(is_new(Some("192.0.2.9"), &intruder));
    }
}

/// What the client said it is, cut to a plain word list: whoever signs in
/// chooses it, so it must not read as a sentence or a link in an alert.
fn plain_agent(ua: &str) -> String {
    let kept: String = ua
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || " ./();_-".contains(*c))
        .take(60)
        .collect();
    kept.trim().to_owned()
}

#[cfg(test)]
mod agent_tests {
    use super::plain_agent;

    #[test]
    fn an_agent_cannot_carry_a_message_or_a_link() {
        assert_eq!(
            plain_agent("Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"),
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0"
        );
        let evil = plain_agent(
            "Support check: visit https://evil.example/fix?now=1 - no action needed, thanks!",
        );
        assert!(!evil.contains("://") && !evil.contains('?') && !evil.contains(':'));
        assert!(evil.chars().count() <= 60);
    }
}
