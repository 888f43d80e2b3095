//! CloudPods and their backups. A pod's VMID and IPv4 are unique per
//! cluster (unique indexes); giving them back clears both columns.

use std::net::Ipv4Addr;

use mpanel_domain::cloudpods::{PodStatus, SuspendedBy};
use mpanel_domain::{CloudPodId, CustomerId, ServerId, SubscriptionId, TenantId};
use sqlx::Row;
use time::OffsetDateTime;

use crate::error::parse_text;
use crate::{Store, StoreResult, Tx};

/// A pod as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct PodRecord {
    pub id: CloudPodId,
    pub tenant_id: TenantId,
    pub customer_id: CustomerId,
    pub subscription_id: SubscriptionId,
    /// The cluster (a `CLOUD` server), once placed.
    pub cluster_id: Option<ServerId>,
    pub node: Option<String>,
    pub vmid: Option<u32>,
    pub ipv4: Option<Ipv4Addr>,
    pub name: String,
    pub hostname: String,
    pub os_image: Option<String>,
    /// OpenSSH public keys, one per line.
    pub ssh_keys: String,
    pub notes: String,
    pub plan: String,
    pub vcpus: u32,
    pub memory_mb: u32,
    pub disk_gb: u32,
    pub status: PodStatus,
    pub suspended_by: Option<SuspendedBy>,
    /// The UPID of the last Proxmox task started for the pod.
    pub last_task: Option<String>,
    pub last_error: Option<String>,
    /// The last usage sample read from the cluster, and when.
    pub usage: Option<serde_json::Value>,
    pub usage_at: Option<OffsetDateTime>,
    /// The VM's network counter (in + out) at that sample.
    pub net_seen_bytes: i64,
    /// Transfer not yet recorded as usage (less than one unit).
    pub net_unbilled_bytes: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const COLUMNS: &str = "id, tenant_id, customer_id, subscription_id, cluster_id, node, vmid, ipv4, \
    name, hostname, os_image, ssh_keys, notes, plan, vcpus, memory_mb, disk_gb, status, \
    suspended_by, last_task, last_error, usage, usage_at, net_seen_bytes, net_unbilled_bytes, \
    created_at, updated_at";

fn small(what: &str, v: i64) -> Result<u32, crate::StoreError> {
    u32::try_from(v)
        .map_err(|_| crate::StoreError::Database(sqlx::Error::Decode(format!("{what} {v}").into())))
}

macro_rules! pod_from_row {
    ($row:expr) => {{
        let row = $row;
        let cluster: Option<uuid::Uuid> = row.try_get("cluster_id")?;
        let vmid: Option<i64> = row.try_get("vmid")?;
        let ipv4: Option<String> = row.try_get("ipv4")?;
        let suspended_by: Option<String> = row.try_get("suspended_by")?;
        PodRecord {
            id: CloudPodId::from_uuid(row.try_get("id")?),
            tenant_id: TenantId::from_uuid(row.try_get("tenant_id")?),
            customer_id: CustomerId::from_uuid(row.try_get("customer_id")?),
            subscription_id: SubscriptionId::from_uuid(row.try_get("subscription_id")?),
            cluster_id: cluster.map(ServerId::from_uuid),
            node: row.try_get("node")?,
            vmid: vmid.map(|v| small("vmid", v)).transpose()?,
            ipv4: ipv4.map(|v| parse_text("pod address", v)).transpose()?,
            name: row.try_get("name")?,
            hostname: row.try_get("hostname")?,
            os_image: row.try_get("os_image")?,
            ssh_keys: row.try_get("ssh_keys")?,
            notes: row.try_get("notes")?,
            plan: row.try_get("plan")?,
            vcpus: small("vcpus", row.try_get("vcpus")?)?,
            memory_mb: small("memory_mb", row.try_get("memory_mb")?)?,
            disk_gb: small("disk_gb", row.try_get("disk_gb")?)?,
            status: parse_text("pod status", row.try_get("status")?)?,
            suspended_by: suspended_by
                .map(|v| parse_text("suspended_by", v))
                .transpose()?,
            last_task: row.try_get("last_task")?,
            last_error: row.try_get("last_error")?,
            usage: row
                .try_get::<Option<sqlx::types::Json<serde_json::Value>>, _>("usage")?
                .map(|u| u.0),
            usage_at: row.try_get("usage_at")?,
            net_seen_bytes: row.try_get("net_seen_bytes")?,
            net_unbilled_bytes: row.try_get("net_unbilled_bytes")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        }
    }};
}

/// Which pods a list shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct PodFilter {
    pub customer: Option<CustomerId>,
    pub status: Option<PodStatus>,
}

/// What a pod's placement holds on its cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub cluster: ServerId,
    pub node: String,
    pub vmid: u32,
    pub ipv4: Ipv4Addr,
}

