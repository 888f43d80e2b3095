//! DELETE /nodes/{node}/qemu/{vmid}: a running VM (also one started
//! paused for a backup) is refused before the fork; the worker takes the
//! flock, runs check_lock, sets `lock: destroyed` and removes the config
//! when its time is up.

use serde_json::json;

use crate::envelope::{ApiResult, Reply};
use crate::params::{Kind, Raw, Schema, VMID, node_name};
use crate::routes::Ctx;
use crate::tasks::{self, Finish};
use crate::world::{World, check_lock, die};

const SCHEMA: Schema = Schema::new(&[
    ("node", Kind::Check(node_name), true),
    ("vmid", VMID, true),
    ("purge", Kind::Bool, false),
    ("destroy-unreferenced-disks", Kind::Bool, false),
    ("skiplock", Kind::Bool, false),
]);

pub fn destroy(ctx: &Ctx, node: &str, vmid: &str, raw: Raw) -> ApiResult {
    let p = ctx.params(&SCHEMA, raw, &[("node", node), ("vmid", vmid)])?;
    super::refuse_skiplock(&p)?;
    let vmid = super::vmid(&p);
    let mut world = ctx.shared.world();
    let vm = world.vm_on(node, vmid).map_err(die)?;
    if vm.conf.get("protection").is_some_and(|v| v == "1") {
        return Err(die(format!(
            "can't remove VM {vmid} - protection mode enabled"
        )));
    }
    if vm.is_running() {
        return Err(die(format!("VM {vmid} is running - destroy failed")));
    }
    let upid = world
        .tasks
        .create(node, "qmdestroy", &vmid.to_string(), ctx.user);
    let started = start(&mut world, node, vmid, &upid);
    tasks::complete_later(ctx.shared, upid.clone(), started);
    Ok(Reply::data(json!(upid)))
}

fn start(world: &mut World, node: &str, vmid: u32, upid: &str) -> Result<Finish, String> {
    world.acquire_flock(vmid, true)?;
    let checked = world.vm_on_mut(node, vmid).and_then(|vm| {
        check_lock(vm)?;
        if vm.is_running() {
            return Err(format!("VM {vmid} is running - destroy failed"));
        }
        vm.conf.insert("lock".to_owned(), "destroyed".to_owned());
        Ok(vm.disks())
    });
    let disks = match checked {
        Ok(d) => d,
        Err(e) => {
            world.release_flock(vmid);
            return Err(e);
        }
    };
    for (_, v) in disks {
        let volid = v.split(',').next().unwrap_or("");
        world.tasks.log(
            upid,
            format!("  Logical volume \"{volid}\" successfully removed."),
        );
    }
    Ok(Box::new(move |world, upid| {
        world.release_flock(vmid);
        world.vms.remove(&vmid);
        world.tasks.log(
            upid,
            "purging VM {vmid} from related configurations..".replace("{vmid}", &vmid.to_string()),
        );
        Ok(())
    }))
}
