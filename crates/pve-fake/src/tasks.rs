//! Worker tasks: a UPID, a log, `running` for the configured time, then
//! `stopped` with an exitstatus (`OK`, `WARNINGS: n`, or the error text
//! with newlines made spaces), as `PVE::RESTEnvironment::fork_worker`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::config::Config;
use crate::world::{Shared, World, now};

/// What a task does when its time is up; an `Err` is its error text.
pub type Finish = Box<dyn FnOnce(&mut World, &str) -> Result<(), String> + Send>;

#[derive(Debug, Clone)]
pub struct Task {
    pub upid: String,
    pub node: String,
    pub pid: u32,
    pub pstart: u32,
    pub starttime: i64,
    pub kind: String,
    pub id: String,
    pub log: Vec<String>,
    pub warnings: u32,
    pub exit: Option<String>,
    pub endtime: Option<i64>,
}

#[derive(Default)]
pub struct Tasks {
    pub list: Vec<Task>,
    next_pid: u32,
}

impl Tasks {
    pub fn create(&mut self, node: &str, kind: &str, id: &str, user: &str) -> String {
        self.next_pid += 1;
        let pid = 0x1000 + self.next_pid;
        let pstart = 0x0010_0000 + self.next_pid * 7;
        let starttime = now();
        let upid =
            format!("UPID:{node}:{pid:08X}:{pstart:08X}:{starttime:08X}:{kind}:{id}:{user}:");
        self.list.push(Task {
            upid: upid.clone(),
            node: node.to_owned(),
            pid,
            pstart,
            starttime,
            kind: kind.to_owned(),
            id: id.to_owned(),
            log: Vec::new(),
            warnings: 0,
            exit: None,
            endtime: None,
        });
        upid
    }

    pub fn get(&self, upid: &str) -> Option<&Task> {
        self.list.iter().find(|t| t.upid == upid)
    }

    fn get_mut(&mut self, upid: &str) -> Option<&mut Task> {
        self.list.iter_mut().find(|t| t.upid == upid)
    }

    pub fn log(&mut self, upid: &str, line: impl Into<String>) {
        if let Some(t) = self.get_mut(upid) {
            t.log.push(line.into());
        }
    }

    /// The first lines of a `qmrestore` log.
    pub fn log_restore(&mut self, vmid: u32, archive: &str) {
        if let Some(t) = self
            .list
            .iter_mut()
            .rev()
            .find(|t| t.kind == "qmrestore" && t.id == vmid.to_string())
        {
            t.log.push(format!("restore vma archive: {archive}"));
        }
    }

    /// A `WARN:` line, counted into `WARNINGS: n`.
    pub fn warn(&mut self, upid: &str, line: &str) {
        if let Some(t) = self.get_mut(upid) {
            t.log.push(format!("WARN: {line}"));
            t.warnings += 1;
        }
    }

    pub fn stop(&mut self, upid: &str, result: Result<(), String>) {
        if let Some(t) = self.get_mut(upid) {
            if t.exit.is_some() {
                return;
            }
            let exit = match result {
                Ok(()) if t.warnings > 0 => {
                    let n = t.warnings;
                    t.log.push(format!("TASK WARNINGS: {n}"));
                    format!("WARNINGS: {n}")
                }
                Ok(()) => {
                    t.log.push("TASK OK".to_owned());
                    "OK".to_owned()
                }
                Err(e) => {
                    let e = e.trim_end_matches('\n').replace('\n', " ");
                    t.log.push(format!("TASK ERROR: {e}"));
                    e
                }
            };
            t.exit = Some(exit);
            t.endtime = Some(now());
        }
    }
}

impl Task {
    pub fn status_json(&self) -> Value {
        let (user, tokenid) = split_user(&self.upid);
        let mut v = json!({
            "upid": self.upid,
            "node": self.node,
            "pid": self.pid,
            "pstart": self.pstart,
            "starttime": self.starttime,
            "type": self.kind,
            "id": self.id,
            "user": user,
            "status": if self.exit.is_some() { "stopped" } else { "running" },
        });
        if let Some(tokenid) = tokenid {
            v["tokenid"] = json!(tokenid);
        }
        if let Some(exit) = &self.exit {
            v["exitstatus"] = json!(exit);
        }
        v
    }
}

