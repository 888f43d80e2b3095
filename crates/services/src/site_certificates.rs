//! A site's certificates as staff and customers see and manage them: the
//! list (with where issuance stands and why it failed), a certificate the
//! customer uploads (checked before anything is stored; its key is sealed
//! until the node has it), "issue now", and the tenant's TLS choices.
//! Customers reach only their own sites; another's is not found.

use std::sync::Arc;

use mpanel_domain::tls::{
    self as rules, CertificateSource, CertificateStatus, InstallCertificate, IssuanceState,
    IssueCertificate,
};
use mpanel_domain::{CertificateId, CustomerId, JobId, ResourceId};
use mpanel_jobs::{JobOptions, enqueue_job};
use mpanel_store::certificates::{CertificateRecord, IssuanceRecord, TlsSettingsRecord};
use mpanel_store::provisioning::{ResourceKind, ResourceRecord};
use mpanel_store::secret_box::kind;
use rustls::pki_types::CertificateDer;
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::actor::Change;
use crate::certificates::{CertificateError, validate_upload};
use crate::webhooks::WebhookPolicy;
use crate::{Context, ServiceError};

/// Roots an uploaded chain may lead to besides the public ones
/// (`tls_upload_roots_file`).
#[derive(Debug, Clone, Default)]
pub struct UploadRoots(Arc<Vec<CertificateDer<'static>>>);

impl UploadRoots {
    pub fn new(roots: Vec<CertificateDer<'static>>) -> Self {
        Self(Arc::new(roots))
    }

    pub fn as_slice(&self) -> &[CertificateDer<'static>] {
        &self.0
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct CertificateView {
    pub id: CertificateId,
    pub hosting_account_id: ResourceId,
    pub domain: String,
    /// `ACME` or `UPLOADED`.
    pub source: String,
    /// `PENDING` (uploaded, going onto the node), `ACTIVE` (served),
    /// `REPLACED`, `REVOKED` or `REMOVED`.
    pub status: String,
    pub names: Vec<String>,
    /// Hexadecimal.
    pub serial: String,
    pub issuer: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// When it will be renewed (ACME certificates being served).
    #[serde(with = "time::serde::rfc3339::option")]
    pub renews_at: Option<OffsetDateTime>,
    /// The chain served, leaf first (public; never a key).
    pub chain_pem: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

fn cert_view(c: CertificateRecord) -> CertificateView {
    let renews_at = (c.source == CertificateSource::Acme && c.status == CertificateStatus::Active)
        .then(|| rules::renew_at(c.not_before, c.not_after));
    CertificateView {
        id: c.id,
        hosting_account_id: c.hosting_account_id,
        domain: c.domain,
        source: c.source.as_str().to_owned(),
        status: c.status.as_str().to_owned(),
        names: c.names,
        serial: c.serial,
        issuer: c.issuer,
        not_before: c.not_before,
        not_after: c.not_after,
        renews_at,
        chain_pem: c.chain_pem,
        created_at: c.created_at,
    }
}

/// Where a site's certificate issuance stands.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct IssuanceView {
    /// `WAITING`, `FAILING` (will try again at `next_attempt_at`),
    /// `FAILED` (the daily run tries again) or `ISSUED`.
    pub state: String,
    /// Failures in a row.
    pub attempts: u32,
    /// Why the last attempt failed, in the CA's or the node's words.
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_attempt_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

fn issuance_view(r: IssuanceRecord) -> IssuanceView {
    IssuanceView {
        state: r.state.as_str().to_owned(),
        attempts: r.attempts,
        last_error: r.last_error,
        next_attempt_at: r.next_attempt_at,
        updated_at: r.updated_at,
    }
}

/// A site's certificates, newest first, and its issuance.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SiteCertificates {
    pub hosting_account_id: ResourceId,
    pub domain: String,
    /// `None` until a certificate was first asked for.
    pub issuance: Option<IssuanceView>,
    pub certificates: Vec<CertificateView>,
}

/// The site `id` of the tenant; a customer's only when it is theirs.
async fn site(cx: &Context, id: ResourceId) -> Result<ResourceRecord, ServiceError> {
    let site = cx
        .store
        .resource(ResourceKind::HostingAccount, cx.tenant_id(), id)
        .await?
        .ok_or_else(ServiceError::missing("hosting account"))?;
    if !cx.principal.role().is_staff() {
        let own: Option<CustomerId> = crate::customers::own(cx).await?;
        if own != Some(site.customer_id) {
            return Err(ServiceError::missing("hosting account")());
        }
    }
    Ok(site)
}

/// The options of a site's `tls.issue`: one queued per site at a time.
pub fn issue_options(account: ResourceId) -> JobOptions {
    JobOptions {
        queue: "provisioning".into(),
        max_attempts: 3,
        unique_key: Some(format!("{}:{account}", rules::ISSUE_JOB)),
        ..JobOptions::default()
    }
}

/// How often a person may ask for a site's certificate.
const ASK_EVERY: time::Duration = time::Duration::minutes(5);

fn live(site: &ResourceRecord) -> Result<(), ServiceError> {
    if rules::serves_site(site.status) {
        Ok(())
    } else {
        Err(ServiceError::Conflict(format!(
            "the hosting account is {}: it serves no site to certify",
            site.status.as_str().to_ascii_lowercase()
        )))
    }
}

pub async fn of_site(cx: &Context, id: ResourceId) -> Result<SiteCertificates, ServiceError> {
    let site = site(cx, id).await?;
    let certificates = cx
        .store
        .certificates(cx.tenant_id(), Some(site.id), None, 100)
        .await?
        .into_iter()
        .map(cert_view)
        .collect();
    let issuance = cx.store.issuance(site.id).await?.map(issuance_view);
    Ok(SiteCertificates {
        hosting_account_id: site.id,
        domain: site.name,
        issuance,
        certificates,
    })
}

/// The tenant's certificates (staff), newest first, a page at a time.
pub async fn page(
    cx: &Context,
    before: Option<CertificateId>,
    limit: u32,
) -> Result<Vec<CertificateView>, ServiceError> {
    Ok(cx
        .store
        .certificates(cx.tenant_id(), None, before, limit)
        .await?
        .into_iter()
        .map(cert_view)
        .collect())
}

/// What a customer uploads: PEM text.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The certificate first, then its intermediates.
    pub certificate_chain: String,
    pub private_key: String,
}

fn refused(e: CertificateError) -> ServiceError {
    let field = match e {
        CertificateError::KeyUnreadable(_)
        | CertificateError::KeyUnsupported(_)
        | CertificateError::KeyMismatch => "private_key",
        _ => "certificate_chain",
    };
    ServiceError::Refused {
        field,
        reason: e.code(),
        message: e.to_string(),
    }
}

/// Checks an upload (the key matches, the chain is complete, the names
/// cover the site, it is valid now) and queues it onto the node. Nothing
/// is stored when a check fails.
pub async fn upload(
    cx: &Context,
    id: ResourceId,
    input: Upload,
    roots: &UploadRoots,
) -> Result<CertificateView, ServiceError> {
    const MAX_PEM: usize = 64 * 1024;
    if input.certificate_chain.len() > MAX_PEM || input.private_key.len() > MAX_PEM {
        return Err(ServiceError::invalid(
            "certificate_chain",
            "the certificate chain and the key are at most 64 KiB each",
        ));
    }
    let site = site(cx, id).await?;
    live(&site)?;
    let now = cx.now();
    let checked = validate_upload(
        &input.certificate_chain,
        &input.private_key,
        &site.name,
        now,
        roots.as_slice(),
    )
    .map_err(refused)?;
    let tenant = cx.tenant_id();
    let cert_id = CertificateId::new();
    let sealed = crate::sealed::secret_box(&cx.store)?
        .seal_str(
            &checked.key_pem,
            kind::UPLOADED_TLS_KEY,
            &format!("{tenant}/{cert_id}"),
        )
        .map_err(|e| ServiceError::internal_msg(format!("sealing the key: {e}")))?;
    let facts = checked.facts;
    let record = CertificateRecord {
        id: cert_id,
        tenant_id: tenant,
        hosting_account_id: site.id,
        domain: site.name.clone(),
        source: CertificateSource::Uploaded,
        status: CertificateStatus::Pending,
        names: facts.names,
        serial: facts.serial,
        issuer: facts.issuer,
        not_before: facts.not_before,
        not_after: facts.not_after,
        chain_pem: facts.chain_pem,
        key_sealed: Some(sealed),
        directory_url: None,
        created_at: now,
        ended_at: None,
    };
    let mut tx = cx.store.begin().await?;
    // The customer's own certificate rules: a waiting retry of an
    // issuance is dropped (and renewals leave uploads alone).
    tx.cancel_waiting_jobs(&format!("{}:{}", rules::ISSUE_JOB, site.id), now)
        .await?;
    tx.insert_certificate(&record).await?;
    let job = InstallCertificate {
        tenant_id: tenant,
        hosting_account_id: site.id,
        certificate_id: cert_id,
    };
    let options = JobOptions {
        queue: "provisioning".into(),
        max_attempts: 10,
        ..JobOptions::default()
    };
    let (job_id, _) = enqueue_job(&mut tx, &job, &options, now).await?;
    tx.record_audit(&cx.actor.audit(Change {
        tenant,
        action: "certificate.upload",
        target_type: "hosting_account",
        target_id: site.id.to_string(),
        before: None,
        after: Some(json!({"certificate_id": cert_id, "serial": record.serial,
            "names": record.names, "not_after": record.not_after, "job_id": job_id})),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(cert_view(record))
}

/// Queues an issuance now (a failing one is tried at once; an uploaded
/// certificate is replaced). At most once per [`ASK_EVERY`] per site, so
/// nobody spends the tenant's limits at the CA.
pub async fn issue_now(cx: &Context, id: ResourceId) -> Result<JobId, ServiceError> {
    let site = site(cx, id).await?;
    live(&site)?;
    let now = cx.now();
    let tenant = cx.tenant_id();
    let before = cx.store.issuance(site.id).await?;
    if let Some(b) = &before
        && b.updated_at > now - ASK_EVERY
    {
        let clock = time::macros::format_description!("[hour]:[minute]:[second] UTC");
        let at = |t: OffsetDateTime| t.format(&clock).unwrap_or_default();
        return Err(ServiceError::Conflict(format!(
            "a certificate for this site was asked for or tried at {}; ask again after {}",
            at(b.updated_at),
            at(b.updated_at + ASK_EVERY)
        )));
    }
    let mut tx = cx.store.begin().await?;
    let key = format!("{}:{}", rules::ISSUE_JOB, site.id);
    // A waiting retry is replaced by one that runs at once.
    tx.cancel_waiting_jobs(&key, now).await?;
    let job = IssueCertificate {
        tenant_id: tenant,
        hosting_account_id: site.id,
        requested: true,
    };
    let (job_id, new) = enqueue_job(&mut tx, &job, &issue_options(site.id), now).await?;
    if !new {
        return Err(ServiceError::Conflict(
            "a certificate for this site is being obtained right now".into(),
        ));
    }
    tx.set_issuance(&IssuanceRecord {
        hosting_account_id: site.id,
        tenant_id: tenant,
        state: IssuanceState::Waiting,
        attempts: before.map_or(0, |b| b.attempts),
        last_error: None,
        next_attempt_at: Some(now),
        updated_at: now,
    })
    .await?;
    tx.record_audit(&cx.actor.audit(Change {
        tenant,
        action: "certificate.issue",
        target_type: "hosting_account",
        target_id: site.id.to_string(),
        before: None,
        after: Some(json!({"job_id": job_id})),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(job_id)
}

/// A tenant's TLS choices as shown and changed.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// The tenant's own ACME directory (RFC 8555); `null`: the platform's
    /// (Let's Encrypt unless the operator chose another).
    #[serde(default)]
    pub acme_directory_url: Option<String>,
    /// Where the CA writes about the tenant's certificates.
    #[serde(default)]
    pub acme_contact_email: Option<String>,
    /// `Strict-Transport-Security` max-age for the tenant's HTTPS sites;
    /// 0 sends none. Takes effect as each site's certificate is next
    /// installed.
    #[serde(default)]
    pub hsts_max_age_secs: i64,
}

pub async fn settings(cx: &Context) -> Result<TlsSettings, ServiceError> {
    let s = cx.store.tls_settings(cx.tenant_id()).await?;
    Ok(TlsSettings {
        acme_directory_url: s.acme_directory_url,
        acme_contact_email: s.acme_contact_email,
        hsts_max_age_secs: s.hsts_max_age_secs,
    })
}

/// Changes the tenant's choices. A directory of its own must be an
/// `https://` URL whose host reaches only addresses webhooks may reach
/// (`webhook_allowed_networks`): the worker talks to it.
pub async fn set_settings(
    cx: &Context,
    input: TlsSettings,
    policy: &WebhookPolicy,
) -> Result<TlsSettings, ServiceError> {
    if let Some(url) = &input.acme_directory_url {
        if !url.starts_with("https://") || url.len() > 500 {
            return Err(ServiceError::invalid(
                "acme_directory_url",
                "must be the https:// URL of an ACME directory",
            ));
        }
        crate::webhooks::endpoints::checked_url(url, policy)
            .await
            .map_err(|e| match e {
                ServiceError::Invalid { message, .. } => {
                    ServiceError::invalid("acme_directory_url", message)
                }
                other => other,
            })?;
    }
    if let Some(email) = &input.acme_contact_email
        && mpanel_domain::contact::email(email).is_err()
    {
        return Err(ServiceError::invalid(
            "acme_contact_email",
            "must be an e-mail address",
        ));
    }
    rules::check_hsts(input.hsts_max_age_secs)
        .map_err(|m| ServiceError::invalid("hsts_max_age_secs", m))?;
    let before = settings(cx).await?;
    let now = cx.now();
    let record = TlsSettingsRecord {
        acme_directory_url: input.acme_directory_url.clone(),
        acme_contact_email: input.acme_contact_email.clone(),
        hsts_max_age_secs: input.hsts_max_age_secs,
    };
    let mut tx = cx.store.begin().await?;
    tx.set_tls_settings(cx.tenant_id(), &record, now).await?;
    tx.record_audit(&cx.actor.audit(Change {
        tenant: cx.tenant_id(),
        action: "tls.settings",
        target_type: "tenant",
        target_id: cx.tenant_id().to_string(),
        before: Some(json!({"acme_directory_url": before.acme_directory_url,
            "hsts_max_age_secs": before.hsts_max_age_secs})),
        after: Some(json!({"acme_directory_url": input.acme_directory_url,
            "hsts_max_age_secs": input.hsts_max_age_secs})),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(input)
}
