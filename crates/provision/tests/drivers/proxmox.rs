//! The Proxmox VE client against the in-repo fake (`mpanel-pve-fake`),
//! started in-process on loopback: no external service needed.

use std::sync::Arc;
use std::time::Duration;

use mpanel_provision::DriverError;
use mpanel_provision::proxmox::{
    CloneRequest, Cluster, Power, TaskEnd, TaskState, Upid, encode_ssh_keys,
};
use mpanel_pve_fake::{Config, Running, serve};
use serde_json::{Value, json};

const EVERY: Duration = Duration::from_millis(25);
const DEADLINE: Duration = Duration::from_secs(10);
const GIB: u64 = 1 << 30;

struct Fake {
    run: Running,
    /// Trusts the fake's certificate, for the admin API.
    admin: reqwest::Client,
}

impl Fake {
    async fn start() -> Self {
        let run = serve(Config {
            task_duration: Duration::from_millis(150),
            auth_delay: Duration::from_millis(50),
            ..Config::default()
        })
        .await
        .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from(
                run.cert_der.clone(),
            ))
            .unwrap();
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let admin = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .build()
            .unwrap();
        Self { run, admin }
    }

    fn token(&self) -> String {
        format!("{}={}", self.run.token_id, self.run.token_secret)
    }

    fn cluster(&self) -> Cluster {
        Cluster::new(&self.run.url, &self.token(), &self.run.fingerprint).unwrap()
    }

    /// `POST /__fake/<path>` (fault injection).
    async fn inject(&self, path: &str, body: Value) {
        let res = self
            .admin
            .post(self.run.admin_url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200, "{path}: {:?}", res.text().await);
    }

    /// The fake's view of one VM (`Null` when absent).
    fn vm(&self, vmid: u32) -> Value {
        self.run.state()["vms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["vmid"] == json!(vmid))
            .cloned()
            .unwrap_or(Value::Null)
    }
}

fn clone_of_debian(newid: u32) -> CloneRequest<'static> {
    CloneRequest {
        node: "pve1",
        template: 9000,
        newid,
        name: "web1",
        storage: Some("local-lvm"),
    }
}

/// Clones template 9000 on pve1 to `newid` and waits for the task.
async fn cloned(pve: &Cluster, newid: u32) {
    let upid = pve.clone_vm(&clone_of_debian(newid)).await.unwrap();
    assert_eq!(upid.node, "pve1");
    assert_eq!(upid.kind, "qmclone");
    let end = pve.wait(&upid, EVERY, DEADLINE).await.unwrap();
    assert_eq!(end, TaskEnd::Ok { warnings: 0 });
}

async fn done(pve: &Cluster, upid: &Upid) -> TaskEnd {
    pve.wait(upid, EVERY, DEADLINE).await.unwrap()
}

fn permanent(e: &DriverError) -> &str {
    match e {
        DriverError::Permanent(m) => m,
        other => panic!("expected a permanent error, got {other:?}"),
    }
}

fn transient(e: &DriverError) -> &str {
    match e {
        DriverError::Transient(m) => m,
        other => panic!("expected a transient error, got {other:?}"),
    }
}

#[tokio::test]
async fn proxmox_nodes_are_listed_with_their_stats() {
    let fake = Fake::start().await;
    let pve = fake.cluster();
    let nodes = pve.nodes().await.unwrap();
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["pve1", "pve2"]);
    for n in &nodes {
        assert!(n.online);
        assert_eq!(n.maxcpu, 16);
        assert_eq!(n.maxmem, 32 * GIB);
        assert_eq!(n.maxdisk, 1 << 40);
        assert!(n.mem > 0 && n.mem < n.maxmem, "{n:?}");
        assert!(n.disk > 0 && n.cpu > 0.0, "{n:?}");
    }

    // An offline node is listed without stats.
    fake.inject("nodes/pve2/offline", json!({})).await;
    let nodes = pve.nodes().await.unwrap();
    let pve2 = nodes.iter().find(|n| n.name == "pve2").unwrap();
    assert!(!pve2.online);
    assert_eq!((pve2.maxcpu, pve2.mem, pve2.maxmem), (0, 0, 0));
}

#[tokio::test]
async fn proxmox_vmids_include_the_templates_of_every_node() {
    let fake = Fake::start().await;
    let pve = fake.cluster();
    assert_eq!(pve.vmids().await.unwrap(), [9000, 9001, 9100, 9101]);
    cloned(&pve, 150).await;
    assert_eq!(pve.vmids().await.unwrap(), [150, 9000, 9001, 9100, 9101]);
}

