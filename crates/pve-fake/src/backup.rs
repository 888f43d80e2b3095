//! Backups: POST /nodes/{node}/vzdump (one job per node at a time,
//! `lock: backup` on each VM, a stopped VM runs `prelaunch` meanwhile,
//! `"OK"` when none of the VMs is on the node), the storage content
//! list, deleting a volume, and restore through POST /nodes/{node}/qemu.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Value, json};
use time::macros::format_description;

use crate::envelope::{ApiError, ApiResult, Reply};
use crate::params::{ANY_INT, Kind, Raw, Schema, VMID, node_name, storage_id};
use crate::routes::Ctx;
use crate::tasks::{self, Finish};
use crate::vm::{Qmp, Run, Vm, drive_size, is_cdrom, is_drive_key};
use crate::world::{Backup, Shared, World, check_lock, die, now, storage};

const VZDUMP: Schema = Schema::new(&[
    ("node", Kind::Check(node_name), true),
    ("vmid", Kind::Str, false),
    ("all", Kind::Bool, false),
    ("pool", Kind::Str, false),
    ("storage", Kind::Check(storage_id), false),
    ("mode", Kind::Enum(&["snapshot", "suspend", "stop"]), false),
    (
        "compress",
        Kind::Enum(&["0", "1", "gzip", "lzo", "zstd"]),
        false,
    ),
    ("notes-template", Kind::Str, false),
    ("remove", Kind::Bool, false),
    ("prune-backups", Kind::Str, false),
    ("protected", Kind::Bool, false),
    ("bwlimit", ANY_INT, false),
    ("zstd", ANY_INT, false),
    ("lockwait", ANY_INT, false),
    ("ionice", ANY_INT, false),
    ("stdexcludes", Kind::Bool, false),
    ("quiet", Kind::Bool, false),
    ("exclude", Kind::Str, false),
    ("mailto", Kind::Str, false),
    (
        "mailnotification",
        Kind::Enum(&["always", "failure"]),
        false,
    ),
    ("notification-mode", Kind::Str, false),
]);

struct Job {
    node: String,
    storage: String,
    compress: String,
    notes: Option<String>,
    protected: bool,
    vmids: Vec<u32>,
}

pub fn vzdump(ctx: &Ctx, node: &str, raw: Raw) -> ApiResult {
    let p = ctx.params(&VZDUMP, raw, &[("node", node)])?;
    let sid = p.get("storage").unwrap_or("local").to_owned();
    match storage(&sid) {
        None => return Err(die(format!("storage '{sid}' does not exist"))),
        Some(s) if !s.content.contains(&"backup") => {
            return Err(die(format!(
                "can't use storage '{sid}' for backups - wrong content type"
            )));
        }
        Some(_) => {}
    }
    let mut world = ctx.shared.world();
    let vmids: Vec<u32> = if p.flag("all") == Some(true) {
        world
            .vms
            .values()
            .filter(|v| v.node == node)
            .map(|v| v.vmid)
            .collect()
    } else if let Some(list) = p.get("vmid") {
        let mut ids = Vec::new();
        for id in list.split([',', ' ', ';']).filter(|s| !s.is_empty()) {
            match id.parse::<u32>() {
                Ok(n) if n >= 100 => ids.push(n),
                _ => {
                    return Err(ApiError::param(
                        "vmid",
                        format!("value '{id}' does not look like a valid VM ID\n"),
                    ));
                }
            }
        }
        // Only the VMs on this node; the others are another node's job.
        ids.into_iter()
            .filter(|id| world.vms.get(id).is_some_and(|v| v.node == node))
            .collect()
    } else {
        return Err(die(
            "please specify either 'vmid', 'all' or 'pool'".to_owned()
        ));
    };
    if vmids.is_empty() {
        return Ok(Reply::data(json!("OK")));
    }
    let id = if vmids.len() == 1 {
        vmids[0].to_string()
    } else {
        String::new()
    };
    let upid = world.tasks.create(node, "vzdump", &id, ctx.user);
    drop(world);
    let job = Job {
        node: node.to_owned(),
        storage: sid,
        compress: p.get("compress").unwrap_or("0").to_owned(),
        notes: p.get("notes-template").map(str::to_owned),
        protected: p.flag("protected").unwrap_or(false),
        vmids,
    };
    tokio::spawn(run_job(ctx.shared.clone(), upid.clone(), job));
    Ok(Reply::data(json!(upid)))
}

