//! The steps a provisioning template runs, in order.

use crate::catalog::ProvisioningTemplate;

/// The job kind that provisions a paid subscription, step by step.
pub const PROVISION_JOB: &str = "provision.subscription";
/// Lifecycle job kinds of a hosting account (its mailboxes and zone follow).
pub const SUSPEND_JOB: &str = "hosting.account.suspend";
pub const UNSUSPEND_JOB: &str = "hosting.account.unsuspend";
pub const TERMINATE_JOB: &str = "hosting.account.terminate";
/// A customer's further mailbox, within the plan's count.
pub const MAIL_CREATE_JOB: &str = "mail.account.create";
/// A mailbox's new password (the job carries its hash).
pub const MAIL_PASSWORD_JOB: &str = "mail.account.password";
/// A hosting account's SFTP access (password hash and/or public keys).
pub const SFTP_JOB: &str = "hosting.account.sftp";

/// One step of a template, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    DnsZone,
    Site,
    Mailboxes,
    /// A CloudPod: its node, VMID and address chosen (in mPanel's database).
    PodPlace,
    /// The template cloned to the pod's VMID (the task awaited).
    PodClone,
    /// Cores, memory, cloud-init and the disk grown to the plan.
    PodConfigure,
    /// The VM started and running.
    PodStart,
    Activate,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Self::DnsZone => "dns.zone.create",
            Self::Site => "hosting.account.create",
            Self::Mailboxes => "mail.account.create",
            Self::PodPlace => "cloudpod.place",
            Self::PodClone => "cloudpod.clone",
            Self::PodConfigure => "cloudpod.configure",
            Self::PodStart => "cloudpod.start",
            Self::Activate => "subscription.activate",
        }
    }
}

/// The steps a template needs.
pub fn plan(template: &ProvisioningTemplate) -> Vec<Step> {
    let mut steps = Vec::new();
    match template {
        ProvisioningTemplate::None => {}
        ProvisioningTemplate::CloudPod { .. } => steps.extend([
            Step::PodPlace,
            Step::PodClone,
            Step::PodConfigure,
            Step::PodStart,
        ]),
        ProvisioningTemplate::Hosting {
            dns_zone,
            mailboxes,
            ..
        } => {
            if *dns_zone {
                steps.push(Step::DnsZone);
            }
            steps.push(Step::Site);
            if *mailboxes > 0 {
                steps.push(Step::Mailboxes);
            }
        }
        ProvisioningTemplate::Email { .. } => steps.push(Step::Mailboxes),
    }
    steps.push(Step::Activate);
    steps
}
