//! What customers' subscriptions run: hosting accounts and mailboxes, and
//! the lifecycle actions staff (and billing automation) ask for. Actions
//! are jobs, queued in the transaction that audits the request.

use mpanel_domain::billing::subscription::SubscriptionStatus;
use mpanel_domain::provisioning::disk_quota::quota_bytes;
use mpanel_domain::provisioning::payloads::{HostingAction, MailPassword};
use mpanel_domain::provisioning::{
    MAIL_PASSWORD_JOB, ResourceStatus, SUSPEND_JOB, TERMINATE_JOB, UNSUSPEND_JOB,
};
use mpanel_domain::{CustomerId, JobId, ResourceId, SubscriptionId, TenantId};
use mpanel_jobs::{JobOptions, enqueue};
use mpanel_store::provisioning::{ResourceKind, ResourceQuery, ResourceRecord, SubscriptionRef};
use mpanel_store::{Store, Tx};
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;

use crate::actor::Change;
use crate::{Context, ServiceError};

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct AccountView {
    pub id: ResourceId,
    pub customer_id: CustomerId,
    pub subscription_id: SubscriptionId,
    pub server_id: String,
    /// The site's domain or the mailbox's address.
    pub name: String,
    pub status: String,
    pub quota_mb: Option<i64>,
    pub php_version: Option<String>,
    pub archive_path: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

pub fn view(r: ResourceRecord) -> AccountView {
    AccountView {
        id: r.id,
        customer_id: r.customer_id,
        subscription_id: r.subscription_id,
        server_id: r.server_id.to_string(),
        name: r.name,
        status: r.status.as_str().to_owned(),
        quota_mb: r.quota_mb,
        php_version: r.php_version,
        archive_path: r.archive_path,
        created_at: r.created_at,
    }
}

pub async fn list(
    cx: &Context,
    kind: ResourceKind,
    customer: Option<CustomerId>,
) -> Result<Vec<AccountView>, ServiceError> {
    let store = &cx.store;
    let tenant = cx.tenant_id();
    Ok(store
        .list_resources(kind, tenant, customer, 500)
        .await?
        .into_iter()
        .map(view)
        .collect())
}

/// A hosting account with its measured disk use: what the last
/// `hosting.disk_usage` run found against the plan's quota.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct HostingAccountView {
    #[serde(flatten)]
    pub account: AccountView,
    /// `None` until first measured.
    pub disk_used_bytes: Option<i64>,
    /// The plan's quota; `None` is unlimited.
    pub disk_quota_bytes: Option<i64>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub disk_measured_at: Option<OffsetDateTime>,
    /// The last measurement found more than the quota.
    pub over_quota: bool,
    /// Since when (the first measurement over, in this stretch).
    #[serde(with = "time::serde::rfc3339::option")]
    pub over_quota_since: Option<OffsetDateTime>,
    /// Suspended because it is over quota (a measurement back under lifts
    /// it; a payment does not).
    pub suspended_for_quota: bool,
}

/// One hosting account of the tenant with its disk use; a customer only
/// their own (another's is not found).
pub async fn get_hosting(cx: &Context, id: ResourceId) -> Result<HostingAccountView, ServiceError> {
    let store = &cx.store;
    let tenant = cx.tenant_id();
    let account = store
        .resource(ResourceKind::HostingAccount, tenant, id)
        .await?
        .map(view)
        .ok_or_else(ServiceError::missing("hosting account"))?;
    if !cx.principal.role().is_staff()
        && crate::customers::own(cx).await? != Some(account.customer_id)
    {
        return Err(ServiceError::missing("hosting account")());
    }
    let u = store
        .disk_usage_of(tenant, Some(account.customer_id))
        .await?
        .remove(&account.id)
        .unwrap_or_default();
    Ok(HostingAccountView {
        disk_used_bytes: u.used_bytes,
        disk_quota_bytes: quota_bytes(account.quota_mb),
        disk_measured_at: u.measured_at,
        over_quota: u.over_quota_since.is_some(),
        over_quota_since: u.over_quota_since,
        suspended_for_quota: u.suspended_for_quota,
        account,
    })
}

/// The tenant's hosting accounts (optionally one customer's) with their
/// disk use.
pub async fn list_hosting(
    cx: &Context,
    customer: Option<CustomerId>,
) -> Result<Vec<HostingAccountView>, ServiceError> {
    let accounts = list(cx, ResourceKind::HostingAccount, customer).await?;
    with_usage(cx, accounts, customer).await
}

/// A page of the tenant's resources of `kind`, newest first.
pub async fn page(
    cx: &Context,
    kind: ResourceKind,
    query: &ResourceQuery<'_>,
) -> Result<Vec<AccountView>, ServiceError> {
    Ok(cx
        .store
        .resources_page(kind, cx.tenant_id(), query)
        .await?
        .into_iter()
        .map(view)
        .collect())
}