async fn run_job(shared: Arc<Shared>, upid: String, job: Job) {
    // One vzdump per node: wait for the node's global backup lock.
    loop {
        {
            let mut world = shared.world();
            if world.vzdump_busy.insert(job.node.clone()) {
                let ids: Vec<String> = job.vmids.iter().map(u32::to_string).collect();
                world.tasks.log(
                    &upid,
                    format!(
                        "INFO: starting new backup job: vzdump {} --storage {} --compress {}",
                        ids.join(" "),
                        job.storage,
                        job.compress
                    ),
                );
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut errors = 0;
    for &vmid in &job.vmids {
        let started = Instant::now();
        let begun = shared.world().begin_backup(&upid, &job, vmid);
        let was_stopped = match begun {
            Ok(s) => s,
            Err(e) => {
                errors += 1;
                shared
                    .world()
                    .tasks
                    .log(&upid, format!("ERROR: Backup of VM {vmid} failed - {e}"));
                continue;
            }
        };
        tokio::time::sleep(shared.config.task_duration).await;
        let mut world = shared.world();
        world.end_backup(&upid, &job, vmid, was_stopped, started);
    }
    let mut world = shared.world();
    world.vzdump_busy.remove(&job.node);
    if errors == 0 {
        world
            .tasks
            .log(&upid, "INFO: Backup job finished successfully");
        tasks::finish_task(&mut world, &upid, Ok(()));
    } else {
        tasks::finish_task(&mut world, &upid, Err("job errors".to_owned()));
    }
}

fn dump_dir(sid: &str) -> String {
    if sid == "local" {
        "/var/lib/vz/dump".to_owned()
    } else {
        format!("/mnt/pve/{sid}/dump")
    }
}

fn extension(compress: &str) -> &'static str {
    match compress {
        "1" | "lzo" => ".lzo",
        "gzip" => ".gz",
        "zstd" => ".zst",
        _ => "",
    }
}

impl World {
    /// Sets `lock: backup` (and starts a stopped VM paused); whether the
    /// VM was stopped.
    fn begin_backup(&mut self, upid: &str, job: &Job, vmid: u32) -> Result<bool, String> {
        let vm = self
            .vm_on_mut(&job.node, vmid)
            .map_err(|_| format!("unable to find VM {vmid}"))?;
        check_lock(vm)?;
        let was_stopped = !vm.is_running();
        vm.conf.insert("lock".to_owned(), "backup".to_owned());
        if was_stopped {
            vm.run = Run::Running {
                since: Instant::now(),
                qmp: Qmp::Prelaunch,
                pid: 20_000 + vmid,
            };
        }
        let stamp = self.archive_stamp(job, vmid);
        let archive = format!(
            "{}/vzdump-qemu-{vmid}-{stamp}.vma{}",
            dump_dir(&job.storage),
            extension(&job.compress)
        );
        self.tasks
            .log(upid, format!("INFO: Starting Backup of VM {vmid} (qemu)"));
        self.tasks.log(
            upid,
            format!(
                "INFO: status = {}",
                if was_stopped { "stopped" } else { "running" }
            ),
        );
        self.tasks
            .log(upid, format!("INFO: creating vzdump archive '{archive}'"));
        Ok(was_stopped)
    }

    /// `YYYY_MM_DD-HH_MM_SS` (UTC here), a second later if that name is taken.
    fn archive_stamp(&self, job: &Job, vmid: u32) -> String {
        let format = format_description!("[year]_[month]_[day]-[hour]_[minute]_[second]");
        let mut t = time::OffsetDateTime::now_utc();
        loop {
            let stamp = t.format(&format).unwrap_or_default();
            let prefix = format!("{}:backup/vzdump-qemu-{vmid}-{stamp}.", job.storage);
            if !self.backups.iter().any(|b| b.volid.starts_with(&prefix)) {
                return stamp;
            }
            t += time::Duration::SECOND;
        }
    }

    fn end_backup(
        &mut self,
        upid: &str,
        job: &Job,
        vmid: u32,
        was_stopped: bool,
        started: Instant,
    ) {
        let archive = self
            .tasks
            .get(upid)
            .and_then(|t| {
                t.log
                    .iter()
                    .rev()
                    .find_map(|l| l.strip_prefix("INFO: creating vzdump archive '"))
                    .map(|s| s.trim_end_matches('\'').to_owned())
            })
            .unwrap_or_default();
        let file = archive.rsplit('/').next().unwrap_or("").to_owned();
        let Ok(vm) = self.vm_on_mut(&job.node, vmid) else {
            return;
        };
        vm.conf.remove("lock");
        if was_stopped {
            vm.run = Run::Stopped;
        }
        let conf = vm.conf.clone();
        let size: u64 = vm
            .disks()
            .iter()
            .filter_map(|(_, v)| drive_size(v))
            .sum::<u64>()
            / 20;
        let notes = job.notes.as_ref().map(|t| {
            t.replace("{{guestname}}", &vm.name())
                .replace("{{vmid}}", &vmid.to_string())
                .replace("{{node}}", &job.node)
                .replace("{{cluster}}", "mpanel-fake")
        });
        let format = file
            .split_once(".vma")
            .map_or("vma".to_owned(), |(_, ext)| format!("vma{ext}"));
        self.backups.push(Backup {
            node: job.node.clone(),
            storage: job.storage.clone(),
            volid: format!("{}:backup/{file}", job.storage),
            vmid,
            size,
            ctime: now(),
            format,
            notes,
            protected: job.protected,
            conf,
        });
        let secs = started.elapsed().as_secs();
        self.tasks.log(
            upid,
            format!(
                "INFO: Finished Backup of VM {vmid} ({:02}:{:02}:{:02})",
                secs / 3600,
                secs / 60 % 60,
                secs % 60
            ),
        );
    }
}

pub fn content(ctx: &Ctx, node: &str, sid: &str, raw: Raw) -> ApiResult {
    const S: Schema = Schema::new(&[
        ("node", Kind::Check(node_name), true),
        ("storage", Kind::Check(storage_id), true),
        ("content", Kind::Str, false),
        ("vmid", VMID, false),
    ]);
    let p = ctx.params(&S, raw, &[("node", node), ("storage", sid)])?;
    if storage(sid).is_none() {
        return Err(die(format!("storage '{sid}' does not exist")));
    }
    let content = p.get("content");
    let vmid = p.int("vmid").and_then(|v| u32::try_from(v).ok());
    let world = ctx.shared.world();
    let mut out: Vec<Value> = Vec::new();
    if content.is_none_or(|c| c == "backup") {
        for b in world
            .backups
            .iter()
            .filter(|b| b.node == node && b.storage == sid)
        {
            if vmid.is_some_and(|v| v != b.vmid) {
                continue;
            }
            let mut v = json!({
                "volid": b.volid, "content": "backup", "format": b.format,
                "size": b.size, "ctime": b.ctime, "vmid": b.vmid, "subtype": "qemu",
            });
            if let Some(n) = &b.notes {
                v["notes"] = json!(n);
            }
            if b.protected {
                v["protected"] = json!(1);
            }
            out.push(v);
        }
    }
    if content.is_none_or(|c| c == "images") {
        for vm in world.vms.values().filter(|v| v.node == node) {
            if vmid.is_some_and(|v| v != vm.vmid) {
                continue;
            }
            for (_, value) in vm.disks() {
                let volid = value.split(',').next().unwrap_or("");
                if volid.split(':').next() == Some(sid) {
                    out.push(json!({
                        "volid": volid, "content": "images", "format": "raw",
                        "size": drive_size(&value).unwrap_or(0), "vmid": vm.vmid,
                    }));
                }
            }
        }
    }
    Ok(Reply::data(json!(out)))
}

pub async fn delete_volume(
    ctx: &Ctx<'_>,
    node: &str,
    sid: &str,
    volume: &str,
    raw: Raw,
) -> ApiResult {
    const S: Schema = Schema::new(&[
        ("node", Kind::Check(node_name), true),
        ("storage", Kind::Check(storage_id), false),
        ("volume", Kind::Str, true),
        ("delay", Kind::Int { min: 1, max: 30 }, false),
    ]);
    let p = ctx.params(
        &S,
        raw,
        &[("node", node), ("storage", sid), ("volume", volume)],
    )?;
    let volid = match volume.split_once(':') {
        Some((vsid, _)) if vsid != sid => {
            return Err(ApiError::param(
                "volume",
                format!("storage ID mismatch ({vsid} != {sid})."),
            ));
        }
        Some(_) => volume.to_owned(),
        None => format!("{sid}:{volume}"),
    };
    let upid = {
        let mut world = ctx.shared.world();
        let found = world
            .backups
            .iter()
            .position(|b| b.node == node && b.volid == volid);
        let vmid = found.map_or(String::new(), |i| world.backups[i].vmid.to_string());
        let upid = world
            .tasks
            .create(node, "imgdel", &format!("{vmid}@{sid}"), ctx.user);
        let started: Result<Finish, String> = match found {
            None => Err(format!("volume '{volid}' does not exist")),
            Some(i) if world.backups[i].protected => {
                Err(format!("cannot remove protected volume '{volid}'"))
            }
            Some(_) => {
                let volid = volid.clone();
                let node = node.to_owned();
                Ok(Box::new(move |world: &mut World, _: &str| {
                    world
                        .backups
                        .retain(|b| !(b.node == node && b.volid == volid));
                    Ok(())
                }))
            }
        };
        tasks::complete_later(ctx.shared, upid.clone(), started);
        upid
    };
    if let Some(delay) = p.int("delay") {
        match tasks::wait(ctx.shared, &upid, delay as u64).await {
            Some(e) if tasks::is_success(&e) => return Ok(Reply::data(json!(null))),
            Some(e) => return Err(die(e)),
            None => {}
        }
    }
    Ok(Reply::data(json!(upid)))
}

fn restore_key(name: &str) -> Option<Kind> {
    crate::qemu::config::config_key(name)
}

const RESTORE: Schema = Schema {
    fixed: &[
        ("node", Kind::Check(node_name), true),
        ("vmid", VMID, true),
        ("archive", Kind::Str, false),
        ("force", Kind::Bool, false),
        ("storage", Kind::Check(storage_id), false),
        ("unique", Kind::Bool, false),
        ("start", Kind::Bool, false),
        ("bwlimit", ANY_INT, false),
        ("pool", Kind::Str, false),
        ("live-restore", Kind::Bool, false),
    ],
    extra: Some(restore_key),
};

/// POST /nodes/{node}/qemu with `archive`: restore (task `qmrestore`).
/// Creating a VM from scratch is not part of the fake.
pub fn restore(ctx: &Ctx, node: &str, raw: Raw) -> ApiResult {
    let p = ctx.params(&RESTORE, raw, &[("node", node)])?;
    let vmid = crate::qemu::vmid(&p);
    let Some(archive) = p.get("archive").map(str::to_owned) else {
        return Err(die(
            "mpanel-pve-fake: creating a VM without 'archive' is not implemented".to_owned(),
        ));
    };
    let disk_keys: BTreeMap<String, String> =
        p.0.keys()
            .filter(|k| is_drive_key(k))
            .map(|k| {
                (
                    k.clone(),
                    "option conflicts with option 'archive'".to_owned(),
                )
            })
            .collect();
    if !disk_keys.is_empty() {
        return Err(ApiError::Params(disk_keys));
    }
    let force = p.flag("force").unwrap_or(false);
    let mut world = ctx.shared.world();
    match world.vms.get_mut(&vmid) {
        Some(vm) if vm.node != node || !force => {
            return Err(die(format!(
                "unable to restore VM {vmid} - VM {vmid} already exists on node '{}'",
                vm.node
            )));
        }
        Some(vm) => {
            if let Some(lock) = vm.lock() {
                return Err(die(format!(
                    "unable to restore VM {vmid} - VM is locked ({lock})"
                )));
            }
            vm.conf.insert("lock".to_owned(), "create".to_owned());
        }
        None => {
            let conf = BTreeMap::from([("lock".to_owned(), "create".to_owned())]);
            world.vms.insert(vmid, Vm::new(vmid, node, conf, now()));
        }
    }
    let upid = world
        .tasks
        .create(node, "qmrestore", &vmid.to_string(), ctx.user);
    let started = start_restore(&mut world, node, vmid, &archive, &p);
    tasks::complete_later(ctx.shared, upid.clone(), started);
    Ok(Reply::data(json!(upid)))
}

fn start_restore(
    world: &mut World,
    node: &str,
    vmid: u32,
    archive: &str,
    p: &crate::params::Params,
) -> Result<Finish, String> {
    let fail = |world: &mut World, e: String| {
        if let Some(vm) = world.vms.get_mut(&vmid) {
            vm.conf.remove("lock");
        }
        Err(format!("unable to restore VM {vmid} - {e}"))
    };
    if let Err(e) = world.touch_flock(vmid) {
        return fail(world, e);
    }
    if world.vms.get(&vmid).is_some_and(Vm::is_running) {
        return fail(world, "vm is running".to_owned());
    }
    let Some(backup) = world
        .backups
        .iter()
        .find(|b| b.node == node && b.volid == archive)
        .cloned()
    else {
        return fail(world, format!("can't find archive '{archive}'"));
    };
    world.tasks.log_restore(vmid, archive);
    let storage_override = p.get("storage").map(str::to_owned);
    let unique = p.flag("unique").unwrap_or(false);
    let start = p.flag("start").unwrap_or(false);
    Ok(Box::new(move |world, _upid| {
        let mut conf = BTreeMap::new();
        let mut disk = 0;
        for (k, v) in &backup.conf {
            if k == "lock" {
                continue;
            }
            if is_drive_key(k) && !is_cdrom(v) {
                let (volid, opts) = v.split_once(',').unwrap_or((v.as_str(), ""));
                let sid = storage_override
                    .clone()
                    .unwrap_or_else(|| volid.split(':').next().unwrap_or("local-lvm").to_owned());
                conf.insert(k.clone(), format!("{sid}:vm-{vmid}-disk-{disk},{opts}"));
                disk += 1;
            } else {
                conf.insert(k.clone(), v.clone());
            }
        }
        if unique {
            for (k, v) in conf.clone() {
                if k.starts_with("net") {
                    let mac = world.new_mac();
                    let model = v.split_once('=').map_or("virtio", |(m, _)| m).to_owned();
                    let rest = v.split_once(',').map_or("", |(_, r)| r).to_owned();
                    conf.insert(k, format!("{model}={mac},{rest}"));
                }
            }
        }
        let vm = world
            .vms
            .get_mut(&vmid)
            .ok_or_else(|| format!("unable to restore VM {vmid} - config vanished"))?;
        vm.conf = conf;
        vm.pending.clear();
        vm.pending_delete.clear();
        if start {
            vm.run = Run::Running {
                since: Instant::now(),
                qmp: Qmp::Running,
                pid: 30_000 + vmid,
            };
        }
        Ok(())
    }))
}
