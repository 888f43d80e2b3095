//! The cluster state behind one mutex: nodes, VMs, backups, tasks, the
//! invisible per-VMID flocks, and the injected faults.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::config::{Config, NodeSpec};
use crate::envelope::ApiError;
use crate::faults::Faults;
use crate::tasks::Tasks;
use crate::vm::Vm;

pub struct Node {
    pub spec: NodeSpec,
    pub online: bool,
    pub booted: Instant,
}

/// A storage of the fake cluster. `local` and `local-lvm` exist on every
/// node and are not shared.
pub struct Storage {
    pub id: &'static str,
    pub kind: &'static str,
    pub content: &'static [&'static str],
    pub shared: bool,
}

pub const STORAGES: &[Storage] = &[
    Storage {
        id: "local",
        kind: "dir",
        content: &["backup", "iso", "vztmpl"],
        shared: false,
    },
    Storage {
        id: "local-lvm",
        kind: "lvmthin",
        content: &["images", "rootdir"],
        shared: false,
    },
];

pub fn storage(id: &str) -> Option<&'static Storage> {
    STORAGES.iter().find(|s| s.id == id)
}

/// A backup archive on a node's storage.
#[derive(Debug, Clone)]
pub struct Backup {
    pub node: String,
    pub storage: String,
    pub volid: String,
    pub vmid: u32,
    pub size: u64,
    pub ctime: i64,
    pub format: String,
    pub notes: Option<String>,
    pub protected: bool,
    /// The VM's config at backup time (what a restore brings back).
    pub conf: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flock {
    Shared(u32),
    Exclusive,
}

pub struct World {
    pub nodes: Vec<Node>,
    pub vms: BTreeMap<u32, Vm>,
    pub backups: Vec<Backup>,
    pub tasks: Tasks,
    pub faults: Faults,
    /// flocks held by running tasks, by VMID.
    pub flocks: HashMap<u32, Flock>,
    /// Nodes where a vzdump holds the global backup lock.
    pub vzdump_busy: HashSet<String>,
    pub token_revoked: bool,
    serial: u64,
}

pub struct Shared {
    pub config: Config,
    pub token_id: String,
    pub token_secret: String,
    pub fingerprint: String,
    world: Mutex<World>,
}

impl Shared {
    pub fn new(config: Config, token_secret: String, fingerprint: String) -> Arc<Self> {
        let world = World::new(&config);
        Arc::new(Self {
            config,
            token_id: crate::auth::TOKEN_ID.to_owned(),
            token_secret,
            fingerprint,
            world: Mutex::new(world),
        })
    }

    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub fn conf_path(node: &str, vmid: u32) -> String {
    format!("nodes/{node}/qemu-server/{vmid}.conf")
}

pub fn flock_path(vmid: u32) -> String {
    format!("/var/lock/qemu-server/lock-{vmid}.conf")
}

impl World {
    fn new(config: &Config) -> Self {
        let mut world = Self {
            nodes: config
                .nodes
                .iter()
                .map(|spec| Node {
                    spec: spec.clone(),
                    online: true,
                    booted: Instant::now(),
                })
                .collect(),
            vms: BTreeMap::new(),
            backups: Vec::new(),
            tasks: Tasks::default(),
            faults: Faults::default(),
            flocks: HashMap::new(),
            vzdump_busy: HashSet::new(),
            token_revoked: false,
            serial: 0,
        };
        for (i, node) in config.nodes.iter().enumerate() {
            for (j, name) in config.templates.iter().enumerate() {
                let vmid = 9000 + 100 * i as u32 + j as u32;
                let conf = world.template_conf(vmid, name);
                world
                    .vms
                    .insert(vmid, Vm::new(vmid, &node.name, conf, now() - 86_400));
            }
        }
        world
    }

