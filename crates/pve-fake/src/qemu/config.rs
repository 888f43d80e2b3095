//! GET/PUT/POST /nodes/{node}/qemu/{vmid}/config. Early checks (no
//! options, digest, `lock`) are HTTP 500; the flock is taken by PUT itself
//! (HTTP 500) or by POST's `qmconfig` worker (task error). A stopped VM
//! takes changes at once; a running one keeps most as pending until it
//! is restarted.

use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::envelope::{ApiError, ApiResult, Reply};
use crate::params::{Kind, Params, Raw, Schema, VMID, dns_name, node_name, urlencoded};
use crate::routes::Ctx;
use crate::tasks;
use crate::vm::{FAST_PLUG, Vm, is_drive_key};
use crate::world::{World, check_lock, die, storage};

/// Keys the fake's config schema knows besides the fixed ones.
pub fn config_key(name: &str) -> Option<Kind> {
    const POSITIVE: Kind = Kind::Int { min: 1, max: 1024 };
    let kind = match name {
        "cores" | "sockets" | "vcpus" => POSITIVE,
        "memory" => Kind::Check(memory),
        "balloon" => Kind::Int {
            min: 0,
            max: i64::MAX,
        },
        "name" => Kind::Check(dns_name),
        "sshkeys" => Kind::Check(urlencoded),
        "citype" => Kind::Enum(&["configdrive2", "nocloud", "opennebula"]),
        "bios" => Kind::Enum(&["seabios", "ovmf"]),
        "onboot" | "protection" | "numa" | "kvm" | "acpi" | "tablet" | "ciupgrade" => Kind::Bool,
        "description" | "tags" | "agent" | "cpu" | "cpulimit" | "ciuser" | "cipassword"
        | "nameserver" | "searchdomain" | "boot" | "ostype" | "scsihw" | "vga" | "hotplug"
        | "machine" | "smbios1" | "startup" | "keyboard" | "cpuunits" | "efidisk0"
        | "tpmstate0" => Kind::Str,
        _ => {
            let numbered = |prefix: &str, max: u32| {
                name.strip_prefix(prefix)
                    .and_then(|n| n.parse::<u32>().ok())
                    .is_some_and(|n| n <= max)
            };
            let known = numbered("net", 31)
                || numbered("ipconfig", 31)
                || numbered("scsi", 30)
                || numbered("virtio", 15)
                || numbered("sata", 5)
                || numbered("ide", 3)
                || numbered("serial", 3)
                || numbered("unused", 255);
            return known.then_some(Kind::Str);
        }
    };
    Some(kind)
}

fn memory(v: &str) -> Result<(), String> {
    let n = v.strip_prefix("current=").unwrap_or(v);
    match n.parse::<u64>() {
        Ok(m) if m >= 16 => Ok(()),
        Ok(_) => Err("value must have a minimum value of 16".to_owned()),
        Err(_) => Err(format!("type check ('integer') failed - got '{v}'")),
    }
}

fn digest(v: &str) -> Result<(), String> {
    if v.len() <= 40 {
        Ok(())
    } else {
        Err("value may only be 40 characters long".to_owned())
    }
}

const FIXED: &[(&str, Kind, bool)] = &[
    ("node", Kind::Check(node_name), true),
    ("vmid", VMID, true),
    ("digest", Kind::Check(digest), false),
    ("delete", Kind::Str, false),
    ("revert", Kind::Str, false),
    ("skiplock", Kind::Bool, false),
];

const PUT: Schema = Schema {
    fixed: FIXED,
    extra: Some(config_key),
};

fn post_key(name: &str) -> Option<Kind> {
    if name == "background_delay" {
        return Some(Kind::Int { min: 1, max: 30 });
    }
    config_key(name)
}

const POST: Schema = Schema {
    fixed: FIXED,
    extra: Some(post_key),
};

pub fn get(ctx: &Ctx, node: &str, vmid: &str, raw: Raw) -> ApiResult {
    const S: Schema = Schema::new(&[
        ("node", Kind::Check(node_name), true),
        ("vmid", VMID, true),
        ("current", Kind::Bool, false),
        ("snapshot", Kind::Str, false),
    ]);
    let p = ctx.params(&S, raw, &[("node", node), ("vmid", vmid)])?;
    let world = ctx.shared.world();
    let vm = world.vm_on(node, super::vmid(&p)).map_err(die)?;
    if let Some(snap) = p.get("snapshot") {
        return Err(die(format!("snapshot '{snap}' does not exist")));
    }
    Ok(Reply::data(
        vm.config_json(p.flag("current").unwrap_or(false)),
    ))
}

/// A change request after the early checks.
struct Change {
    set: BTreeMap<String, String>,
    delete: Vec<String>,
    revert: Vec<String>,
}