/// The user field of a UPID: `user@realm` and the token name, if any.
fn split_user(upid: &str) -> (String, Option<String>) {
    let user = upid.split(':').nth(7).unwrap_or("");
    match user.split_once('!') {
        Some((u, t)) => (u.to_owned(), Some(t.to_owned())),
        None => (user.to_owned(), None),
    }
}

/// Ends the task after its duration ([`duration_of`]): runs `finish` (if
/// the start succeeded), applies injected warnings, and records the exit
/// (and its times in the task log, when one is configured).
pub fn complete_later(shared: &Arc<Shared>, upid: String, started: Result<Finish, String>) {
    let shared = shared.clone();
    let wait = duration_of(&shared.config, &upid);
    let begun = SystemTime::now();
    tokio::spawn(async move {
        tokio::time::sleep(wait).await;
        let exit = {
            let mut world = shared.world();
            let result = match started {
                Ok(finish) => finish(&mut world, &upid),
                Err(e) => Err(e),
            };
            finish_task(&mut world, &upid, result);
            world.tasks.get(&upid).and_then(|t| t.exit.clone())
        };
        if let Some(path) = &shared.config.task_log {
            log_times(path, &upid, begun, SystemTime::now(), exit.as_deref());
        }
    });
}

/// How long the task of `upid` runs: a clone, a uniformly random time in
/// `clone_duration` when that is set; anything else `task_duration`.
fn duration_of(config: &Config, upid: &str) -> Duration {
    match config.clone_duration {
        Some((low, high)) if upid.split(':').nth(5) == Some("qmclone") => uniform(low, high),
        _ => config.task_duration,
    }
}

/// A time drawn uniformly from `low..=high` (to the nanosecond), from the
/// 62 random bits of a v4 UUID.
fn uniform(low: Duration, high: Duration) -> Duration {
    if high <= low {
        return low;
    }
    let span = u64::try_from((high - low).as_nanos()).unwrap_or(u64::MAX);
    let random = (uuid::Uuid::new_v4().as_u128() as u64) & (u64::MAX >> 2);
    low + Duration::from_nanos(random % span.saturating_add(1))
}

fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Appends the task's line to the task log (see `Config::task_log`).
fn log_times(path: &Path, upid: &str, begun: SystemTime, ended: SystemTime, exit: Option<&str>) {
    let field = |i: usize| upid.split(':').nth(i).unwrap_or_default().to_owned();
    let line = json!({
        "upid": upid,
        "node": field(1),
        "type": field(5),
        "id": field(6),
        "exitstatus": exit,
        "start_ms": epoch_ms(begun),
        "end_ms": epoch_ms(ended),
    });
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
    if let Err(e) = written {
        eprintln!("task log {}: {e}", path.display());
    }
}

/// Records a task's end, adding injected `WARN:` lines to a success.
pub fn finish_task(world: &mut World, upid: &str, result: Result<(), String>) {
    if result.is_ok() {
        let kind = world.tasks.get(upid).map(|t| t.kind.clone());
        if let Some(n) = kind.and_then(|k| world.faults.take_warnings(&k)) {
            for i in 0..n {
                world
                    .tasks
                    .warn(upid, &format!("injected warning {}", i + 1));
            }
        }
    }
    world.tasks.stop(upid, result);
}

/// Waits up to `secs` for a task to stop; its exitstatus if it did.
pub async fn wait(shared: &Shared, upid: &str, secs: u64) -> Option<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let exit = shared.world().tasks.get(upid).and_then(|t| t.exit.clone());
        if exit.is_some() || tokio::time::Instant::now() >= deadline {
            return exit;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub fn is_success(exit: &str) -> bool {
    exit == "OK" || exit.starts_with("WARNINGS: ")
}
