//! The operations overview's arithmetic: percentiles, rates, the step and
//! reason of a failed provisioning, and what an SSH node's health check
//! reads (`/proc/loadavg`, `/proc/meminfo`, `df -P`).

use serde_json::{Value, json};

/// Security event kinds the overview counts.
pub const LOGIN_FAILED: &str = "LOGIN_FAILED";
/// An address refused for too many failures, or the failure that locked it.
pub const THROTTLED: [&str; 2] = ["LOGIN_THROTTLED", "LOGIN_LOCKED"];
/// A request refused by the tenant's security policy (its IP allow-list).
pub const POLICY_REFUSED: &str = "IP_BLOCKED";

/// The `p`th percentile (nearest rank) of `values`, sorted here; `None`
/// when there are none.
pub fn percentile(values: &mut [i64], p: u32) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let n = values.len();
    // rank = ceil(p/100 · n), at least 1.
    let rank = (usize::try_from(p).unwrap_or(100) * n).div_ceil(100).max(1);
    values.get(rank.min(n) - 1).copied()
}

/// `part` of `whole` in percent, to one decimal; `None` when `whole` is 0
/// (nothing to show, so nothing is invented).
pub fn percent(part: i64, whole: i64) -> Option<f64> {
    if whole <= 0 {
        return None;
    }
    // Tenths of a percent, rounded half up, in integers.
    let tenths = (part.saturating_mul(2000) + whole) / (2 * whole);
    Some(tenths as f64 / 10.0)
}

/// A failed provisioning job's error (`step: reason`, as the saga writes
/// it) split into the step and the reason.
pub fn failure_step(error: &str) -> (Option<String>, String) {
    use crate::provisioning::steps::Step;
    const STEPS: [Step; 8] = [
        Step::DnsZone,
        Step::Site,
        Step::Mailboxes,
        Step::PodPlace,
        Step::PodClone,
        Step::PodConfigure,
        Step::PodStart,
        Step::Activate,
    ];
    // Only a step's own name counts as one (anything else, a host name
    // or an address before a colon, stays in the reason, to be masked).
    match error.split_once(": ") {
        Some((step, reason)) if STEPS.iter().any(|s| s.name() == step) => {
            (Some(step.to_owned()), reason.to_owned())
        }
        _ => (None, error.to_owned()),
    }
}

/// The separator between the three outputs of [`HEALTH_SCRIPT`].
pub const HEALTH_SEPARATOR: &str = "@@mpanel@@";

/// What an SSH node's health check runs in its one session.
pub const HEALTH_SCRIPT: &str =
    "cat /proc/loadavg && echo @@mpanel@@ && cat /proc/meminfo && echo @@mpanel@@ && df -P -k /";

/// The health figures of [`HEALTH_SCRIPT`]'s output: load averages,
/// memory and the root filesystem's use, in bytes. `Err` says what could
/// not be read.
pub fn parse_node_health(output: &str) -> Result<Value, String> {
    let parts: Vec<&str> = output.split(HEALTH_SEPARATOR).collect();
    let [loadavg, meminfo, df] = parts.as_slice() else {
        return Err("the health check's output has not three parts".into());
    };
    let load: Vec<f64> = loadavg
        .split_whitespace()
        .take(3)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| "unreadable /proc/loadavg".to_owned())?;
    let [l1, l5, l15] = load.as_slice() else {
        return Err("unreadable /proc/loadavg".into());
    };
    let kib = |key: &str| -> Option<u64> {
        meminfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key).then(|| v.split_whitespace().next()?.parse().ok())?
        })
    };
    let total = kib("MemTotal").ok_or("no MemTotal in /proc/meminfo")?;
    let available = kib("MemAvailable")
        .or_else(|| Some(kib("MemFree")? + kib("Buffers")? + kib("Cached")?))
        .ok_or("no MemAvailable in /proc/meminfo")?;
    // `Filesystem 1024-blocks Used Available Capacity Mounted-on`, one
    // line per filesystem (a long device name never wraps with -P).
    let fs: Vec<&str> = df
        .trim_start()
        .lines()
        .nth(1)
        .ok_or("no filesystem line from df")?
        .split_whitespace()
        .collect();
    let number = |i: usize| -> Result<u64, String> {
        fs.get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| "unreadable df output".to_owned())
    };
    let (disk_total, disk_used, disk_available) = (number(1)?, number(2)?, number(3)?);
    Ok(json!({
        "load": {"1m": l1, "5m": l5, "15m": l15},
        "memory": {
            "total_bytes": total * 1024,
            "available_bytes": available * 1024,
            "used_bytes": total.saturating_sub(available) * 1024,
        },
        "disk": {
            "path": "/",
            "total_bytes": disk_total * 1024,
            "used_bytes": disk_used * 1024,
            "available_bytes": disk_available * 1024,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        assert_eq!(percentile(&mut [], 50), None);
        assert_eq!(percentile(&mut [7], 95), Some(7));
        let mut v: Vec<i64> = (1..=100).rev().collect();
        assert_eq!(percentile(&mut v, 50), Some(50));
        assert_eq!(percentile(&mut v, 95), Some(95));
        assert_eq!(percentile(&mut [30, 10, 20], 50), Some(20));
        assert_eq!(percentile(&mut [30, 10, 20], 95), Some(30));
    }

    #[test]
    fn percentages_round_to_a_tenth_and_none_of_nothing() {
        assert_eq!(percent(1, 3), Some(33.3));
        assert_eq!(percent(2, 3), Some(66.7));
        assert_eq!(percent(3, 3), Some(100.0));
        assert_eq!(percent(0, 0), None);
    }

    #[test]
    fn a_failure_names_its_step() {
        assert_eq!(
            failure_step("hosting.account.create: ssh refused; what was made before was removed"),
            (
                Some("hosting.account.create".into()),
                "ssh refused; what was made before was removed".into()
            )
        );
        assert_eq!(failure_step("boom"), (None, "boom".into()));
        assert_eq!(failure_step("a b: c"), (None, "a b: c".into()));
    }

    #[test]
    fn node_health_reads_load_memory_and_disk() {
        let out = "0.52 0.40 0.31 1/234 5678\n@@mpanel@@\nMemTotal:        2000 kB\nMemFree:  100 kB\nMemAvailable:     500 kB\n@@mpanel@@\nFilesystem     1024-blocks    Used Available Capacity Mounted on\n/dev/sda1         1000   400   600      40% /\n";
        let h = parse_node_health(out).unwrap();
        assert_eq!(h["load"]["1m"], 0.52);
        assert_eq!(h["load"]["15m"], 0.31);
        assert_eq!(h["memory"]["total_bytes"], 2000 * 1024);
        assert_eq!(h["memory"]["used_bytes"], 1500 * 1024);
        assert_eq!(h["disk"]["used_bytes"], 400 * 1024);
        assert_eq!(h["disk"]["available_bytes"], 600 * 1024);
        assert!(parse_node_health("garbage").is_err());
        assert!(parse_node_health("x\n@@mpanel@@\n\n@@mpanel@@\n").is_err());
    }
}
