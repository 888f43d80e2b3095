//! Worker tasks (§3 tasks): status, the tail of the log, and waiting for
//! the end. A task is polled on the node its UPID names. `OK` and
//! `WARNINGS: n` are successes (§5); anything else, "unexpected status"
//! included, is the task's error text.

use std::time::Duration;

use serde_json::Value;

use super::values::{array, object, segment, str_of, u64_of};
use super::{Cluster, Upid};
use crate::DriverError;

/// How many log lines [`Cluster::task_error_log`] returns at most.
const LOG_TAIL: usize = 20;
/// The shortest pause between two polls of [`Cluster::wait`].
const MIN_POLL: Duration = Duration::from_millis(10);

/// Where a task is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskState {
    Running,
    Stopped(TaskEnd),
}

/// How a task ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskEnd {
    /// `OK` (`warnings: 0`) or `WARNINGS: n`.
    Ok { warnings: u32 },
    /// Any other exitstatus: the task's error text (e.g. `clone failed:
    /// …`, `shrinking disks is not supported`, `job errors`, `unexpected
    /// status`).
    Failed(String),
}

impl TaskEnd {
    /// From a task's `exitstatus`.
    pub fn from_exitstatus(exitstatus: &str) -> Self {
        if exitstatus == "OK" {
            return Self::Ok { warnings: 0 };
        }
        if let Some(n) = exitstatus
            .strip_prefix("WARNINGS: ")
            .and_then(|n| n.trim().parse::<u32>().ok())
        {
            return Self::Ok { warnings: n };
        }
        Self::Failed(exitstatus.to_owned())
    }

    pub fn is_ok(&self) -> bool {
        matches!(self, Self::Ok { .. })
    }
}

fn task_path(upid: &Upid) -> String {
    format!(
        "/nodes/{}/tasks/{}",
        segment(&upid.node),
        segment(&upid.raw)
    )
}

impl Cluster {
    /// `GET /nodes/{node}/tasks/{upid}/status` on the UPID's node.
    pub async fn task(&self, upid: &Upid) -> Result<TaskState, DriverError> {
        let path = format!("{}/status", task_path(upid));
        let data = self.get(&path, &[]).await?;
        let what = format!("GET {path}");
        let o = object(&data, &what)?;
        match o.get("status").and_then(Value::as_str) {
            Some("running") => Ok(TaskState::Running),
            Some("stopped") => {
                let exit =
                    str_of(o.get("exitstatus")).unwrap_or_else(|| "unexpected status".to_owned());
                Ok(TaskState::Stopped(TaskEnd::from_exitstatus(&exit)))
            }
            _ => Err(super::values::unexpected(
                &what,
                "status running or stopped",
                &data,
            )),
        }
    }

    /// The last lines (at most 20) of the task's log, e.g. to show why it
    /// failed: the last one is `TASK ERROR: …` for a failed task.
    pub async fn task_error_log(&self, upid: &Upid) -> Result<Vec<String>, DriverError> {
        let path = format!("{}/log", task_path(upid));
        let what = format!("GET {path}");
        let page = |start: usize| {
            let params = [
                ("start", start.to_string()),
                ("limit", LOG_TAIL.to_string()),
            ];
            let path = path.clone();
            async move {
                self.envelope(reqwest::Method::GET, &path, &params)
                    .await
                    .map_err(DriverError::from)
            }
        };
        let lines = |envelope: &Value| -> Result<Vec<String>, DriverError> {
            let data = envelope.get("data").unwrap_or(&Value::Null);
            Ok(array(data, &what)?
                .iter()
                .filter_map(|l| str_of(l.get("t")))
                .collect())
        };
        // The first page tells the total (`{"data":[…],"total":n}`);
        // fetch the tail when there is more.
        let first = page(0).await?;
        let total = u64_of(first.get("total"))
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0);
        if total <= LOG_TAIL {
            return lines(&first);
        }
        lines(&page(total - LOG_TAIL).await?)
    }

    /// Polls [`Cluster::task`] every `every` until the task has stopped or
    /// `deadline` has passed (→ [`DriverError::Transient`] "task … still
    /// running"). A transient failure to read the status is retried until
    /// the deadline; a permanent one ends the wait.
    pub async fn wait(
        &self,
        upid: &Upid,
        every: Duration,
        deadline: Duration,
    ) -> Result<TaskEnd, DriverError> {
        let until = tokio::time::Instant::now() + deadline;
        let every = every.max(MIN_POLL);
        loop {
            let last_error = match self.task(upid).await {
                Ok(TaskState::Stopped(end)) => return Ok(end),
                Ok(TaskState::Running) => None,
                Err(e) if e.is_transient() => Some(e),
                Err(e) => return Err(e),
            };
            let now = tokio::time::Instant::now();
            if now >= until {
                return Err(DriverError::Transient(match last_error {
                    None => format!(
                        "task {upid} still running after {:.1} s",
                        deadline.as_secs_f64()
                    ),
                    Some(e) => format!(
                        "task {upid} still running as far as known: its status could not be read: {e}"
                    ),
                }));
            }
            tokio::time::sleep(every.min(until - now)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TaskEnd;

    #[test]
    fn ok_and_warnings_are_success_anything_else_is_failure() {
        assert_eq!(TaskEnd::from_exitstatus("OK"), TaskEnd::Ok { warnings: 0 });
        assert_eq!(
            TaskEnd::from_exitstatus("WARNINGS: 3"),
            TaskEnd::Ok { warnings: 3 }
        );
        assert_eq!(
            TaskEnd::from_exitstatus("unexpected status"),
            TaskEnd::Failed("unexpected status".to_owned())
        );
        assert_eq!(
            TaskEnd::from_exitstatus("WARNINGS: x"),
            TaskEnd::Failed("WARNINGS: x".to_owned())
        );
        assert!(!TaskEnd::from_exitstatus("job errors").is_ok());
    }
}
