//! POST /nodes/{node}/qemu/{vmid}/status/{action}. The few synchronous
//! checks are HTTP 500; the rest are task errors, as in qemu-server.
//! The VM's run state changes when the task starts; the task reports
//! after the configured time.

use std::time::Instant;

use serde_json::json;

use crate::envelope::{ApiError, ApiResult, Reply};
use crate::params::{Kind, Raw, Schema, VMID, node_name};
use crate::routes::Ctx;
use crate::tasks::{self, Finish};
use crate::vm::{Qmp, Run};
use crate::world::{World, check_lock, die};

pub const ACTIONS: &[&str] = &[
    "start", "stop", "shutdown", "reboot", "suspend", "resume", "reset",
];

const N: (&str, Kind, bool) = ("node", Kind::Check(node_name), true);
const V: (&str, Kind, bool) = ("vmid", VMID, true);
const SKIPLOCK: (&str, Kind, bool) = ("skiplock", Kind::Bool, false);
const TIMEOUT: (&str, Kind, bool) = (
    "timeout",
    Kind::Int {
        min: 0,
        max: 86_400,
    },
    false,
);

fn schema(action: &str) -> Schema {
    match action {
        "start" => Schema::new(&[
            N,
            V,
            SKIPLOCK,
            TIMEOUT,
            ("machine", Kind::Str, false),
            ("migratedfrom", Kind::Str, false),
            ("stateuri", Kind::Str, false),
            ("force-cpu", Kind::Str, false),
        ]),
        "stop" => Schema::new(&[
            N,
            V,
            SKIPLOCK,
            TIMEOUT,
            ("keepActive", Kind::Bool, false),
            ("overrule-shutdown", Kind::Bool, false),
            ("migratedfrom", Kind::Str, false),
        ]),
        "shutdown" => Schema::new(&[
            N,
            V,
            SKIPLOCK,
            TIMEOUT,
            ("forceStop", Kind::Bool, false),
            ("keepActive", Kind::Bool, false),
        ]),
        "reboot" => Schema::new(&[N, V, TIMEOUT]),
        "suspend" => Schema::new(&[
            N,
            V,
            SKIPLOCK,
            ("todisk", Kind::Bool, false),
            ("statestorage", Kind::Str, false),
        ]),
        "resume" => Schema::new(&[N, V, SKIPLOCK, ("nocheck", Kind::Bool, false)]),
        _ => Schema::new(&[N, V, SKIPLOCK]),
    }
}

fn task_type(action: &str, todisk: bool) -> &'static str {
    match action {
        "start" => "qmstart",
        "stop" => "qmstop",
        "shutdown" => "qmshutdown",
        "reboot" => "qmreboot",
        "suspend" if todisk => "qmsuspend",
        "suspend" => "qmpause",
        "resume" => "qmresume",
        _ => "qmreset",
    }
}

pub fn action(ctx: &Ctx, node: &str, vmid: &str, action: &str, raw: Raw) -> ApiResult {
    let p = ctx.params(&schema(action), raw, &[("node", node), ("vmid", vmid)])?;
    super::refuse_skiplock(&p)?;
    let vmid = super::vmid(&p);
    let todisk = p.flag("todisk").unwrap_or(false);
    let force_stop = p.flag("forceStop").unwrap_or(false);
    let mut world = ctx.shared.world();
    sync_checks(&world, node, vmid, action, force_stop)?;
    let kind = task_type(action, todisk);
    let upid = world.tasks.create(node, kind, &vmid.to_string(), ctx.user);
    let started = run(&mut world, node, vmid, action, todisk);
    tasks::complete_later(ctx.shared, upid.clone(), started.map(|()| done()));
    Ok(Reply::data(json!(upid)))
}

fn done() -> Finish {
    Box::new(|_: &mut World, _: &str| Ok(()))
}

fn sync_checks(
    world: &World,
    node: &str,
    vmid: u32,
    action: &str,
    force_stop: bool,
) -> Result<(), ApiError> {
    match action {
        "shutdown" => {
            if let Ok(vm) = world.vm_on(node, vmid)
                && vm.qmp() == Some(Qmp::Paused)
                && !force_stop
            {
                return Err(die("VM is paused - cannot shutdown".to_owned()));
            }
        }
        "reboot" | "suspend" | "resume" | "reset" => {
            let vm = world.assert_on_node(node, vmid).map_err(die)?;
            let suspended = vm.lock() == Some("suspended");
            let resumable = action == "resume" && suspended;
            if !vm.is_running() && !resumable {
                return Err(die(format!("VM {vmid} not running")));
            }
            if action == "reboot" && vm.qmp() == Some(Qmp::Paused) {
                return Err(die("VM is paused - cannot shutdown".to_owned()));
            }
        }
        _ => {}
    }
    Ok(())
}

fn running(world: &mut World) -> Run {
    Run::Running {
        since: Instant::now(),
        qmp: Qmp::Running,
        pid: 10_000 + world.tasks.list.len() as u32,
    }
}

/// The worker's part, applied when the task starts.
fn run(world: &mut World, node: &str, vmid: u32, action: &str, todisk: bool) -> Result<(), String> {
    match action {
        "start" => world.vm_on(node, vmid).map(|_| ())?,
        "stop" | "shutdown" => world.assert_on_node(node, vmid).map(|_| ())?,
        _ => world.assert_on_node(node, vmid).map(|_| ())?,
    }
    world.touch_flock(vmid)?;
    let new_run = running(world);
    let vm = world.vm_on_mut(node, vmid)?;
    match action {
        "start" => {
            if vm.is_template() {
                return Err("you can't start a vm if it's a template".to_owned());
            }
            match vm.lock() {
                Some("suspended") => {
                    vm.conf.remove("lock");
                }
                Some("backup") if vm.is_running() => {
                    if let Run::Running { qmp, .. } = &mut vm.run {
                        *qmp = Qmp::Running;
                    }
                    return Ok(());
                }
                _ => check_lock(vm)?,
            }
            if vm.is_running() {
                return Err(format!("VM {vmid} already running"));
            }
            vm.apply_pending();
            vm.run = new_run;
        }
        "stop" | "shutdown" => {
            if !vm.is_running() {
                return Ok(());
            }
            check_lock(vm)?;
            vm.run = Run::Stopped;
            vm.apply_pending();
        }
        "reboot" => {
            check_lock(vm)?;
            vm.apply_pending();
            vm.run = new_run;
        }
        "suspend" => {
            check_lock(vm)?;
            if todisk {
                vm.run = Run::Stopped;
                vm.conf.insert("lock".to_owned(), "suspended".to_owned());
            } else if let Run::Running { qmp, .. } = &mut vm.run {
                *qmp = Qmp::Paused;
            }
        }
        "resume" => {
            if vm.lock() == Some("suspended") {
                vm.conf.remove("lock");
                vm.apply_pending();
                vm.run = new_run;
            } else {
                check_lock(vm)?;
                if let Run::Running { qmp, .. } = &mut vm.run {
                    *qmp = Qmp::Running;
                }
            }
        }
        _ => check_lock(vm)?,
    }
    Ok(())
}
