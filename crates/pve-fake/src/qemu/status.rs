//! Reads of a VM's state: GET …/status/current, the node's VM list, the
//! /cluster/resources entry, and …/rrddata. Counters are made up from the
//! time the VM has run: netin/netout grow while it runs.

use serde_json::{Map, Value, json};

use crate::envelope::{ApiResult, Reply};
use crate::params::{Kind, Raw, Schema, VMID, node_name};
use crate::routes::Ctx;
use crate::vm::{Run, Vm};
use crate::world::{die, now};

/// (netin, netout) in bytes since QEMU started.
fn net(vm: &Vm) -> (u64, u64) {
    match vm.run {
        Run::Running { since, .. } => {
            let ms = since.elapsed().as_millis() as u64;
            (1_500 + ms * 5, 800 + ms * 2)
        }
        Run::Stopped => (0, 0),
    }
}

fn mem(vm: &Vm) -> u64 {
    if vm.is_running() {
        (vm.memory_mib() << 20) * 2 / 5
    } else {
        0
    }
}

fn cpu(vm: &Vm) -> f64 {
    if vm.is_running() { 0.0213 } else { 0.0 }
}

pub fn current(ctx: &Ctx, node: &str, vmid: &str, raw: Raw) -> ApiResult {
    const S: Schema = Schema::new(&[("node", Kind::Check(node_name), true), ("vmid", VMID, true)]);
    let p = ctx.params(&S, raw, &[("node", node), ("vmid", vmid)])?;
    let world = ctx.shared.world();
    let vm = world.vm_on(node, super::vmid(&p)).map_err(die)?;
    let (netin, mut netout) = net(vm);
    // Traffic a test sent through the VM since it started.
    if vm.is_running() {
        netout += world.faults.traffic.get(&vm.vmid).copied().unwrap_or(0);
    }
    let maxmem = vm.memory_mib() << 20;
    let mut v = json!({
        "vmid": vm.vmid,
        "name": vm.name(),
        "status": if vm.is_running() { "running" } else { "stopped" },
        "qmpstatus": vm.qmp().map_or("stopped", |q| q.as_str()),
        "uptime": vm.uptime(),
        "cpus": vm.cpus(),
        "cpu": cpu(vm),
        "mem": mem(vm),
        "maxmem": maxmem,
        "disk": 0,
        "maxdisk": vm.maxdisk(),
        "netin": netin,
        "netout": netout,
        "diskread": if vm.is_running() { 52_428_800 } else { 0 },
        "diskwrite": if vm.is_running() { 10_485_760 } else { 0 },
        "ha": { "managed": 0 },
        "agent": 1,
        "serial": 1,
    });
    if let Run::Running { pid, .. } = vm.run {
        v["pid"] = json!(pid);
        v["freemem"] = json!(maxmem - mem(vm));
        v["balloon"] = json!(maxmem);
        v["running-machine"] = json!("pc-i440fx-9.2+pve1");
        v["running-qemu"] = json!("9.2.0");
    }
    if let Some(lock) = vm.lock() {
        v["lock"] = json!(lock);
    }
    if vm.is_template() {
        v["template"] = json!(1);
    }
    if let Some(tags) = vm.conf.get("tags") {
        v["tags"] = json!(tags);
    }
    Ok(Reply::data(v))
}

pub fn list(ctx: &Ctx, node: &str, raw: Raw) -> ApiResult {
    const S: Schema = Schema::new(&[
        ("node", Kind::Check(node_name), true),
        ("full", Kind::Bool, false),
    ]);
    ctx.params(&S, raw, &[("node", node)])?;
    let world = ctx.shared.world();
    let list: Vec<Value> = world
        .vms
        .values()
        .filter(|vm| vm.node == node)
        .map(|vm| {
            let mut v = resource_entry(vm);
            v["status"] = json!(if vm.is_running() {
                "running"
            } else {
                "stopped"
            });
            if let Some(o) = v.as_object_mut() {
                o.remove("id");
                o.remove("type");
                o.remove("node");
            }
            v
        })
        .collect();
    Ok(Reply::data(json!(list)))
}

/// A `type: qemu` entry of /cluster/resources; `status` is the QMP state.
pub fn resource_entry(vm: &Vm) -> Value {
    let (netin, netout) = net(vm);
    let mut v = json!({
        "id": format!("qemu/{}", vm.vmid),
        "vmid": vm.vmid,
        "node": vm.node,
        "type": "qemu",
        "status": vm.qmp().map_or("stopped", |q| q.as_str()),
        "name": vm.name(),
        "template": u8::from(vm.is_template()),
        "maxcpu": vm.cpus(),
        "cpu": cpu(vm),
        "maxmem": vm.memory_mib() << 20,
        "mem": mem(vm),
        "maxdisk": vm.maxdisk(),
        "disk": 0,
        "netin": netin,
        "netout": netout,
        "diskread": 0,
        "diskwrite": 0,
        "uptime": vm.uptime(),
    });
    if let Some(lock) = vm.lock() {
        v["lock"] = json!(lock);
    }
    if let Some(tags) = vm.conf.get("tags") {
        v["tags"] = json!(tags);
    }
    v
}

pub fn rrddata(ctx: &Ctx, node: &str, vmid: &str, raw: Raw) -> ApiResult {
    const S: Schema = Schema::new(&[
        ("node", Kind::Check(node_name), true),
        ("vmid", VMID, true),
        (
            "timeframe",
            Kind::Enum(&["hour", "day", "week", "month", "year"]),
            true,
        ),
        ("cf", Kind::Enum(&["AVERAGE", "MAX"]), false),
    ]);
    let p = ctx.params(&S, raw, &[("node", node), ("vmid", vmid)])?;
    let world = ctx.shared.world();
    let vm = world.vm_on(node, super::vmid(&p)).map_err(die)?;
    let (step, count): (i64, i64) = match p.get("timeframe").unwrap_or("hour") {
        "hour" => (60, 60),
        "day" => (60, 1440),
        "week" => (1800, 336),
        "month" => (1800, 1440),
        _ => (21_600, 1440),
    };
    // The last, still open bucket holds only `time` and is dropped.
    let last = now() / step * step - step;
    let running = vm.is_running();
    let rows: Vec<Value> = (0..count)
        .map(|i| {
            let time = last - (count - 1 - i) * step;
            let mut row = Map::new();
            row.insert("time".to_owned(), json!(time));
            if time >= vm.created {
                let f = |x: f64| if running { x } else { 0.0 };
                row.insert("maxcpu".to_owned(), json!(vm.cpus() as f64));
                row.insert("cpu".to_owned(), json!(f(0.0213)));
                row.insert("maxmem".to_owned(), json!((vm.memory_mib() << 20) as f64));
                row.insert(
                    "mem".to_owned(),
                    json!(f(((vm.memory_mib() << 20) * 2 / 5) as f64)),
                );
                row.insert("maxdisk".to_owned(), json!(vm.maxdisk() as f64));
                row.insert("disk".to_owned(), json!(0.0));
                row.insert("netin".to_owned(), json!(f(5123.4)));
                row.insert("netout".to_owned(), json!(f(2047.9)));
                row.insert("diskread".to_owned(), json!(f(1024.5)));
                row.insert("diskwrite".to_owned(), json!(f(4096.25)));
            }
            Value::Object(row)
        })
        .collect();
    Ok(Reply::data(json!(rows)))
}