#[tokio::test]
async fn proxmox_a_clone_is_configured_and_resized_and_reads_back() {
    let fake = Fake::start().await;
    let pve = fake.cluster();
    cloned(&pve, 150).await;

    let config = pve.config("pve1", 150).await.unwrap().unwrap();
    assert_eq!(config.name.as_deref(), Some("web1"));
    assert_eq!(config.cores, Some(2));
    assert_eq!(config.memory_mib, Some(2048));
    assert_eq!(config.lock, None);
    assert_eq!(config.disks, [("scsi0".to_owned(), 10 * GIB)]);
    assert_eq!(config.sshkeys, None);
    assert!(!config.digest.is_empty());
    assert!(
        config.raw["scsi0"]
            .as_str()
            .unwrap()
            .starts_with("local-lvm:vm-150-disk-0")
    );

    let keys = vec![
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx+y/z= alice@laptop".to_owned(),
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ== bob@desk".to_owned(),
    ];
    let set = [
        ("cores", "4".to_owned()),
        ("memory", "4096".to_owned()),
        ("sshkeys", encode_ssh_keys(&keys)),
        ("ipconfig0", "ip=10.0.0.5/24,gw=10.0.0.1".to_owned()),
        ("nameserver", "1.1.1.1 9.9.9.9".to_owned()),
        ("ciuser", "debian".to_owned()),
    ];
    pve.set_config("pve1", 150, &set, &[], Some(&config.digest))
        .await
        .unwrap();
    let config = pve.config("pve1", 150).await.unwrap().unwrap();
    assert_eq!(config.cores, Some(4));
    assert_eq!(config.memory_mib, Some(4096));
    assert_eq!(config.sshkeys.as_deref(), Some(keys.join("\n").as_str()));
    assert_eq!(config.raw["ipconfig0"], "ip=10.0.0.5/24,gw=10.0.0.1");
    assert_eq!(config.raw["nameserver"], "1.1.1.1 9.9.9.9");
    assert_eq!(config.raw["ciuser"], "debian");
    // PVE keeps the stored (encoded) form.
    assert_eq!(fake.vm(150)["sshkeys"], json!(encode_ssh_keys(&keys)));

    // A stale digest is refused; deleting a key works.
    let stale = pve
        .set_config("pve1", 150, &[("cores", "8".to_owned())], &[], Some("0000"))
        .await
        .unwrap_err();
    assert!(transient(&stale).contains("checksum mismatch"), "{stale}");
    pve.set_config("pve1", 150, &[], &["nameserver"], None)
        .await
        .unwrap();
    let config = pve.config("pve1", 150).await.unwrap().unwrap();
    assert!(!config.raw.contains_key("nameserver"));
    // Nothing to change is a no-op.
    pve.set_config("pve1", 150, &[], &[], None).await.unwrap();

    // A parameter PVE refuses is permanent, with its errors map.
    let bad = pve
        .set_config("pve1", 150, &[("sshkeys", "a+b".to_owned())], &[], None)
        .await
        .unwrap_err();
    let text = permanent(&bad);
    assert!(text.contains("400"), "{text}");
    assert!(text.contains("sshkeys: invalid format"), "{text}");

    // Grow the disk to 50 GiB (PVE 8+: a task).
    let upid = pve
        .resize_disk("pve1", 150, "scsi0", 50)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(upid.kind, "resize");
    assert_eq!(done(&pve, &upid).await, TaskEnd::Ok { warnings: 0 });
    let config = pve.config("pve1", 150).await.unwrap().unwrap();
    assert_eq!(config.disks, [("scsi0".to_owned(), 50 * GIB)]);

    // Shrinking is accepted over HTTP and fails in the task.
    let upid = pve
        .resize_disk("pve1", 150, "scsi0", 20)
        .await
        .unwrap()
        .unwrap();
    match done(&pve, &upid).await {
        TaskEnd::Failed(e) => assert!(e.contains("shrinking disks is not supported"), "{e}"),
        other => panic!("{other:?}"),
    }
    let log = pve.task_error_log(&upid).await.unwrap();
    assert_eq!(
        log.last().map(String::as_str),
        Some("TASK ERROR: shrinking disks is not supported")
    );
    let config = pve.config("pve1", 150).await.unwrap().unwrap();
    assert_eq!(config.disks, [("scsi0".to_owned(), 50 * GIB)]);
}

