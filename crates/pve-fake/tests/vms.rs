//! §3-§4 of the contract: clone, config, resize, power, destroy, backups.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{enc, start};
use serde_json::json;

fn is_upid(v: &serde_json::Value) -> bool {
    let s = v.as_str().unwrap_or("");
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 9
        && parts[0] == "UPID"
        && parts[2].len() == 8
        && parts[3].len() >= 8
        && parts[4].len() == 8
        && parts[7] == "mpanel@pve!ci"
        && parts[8].is_empty()
}

#[tokio::test]
async fn a_clone_is_a_task_and_the_new_vm_is_locked_until_it_ends() {
    let fake = start().await;
    let res = fake
        .post_json(
            "/nodes/pve1/qemu/9000/clone",
            json!({"newid": 120, "name": "web1"}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let upid = res.data();
    assert!(is_upid(&upid), "{upid}");
    let upid = upid.as_str().unwrap();
    // The task id is the *source* VMID.
    assert_eq!(upid.split(':').nth(5), Some("qmclone"));
    assert_eq!(upid.split(':').nth(6), Some("9000"));

    let status = fake
        .get(&format!("/nodes/pve1/tasks/{}/status", enc(upid)))
        .await
        .data();
    assert_eq!(status["status"], "running");
    assert!(status.get("exitstatus").is_none());
    assert_eq!(status["user"], "mpanel@pve");
    assert_eq!(status["tokenid"], "ci");
    let conf = fake.get("/nodes/pve1/qemu/120/config").await.data();
    assert_eq!(conf["lock"], "clone");
    let current = fake.get("/nodes/pve1/qemu/120/status/current").await.data();
    assert_eq!(current["status"], "stopped");
    assert_eq!(current["lock"], "clone");
    // Configuring before the clone ends fails at once.
    let res = fake
        .put("/nodes/pve1/qemu/120/config", &[("cores", "4")])
        .await;
    assert_eq!(res.status, 500);
    assert_eq!(res.message(), "VM is locked (clone)\n");
    // nextid skips the ID being cloned to.
    assert_eq!(fake.get("/cluster/nextid").await.data(), json!("100"));

    let status = fake.wait(upid).await;
    assert_eq!(status["exitstatus"], "OK");
    let conf = fake.get("/nodes/pve1/qemu/120/config").await.data();
    assert!(conf.get("lock").is_none());
    assert_eq!(conf["name"], "web1");
    assert_eq!(conf["memory"], "2048", "memory is a string since PVE 8.1");
    assert_eq!(conf["cores"], 2);
    assert!(conf.get("template").is_none());
    assert_eq!(
        conf["scsi0"], "local-lvm:base-9000-disk-0/vm-120-disk-0,size=10G",
        "a template clones linked by default"
    );
    let log = fake.task_log(upid).await;
    assert!(
        log.iter()
            .any(|l| l.starts_with("create linked clone of drive scsi0"))
    );
    assert_eq!(log.last().unwrap(), "TASK OK");
    // Listed under the source VMID.
    let tasks = fake.get("/nodes/pve1/tasks?vmid=9000").await.data();
    assert_eq!(tasks[0]["upid"], upid);
    assert_eq!(tasks[0]["status"], "OK");
}

#[tokio::test]
async fn cloning_to_a_taken_vmid_fails_as_documented() {
    let fake = start().await;
    // Same node: HTTP 500 before the fork.
    let res = fake
        .post("/nodes/pve1/qemu/9000/clone", &[("newid", "9001")])
        .await;
    assert_eq!(res.status, 500);
    assert_eq!(
        res.message(),
        "unable to create VM 9001: config file already exists\n"
    );
    // Another node holds it: the task fails, pmxcfs refuses the file.
    let res = fake
        .post("/nodes/pve1/qemu/9000/clone", &[("newid", "9100")])
        .await;
    assert_eq!(res.status, 200);
    let status = fake.wait(res.data().as_str().unwrap()).await;
    assert_eq!(
        status["exitstatus"],
        "clone failed: close (rename) atomic file '/etc/pve/nodes/pve1/qemu-server/9100.conf' failed: File exists"
    );
    assert_eq!(fake.vm_state(9100).await["node"], "pve2");
    // storage on a linked clone; target with local storage.
    let res = fake
        .post(
            "/nodes/pve1/qemu/9000/clone",
            &[("newid", "130"), ("storage", "local-lvm")],
        )
        .await;
    assert_eq!(
        res.message(),
        "parameter 'storage' not allowed for linked clones\n"
    );
    let res = fake
        .post(
            "/nodes/pve1/qemu/9000/clone",
            &[("newid", "130"), ("target", "pve2")],
        )
        .await;
    assert_eq!(
        res.message(),
        "can't clone VM to node 'pve2' (VM uses local storage)\n"
    );
}

#[tokio::test]
async fn an_injected_clone_failure_ends_the_task_and_removes_the_config() {
    let fake = start().await;
    fake.admin("clone-failure", json!({"error": "copy failed: disk full"}))
        .await;
    let res = fake
        .post(
            "/nodes/pve1/qemu/9000/clone",
            &[("newid", "121"), ("full", "1")],
        )
        .await;
    let status = fake.wait(res.data().as_str().unwrap()).await;
    assert_eq!(status["exitstatus"], "clone failed: copy failed: disk full");
    let res = fake.get("/nodes/pve1/qemu/121/config").await;
    assert_eq!(res.status, 500);
    assert_eq!(
        res.message(),
        "Configuration file 'nodes/pve1/qemu-server/121.conf' does not exist\n"
    );
}

#[tokio::test]
async fn a_config_write_checks_the_digest_and_stopped_vms_take_it_at_once() {
    let fake = start().await;
    fake.clone_template(120).await;
    let conf = fake.get("/nodes/pve1/qemu/120/config").await.data();
    let digest = conf["digest"].as_str().unwrap().to_owned();
    assert_eq!(digest.len(), 40);
    let res = fake
        .put(
            "/nodes/pve1/qemu/120/config",
            &[
                ("cores", "4"),
                ("memory", "4096"),
                ("cipassword", "s3cret"),
                ("digest", &digest),
            ],
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(res.json(), json!({"data": null}));
    // The old digest is now stale.
    let res = fake
        .put(
            "/nodes/pve1/qemu/120/config",
            &[("cores", "8"), ("digest", &digest)],
        )
        .await;
    assert_eq!(res.status, 500);
    assert_eq!(
        res.message(),
        "checksum mismatch (file change by other user?)\n"
    );
    let conf = fake.get("/nodes/pve1/qemu/120/config").await.data();
    assert_eq!(conf["cores"], 4);
    assert_eq!(conf["memory"], "4096");
    assert_eq!(conf["cipassword"], "**********");
    assert_ne!(conf["digest"], digest.as_str());
    let state = fake.vm_state(120).await;
    assert_eq!(state["cores"], 4);
    assert_eq!(state["memory_mib"], 4096);
    // Nothing to change.
    let res = fake.put("/nodes/pve1/qemu/120/config", &[]).await;
    assert_eq!(res.message(), "no options specified\n");
    // POST is a task.
    let res = fake
        .post("/nodes/pve1/qemu/120/config", &[("cores", "6")])
        .await;
    let status = fake.wait(res.data().as_str().unwrap()).await;
    assert_eq!(status["type"], "qmconfig");
    assert_eq!(status["exitstatus"], "OK");
    assert_eq!(fake.vm_state(120).await["cores"], 6);
}

#[tokio::test]
async fn a_running_vm_keeps_changes_pending_until_restarted() {
    let fake = start().await;
    fake.clone_template(120).await;
    let res = fake.post("/nodes/pve1/qemu/120/status/start", &[]).await;
    fake.wait(res.data().as_str().unwrap()).await;
    fake.put("/nodes/pve1/qemu/120/config", &[("cores", "4")])
        .await;
    assert_eq!(
        fake.get("/nodes/pve1/qemu/120/config").await.data()["cores"],
        4
    );
    assert_eq!(
        fake.get("/nodes/pve1/qemu/120/config?current=1")
            .await
            .data()["cores"],
        2
    );
    let res = fake.post("/nodes/pve1/qemu/120/status/reboot", &[]).await;
    fake.wait(res.data().as_str().unwrap()).await;
    assert_eq!(
        fake.get("/nodes/pve1/qemu/120/config?current=1")
            .await
            .data()["cores"],
        4
    );
}

#[tokio::test]
async fn sshkeys_must_be_percent_encoded_without_plus() {
    let fake = start().await;
    fake.clone_template(120).await;
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHb8r0C2Kk4E0Rj6iP0aQ5W1e2Z3Kx9Yv8J7o6QmP+1a user@host";
    // quote_plus style: spaces as '+'.
    let plus = key
        .replace('+', "%2B")
        .replace(' ', "+")
        .replace('@', "%40");
    let res = fake
        .put("/nodes/pve1/qemu/120/config", &[("sshkeys", &plus)])
        .await;
    assert_eq!(res.status, 400);
    assert!(
        res.json()["errors"]["sshkeys"]
            .as_str()
            .unwrap()
            .starts_with("invalid format - invalid urlencoded string: ")
    );
    let encoded = enc(key).replace(' ', "%20").replace('+', "%2B");
    let res = fake
        .put("/nodes/pve1/qemu/120/config", &[("sshkeys", &encoded)])
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(fake.vm_state(120).await["sshkeys"], encoded.as_str());
    assert_eq!(
        fake.get("/nodes/pve1/qemu/120/config").await.data()["sshkeys"],
        encoded.as_str(),
        "GET config returns it still encoded"
    );
    let res = fake
        .put(
            "/nodes/pve1/qemu/120/config",
            &[("sshkeys", "not%20a%20key")],
        )
        .await;
    assert_eq!(res.status, 500);
    assert_eq!(res.message(), "SSH public key validation error\n");
}

#[tokio::test]
async fn a_shrinking_resize_is_accepted_over_http_and_fails_in_the_task() {
    let fake = start().await;
    fake.clone_template(120).await;
    let res = fake
        .put(
            "/nodes/pve1/qemu/120/resize",
            &[("disk", "scsi0"), ("size", "5G")],
        )
        .await;
    assert_eq!(res.status, 200);
    let status = fake.wait(res.data().as_str().unwrap()).await;
    assert_eq!(status["type"], "resize");
    assert_eq!(status["exitstatus"], "shrinking disks is not supported");
    // Same size is a no-op; + is relative; a bare number is bytes.
    for (size, expect) in [
        ("10G", 10u64 << 30),
        ("+1G", 11 << 30),
        ("12884901888", 12 << 30),
    ] {
        let res = fake
            .put(
                "/nodes/pve1/qemu/120/resize",
                &[("disk", "scsi0"), ("size", size)],
            )
            .await;
        assert_eq!(
            fake.wait(res.data().as_str().unwrap()).await["exitstatus"],
            "OK"
        );
        assert_eq!(
            fake.vm_state(120).await["disk_bytes"]["scsi0"],
            expect,
            "{size}"
        );
    }
    assert_eq!(
        fake.get("/nodes/pve1/qemu/120/config").await.data()["scsi0"],
        "local-lvm:base-9000-disk-0/vm-120-disk-0,size=12G"
    );
    let res = fake
        .put(
            "/nodes/pve1/qemu/120/resize",
            &[("disk", "scsi3"), ("size", "+1G")],
        )
        .await;
    assert_eq!(
        fake.wait(res.data().as_str().unwrap()).await["exitstatus"],
        "disk 'scsi3' does not exist"
    );
    let res = fake
        .put(
            "/nodes/pve1/qemu/120/resize",
            &[("disk", "scsi0"), ("size", "big")],
        )
        .await;
    assert_eq!(res.status, 400);
}

#[tokio::test]
async fn power_actions_follow_qemu_server() {
    let fake = start().await;
    fake.clone_template(120).await;
    let res = fake.post("/nodes/pve1/qemu/120/status/start", &[]).await;
    let first = fake.wait(res.data().as_str().unwrap()).await;
    assert_eq!(first["exitstatus"], "OK");
    assert_eq!(first["type"], "qmstart");
    let res = fake.post("/nodes/pve1/qemu/120/status/start", &[]).await;
    assert_eq!(res.status, 200);
    let second = fake.wait(res.data().as_str().unwrap()).await;
    assert_eq!(second["exitstatus"], "VM 120 already running");

    let cur = fake.get("/nodes/pve1/qemu/120/status/current").await.data();
    assert_eq!(cur["status"], "running");
    assert_eq!(cur["qmpstatus"], "running");
    assert_eq!(cur["maxmem"], json!(2048u64 << 20));
    assert_eq!(cur["maxdisk"], json!(10u64 << 30));
    let before = cur["netin"].as_u64().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    let after = fake.get("/nodes/pve1/qemu/120/status/current").await.data()["netin"]
        .as_u64()
        .unwrap();
    assert!(after > before, "netin grows while running");

    // Delete needs a stopped VM.
    let res = fake
        .delete("/nodes/pve1/qemu/120?purge=1&destroy-unreferenced-disks=1")
        .await;
    assert_eq!(res.status, 500);
    assert_eq!(res.message(), "VM 120 is running - destroy failed\n");

    // Paused: shutdown refused, status running / qmpstatus paused.
    let res = fake.post("/nodes/pve1/qemu/120/status/suspend", &[]).await;
    fake.wait(res.data().as_str().unwrap()).await;
    let cur = fake.get("/nodes/pve1/qemu/120/status/current").await.data();
    assert_eq!(
        (cur["status"].as_str(), cur["qmpstatus"].as_str()),
        (Some("running"), Some("paused"))
    );
    let res = fake.post("/nodes/pve1/qemu/120/status/shutdown", &[]).await;
    assert_eq!(res.message(), "VM is paused - cannot shutdown\n");
    // reset and resume take no timeout.
    let res = fake
        .post("/nodes/pve1/qemu/120/status/resume", &[("timeout", "30")])
        .await;
    assert_eq!(res.status, 400);
    let res = fake.post("/nodes/pve1/qemu/120/status/stop", &[]).await;
    assert_eq!(
        fake.wait(res.data().as_str().unwrap()).await["exitstatus"],
        "OK"
    );
    // Stopping a stopped VM is fine; rebooting it is not.
    let res = fake.post("/nodes/pve1/qemu/120/status/stop", &[]).await;
    assert_eq!(
        fake.wait(res.data().as_str().unwrap()).await["exitstatus"],
        "OK"
    );
    let res = fake.post("/nodes/pve1/qemu/120/status/reboot", &[]).await;
    assert_eq!(res.message(), "VM 120 not running\n");
    // A template cannot start.
    let res = fake.post("/nodes/pve1/qemu/9000/status/start", &[]).await;
    assert_eq!(
        fake.wait(res.data().as_str().unwrap()).await["exitstatus"],
        "you can't start a vm if it's a template"
    );

    let res = fake
        .delete("/nodes/pve1/qemu/120?purge=1&destroy-unreferenced-disks=1")
        .await;
    assert_eq!(res.status, 200);
    let status = fake.wait(res.data().as_str().unwrap()).await;
    assert_eq!(status["type"], "qmdestroy");
    assert_eq!(status["exitstatus"], "OK");
    assert_eq!(fake.get("/nodes/pve1/qemu/120/config").await.status, 500);
    // The ID is handed out again at once.
    assert_eq!(fake.get("/cluster/nextid").await.data(), json!("100"));
}

#[tokio::test]
async fn rrddata_has_float_rates_and_empty_buckets_hold_only_time() {
    let fake = start().await;
    fake.clone_template(120).await;
    let rows = fake
        .get("/nodes/pve1/qemu/120/rrddata?timeframe=hour")
        .await
        .data();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 60);
    assert_eq!(
        rows[0].as_object().unwrap().len(),
        1,
        "before the VM existed: time only"
    );
    // The templates have existed for a day: every bucket has values.
    let rows = fake
        .get("/nodes/pve1/qemu/9000/rrddata?timeframe=hour")
        .await
        .data();
    let last = rows.as_array().unwrap().last().unwrap().clone();
    assert!(last["netin"].is_f64() && last["cpu"].is_f64(), "{last}");
    assert_eq!(last["maxdisk"], json!((10u64 << 30) as f64));
}

#[tokio::test]
async fn a_held_flock_times_out_config_writes() {
    let fake = start().await;
    fake.clone_template(120).await;
    fake.admin("flock", json!({"vmid": 120, "count": 1})).await;
    let res = fake
        .put("/nodes/pve1/qemu/120/config", &[("cores", "4")])
        .await;
    assert_eq!(res.status, 500);
    assert_eq!(
        res.message(),
        "can't lock file '/var/lock/qemu-server/lock-120.conf' - got timeout\n"
    );
    assert_eq!(
        fake.put("/nodes/pve1/qemu/120/config", &[("cores", "4")])
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn injected_warnings_are_a_success_status() {
    let fake = start().await;
    fake.clone_template(120).await;
    fake.admin("warnings", json!({"type": "qmdestroy", "count": 2}))
        .await;
    let res = fake.delete("/nodes/pve1/qemu/120").await;
    let upid = res.data().as_str().unwrap().to_owned();
    assert_eq!(fake.wait(&upid).await["exitstatus"], "WARNINGS: 2");
    assert_eq!(
        fake.task_log(&upid).await.last().unwrap(),
        "TASK WARNINGS: 2"
    );
}

#[tokio::test]
async fn a_backup_locks_the_vm_lists_an_archive_and_restores() {
    let fake = start().await;
    fake.clone_template(120).await;
    let res = fake
        .post_json(
            "/nodes/pve1/vzdump",
            json!({"vmid": "120", "storage": "local", "mode": "snapshot", "compress": "zstd"}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let upid = res.data().as_str().unwrap().to_owned();
    assert_eq!(upid.split(':').nth(6), Some("120"));
    let cur = fake.get("/nodes/pve1/qemu/120/status/current").await.data();
    assert_eq!(cur["lock"], "backup");
    assert_eq!(
        (cur["status"].as_str(), cur["qmpstatus"].as_str()),
        (Some("running"), Some("prelaunch"))
    );
    let res = fake.delete("/nodes/pve1/qemu/120").await;
    assert_eq!(res.message(), "VM 120 is running - destroy failed\n");
    // A second job on the node waits for the first.
    let second = fake
        .post("/nodes/pve1/vzdump", &[("vmid", "120")])
        .await
        .data();
    assert_eq!(fake.wait(&upid).await["exitstatus"], "OK");
    let log = fake.task_log(&upid).await;
    assert!(log.iter().any(|l| {
        l.starts_with("INFO: creating vzdump archive '/var/lib/vz/dump/vzdump-qemu-120-")
    }));
    assert!(
        log.iter()
            .any(|l| l == "INFO: Backup job finished successfully")
    );
    assert_eq!(
        fake.wait(second.as_str().unwrap()).await["exitstatus"],
        "OK"
    );

    let list = fake
        .get("/nodes/pve1/storage/local/content?content=backup&vmid=120")
        .await
        .data();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let volid = list[0]["volid"].as_str().unwrap().to_owned();
    assert!(
        volid.starts_with("local:backup/vzdump-qemu-120-") && volid.ends_with(".vma.zst"),
        "{volid}"
    );
    assert_eq!(list[0]["format"], "vma.zst");
    assert_eq!(list[0]["subtype"], "qemu");
    let cur = fake.get("/nodes/pve1/qemu/120/status/current").await.data();
    assert_eq!(cur["status"], "stopped");
    assert!(cur.get("lock").is_none());

    // None of the VMs on this node: a silent "OK".
    assert_eq!(
        fake.post("/nodes/pve2/vzdump", &[("vmid", "120")])
            .await
            .data(),
        json!("OK")
    );

    // Restore over the VM with force.
    fake.put("/nodes/pve1/qemu/120/config", &[("cores", "8")])
        .await;
    let res = fake
        .post_json(
            "/nodes/pve1/qemu",
            json!({"vmid": 120, "archive": volid, "force": true}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    assert_eq!(
        fake.get("/nodes/pve1/qemu/120/config").await.data()["lock"],
        "create"
    );
    assert_eq!(
        fake.wait(res.data().as_str().unwrap()).await["exitstatus"],
        "OK"
    );
    assert_eq!(fake.vm_state(120).await["cores"], 2);
    let res = fake
        .post_json("/nodes/pve1/qemu", json!({"vmid": 120, "archive": volid}))
        .await;
    assert_eq!(
        res.message(),
        "unable to restore VM 120 - VM 120 already exists on node 'pve1'\n"
    );

    // Delete the archive: the volume (with its slash) URL-encoded in the path.
    let res = fake
        .delete(&format!(
            "/nodes/pve1/storage/local/content/{}",
            enc(&volid)
        ))
        .await;
    assert_eq!(res.status, 200, "{}", res.text);
    let status = fake.wait(res.data().as_str().unwrap()).await;
    assert_eq!(status["type"], "imgdel");
    assert_eq!(status["exitstatus"], "OK");
    let list = fake
        .get("/nodes/pve1/storage/local/content?content=backup&vmid=120")
        .await
        .data();
    assert_eq!(list.as_array().unwrap().len(), 1);
    let res = fake
        .delete(&format!(
            "/nodes/pve1/storage/local-lvm/content/{}",
            enc(&volid)
        ))
        .await;
    assert_eq!(res.status, 400);
}

#[tokio::test]
async fn a_backup_of_a_locked_vm_ends_with_job_errors() {
    let fake = start().await;
    let res = fake
        .post("/nodes/pve1/qemu/9000/clone", &[("newid", "120")])
        .await;
    let clone = res.data().as_str().unwrap().to_owned();
    let res = fake.post("/nodes/pve1/vzdump", &[("vmid", "120")]).await;
    let upid = res.data().as_str().unwrap().to_owned();
    assert_eq!(fake.wait(&upid).await["exitstatus"], "job errors");
    let log = fake.task_log(&upid).await;
    assert!(
        log.iter()
            .any(|l| l == "ERROR: Backup of VM 120 failed - VM is locked (clone)")
    );
    fake.wait(&clone).await;
}
