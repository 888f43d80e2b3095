//! Who a tenant's messages come from: the tenant's own sender name and
//! address when set, else the tenant's name at the platform's address.

use lettre::message::Mailbox;
use mpanel_store::TenantRecord;
use mpanel_store::notify::TenantSender;

use super::settings::MailSettings;

/// The `From` of the tenant's messages.
pub fn effective(tenant: &TenantRecord, own: &TenantSender, mail: &MailSettings) -> Mailbox {
    let address = own
        .address
        .as_deref()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| mail.sender.email.clone());
    let name = own
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| tenant.name.clone());
    Mailbox::new(Some(name), address)
}
