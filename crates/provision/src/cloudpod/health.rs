//! The health check of `CLOUD` servers: `GET /nodes` through the pinned
//! API, its latency, and each node's status, CPU, memory and disk
//! recorded on the server (an unreachable cluster or a refused token is
//! the check's error).

use std::time::Instant;

use mpanel_domain::provisioning::ServerRole;
use serde_json::json;

use super::store_err;
use crate::DriverError;
use crate::saga::Provisioner;

impl Provisioner {
    /// Checks every `CLOUD` server; how many were checked.
    pub async fn check_clusters(&self) -> Result<usize, DriverError> {
        let servers = self
            .store
            .list_servers(Some(ServerRole::Cloud))
            .await
            .map_err(store_err)?;
        for server in &servers {
            let started = Instant::now();
            let read = match self.cluster_api(server).await {
                Ok(api) => api.cluster.nodes().await,
                Err(e) => Err(e),
            };
            let (latency, error, health) = match read {
                Ok(nodes) => (
                    Some(i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX)),
                    None,
                    Some(json!(nodes)),
                ),
                Err(e) => (None, Some(e.to_string()), None),
            };
            self.store
                .record_server_check(
                    server.id,
                    self.clock.now(),
                    latency,
                    error.as_deref(),
                    health.as_ref(),
                )
                .await
                .map_err(store_err)?;
        }
        Ok(servers.len())
    }
}
