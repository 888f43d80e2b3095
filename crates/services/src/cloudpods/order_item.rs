//! A CloudPod order item: its options checked when the order is placed
//! (`hostname`, `name`, `os_image`, `ssh_keys`), and its pod made in the
//! transaction that queues its provisioning.

use mpanel_domain::cloudpods::{PodPlan, PodStatus, valid_hostname};
use mpanel_domain::provisioning::ssh_key::is_public_key_line;
use mpanel_domain::{CloudPodId, CustomerId, SubscriptionId, TenantId};
use mpanel_store::Tx;
use mpanel_store::cloudpods::PodRecord;
use serde_json::Value;
use time::OffsetDateTime;

use crate::ServiceError;

/// How many SSH keys a pod takes.
const MAX_SSH_KEYS: usize = 20;

/// A pod's options, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodOptions {
    pub hostname: Option<String>,
    pub name: Option<String>,
    pub os_image: Option<String>,
    pub ssh_keys: Vec<String>,
}

fn text<'a>(options: &'a Value, key: &str, field: &str) -> Result<Option<&'a str>, ServiceError> {
    match options.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(ServiceError::invalid(
            format!("{field}.{key}"),
            "must be a string",
        )),
    }
}

/// Checks the options of a CloudPod item; `field` names them in errors
/// (`items[0].options`).
pub fn check(options: Option<&Value>, field: &str) -> Result<PodOptions, ServiceError> {
    let Some(options) = options else {
        return Ok(PodOptions::default());
    };
    let hostname = text(options, "hostname", field)?.map(str::to_ascii_lowercase);
    if let Some(h) = &hostname
        && !valid_hostname(h)
    {
        return Err(ServiceError::invalid(
            format!("{field}.hostname"),
            "must be a host name (letters, digits, hyphens and dots)",
        ));
    }
    let name = text(options, "name", field)?
        .map(str::trim)
        .map(str::to_owned);
    if name.as_ref().is_some_and(|n| n.is_empty() || n.len() > 100) {
        return Err(ServiceError::invalid(
            format!("{field}.name"),
            "must be 1 to 100 characters",
        ));
    }
    let os_image = text(options, "os_image", field)?.map(str::to_owned);
    if os_image.as_ref().is_some_and(|i| {
        i.is_empty()
            || i.len() > 64
            || !i
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    }) {
        return Err(ServiceError::invalid(
            format!("{field}.os_image"),
            "must be an image name such as debian-12",
        ));
    }
    let ssh_keys = ssh_keys(options.get("ssh_keys"), &format!("{field}.ssh_keys"))?;
    Ok(PodOptions {
        hostname,
        name,
        os_image,
        ssh_keys,
    })
}

/// An image a pod asks for must be offered by a cluster of the inventory
/// (checked when the order is placed, not after it is paid).
pub async fn check_image(
    store: &mpanel_store::Store,
    options: &PodOptions,
    field: &str,
) -> Result<(), ServiceError> {
    let Some(image) = &options.os_image else {
        return Ok(());
    };
    let clusters = store
        .list_servers(Some(mpanel_domain::provisioning::ServerRole::Cloud))
        .await?;
    let offered = clusters.iter().any(|c| {
        mpanel_domain::cloudpods::ClusterSettings::from_value(&c.settings)
            .is_ok_and(|s| s.templates.contains_key(image))
    });
    if offered {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            format!("{field}.os_image"),
            format!("no cluster offers the image {image:?}"),
        ))
    }
}

/// A list of OpenSSH public key lines.
pub fn ssh_keys(value: Option<&Value>, field: &str) -> Result<Vec<String>, ServiceError> {
    let keys = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(keys)) => keys,
        Some(_) => {
            return Err(ServiceError::invalid(
                field.to_owned(),
                "must be a list of public keys",
            ));
        }
    };
    if keys.len() > MAX_SSH_KEYS {
        return Err(ServiceError::invalid(
            field.to_owned(),
            format!("at most {MAX_SSH_KEYS} keys"),
        ));
    }
    keys.iter()
        .map(|k| match k.as_str().map(str::trim) {
            Some(k) if is_public_key_line(k) => Ok(k.to_owned()),
            _ => Err(ServiceError::invalid(
                field.to_owned(),
                "each must be one OpenSSH public key line (ssh-ed25519 AAAA… comment)",
            )),
        })
        .collect()
}

/// The pod an order item makes.
pub struct NewPod<'a> {
    pub tenant: TenantId,
    pub customer: CustomerId,
    pub subscription: SubscriptionId,
    pub domain: Option<&'a str>,
    pub options: Option<&'a Value>,
    pub plan: &'a PodPlan,
}

/// Makes the pod of a CloudPod item (`PROVISIONING`, not placed yet) in
/// the order's transaction; a subscription that has one keeps it.
pub async fn create_in(
    tx: &mut Tx,
    new: NewPod<'_>,
    now: OffsetDateTime,
) -> Result<(), ServiceError> {
    if tx
        .cloud_pod_of_subscription(new.subscription)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let options = check(new.options, "options")?;
    let id = CloudPodId::new();
    let short = id.to_string().replace('-', "");
    let hostname = options
        .hostname
        .or_else(|| new.domain.map(str::to_owned))
        .unwrap_or_else(|| format!("pod-{}", &short[short.len() - 8..]));
    let plan = new.plan;
    tx.insert_cloud_pod(&PodRecord {
        id,
        tenant_id: new.tenant,
        customer_id: new.customer,
        subscription_id: new.subscription,
        cluster_id: None,
        node: None,
        vmid: None,
        ipv4: None,
        name: options.name.unwrap_or_else(|| hostname.clone()),
        hostname,
        os_image: options.os_image,
        ssh_keys: options.ssh_keys.join("\n"),
        notes: String::new(),
        plan: plan.name.clone(),
        vcpus: plan.vcpus,
        memory_mb: plan.memory_mb,
        disk_gb: plan.disk_gb,
        status: PodStatus::Provisioning,
        suspended_by: None,
        last_task: None,
        last_error: None,
        usage: None,
        usage_at: None,
        net_seen_bytes: 0,
        net_unbilled_bytes: 0,
        created_at: now,
        updated_at: now,
    })
    .await?;
    Ok(())
}