/// A page of the tenant's hosting accounts with their disk use.
pub async fn hosting_page(
    cx: &Context,
    query: &ResourceQuery<'_>,
) -> Result<Vec<HostingAccountView>, ServiceError> {
    let accounts = page(cx, ResourceKind::HostingAccount, query).await?;
    with_usage(cx, accounts, query.customer).await
}

async fn with_usage(
    cx: &Context,
    accounts: Vec<AccountView>,
    customer: Option<CustomerId>,
) -> Result<Vec<HostingAccountView>, ServiceError> {
    let mut usage = cx.store.disk_usage_of(cx.tenant_id(), customer).await?;
    Ok(accounts
        .into_iter()
        .map(|account| {
            let u = usage.remove(&account.id).unwrap_or_default();
            HostingAccountView {
                disk_used_bytes: u.used_bytes,
                disk_quota_bytes: quota_bytes(account.quota_mb),
                disk_measured_at: u.measured_at,
                over_quota: u.over_quota_since.is_some(),
                over_quota_since: u.over_quota_since,
                suspended_for_quota: u.suspended_for_quota,
                account,
            }
        })
        .collect())
}

/// What staff may do to a hosting account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Suspend,
    Unsuspend,
    Terminate,
}

impl Action {
    fn job(self) -> &'static str {
        match self {
            Self::Suspend => SUSPEND_JOB,
            Self::Unsuspend => UNSUSPEND_JOB,
            Self::Terminate => TERMINATE_JOB,
        }
    }

    fn allowed_from(self) -> &'static [ResourceStatus] {
        use ResourceStatus::*;
        match self {
            Self::Suspend => &[Active],
            Self::Unsuspend => &[Suspended],
            Self::Terminate => &[Active, Suspended, Pending],
        }
    }

    pub fn target(self) -> ResourceStatus {
        match self {
            Self::Suspend => ResourceStatus::Suspended,
            Self::Unsuspend => ResourceStatus::Active,
            Self::Terminate => ResourceStatus::Terminated,
        }
    }
}

/// The signed-in customer's hosting accounts (none for a user who is no
/// customer).
pub async fn mine(cx: &Context) -> Result<Vec<HostingAccountView>, ServiceError> {
    match crate::customers::own(cx).await? {
        Some(customer) => list_hosting(cx, Some(customer)).await,
        None => Ok(Vec::new()),
    }
}

