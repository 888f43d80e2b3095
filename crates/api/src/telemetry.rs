//! The process-wide metrics recorder.

use std::sync::Mutex;
use std::time::Duration;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

/// Latency buckets, in seconds: 1 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Installs the Prometheus recorder once per process and returns its handle
/// (the same handle on every later call).
pub fn metrics_handle() -> Result<PrometheusHandle, BuildError> {
    let mut slot = HANDLE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(handle) = slot.as_ref() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)?
        .install_recorder()?;
    *slot = Some(handle.clone());
    Ok(handle)
}

/// How often recorded histogram samples are folded into their buckets.
pub const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Folds the histograms' recorded samples into their buckets every
/// [`UPKEEP_EVERY`], for as long as the process runs. `install_recorder`
/// starts no upkeep of its own: until something runs it, every request's
/// latency is kept as a raw sample (8 bytes and more), so a node nobody
/// scrapes `/metrics` on grows by megabytes per million requests, forever.
pub async fn keep_up(handle: PrometheusHandle) {
    let mut every = tokio::time::interval(UPKEEP_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        handle.run_upkeep();
    }
}
