//! `diagnostics.probe`: a job operators queue to see workers pick up and
//! finish work.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mpanel_jobs::{JobError, Registry};
use serde::Deserialize;

/// `diagnostics.probe {sleep_ms}`: appends `start`/`end` lines with the job,
/// worker and time to the diagnostics log, sleeping in between. Operators
/// use it to check that a deployment's workers pick up and finish work.
pub(super) fn register_probe(registry: &mut Registry, log: PathBuf) {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(default)]
        sleep_ms: u64,
    }
    let log = Arc::new(log);
    registry.register("diagnostics.probe", move |ctx, probe: Probe| {
        let log = log.clone();
        async move {
            append(
                &log,
                format!("start {} {} {}\n", ctx.id, ctx.worker, now_nanos()),
            )
            .await?;
            tokio::time::sleep(Duration::from_millis(probe.sleep_ms.min(60_000))).await;
            append(
                &log,
                format!("end {} {} {}\n", ctx.id, ctx.worker, now_nanos()),
            )
            .await
        }
    });
}

/// One `write` on an `O_APPEND` file, finished before it returns: lines from
/// several processes never interleave and a job's `start` is on disk before
/// its `end` is written (tokio's `File` would write behind, out of order).
async fn append(path: &Arc<PathBuf>, line: String) -> Result<(), JobError> {
    let path = path.clone();
    tokio::task::spawn_blocking(move || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path.as_path())
            .and_then(|mut file| std::io::Write::write_all(&mut file, line.as_bytes()))
    })
    .await
    .map_err(JobError::retry)?
    .map_err(JobError::retry)
}

fn now_nanos() -> i128 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos()
}
