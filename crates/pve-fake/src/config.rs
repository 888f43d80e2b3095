//! What a fake cluster looks like at start and how fast it behaves.

use std::path::PathBuf;
use std::time::Duration;

/// One node of the fake cluster.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub name: String,
    pub maxmem: u64,
    pub maxcpu: u32,
    pub maxdisk: u64,
}

impl NodeSpec {
    /// A node with 32 GiB of RAM, 16 cores and 1 TiB of disk.
    pub fn standard(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            maxmem: 32 << 30,
            maxcpu: 16,
            maxdisk: 1 << 40,
        }
    }
}

/// How the fake starts.
#[derive(Debug, Clone)]
pub struct Config {
    /// TCP port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    pub nodes: Vec<NodeSpec>,
    /// Names of the template VMs every node starts with. The n-th node's
    /// templates get VMIDs 9000 + 100·n, 9001 + 100·n, … (VMIDs are
    /// cluster-wide, so two nodes cannot both hold 9000).
    pub templates: Vec<String>,
    /// How long a task (clone, backup, start, …) runs before it stops.
    pub task_duration: Duration,
    /// When set, a clone (`qmclone`) runs a time drawn uniformly from
    /// this range (both ends included) instead of `task_duration`: a real
    /// full clone copies a disk for seconds, while a start or a resize
    /// takes a moment.
    pub clone_duration: Option<(Duration, Duration)>,
    /// When set, every worker task that ends after its duration appends
    /// one JSON line to this file: `upid`, `type`, `id`, `node`,
    /// `exitstatus`, and `start_ms`/`end_ms` (ms since the epoch; the task
    /// list's `starttime` is in whole seconds). For benchmarks that tell
    /// the time spent in tasks from the rest.
    pub task_log: Option<PathBuf>,
    /// How long a 401 is held back (PVE waits 3 s).
    pub auth_delay: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            port: 0,
            nodes: vec![NodeSpec::standard("pve1"), NodeSpec::standard("pve2")],
            templates: vec!["debian-12".to_owned(), "ubuntu-24.04".to_owned()],
            task_duration: Duration::from_millis(300),
            clone_duration: None,
            task_log: None,
            auth_delay: Duration::from_secs(3),
        }
    }
}