#[tokio::test]
async fn proxmox_power_status_and_destroy() {
    let fake = Fake::start().await;
    let pve = fake.cluster();
    cloned(&pve, 151).await;

    let stopped = pve.status("pve1", 151).await.unwrap().unwrap();
    assert_eq!(stopped.status, "stopped");
    assert_eq!(stopped.uptime, 0);

    let upid = pve.power("pve1", 151, Power::Start).await.unwrap();
    assert_eq!(upid.kind, "qmstart");
    assert_eq!(done(&pve, &upid).await, TaskEnd::Ok { warnings: 0 });
    let running = pve.status("pve1", 151).await.unwrap().unwrap();
    assert_eq!(running.status, "running");
    assert_eq!(running.qmpstatus.as_deref(), Some("running"));
    assert_eq!(running.maxmem, 2048 << 20);
    assert_eq!(running.maxdisk, 10 * GIB);
    assert!(running.mem > 0 && running.cpu > 0.0, "{running:?}");

    // Starting a running VM is accepted and fails in the task.
    let again = pve.power("pve1", 151, Power::Start).await.unwrap();
    assert_eq!(
        done(&pve, &again).await,
        TaskEnd::Failed("VM 151 already running".to_owned())
    );

    let err = pve.destroy("pve1", 151).await.unwrap_err();
    assert!(permanent(&err).contains("is running"), "{err}");

    let upid = pve.power("pve1", 151, Power::Stop).await.unwrap();
    assert!(done(&pve, &upid).await.is_ok());
    assert_eq!(
        pve.status("pve1", 151).await.unwrap().unwrap().status,
        "stopped"
    );

    let upid = pve.destroy("pve1", 151).await.unwrap();
    assert_eq!(upid.kind, "qmdestroy");
    assert!(done(&pve, &upid).await.is_ok());
    assert_eq!(pve.config("pve1", 151).await.unwrap(), None);
    assert_eq!(pve.status("pve1", 151).await.unwrap(), None);
    assert!(!pve.vmids().await.unwrap().contains(&151));

    // A VM that never existed, or one asked for on the wrong node: None.
    assert_eq!(pve.config("pve1", 4242).await.unwrap(), None);
    assert_eq!(pve.status("pve2", 9000).await.unwrap(), None);
    assert!(pve.config("pve2", 9100).await.unwrap().is_some());
}

#[tokio::test]
async fn proxmox_a_refused_token_is_a_permanent_401() {
    let fake = Fake::start().await;
    let wrong = format!("{}=not-the-secret", fake.run.token_id);
    let pve = Cluster::new(&fake.run.url, &wrong, &fake.run.fingerprint).unwrap();
    let err = pve.nodes().await.unwrap_err();
    let text = permanent(&err);
    assert!(text.contains("401"), "{text}");
    assert!(text.contains("Authentication failed!"), "{text}");
    assert!(!text.contains("not-the-secret"), "{text}");

    // The right token, revoked.
    let pve = fake.cluster();
    pve.nodes().await.unwrap();
    fake.inject("token/revoke", json!({})).await;
    let err = pve.vmids().await.unwrap_err();
    assert!(permanent(&err).contains("401"), "{err}");
    assert!(!err.to_string().contains(&fake.run.token_secret));
    fake.inject("token/restore", json!({})).await;
    pve.vmids().await.unwrap();

    // Debug never shows the secret.
    let shown = format!("{pve:?}");
    assert!(shown.contains(&fake.run.token_id), "{shown}");
    assert!(!shown.contains(&fake.run.token_secret), "{shown}");
}

#[tokio::test]
async fn proxmox_another_certificate_fails_before_any_request() {
    let fake = Fake::start().await;
    let other = mpanel_pve_fake::fingerprint(b"another certificate");
    let pve = Cluster::new(&fake.run.url, &fake.token(), &other).unwrap();
    let err = pve.clone_vm(&clone_of_debian(152)).await.unwrap_err();
    let text = permanent(&err);
    assert!(
        text.contains("does not match the pinned fingerprint"),
        "{text}"
    );
    assert!(text.contains(&other), "{text}");
    assert!(text.contains(&fake.run.fingerprint), "{text}");
    assert!(!text.contains(&fake.run.token_secret));
    // Nothing reached the API: no task, no VM.
    assert_eq!(fake.run.state()["tasks"], json!([]));
    assert_eq!(fake.vm(152), Value::Null);

    // The pin may be written in lower case without colons.
    let bare = fake.run.fingerprint.replace(':', "").to_lowercase();
    let pve = Cluster::new(&fake.run.url, &fake.token(), &bare).unwrap();
    assert_eq!(pve.nodes().await.unwrap().len(), 2);
}

