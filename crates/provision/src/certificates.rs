//! Sites' certificates: `tls.issue` obtains one from the tenant's ACME
//! directory (HTTP-01, answered by the site's own nginx; the key is made
//! on the web node and never leaves it) and installs it; `tls.install`
//! puts an uploaded one on the node; `tls.renew` queues the renewals that
//! are due; termination revokes. A failed issuance is recorded on the site
//! (why, and when the next attempt is) and waits 1 min, 2, 4 … up to 6 h;
//! the site keeps serving what it served.

use mpanel_domain::tls::{
    self as rules, CertificateSource, CertificateStatus, InstallCertificate, IssuanceState,
    IssueCertificate,
};
use mpanel_domain::{CertificateId, ResourceId, TenantId};
use mpanel_services::certificates::facts;
use mpanel_services::site_certificates::issue_options;
use mpanel_store::certificates::{
    AcmeAccountRecord, CertificateRecord, IssuanceRecord, TlsSettingsRecord,
};
use mpanel_store::provisioning::{ResourceKind, ResourceRecord};
use mpanel_store::secret_box::kind;

use crate::acme::{Account, AccountKey, AcmeClient, AcmeError};
use crate::saga::Provisioner;
use crate::web::{Https, KeySource, WebNode, account_user};
use crate::{DriverError, nodes};

/// Where certificates come from, platform-wide.
#[derive(Debug, Clone, Default)]
pub struct AcmeSettings {
    /// The default ACME directory; `None`: sites get no certificate by
    /// themselves (uploads still work).
    pub directory_url: Option<String>,
    /// PEM certificates trusted, besides the public roots, to reach the
    /// ACME server over HTTPS (a private CA's, in tests Pebble's).
    pub ca_bundle: Option<Vec<u8>>,
}

fn store_err(e: mpanel_store::StoreError) -> DriverError {
    DriverError::Transient(format!("database: {e}"))
}

fn acme_err(e: AcmeError) -> DriverError {
    if e.is_transient() {
        DriverError::Transient(e.to_string())
    } else {
        DriverError::Permanent(e.to_string())
    }
}

/// During an issuance every refusal of the CA is worth another try later:
/// a name that does not reach the node yet, a CAA record, a rate limit are
/// all mended by the customer or by time. The back-off keeps the CA's
/// failed-validation limits.
fn issuance_err(e: AcmeError) -> DriverError {
    // A rate limit says when to come back (the client reads Retry-After
    // against the system clock): no attempt before then.
    if let AcmeError::Problem {
        kind,
        retry_after: Some(at),
        ..
    } = &e
        && kind == "rateLimited"
    {
        let wait = *at - time::OffsetDateTime::now_utc();
        return DriverError::Waiting {
            reason: e.to_string(),
            retry_in: wait.max(time::Duration::minutes(1)),
        };
    }
    DriverError::Transient(e.to_string())
}

impl Provisioner {
    /// `tls.issue`: a certificate for the site, installed. A failure is
    /// recorded on the site and retried after a growing wait.
    pub async fn issue_certificate(&self, job: &IssueCertificate) -> Result<(), DriverError> {
        let Some(site) = self
            .live_site(job.tenant_id, job.hosting_account_id)
            .await?
        else {
            return Ok(());
        };
        // The customer's own certificate is left alone unless a person
        // asked for one from the CA.
        if !job.requested && self.serves_upload(&site).await? {
            return Ok(());
        }
        match self.obtain(&site).await {
            Ok(()) => Ok(()),
            Err(err) => Err(self.issuance_failed(&site, err).await),
        }
    }

    /// `tls.install`: an uploaded certificate onto the node.
    pub async fn install_uploaded(&self, job: &InstallCertificate) -> Result<(), DriverError> {
        let Some(site) = self
            .live_site(job.tenant_id, job.hosting_account_id)
            .await?
        else {
            return Ok(());
        };
        let cert = self
            .store
            .certificate(job.tenant_id, job.certificate_id)
            .await
            .map_err(store_err)?
            .ok_or_else(|| DriverError::Permanent("the certificate is gone".into()))?;
        let Some(sealed) = cert.key_sealed.as_deref() else {
            // Installed before (the sealed key is dropped then).
            return Ok(());
        };
        let row = format!("{}/{}", cert.tenant_id, cert.id);
        let key = self
            .secrets()?
            .open_str(sealed, kind::UPLOADED_TLS_KEY, &row)
            .map_err(|e| DriverError::Permanent(format!("the uploaded key: {e}")))?;
        let (node, _keys) = self.web_node_of(&site).await?;
        let https = self.https_of(site.tenant_id).await?;
        let user = account_user(site.id);
        let installed = node
            .install_certificate(
                &site.name,
                &user,
                &cert.chain_pem,
                KeySource::Uploaded(&key),
                https,
            )
            .await;
        if let Err(DriverError::Permanent(why)) = &installed {
            // It will never go on: its sealed key goes.
            self.store
                .end_certificate(cert.id, CertificateStatus::Removed, self.clock.now())
                .await
                .map_err(store_err)?;
            return Err(DriverError::Permanent(why.clone()));
        }
        installed?;
        self.store
            .activate_certificate(site.id, cert.id, self.clock.now())
            .await
            .map_err(store_err)
    }

