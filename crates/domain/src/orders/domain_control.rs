//! Proof that a customer controls the domain they ordered, before anything
//! of it goes live on the provider's nodes: either the domain is already
//! delegated to the provider's name servers, or a TXT record
//! `_mpanel-challenge.<domain>` holds the random token shown on the order.
//! Without it, anyone could order a name they do not own and have the
//! provider serve a site and accept mail for it (a phishing host on a real
//! brand's name) until the real owner notices.
//!
//! Pure rules; the DNS queries are the provisioning crate's.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// What a tenant requires before a domain goes live (a field of its
/// security policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DomainControl {
    /// Provision at once: the platform-wide name claim is the only check
    /// (for providers who check ownership themselves, e.g. as registrar).
    None,
    /// Wait until the domain is delegated to the provider's name servers or
    /// the TXT challenge holds the order's token.
    DelegationOrTxt,
}

impl DomainControl {
    pub fn requires_proof(self) -> bool {
        self == Self::DelegationOrTxt
    }
}

/// Where a domain's proof stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VerificationStatus {
    Pending,
    Verified,
}

impl VerificationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Verified => "VERIFIED",
        }
    }
}

impl std::str::FromStr for VerificationStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "PENDING" => Ok(Self::Pending),
            "VERIFIED" => Ok(Self::Verified),
            other => Err(format!("unknown verification status {other:?}")),
        }
    }
}

/// How control was (or may be) shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VerificationMethod {
    /// The TXT challenge holds the token.
    Txt,
    /// The domain's NS records are the provider's name servers.
    Delegation,
}

impl VerificationMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Txt => "TXT",
            Self::Delegation => "DELEGATION",
        }
    }
}

impl std::str::FromStr for VerificationMethod {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "TXT" => Ok(Self::Txt),
            "DELEGATION" => Ok(Self::Delegation),
            other => Err(format!("unknown verification method {other:?}")),
        }
    }
}

/// The label the challenge TXT record sits under.
pub const CHALLENGE_LABEL: &str = "_mpanel-challenge";

/// Random bytes in a token: 160 bits, beyond guessing.
pub const TOKEN_BYTES: usize = 20;

/// How long a paid order waits for its proof before provisioning gives up
/// (and undoes what it made, which is nothing yet).
pub const VERIFICATION_WINDOW: Duration = Duration::days(7);

/// `_mpanel-challenge.<domain>` (no trailing dot).
pub fn challenge_name(domain: &str) -> String {
    format!("{CHALLENGE_LABEL}.{}", domain.trim_end_matches('.'))
}

/// A token from fresh random bytes: `mpanel-verify=` and lower-case hex,
/// so a customer can tell it apart from other TXT values at that name.
pub fn token_from(bytes: &[u8; TOKEN_BYTES]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("mpanel-verify={hex}")
}

/// A name server name as compared: lower case, no trailing dot.
fn host(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The delegation the world sees points at the provider: there is at least
/// one NS record and every one of them is one of the provider's name
/// servers. A domain that still lists another provider's server beside
/// ours is not proven: that server's operator (whoever controls the
/// domain today) has not handed it over.
pub fn delegated_to(seen: &[String], provider: &[String]) -> bool {
    let provider: Vec<String> = provider.iter().map(|n| host(n)).collect();
    !seen.is_empty() && seen.iter().all(|ns| provider.contains(&host(ns)))
}

/// One of the TXT values at the challenge name is exactly the token (TXT
/// values of more than one string are joined first, as RFC 7208 does).
pub fn txt_proves(values: &[String], token: &str) -> bool {
    values.iter().any(|v| v.trim() == token)
}

/// The wait for proof has run out.
pub fn expired(created_at: OffsetDateTime, now: OffsetDateTime) -> bool {
    now - created_at >= VERIFICATION_WINDOW
}

/// The state an order shows for a provisioning step whose job is waiting
/// for the proof (the job itself is only pending: waiting is not failing).
pub const WAITING_FOR_VERIFICATION: &str = "WAITING_FOR_VERIFICATION";

/// A step of a job that is `pending_or_failed` waits for the proof when
/// the domain is not proven and a check has already found no proof.
pub fn step_waits_for_proof(
    pending_or_failed: bool,
    status: VerificationStatus,
    checked: bool,
) -> bool {
    pending_or_failed && status == VerificationStatus::Pending && checked
}

/// What a customer is asked to publish, as a line for a zone file.
pub fn instruction(domain: &str, token: &str) -> String {
    format!("{}. TXT \"{token}\"", challenge_name(domain))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn delegation_counts_only_when_every_ns_is_the_providers() {
        let ours = ns(&["ns1.example.net.", "ns2.example.net."]);
        assert!(delegated_to(&ns(&["NS1.example.net"]), &ours));
        assert!(delegated_to(
            &ns(&["ns2.example.net.", "ns1.example.net."]),
            &ours
        ));
        assert!(!delegated_to(&ns(&[]), &ours));
        assert!(!delegated_to(
            &ns(&["ns1.example.net.", "ns1.other-dns.example."]),
            &ours
        ));
        assert!(!delegated_to(&ns(&["ns1.example.net.evil.test."]), &ours));
        assert!(!delegated_to(&ns(&["ns1.example.net."]), &[]));
    }

    #[test]
    fn only_the_exact_token_proves() {
        let token = token_from(&[0xab; TOKEN_BYTES]);
        assert_eq!(token, format!("mpanel-verify={}", "ab".repeat(20)));
        assert!(txt_proves(&ns(&["v=spf1 -all", &token]), &token));
        assert!(!txt_proves(&ns(&["v=spf1 -all"]), &token));
        let wrong = token_from(&[0xac; TOKEN_BYTES]);
        assert!(!txt_proves(&ns(&[&wrong]), &token));
        assert!(!txt_proves(&ns(&[&token[..token.len() - 1]]), &token));
        assert!(!txt_proves(&ns(&[&format!("{token}0")]), &token));
    }

    #[test]
    fn names_and_window() {
        assert_eq!(challenge_name("shop.test."), "_mpanel-challenge.shop.test");
        assert_eq!(
            instruction("shop.test", "t"),
            "_mpanel-challenge.shop.test. TXT \"t\""
        );
        let t0 = OffsetDateTime::UNIX_EPOCH;
        assert!(!expired(t0, t0 + Duration::days(7) - Duration::seconds(1)));
        assert!(expired(t0, t0 + Duration::days(7)));
        assert_eq!(
            serde_json::to_value(DomainControl::DelegationOrTxt).unwrap(),
            "DELEGATION_OR_TXT"
        );
        assert_eq!("VERIFIED".parse(), Ok(VerificationStatus::Verified));
        assert_eq!("TXT".parse(), Ok(VerificationMethod::Txt));
    }
}