#[tokio::test]
async fn proxmox_an_unreachable_api_is_transient() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let fp = mpanel_pve_fake::fingerprint(b"x");
    let pve = Cluster::new(&format!("https://{addr}"), "a@pve!t=s", &fp).unwrap();
    let err = pve.nodes().await.unwrap_err();
    let text = transient(&err);
    assert!(
        text.starts_with(&format!("the Proxmox VE API at {addr} is unreachable")),
        "{text}"
    );
}

#[tokio::test]
async fn proxmox_bad_settings_are_refused_up_front() {
    let fp = mpanel_pve_fake::fingerprint(b"x");
    for (url, token, fingerprint) in [
        ("http://127.0.0.1:8006", "a@pve!t=s3cret", fp.as_str()),
        ("https://127.0.0.1:8006", "a@pve:s3cret", fp.as_str()),
        ("https://127.0.0.1:8006", "a@pve!t=s3cret", "AB:CD"),
    ] {
        let err = Cluster::new(url, token, fingerprint).unwrap_err();
        assert!(!permanent(&err).contains("s3cret"), "{err}");
    }
}

#[tokio::test]
async fn proxmox_an_injected_clone_failure_ends_the_task_failed() {
    let fake = Fake::start().await;
    let pve = fake.cluster();
    fake.inject("clone-failure", json!({"error": "copy failed: disk full"}))
        .await;
    let upid = pve.clone_vm(&clone_of_debian(153)).await.unwrap();
    assert_eq!(
        done(&pve, &upid).await,
        TaskEnd::Failed("clone failed: copy failed: disk full".to_owned())
    );
    let log = pve.task_error_log(&upid).await.unwrap();
    assert!(log.len() <= 20);
    assert_eq!(
        log.last().map(String::as_str),
        Some("TASK ERROR: clone failed: copy failed: disk full")
    );
    // A failed clone leaves no config behind.
    assert_eq!(pve.config("pve1", 153).await.unwrap(), None);
}

#[tokio::test]
async fn proxmox_a_proxy_timeout_is_an_unknown_outcome() {
    let fake = Fake::start().await;
    let pve = fake.cluster();
    // pveproxy gives up (596) but the clone still happens.
    fake.inject("timeout", json!({"count": 1, "perform": true}))
        .await;
    let err = pve.clone_vm(&clone_of_debian(154)).await.unwrap_err();
    let text = transient(&err);
    assert!(text.contains("outcome unknown"), "{text}");
    assert!(text.contains("596"), "{text}");
    // Re-reading the state shows what happened.
    assert!(pve.vmids().await.unwrap().contains(&154));

    // An offline node is pveproxy's 595: also unknown.
    fake.inject("nodes/pve2/offline", json!({})).await;
    let err = pve.status("pve2", 9100).await.unwrap_err();
    assert!(transient(&err).contains("outcome unknown"), "{err}");
}

#[tokio::test]
async fn proxmox_warnings_are_a_success() {
    let fake = Fake::start().await;
    let pve = fake.cluster();
    cloned(&pve, 155).await;
    fake.inject("warnings", json!({"type": "qmstart", "count": 1}))
        .await;
    let upid = pve.power("pve1", 155, Power::Start).await.unwrap();
    assert_eq!(done(&pve, &upid).await, TaskEnd::Ok { warnings: 1 });
}

