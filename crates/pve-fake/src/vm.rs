//! A VM as the fake holds it: the config file's keys (all strings, as in
//! `/etc/pve/qemu-server/<vmid>.conf`), its pending section, and whether
//! a QEMU process "runs".

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde_json::{Map, Value, json};
use sha1::{Digest, Sha1};

/// The QMP state of a running QEMU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qmp {
    Running,
    Paused,
    /// Started paused for a backup of a stopped VM.
    Prelaunch,
}

impl Qmp {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Prelaunch => "prelaunch",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Run {
    Stopped,
    Running { since: Instant, qmp: Qmp, pid: u32 },
}

#[derive(Debug, Clone)]
pub struct Vm {
    pub vmid: u32,
    pub node: String,
    pub conf: BTreeMap<String, String>,
    pub pending: BTreeMap<String, String>,
    pub pending_delete: BTreeSet<String>,
    pub run: Run,
    /// Unix time the VM came into being (RRD buckets before it are empty).
    pub created: i64,
}

/// Keys PVE's `check_type` turns into JSON integers on GET config.
const INT_KEYS: &[&str] = &[
    "cores",
    "sockets",
    "vcpus",
    "balloon",
    "template",
    "onboot",
    "protection",
    "numa",
    "acpi",
    "kvm",
    "tablet",
    "cpuunits",
    "shares",
];

/// Changes a running VM takes at once (PVE's "fast plug" options and
/// `cipassword`, which is written directly); the rest waits for a restart.
pub const FAST_PLUG: &[&str] = &[
    "name",
    "description",
    "tags",
    "onboot",
    "protection",
    "cipassword",
    "lock",
];

impl Vm {
    pub fn new(vmid: u32, node: &str, conf: BTreeMap<String, String>, created: i64) -> Self {
        Self {
            vmid,
            node: node.to_owned(),
            conf,
            pending: BTreeMap::new(),
            pending_delete: BTreeSet::new(),
            run: Run::Stopped,
            created,
        }
    }

    /// The config file's text; its SHA-1 is the `digest`.
    pub fn file_text(&self) -> String {
        let mut text = String::new();
        for (k, v) in &self.conf {
            text.push_str(&format!("{k}: {v}\n"));
        }
        if !self.pending.is_empty() || !self.pending_delete.is_empty() {
            text.push_str("\n[PENDING]\n");
            for (k, v) in &self.pending {
                text.push_str(&format!("{k}: {v}\n"));
            }
            if !self.pending_delete.is_empty() {
                let keys: Vec<&str> = self.pending_delete.iter().map(String::as_str).collect();
                text.push_str(&format!("delete: {}\n", keys.join(",")));
            }
        }
        text
    }

