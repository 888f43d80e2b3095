//! A Proxmox VE cluster's settings, as a `CLOUD` server of the inventory
//! carries them (not secret; the API token is the server's sealed
//! credential): the certificate fingerprint to pin, the nodes pods may go
//! to, the template VM per OS image on each node, storages, the bridge,
//! the IPv4 pool, resolvers and the VMID range mPanel allocates from.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::pool::Ipv4Pool;

/// The settings key of the pool (for error fields).
pub const IPV4_POOL: &str = "ipv4_pool";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSettings {
    pub cidr: String,
    pub gateway: String,
    pub first: String,
    pub last: String,
}

/// The VMIDs mPanel gives its pods (PVE's own range is 100–999,999,999;
/// templates and VMs mPanel did not make are skipped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmidRange {
    pub first: u32,
    pub last: u32,
}

impl Default for VmidRange {
    fn default() -> Self {
        Self {
            first: 1000,
            last: 899_999,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSettings {
    /// SHA-256 of the API's certificate, `AB:CD:…` (PVE's `ssl_fingerprint`).
    pub fingerprint: String,
    /// The nodes pods may be placed on.
    pub nodes: Vec<String>,
    /// OS image → node → the VMID of that node's template.
    pub templates: BTreeMap<String, BTreeMap<String, u32>>,
    /// The image of a pod that names none; the first one otherwise.
    #[serde(default)]
    pub default_image: Option<String>,
    /// Where pods' disks are made (e.g. `local-lvm`).
    pub storage: String,
    /// Where backups go (e.g. `local`); default `local`.
    #[serde(default)]
    pub backup_storage: Option<String>,
    /// The bridge pods' network is attached to (e.g. `vmbr0`).
    pub bridge: String,
    pub ipv4_pool: PoolSettings,
    #[serde(default)]
    pub resolvers: Vec<String>,
    #[serde(default)]
    pub vmid_range: VmidRange,
}

impl ClusterSettings {
    /// Reads and checks a `CLOUD` server's settings; `Err((field, why))`.
    pub fn from_value(v: &serde_json::Value) -> Result<Self, (String, String)> {
        let s: Self = serde_json::from_value(v.clone())
            .map_err(|e| ("settings".to_owned(), e.to_string()))?;
        s.check()?;
        Ok(s)
    }

    fn check(&self) -> Result<(), (String, String)> {
        let bad = |f: &str, why: String| Err((format!("settings.{f}"), why));
        let hex: String = self.fingerprint.chars().filter(|c| *c != ':').collect();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return bad(
                "fingerprint",
                "must be the SHA-256 fingerprint of the API's certificate (AB:CD:… as GET /nodes shows ssl_fingerprint)".into(),
            );
        }
        if self.nodes.is_empty() || self.nodes.iter().any(|n| !node_name(n)) {
            return bad("nodes", "must list the node names pods may go to".into());
        }
        if self.templates.is_empty() {
            return bad("templates", "must name at least one OS image".into());
        }
        for (image, per_node) in &self.templates {
            if !image_name(image) {
                return bad("templates", format!("{image:?} is not an image name"));
            }
            if per_node.is_empty() || per_node.keys().any(|n| !self.nodes.contains(n)) {
                return bad(
                    "templates",
                    format!("{image}: give the template VMID on each of the listed nodes"),
                );
            }
            if per_node.values().any(|id| *id < 100) {
                return bad("templates", "a VMID is at least 100".into());
            }
        }
        if let Some(d) = &self.default_image
            && !self.templates.contains_key(d)
        {
            return bad(
                "default_image",
                format!("{d:?} is not one of the templates"),
            );
        }
        for (f, v) in [("storage", &self.storage), ("bridge", &self.bridge)] {
            if !storage_id(v) {
                return bad(f, format!("{v:?} is not a Proxmox storage or bridge name"));
            }
        }
        if let Some(b) = &self.backup_storage
            && !storage_id(b)
        {
            return bad("backup_storage", format!("{b:?} is not a storage name"));
        }
        self.pool()
            .map_err(|e| (format!("settings.{IPV4_POOL}"), e))?;
        if self
            .resolvers
            .iter()
            .any(|r| r.parse::<std::net::IpAddr>().is_err())
        {
            return bad("resolvers", "must be IP addresses".into());
        }
        let r = self.vmid_range;
        if r.first < 100 || r.first > r.last || r.last > 999_999_999 {
            return bad("vmid_range", "first ≥ 100, first ≤ last ≤ 999999999".into());
        }
        Ok(())
    }

    pub fn pool(&self) -> Result<Ipv4Pool, String> {
        let p = &self.ipv4_pool;
        Ipv4Pool::parse(&p.cidr, &p.gateway, &p.first, &p.last)
    }

    /// The image a pod gets when it names none.
    pub fn default_image(&self) -> Option<&str> {
        self.default_image
            .as_deref()
            .or_else(|| self.templates.keys().next().map(String::as_str))
    }

    /// The template of `image` on `node`.
    pub fn template(&self, image: &str, node: &str) -> Option<u32> {
        self.templates.get(image)?.get(node).copied()
    }

    pub fn backup_storage(&self) -> &str {
        self.backup_storage.as_deref().unwrap_or("local")
    }
}

fn node_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 63 && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn image_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn storage_id(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// Whether `token` is `USER@REALM!TOKENID=SECRET`.
pub fn valid_api_token(token: &str) -> bool {
    let Some((id, secret)) = token.rsplit_once('=') else {
        return false;
    };
    let Some((user, token_name)) = id.split_once('!') else {
        return false;
    };
    user.contains('@')
        && !token_name.is_empty()
        && !secret.is_empty()
        && !token.chars().any(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    pub fn sample() -> serde_json::Value {
        json!({
            "fingerprint": "AB:".repeat(31) + "AB",
            "nodes": ["pve1", "pve2"],
            "templates": {"debian-12": {"pve1": 9000, "pve2": 9100}},
            "storage": "local-lvm",
            "bridge": "vmbr0",
            "ipv4_pool": {"cidr": "203.0.113.0/24", "gateway": "203.0.113.1",
                          "first": "203.0.113.10", "last": "203.0.113.250"},
            "resolvers": ["1.1.1.1"]
        })
    }

    #[test]
    fn settings_are_checked() {
        let s = ClusterSettings::from_value(&sample()).unwrap();
        assert_eq!(s.template("debian-12", "pve2"), Some(9100));
        assert_eq!(s.default_image(), Some("debian-12"));
        assert_eq!(s.vmid_range, VmidRange::default());
        let mut v = sample();
        v["templates"]["debian-12"]["pve9"] = json!(9900);
        assert_eq!(
            ClusterSettings::from_value(&v).unwrap_err().0,
            "settings.templates"
        );
        let mut v = sample();
        v["fingerprint"] = json!("nope");
        assert_eq!(
            ClusterSettings::from_value(&v).unwrap_err().0,
            "settings.fingerprint"
        );
        let mut v = sample();
        v["ipv4_pool"]["first"] = json!("198.51.100.1");
        assert_eq!(
            ClusterSettings::from_value(&v).unwrap_err().0,
            "settings.ipv4_pool"
        );
    }

    #[test]
    fn tokens() {
        assert!(valid_api_token("mpanel@pve!pods=0f1e2d3c-aaaa"));
        assert!(!valid_api_token("mpanel@pve=secret"));
        assert!(!valid_api_token("mpanel!pods=secret"));
        assert!(!valid_api_token("mpanel@pve!pods="));
    }
}
