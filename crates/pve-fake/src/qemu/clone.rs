//! POST /nodes/{node}/qemu/{vmid}/clone: checks before the fork are HTTP
//! errors; the worker takes the flocks, writes the new config with
//! `lock: clone`, "copies" the disks and drops the lock when its time is
//! up. A failed clone removes the new config (`clone failed: …`).

use std::collections::BTreeMap;

use serde_json::json;

use crate::envelope::{ApiError, ApiResult, Reply};
use crate::params::{Kind, Raw, Schema, VMID, dns_name, node_name, storage_id};
use crate::routes::Ctx;
use crate::tasks::{self, Finish};
use crate::vm::{Vm, is_cdrom, is_drive_key};
use crate::world::{check_lock, die, now, storage};

const SCHEMA: Schema = Schema::new(&[
    ("node", Kind::Check(node_name), true),
    ("vmid", VMID, true),
    ("newid", VMID, true),
    ("name", Kind::Check(dns_name), false),
    ("description", Kind::Str, false),
    ("pool", Kind::Str, false),
    ("snapname", Kind::Str, false),
    ("storage", Kind::Check(storage_id), false),
    ("format", Kind::Enum(&["raw", "qcow2", "vmdk"]), false),
    ("full", Kind::Bool, false),
    ("target", Kind::Check(node_name), false),
    (
        "bwlimit",
        Kind::Int {
            min: 0,
            max: i64::MAX,
        },
        false,
    ),
]);

pub fn clone(ctx: &Ctx, node: &str, vmid: &str, raw: Raw) -> ApiResult {
    let p = ctx.params(&SCHEMA, raw, &[("node", node), ("vmid", vmid)])?;
    let vmid = super::vmid(&p);
    let newid = p
        .int("newid")
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(0);
    let mut world = ctx.shared.world();
    let src = world.vm_on(node, vmid).map_err(die)?.clone();
    check_lock(&src).map_err(die)?;
    if let Some(pool) = p.get("pool") {
        return Err(ApiError::Status(
            403,
            format!("Permission check failed (pool '{pool}' does not exist)"),
        ));
    }
    if let Some(snap) = p.get("snapname") {
        return Err(die(format!("snapshot '{snap}' does not exist")));
    }
    let full = p.flag("full").unwrap_or(!src.is_template());
    for key in ["storage", "format"] {
        if !full && p.has(key) {
            return Err(die(format!(
                "parameter '{key}' not allowed for linked clones"
            )));
        }
    }
    let target = p.get("target").filter(|t| *t != node).map(str::to_owned);
    if let Some(t) = &target {
        if world.node(t).is_none() {
            return Err(die(format!("no such cluster node '{t}'")));
        }
        // Only local storages exist in the fake.
        return Err(die(format!(
            "can't clone VM to node '{t}' (VM uses local storage)"
        )));
    }
    if let Some(sid) = p.get("storage") {
        match storage(sid) {
            None => return Err(die(format!("storage '{sid}' does not exist"))),
            Some(s) if !s.content.contains(&"images") => {
                return Err(ApiError::param(
                    "storage",
                    format!("storage '{sid}' does not support vm images"),
                ));
            }
            Some(_) => {}
        }
    }
    if world.vm_on(node, newid).is_ok() {
        return Err(die(format!(
            "unable to create VM {newid}: config file already exists"
        )));
    }

    let upid = world
        .tasks
        .create(node, "qmclone", &vmid.to_string(), ctx.user);
    let started = start(&mut world, &upid, &src, newid, full, &p);
    tasks::complete_later(ctx.shared, upid.clone(), started);
    Ok(Reply::data(json!(upid)))
}

/// The worker up to the copy: flocks, the new config with `lock: clone`.
fn start(
    world: &mut crate::world::World,
    upid: &str,
    src: &Vm,
    newid: u32,
    full: bool,
    p: &crate::params::Params,
) -> Result<Finish, String> {
    let vmid = src.vmid;
    let node = src.node.clone();
    world
        .acquire_flock(vmid, src.is_running())
        .map_err(|e| format!("clone failed: {e}"))?;
    if let Err(e) = world.acquire_flock(newid, true) {
        world.release_flock(vmid);
        return Err(format!("clone failed: {e}"));
    }
    if world.vms.contains_key(&newid) {
        world.release_flock(vmid);
        world.release_flock(newid);
        return Err(format!(
            "clone failed: close (rename) atomic file '/etc/pve/nodes/{node}/qemu-server/{newid}.conf' failed: File exists"
        ));
    }
    let mut conf: BTreeMap<String, String> = src
        .conf
        .iter()
        .filter(|(k, v)| !is_drive_key(k) || is_cdrom(v))
        .filter(|(k, _)| !matches!(k.as_str(), "template" | "lock" | "smbios1" | "meta"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    conf.insert(
        "name".to_owned(),
        p.get("name")
            .map_or_else(|| format!("Copy-of-VM-{}", src.name()), str::to_owned),
    );
    if let Some(d) = p.get("description") {
        conf.insert("description".to_owned(), d.to_owned());
    }
    for (k, v) in conf.clone() {
        if k.starts_with("net") {
            let mac = world.new_mac();
            conf.insert(k, replace_mac(&v, &mac));
        } else if is_drive_key(&k) && v.contains("cloudinit") {
            conf.insert(k, format!("local-lvm:vm-{newid}-cloudinit,media=cdrom"));
        }
    }
    let smbios = world.new_uuid();
    conf.insert("smbios1".to_owned(), format!("uuid={smbios}"));
    conf.insert("lock".to_owned(), "clone".to_owned());
    world.vms.insert(newid, Vm::new(newid, &node, conf, now()));

    let mut disks = Vec::new();
    for (i, (key, value)) in src.disks().into_iter().enumerate() {
        let (volid, opts) = value.split_once(',').unwrap_or((value.as_str(), ""));
        let (sid, volname) = volid.split_once(':').unwrap_or(("local-lvm", volid));
        let new_volid = if full {
            let sid = p.get("storage").unwrap_or(sid);
            format!("{sid}:vm-{newid}-disk-{i}")
        } else {
            format!("{sid}:{volname}/vm-{newid}-disk-{i}")
        };
        world.tasks.log(
            upid,
            format!(
                "create {} clone of drive {key} ({volid})",
                if full { "full" } else { "linked" }
            ),
        );
        let new_value = if opts.is_empty() {
            new_volid
        } else {
            format!("{new_volid},{opts}")
        };
        disks.push((key, new_value));
    }
    let failure = world.faults.clone_failures.pop_front();
    Ok(Box::new(move |world, upid| {
        world.release_flock(vmid);
        world.release_flock(newid);
        if let Some(e) = failure {
            world.vms.remove(&newid);
            return Err(format!("clone failed: {e}"));
        }
        let Some(vm) = world.vms.get_mut(&newid) else {
            return Err(format!("clone failed: VM {newid} vanished"));
        };
        for (k, v) in disks {
            vm.conf.insert(k, v);
        }
        vm.conf.remove("lock");
        world
            .tasks
            .log(upid, "transferred 10.0 GiB of 10.0 GiB (100.00%)");
        Ok(())
    }))
}

fn replace_mac(net: &str, mac: &str) -> String {
    net.split(',')
        .map(|o| match o.split_once('=') {
            Some((model, old)) if old.len() == 17 && old.matches(':').count() == 5 => {
                format!("{model}={mac}")
            }
            _ => o.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}