    pub fn digest(&self) -> String {
        Sha1::digest(self.file_text().as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    pub fn lock(&self) -> Option<&str> {
        self.conf.get("lock").map(String::as_str)
    }

    pub fn is_template(&self) -> bool {
        self.conf.get("template").is_some_and(|v| v == "1")
    }

    pub fn name(&self) -> String {
        self.conf
            .get("name")
            .cloned()
            .unwrap_or_else(|| format!("VM {}", self.vmid))
    }

    pub fn qmp(&self) -> Option<Qmp> {
        match self.run {
            Run::Running { qmp, .. } => Some(qmp),
            Run::Stopped => None,
        }
    }

    pub fn is_running(&self) -> bool {
        self.qmp().is_some()
    }

    pub fn uptime(&self) -> u64 {
        match self.run {
            Run::Running { since, .. } => since.elapsed().as_secs(),
            Run::Stopped => 0,
        }
    }

    /// The config with pending changes applied (what GET config shows
    /// unless `current=1`).
    pub fn effective(&self) -> BTreeMap<String, String> {
        let mut conf = self.conf.clone();
        for k in &self.pending_delete {
            conf.remove(k);
        }
        conf.extend(self.pending.clone());
        conf
    }

    pub fn apply_pending(&mut self) {
        self.conf = self.effective();
        self.pending.clear();
        self.pending_delete.clear();
    }

    /// The config as JSON, typed as PVE's `check_type` types it.
    pub fn config_json(&self, current: bool) -> Value {
        let conf = if current {
            self.conf.clone()
        } else {
            self.effective()
        };
        let mut out = Map::new();
        for (k, v) in conf {
            let value = if k == "cipassword" {
                json!("**********")
            } else if INT_KEYS.contains(&k.as_str()) {
                v.parse::<i64>().map_or_else(|_| json!(v), |n| json!(n))
            } else {
                json!(v)
            };
            out.insert(k, value);
        }
        out.insert("digest".to_owned(), json!(self.digest()));
        Value::Object(out)
    }

    /// Memory in MiB (`"2048"` or `"current=2048"`).
    pub fn memory_mib(&self) -> u64 {
        let m = self.conf.get("memory").map_or("512", String::as_str);
        let m = m.strip_prefix("current=").unwrap_or(m);
        m.split(',')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(512)
    }

    pub fn cpus(&self) -> u64 {
        let n = |k: &str| {
            self.conf
                .get(k)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(1)
        };
        self.conf
            .get("vcpus")
            .and_then(|v| v.parse().ok())
            .unwrap_or(n("cores") * n("sockets"))
    }

    /// The disks (not CD-ROMs): (key, value).
    pub fn disks(&self) -> Vec<(String, String)> {
        self.conf
            .iter()
            .filter(|(k, v)| is_drive_key(k) && !is_cdrom(v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Size of the boot disk (the first in `boot: order=`, else the first disk).
    pub fn maxdisk(&self) -> u64 {
        let boot = self
            .conf
            .get("boot")
            .and_then(|b| b.strip_prefix("order="))
            .and_then(|o| o.split(';').find(|d| self.conf.contains_key(*d)))
            .and_then(|d| self.conf.get(d));
        boot.or_else(|| self.disks().first().and_then(|(k, _)| self.conf.get(k)))
            .and_then(|v| drive_size(v))
            .unwrap_or(0)
    }
}

pub fn is_drive_key(k: &str) -> bool {
    ["scsi", "virtio", "sata", "ide", "efidisk", "tpmstate"]
        .iter()
        .any(|p| {
            k.strip_prefix(p)
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
        })
}

pub fn is_cdrom(v: &str) -> bool {
    v == "cdrom" || v.split(',').any(|o| o == "media=cdrom")
}

/// The `size=` of a drive, in bytes.
pub fn drive_size(v: &str) -> Option<u64> {
    v.split(',')
        .find_map(|o| o.strip_prefix("size="))
        .and_then(parse_size)
}

/// `32G`, `512M`, `1.5T`, `1024` (bytes), binary units.
pub fn parse_size(s: &str) -> Option<u64> {
    let (num, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c.to_ascii_uppercase()),
        _ => (s, 'B'),
    };
    let mult: u64 = match unit {
        'B' => 1,
        'K' => 1 << 10,
        'M' => 1 << 20,
        'G' => 1 << 30,
        'T' => 1 << 40,
        _ => return None,
    };
    if num.contains('.') {
        let f: f64 = num.parse().ok()?;
        Some((f * mult as f64) as u64)
    } else {
        num.parse::<u64>().ok()?.checked_mul(mult)
    }
}

/// As PVE writes `size=`: the largest binary unit that divides the size.
pub fn format_size(bytes: u64) -> String {
    for (unit, m) in [
        ('T', 1u64 << 40),
        ('G', 1 << 30),
        ('M', 1 << 20),
        ('K', 1 << 10),
    ] {
        if bytes >= m && bytes.is_multiple_of(m) {
            return format!("{}{unit}", bytes / m);
        }
    }
    bytes.to_string()
}

/// Replaces the `size=` option of a drive value.
pub fn with_size(v: &str, bytes: u64) -> String {
    let size = format!("size={}", format_size(bytes));
    let mut found = false;
    let mut parts: Vec<String> = v
        .split(',')
        .map(|o| {
            if o.starts_with("size=") {
                found = true;
                size.clone()
            } else {
                o.to_owned()
            }
        })
        .collect();
    if !found {
        parts.push(size);
    }
    parts.join(",")
}
