//! The health check of SSH nodes through the real binary: `mpanel servers
//! check` reads the web and mail nodes' load, memory and disk over SSH
//! (the harness's sshd) and the operations overview shows them. Needs the
//! services `scripts/test.sh` starts.

use serde_json::Value;

use crate::provisioning_support::*;

#[test]
fn the_health_check_reads_load_memory_and_disk_of_ssh_nodes() {
    let panel = Panel::start();
    let report = panel.servers_check();
    assert!(report["checked"].as_u64().unwrap() >= 3, "{report}");

    let o = panel.expect(200, &panel.operator, "GET /api/ops/platform-overview", None);
    let nodes = o["nodes"].as_array().unwrap();
    let ssh_nodes: Vec<&Value> = nodes
        .iter()
        .filter(|n| n["role"] == "WEB" || n["role"] == "MAIL")
        .collect();
    assert!(ssh_nodes.len() >= 2, "{o}");
    for node in ssh_nodes {
        assert_eq!(node["reachable"], "UP", "{node}");
        assert!(node["last_latency_ms"].as_i64().is_some(), "{node}");
        let h = &node["health"];
        assert!(h["load"]["1m"].as_f64().unwrap() >= 0.0, "{node}");
        let total = h["memory"]["total_bytes"].as_u64().unwrap();
        assert!(
            total > 0 && h["memory"]["used_bytes"].as_u64().unwrap() <= total,
            "{node}"
        );
        let disk = h["disk"]["total_bytes"].as_u64().unwrap();
        assert!(
            disk > 0 && h["disk"]["used_bytes"].as_u64().unwrap() <= disk,
            "{node}"
        );
    }
    // The DNS server (an API, no SSH) keeps the TCP check: up, no health.
    let dns = nodes.iter().find(|n| n["role"] == "DNS").unwrap();
    assert_eq!(dns["reachable"], "UP", "{dns}");
    assert_eq!(dns["health"], Value::Null);
}
