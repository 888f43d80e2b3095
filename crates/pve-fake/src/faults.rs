//! Fault injection and inspection: a small admin API under `/__fake/`
//! (a prefix the real PVE does not have; loopback only, no token) so
//! tests can make PVE misbehave the ways third-party panels saw it do,
//! and read back what the fake holds.

use std::collections::{HashMap, VecDeque};

use serde_json::{Value, json};

use crate::envelope::Reply;
use crate::vm::{drive_size, is_cdrom, is_drive_key};
use crate::world::Shared;

#[derive(Default)]
pub struct Faults {
    /// Errors for the next clone tasks: each ends `clone failed: <error>`
    /// and its new config is removed.
    pub clone_failures: VecDeque<String>,
    /// The next N API requests get `596 Connection timed out`.
    pub timeouts: u32,
    /// Whether those requests are still carried out (the outcome is
    /// unknown to the client, as with pveproxy's 30 s proxy timeout).
    pub timeouts_perform: bool,
    /// Flock timeouts: (VMID or any, how many acquisitions fail).
    pub flock_timeouts: Vec<(Option<u32>, u32)>,
    /// Task type → number of `WARN:` lines its next success carries.
    pub warnings: HashMap<String, u32>,
    /// VMID → bytes sent through the VM on top of its made-up traffic
    /// (counted in `netout` while it runs).
    pub traffic: HashMap<u32, u64>,
}

impl Faults {
    pub fn take_flock(&mut self, vmid: u32) -> bool {
        for (filter, count) in &mut self.flock_timeouts {
            if *count > 0 && filter.is_none_or(|v| v == vmid) {
                *count -= 1;
                return true;
            }
        }
        false
    }

    pub fn take_warnings(&mut self, kind: &str) -> Option<u32> {
        self.warnings.remove(kind)
    }

    /// Whether this request is answered by a 596, and if so whether it is
    /// still carried out.
    pub fn take_timeout(&mut self) -> Option<bool> {
        if self.timeouts > 0 {
            self.timeouts -= 1;
            Some(self.timeouts_perform)
        } else {
            None
        }
    }
}

fn ok() -> Reply {
    Reply::data(json!(null))
}

fn bad(msg: &str) -> Reply {
    Reply {
        status: 400,
        reason: Some("Bad Request".to_owned()),
        body: Some(json!({ "data": null, "message": msg })),
    }
}

fn count(body: &Value) -> u32 {
    body.get("count")
        .and_then(Value::as_u64)
        .map_or(1, |n| n.min(u64::from(u32::MAX)) as u32)
}

/// Answers `/__fake/<rest>`.
pub fn admin(shared: &Shared, method: &str, rest: &str, body: &Value) -> Reply {
    let parts: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    if (method, parts.as_slice()) == ("GET", ["state"].as_slice()) {
        return Reply::data(state(shared));
    }
    let mut world = shared.world();
    match (method, parts.as_slice()) {
        ("POST", ["clone-failure"]) => {
            let error = body
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("injected failure");
            world.faults.clone_failures.push_back(error.to_owned());
            ok()
        }
        ("POST", ["nodes", node, action @ ("offline" | "online")]) => match world.node_mut(node) {
            Some(n) => {
                n.online = *action == "online";
                ok()
            }
            None => bad("no such node"),
        },
        ("POST", ["timeout"]) => {
            world.faults.timeouts = count(body);
            world.faults.timeouts_perform = body
                .get("perform")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            ok()
        }
        ("POST", ["flock"]) => {
            let vmid = body
                .get("vmid")
                .and_then(Value::as_u64)
                .and_then(|v| u32::try_from(v).ok());
            world.faults.flock_timeouts.push((vmid, count(body)));
            ok()
        }
        ("POST", ["warnings"]) => match body.get("type").and_then(Value::as_str) {
            Some(kind) => {
                world.faults.warnings.insert(kind.to_owned(), count(body));
                ok()
            }
            None => bad("'type' (a task type such as qmdestroy) is required"),
        },
        ("POST", ["traffic"]) => {
            let vmid = body
                .get("vmid")
                .and_then(Value::as_u64)
                .and_then(|v| u32::try_from(v).ok());
            let bytes = body.get("bytes").and_then(Value::as_u64);
            match (vmid, bytes) {
                (Some(vmid), Some(bytes)) => {
                    *world.faults.traffic.entry(vmid).or_insert(0) += bytes;
                    ok()
                }
                _ => bad("'vmid' and 'bytes' are required"),
            }
        }
        ("POST", ["token", "revoke"]) => {
            world.token_revoked = true;
            ok()
        }
        ("POST", ["token", "restore"]) => {
            world.token_revoked = false;
            ok()
        }
        _ => Reply {
            status: 404,
            reason: Some("Not Found".to_owned()),
            body: Some(json!({ "data": null, "message": "no such fake admin call" })),
        },
    }
}

/// Everything a test may want to assert: per VM its node, run state,
/// lock, config (current and pending) and the numbers that matter.
pub fn state(shared: &Shared) -> Value {
    let world = shared.world();
    let vms: Vec<Value> = world
        .vms
        .values()
        .map(|vm| {
            let disks: serde_json::Map<String, Value> = vm
                .conf
                .iter()
                .filter(|(k, v)| is_drive_key(k) && !is_cdrom(v))
                .map(|(k, v)| (k.clone(), json!(drive_size(v))))
                .collect();
            json!({
                "vmid": vm.vmid,
                "node": vm.node,
                "status": if vm.is_running() { "running" } else { "stopped" },
                "qmpstatus": vm.qmp().map_or("stopped", |q| q.as_str()),
                "lock": vm.lock(),
                "template": vm.is_template(),
                "name": vm.conf.get("name"),
                "cores": vm.conf.get("cores").and_then(|c| c.parse::<u64>().ok()),
                "memory_mib": vm.memory_mib(),
                "disk_bytes": disks,
                "sshkeys": vm.conf.get("sshkeys"),
                "config": vm.conf,
                "pending": vm.pending,
                "pending_delete": vm.pending_delete,
            })
        })
        .collect();
    let backups: Vec<Value> = world
        .backups
        .iter()
        .map(|b| {
            json!({
                "node": b.node, "storage": b.storage, "volid": b.volid,
                "vmid": b.vmid, "size": b.size, "protected": b.protected,
            })
        })
        .collect();
    let nodes: Vec<Value> = world
        .nodes
        .iter()
        .map(|n| json!({ "node": n.spec.name, "online": n.online }))
        .collect();
    let tasks: Vec<Value> = world.tasks.list.iter().map(|t| t.status_json()).collect();
    json!({
        "nodes": nodes,
        "vms": vms,
        "backups": backups,
        "tasks": tasks,
        "token_revoked": world.token_revoked,
    })
}