fn list(v: Option<&str>) -> Vec<String> {
    v.unwrap_or("")
        .split([',', ';', ' '])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The checks `$update_vm_api` makes before the fork (or the PUT's flock).
fn early(world: &World, node: &str, p: &Params) -> Result<Change, ApiError> {
    super::refuse_skiplock(p)?;
    let vmid = super::vmid(p);
    let vm = world.vm_on(node, vmid).map_err(die)?;
    let set: BTreeMap<String, String> = p
        .0
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "node" | "vmid" | "digest" | "delete" | "revert" | "skiplock" | "background_delay"
            )
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let change = Change {
        set,
        delete: list(p.get("delete")),
        revert: list(p.get("revert")),
    };
    if change.set.is_empty() && change.delete.is_empty() && change.revert.is_empty() {
        return Err(die("no options specified".to_owned()));
    }
    if let Some(d) = p.get("digest")
        && d != vm.digest()
    {
        return Err(die(
            "checksum mismatch (file change by other user?)".to_owned()
        ));
    }
    check_lock(vm).map_err(die)?;
    if let Some(keys) = change.set.get("sshkeys") {
        validate_ssh_keys(keys)?;
    }
    let mem = change
        .set
        .get("memory")
        .map(|m| m.trim_start_matches("current=").parse::<u64>().unwrap_or(0))
        .unwrap_or_else(|| vm.memory_mib());
    if let Some(b) = change
        .set
        .get("balloon")
        .and_then(|b| b.parse::<u64>().ok())
        && b > mem
    {
        return Err(die(
            "balloon value too large (must be smaller than assigned memory)".to_owned(),
        ));
    }
    for (k, v) in &change.set {
        if is_drive_key(k)
            && let Some((sid, _)) = v.split_once(':')
            && storage(sid).is_none()
        {
            return Err(die(format!("storage '{sid}' does not exist")));
        }
    }
    Ok(change)
}

/// The stored value is percent-encoded; each unescaped line must look
/// like an OpenSSH public key (PVE runs `ssh-keygen -l` on it).
fn validate_ssh_keys(value: &str) -> Result<(), ApiError> {
    let decoded = percent_decode_str(value).decode_utf8_lossy().into_owned();
    for line in decoded.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut parts = line.split_whitespace();
        let kind = parts.next().unwrap_or("");
        let blob = parts.next().unwrap_or("");
        let kind_ok =
            kind.starts_with("ssh-") || kind.starts_with("ecdsa-sha2-") || kind.starts_with("sk-");
        let blob_ok = blob.len() >= 16
            && blob
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+/=".contains(c));
        if !kind_ok || !blob_ok {
            return Err(die("SSH public key validation error".to_owned()));
        }
    }
    Ok(())
}

fn apply(vm: &mut Vm, change: Change) {
    let running = vm.is_running();
    for k in &change.revert {
        vm.pending.remove(k);
        vm.pending_delete.remove(k);
    }
    let mut disk_index = vm.disks().len();
    for (k, mut v) in change.set {
        if k == "cipassword" {
            v = format!("$5$fake${:x}", Sha256::digest(v.as_bytes()));
        }
        if is_drive_key(&k) {
            // `local-lvm:32` allocates a new 32 GiB volume.
            if let Some((sid, size)) = v.split_once(':') {
                let (size, opts) = size.split_once(',').unwrap_or((size, ""));
                if let Ok(gib) = size.parse::<u64>() {
                    let mut nv = format!("{sid}:vm-{}-disk-{disk_index},size={gib}G", vm.vmid);
                    if !opts.is_empty() {
                        nv = format!("{nv},{opts}");
                    }
                    disk_index += 1;
                    v = nv;
                }
            }
        }
        vm.pending_delete.remove(&k);
        if !running || FAST_PLUG.contains(&k.as_str()) {
            vm.pending.remove(&k);
            vm.conf.insert(k, v);
        } else {
            vm.pending.insert(k, v);
        }
    }
    for k in change.delete {
        if !running || FAST_PLUG.contains(&k.as_str()) {
            vm.pending.remove(&k);
            vm.conf.remove(&k);
        } else {
            vm.pending.remove(&k);
            vm.pending_delete.insert(k);
        }
    }
}

pub fn put(ctx: &Ctx, node: &str, vmid: &str, raw: Raw) -> ApiResult {
    let p = ctx.params(&PUT, raw, &[("node", node), ("vmid", vmid)])?;
    let mut world = ctx.shared.world();
    let change = early(&world, node, &p)?;
    let vmid = super::vmid(&p);
    world.touch_flock(vmid).map_err(die)?;
    let vm = world.vm_on_mut(node, vmid).map_err(die)?;
    apply(vm, change);
    Ok(Reply::data(json!(null)))
}

pub async fn post(ctx: &Ctx<'_>, node: &str, vmid: &str, raw: Raw) -> ApiResult {
    let p = ctx.params(&POST, raw, &[("node", node), ("vmid", vmid)])?;
    let vmid = super::vmid(&p);
    let upid = {
        let mut world = ctx.shared.world();
        let change = early(&world, node, &p)?;
        let upid = world
            .tasks
            .create(node, "qmconfig", &vmid.to_string(), ctx.user);
        let started = match world.touch_flock(vmid) {
            Err(e) => Err(e),
            Ok(()) => match world.vm_on_mut(node, vmid) {
                Err(e) => Err(e),
                Ok(vm) => {
                    apply(vm, change);
                    Ok(Box::new(|_: &mut World, _: &str| Ok(())) as tasks::Finish)
                }
            },
        };
        tasks::complete_later(ctx.shared, upid.clone(), started);
        upid
    };
    let Some(delay) = p.int("background_delay") else {
        return Ok(Reply::data(json!(upid)));
    };
    // Wait up to `background_delay` seconds for the task.
    match tasks::wait(ctx.shared, &upid, delay as u64).await {
        Some(e) if tasks::is_success(&e) => Ok(Reply::data(json!(null))),
        Some(e) => Err(die(format!("failed to update VM {vmid}: {e}"))),
        None => Ok(Reply::data(json!(upid))),
    }
}
