//! A hosting account's SFTP access: a new password (hashed here with
//! SHA-512-crypt for the node's shadow file; the job carries only the
//! hash) and/or the public keys that may log in. Queued as a job, like a
//! mailbox's password.

use mpanel_domain::provisioning::ssh_key::is_public_key_line;
use mpanel_domain::provisioning::{ResourceStatus, SFTP_JOB};
use mpanel_domain::{CustomerId, JobId, ResourceId, TenantId};
use mpanel_jobs::{JobOptions, enqueue_job};
use mpanel_store::Store;
use mpanel_store::provisioning::ResourceKind;
use serde::Deserialize;
use serde_json::json;

use crate::actor::Change;
use crate::{Context, ServiceError};

/// `PUT …/sftp`: at least one of the two; `keys: []` removes every key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SftpAccess {
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub keys: Option<Vec<String>>,
}

/// The SFTP password as the node's shadow file keeps it (SHA-512 crypt),
/// once it is long enough; the job never carries the password itself.
fn crypt_password(p: &str) -> Result<String, ServiceError> {
    if !(10..=200).contains(&p.chars().count()) || p.chars().any(char::is_control) {
        return Err(ServiceError::invalid(
            "password",
            "must be 10 to 200 characters, without control characters",
        ));
    }
    crate::crypt::sha512_crypt_new(p)
        .map_err(|e| ServiceError::internal_msg(format!("no randomness for a salt: {e}")))
}

/// The keys, trimmed: at most 20, each one OpenSSH public key line.
fn check_keys(keys: &[String]) -> Result<Vec<String>, ServiceError> {
    let ks: Vec<String> = keys.iter().map(|k| k.trim().to_owned()).collect();
    if ks.len() > 20 {
        return Err(ServiceError::invalid("keys", "at most 20 keys"));
    }
    if let Some(n) = ks.iter().position(|k| !is_public_key_line(k)) {
        return Err(ServiceError::invalid(
            "keys",
            format!(
                "key {} is not one OpenSSH public key line (type, key, optional comment)",
                n + 1
            ),
        ));
    }
    Ok(ks)
}

/// The account must be the tenant's (and the customer's, for one), and
/// not terminated.
async fn live_account(
    store: &Store,
    tenant: TenantId,
    customer: Option<CustomerId>,
    id: ResourceId,
) -> Result<(), ServiceError> {
    let account = store
        .resource(ResourceKind::HostingAccount, tenant, id)
        .await?
        .ok_or_else(ServiceError::missing("hosting account"))?;
    if customer.is_some_and(|c| c != account.customer_id) {
        return Err(ServiceError::NotFound("no such hosting account".into()));
    }
    if account.status == ResourceStatus::Terminated {
        return Err(ServiceError::Conflict(
            "the hosting account is terminated".into(),
        ));
    }
    Ok(())
}

/// Staff: queues the new SFTP access of any hosting account of the
/// tenant.
pub async fn set_sftp_access(
    cx: &Context,
    id: ResourceId,
    input: SftpAccess,
) -> Result<JobId, ServiceError> {
    set_access(cx, None, id, input).await
}

/// The signed-in customer: only an account of their own (another's, or
/// any for a user who is no customer, is not found).
pub async fn set_own_sftp_access(
    cx: &Context,
    id: ResourceId,
    input: SftpAccess,
) -> Result<JobId, ServiceError> {
    let Some(customer) = crate::customers::own(cx).await? else {
        return Err(ServiceError::NotFound("no such hosting account".into()));
    };
    set_access(cx, Some(customer), id, input).await
}

/// Queues the account's new SFTP access. The account must be the
/// tenant's (and, for a customer, theirs: `customer`), not terminated.
async fn set_access(
    cx: &Context,
    customer: Option<CustomerId>,
    id: ResourceId,
    input: SftpAccess,
) -> Result<JobId, ServiceError> {
    let store = &cx.store;
    let tenant = cx.tenant_id();
    let actor = &cx.actor;
    if input.password.is_none() && input.keys.is_none() {
        return Err(ServiceError::invalid(
            "password",
            "give a password, keys, or both",
        ));
    }
    let hash = input.password.as_deref().map(crypt_password).transpose()?;
    let keys = input.keys.map(|ks| check_keys(&ks)).transpose()?;
    live_account(store, tenant, customer, id).await?;
    let now = cx.now();
    let mut tx = store.begin().await?;
    // One change at a time per account, the newest winning: a change still
    // waiting (or retrying) is replaced, so it can never run after this one
    // and bring back a key or password this one removed.
    let key = format!("{SFTP_JOB}:{id}");
    tx.cancel_waiting_jobs(&key, now).await?;
    let access = mpanel_domain::provisioning::payloads::SftpAccess {
        tenant_id: tenant,
        hosting_account_id: id,
        password_hash: hash,
        keys,
    };
    let (job, new) = enqueue_job(
        &mut tx,
        &access,
        &JobOptions {
            queue: "provisioning".into(),
            max_attempts: 10,
            unique_key: Some(key),
            ..JobOptions::default()
        },
        now,
    )
    .await?;
    if !new {
        return Err(ServiceError::Conflict(
            "an SFTP change for this account is being applied right now; try again in a moment"
                .into(),
        ));
    }
    tx.record_audit(&actor.audit(Change {
        tenant,
        action: SFTP_JOB,
        target_type: "hosting_account",
        target_id: id.to_string(),
        before: None,
        after: Some(
            json!({"job_id": job, "password": access.password_hash.is_some(),
            "keys": access.keys.as_ref().map(Vec::len)}),
        ),
        at: now,
    }))
    .await?;
    tx.commit().await?;
    Ok(job)
}
