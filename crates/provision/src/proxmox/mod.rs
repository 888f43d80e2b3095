//! The Proxmox VE HTTP API client behind CloudPods: clone a template,
//! configure, resize, power, read status and metrics, back up, restore
//! and destroy QEMU VMs on a PVE cluster (`/api2/json`, API-token auth).
//!
//! The wire contract (envelope, errors, UPIDs, locks, numbers sent as
//! strings) is `proxmox.md`, the contract the fake `crates/pve-fake` is
//! built from; the section numbers (§) in the comments are that file's.
//!
//! - [`Cluster`] is one API endpoint of a cluster, pinned to the SHA-256
//!   of its certificate (PVE's `ssl_fingerprint`): no CA, no hostname
//!   check; a certificate that does not match fails the TLS handshake
//!   before the token is sent.
//! - Asynchronous calls (clone, resize, power, destroy, vzdump, restore)
//!   return a [`Upid`]; [`Cluster::wait`] polls the task on the node the
//!   UPID names. `WARNINGS: n` is a success ([`TaskEnd::Ok`]).
//! - Errors are classified in one place (`client::classify`): PVE's lock
//!   errors and 5xx are [`DriverError::Transient`], a 59x from pveproxy is
//!   transient with "outcome unknown" (re-read the state before retrying a
//!   non-idempotent call), refusals (400/401/403/501 and most 500s) are
//!   [`DriverError::Permanent`].
//!
//! The token secret is never logged, printed by `Debug`, nor put in an
//! error.
//!
//! [`DriverError::Transient`]: crate::DriverError::Transient
//! [`DriverError::Permanent`]: crate::DriverError::Permanent

mod backups;
mod client;
mod cluster;
mod pinning;
mod sshkeys;
mod tasks;
mod upid;
mod values;
mod vms;

pub use backups::BackupVolume;
pub use client::{Cluster, is_lock_error};
pub use cluster::NodeInfo;
pub use sshkeys::encode_ssh_keys;
pub use tasks::{TaskEnd, TaskState};
pub use upid::Upid;
pub use vms::{CloneRequest, Power, RrdPoint, VmConfig, VmStatus};