#[tokio::test]
async fn proxmox_locks_are_transient() {
    let fake = Fake::start().await;
    let pve = fake.cluster();
    // Configuring while the clone runs: "VM is locked (clone)".
    let upid = pve.clone_vm(&clone_of_debian(156)).await.unwrap();
    assert_eq!(pve.task(&upid).await.unwrap(), TaskState::Running);
    let locked = pve.config("pve1", 156).await.unwrap().unwrap();
    assert_eq!(locked.lock.as_deref(), Some("clone"));
    let status = pve.status("pve1", 156).await.unwrap().unwrap();
    assert_eq!(status.lock.as_deref(), Some("clone"));
    let err = pve
        .set_config("pve1", 156, &[("cores", "4".to_owned())], &[], None)
        .await
        .unwrap_err();
    assert!(transient(&err).contains("VM is locked (clone)"), "{err}");
    assert!(done(&pve, &upid).await.is_ok());

    // A held flock: "can't lock file … - got timeout".
    fake.inject("flock", json!({"vmid": 156, "count": 1})).await;
    let err = pve
        .set_config("pve1", 156, &[("cores", "4".to_owned())], &[], None)
        .await
        .unwrap_err();
    let text = transient(&err);
    assert!(text.contains("can't lock file"), "{text}");
    assert!(text.contains("got timeout"), "{text}");
    // Once free, the same change goes through.
    pve.set_config("pve1", 156, &[("cores", "4".to_owned())], &[], None)
        .await
        .unwrap();
}

#[tokio::test]
async fn proxmox_a_backup_is_listed_restored_and_deleted() {
    let fake = Fake::start().await;
    let pve = fake.cluster();
    cloned(&pve, 157).await;
    assert_eq!(pve.backups("pve1", "local", 157).await.unwrap(), []);

    let upid = pve.backup("pve1", 157, "local").await.unwrap();
    assert_eq!(upid.kind, "vzdump");
    assert_eq!(done(&pve, &upid).await, TaskEnd::Ok { warnings: 0 });
    let volumes = pve.backups("pve1", "local", 157).await.unwrap();
    assert_eq!(volumes.len(), 1, "{volumes:?}");
    let volume = &volumes[0];
    assert!(
        volume.volid.starts_with("local:backup/vzdump-qemu-157-"),
        "{volume:?}"
    );
    assert!(volume.volid.ends_with(".vma.zst"), "{volume:?}");
    assert!(volume.size > 0 && volume.ctime > 0, "{volume:?}");

    // Change the VM, then restore the archive over it (it is stopped).
    pve.set_config("pve1", 157, &[("cores", "8".to_owned())], &[], None)
        .await
        .unwrap();
    let upid = pve.restore("pve1", 157, &volume.volid).await.unwrap();
    assert_eq!(upid.kind, "qmrestore");
    assert_eq!(done(&pve, &upid).await, TaskEnd::Ok { warnings: 0 });
    let config = pve.config("pve1", 157).await.unwrap().unwrap();
    assert_eq!(config.cores, Some(2));
    assert_eq!(config.name.as_deref(), Some("web1"));
    assert_eq!(config.lock, None);

    // A VM on another node: vzdump has nothing to do there.
    let err = pve.backup("pve2", 157, "local").await.unwrap_err();
    assert!(permanent(&err).contains("not on node pve2"), "{err}");

    let upid = pve
        .delete_volume("pve1", "local", &volume.volid)
        .await
        .unwrap()
        .unwrap();
    assert!(done(&pve, &upid).await.is_ok());
    assert_eq!(pve.backups("pve1", "local", 157).await.unwrap(), []);
}

#[tokio::test]
async fn proxmox_rrd_returns_points() {
    let fake = Fake::start().await;
    let pve = fake.cluster();
    // The templates exist for a day: every bucket of the hour has values.
    let points = pve.rrd("pve1", 9000).await.unwrap();
    assert_eq!(points.len(), 60);
    assert!(points.windows(2).all(|w| w[1].time - w[0].time == 60));
    assert!(points.iter().all(|p| p.cpu.is_some()
        && p.mem.is_some()
        && p.netin.is_some()
        && p.netout.is_some()
        && p.disk.is_some()));
    // A VM made just now has buckets holding only their time.
    cloned(&pve, 158).await;
    let points = pve.rrd("pve1", 158).await.unwrap();
    assert_eq!(points.len(), 60);
    assert!(points.iter().all(|p| p.cpu.is_none() && p.netin.is_none()));
}

#[tokio::test]
async fn proxmox_parameter_errors_name_the_parameter() {
    let fake = Fake::start().await;
    let pve = fake.cluster();
    let mut req = clone_of_debian(50);
    let err = pve.clone_vm(&req).await.unwrap_err();
    let text = permanent(&err);
    assert!(
        text.contains("newid: value must have a minimum value of 100"),
        "{text}"
    );
    // Cloning onto an existing VM of the same node: PVE's 500, permanent.
    req.newid = 9001;
    let err = pve.clone_vm(&req).await.unwrap_err();
    assert!(
        permanent(&err).contains("config file already exists"),
        "{err}"
    );
}