    /// Whether the site serves a certificate its customer uploaded.
    async fn serves_upload(&self, site: &ResourceRecord) -> Result<bool, DriverError> {
        let active = self
            .store
            .site_certificates(site.id, CertificateStatus::Active)
            .await
            .map_err(store_err)?;
        Ok(active
            .iter()
            .any(|c| c.source == CertificateSource::Uploaded))
    }

    /// `tls.renew`: queues `tls.issue` for every ACME certificate due for
    /// renewal and every site whose issuance gave up (one try a day).
    pub async fn queue_renewals(&self) -> Result<usize, DriverError> {
        let now = self.clock.now();
        let ending = self
            .store
            .certificates_ending(None, now + time::Duration::days(31), 10_000)
            .await
            .map_err(store_err)?;
        let mut due: Vec<(TenantId, ResourceId)> = ending
            .iter()
            .filter(|c| c.source == CertificateSource::Acme)
            .filter(|c| rules::renew_at(c.not_before, c.not_after) <= now)
            .map(|c| (c.tenant_id, c.hosting_account_id))
            .collect();
        due.extend(
            self.store
                .issuances_in(IssuanceState::Failed)
                .await
                .map_err(store_err)?
                .into_iter()
                .map(|i| (i.tenant_id, i.hosting_account_id)),
        );
        if self.acme.directory_url.is_some() {
            // Sites live before HTTPS existed get their first certificate.
            due.extend(
                self.store
                    .sites_without_https(1_000)
                    .await
                    .map_err(store_err)?,
            );
        }
        let mut tx = self.store.begin().await.map_err(store_err)?;
        for (tenant_id, account) in &due {
            let job = IssueCertificate {
                tenant_id: *tenant_id,
                hosting_account_id: *account,
                requested: false,
            };
            mpanel_jobs::enqueue_job(&mut tx, &job, &issue_options(*account), now)
                .await
                .map_err(store_err)?;
        }
        tx.commit().await.map_err(store_err)?;
        Ok(due.len())
    }

    /// At termination, after the site left the node: its ACME certificates
    /// still valid are revoked at their CA, the others marked removed.
    /// Best effort: a CA that refuses or cannot be reached is logged and
    /// does not hold the termination up (the key is gone from the node
    /// already, and the certificate ends by itself).
    pub async fn revoke_certificates(&self, site: &ResourceRecord) -> Result<(), DriverError> {
        let now = self.clock.now();
        for status in [CertificateStatus::Active, CertificateStatus::Pending] {
            let certs = self
                .store
                .site_certificates(site.id, status)
                .await
                .map_err(store_err)?;
            for cert in certs {
                let ended = self.revoked_or_removed(site, &cert).await;
                self.store
                    .end_certificate(cert.id, ended, now)
                    .await
                    .map_err(store_err)?;
            }
        }
        self.store.delete_issuance(site.id).await.map_err(store_err)
    }

    async fn revoked_or_removed(
        &self,
        site: &ResourceRecord,
        cert: &CertificateRecord,
    ) -> CertificateStatus {
        let (CertificateSource::Acme, Some(url)) = (&cert.source, &cert.directory_url) else {
            return CertificateStatus::Removed;
        };
        if cert.not_after <= self.clock.now() {
            return CertificateStatus::Removed;
        }
        match self.revoke(site.tenant_id, url, cert).await {
            Ok(()) => CertificateStatus::Revoked,
            Err(e) => {
                tracing::warn!(site = %site.name, serial = %cert.serial, error = %e,
                    "the certificate could not be revoked");
                CertificateStatus::Removed
            }
        }
    }

    async fn revoke(
        &self,
        tenant: TenantId,
        directory: &str,
        cert: &CertificateRecord,
    ) -> Result<(), DriverError> {
        let client = self.acme_client(directory).await?;
        let (key, url) = self.acme_account(&client, tenant, directory).await?;
        let leaf = facts(&cert.chain_pem)
            .map_err(|e| DriverError::Permanent(format!("the stored certificate: {e}")))?;
        // 5: cessationOfOperation, the site is gone.
        client
            .revoke(&Account { key: &key, url }, &leaf.leaf_der, 5)
            .await
            .map_err(acme_err)
    }

