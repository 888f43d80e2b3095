//! A paid subscription's provisioning, as one job that runs its steps in
//! order: `dns.zone.create`, `hosting.account.create`,
//! `mail.account.create`, then `subscription.activate`. Before the first
//! of them, when the tenant's policy says so, the customer must have
//! proven control of the domain (see [`crate::domain_control`]); until
//! then the job waits, having made nothing. Each step records
//! that it finished, so a retry resumes after the last finished one; each
//! driver action looks first, so repeating one makes nothing twice. A
//! permanent failure (or the last attempt's failure) undoes the finished
//! steps in reverse order, so nothing is left half-made.

use std::sync::Arc;

use mpanel_domain::billing::subscription::SubscriptionStatus;
use mpanel_domain::catalog::ProvisioningTemplate;
use mpanel_domain::cloudpods::PodStatus;
use mpanel_domain::dns::template_records;
use mpanel_domain::provisioning::{ResourceStatus, ServerRole, Step, StepState, place, plan};
use mpanel_domain::{Clock, ResourceId, ServerId, SubscriptionId};
use mpanel_services::notify::service_ready::Made;
use mpanel_services::secret_box::SecretBox;
use mpanel_store::Store;
use mpanel_store::provisioning::{ResourceKind, ResourceRecord, SubscriptionRef};
use mpanel_store::servers::ServerRecord;
use serde_json::{Value, json};

use crate::domain_control::{ControlSettings, Finding, look};
use crate::web::{SiteSpec, account_user};
use crate::{DriverError, nodes};

pub use mpanel_domain::provisioning::payloads::ProvisionSubscription;

/// Runs provisioning jobs against the inventory's servers.
#[derive(Clone)]
pub struct Provisioner {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub secrets: Option<SecretBox>,
    /// Where proofs of domain control are looked up.
    pub control: ControlSettings,
    /// Where sites' certificates come from.
    pub acme: crate::certificates::AcmeSettings,
}

fn store_err(e: mpanel_store::StoreError) -> DriverError {
    DriverError::Transient(format!("database: {e}"))
}

/// The address of mailbox `n` (from 1) of `domain`.
pub fn mailbox_address(domain: &str, n: u32) -> String {
    if n == 1 {
        format!("postmaster@{domain}")
    } else {
        format!("mailbox{n}@{domain}")
    }
}

/// The host a mail server's clients connect to (`mail_host` setting).
fn mail_host_of(mail: &ServerRecord) -> String {
    mail.settings
        .get("mail_host")
        .and_then(Value::as_str)
        .unwrap_or(&mail.address)
        .to_owned()
}

/// The public IPv4 of a web server (`public_ipv4` setting).
fn public_address(web: &ServerRecord) -> String {
    web.settings
        .get("public_ipv4")
        .and_then(Value::as_str)
        .unwrap_or(&web.address)
        .to_owned()
}