    fn template_conf(&mut self, vmid: u32, name: &str) -> BTreeMap<String, String> {
        let mac = self.new_mac();
        let smbios = self.new_uuid();
        [
            ("agent", "1".to_owned()),
            ("boot", "order=scsi0".to_owned()),
            ("cores", "2".to_owned()),
            ("ide2", format!("local-lvm:vm-{vmid}-cloudinit,media=cdrom")),
            ("memory", "2048".to_owned()),
            ("meta", "creation-qemu=9.2.0,ctime=1767225600".to_owned()),
            ("name", name.to_owned()),
            ("net0", format!("virtio={mac},bridge=vmbr0")),
            ("ostype", "l26".to_owned()),
            ("scsi0", format!("local-lvm:base-{vmid}-disk-0,size=10G")),
            ("scsihw", "virtio-scsi-single".to_owned()),
            ("serial0", "socket".to_owned()),
            ("smbios1", format!("uuid={smbios}")),
            ("sockets", "1".to_owned()),
            ("template", "1".to_owned()),
            ("vga", "serial0".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    /// A fresh MAC in Proxmox's OUI (BC:24:11).
    pub fn new_mac(&mut self) -> String {
        self.serial += 1;
        let b = uuid::Uuid::new_v4().into_bytes();
        format!("BC:24:11:{:02X}:{:02X}:{:02X}", b[0], b[1], b[2])
    }

    pub fn new_uuid(&mut self) -> String {
        uuid::Uuid::new_v4().to_string()
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.spec.name == name)
    }

    pub fn node_mut(&mut self, name: &str) -> Option<&mut Node> {
        self.nodes.iter_mut().find(|n| n.spec.name == name)
    }

    /// The VM `vmid` if its config is on `node`, else PVE's load_config error.
    pub fn vm_on(&self, node: &str, vmid: u32) -> Result<&Vm, String> {
        match self.vms.get(&vmid) {
            Some(vm) if vm.node == node => Ok(vm),
            _ => Err(format!(
                "Configuration file '{}' does not exist",
                conf_path(node, vmid)
            )),
        }
    }

    pub fn vm_on_mut(&mut self, node: &str, vmid: u32) -> Result<&mut Vm, String> {
        match self.vms.get_mut(&vmid) {
            Some(vm) if vm.node == node => Ok(vm),
            _ => Err(format!(
                "Configuration file '{}' does not exist",
                conf_path(node, vmid)
            )),
        }
    }

    /// assert_config_exists_on_node's error.
    pub fn assert_on_node(&self, node: &str, vmid: u32) -> Result<&Vm, String> {
        self.vm_on(node, vmid).map_err(|_| {
            format!("unable to find configuration file for VM {vmid} on node '{node}'")
        })
    }

    /// Takes the flock of `vmid` for a moment (and releases it): fails if
    /// a task holds it or a fault says so.
    pub fn touch_flock(&mut self, vmid: u32) -> Result<(), String> {
        self.acquire_flock(vmid, true)?;
        self.release_flock(vmid);
        Ok(())
    }

    pub fn acquire_flock(&mut self, vmid: u32, exclusive: bool) -> Result<(), String> {
        let timeout = || format!("can't lock file '{}' - got timeout", flock_path(vmid));
        if self.faults.take_flock(vmid) {
            return Err(timeout());
        }
        match (self.flocks.get(&vmid).copied(), exclusive) {
            (None, true) => {
                self.flocks.insert(vmid, Flock::Exclusive);
            }
            (None, false) => {
                self.flocks.insert(vmid, Flock::Shared(1));
            }
            (Some(Flock::Shared(n)), false) => {
                self.flocks.insert(vmid, Flock::Shared(n + 1));
            }
            _ => return Err(timeout()),
        }
        Ok(())
    }

    pub fn release_flock(&mut self, vmid: u32) {
        match self.flocks.get(&vmid).copied() {
            Some(Flock::Shared(n)) if n > 1 => {
                self.flocks.insert(vmid, Flock::Shared(n - 1));
            }
            _ => {
                self.flocks.remove(&vmid);
            }
        }
    }
}

/// `check_lock`: "VM is locked (x)".
pub fn check_lock(vm: &crate::vm::Vm) -> Result<(), String> {
    match vm.lock() {
        Some(lock) => Err(format!("VM is locked ({lock})")),
        None => Ok(()),
    }
}

/// A handler-side `die` from a message.
pub fn die(msg: String) -> ApiError {
    ApiError::die(msg)
}
