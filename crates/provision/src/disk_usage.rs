//! The recurring `hosting.disk_usage` job: every web node's live hosting
//! accounts measured in one SSH session per node, each measurement handed
//! to `mpanel_services::hosting_disk::record` (which compares it with the
//! plan's quota and acts by the tenant's policy).

use std::collections::HashMap;

use mpanel_domain::TenantId;
use mpanel_domain::provisioning::ServerRole;
use mpanel_domain::provisioning::disk_quota::{Assessment, QuotaPolicy};
use mpanel_services::hosting_disk;
use mpanel_services::secret_box::SecretBox;
use mpanel_store::servers::ServerRecord;
use serde::Serialize;

use crate::saga::Provisioner;
use crate::web::{Usage, account_user};
use crate::{DriverError, nodes};

pub use mpanel_domain::provisioning::disk_quota::DISK_USAGE_JOB;

/// What one run measured.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DiskReport {
    pub nodes: usize,
    /// Nodes that could not be measured (logged; the next run tries again).
    pub failed_nodes: usize,
    pub accounts: usize,
    pub over_quota: usize,
    pub suspended: usize,
    pub unsuspended: usize,
}

fn store_err(e: mpanel_store::StoreError) -> DriverError {
    DriverError::Transient(format!("database: {e}"))
}

fn service_err(e: mpanel_services::ServiceError) -> DriverError {
    DriverError::Transient(format!("recording disk use: {e}"))
}

impl Provisioner {
    /// Measures every live hosting account on every web node, recorded as
    /// of `as_of` (the job: now). A node that cannot be reached is logged
    /// and skipped, so one node down does not leave the others unmeasured.
    pub async fn measure_disk_usage(
        &self,
        as_of: time::OffsetDateTime,
    ) -> Result<DiskReport, DriverError> {
        let mut report = DiskReport::default();
        let mut policies: HashMap<TenantId, QuotaPolicy> = HashMap::new();
        let servers = self
            .store
            .list_servers(Some(ServerRole::Web))
            .await
            .map_err(store_err)?;
        for server in servers {
            let accounts = self
                .store
                .disk_accounts_on(server.id)
                .await
                .map_err(store_err)?;
            if accounts.is_empty() {
                continue;
            }
            report.nodes += 1;
            let users: Vec<String> = accounts.iter().map(|a| account_user(a.id)).collect();
            let measured = match read_node(self.secrets()?, &server, &users).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(server = %server.name, error = %e, "cannot measure disk use");
                    report.failed_nodes += 1;
                    continue;
                }
            };
            for (account, user) in accounts.iter().zip(&users) {
                let used = match measured.get(user) {
                    Some(Usage::Bytes(b)) => i64::try_from(*b).unwrap_or(i64::MAX),
                    Some(Usage::NotOurs) => {
                        tracing::warn!(server = %server.name, %user, "the node's user of this account is not an mPanel account");
                        continue;
                    }
                    None => continue,
                };
                let policy = self.policy_of(account.tenant_id, &mut policies).await?;
                let Some(a) = hosting_disk::record(
                    &self.store,
                    self.clock.as_ref(),
                    as_of,
                    policy,
                    account.id,
                    used,
                )
                .await
                .map_err(service_err)?
                else {
                    continue;
                };
                report.count(&a);
            }
        }
        Ok(report)
    }

    /// The tenant's over-quota rule, read once per run.
    async fn policy_of(
        &self,
        tenant: TenantId,
        policies: &mut HashMap<TenantId, QuotaPolicy>,
    ) -> Result<QuotaPolicy, DriverError> {
        if let Some(p) = policies.get(&tenant) {
            return Ok(*p);
        }
        let p = hosting_disk::policy(&self.store, tenant)
            .await
            .map_err(service_err)?;
        policies.insert(tenant, p);
        Ok(p)
    }
}

/// Every account's use on one web node, in one SSH session.
async fn read_node(
    secrets: &SecretBox,
    server: &ServerRecord,
    users: &[String],
) -> Result<HashMap<String, Usage>, DriverError> {
    let (web, _keys) = nodes::web(secrets, server)?;
    web.disk_usage_all(users).await
}

impl DiskReport {
    /// Counts one recorded account and what its measurement did.
    fn count(&mut self, a: &Assessment) {
        use mpanel_domain::provisioning::disk_quota::NodeStep;
        self.accounts += 1;
        self.over_quota += usize::from(a.over);
        match a.step {
            NodeStep::Suspend => self.suspended += 1,
            NodeStep::Unsuspend => self.unsuspended += 1,
            NodeStep::Nothing => {}
        }
    }
}
