//! E-mail rules: where an outbox message stands, what kinds of message
//! exist, the `notify.email` job's payload, and how a message's
//! `Message-ID` and a DKIM key's DNS record are named.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::jobs::JobPayload;
use crate::{DkimKeyId, EmailId, InvoiceId, TenantId};

/// The job that delivers one outbox message.
pub const EMAIL_JOB: &str = "notify.email";

/// Where an outbox message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EmailStatus {
    /// Waiting for its job (first attempt, or a retry after a transient
    /// SMTP error).
    Queued,
    /// Claimed by an attempt that is handing it to the SMTP server; only
    /// the attempt that moved it here from QUEUED sends it.
    Sending,
    /// The SMTP server accepted it: it is never sent again.
    Sent,
    /// The SMTP server refused it for good (5xx), or retries ran out.
    Failed,
    /// No `smtp_url` is configured: kept here, not sent.
    Undeliverable,
    /// Handed to the SMTP server by an attempt whose outcome was never
    /// recorded (a crash, a lost lease, a database error): it may or may
    /// not have been delivered, so it is not sent again; staff decide.
    Unknown,
}

impl EmailStatus {
    pub const ALL: [EmailStatus; 6] = [
        Self::Queued,
        Self::Sending,
        Self::Sent,
        Self::Failed,
        Self::Undeliverable,
        Self::Unknown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Sending => "SENDING",
            Self::Sent => "SENT",
            Self::Failed => "FAILED",
            Self::Undeliverable => "UNDELIVERABLE",
            Self::Unknown => "UNKNOWN",
        }
    }
}

impl fmt::Display for EmailStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EmailStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown e-mail status {s:?}"))
    }
}

/// What a message is about; each kind has its own templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EmailKind {
    /// An invoice was issued (its PDF attached).
    InvoiceIssued,
    /// An invoice is overdue (a dunning step).
    InvoiceReminder,
    /// A new user's link to set a password.
    Invitation,
    /// A link to set a new password.
    PasswordReset,
    /// A payment was recorded against an invoice.
    PaymentReceived,
    /// A subscription's provisioning completed: the service is live.
    ServiceReady,
    /// A subscription was suspended.
    ServiceSuspended,
    /// A suspended subscription is active again.
    ServiceRestored,
    /// A subscription ended (cancelled, terminated or expired).
    SubscriptionCancelled,
    /// A user signed in from an address none of their sessions used.
    NewSignIn,
    /// A second factor was turned on or off.
    MfaChanged,
    /// An API token was created.
    ApiTokenCreated,
    /// A webhook endpoint was disabled after failing for days.
    WebhookEndpointDisabled,
}

impl EmailKind {
    pub const ALL: [EmailKind; 13] = [
        Self::InvoiceIssued,
        Self::InvoiceReminder,
        Self::Invitation,
        Self::PasswordReset,
        Self::PaymentReceived,
        Self::ServiceReady,
        Self::ServiceSuspended,
        Self::ServiceRestored,
        Self::SubscriptionCancelled,
        Self::NewSignIn,
        Self::MfaChanged,
        Self::ApiTokenCreated,
        Self::WebhookEndpointDisabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvoiceIssued => "INVOICE_ISSUED",
            Self::InvoiceReminder => "INVOICE_REMINDER",
            Self::Invitation => "INVITATION",
            Self::PasswordReset => "PASSWORD_RESET",
            Self::PaymentReceived => "PAYMENT_RECEIVED",
            Self::ServiceReady => "SERVICE_READY",
            Self::ServiceSuspended => "SERVICE_SUSPENDED",
            Self::ServiceRestored => "SERVICE_RESTORED",
            Self::SubscriptionCancelled => "SUBSCRIPTION_CANCELLED",
            Self::NewSignIn => "NEW_SIGN_IN",
            Self::MfaChanged => "MFA_CHANGED",
            Self::ApiTokenCreated => "API_TOKEN_CREATED",
            Self::WebhookEndpointDisabled => "WEBHOOK_ENDPOINT_DISABLED",
        }
    }

    /// Security notices: always in the built-in templates (a tenant admin
    /// cannot reword the alert about their own change), and in the outbox
    /// only for admins (who may read security events and webhooks).
    pub fn security_notice(self) -> bool {
        matches!(
            self,
            Self::NewSignIn
                | Self::MfaChanged
                | Self::ApiTokenCreated
                | Self::WebhookEndpointDisabled
                | Self::PasswordReset
        )
    }

    /// Whether messages of this kind carry a link with a secret (kept
    /// sealed beside the message, put in when it is built).
    pub fn carries_link(self) -> bool {
        matches!(self, Self::Invitation | Self::PasswordReset)
    }
}

