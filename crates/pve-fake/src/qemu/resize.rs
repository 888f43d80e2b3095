//! PUT /nodes/{node}/qemu/{vmid}/resize: asynchronous since PVE 8.0.
//! Only the schema is checked before the fork; everything else (missing
//! config, digest, lock, unknown disk, cdrom, shrinking) is a task error.

use serde_json::json;

use crate::envelope::{ApiResult, Reply};
use crate::params::{Kind, Raw, Schema, VMID, node_name};
use crate::routes::Ctx;
use crate::tasks::{self, Finish};
use crate::vm::{drive_size, is_cdrom, is_drive_key, parse_size, with_size};
use crate::world::{World, check_lock};

fn disk_name(v: &str) -> Result<(), String> {
    if is_drive_key(v) {
        Ok(())
    } else {
        Err(format!(
            "value '{v}' does not have a value in the enumeration 'ide0, ..., scsi30, virtio0, ..., sata5, efidisk0, tpmstate0'"
        ))
    }
}

fn size(v: &str) -> Result<(), String> {
    let body = v.strip_prefix('+').unwrap_or(v);
    let body = body.strip_suffix(['K', 'M', 'G', 'T']).unwrap_or(body);
    let (int, frac) = body.split_once('.').unwrap_or((body, "0"));
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    if digits(int) && digits(frac) {
        Ok(())
    } else {
        Err("value does not match the regex pattern".to_owned())
    }
}

const SCHEMA: Schema = Schema::new(&[
    ("node", Kind::Check(node_name), true),
    ("vmid", VMID, true),
    ("disk", Kind::Check(disk_name), true),
    ("size", Kind::Check(size), true),
    ("digest", Kind::Str, false),
    ("skiplock", Kind::Bool, false),
]);

pub fn resize(ctx: &Ctx, node: &str, vmid: &str, raw: Raw) -> ApiResult {
    let p = ctx.params(&SCHEMA, raw, &[("node", node), ("vmid", vmid)])?;
    super::refuse_skiplock(&p)?;
    let vmid = super::vmid(&p);
    let disk = p.get("disk").unwrap_or("").to_owned();
    let size = p.get("size").unwrap_or("").to_owned();
    let digest = p.get("digest").map(str::to_owned);
    let mut world = ctx.shared.world();
    let upid = world
        .tasks
        .create(node, "resize", &vmid.to_string(), ctx.user);
    let started = start(&mut world, node, vmid, &disk, &size, digest.as_deref());
    tasks::complete_later(ctx.shared, upid.clone(), started);
    Ok(Reply::data(json!(upid)))
}

fn start(
    world: &mut World,
    node: &str,
    vmid: u32,
    disk: &str,
    size: &str,
    digest: Option<&str>,
) -> Result<Finish, String> {
    world.touch_flock(vmid)?;
    let vm = world.vm_on(node, vmid)?;
    if digest.is_some_and(|d| d != vm.digest()) {
        return Err("checksum mismatch (file change by other user?)".to_owned());
    }
    check_lock(vm)?;
    let value = vm
        .conf
        .get(disk)
        .ok_or_else(|| format!("disk '{disk}' does not exist"))?
        .clone();
    if is_cdrom(&value) {
        return Err("you can't resize a cdrom".to_owned());
    }
    let current = drive_size(&value).unwrap_or(0);
    let (relative, amount) = match size.strip_prefix('+') {
        Some(s) => (true, s),
        None => (false, size),
    };
    let amount = parse_size(amount).ok_or_else(|| format!("invalid size '{size}'"))?;
    let new = if relative { current + amount } else { amount };
    if new < current {
        return Err("shrinking disks is not supported".to_owned());
    }
    let disk = disk.to_owned();
    let node = node.to_owned();
    Ok(Box::new(move |world, upid| {
        let vm = world.vm_on_mut(&node, vmid)?;
        if let Some(v) = vm.conf.get(&disk).cloned() {
            vm.conf.insert(disk.clone(), with_size(&v, new));
        }
        world.tasks.log(
            upid,
            format!("  Size of logical volume changed to {new} bytes."),
        );
        Ok(())
    }))
}
