//! Measuring accounts' disk use on a web node: one account (`du`), or all
//! of a node's accounts in one SSH session (`du-all`), which the recurring
//! `hosting.disk_usage` job uses. The node's filesystem has no user quotas
//! (ext4 without `usrquota` here, and nothing assumes it elsewhere), so
//! these measurements are what the quota is enforced from.

use std::collections::HashMap;

use super::{WebNode, code, validate_user};
use crate::DriverError;
use crate::ssh;

/// Names per `du-all` call (the helper's limit is 10000).
const DU_ALL_BATCH: usize = 500;
/// `du` walks every file of a batch's homes: a full node takes minutes, not
/// the 30 s an ordinary helper command gets.
const DU_ALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

/// What the node said about one account's home.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// Bytes used (0 when it has no home).
    Bytes(u64),
    /// A user of that name exists but is not an mPanel account: nothing is
    /// measured (and nothing should be enforced on it).
    NotOurs,
}

impl WebNode {
    /// Bytes the account's home holds (`du -sb`; 0 when it has none).
    pub async fn disk_usage(&self, user: &str) -> Result<u64, DriverError> {
        validate_user(user)?;
        self.check_helper()?;
        let out = self
            .helper(&["du", user], None, &format!("measuring {user}"))
            .await?;
        out.stdout.trim().parse().map_err(|_| {
            DriverError::Transient(format!(
                "the web node answered {:?} for the disk use of {user}",
                out.stdout
            ))
        })
    }

    /// The disk use of each of `users`, in one SSH session. A node whose
    /// helper predates `du-all` is measured one account at a time instead
    /// (so a panel upgraded before its nodes keeps measuring).
    pub async fn disk_usage_all(
        &self,
        users: &[String],
    ) -> Result<HashMap<String, Usage>, DriverError> {
        for user in users {
            validate_user(user)?;
        }
        self.check_helper()?;
        if users.is_empty() {
            return Ok(HashMap::new());
        }
        let mut found = HashMap::new();
        // The helper takes at most 10000 names a call.
        for batch in users.chunks(DU_ALL_BATCH) {
            let stdin: String = batch.iter().map(|u| format!("{u}\n")).collect();
            let script = format!("{} du-all\n", self.helper);
            let out =
                ssh::run_with_timeout(&self.ssh, &script, Some(stdin.as_bytes()), DU_ALL_TIMEOUT)
                    .await?;
            // A helper older than `du-all` refuses it, as an unknown command
            // or (older still) while checking the user name it expected.
            let old_helper =
                out.stderr.contains("unknown command") || out.stderr.contains("bad user name");
            if out.status == code::HELPER_BAD_ARGS && old_helper {
                let mut found = HashMap::new();
                for user in users {
                    found.insert(user.clone(), Usage::Bytes(self.disk_usage(user).await?));
                }
                return Ok(found);
            }
            if out.status != 0 {
                return Err(super::unexpected("measuring disk use", &out));
            }
            found.extend(parse_du_all(&out.stdout)?);
        }
        if let Some(missing) = users.iter().find(|u| !found.contains_key(*u)) {
            return Err(DriverError::Transient(format!(
                "the web node did not measure {missing}"
            )));
        }
        Ok(found)
    }
}

/// `USER BYTES` or `USER NOT_OURS` lines.
fn parse_du_all(text: &str) -> Result<HashMap<String, Usage>, DriverError> {
    let mut found = HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = || DriverError::Transient(format!("the web node answered {line:?} to du-all"));
        let (user, value) = line.trim().split_once(' ').ok_or_else(bad)?;
        let usage = match value {
            "NOT_OURS" => Usage::NotOurs,
            n => Usage::Bytes(n.parse().map_err(|_| bad())?),
        };
        found.insert(user.to_owned(), usage);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn du_all_lines_are_read_and_a_garbled_one_is_an_error() {
        let found = parse_du_all("mpaaaa1 4096\nmpbbbb2 NOT_OURS\n\n").unwrap();
        assert_eq!(found["mpaaaa1"], Usage::Bytes(4096));
        assert_eq!(found["mpbbbb2"], Usage::NotOurs);
        assert!(parse_du_all("mpaaaa1 \n").is_err());
        assert!(parse_du_all("mpaaaa1 -5\n").is_err());
        assert!(parse_du_all("nonsense\n").is_err());
    }
}