/// What a cluster's pods hold: the VMIDs and addresses in use, and per
/// node the memory (MB) and disk (GB) of pods still being made (not yet
/// in the node's own figures).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterHoldings {
    pub vmids: Vec<u32>,
    pub addresses: Vec<Ipv4Addr>,
    pub pending: Vec<(String, u64, u64)>,
}

impl Tx {
    pub async fn insert_cloud_pod(&mut self, p: &PodRecord) -> StoreResult<()> {
        let sql = sqlx::AssertSqlSafe(format!(
            "INSERT INTO cloud_pods ({COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, \
              $22, $23, $24, $25, $26, $27)"
        ));
        on_tx!(self, |c| {
            sqlx::query(sql)
                .bind(p.id.as_uuid())
                .bind(p.tenant_id.as_uuid())
                .bind(p.customer_id.as_uuid())
                .bind(p.subscription_id.as_uuid())
                .bind(p.cluster_id.map(|s| s.as_uuid()))
                .bind(&p.node)
                .bind(p.vmid.map(i64::from))
                .bind(p.ipv4.map(|a| a.to_string()))
                .bind(&p.name)
                .bind(&p.hostname)
                .bind(&p.os_image)
                .bind(&p.ssh_keys)
                .bind(&p.notes)
                .bind(&p.plan)
                .bind(i64::from(p.vcpus))
                .bind(i64::from(p.memory_mb))
                .bind(i64::from(p.disk_gb))
                .bind(p.status.as_str())
                .bind(p.suspended_by.map(|s| s.as_str()))
                .bind(&p.last_task)
                .bind(&p.last_error)
                .bind(p.usage.as_ref().map(sqlx::types::Json))
                .bind(p.usage_at)
                .bind(p.net_seen_bytes)
                .bind(p.net_unbilled_bytes)
                .bind(p.created_at)
                .bind(p.updated_at)
                .execute(c)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// The pod of a subscription, read in the transaction.
    pub async fn cloud_pod_of_subscription(
        &mut self,
        subscription: SubscriptionId,
    ) -> StoreResult<Option<PodRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM cloud_pods WHERE subscription_id = $1"
        ));
        let found = on_tx!(self, |c| {
            match sqlx::query(sql)
                .bind(subscription.as_uuid())
                .fetch_optional(c)
                .await?
            {
                Some(row) => Some(pod_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// Records the pod's status (and who suspended it); `false` when the
    /// tenant has no such pod.
    pub async fn set_cloud_pod_status(
        &mut self,
        id: CloudPodId,
        status: PodStatus,
        suspended_by: Option<SuspendedBy>,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let done = on_tx!(self, |c| {
            sqlx::query(
                "UPDATE cloud_pods SET status = $2, suspended_by = $3, updated_at = $4 WHERE id = $1",
            )
            .bind(id.as_uuid())
            .bind(status.as_str())
            .bind(suspended_by.map(|s| s.as_str()))
            .bind(now)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }
}

impl Tx {
    /// The plan the pod is billed for (set with the plan change; the VM
    /// follows through `cloudpod.resize`).
    pub async fn set_cloud_pod_plan(
        &mut self,
        id: CloudPodId,
        plan: &mpanel_domain::cloudpods::PodPlan,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_tx!(self, |c| {
            sqlx::query(
                "UPDATE cloud_pods SET plan = $2, vcpus = $3, memory_mb = $4, disk_gb = $5, updated_at = $6 WHERE id = $1",
            )
            .bind(id.as_uuid())
            .bind(&plan.name)
            .bind(i64::from(plan.vcpus))
            .bind(i64::from(plan.memory_mb))
            .bind(i64::from(plan.disk_gb))
            .bind(now)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// The fields a customer or staff edit: name, host name, SSH keys,
    /// notes.
    pub async fn update_cloud_pod_details(&mut self, p: &PodRecord) -> StoreResult<bool> {
        let done = on_tx!(self, |c| {
            sqlx::query(
                "UPDATE cloud_pods SET name = $3, hostname = $4, ssh_keys = $5, notes = $6, updated_at = $7 \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(p.tenant_id.as_uuid())
            .bind(p.id.as_uuid())
            .bind(&p.name)
            .bind(&p.hostname)
            .bind(&p.ssh_keys)
            .bind(&p.notes)
            .bind(p.updated_at)
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }
}

impl Store {
    pub async fn cloud_pod(
        &self,
        tenant: TenantId,
        id: CloudPodId,
    ) -> StoreResult<Option<PodRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM cloud_pods WHERE tenant_id = $1 AND id = $2"
        ));
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(id.as_uuid())
                .fetch_optional(p)
                .await?
            {
                Some(row) => Some(pod_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// A pod by id alone (jobs carry the tenant; this is for workers).
    pub async fn cloud_pods_by_id(&self, id: CloudPodId) -> StoreResult<Option<PodRecord>> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM cloud_pods WHERE id = $1"));
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(sql)
                .bind(id.as_uuid())
                .fetch_optional(p)
                .await?
            {
                Some(row) => Some(pod_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    pub async fn cloud_pod_of_subscription(
        &self,
        subscription: SubscriptionId,
    ) -> StoreResult<Option<PodRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM cloud_pods WHERE subscription_id = $1"
        ));
        let found = on_pool!(self.pool, |p| {
            match sqlx::query(sql)
                .bind(subscription.as_uuid())
                .fetch_optional(p)
                .await?
            {
                Some(row) => Some(pod_from_row!(&row)),
                None => None,
            }
        });
        Ok(found)
    }

    /// A page of the tenant's pods, newest first, after `after`.
    pub async fn cloud_pods(
        &self,
        tenant: TenantId,
        filter: PodFilter,
        after: Option<CloudPodId>,
        limit: u32,
    ) -> StoreResult<Vec<PodRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM cloud_pods WHERE tenant_id = $1 \
             AND ($2 IS NULL OR customer_id = $2) AND ($3 IS NULL OR status = $3) \
             AND ($4 IS NULL OR id < $4) ORDER BY id DESC LIMIT $5"
        ));
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(tenant.as_uuid())
                .bind(filter.customer.map(|c| c.as_uuid()))
                .bind(filter.status.map(|s| s.as_str()))
                .bind(after.map(|a| a.as_uuid()))
                .bind(i64::from(limit))
                .fetch_all(p)
                .await?
            {
                out.push(pod_from_row!(&row));
            }
            out
        });
        Ok(found)
    }

    /// What the cluster's pods hold now.
    pub async fn cluster_holdings(&self, cluster: ServerId) -> StoreResult<ClusterHoldings> {
        let rows = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(
                "SELECT node, vmid, ipv4, status, memory_mb, disk_gb FROM cloud_pods WHERE cluster_id = $1",
            )
            .bind(cluster.as_uuid())
            .fetch_all(p)
            .await?
            {
                out.push((
                    row.try_get::<Option<String>, _>("node")?,
                    row.try_get::<Option<i64>, _>("vmid")?,
                    row.try_get::<Option<String>, _>("ipv4")?,
                    row.try_get::<String, _>("status")?,
                    row.try_get::<i64, _>("memory_mb")?,
                    row.try_get::<i64, _>("disk_gb")?,
                ));
            }
            out
        });
        let mut held = ClusterHoldings::default();
        for (node, vmid, ipv4, status, memory, disk) in rows {
            if let Some(v) = vmid {
                held.vmids.push(small("vmid", v)?);
            }
            if let Some(a) = ipv4 {
                held.addresses.push(parse_text("pod address", a)?);
            }
            if status == PodStatus::Provisioning.as_str()
                && let Some(node) = node
            {
                let (m, d) = (
                    u64::try_from(memory).unwrap_or(0),
                    u64::try_from(disk).unwrap_or(0),
                );
                match held.pending.iter_mut().find(|(n, _, _)| *n == node) {
                    Some(entry) => {
                        entry.1 += m;
                        entry.2 += d;
                    }
                    None => held.pending.push((node, m, d)),
                }
            }
        }
        Ok(held)
    }

    /// Places a pod that is not placed yet; `Ok(false)` when it already
    /// was, a `Conflict` when the VMID or address was taken meanwhile.
    pub async fn place_cloud_pod(
        &self,
        id: CloudPodId,
        at: &Placement,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let done = on_pool!(self.writer, |p| {
            sqlx::query(
                "UPDATE cloud_pods SET cluster_id = $2, node = $3, vmid = $4, ipv4 = $5, updated_at = $6 \
                 WHERE id = $1 AND vmid IS NULL",
            )
            .bind(id.as_uuid())
            .bind(at.cluster.as_uuid())
            .bind(&at.node)
            .bind(i64::from(at.vmid))
            .bind(at.ipv4.to_string())
            .bind(now)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }

    /// The node the pod's VM was found on (migrated by the cluster).
    pub async fn move_cloud_pod(
        &self,
        id: CloudPodId,
        node: &str,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_pool!(self.writer, |p| {
            sqlx::query("UPDATE cloud_pods SET node = $2, updated_at = $3 WHERE id = $1")
                .bind(id.as_uuid())
                .bind(node)
                .bind(now)
                .execute(p)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// Forgets where the pod was placed (its VMID turned out taken on the
    /// cluster): the next attempt places it again.
    pub async fn unplace_cloud_pod(&self, id: CloudPodId, now: OffsetDateTime) -> StoreResult<()> {
        on_pool!(self.writer, |p| {
            sqlx::query(
                "UPDATE cloud_pods SET cluster_id = NULL, node = NULL, vmid = NULL, ipv4 = NULL, \
                 last_task = NULL, updated_at = $2 WHERE id = $1",
            )
            .bind(id.as_uuid())
            .bind(now)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Gives the pod's VMID and address back and records where it ended
    /// (`DELETED`, or `FAILED` with why).
    pub async fn release_cloud_pod(
        &self,
        id: CloudPodId,
        status: PodStatus,
        error: Option<&str>,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_pool!(self.writer, |p| {
            sqlx::query(
                "UPDATE cloud_pods SET vmid = NULL, ipv4 = NULL, status = $2, last_error = $3, \
                 suspended_by = NULL, updated_at = $4 WHERE id = $1",
            )
            .bind(id.as_uuid())
            .bind(status.as_str())
            .bind(error)
            .bind(now)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    /// Records the last task started for the pod and the last error (both
    /// replaced: `None` clears).
    pub async fn note_cloud_pod_task(
        &self,
        id: CloudPodId,
        task: Option<&str>,
        error: Option<&str>,
        now: OffsetDateTime,
    ) -> StoreResult<()> {
        on_pool!(self.writer, |p| {
            sqlx::query(
                "UPDATE cloud_pods SET last_task = COALESCE($2, last_task), last_error = $3, updated_at = $4 WHERE id = $1",
            )
            .bind(id.as_uuid())
            .bind(task)
            .bind(error)
            .bind(now)
            .execute(p)
            .await?
            .rows_affected()
        });
        Ok(())
    }

    pub async fn set_cloud_pod_status(
        &self,
        id: CloudPodId,
        status: PodStatus,
        suspended_by: Option<SuspendedBy>,
        now: OffsetDateTime,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let done = tx
            .set_cloud_pod_status(id, status, suspended_by, now)
            .await?;
        tx.commit().await?;
        Ok(done)
    }
}

/// A usage sample of a pod, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct PodSample {
    pub usage: serde_json::Value,
    pub at: OffsetDateTime,
    pub net_seen_bytes: i64,
    pub net_unbilled_bytes: i64,
}

impl Tx {
    /// Records a pod's usage sample (with the usage it bills, in the same
    /// transaction) if the pod still holds the sample `prev` was read
    /// after; `false` when another reading got there first (then nothing
    /// of this one may be kept).
    pub async fn record_pod_sample(
        &mut self,
        id: CloudPodId,
        prev: &PodRecord,
        s: &PodSample,
    ) -> StoreResult<bool> {
        let done = on_tx!(self, |c| {
            sqlx::query(
                "UPDATE cloud_pods SET usage = $2, usage_at = $3, net_seen_bytes = $4, \
                 net_unbilled_bytes = $5 WHERE id = $1 AND net_seen_bytes = $6 \
                 AND net_unbilled_bytes = $7 AND (usage_at = $8 OR (usage_at IS NULL AND $9))",
            )
            .bind(id.as_uuid())
            .bind(sqlx::types::Json(&s.usage))
            .bind(s.at)
            .bind(s.net_seen_bytes)
            .bind(s.net_unbilled_bytes)
            .bind(prev.net_seen_bytes)
            .bind(prev.net_unbilled_bytes)
            .bind(prev.usage_at)
            .bind(prev.usage_at.is_none())
            .execute(c)
            .await?
            .rows_affected()
        });
        Ok(done == 1)
    }
}

impl Store {
    /// Pods with a VM to meter (running or suspended), after `after`.
    pub async fn pods_to_meter(
        &self,
        after: Option<CloudPodId>,
        limit: u32,
    ) -> StoreResult<Vec<PodRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM cloud_pods WHERE status IN ('ACTIVE', 'SUSPENDED') \
             AND vmid IS NOT NULL AND ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2"
        ));
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(after.map(|a| a.as_uuid()))
                .bind(i64::from(limit))
                .fetch_all(p)
                .await?
            {
                out.push(pod_from_row!(&row));
            }
            out
        });
        Ok(found)
    }

    /// Running pods whose newest backup that did not fail started before
    /// `before` (or that have none), at most `limit`.
    pub async fn pods_due_for_backup(
        &self,
        before: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<PodRecord>> {
        let sql = sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM cloud_pods p WHERE p.status = 'ACTIVE' AND NOT EXISTS (
                 SELECT 1 FROM cloud_pod_backups b WHERE b.pod_id = p.id AND b.status <> 'FAILED'
                   AND b.started_at >= $1)
             ORDER BY p.id LIMIT $2"
        ));
        let found = on_pool!(self.pool, |p| {
            let mut out = Vec::new();
            for row in sqlx::query(sql)
                .bind(before)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await?
            {
                out.push(pod_from_row!(&row));
            }
            out
        });
        Ok(found)
    }
}