impl FromStr for EmailKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown e-mail kind {s:?}"))
    }
}

/// An attachment, stored as what regenerates it (not its bytes): a PDF is
/// laid out again from the frozen invoice when the message is built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Attachment {
    InvoicePdf { invoice_id: InvoiceId },
}

/// The `notify.email` job's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverEmail {
    pub tenant_id: TenantId,
    pub email_id: EmailId,
}

impl JobPayload for DeliverEmail {
    const KIND: &'static str = EMAIL_JOB;
}

/// The domain of an address (`billing@example.com` → `example.com`), in
/// lower case.
pub fn domain_of(address: &str) -> Option<String> {
    let (local, domain) = address.rsplit_once('@')?;
    (!local.is_empty() && !domain.is_empty()).then(|| domain.to_ascii_lowercase())
}

/// The `Message-ID` of an outbox message sent from `domain`: derived from
/// the message's id, so every attempt carries the same one and a receiver
/// can tell a resend from a new message.
pub fn message_id(id: EmailId, domain: &str) -> String {
    format!("<{}@{domain}>", id.as_uuid().simple())
}

/// A DKIM key's selector: `mp` and the random tail of its id, so two
/// tenants sending from the same domain publish two records.
pub fn dkim_selector(id: DkimKeyId) -> String {
    let hex = id.as_uuid().simple().to_string();
    format!("mp{}", &hex[hex.len() - 12..])
}

/// The DNS name of a DKIM key's TXT record.
pub fn dkim_record_name(selector: &str, domain: &str) -> String {
    format!("{selector}._domainkey.{domain}")
}

/// The TXT value that publishes an RSA public key (`p=`: base64 of its
/// DER SubjectPublicKeyInfo).
pub fn dkim_record_value(public_key_b64: &str) -> String {
    format!("v=DKIM1; k=rsa; p={public_key_b64}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_kinds_round_trip() {
        for s in EmailStatus::ALL {
            assert_eq!(s.as_str().parse::<EmailStatus>().unwrap(), s);
        }
        for k in EmailKind::ALL {
            assert_eq!(k.as_str().parse::<EmailKind>().unwrap(), k);
        }
        assert!("sent".parse::<EmailStatus>().is_err());
    }

    #[test]
    fn message_ids_are_stable_per_message() {
        let id = EmailId::new();
        assert_eq!(message_id(id, "example.com"), message_id(id, "example.com"));
        assert_ne!(
            message_id(id, "example.com"),
            message_id(EmailId::new(), "example.com")
        );
        assert!(message_id(id, "example.com").ends_with("@example.com>"));
    }

    #[test]
    fn selectors_differ_per_key_and_name_the_record() {
        let (a, b) = (DkimKeyId::new(), DkimKeyId::new());
        assert_ne!(dkim_selector(a), dkim_selector(b));
        assert_eq!(dkim_selector(a).len(), 14);
        assert_eq!(
            dkim_record_name("mp1", "example.com"),
            "mp1._domainkey.example.com"
        );
        assert_eq!(dkim_record_value("QUJD"), "v=DKIM1; k=rsa; p=QUJD");
    }

    #[test]
    fn domains_of_addresses() {
        assert_eq!(
            domain_of("Billing@Example.COM").as_deref(),
            Some("example.com")
        );
        assert_eq!(domain_of("nobody"), None);
        assert_eq!(domain_of("@example.com"), None);
    }

    #[test]
    fn attachments_are_tagged() {
        let id = InvoiceId::new();
        let json = serde_json::to_value(Attachment::InvoicePdf { invoice_id: id }).unwrap();
        assert_eq!(json["kind"], "INVOICE_PDF");
    }
}
