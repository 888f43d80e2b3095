//! The endpoint table. `{node}` must be a cluster node (`localhost` is
//! the first node) and online: pveproxy proxies the call to it, and an
//! unreachable node gives the proxy's 595. Anything else is PVE's 501.

use std::sync::Arc;

use serde_json::Value;

use crate::envelope::{ApiError, ApiResult, Reply};
use crate::params::{self, Params, Raw, Schema};
use crate::world::Shared;
use crate::{backup, cluster, qemu, task_api};

pub struct Ctx<'a> {
    pub shared: &'a Arc<Shared>,
    /// `user@realm!token` of the caller (the UPID's user field).
    pub user: &'a str,
}

impl Ctx<'_> {
    /// Checks `raw` plus the path parameters against `schema`. A path
    /// parameter repeated in the body with another value is a 400.
    pub fn params(
        &self,
        schema: &Schema,
        mut raw: Raw,
        path: &[(&str, &str)],
    ) -> Result<Params, ApiError> {
        for (k, v) in path {
            if let Some(other) = raw.get(*k) {
                let same = match other {
                    Value::String(s) => s == v,
                    Value::Number(n) => n.to_string() == *v,
                    _ => false,
                };
                if !same {
                    return Err(ApiError::param(
                        k,
                        "duplicate parameter (already defined in URI) with conflicting values!",
                    ));
                }
            }
            raw.insert((*k).to_owned(), Value::String((*v).to_owned()));
        }
        params::check(schema, &raw)
    }
}

pub async fn dispatch(
    shared: &Arc<Shared>,
    method: &str,
    rel: &str,
    raw: Raw,
    user: &str,
) -> ApiResult {
    let mut segs: Vec<String> = rel
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if segs.len() >= 2 && segs[0] == "nodes" {
        let world = shared.world();
        if segs[1] == "localhost"
            && let Some(first) = world.nodes.first()
        {
            segs[1] = first.spec.name.clone();
        }
        match world.node(&segs[1]) {
            None => {
                return Err(ApiError::die(format!(
                    "Unable to get IP for node '{}' - node offline?",
                    segs[1]
                )));
            }
            Some(n) if !n.online => return Ok(Reply::bare(595, "No route to host")),
            Some(_) => {}
        }
    }
    let ctx = Ctx { shared, user };
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match (method, s.as_slice()) {
        ("GET", ["version"]) => cluster::version(&ctx, raw),
        ("GET", ["nodes"]) => cluster::nodes(&ctx, raw),
        ("GET", ["nodes", node, "status"]) => cluster::node_status(&ctx, node, raw),
        ("GET", ["cluster", "nextid"]) => cluster::nextid(&ctx, raw),
        ("GET", ["cluster", "resources"]) => cluster::resources(&ctx, raw),
        ("GET", ["nodes", node, "qemu"]) => qemu::status::list(&ctx, node, raw),
        ("POST", ["nodes", node, "qemu"]) => backup::restore(&ctx, node, raw),
        ("DELETE", ["nodes", node, "qemu", vmid]) => qemu::delete::destroy(&ctx, node, vmid, raw),
        ("POST", ["nodes", node, "qemu", vmid, "clone"]) => {
            qemu::clone::clone(&ctx, node, vmid, raw)
        }
        ("GET", ["nodes", node, "qemu", vmid, "config"]) => {
            qemu::config::get(&ctx, node, vmid, raw)
        }
        ("PUT", ["nodes", node, "qemu", vmid, "config"]) => {
            qemu::config::put(&ctx, node, vmid, raw)
        }
        ("POST", ["nodes", node, "qemu", vmid, "config"]) => {
            qemu::config::post(&ctx, node, vmid, raw).await
        }
        ("PUT", ["nodes", node, "qemu", vmid, "resize"]) => {
            qemu::resize::resize(&ctx, node, vmid, raw)
        }
        ("GET", ["nodes", node, "qemu", vmid, "status", "current"]) => {
            qemu::status::current(&ctx, node, vmid, raw)
        }
        ("POST", ["nodes", node, "qemu", vmid, "status", action])
            if qemu::power::ACTIONS.contains(action) =>
        {
            qemu::power::action(&ctx, node, vmid, action, raw)
        }
        ("GET", ["nodes", node, "qemu", vmid, "rrddata"]) => {
            qemu::status::rrddata(&ctx, node, vmid, raw)
        }
        ("POST", ["nodes", node, "vzdump"]) => backup::vzdump(&ctx, node, raw),
        ("GET", ["nodes", node, "storage", storage, "content"]) => {
            backup::content(&ctx, node, storage, raw)
        }
        ("DELETE", ["nodes", node, "storage", storage, "content", volume @ ..])
            if !volume.is_empty() =>
        {
            backup::delete_volume(&ctx, node, storage, &volume.join("/"), raw).await
        }
        ("GET", ["nodes", node, "tasks"]) => task_api::list(&ctx, node, raw),
        ("GET", ["nodes", node, "tasks", upid, "status"]) => {
            task_api::status(&ctx, node, upid, raw)
        }
        ("GET", ["nodes", node, "tasks", upid, "log"]) => task_api::log(&ctx, node, upid, raw),
        _ => Err(ApiError::not_implemented(format!(
            "Method '{method} {rel}' not implemented"
        ))),
    }
}
