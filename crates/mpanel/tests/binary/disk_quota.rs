//! Disk quotas on the real web node: a site of a 1 MB plan gets a 2 MiB
//! file over SFTP; `mpanel hosting disk-usage` (the hourly job's work, at
//! chosen times) measures it, the API shows it over quota, and with the
//! tenant's policy at SUSPEND (after its grace) the site answers 503 and
//! refuses SFTP; once the file is gone the next measurement restores it.
//! Needs the services `scripts/test.sh` starts.

use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::provisioning_support::*;

const SFTP_PASSWORD: &str = "the customer's sftp password";
const MB: i64 = 1024 * 1024;

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Waits until the job recorded the account's `status` (it does so after
/// the node and the mailboxes).
fn status_is(panel: &Panel, domain: &str, status: &str) -> serde_json::Value {
    eventually(&format!("the account is {status}"), || {
        let shown = panel.find("/api/hosting/accounts", "name", domain);
        if shown["status"] == status {
            Ok(shown)
        } else {
            Err(format!("{shown:#}"))
        }
    })
}

#[test]
fn an_account_over_its_disk_quota_is_shown_then_suspended_by_policy_and_restored_under_it() {
    let panel = Panel::start();
    let small = panel.add_hosting_product(
        "web-tiny",
        json!({"type": "HOSTING", "dns_zone": true, "mailboxes": 1, "disk_quota_mb": 1}),
    );
    let domain = unique_domain();
    let order_id = panel.paid_order_of(&small, &domain);
    panel.wait_steps(&order_id, "COMPLETED");
    panel.wait_http("the site is served", &domain, |status, body| {
        status == 200 && body.contains(&domain)
    });
    let account = panel.find("/api/hosting/accounts", "name", &domain);
    let id = account["id"].as_str().unwrap().to_owned();
    assert_eq!(account["disk_quota_bytes"], MB, "{account:#}");
    assert_eq!(account["over_quota"], false);
    let route = format!("PUT /api/hosting/accounts/{id}/sftp");
    panel.expect(
        202,
        &panel.admin,
        &route,
        Some(json!({"password": SFTP_PASSWORD})),
    );
    panel.wait_sftp(&id, SFTP_PASSWORD, true);

    // Under quota: measured and recorded, nothing else.
    let t0 = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let report = panel.disk_usage_run(t0);
    assert!(report["accounts"].as_u64() >= Some(1), "{report:#}");
    let shown = panel.find("/api/hosting/accounts", "name", &domain);
    let small_use = shown["disk_used_bytes"].as_i64().unwrap();
    assert!(small_use > 0 && small_use < MB, "{shown:#}");
    assert_eq!(shown["disk_measured_at"], rfc3339(t0));
    assert_eq!(shown["over_quota"], false);

    // The customer uploads 2 MiB: over quota, shown, the site still
    // served (the policy is NOTIFY by default).
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![b'x'; 2 * MB as usize]).unwrap();
    let (ok, text) = panel
        .sftp(
            &id,
            SFTP_PASSWORD,
            &format!("put {} /web/big.bin\n", big.display()),
        )
        .unwrap();
    assert!(ok, "{text}");
    let t1 = t0 + Duration::hours(1);
    let report = panel.disk_usage_run(t1);
    assert_eq!(report["suspended"], 0, "{report:#}");
    let shown = panel.find("/api/hosting/accounts", "name", &domain);
    assert_eq!(shown["over_quota"], true, "{shown:#}");
    assert!(shown["disk_used_bytes"].as_i64().unwrap() >= small_use + 2 * MB);
    assert_eq!(shown["over_quota_since"], rfc3339(t1));
    assert_eq!(shown["status"], "ACTIVE");

    // SUSPEND after a 2-hour grace: not yet at +1 h, suspended at +2 h.
    let mut policy = panel.expect(200, &panel.admin, "GET /api/security/policy", None);
    policy["over_quota_action"] = json!("SUSPEND");
    policy["over_quota_grace_hours"] = json!(2);
    panel.expect(200, &panel.admin, "PUT /api/security/policy", Some(policy));
    let report = panel.disk_usage_run(t1 + Duration::hours(1));
    assert_eq!(report["suspended"], 0, "within the grace: {report:#}");
    let report = panel.disk_usage_run(t1 + Duration::hours(2));
    assert_eq!(report["suspended"], 1, "{report:#}");
    panel.wait_http("over quota: suspended", &domain, |status, _| status == 503);
    panel.wait_sftp(&id, SFTP_PASSWORD, false);
    let shown = status_is(&panel, &domain, "SUSPENDED");
    assert_eq!(shown["suspended_for_quota"], true);

    // The file is removed on the node (the customer cannot log in while
    // suspended); the next measurement finds it under and restores it.
    let user = mpanel_provision::web::account_user(id.parse().unwrap());
    let file = std::path::Path::new(panel.svc.var("WEB_ROOT_DIR"))
        .join(&user)
        .join("web/big.bin");
    std::fs::remove_file(&file).unwrap();
    let report = panel.disk_usage_run(t1 + Duration::hours(3));
    assert_eq!(report["unsuspended"], 1, "{report:#}");
    panel.wait_http("back under quota: live again", &domain, |status, body| {
        status == 200 && body.contains(&domain)
    });
    panel.wait_sftp(&id, SFTP_PASSWORD, true);
    let shown = status_is(&panel, &domain, "ACTIVE");
    assert_eq!(
        (&shown["over_quota"], &shown["suspended_for_quota"]),
        (&json!(false), &json!(false))
    );
    assert_eq!(shown["disk_measured_at"], rfc3339(t1 + Duration::hours(3)));
}
