//! Task ids (§3 "UPID format"):
//! `UPID:<node>:<pid>:<pstart>:<starttime>:<type>:<id>:<user>:`, checked
//! as Proxmox's own regex does:
//! `^UPID:([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?):([0-9A-F]{8}):([0-9A-F]{8,9}):([0-9A-F]{8}):([^:\s]+):([^:\s]*):([^:\s]+):$`.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::DriverError;

/// A PVE worker task id. Always poll it on [`Upid::node`]: the task and
/// its log live there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Upid {
    /// The UPID as PVE sent it.
    pub raw: String,
    /// The node the task runs on.
    pub node: String,
    /// The task type (`qmclone`, `qmstart`, `vzdump`, …).
    pub kind: String,
}

impl Upid {
    /// When the task started (Unix seconds), from the UPID's `starttime`.
    pub fn started_at(&self) -> Option<i64> {
        let start = self.raw.split(':').nth(4)?;
        i64::from_str_radix(start, 16).ok()
    }

    pub fn parse(text: &str) -> Result<Self, DriverError> {
        let invalid = || {
            let mut shown: String = text.chars().take(200).collect();
            if shown.len() < text.len() {
                shown.push('…');
            }
            DriverError::Permanent(format!("not a Proxmox VE task id (UPID): {shown:?}"))
        };
        let parts: Vec<&str> = text.split(':').collect();
        let ["UPID", node, pid, pstart, starttime, kind, id, user, ""] = parts.as_slice() else {
            return Err(invalid());
        };
        let upper_hex = |s: &str, lengths: &[usize]| {
            lengths.contains(&s.len())
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
        };
        let no_space = |s: &str| !s.chars().any(char::is_whitespace);
        let node_ok = node.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && node
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric())
            && node
                .bytes()
                .last()
                .is_some_and(|b| b.is_ascii_alphanumeric());
        let ok = node_ok
            && upper_hex(pid, &[8])
            && upper_hex(pstart, &[8, 9])
            && upper_hex(starttime, &[8])
            && !kind.is_empty()
            && no_space(kind)
            && no_space(id)
            && !user.is_empty()
            && no_space(user);
        if !ok {
            return Err(invalid());
        }
        Ok(Self {
            raw: text.to_owned(),
            node: (*node).to_owned(),
            kind: (*kind).to_owned(),
        })
    }
}

impl fmt::Display for Upid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl Serialize for Upid {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for Upid {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::Upid;

    const START: &str = "UPID:pve1:00007323:001036A5:6419CAF8:qmstart:100:root@pam:";

    #[test]
    fn a_upid_names_its_node_and_type() {
        let u = Upid::parse(START).unwrap();
        assert_eq!(u.node, "pve1");
        assert_eq!(u.kind, "qmstart");
        assert_eq!(u.to_string(), START);
        let token = "UPID:node-2:00001001:001000007:6419CAF8:vzdump::mpanel@pve!ci:";
        assert_eq!(Upid::parse(token).unwrap().kind, "vzdump");
        let json = serde_json::to_string(&u).unwrap();
        assert_eq!(json, format!("\"{START}\""));
        assert_eq!(serde_json::from_str::<Upid>(&json).unwrap(), u);
    }

    #[test]
    fn malformed_upids_are_refused() {
        for bad in [
            "",
            "OK",
            "UPID:pve1:00007323:001036A5:6419CAF8:qmstart:100:root@pam",
            "UPID:pve1:7323:001036A5:6419CAF8:qmstart:100:root@pam:",
            "UPID:pve1:00007323:001036a5:6419CAF8:qmstart:100:root@pam:",
            "UPID:-pve1:00007323:001036A5:6419CAF8:qmstart:100:root@pam:",
            "UPID:pve1:00007323:001036A5:6419CAF8::100:root@pam:",
            "UPID:pve1:00007323:001036A5:6419CAF8:qmstart:100::",
            "UPID:pve1:00007323:001036A5:6419CAF8:qm start:100:root@pam:",
        ] {
            assert!(Upid::parse(bad).is_err(), "{bad:?}");
        }
        assert!(serde_json::from_str::<Upid>("\"OK\"").is_err());
    }
}