    /// Whether the tenant's sites get certificates by themselves: the
    /// platform names a directory, or the tenant its own.
    pub(crate) async fn issues_certificates(&self, tenant: TenantId) -> Result<bool, DriverError> {
        if self.acme.directory_url.is_some() {
            return Ok(true);
        }
        Ok(self
            .tls_settings(tenant)
            .await?
            .acme_directory_url
            .is_some())
    }

    /// The site, when it is still served (terminated or gone: `None`).
    async fn live_site(
        &self,
        tenant: TenantId,
        id: ResourceId,
    ) -> Result<Option<ResourceRecord>, DriverError> {
        let site = self
            .store
            .resource(ResourceKind::HostingAccount, tenant, id)
            .await
            .map_err(store_err)?;
        Ok(site.filter(|s| rules::serves_site(s.status)))
    }

    async fn web_node_of(
        &self,
        site: &ResourceRecord,
    ) -> Result<(WebNode, nodes::Ssh), DriverError> {
        let server = self.server(site.server_id).await?;
        nodes::web(self.secrets()?, &server)
    }

    async fn tls_settings(&self, tenant: TenantId) -> Result<TlsSettingsRecord, DriverError> {
        self.store.tls_settings(tenant).await.map_err(store_err)
    }

    async fn https_of(&self, tenant: TenantId) -> Result<Https, DriverError> {
        let s = self.tls_settings(tenant).await?;
        Ok(Https {
            hsts_max_age_secs: u32::try_from(s.hsts_max_age_secs).unwrap_or(0),
        })
    }

    /// One issuance: order, answer the challenges on the node, finalize
    /// with the node's request, install, record.
    async fn obtain(&self, site: &ResourceRecord) -> Result<(), DriverError> {
        let settings = self.tls_settings(site.tenant_id).await?;
        let directory = settings
            .acme_directory_url
            .clone()
            .or_else(|| self.acme.directory_url.clone())
            .ok_or_else(|| {
                DriverError::Permanent("no ACME directory is configured on this platform".into())
            })?;
        let client = self.acme_client(&directory).await?;
        let (key, url) = self
            .acme_account(&client, site.tenant_id, &directory)
            .await?;
        let account = Account { key: &key, url };
        let names = rules::site_names(&site.name);
        let (node, _keys) = self.web_node_of(site).await?;
        node.ensure_challenge_path(&site.name).await?;
        let order = client.order(&account, &names).await.map_err(issuance_err)?;
        let answers: Vec<(String, String)> = order
            .challenges
            .iter()
            .map(|c| (c.token.clone(), c.key_authorization.clone()))
            .collect();
        let tokens: Vec<String> = answers.iter().map(|(t, _)| t.clone()).collect();
        node.put_challenges(&answers).await?;
        let csr = node.certificate_request(&site.name, &names).await;
        let chain = match csr {
            Ok(csr) => client
                .complete(&account, &order, &csr)
                .await
                .map_err(issuance_err),
            Err(e) => Err(e),
        };
        if let Err(e) = node.remove_challenges(&tokens).await {
            tracing::warn!(site = %site.name, error = %e, "ACME answers left on the node");
        }
        let chain = chain?;
        let facts = facts(&chain)
            .map_err(|e| DriverError::Permanent(format!("the CA's certificate: {e}")))?;
        node.install_certificate(
            &site.name,
            &account_user(site.id),
            &facts.chain_pem,
            KeySource::Requested,
            self.https_of(site.tenant_id).await?,
        )
        .await?;
        self.record_issued(site, &directory, facts).await
    }

