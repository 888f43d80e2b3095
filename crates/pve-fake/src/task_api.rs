//! /nodes/{node}/tasks: list, status and log of worker tasks. A UPID is
//! only known on the node it names.

use serde_json::{Value, json};

use crate::envelope::{ApiError, ApiResult, Reply};
use crate::params::{ANY_INT, Kind, Raw, Schema, VMID, node_name};
use crate::routes::Ctx;
use crate::tasks::Task;

fn find(ctx: &Ctx, node: &str, upid: &str) -> Result<Task, ApiError> {
    let parts: Vec<&str> = upid.split(':').collect();
    let well_formed = parts.len() == 9
        && parts[0] == "UPID"
        && parts[8].is_empty()
        && parts[2].len() == 8
        && u32::from_str_radix(parts[2], 16).is_ok();
    if !well_formed {
        return Err(ApiError::param("upid", "unable to parse worker upid"));
    }
    let world = ctx.shared.world();
    match world.tasks.get(upid) {
        Some(t) if t.node == node => Ok(t.clone()),
        _ => Err(ApiError::param("upid", "no such task")),
    }
}

pub fn status(ctx: &Ctx, node: &str, upid: &str, raw: Raw) -> ApiResult {
    const S: Schema = Schema::new(&[
        ("node", Kind::Check(node_name), true),
        ("upid", Kind::Str, true),
    ]);
    ctx.params(&S, raw, &[("node", node), ("upid", upid)])?;
    Ok(Reply::data(find(ctx, node, upid)?.status_json()))
}

pub fn log(ctx: &Ctx, node: &str, upid: &str, raw: Raw) -> ApiResult {
    const S: Schema = Schema::new(&[
        ("node", Kind::Check(node_name), true),
        ("upid", Kind::Str, true),
        (
            "start",
            Kind::Int {
                min: 0,
                max: i64::MAX,
            },
            false,
        ),
        (
            "limit",
            Kind::Int {
                min: 0,
                max: i64::MAX,
            },
            false,
        ),
        ("download", Kind::Bool, false),
    ]);
    let p = ctx.params(&S, raw, &[("node", node), ("upid", upid)])?;
    let task = find(ctx, node, upid)?;
    let start = p.int("start").unwrap_or(0) as usize;
    let limit = p.int("limit").unwrap_or(50) as usize;
    let lines: Vec<Value> = if task.log.is_empty() {
        vec![json!({ "n": 1, "t": "no content" })]
    } else {
        task.log
            .iter()
            .enumerate()
            .skip(start)
            .take(limit)
            .map(|(i, t)| json!({ "n": i + 1, "t": t }))
            .collect()
    };
    Ok(Reply::data_total(json!(lines), task.log.len().max(1)))
}

pub fn list(ctx: &Ctx, node: &str, raw: Raw) -> ApiResult {
    const S: Schema = Schema::new(&[
        ("node", Kind::Check(node_name), true),
        ("vmid", VMID, false),
        ("start", ANY_INT, false),
        ("limit", ANY_INT, false),
        ("errors", Kind::Bool, false),
        ("typefilter", Kind::Str, false),
        ("userfilter", Kind::Str, false),
        ("statusfilter", Kind::Str, false),
        ("since", ANY_INT, false),
        ("until", ANY_INT, false),
        ("source", Kind::Enum(&["archive", "active", "all"]), false),
    ]);
    let p = ctx.params(&S, raw, &[("node", node)])?;
    let source = p.get("source").unwrap_or("archive");
    let vmid = p.get("vmid").map(str::to_owned);
    let kind = p.get("typefilter").map(str::to_owned);
    let errors_only = p.flag("errors").unwrap_or(false);
    let start = p.int("start").unwrap_or(0).max(0) as usize;
    let limit = p.int("limit").unwrap_or(50).max(0) as usize;
    let world = ctx.shared.world();
    let rows: Vec<Value> = world
        .tasks
        .list
        .iter()
        .rev()
        .filter(|t| t.node == node)
        .filter(|t| match source {
            "archive" => t.exit.is_some(),
            "active" => t.exit.is_none(),
            _ => true,
        })
        .filter(|t| vmid.as_deref().is_none_or(|v| t.id == v))
        .filter(|t| kind.as_deref().is_none_or(|k| t.kind == k))
        .filter(|t| !errors_only || t.exit.as_deref().is_some_and(|e| e != "OK"))
        .skip(start)
        .take(limit)
        .map(|t| {
            let mut v = t.status_json();
            v["status"] = json!(t.exit.clone().unwrap_or_else(|| "RUNNING".to_owned()));
            if let Some(obj) = v.as_object_mut() {
                obj.remove("exitstatus");
            }
            if let Some(end) = t.endtime {
                v["endtime"] = json!(end);
            }
            v
        })
        .collect();
    Ok(Reply::data(json!(rows)))
}
