//! The health check of the servers that are not `CLOUD` clusters: an SSH
//! node (WEB, MAIL, BACKUP with SSH credentials) runs one session that
//! reads `/proc/loadavg`, `/proc/meminfo` and `df -P` of `/`, recorded as
//! the server's `health` with the session's round trip as its latency;
//! any other server gets the TCP check.

use std::time::{Duration, Instant};

use mpanel_domain::ops::{HEALTH_SCRIPT, parse_node_health};
use mpanel_domain::provisioning::ServerRole;
use mpanel_store::servers::ServerRecord;
use serde_json::{Value, json};

use crate::saga::Provisioner;
use crate::{DriverError, nodes, ssh};

/// The longest an SSH health check may take.
const TIMEOUT: Duration = Duration::from_secs(10);

impl Provisioner {
    /// Checks every server but the `CLOUD` ones (see
    /// [`Provisioner::check_clusters`]); how many were checked.
    pub async fn check_nodes(&self) -> Result<usize, DriverError> {
        let servers: Vec<ServerRecord> = self
            .store
            .list_servers(None)
            .await
            .map_err(|e| DriverError::Transient(e.to_string()))?
            .into_iter()
            .filter(|s| s.role != ServerRole::Cloud)
            .collect();
        for s in &servers {
            let over_ssh = matches!(
                s.role,
                ServerRole::Web | ServerRole::Mail | ServerRole::Backup
            )
            .then(|| self.secrets().ok().map(|sb| nodes::ssh(sb, s)))
            .flatten();
            match over_ssh {
                Some(keys) => {
                    // Credentials that do not open make every job on the
                    // server fail: the check says so rather than pass on
                    // a TCP connect.
                    let (latency, error, health) = match keys {
                        Ok(keys) => probe(&keys.target).await,
                        Err(e) => (
                            None,
                            Some(format!("its credentials cannot be used: {e}")),
                            None,
                        ),
                    };
                    self.store
                        .record_server_check(
                            s.id,
                            self.clock.now(),
                            latency,
                            error.as_deref(),
                            health.as_ref(),
                        )
                        .await
                        .map_err(|e| DriverError::Transient(e.to_string()))?;
                }
                None => mpanel_services::servers::check_tcp(&self.store, self.clock.as_ref(), s)
                    .await
                    .map_err(|e| DriverError::Transient(e.to_string()))?,
            }
        }
        Ok(servers.len())
    }
}

/// One SSH session: its round trip, its error, what it read.
async fn probe(target: &ssh::SshTarget) -> (Option<i64>, Option<String>, Option<Value>) {
    let started = Instant::now();
    match ssh::run_own_login(target, HEALTH_SCRIPT, TIMEOUT).await {
        Ok(out) if out.success() => {
            let latency = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
            // Reachable either way; what could not be read is said so.
            let health =
                parse_node_health(&out.stdout).unwrap_or_else(|e| json!({"unreadable": e}));
            (Some(latency), None, Some(health))
        }
        Ok(out) => (
            None,
            Some(format!(
                "the health check exited {}: {}",
                out.status,
                out.error_text()
            )),
            None,
        ),
        Err(e) => (None, Some(e.to_string()), None),
    }
}
