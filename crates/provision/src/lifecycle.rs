//! Lifecycle jobs for what provisioning made: suspend (the site answers
//! 503, mail logins are refused), unsuspend, terminate (mailboxes deleted,
//! the site archived and removed, the zone deleted), and a mailbox's new
//! password. Each driver action is idempotent, so a retry is safe.

use mpanel_domain::provisioning::ResourceStatus;
use mpanel_store::provisioning::{ResourceKind, ResourceRecord};

use crate::saga::Provisioner;
use crate::{DriverError, nodes};

pub use mpanel_domain::provisioning::{
    MAIL_PASSWORD_JOB, SFTP_JOB, SUSPEND_JOB, TERMINATE_JOB, UNSUSPEND_JOB,
};

pub use mpanel_domain::provisioning::payloads::{HostingAction, MailPassword, SftpAccess};

fn store_err(e: mpanel_store::StoreError) -> DriverError {
    DriverError::Transient(format!("database: {e}"))
}

/// A job for an account the tenant does not have: no retry finds it.
fn no_such_account() -> DriverError {
    DriverError::Permanent("no such account".into())
}

impl Provisioner {
    async fn site(&self, a: &HostingAction) -> Result<ResourceRecord, DriverError> {
        self.store
            .resource(
                ResourceKind::HostingAccount,
                a.tenant_id,
                a.hosting_account_id,
            )
            .await
            .map_err(store_err)?
            .ok_or_else(no_such_account)
    }

    async fn mailboxes_of(
        &self,
        site: &ResourceRecord,
    ) -> Result<Vec<ResourceRecord>, DriverError> {
        self.store
            .resources_of(ResourceKind::MailAccount, site.subscription_id)
            .await
            .map_err(store_err)
    }

    /// Suspends (`true`) or unsuspends the site and its subscription's
    /// mailboxes.
    pub async fn set_suspended(
        &self,
        a: &HostingAction,
        suspended: bool,
    ) -> Result<(), DriverError> {
        let site = self.site(a).await?;
        if site.status == ResourceStatus::Terminated {
            return Err(DriverError::Permanent(
                "the hosting account is terminated".into(),
            ));
        }
        let sb = self.secrets()?;
        let server = self.server(site.server_id).await?;
        let (web, _keys) = nodes::web(sb, &server)?;
        if suspended {
            web.suspend(&site.name).await?;
        } else {
            web.unsuspend(&site.name).await?;
        }
        let status = if suspended {
            ResourceStatus::Suspended
        } else {
            ResourceStatus::Active
        };
        for mbox in self.mailboxes_of(&site).await? {
            if mbox.status == ResourceStatus::Pending {
                continue;
            }
            let server = self.server(mbox.server_id).await?;
            let (mail, _keys) = nodes::mail(sb, &server)?;
            if suspended {
                mail.suspend(&mbox.name).await?;
            } else {
                mail.unsuspend(&mbox.name).await?;
            }
            self.set_status(ResourceKind::MailAccount, mbox.id, status, None)
                .await?;
        }
        self.set_status(ResourceKind::HostingAccount, site.id, status, None)
            .await
    }

    /// Terminates: mailboxes deleted, the site archived and removed, the
    /// subscription's zone deleted.
    pub async fn terminate(&self, a: &HostingAction) -> Result<(), DriverError> {
        let site = self.site(a).await?;
        if site.status == ResourceStatus::Terminated {
            return Ok(());
        }
        let sb = self.secrets()?;
        for mbox in self.mailboxes_of(&site).await? {
            let server = self.server(mbox.server_id).await?;
            let (mail, _keys) = nodes::mail(sb, &server)?;
            mail.delete(&mbox.name).await?;
            self.set_status(
                ResourceKind::MailAccount,
                mbox.id,
                ResourceStatus::Deleted,
                None,
            )
            .await?;
        }
        let server = self.server(site.server_id).await?;
        let (web, _keys) = nodes::web(sb, &server)?;
        let archive = web
            .terminate(&site.name, &crate::web::account_user(site.id))
            .await?;
        // The key went with the site's folder; the certificate is revoked.
        self.revoke_certificates(&site).await?;
        for zone in self
            .store
            .resources_of(ResourceKind::DnsZone, site.subscription_id)
            .await
            .map_err(store_err)?
        {
            let server = self.server(zone.server_id).await?;
            nodes::dns(sb, &server)?.delete_zone(&zone.name).await?;
            self.set_status(
                ResourceKind::DnsZone,
                zone.id,
                ResourceStatus::Deleted,
                None,
            )
            .await?;
        }
        self.set_status(
            ResourceKind::HostingAccount,
            site.id,
            ResourceStatus::Terminated,
            archive.as_deref(),
        )
        .await
    }

    /// Makes a further mailbox recorded as PENDING, then marks it ACTIVE.
    pub async fn create_mailbox(&self, m: &MailPassword) -> Result<(), DriverError> {
        let mbox = self
            .store
            .resource(ResourceKind::MailAccount, m.tenant_id, m.mail_account_id)
            .await
            .map_err(store_err)?
            .ok_or_else(no_such_account)?;
        if mbox.status != ResourceStatus::Pending {
            return Ok(());
        }
        let server = self.server(mbox.server_id).await?;
        let (mail, _keys) = nodes::mail(self.secrets()?, &server)?;
        let quota = mbox
            .quota_mb
            .and_then(|q| u32::try_from(q).ok())
            .unwrap_or(0);
        mail.ensure_mailbox(&mbox.name, &m.password_hash, quota)
            .await?;
        self.set_status(
            ResourceKind::MailAccount,
            mbox.id,
            ResourceStatus::Active,
            None,
        )
        .await
    }

    /// Sets a mailbox's password (already hashed for Dovecot).
    pub async fn set_mail_password(&self, m: &MailPassword) -> Result<(), DriverError> {
        let mbox = self
            .store
            .resource(ResourceKind::MailAccount, m.tenant_id, m.mail_account_id)
            .await
            .map_err(store_err)?
            .ok_or_else(no_such_account)?;
        if mbox.status == ResourceStatus::Deleted {
            return Err(DriverError::Permanent("the mailbox is deleted".into()));
        }
        let server = self.server(mbox.server_id).await?;
        let (mail, _keys) = nodes::mail(self.secrets()?, &server)?;
        mail.set_password(&mbox.name, &m.password_hash).await?;
        Ok(())
    }

    /// Sets a hosting account's SFTP keys and/or password on its node.
    pub async fn set_sftp(&self, s: &SftpAccess) -> Result<(), DriverError> {
        let site = self
            .site(&HostingAction {
                tenant_id: s.tenant_id,
                hosting_account_id: s.hosting_account_id,
            })
            .await?;
        match site.status {
            ResourceStatus::Terminated => {
                return Err(DriverError::Permanent(
                    "the hosting account is terminated".into(),
                ));
            }
            ResourceStatus::Pending | ResourceStatus::Creating => {
                return Err(DriverError::Transient(
                    "the hosting account is not made yet".into(),
                ));
            }
            _ => {}
        }
        let server = self.server(site.server_id).await?;
        let (web, _keys) = nodes::web(self.secrets()?, &server)?;
        let user = crate::web::account_user(site.id);
        if let Some(keys) = &s.keys {
            web.set_sftp_keys(&user, keys).await?;
        }
        if let Some(hash) = &s.password_hash {
            web.set_sftp_password(&user, hash).await?;
        }
        Ok(())
    }
}
