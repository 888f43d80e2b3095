//! Who a tenant's messages come from: the tenant's own sender name and
//! address when set, else the tenant's name at the platform's address.

use lettre::Address;
use lettre::message::Mailbox;
use mpanel_store::TenantRecord;
use mpanel_store::notify::TenantSender;

use super::settings::MailSettings;

/// The `From` of the tenant's messages: its display name (control
/// characters removed, `None` when nothing is left) and its address.
pub fn effective(tenant: &TenantRecord, own: &TenantSender, mail: &MailSettings) -> Mailbox {
    let address = own
        .address
        .as_deref()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| mail.sender.email.clone());
    let name = own
        .name
        .as_deref()
        .and_then(display_name)
        .or_else(|| display_name(&tenant.name));
    mailbox(name, address)
}

/// A mailbox built from its two parts, never from formatted text.
pub fn mailbox(name: Option<String>, address: Address) -> Mailbox {
    Mailbox::new(name.as_deref().and_then(display_name), address)
}

/// `name` without control characters (a CR or LF would end the header),
/// trimmed; `None` when nothing is left.
pub fn display_name(name: &str) -> Option<String> {
    let clean: String = name.chars().filter(|c| !c.is_control()).collect();
    let clean = clean.trim();
    (!clean.is_empty()).then(|| clean.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_with_line_breaks_cannot_add_headers() {
        let address: Address = "billing@example.test".parse().unwrap();
        let from = mailbox(Some("Acme\r\nBcc: x@evil.test".into()), address.clone());
        assert_eq!(from.name.as_deref(), Some("AcmeBcc: x@evil.test"));
        // Formatting it (as the header and the logs do) does not panic and
        // holds no line break.
        let shown = from.to_string();
        assert!(!shown.contains('\r') && !shown.contains('\n'), "{shown}");
        let message = lettre::Message::builder()
            .from(from)
            .to("jane@example.test".parse().unwrap())
            .subject("s")
            .body(String::from("b"))
            .unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        assert!(
            !raw.lines().any(|l| l.starts_with("Bcc:")),
            "no header injected: {raw}"
        );
        assert_eq!(mailbox(Some("\r\n\t ".into()), address).name, None);
        assert_eq!(display_name(" Own\u{7}Hosting "), Some("OwnHosting".into()));
    }
}
