//! Cluster-wide and node reads: /version, /nodes, /nodes/{node}/status,
//! /cluster/nextid (reserves nothing; a string) and /cluster/resources.

use serde_json::{Value, json};

use crate::envelope::{ApiError, ApiResult, Reply};
use crate::params::{Kind, Raw, Schema, VMID, node_name};
use crate::routes::Ctx;
use crate::world::{STORAGES, World};

pub const PVE_VERSION: &str = "9.2.11";

pub fn version(ctx: &Ctx, raw: Raw) -> ApiResult {
    ctx.params(&Schema::new(&[]), raw, &[])?;
    Ok(Reply::data(json!({
        "version": PVE_VERSION,
        "release": "9.2",
        "repoid": "14a22df",
        "console": "html5",
    })))
}

/// Memory a node uses: 2 GiB for itself plus its running VMs.
fn node_mem(world: &World, node: &str) -> u64 {
    (2u64 << 30)
        + world
            .vms
            .values()
            .filter(|vm| vm.node == node && vm.is_running())
            .map(|vm| vm.memory_mib() << 20)
            .sum::<u64>()
}

fn node_disk(world: &World, node: &str) -> u64 {
    (8u64 << 30)
        + world
            .vms
            .values()
            .filter(|vm| vm.node == node)
            .map(|vm| {
                vm.disks()
                    .iter()
                    .filter_map(|(_, v)| crate::vm::drive_size(v))
                    .sum::<u64>()
            })
            .sum::<u64>()
}

pub fn nodes(ctx: &Ctx, raw: Raw) -> ApiResult {
    ctx.params(&Schema::new(&[]), raw, &[])?;
    let world = ctx.shared.world();
    let list: Vec<Value> = world
        .nodes
        .iter()
        .map(|n| {
            let name = &n.spec.name;
            let mut v = json!({
                "node": name,
                "id": format!("node/{name}"),
                "type": "node",
                "level": "",
                "ssl_fingerprint": ctx.shared.fingerprint,
                "status": if n.online { "online" } else { "offline" },
            });
            if n.online {
                v["cpu"] = json!(0.031);
                v["maxcpu"] = json!(n.spec.maxcpu);
                v["mem"] = json!(node_mem(&world, name));
                v["maxmem"] = json!(n.spec.maxmem);
                v["disk"] = json!(node_disk(&world, name));
                v["maxdisk"] = json!(n.spec.maxdisk);
                v["uptime"] = json!(n.booted.elapsed().as_secs() + 86_400);
            }
            v
        })
        .collect();
    Ok(Reply::data(json!(list)))
}

pub fn node_status(ctx: &Ctx, node: &str, raw: Raw) -> ApiResult {
    const S: Schema = Schema::new(&[("node", Kind::Check(node_name), true)]);
    ctx.params(&S, raw, &[("node", node)])?;
    let world = ctx.shared.world();
    let Some(n) = world.node(node) else {
        return Err(ApiError::die(format!("no such node '{node}'")));
    };
    let mem = node_mem(&world, node);
    let disk = node_disk(&world, node);
    let (maxmem, maxdisk) = (n.spec.maxmem, n.spec.maxdisk);
    Ok(Reply::data(json!({
        "uptime": n.booted.elapsed().as_secs() + 86_400,
        "loadavg": ["0.12", "0.10", "0.05"],
        "cpu": 0.031,
        "wait": 0.0002,
        "cpuinfo": {
            "cpus": n.spec.maxcpu, "cores": n.spec.maxcpu, "sockets": 1,
            "model": "AMD EPYC 9124 16-Core Processor", "mhz": "3000.000",
            "hvm": "1", "user_hz": 100, "flags": "fpu vme de pse",
        },
        "memory": {
            "total": maxmem, "used": mem, "free": maxmem - mem.min(maxmem),
            "available": maxmem - mem.min(maxmem),
        },
        "swap": { "total": 8u64 << 30, "used": 0, "free": 8u64 << 30 },
        "ksm": { "shared": 0 },
        "rootfs": {
            "total": maxdisk, "used": disk, "free": maxdisk - disk.min(maxdisk),
            "avail": maxdisk - disk.min(maxdisk),
        },
        "kversion": "Linux 6.14.11-4-pve #1 SMP PREEMPT_DYNAMIC PMX 6.14.11-4",
        "current-kernel": {
            "sysname": "Linux", "release": "6.14.11-4-pve", "machine": "x86_64",
            "version": "#1 SMP PREEMPT_DYNAMIC PMX 6.14.11-4",
        },
        "boot-info": { "mode": "efi", "secureboot": 0 },
        "pveversion": format!("pve-manager/{PVE_VERSION}/14a22df"),
    })))
}

pub fn nextid(ctx: &Ctx, raw: Raw) -> ApiResult {
    const S: Schema = Schema::new(&[("vmid", VMID, false)]);
    let p = ctx.params(&S, raw, &[])?;
    let world = ctx.shared.world();
    if let Some(vmid) = p.int("vmid") {
        let taken = u32::try_from(vmid).is_ok_and(|v| world.vms.contains_key(&v));
        if taken {
            return Err(ApiError::param("vmid", format!("VM {vmid} already exists")));
        }
        return Ok(Reply::data(json!(vmid.to_string())));
    }
    // Perl stringifies the number: the reply is `{"data":"100"}`.
    match (100u32..1_000_000).find(|id| !world.vms.contains_key(id)) {
        Some(id) => Ok(Reply::data(json!(id.to_string()))),
        None => Err(ApiError::die(
            "unable to get any free VMID in range [100, 999999]",
        )),
    }
}

pub fn resources(ctx: &Ctx, raw: Raw) -> ApiResult {
    const S: Schema =
        Schema::new(&[("type", Kind::Enum(&["vm", "storage", "node", "sdn"]), false)]);
    let p = ctx.params(&S, raw, &[])?;
    let want = |t: &str| p.get("type").is_none_or(|w| w == t);
    let world = ctx.shared.world();
    let mut out = Vec::new();
    if want("vm") {
        for vm in world.vms.values() {
            let online = world.node(&vm.node).is_some_and(|n| n.online);
            let mut v = crate::qemu::status::resource_entry(vm);
            if !online {
                v["status"] = json!("unknown");
            }
            out.push(v);
        }
    }
    if want("node") {
        for n in &world.nodes {
            let name = &n.spec.name;
            out.push(json!({
                "id": format!("node/{name}"), "type": "node", "node": name,
                "status": if n.online { "online" } else { "offline" },
                "maxcpu": n.spec.maxcpu, "maxmem": n.spec.maxmem, "maxdisk": n.spec.maxdisk,
                "mem": node_mem(&world, name), "disk": node_disk(&world, name),
                "cpu": 0.031, "uptime": n.booted.elapsed().as_secs() + 86_400, "level": "",
            }));
        }
    }
    if want("storage") {
        for n in &world.nodes {
            for s in STORAGES {
                out.push(json!({
                    "id": format!("storage/{}/{}", n.spec.name, s.id), "type": "storage",
                    "node": n.spec.name, "storage": s.id, "plugintype": s.kind,
                    "content": s.content.join(","), "shared": u8::from(s.shared),
                    "status": if n.online { "available" } else { "unknown" },
                    "disk": 0, "maxdisk": n.spec.maxdisk,
                }));
            }
        }
    }
    Ok(Reply::data(json!(out)))
}
