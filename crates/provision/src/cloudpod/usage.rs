//! `cloudpod.usage`: every pod with a VM read through its cluster
//! (`status/current`): CPU, memory and the network counters recorded on
//! the pod (its view shows them against the plan), and the transfer since
//! the last reading added up; for a plan that meters transfer
//! (`bandwidth_gb`/`transfer_gb`, or `…_mb`), the whole units are recorded
//! as usage on the subscription, which the next renewal rates by the
//! plan's tiers. A VM restarted since (its counters began again) counts
//! from zero; what is less than a unit waits for the next reading.

use std::collections::HashMap;

use mpanel_domain::ServerId;
use mpanel_domain::catalog::UsagePricing;
use mpanel_store::billing::NewUsage;
use mpanel_store::cloudpods::{PodRecord, PodSample};
use serde::Serialize;
use serde_json::json;

use super::build::where_is;
use super::{Api, store_err};
use crate::DriverError;
use crate::proxmox::VmStatus;
use crate::saga::Provisioner;

/// The recurring job's kind.
pub const USAGE_JOB: &str = "cloudpod.usage";

/// What a reading did.
#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct UsageReport {
    pub pods: usize,
    /// Usage records written (one per pod that crossed a unit).
    pub recorded: usize,
    /// Pods whose VM could not be read (their cluster unreachable).
    pub unread: usize,
}

/// Bytes in one unit of a transfer metric; `None` for other metrics.
fn unit_of(metric: &str) -> Option<i64> {
    match metric {
        "bandwidth_gb" | "transfer_gb" | "traffic_gb" => Some(1_000_000_000),
        "bandwidth_mb" | "transfer_mb" | "traffic_mb" => Some(1_000_000),
        _ => None,
    }
}

/// The transfer since the last reading: the counter's growth, or all of
/// it when the VM restarted (the counter began again).
fn transfer_since(seen: i64, now: i64) -> i64 {
    if now >= seen { now - seen } else { now }
}

impl Provisioner {
    /// Reads every pod with a VM; a cluster that cannot be reached leaves
    /// its pods for the next reading.
    pub async fn meter_pods(&self) -> Result<UsageReport, DriverError> {
        let mut report = UsageReport::default();
        let mut apis: HashMap<ServerId, Option<Api>> = HashMap::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .pods_to_meter(after, 200)
                .await
                .map_err(store_err)?;
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            for pod in &page {
                report.pods += 1;
                let Some(cluster) = pod.cluster_id else {
                    continue;
                };
                if let std::collections::hash_map::Entry::Vacant(slot) = apis.entry(cluster) {
                    let api = match self.server(cluster).await {
                        Ok(server) => self.cluster_api(&server).await.ok(),
                        Err(_) => None,
                    };
                    slot.insert(api);
                }
                let Some(Some(api)) = apis.get(&cluster) else {
                    report.unread += 1;
                    continue;
                };
                match self.meter_pod(api, pod).await {
                    Ok(recorded) => report.recorded += usize::from(recorded),
                    Err(e) => {
                        tracing::warn!(pod = %pod.id, error = %e, "a pod's usage was not read");
                        report.unread += 1;
                    }
                }
            }
        }
        Ok(report)
    }

    /// One pod's reading; whether it recorded usage.
    async fn meter_pod(&self, api: &Api, pod: &PodRecord) -> Result<bool, DriverError> {
        let (node, vmid) = where_is(pod)?;
        let Some(status) = api.cluster.status(node, vmid).await? else {
            return Err(DriverError::Transient(format!(
                "VM {vmid} is not on {node}"
            )));
        };
        let counter = i64::try_from(status.netin.saturating_add(status.netout)).unwrap_or(i64::MAX);
        let mut unbilled = pod
            .net_unbilled_bytes
            .saturating_add(transfer_since(pod.net_seen_bytes, counter));
        let now = self.clock.now();
        let mut usage = Vec::new();
        match self.metered_transfer(pod).await? {
            Some((metric, unit)) => {
                let units = unbilled / unit;
                if units > 0 {
                    unbilled -= units * unit;
                    // Named after the reading it follows: a second run from
                    // the same reading is the same record.
                    let after = pod.usage_at.map_or(0, |t| t.unix_timestamp_nanos());
                    usage.push(NewUsage {
                        subscription: pod.subscription_id,
                        metric,
                        quantity: units,
                        occurred_at: now,
                        idempotency_key: format!("pod:{}:transfer:{after}", pod.id),
                    });
                }
            }
            // A plan that does not meter transfer gathers none to bill
            // later (a move to a metered plan starts from zero).
            None => unbilled = 0,
        }
        let sample = PodSample {
            usage: sample_json(&status),
            at: now,
            net_seen_bytes: counter,
            net_unbilled_bytes: unbilled,
        };
        let mut tx = self.store.begin().await.map_err(store_err)?;
        if !tx
            .record_pod_sample(pod.id, pod, &sample)
            .await
            .map_err(store_err)?
        {
            // Another reading (the job and `mpanel cloudpods usage` at
            // once) recorded this stretch: it is not counted twice.
            return Ok(false);
        }
        if !usage.is_empty() {
            tx.insert_usage(pod.tenant_id, &usage, now)
                .await
                .map_err(store_err)?;
        }
        tx.commit().await.map_err(store_err)?;
        Ok(!usage.is_empty())
    }

    /// The transfer metric the pod's plan bills, and its unit in bytes.
    async fn metered_transfer(
        &self,
        pod: &PodRecord,
    ) -> Result<Option<(String, i64)>, DriverError> {
        let Some(sub) = self
            .store
            .subscription_ref(pod.subscription_id)
            .await
            .map_err(store_err)?
        else {
            return Ok(None);
        };
        if sub.status.is_terminal() {
            return Ok(None);
        }
        let product = self
            .store
            .product(pod.tenant_id, sub.product_id)
            .await
            .map_err(store_err)?;
        Ok(product
            .and_then(|p| p.fields.usage)
            .and_then(|u: UsagePricing| unit_of(&u.metric).map(|unit| (u.metric, unit))))
    }
}

fn sample_json(s: &VmStatus) -> serde_json::Value {
    json!({
        "status": s.status,
        "cpu": s.cpu,
        "memory_bytes": s.mem,
        "memory_max_bytes": s.maxmem,
        "disk_max_bytes": s.maxdisk,
        "net_in_bytes": s.netin,
        "net_out_bytes": s.netout,
        "uptime_secs": s.uptime,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_is_the_counters_growth_or_all_of_it_after_a_restart() {
        assert_eq!(transfer_since(100, 350), 250);
        assert_eq!(transfer_since(5_000, 40), 40);
        assert_eq!(unit_of("bandwidth_gb"), Some(1_000_000_000));
        assert_eq!(unit_of("api_calls"), None);
    }
}
