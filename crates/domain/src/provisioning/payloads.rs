//! The payloads of the provisioning jobs: the services queue them and the
//! provisioning workers decode them, so both sides share these types
//! instead of building and reading JSON by hand.

use crate::{ResourceId, SubscriptionId};
use serde::{Deserialize, Serialize};

use super::steps::{PROVISION_JOB, SFTP_JOB};
use crate::TenantId;
use crate::catalog::ProvisioningTemplate;
use crate::jobs::JobPayload;

/// The `provision.subscription` job's payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvisionSubscription {
    pub subscription_id: SubscriptionId,
    pub template: ProvisioningTemplate,
    pub domain: Option<String>,
    /// The first mailbox's password hash, when the customer chose one
    /// with the order; otherwise mailboxes get a password nobody knows
    /// until one is set.
    #[serde(default)]
    pub mailbox_password_hash: Option<String>,
    /// The tenant it provisions for (jobs queued before it was recorded
    /// have none): the queues show each tenant its share.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<TenantId>,
}

impl JobPayload for ProvisionSubscription {
    const KIND: &'static str = PROVISION_JOB;
}

/// The payload of the hosting account jobs (suspend, unsuspend,
/// terminate: the action names the kind).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostingAction {
    pub tenant_id: TenantId,
    pub hosting_account_id: ResourceId,
}

/// The payload of `mail.account.create` and `mail.account.password` (a
/// hash, never the password).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailPassword {
    pub tenant_id: TenantId,
    pub mail_account_id: ResourceId,
    pub password_hash: String,
}

/// The payload of `hosting.account.sftp` (a crypt hash, never the
/// password; `keys` replaces every key, `[]` removes them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SftpAccess {
    pub tenant_id: TenantId,
    pub hosting_account_id: ResourceId,
    #[serde(default)]
    pub password_hash: Option<String>,
    #[serde(default)]
    pub keys: Option<Vec<String>>,
}

impl JobPayload for SftpAccess {
    const KIND: &'static str = SFTP_JOB;
}