    /// Records the certificate served and the issuance done, in one
    /// transaction. A site terminated meanwhile gets it revoked instead.
    async fn record_issued(
        &self,
        site: &ResourceRecord,
        directory: &str,
        facts: mpanel_services::certificates::CertificateFacts,
    ) -> Result<(), DriverError> {
        let now = self.clock.now();
        let record = CertificateRecord {
            id: CertificateId::new(),
            tenant_id: site.tenant_id,
            hosting_account_id: site.id,
            domain: site.name.clone(),
            source: CertificateSource::Acme,
            status: CertificateStatus::Pending,
            names: facts.names,
            serial: facts.serial,
            issuer: facts.issuer,
            not_before: facts.not_before,
            not_after: facts.not_after,
            chain_pem: facts.chain_pem,
            key_sealed: None,
            directory_url: Some(directory.to_owned()),
            created_at: now,
            ended_at: None,
        };
        if self.live_site(site.tenant_id, site.id).await?.is_none() {
            let ended = self.revoked_or_removed(site, &record).await;
            tracing::info!(site = %site.name, ?ended, "issued for a site gone meanwhile");
            return Ok(());
        }
        let mut tx = self.store.begin().await.map_err(store_err)?;
        tx.insert_certificate(&record).await.map_err(store_err)?;
        tx.activate_certificate(site.id, record.id, now)
            .await
            .map_err(store_err)?;
        tx.set_issuance(&IssuanceRecord {
            hosting_account_id: site.id,
            tenant_id: site.tenant_id,
            state: IssuanceState::Issued,
            attempts: 0,
            last_error: None,
            next_attempt_at: None,
            updated_at: now,
        })
        .await
        .map_err(store_err)?;
        tx.commit().await.map_err(store_err)
    }

    /// Records why the issuance failed and when it is tried again; the
    /// job waits that long (a wait spends none of its attempts).
    async fn issuance_failed(&self, site: &ResourceRecord, err: DriverError) -> DriverError {
        let now = self.clock.now();
        let before = self.store.issuance(site.id).await.ok().flatten();
        let attempts = before.map_or(0, |b| b.attempts).saturating_add(1);
        let give_up = attempts >= rules::MAX_ATTEMPTS || matches!(err, DriverError::Permanent(_));
        // The CA's own "retry after" (a rate limit) is the least wait.
        let floor = match &err {
            DriverError::Waiting { retry_in, .. } => *retry_in,
            _ => time::Duration::ZERO,
        };
        let wait = rules::retry_wait(attempts).max(floor);
        let record = IssuanceRecord {
            hosting_account_id: site.id,
            tenant_id: site.tenant_id,
            state: if give_up {
                IssuanceState::Failed
            } else {
                IssuanceState::Failing
            },
            attempts,
            last_error: Some(err.to_string()),
            next_attempt_at: (!give_up).then_some(now + wait),
            updated_at: now,
        };
        if let Err(e) = self.store.set_issuance(&record).await {
            tracing::warn!(site = %site.name, error = %e, "the issuance's failure was not recorded");
        }
        tracing::info!(site = %site.name, attempts, error = %err, "certificate issuance failed");
        if give_up {
            DriverError::Permanent(err.to_string())
        } else {
            DriverError::Waiting {
                reason: format!("certificate issuance failed ({err}); next attempt in {wait}"),
                retry_in: wait,
            }
        }
    }

    async fn acme_client(&self, directory: &str) -> Result<AcmeClient, DriverError> {
        AcmeClient::connect(directory, self.acme.ca_bundle.as_deref())
            .await
            .map_err(acme_err)
    }

    /// The tenant's account at `directory`: made and recorded (its key
    /// sealed) the first time.
    async fn acme_account(
        &self,
        client: &AcmeClient,
        tenant: TenantId,
        directory: &str,
    ) -> Result<(AccountKey, String), DriverError> {
        let sb = self.secrets()?;
        let row = format!("{tenant}/{directory}");
        let open = |record: &AcmeAccountRecord| -> Result<(AccountKey, String), DriverError> {
            let der = sb
                .open(
                    &record.key_sealed,
                    &mpanel_store::secret_box::binding(kind::ACME_ACCOUNT_KEY, &row),
                )
                .map_err(|e| DriverError::Permanent(format!("the ACME account key: {e}")))?;
            let key = AccountKey::from_pkcs8(&der).map_err(acme_err)?;
            Ok((key, record.account_url.clone()))
        };
        if let Some(record) = self
            .store
            .acme_account(tenant, directory)
            .await
            .map_err(store_err)?
        {
            return open(&record);
        }
        let key = AccountKey::generate().map_err(acme_err)?;
        let contact = self.tls_settings(tenant).await?.acme_contact_email;
        let url = client
            .account(&key, contact.as_deref())
            .await
            .map_err(acme_err)?;
        let sealed = sb
            .seal(
                key.pkcs8(),
                &mpanel_store::secret_box::binding(kind::ACME_ACCOUNT_KEY, &row),
            )
            .map_err(|e| DriverError::Transient(format!("sealing the ACME account key: {e}")))?;
        let record = AcmeAccountRecord {
            account_url: url,
            key_sealed: sealed,
        };
        let kept = self
            .store
            .save_acme_account(tenant, directory, &record, self.clock.now())
            .await
            .map_err(store_err)?;
        open(&kept)
    }
}