/// Queues `action` on the tenant's hosting account `id`; returns the job.
pub async fn request(cx: &Context, id: ResourceId, action: Action) -> Result<JobId, ServiceError> {
    let store = &cx.store;
    let tenant = cx.tenant_id();
    let actor = &cx.actor;
    let account = store
        .resource(ResourceKind::HostingAccount, tenant, id)
        .await?
        .ok_or_else(ServiceError::missing("hosting account"))?;
    if !action.allowed_from().contains(&account.status) {
        // An account between states (`CREATING`) reads as one no action
        // applies to, as it always has.
        let from = match account.status {
            s @ (ResourceStatus::Active | ResourceStatus::Suspended | ResourceStatus::Pending) => s,
            _ => ResourceStatus::Terminated,
        };
        let allowed: Vec<&'static str> = [Action::Suspend, Action::Unsuspend, Action::Terminate]
            .into_iter()
            .filter(|a| a.allowed_from().contains(&from))
            .map(|a| a.target().as_str())
            .collect();
        return Err(ServiceError::Transition {
            what: "hosting account",
            from: from.as_str(),
            to: action.target().as_str(),
            allowed,
        });
    }
    if action == Action::Terminate
        && store
            .subscription_ref(account.subscription_id)
            .await?
            .ok_or_else(ServiceError::missing("subscription"))?
            .status
            == SubscriptionStatus::PendingActivation
    {
        return Err(ServiceError::Conflict(
            "this account is still being provisioned: wait until it is active (or its provisioning failed)".into(),
        ));
    }
    let now = cx.now();
    let mut tx = store.begin().await?;
    let options = JobOptions {
        queue: "provisioning".into(),
        unique_key: Some(format!("{}:{id}", action.job())),
        max_attempts: 10,
        ..JobOptions::default()
    };
    let (job, _) = enqueue(
        &mut tx,
        action.job(),
        &HostingAction {
            tenant_id: tenant,
            hosting_account_id: id,
        },
        &options,
        now,
    )
    .await?;
    tx.record_audit(&actor.audit(Change {
        tenant,
        action: action.job(),
        target_type: "hosting_account",
        target_id: id.to_string(),
        before: Some(json!({"status": account.status})),
        after: Some(json!({"requested": action.target(), "job_id": job})),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(job)
}

/// Queues a new password for mailbox `id` (hashed here for Dovecot; the
/// job carries only the hash).
pub async fn set_mail_password(
    cx: &Context,
    id: ResourceId,
    password: &str,
) -> Result<JobId, ServiceError> {
    let store = &cx.store;
    let tenant = cx.tenant_id();
    let actor = &cx.actor;
    let mbox = store
        .resource(ResourceKind::MailAccount, tenant, id)
        .await?
        .ok_or_else(ServiceError::missing("mailbox"))?;
    only_own(cx, mbox.customer_id, "mailbox").await?;
    let hash = mailbox_password_hash(password, "password").await?;
    if mbox.status == ResourceStatus::Deleted {
        return Err(ServiceError::Conflict("the mailbox is deleted".into()));
    }
    let now = cx.now();
    let mut tx = store.begin().await?;
    let (job, _) = enqueue(
        &mut tx,
        MAIL_PASSWORD_JOB,
        &MailPassword {
            tenant_id: tenant,
            mail_account_id: id,
            password_hash: hash,
        },
        &JobOptions {
            queue: "provisioning".into(),
            max_attempts: 10,
            ..JobOptions::default()
        },
        now,
    )
    .await?;
    tx.record_audit(&actor.audit(Change {
        tenant,
        action: "mail.account.password",
        target_type: "mail_account",
        target_id: id.to_string(),
        before: None,
        after: Some(json!({"job_id": job})),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(job)
}

/// A further mailbox of a subscription, within its plan's count: recorded
/// at once (PENDING) on the server holding the subscription's mail, made
/// by a queued job.
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMailbox {
    pub subscription_id: SubscriptionId,
    /// The part before the `@`; the domain is the subscription's.
    #[schema(pattern = "^[A-Za-z0-9_-]([A-Za-z0-9._-]{0,62}[A-Za-z0-9_-])?$")]
    pub local_part: String,
    /// 10 to 200 characters, no control characters.
    #[schema(pattern = "^[^\\u0000-\\u001F\\u007F-\\u009F]{10,200}$")]
    pub password: String,
}

pub async fn create_mailbox(
    cx: &Context,
    input: NewMailbox,
) -> Result<(AccountView, JobId), ServiceError> {
    let store = &cx.store;
    let tenant = cx.tenant_id();
    let actor = &cx.actor;
    let local = check_local_part(&input.local_part)?;
    // Whose it is first: another's is not found, whatever its state.
    if let Some(found) = store.subscription_ref(input.subscription_id).await?
        && found.tenant_id == tenant
    {
        only_own(cx, found.customer_id, "subscription").await?;
    }
    let sub = active_subscription(store, tenant, input.subscription_id).await?;
    let plan = mail_plan(store, tenant, &sub).await?;
    let first = free_mailbox_slot(store, &sub, &plan).await?;
    let domain = first
        .name
        .split_once('@')
        .map(|(_, d)| d.to_owned())
        .unwrap_or_default();
    let address = format!("{local}@{domain}");
    let hash = mailbox_password_hash(&input.password, "password").await?;
    let now = cx.now();
    let record = ResourceRecord {
        id: ResourceId::new(),
        tenant_id: tenant,
        customer_id: sub.customer_id,
        subscription_id: sub.id,
        server_id: first.server_id,
        name: address.clone(),
        status: ResourceStatus::Pending,
        quota_mb: plan.quota_mb.map(i64::from),
        php_version: None,
        archive_path: None,
        created_at: now,
        updated_at: now,
    };
    let mut tx = store.begin().await?;
    insert_mailbox(&mut tx, &sub, &plan, &record).await?;
    let (job, _) = enqueue(
        &mut tx,
        mpanel_domain::provisioning::MAIL_CREATE_JOB,
        &MailPassword {
            tenant_id: tenant,
            mail_account_id: record.id,
            password_hash: hash,
        },
        &JobOptions {
            queue: "provisioning".into(),
            unique_key: Some(format!("mail.account.create:{}", record.id)),
            max_attempts: 10,
            ..JobOptions::default()
        },
        now,
    )
    .await?;
    tx.record_audit(&actor.audit(Change {
        tenant,
        action: "mail.account.create",
        target_type: "mail_account",
        target_id: record.id.to_string(),
        before: None,
        after: Some(json!({"address": address, "subscription_id": sub.id, "job_id": job})),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok((view(record), job))
}

/// Staff reach the tenant's; a customer only their own (another's is
/// not found).
async fn only_own(cx: &Context, owner: CustomerId, what: &str) -> Result<(), ServiceError> {
    if cx.principal.role().is_staff() || crate::customers::own(cx).await? == Some(owner) {
        Ok(())
    } else {
        Err(ServiceError::missing(what)())
    }
}

/// A mailbox's local part, lower-cased: what every mail node accepts.
fn check_local_part(raw: &str) -> Result<String, ServiceError> {
    let local = raw.trim().to_ascii_lowercase();
    let local_ok = (1..=64).contains(&local.len())
        && local
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.');
    if !local_ok {
        return Err(ServiceError::invalid(
            "local_part",
            "1 to 64 of a-z, 0-9, '.', '_' and '-'",
        ));
    }
    Ok(local)
}

/// The tenant's subscription, if active (another tenant's is not found).
async fn active_subscription(
    store: &Store,
    tenant: TenantId,
    id: SubscriptionId,
) -> Result<SubscriptionRef, ServiceError> {
    let sub = store
        .subscription_ref(id)
        .await?
        .filter(|s| s.tenant_id == tenant)
        .ok_or_else(ServiceError::missing("subscription"))?;
    if sub.status != SubscriptionStatus::Active {
        return Err(ServiceError::Conflict(format!(
            "the subscription is {}: mailboxes are added to active ones",
            sub.status
        )));
    }
    Ok(sub)
}

/// What the subscription's plan allows in mail.
struct MailPlan {
    mailboxes: u32,
    quota_mb: Option<u32>,
}

async fn mail_plan(
    store: &Store,
    tenant: TenantId,
    sub: &SubscriptionRef,
) -> Result<MailPlan, ServiceError> {
    use mpanel_domain::catalog::ProvisioningTemplate;
    let product = store
        .product(tenant, sub.product_id)
        .await?
        .ok_or_else(ServiceError::missing("product"))?;
    let (mailboxes, quota_mb) = match product.fields.template {
        ProvisioningTemplate::Hosting { mailboxes, .. } => (mailboxes, None),
        ProvisioningTemplate::Email {
            mailboxes,
            quota_mb,
            ..
        } => (mailboxes, quota_mb),
        _ => (0, None),
    };
    Ok(MailPlan {
        mailboxes,
        quota_mb,
    })
}

/// The subscription's first mailbox (the new one goes on its domain and
/// server), once the plan has room for another.
async fn free_mailbox_slot(
    store: &Store,
    sub: &SubscriptionRef,
    plan: &MailPlan,
) -> Result<ResourceRecord, ServiceError> {
    let existing = store
        .resources_of(ResourceKind::MailAccount, sub.id)
        .await?;
    if existing.is_empty() {
        return Err(no_mail_service());
    }
    if existing.len() >= plan.mailboxes as usize {
        return Err(plan_full(plan));
    }
    existing.into_iter().next().ok_or_else(no_mail_service)
}

fn no_mail_service() -> ServiceError {
    ServiceError::Conflict("this subscription has no mail service".into())
}

fn plan_full(plan: &MailPlan) -> ServiceError {
    ServiceError::Conflict(format!(
        "the plan includes {} mailboxes, all in use",
        plan.mailboxes
    ))
}

/// Inserts the mailbox, counted again under the subscription's lock:
/// concurrent requests cannot all pass the first check and exceed the
/// plan together.
async fn insert_mailbox(
    tx: &mut Tx,
    sub: &SubscriptionRef,
    plan: &MailPlan,
    record: &ResourceRecord,
) -> Result<(), ServiceError> {
    tx.subscription_for_update(sub.tenant_id, sub.id)
        .await?
        .ok_or_else(ServiceError::missing("subscription"))?;
    if tx
        .count_live_resources(ResourceKind::MailAccount, sub.id)
        .await?
        >= i64::from(plan.mailboxes)
    {
        return Err(plan_full(plan));
    }
    tx.insert_resource(ResourceKind::MailAccount, record)
        .await
        .map_err(|e| match e {
            mpanel_store::StoreError::Conflict(_) => {
                ServiceError::Conflict(format!("{} exists", record.name))
            }
            other => other.into(),
        })
}

/// A mailbox password as Dovecot checks it (`{ARGON2ID}` + PHC string),
/// after the rule every mailbox password follows; `field` names it.
pub(crate) async fn mailbox_password_hash(
    password: &str,
    field: impl Into<std::borrow::Cow<'static, str>>,
) -> Result<String, ServiceError> {
    // Counted in characters, as the message (and the API description) says.
    let length = password.chars().count();
    if !(10..=200).contains(&length) || password.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            field,
            "must be 10 to 200 characters, without control characters",
        ));
    }
    Ok(format!(
        "{{ARGON2ID}}{}",
        crate::identity::passwords::hash(password).await?
    ))
}
