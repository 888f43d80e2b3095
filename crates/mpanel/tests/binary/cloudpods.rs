//! CloudPods end to end through the real binary against the Proxmox VE
//! fake: a paid order becomes a running VM of its plan, it is resized
//! (prorated), suspended for an unpaid renewal and restored by paying,
//! and deleted with nothing left on the cluster.

use serde_json::{Value, json};

use crate::cloudpods_support::*;
use crate::provisioning_support::*;

fn gib(n: u64) -> u64 {
    n << 30
}

fn first_disk(vm: &Value) -> u64 {
    vm["disk_bytes"]
        .as_object()
        .and_then(|d| d.values().next())
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

#[test]
fn a_paid_order_becomes_a_running_vm_that_is_resized_suspended_restored_and_deleted() {
    let pods = Pods::start();
    let panel = &pods.panel;
    let order = pods.order(
        "PRO",
        "pi_pod_1",
        json!({"hostname": "pod1.example.org", "ssh_keys": [SSH_KEY]}),
    );
    panel.wait_steps(&order, "COMPLETED");
    let sub = pods.subscription_of(&order);
    let pod = pods.wait_pod(&sub, "ACTIVE");
    let vmid = pod["vmid"].as_u64().unwrap();
    assert!(vmid >= 1000, "{pod:#}");
    assert_eq!(pod["ipv4"], "203.0.113.10", "{pod:#}");
    assert!(pod["node"].is_string(), "{pod:#}");
    let vm = pods.pve.vm(vmid);
    assert_eq!(vm["status"], "running", "{vm:#}");
    assert_eq!(
        (vm["cores"].as_u64(), vm["memory_mib"].as_u64()),
        (Some(2), Some(2048)),
        "{vm:#}"
    );
    assert_eq!(first_disk(&vm), gib(50), "{vm:#}");
    let keys = vm["sshkeys"].as_str().unwrap_or_default();
    assert!(
        keys.contains("AAAAC3NzaC1lZDI1NTE5AAAAIHQ3kKIv3dZ0kd6J3fF2m8s0Qxq2cXx4n0Q0yWw4pL8c"),
        "{vm:#}"
    );
    assert_eq!(
        vm["config"]["ipconfig0"], "ip=203.0.113.10/24,gw=203.0.113.1",
        "{vm:#}"
    );
    assert_eq!(vm["name"], "pod1.example.org", "{vm:#}");

    // Up to BUSINESS: prorated, and the VM follows.
    let id = pod["id"].as_str().unwrap();
    let resize = format!("POST /api/cloudpods/{id}/resize");
    let v = panel.expect(
        200,
        &panel.admin,
        &resize,
        Some(json!({"product_id": pods.plans["BUSINESS"]})),
    );
    assert!(v["proration"]["invoice_id"].is_string(), "{v:#}");
    eventually("the VM has the BUSINESS plan", || {
        let vm = pods.pve.vm(vmid);
        let got = (
            vm["cores"].as_u64(),
            vm["memory_mib"].as_u64(),
            first_disk(&vm),
        );
        if got == (Some(4), Some(4096), gib(100)) {
            Ok(())
        } else {
            Err(format!("{vm:#}"))
        }
    });
    // Down to MINI: its disk is smaller, refused, nothing changed.
    let (status, v) = panel.call(
        &panel.admin,
        &resize,
        Some(json!({"product_id": pods.plans["MINI"]})),
    );
    assert_eq!(status, 422, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("only grows"),
        "{v}"
    );

    // Delete: the subscription ends, the VM goes, the VMID and address are free.
    let v = panel.expect(
        202,
        &panel.admin,
        &format!("DELETE /api/cloudpods/{id}"),
        None,
    );
    assert_eq!(v["pod"]["id"], id, "{v}");
    let gone = pods.wait_pod(&sub, "DELETED");
    assert!(gone["vmid"].is_null() && gone["ipv4"].is_null(), "{gone:#}");
    assert!(pods.pve.vm(vmid).is_null(), "the VM is destroyed");
    let (status, _) = panel.call(&panel.admin, &format!("DELETE /api/cloudpods/{id}"), None);
    assert_eq!(status, 409);
}

#[test]
fn an_unpaid_renewal_stops_the_pod_and_paying_starts_it_again() {
    let pods = Pods::start();
    let panel = &pods.panel;
    let order = pods.order("MINI", "pi_pod_dunning", json!({}));
    panel.wait_steps(&order, "COMPLETED");
    let sub = pods.subscription_of(&order);
    let pod = pods.wait_pod(&sub, "ACTIVE");
    let vmid = pod["vmid"].as_u64().unwrap();

    let renewal = time::OffsetDateTime::now_utc() + time::Duration::days(32);
    assert_eq!(panel.billing_run(renewal)["invoices"], 1);
    let (_, page) = panel.call(
        &panel.admin,
        "GET /api/billing/invoices?status=ISSUED",
        None,
    );
    let invoice = page["items"][0].clone();
    let overdue = renewal + time::Duration::days(14 + 7) + time::Duration::hours(1);
    assert_eq!(panel.billing_run(overdue)["suspended"], 1);
    let suspended = pods.wait_pod(&sub, "SUSPENDED");
    assert_eq!(suspended["suspended_by"], "BILLING", "{suspended:#}");
    assert_eq!(pods.pve.vm(vmid)["status"], "stopped");

    let pay = format!(
        "POST /api/billing/invoices/{}/pay",
        invoice["id"].as_str().unwrap()
    );
    let body = json!({"amount_minor": invoice["total_minor"], "provider": "BANK_TRANSFER", "reference": "bank-pod"});
    panel.expect(201, &panel.admin, &pay, Some(body));
    let back = pods.wait_pod(&sub, "ACTIVE");
    assert!(back["suspended_by"].is_null(), "{back:#}");
    assert_eq!(pods.pve.vm(vmid)["status"], "running");
}

#[test]
fn twenty_pods_ordered_at_once_get_distinct_vmids_and_addresses_and_leave_nothing_behind() {
    let pods = Pods::start();
    let panel = &pods.panel;
    let orders: Vec<String> = (0..20)
        .map(|n| pods.order("MINI", &format!("pi_many_{n}"), json!({})))
        .collect();
    let subs: Vec<String> = orders.iter().map(|o| pods.subscription_of(o)).collect();
    let active: Vec<Value> = subs.iter().map(|s| pods.wait_pod(s, "ACTIVE")).collect();
    let mut vmids: Vec<u64> = active.iter().map(|p| p["vmid"].as_u64().unwrap()).collect();
    let mut ips: Vec<String> = active
        .iter()
        .map(|p| p["ipv4"].as_str().unwrap().to_owned())
        .collect();
    vmids.sort_unstable();
    vmids.dedup();
    ips.sort();
    ips.dedup();
    assert_eq!((vmids.len(), ips.len()), (20, 20), "{active:#?}");
    let nodes: std::collections::BTreeSet<_> = active
        .iter()
        .map(|p| p["node"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(nodes.len(), 2, "spread over both nodes: {nodes:?}");
    assert_eq!(pods.pve.vms().len(), 20);

    for pod in &active {
        let id = pod["id"].as_str().unwrap();
        panel.expect(
            202,
            &panel.admin,
            &format!("DELETE /api/cloudpods/{id}"),
            None,
        );
    }
    for sub in &subs {
        pods.wait_pod(sub, "DELETED");
    }
    assert!(pods.pve.vms().is_empty(), "{:#?}", pods.pve.vms());
}

/// The order's only step that failed, and the pod it left.
fn failed(pods: &Pods, order: &str) -> (String, Value) {
    let dead = pods.panel.wait_steps(order, "DEAD");
    let steps = dead["items"][0]["steps"].as_array().unwrap();
    let error = steps
        .iter()
        .find(|s| s["state"] == "DEAD")
        .and_then(|s| s["last_error"].as_str())
        .unwrap_or_default()
        .to_owned();
    let pod = pods.wait_pod(&pods.subscription_of(order), "FAILED");
    assert!(
        pod["vmid"].is_null() && pod["ipv4"].is_null(),
        "freed: {pod:#}"
    );
    (error, pod)
}

#[test]
fn a_failed_clone_a_revoked_token_and_a_wrong_fingerprint_leave_nothing_half_made() {
    let pods = Pods::start();
    let panel = &pods.panel;

    // The clone task ends with an error although the call said 200.
    pods.pve.admin(
        "clone-failure",
        json!({"error": "storage 'local-lvm' is full"}),
    );
    let order = pods.order("MINI", "pi_clone_fails", json!({}));
    let (error, pod) = failed(&pods, &order);
    assert!(error.contains("storage 'local-lvm' is full"), "{error}");
    assert!(
        pod["last_error"]
            .as_str()
            .unwrap_or_default()
            .contains("is full"),
        "{pod:#}"
    );
    assert!(pods.pve.vms().is_empty(), "{:#?}", pods.pve.vms());

    // The API token is revoked: a clear reason, nothing made.
    pods.pve.admin("token/revoke", json!({}));
    let order = pods.order("MINI", "pi_token_revoked", json!({}));
    let (error, _) = failed(&pods, &order);
    assert!(error.contains("401"), "{error}");
    assert!(pods.pve.vms().is_empty());
    pods.pve.admin("token/restore", json!({}));

    // A pinned fingerprint that is not the cluster's: refused before any
    // request (so the token is never sent).
    let servers = panel.expect(200, &panel.operator, "GET /api/servers?role=CLOUD", None);
    let id = servers["items"][0]["id"].as_str().unwrap();
    let mut settings = servers["items"][0]["settings"].clone();
    settings["fingerprint"] = json!(["AB"; 32].join(":"));
    panel.expect(
        200,
        &panel.operator,
        &format!("PATCH /api/servers/{id}"),
        Some(json!({"settings": settings})),
    );
    let tasks_before = pods.pve.run.state()["tasks"].as_array().unwrap().len();
    let order = pods.order("MINI", "pi_wrong_pin", json!({}));
    let (error, _) = failed(&pods, &order);
    assert!(error.contains("fingerprint"), "{error}");
    assert_eq!(
        pods.pve.run.state()["tasks"].as_array().unwrap().len(),
        tasks_before
    );
    assert!(pods.pve.vms().is_empty());
}

#[test]
fn a_cluster_unreachable_during_provisioning_is_retried_until_it_is_back() {
    let pods = Pods::start();
    let panel = &pods.panel;
    pods.pve.admin("nodes/pve1/offline", json!({}));
    pods.pve.admin("nodes/pve2/offline", json!({}));
    let order = pods.order("MINI", "pi_offline", json!({}));
    let waiting = panel.wait_steps(&order, "FAILED");
    assert!(waiting.to_string().contains("online"), "{waiting:#}");
    pods.pve.admin("nodes/pve1/online", json!({}));
    pods.pve.admin("nodes/pve2/online", json!({}));
    panel.wait_steps(&order, "COMPLETED");
    pods.wait_pod(&pods.subscription_of(&order), "ACTIVE");

    // A 596 on the clone call: the outcome is unknown, so the next
    // attempt looks at the VM instead of cloning twice.
    pods.pve
        .admin("timeout", json!({"count": 1, "perform": true}));
    let order = pods.order("MINI", "pi_timeout", json!({}));
    panel.wait_steps(&order, "COMPLETED");
    pods.wait_pod(&pods.subscription_of(&order), "ACTIVE");
    assert_eq!(pods.pve.vms().len(), 2);
}

#[test]
fn a_cluster_is_registered_with_its_settings_checked_and_its_nodes_read() {
    let pods = Pods::start();
    let panel = &pods.panel;
    let good = pods.pve.server(&pods.pve.run.fingerprint);
    for (path, value, field) in [
        (
            "/settings/fingerprint",
            json!("not-a-fingerprint"),
            "settings.fingerprint",
        ),
        (
            "/settings/templates/debian-12/pve9",
            json!(9900),
            "settings.templates",
        ),
        (
            "/settings/ipv4_pool/first",
            json!("198.51.100.7"),
            "settings.ipv4_pool",
        ),
        ("/credentials/key", json!("no-token-id"), "credentials.key"),
        (
            "/credentials/url",
            json!("http://127.0.0.1:8006/api2/json"),
            "credentials.url",
        ),
    ] {
        let mut body = good.clone();
        body["name"] = json!(format!("bad {field}"));
        let (parent, key) = path.rsplit_once('/').unwrap();
        body.pointer_mut(parent).unwrap()[key] = value;
        let (status, v) = panel.call(&panel.operator, "POST /api/servers", Some(body));
        assert_eq!((status, v["field"].as_str()), (422, Some(field)), "{v}");
    }

    assert_eq!(panel.servers_check()["checked"], 1);
    let servers = panel.expect(200, &panel.operator, "GET /api/servers?role=CLOUD", None);
    let cluster = &servers["items"][0];
    assert!(cluster["last_error"].is_null(), "{cluster:#}");
    let nodes = cluster["health"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{cluster:#}");
    assert!(
        nodes
            .iter()
            .all(|n| n["online"] == true && n["maxmem"].as_u64() > Some(0)),
        "{cluster:#}"
    );

    pods.pve.admin("nodes/pve2/offline", json!({}));
    pods.pve.admin("token/revoke", json!({}));
    panel.servers_check();
    let servers = panel.expect(200, &panel.operator, "GET /api/servers?role=CLOUD", None);
    let error = servers["items"][0]["last_error"]
        .as_str()
        .unwrap_or_default();
    assert!(error.contains("401"), "{servers:#}");
    pods.pve.admin("token/restore", json!({}));
    panel.servers_check();
    let servers = panel.expect(200, &panel.operator, "GET /api/servers?role=CLOUD", None);
    let pve2 = servers["items"][0]["health"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "pve2")
        .cloned()
        .unwrap();
    assert_eq!(pve2["online"], false, "{servers:#}");
}

#[test]
fn backups_are_made_listed_pruned_to_seven_and_restored() {
    let pods = Pods::start();
    let panel = &pods.panel;
    let order = pods.order("MINI", "pi_backups", json!({}));
    panel.wait_steps(&order, "COMPLETED");
    let pod = pods.wait_pod(&pods.subscription_of(&order), "ACTIVE");
    let id = pod["id"].as_str().unwrap();
    let vmid = pod["vmid"].as_u64().unwrap();
    let route = format!("/api/cloudpods/{id}/backups");
    let done = |n: usize| {
        eventually(&format!("{n} backups DONE"), || {
            let list = panel.expect(200, &panel.admin, &format!("GET {route}"), None);
            let items = list["items"].as_array().unwrap().clone();
            if items.len() == n && items.iter().all(|b| b["status"] == "DONE") {
                Ok(items)
            } else {
                Err(format!("{list:#}"))
            }
        })
    };
    for n in 1..=8 {
        let v = panel.expect(202, &panel.admin, &format!("POST {route}"), None);
        assert_eq!(v["backup"]["status"], "RUNNING", "{v}");
        done(n.min(7));
    }
    let kept = done(7);
    let archives: Vec<Value> = pods.pve.run.state()["backups"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["vmid"] == vmid)
        .cloned()
        .collect();
    assert_eq!(
        archives.len(),
        7,
        "the oldest archive was pruned: {archives:#?}"
    );
    for b in &kept {
        assert!(archives.iter().any(|a| a["volid"] == b["volid"]), "{b}");
    }

    let newest = kept[0]["id"].as_str().unwrap();
    let v = panel.expect(
        202,
        &panel.admin,
        &format!("POST {route}/{newest}/restore"),
        None,
    );
    assert!(v["job_id"].is_string(), "{v}");
    panel.wait_job(v["job_id"].as_str().unwrap());
    let tasks = pods.pve.run.state()["tasks"].as_array().unwrap().clone();
    assert!(tasks.iter().any(|t| t["type"] == "qmrestore"), "{tasks:#?}");
    assert_eq!(pods.pve.vm(vmid)["status"], "running");
    let (status, _) = panel.call(
        &panel.admin,
        &format!("POST {route}/{}/restore", uuid_like()),
        None,
    );
    assert_eq!(status, 404);

    // A deleted pod leaves no archive behind.
    panel.expect(
        202,
        &panel.admin,
        &format!("DELETE /api/cloudpods/{id}"),
        None,
    );
    pods.wait_pod(&pods.subscription_of(&order), "DELETED");
    let left: Vec<Value> = pods.pve.run.state()["backups"].as_array().unwrap().clone();
    assert!(left.iter().all(|b| b["vmid"] != vmid), "{left:#?}");
}

fn uuid_like() -> &'static str {
    "01900000-0000-7000-8000-000000000000"
}

#[test]
fn a_pods_metered_transfer_is_billed_at_the_next_renewal_by_the_plans_tiers() {
    let pods = Pods::start();
    let panel = &pods.panel;
    // A plan of 9.99 a month with its first 10 GB of transfer free, then
    // 0.50 per GB.
    let product = json!({"name": "MINI metered", "slug": "mini-metered", "category": "CLOUDPOD",
        "billing_model": "USAGE_TIERED", "status": "ACTIVE", "visibility": "PUBLIC", "base_currency": "EUR",
        "provisioning_template": {"type": "CLOUD_POD", "plan": "MINI", "vcpus": 1, "memory_mb": 1024, "disk_gb": 20},
        "usage": {"metric": "bandwidth_gb", "tier_mode": "GRADUATED",
            "tiers": [{"up_to": 10, "unit_price": "0"}, {"up_to": null, "unit_price": "0.50"}]}});
    let v = panel.expect(
        201,
        &panel.admin,
        "POST /api/billing/products",
        Some(product),
    );
    let id = v["id"].as_str().unwrap().to_owned();
    let price = json!({"period": "MONTHLY", "currency": "EUR", "amount_minor": 999});
    panel.expect(
        201,
        &panel.admin,
        &format!("POST /api/billing/products/{id}/prices"),
        Some(price),
    );
    let mut plans = pods.plans.clone();
    plans.insert("MINI", id);
    let pods = Pods { plans, ..pods };
    let order = pods.order("MINI", "pi_metered", json!({}));
    pods.panel.wait_steps(&order, "COMPLETED");
    let sub = pods.subscription_of(&order);
    let pod = pods.wait_pod(&sub, "ACTIVE");
    let vmid = pod["vmid"].as_u64().unwrap();

    // 25.4 GB leave the VM: 25 whole GB are recorded, the rest waits.
    pods.pve
        .admin("traffic", json!({"vmid": vmid, "bytes": 25_400_000_000u64}));
    let report = pods.panel.cloudpods_run("usage");
    assert_eq!(report["recorded"], 1, "{report}");
    assert_eq!(
        pods.panel.cloudpods_run("usage")["recorded"],
        0,
        "nothing new to record"
    );
    let pod = pods.wait_pod(&sub, "ACTIVE");
    assert!(
        pod["usage"]["net_out_bytes"].as_u64().unwrap() >= 25_400_000_000,
        "{pod:#}"
    );
    assert_eq!(pod["quota"]["memory_mb"], 1024);

    // The renewal bills the month and 15 GB beyond the free 10 at 0.50.
    let renewal = time::OffsetDateTime::now_utc() + time::Duration::days(32);
    assert_eq!(pods.panel.billing_run(renewal)["invoices"], 1);
    let (_, page) = pods.panel.call(
        &pods.panel.admin,
        "GET /api/billing/invoices?status=ISSUED",
        None,
    );
    let invoice = &page["items"][0];
    assert_eq!(invoice["subtotal_minor"], 999 + 750, "{page:#}");
}