fn random_password() -> Result<String, DriverError> {
    let mut bytes = [0u8; 18];
    getrandom::fill(&mut bytes)
        .map_err(|e| DriverError::Transient(format!("no randomness: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Provisioner {
    pub(crate) fn secrets(&self) -> Result<&SecretBox, DriverError> {
        self.secrets.as_ref().ok_or_else(|| {
            DriverError::Permanent(
                "no secrets_key is configured: server credentials cannot be opened".into(),
            )
        })
    }

    /// The server a resource lives on. A resource's server is a foreign
    /// key and servers are never deleted, so a miss is a broken inventory
    /// that no retry mends.
    pub(crate) async fn server(&self, id: ServerId) -> Result<ServerRecord, DriverError> {
        self.store
            .server(id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| DriverError::Permanent(format!("server {id} is not in the inventory")))
    }

    /// Provisions the subscription; `last_attempt` turns a transient
    /// failure into a permanent one (and so runs compensation).
    pub async fn provision(
        &self,
        job: &ProvisionSubscription,
        last_attempt: bool,
    ) -> Result<(), DriverError> {
        let sub = self
            .store
            .subscription_ref(job.subscription_id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| DriverError::Permanent("the subscription is gone".into()))?;
        if sub.status != SubscriptionStatus::PendingActivation {
            return Ok(());
        }
        let done: Vec<String> = self
            .store
            .provisioning_steps(sub.id)
            .await
            .map_err(store_err)?
            .into_iter()
            .filter(|(_, state, _)| *state == StepState::Done)
            .map(|(step, _, _)| step)
            .collect();
        if let Some(domain) = &job.domain
            && let Err(err) = self.check_name_still_free(domain, sub.id).await
        {
            return Err(self.fail(&sub, err, "names", last_attempt).await);
        }
        // Once a step is done the domain went live before (proven, or
        // under an earlier policy): a resumed job goes on.
        if let Some(domain) = &job.domain
            && done.is_empty()
            && let Err(err) = self.check_control(domain, &sub).await
        {
            return Err(self.fail(&sub, err, "domain.verify", last_attempt).await);
        }
        for step in plan(&job.template) {
            if done.iter().any(|d| d == step.name()) {
                continue;
            }
            match self.run(step, &sub, job).await {
                Ok(detail) => self
                    .store
                    .mark_provisioning_step(
                        sub.id,
                        step.name(),
                        StepState::Done,
                        Some(&detail),
                        self.clock.now(),
                    )
                    .await
                    .map_err(store_err)?,
                Err(err) => return Err(self.fail(&sub, err, step.name(), last_attempt).await),
            }
        }
        Ok(())
    }

    /// A step (or the name check) failed: a transient failure is retried;
    /// otherwise what was made before is undone, so nothing is left
    /// half-made.
    async fn fail(
        &self,
        sub: &SubscriptionRef,
        err: DriverError,
        step: &str,
        last_attempt: bool,
    ) -> DriverError {
        if matches!(err, DriverError::Waiting { .. }) {
            return err;
        }
        if err.is_transient() && !last_attempt {
            return DriverError::Transient(format!("{step}: {err}"));
        }
        let failed = format!("{step}: {err}");
        self.note_pod_error(sub, &failed).await;
        match self.compensate(sub).await {
            Ok(()) => DriverError::Permanent(format!("{failed}; what was made before was removed")),
            Err(undo) => DriverError::Transient(format!(
                "{failed}; removing what was made failed ({undo}), retrying"
            )),
        }
    }

    /// The order was checked when it was placed; an overlapping name may
    /// have been taken since (or by a racing order in another tenant), so
    /// it is checked again before anything is made on the nodes.
    async fn check_name_still_free(
        &self,
        domain: &str,
        sub: SubscriptionId,
    ) -> Result<(), DriverError> {
        let holders = self
            .store
            .name_holders(domain, Some(sub))
            .await
            .map_err(store_err)?;
        if holders.is_empty() {
            Ok(())
        } else {
            Err(DriverError::Permanent(format!(
                "{domain} equals, contains or sits inside a name already in use on the platform"
            )))
        }
    }

    /// When the tenant's policy requires it, the customer has proven
    /// control of `domain`: it is delegated to the provider's name servers
    /// or its TXT challenge holds the order's token. Not yet: the job
    /// waits (nothing was made). Past the window: a permanent failure.
    async fn check_control(&self, domain: &str, sub: &SubscriptionRef) -> Result<(), DriverError> {
        use mpanel_domain::orders::domain_control::{
            VERIFICATION_WINDOW, VerificationStatus, expired, instruction,
        };
        let policy = mpanel_services::security::policy::load(&self.store, sub.tenant_id)
            .await
            .map_err(|e| DriverError::Transient(format!("the security policy: {e}")))?;
        if !policy.domain_control.requires_proof() {
            return Ok(());
        }
        let now = self.clock.now();
        let proof = match self
            .store
            .domain_verification(sub.id)
            .await
            .map_err(store_err)?
        {
            Some(proof) => proof,
            // An order placed before proofs existed: its token is made
            // now, and shown on the order from now on.
            None => {
                let token = mpanel_services::domain_control::new_token()
                    .map_err(|e| DriverError::Transient(e.to_string()))?;
                self.store
                    .ensure_domain_verification(sub.tenant_id, sub.id, domain, &token, now)
                    .await
                    .map_err(store_err)?
                    // Removed between insert and read: the next attempt makes it again.
                    .ok_or_else(|| DriverError::Transient("the domain proof went away".into()))?
            }
        };
        if proof.status == VerificationStatus::Verified {
            return Ok(());
        }
        let provider = self.provider_nameservers(sub).await?;
        // A name someone else held here may still be delegated to us by
        // its registrar: only the TXT token proves who orders it now.
        let dangling = self
            .store
            .domain_held_before(domain, sub.id)
            .await
            .map_err(store_err)?;
        let accepted: &[String] = if dangling { &[] } else { &provider };
        match look(&self.control, domain, &proof.token, accepted).await {
            Finding::Proven { method, seen } => {
                tracing::info!(%domain, subscription = %sub.id, method = method.as_str(), "domain control proven");
                self.store
                    .mark_domain_verified(sub.id, method, &seen, now)
                    .await
                    .map_err(store_err)
            }
            Finding::NotYet { seen } => {
                self.store
                    .note_domain_check(sub.id, &seen, now)
                    .await
                    .map_err(store_err)?;
                let since = proof.waiting_since.unwrap_or(now);
                if expired(since, now) {
                    return Err(DriverError::Permanent(format!(
                        "control of {domain} was not proven within {} days ({seen})",
                        VERIFICATION_WINDOW.whole_days()
                    )));
                }
                let delegate = if accepted.is_empty() {
                    String::new()
                } else {
                    format!(" or delegate it to {}", accepted.join(", "))
                };
                Err(DriverError::Waiting {
                    reason: format!(
                        "waiting for proof of control of {domain}: publish {}{delegate} ({seen})",
                        instruction(domain, &proof.token),
                    ),
                    retry_in: self.control.recheck,
                })
            }
        }
    }

    /// The name servers the subscription's zone gets: those of the DNS
    /// server it is placed on, or would be (none without a DNS server:
    /// then only the TXT record can prove control).
    async fn provider_nameservers(
        &self,
        sub: &SubscriptionRef,
    ) -> Result<Vec<String>, DriverError> {
        let placed = self
            .store
            .resources_of(ResourceKind::DnsZone, sub.id)
            .await
            .map_err(store_err)?
            .into_iter()
            .next();
        let server = match placed {
            Some(zone) => self.server(zone.server_id).await?,
            None => match self.place(ResourceKind::DnsZone, ServerRole::Dns).await {
                Ok(server) => server,
                Err(DriverError::Permanent(_)) => return Ok(Vec::new()),
                Err(other) => return Err(other),
            },
        };
        Ok(nodes::nameservers(&server))
    }

    /// Runs one step; each step moves its resources PENDING → CREATING →
    /// ACTIVE and answers the detail recorded with the step's DONE.
    async fn run(
        &self,
        step: Step,
        sub: &SubscriptionRef,
        job: &ProvisionSubscription,
    ) -> Result<Value, DriverError> {
        let domain = || {
            job.domain
                .clone()
                .ok_or_else(|| DriverError::Permanent("this template needs a domain".into()))
        };
        match step {
            Step::DnsZone => self.create_dns_zone(sub, job, &domain()?).await,
            Step::Site => self.create_site(sub, job, &domain()?).await,
            Step::Mailboxes => self.create_mailboxes(sub, job, &domain()?).await,
            Step::PodPlace => self.pod_place(sub).await,
            Step::PodClone => self.pod_clone(sub).await,
            Step::PodConfigure => self.pod_configure(sub).await,
            Step::PodStart => self.pod_start(sub).await,
            Step::Activate => self.activate(sub).await,
        }
    }

    /// `dns.zone.create`: the zone with the template's records, pointing at
    /// the web server and, when the plan has mailboxes, the mail host.
    async fn create_dns_zone(
        &self,
        sub: &SubscriptionRef,
        job: &ProvisionSubscription,
        domain: &str,
    ) -> Result<Value, DriverError> {
        let web_ip = self.web_ip(sub, job, domain).await?;
        let mail_host = self.mail_host(sub, job, domain).await?;
        let zone = self.placed(ResourceKind::DnsZone, sub, domain, job).await?;
        let server = self.server(zone.server_id).await?;
        let pdns = nodes::dns(self.secrets()?, &server)?;
        if zone.status == ResourceStatus::Pending {
            // Never touched by us: a zone already there is someone
            // else's, and is neither taken over nor removed.
            if pdns.zone(domain).await?.is_some() {
                return Err(DriverError::Permanent(format!(
                    "the zone {domain} already exists on the DNS server"
                )));
            }
            self.set_status(
                ResourceKind::DnsZone,
                zone.id,
                ResourceStatus::Creating,
                None,
            )
            .await?;
        }
        let records = template_records(domain, &web_ip, mail_host.as_deref());
        pdns.ensure_zone(domain, &nodes::nameservers(&server), &records)
            .await?;
        self.set_status(ResourceKind::DnsZone, zone.id, ResourceStatus::Active, None)
            .await?;
        Ok(json!({"zone_id": zone.id, "server_id": zone.server_id}))
    }

    /// The public IPv4 of the web server the site is (or will be) on.
    async fn web_ip(
        &self,
        sub: &SubscriptionRef,
        job: &ProvisionSubscription,
        domain: &str,
    ) -> Result<String, DriverError> {
        let site = self
            .placed(ResourceKind::HostingAccount, sub, domain, job)
            .await?;
        Ok(public_address(&self.server(site.server_id).await?))
    }

    /// The mail host the zone's MX names: that of the server the first
    /// mailbox is (or will be) on; none for a plan without mailboxes.
    async fn mail_host(
        &self,
        sub: &SubscriptionRef,
        job: &ProvisionSubscription,
        domain: &str,
    ) -> Result<Option<String>, DriverError> {
        let ProvisioningTemplate::Hosting { mailboxes, .. } = &job.template else {
            return Ok(None);
        };
        if *mailboxes == 0 {
            return Ok(None);
        }
        let first = mailbox_address(domain, 1);
        let mbox = self
            .placed(ResourceKind::MailAccount, sub, &first, job)
            .await?;
        Ok(Some(mail_host_of(&self.server(mbox.server_id).await?)))
    }

    /// `hosting.account.create`: the site, its system user, PHP and quota.
    async fn create_site(
        &self,
        sub: &SubscriptionRef,
        job: &ProvisionSubscription,
        domain: &str,
    ) -> Result<Value, DriverError> {
        let site = self
            .placed(ResourceKind::HostingAccount, sub, domain, job)
            .await?;
        let server = self.server(site.server_id).await?;
        let (node, _keys) = nodes::web(self.secrets()?, &server)?;
        let (disk, php) = match &job.template {
            ProvisioningTemplate::Hosting {
                disk_quota_mb,
                php_version,
                ..
            } => (*disk_quota_mb, php_version.clone()),
            _ => (None, None),
        };
        if site.status == ResourceStatus::Pending {
            if node.site_state(domain).await?.is_some() {
                return Err(DriverError::Permanent(format!(
                    "a site for {domain} already exists on the web server"
                )));
            }
            self.set_status(
                ResourceKind::HostingAccount,
                site.id,
                ResourceStatus::Creating,
                None,
            )
            .await?;
        }
        // A hosting plan runs PHP unless it says otherwise (it cannot
        // yet: the template only names a version).
        node.ensure_site(&SiteSpec {
            domain: domain.to_owned(),
            user: account_user(site.id),
            php: true,
            php_version: php,
            disk_quota_mb: disk,
        })
        .await?;
        self.set_status(
            ResourceKind::HostingAccount,
            site.id,
            ResourceStatus::Active,
            None,
        )
        .await?;
        Ok(json!({"hosting_account_id": site.id, "server_id": site.server_id}))
    }

    /// `mail.account.create`: the first mailbox (the template's count is
    /// the quota the customer fills with `POST /api/mail/accounts`).
    async fn create_mailboxes(
        &self,
        sub: &SubscriptionRef,
        job: &ProvisionSubscription,
        domain: &str,
    ) -> Result<Value, DriverError> {
        let (count, quota) = match &job.template {
            ProvisioningTemplate::Hosting { mailboxes, .. } => ((*mailboxes).min(1), None),
            ProvisioningTemplate::Email {
                mailboxes,
                quota_mb,
                ..
            } => ((*mailboxes).min(1), *quota_mb),
            _ => (0, None),
        };
        let mut ids = Vec::new();
        for n in 1..=count {
            let address = mailbox_address(domain, n);
            let mbox = self
                .placed(ResourceKind::MailAccount, sub, &address, job)
                .await?;
            if mbox.status != ResourceStatus::Active {
                self.make_mailbox(&mbox, &address, job, n, quota).await?;
            }
            ids.push(mbox.id);
        }
        Ok(json!({"mail_account_ids": ids}))
    }

    /// Mailbox `n` on its mail node, with the password chosen with the
    /// order (first mailbox only) or one nobody knows yet.
    async fn make_mailbox(
        &self,
        mbox: &ResourceRecord,
        address: &str,
        job: &ProvisionSubscription,
        n: u32,
        quota: Option<u32>,
    ) -> Result<(), DriverError> {
        let server = self.server(mbox.server_id).await?;
        let (node, _keys) = nodes::mail(self.secrets()?, &server)?;
        let hash = match (&job.mailbox_password_hash, n) {
            (Some(hash), 1) => hash.clone(),
            // A password nobody knows yet: the customer sets one.
            _ => crate::mail::hash_password(&random_password()?)?,
        };
        if mbox.status == ResourceStatus::Pending {
            self.set_status(
                ResourceKind::MailAccount,
                mbox.id,
                ResourceStatus::Creating,
                None,
            )
            .await?;
        }
        node.ensure_mailbox(address, &hash, quota.unwrap_or(0))
            .await?;
        self.set_status(
            ResourceKind::MailAccount,
            mbox.id,
            ResourceStatus::Active,
            None,
        )
        .await
    }

    /// `subscription.activate`: the subscription goes ACTIVE, its billing
    /// starts and the customer is told what was made, in one transaction.
    async fn activate(&self, sub: &SubscriptionRef) -> Result<Value, DriverError> {
        let sites = self
            .store
            .resources_of(ResourceKind::HostingAccount, sub.id)
            .await
            .map_err(store_err)?;
        let mailboxes = self
            .store
            .resources_of(ResourceKind::MailAccount, sub.id)
            .await
            .map_err(store_err)?;
        let pod = self
            .store
            .cloud_pod_of_subscription(sub.id)
            .await
            .map_err(store_err)?;
        // What the subscription runs as: its site, else its first mailbox,
        // else its pod.
        let runs = sites
            .iter()
            .chain(&mailboxes)
            .next()
            .map(|r| r.id.to_string())
            .or_else(|| pod.as_ref().map(|p| p.id.to_string()))
            .unwrap_or_default();
        let made = self.made(sub, &sites, &mailboxes).await;
        let tenant = self
            .store
            .tenant(sub.tenant_id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| DriverError::Permanent("the tenant is gone".into()))?;
        let service = |e: mpanel_services::ServiceError| DriverError::Transient(e.to_string());
        let issue_tls = !sites.is_empty() && self.issues_certificates(sub.tenant_id).await?;
        let mut tx = self.store.begin().await.map_err(store_err)?;
        let activated = tx
            .activate_subscription(sub.id, &runs, self.clock.now())
            .await
            .map_err(store_err)?;
        if !activated {
            return Err(DriverError::Permanent(
                "the subscription is no longer waiting to be activated".into(),
            ));
        }
        if let Some(pod) = &pod {
            tx.set_cloud_pod_status(pod.id, PodStatus::Active, None, self.clock.now())
                .await
                .map_err(store_err)?;
        }
        mpanel_services::billing::subscriptions::start_billing_in(
            &mut tx,
            sub.tenant_id,
            sub.id,
            &tenant.timezone,
            self.clock.now(),
        )
        .await
        .map_err(service)?;
        mpanel_services::notify::service_ready::enqueue_in(
            &mut tx,
            &tenant,
            sub.id,
            made,
            self.clock.now(),
        )
        .await
        .map_err(service)?;
        if issue_tls {
            for site in &sites {
                let job = mpanel_domain::tls::IssueCertificate {
                    tenant_id: sub.tenant_id,
                    hosting_account_id: site.id,
                    requested: false,
                };
                let options = mpanel_services::site_certificates::issue_options(site.id);
                mpanel_jobs::enqueue_job(&mut tx, &job, &options, self.clock.now())
                    .await
                    .map_err(store_err)?;
            }
        }
        tx.commit().await.map_err(store_err)?;
        Ok(json!({"external_ref": runs}))
    }

    /// What the customer needs to know of the subscription's resources:
    /// name servers, where the site is and its SFTP user, the mailboxes
    /// and their server (never a password). Never fails: what cannot be
    /// looked up is left out (and logged), because a message must not
    /// stand between a paid customer and the service made for them.
    async fn made(
        &self,
        sub: &SubscriptionRef,
        sites: &[ResourceRecord],
        mailboxes: &[ResourceRecord],
    ) -> Made {
        let mut made = Made::default();
        let zones = self
            .store
            .resources_of(ResourceKind::DnsZone, sub.id)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(subscription = %sub.id, error = %e, "the service-ready mail leaves out the zone");
                Vec::new()
            });
        if let Some(server) = self.server_for_mail(zones.first()).await {
            made.name_servers = nodes::nameservers(&server)
                .into_iter()
                .map(|ns| ns.trim_end_matches('.').to_owned())
                .collect();
        }
        if let Some(site) = sites.first() {
            made.web_address = self
                .server_for_mail(Some(site))
                .await
                .map(|s| public_address(&s));
            made.sftp_user = Some(account_user(site.id));
        }
        if let Some(server) = self.server_for_mail(mailboxes.first()).await {
            made.mail_host = Some(mail_host_of(&server));
        }
        made.mailboxes = mailboxes.iter().map(|m| m.name.clone()).collect();
        made
    }

    /// The server of `resource` for the service-ready mail, `None` (logged)
    /// when it cannot be read.
    async fn server_for_mail(&self, resource: Option<&ResourceRecord>) -> Option<ServerRecord> {
        let resource = resource?;
        match self.server(resource.server_id).await {
            Ok(server) => Some(server),
            Err(e) => {
                tracing::warn!(resource = %resource.id, error = %e, "the service-ready mail leaves out a server");
                None
            }
        }
    }

    pub(crate) async fn set_status(
        &self,
        kind: ResourceKind,
        id: ResourceId,
        status: ResourceStatus,
        archive: Option<&str>,
    ) -> Result<(), DriverError> {
        self.store
            .set_resource_status(kind, id, status, archive, self.clock.now())
            .await
            .map_err(store_err)
    }

    /// The subscription's resource `name` of `kind`, placed on a server
    /// (and recorded, so a retry uses the same server) if new.
    async fn placed(
        &self,
        kind: ResourceKind,
        sub: &SubscriptionRef,
        name: &str,
        job: &ProvisionSubscription,
    ) -> Result<ResourceRecord, DriverError> {
        let existing = self
            .store
            .resources_of(kind, sub.id)
            .await
            .map_err(store_err)?;
        if let Some(r) = existing
            .into_iter()
            .find(|r| r.name == name || r.name == format!("{name}."))
        {
            return Ok(r);
        }
        let role = match kind {
            ResourceKind::DnsZone => ServerRole::Dns,
            ResourceKind::HostingAccount => ServerRole::Web,
            ResourceKind::MailAccount => ServerRole::Mail,
        };
        let server = self.place(kind, role).await?;
        let now = self.clock.now();
        let (quota, php) = match (&job.template, kind) {
            (
                ProvisioningTemplate::Hosting {
                    disk_quota_mb,
                    php_version,
                    ..
                },
                ResourceKind::HostingAccount,
            ) => (disk_quota_mb.map(i64::from), php_version.clone()),
            (ProvisioningTemplate::Email { quota_mb, .. }, ResourceKind::MailAccount) => {
                (quota_mb.map(i64::from), None)
            }
            _ => (None, None),
        };
        let record = ResourceRecord {
            id: ResourceId::new(),
            tenant_id: sub.tenant_id,
            customer_id: sub.customer_id,
            subscription_id: sub.id,
            server_id: server.id,
            name: match kind {
                ResourceKind::DnsZone => format!("{}.", name.trim_end_matches('.')),
                _ => name.to_owned(),
            },
            status: ResourceStatus::Pending,
            quota_mb: quota,
            php_version: php,
            archive_path: None,
            created_at: now,
            updated_at: now,
        };
        match self.store.insert_resource(kind, &record).await {
            Ok(()) => Ok(record),
            Err(mpanel_store::StoreError::Conflict(_)) => {
                // Another run of this same job may have placed it a moment
                // ago: then it is ours. Otherwise the name is taken.
                let again = self
                    .store
                    .resources_of(kind, sub.id)
                    .await
                    .map_err(store_err)?;
                again
                    .into_iter()
                    .find(|r| r.name == record.name)
                    .ok_or_else(|| {
                        DriverError::Permanent(format!("{} is already in use", record.name))
                    })
            }
            Err(other) => Err(store_err(other)),
        }
    }

    async fn place(
        &self,
        kind: ResourceKind,
        role: ServerRole,
    ) -> Result<ServerRecord, DriverError> {
        let servers = self
            .store
            .list_servers(Some(role))
            .await
            .map_err(store_err)?;
        let usage = self.store.server_usage(kind).await.map_err(store_err)?;
        let candidates: Vec<_> = servers
            .iter()
            .map(|s| mpanel_domain::provisioning::server::Candidate {
                id: s.id,
                role: s.role,
                status: s.status,
                capacity: s.capacity,
                used: usage
                    .iter()
                    .find(|(id, _)| *id == s.id)
                    .map(|(_, n)| *n)
                    .unwrap_or(0),
            })
            .collect();
        let id: ServerId = place(&candidates, role).map_err(DriverError::Permanent)?;
        servers
            .into_iter()
            .find(|s| s.id == id)
            .ok_or_else(|| DriverError::Transient("the chosen server vanished".into()))
    }

    /// Shows on the subscription's pod (if it has one) why provisioning
    /// gave up; best effort, the job's error says it too.
    async fn note_pod_error(&self, sub: &SubscriptionRef, why: &str) {
        let pod = match self.store.cloud_pod_of_subscription(sub.id).await {
            Ok(Some(pod)) => pod,
            _ => return,
        };
        if let Err(e) = self
            .store
            .note_cloud_pod_task(pod.id, None, Some(why), self.clock.now())
            .await
        {
            tracing::warn!(pod = %pod.id, error = %e, "the pod's error was not recorded");
        }
    }

    /// Undoes what the subscription's provisioning made, newest first.
    pub async fn compensate(&self, sub: &SubscriptionRef) -> Result<(), DriverError> {
        self.undo_pod(sub).await?;
        let sb = self.secrets()?;
        for mbox in self
            .store
            .resources_of(ResourceKind::MailAccount, sub.id)
            .await
            .map_err(store_err)?
        {
            let server = self.server(mbox.server_id).await?;
            if mbox.status != ResourceStatus::Pending {
                let (node, _keys) = nodes::mail(sb, &server)?;
                node.delete(&mbox.name).await?;
            }
            self.set_status(
                ResourceKind::MailAccount,
                mbox.id,
                ResourceStatus::Deleted,
                None,
            )
            .await?;
        }
        for site in self
            .store
            .resources_of(ResourceKind::HostingAccount, sub.id)
            .await
            .map_err(store_err)?
        {
            let server = self.server(site.server_id).await?;
            let mut archive = None;
            if site.status != ResourceStatus::Pending {
                let (node, _keys) = nodes::web(sb, &server)?;
                archive = node.terminate(&site.name, &account_user(site.id)).await?;
            }
            self.set_status(
                ResourceKind::HostingAccount,
                site.id,
                ResourceStatus::Terminated,
                archive.as_deref(),
            )
            .await?;
        }
        for zone in self
            .store
            .resources_of(ResourceKind::DnsZone, sub.id)
            .await
            .map_err(store_err)?
        {
            if zone.status != ResourceStatus::Pending {
                // CREATING or ACTIVE: ours (a foreign zone stops at PENDING).
                let server = self.server(zone.server_id).await?;
                nodes::dns(sb, &server)?.delete_zone(&zone.name).await?;
            }
            self.set_status(
                ResourceKind::DnsZone,
                zone.id,
                ResourceStatus::Deleted,
                None,
            )
            .await?;
        }
        for step in [
            Step::PodStart,
            Step::PodConfigure,
            Step::PodClone,
            Step::PodPlace,
            Step::Mailboxes,
            Step::Site,
            Step::DnsZone,
        ] {
            self.store
                .mark_provisioning_step(
                    sub.id,
                    step.name(),
                    StepState::Undone,
                    None,
                    self.clock.now(),
                )
                .await
                .map_err(store_err)?;
        }
        Ok(())
    }
}
