//! The pure part of the mail driver: addresses checked, password hashes
//! made and normalised, and the lines of Dovecot's passwd-file rendered,
//! read and edited.
//!
//! A line (7 colons; the extra fields are space-separated):
//! `user@dom:{ARGON2ID}$argon2id$…:UID:GID::ROOT/dom/user::userdb_quota_rule=*:storage=NM`,
//! plus ` nologin reason=suspended` when suspended.

use argon2::password_hash::PasswordHasher;

use crate::DriverError;

/// The extra field that makes a correct password fail.
const SUSPENDED: &str = "nologin reason=suspended";
const QUOTA_PREFIX: &str = "userdb_quota_rule=*:storage=";

/// A mailbox as the passwd-file lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxInfo {
    pub address: String,
    /// The storage quota; 0 means none.
    pub quota_mb: u32,
    pub suspended: bool,
}

/// An address split into its checked parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Address<'a> {
    pub local: &'a str,
    pub domain: &'a str,
}

/// Accepts `local@domain` with a local part of `a-z`, `0-9` and `._-`
/// (1–64 characters, not starting with `.` or `-`, not ending with `.`,
/// no `..`) and a canonical domain ([`crate::web::validate_domain`]).
/// Nothing is lower-cased: the caller passes the canonical form. No `+`:
/// Dovecot's default `auth_username_chars` refuses it at login (and it is
/// the usual sub-address delimiter), so such a mailbox could never log in.
pub(crate) fn parse_address(address: &str) -> Result<Address<'_>, DriverError> {
    let bad =
        |why: &str| DriverError::Permanent(format!("invalid mail address {address:?}: {why}"));
    let (local, domain) = address
        .split_once('@')
        .ok_or_else(|| bad("it needs one @"))?;
    if local.is_empty() || local.len() > 64 {
        return Err(bad("the local part has 1 to 64 characters"));
    }
    if !local
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    {
        return Err(bad(
            "the local part allows only a-z, 0-9 and ._- (Dovecot refuses + at login)",
        ));
    }
    if local.starts_with(['.', '-']) || local.ends_with('.') || local.contains("..") {
        return Err(bad(
            "the local part cannot start with . or -, end with . or hold ..",
        ));
    }
    crate::web::validate_domain(domain)?;
    Ok(Address { local, domain })
}

/// Hashes a password with Argon2id (the `argon2` crate's defaults:
/// m=19456, t=2, p=1) as `{ARGON2ID}$argon2id$…`, which Dovecot verifies.
/// Deliberately slow (tens of milliseconds of one core): call it from a
/// blocking thread in a busy async context.
pub fn hash_password(password: &str) -> Result<String, DriverError> {
    if password.is_empty() {
        return Err(DriverError::Permanent(
            "a mailbox password cannot be empty".into(),
        ));
    }
    let phc = argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| DriverError::Permanent(format!("password hashing failed: {e}")))?;
    Ok(format!("{{ARGON2ID}}{phc}"))
}

/// A hash as it goes into the file: only Argon2id, as
/// `{ARGON2ID}$argon2id$…` (a bare `$argon2id$` PHC string is given its
/// scheme). Anything else is refused: a `{PLAIN}` or `{CRYPT}` value from
/// anywhere would be a password Dovecot accepts in clear or weakly hashed,
/// and a `:` or white space would break the line.
pub(crate) fn normalise_hash(hash: &str) -> Result<String, DriverError> {
    let bad = || DriverError::Permanent("the password hash is not an Argon2id PHC string".into());
    if !hash.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
        return Err(bad());
    }
    let phc = hash.strip_prefix("{ARGON2ID}").unwrap_or(hash);
    match phc.strip_prefix("$argon2id$") {
        Some(rest) if !rest.is_empty() => Ok(format!("{{ARGON2ID}}{phc}")),
        _ => Err(bad()),
    }
}

/// Where a line's mailbox lives and whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout<'a> {
    pub root_dir: &'a str,
    pub uid: u32,
    pub gid: u32,
}

impl Layout<'_> {
    pub fn home(&self, address: &Address<'_>) -> String {
        format!("{}/{}/{}", self.root_dir, address.domain, address.local)
    }

    /// The line for a mailbox (without the newline).
    pub fn line(
        &self,
        address: &Address<'_>,
        hash: &str,
        quota_mb: u32,
        suspended: bool,
    ) -> String {
        let mut extra = Vec::new();
        if quota_mb > 0 {
            extra.push(format!("{QUOTA_PREFIX}{quota_mb}M"));
        }
        if suspended {
            extra.push(SUSPENDED.to_owned());
        }
        format!(
            "{}@{}:{hash}:{}:{}::{}::{}",
            address.local,
            address.domain,
            self.uid,
            self.gid,
            self.home(address),
            extra.join(" ")
        )
    }
}

/// What one line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub address: String,
    pub hash: String,
    pub quota_mb: u32,
    pub suspended: bool,
}

/// Reads a line; `None` for comments, blank lines and lines that are not
/// in the 8-field form.
pub(crate) fn parse_line(line: &str) -> Option<Entry> {
    if line.trim().is_empty() || line.starts_with('#') {
        return None;
    }
    let fields: Vec<&str> = line.splitn(8, ':').collect();
    let [user, hash, _uid, _gid, _gecos, _home, _shell, extra] = fields.as_slice() else {
        return None;
    };
    let words: Vec<&str> = extra.split_whitespace().collect();
    let quota_mb = words
        .iter()
        .find_map(|w| w.strip_prefix(QUOTA_PREFIX))
        .and_then(|q| q.strip_suffix('M'))
        .and_then(|q| q.parse().ok())
        .unwrap_or(0);
    Some(Entry {
        address: (*user).to_owned(),
        hash: (*hash).to_owned(),
        quota_mb,
        suspended: words.contains(&"nologin"),
    })
}

/// The line of `address` in `content`, if any.
pub(crate) fn find<'c>(content: &'c str, address: &str) -> Option<&'c str> {
    content.lines().find(|l| user_of(l) == Some(address))
}

/// `content` with the line of `address` replaced by `line` (at its place,
/// or appended) or removed (`None`); other lines are kept as they are,
/// duplicates of the address dropped. `None` when nothing changes.
pub(crate) fn replace(content: &str, address: &str, line: Option<&str>) -> Option<String> {
    let mut out = String::with_capacity(content.len() + 200);
    let mut placed = false;
    for l in content.lines() {
        if user_of(l) == Some(address) {
            if let (Some(new), false) = (line, placed) {
                out.push_str(new);
                out.push('\n');
            }
            placed = true;
        } else {
            out.push_str(l);
            out.push('\n');
        }
    }
    if let (Some(new), false) = (line, placed) {
        out.push_str(new);
        out.push('\n');
    }
    (out != content).then_some(out)
}

fn user_of(line: &str) -> Option<&str> {
    line.split_once(':').map(|(user, _)| user)
}

/// The mailboxes of `domain` in `content`, in file order.
pub(crate) fn mailboxes_of(content: &str, domain: &str) -> Vec<MailboxInfo> {
    content
        .lines()
        .filter_map(parse_line)
        .filter(|e| e.address.rsplit_once('@').is_some_and(|(_, d)| d == domain))
        .map(|e| MailboxInfo {
            address: e.address,
            quota_mb: e.quota_mb,
            suspended: e.suspended,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAYOUT: Layout<'static> = Layout {
        root_dir: "/srv/mail",
        uid: 995,
        gid: 994,
    };

    #[test]
    fn addresses_are_checked_strictly() {
        let a = parse_address("alice.b-c_d@t.test").unwrap();
        assert_eq!((a.local, a.domain), ("alice.b-c_d", "t.test"));
        for bad in [
            "alice",
            "a+tag@t.test",
            "@t.test",
            "alice@",
            "Alice@t.test",
            "a b@t.test",
            "a:b@t.test",
            "../x@t.test",
            "..@t.test",
            ".a@t.test",
            "a.@t.test",
            "-a@t.test",
            "a@b@t.test",
            "a@t.test/x",
            "a@localhost",
            "a/b@t.test",
            "a'b@t.test",
            "a\n@t.test",
        ] {
            assert!(parse_address(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn lines_follow_the_passwd_file_format_and_read_back() {
        let a = parse_address("alice@t.test").unwrap();
        let hash = "{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
        let line = LAYOUT.line(&a, hash, 1024, false);
        assert_eq!(
            line,
            format!(
                "alice@t.test:{hash}:995:994::/srv/mail/t.test/alice::userdb_quota_rule=*:storage=1024M"
            )
        );
        let suspended = LAYOUT.line(&a, hash, 0, true);
        assert!(suspended.ends_with("/srv/mail/t.test/alice::nologin reason=suspended"));
        assert_eq!(
            parse_line(&line).unwrap(),
            Entry {
                address: "alice@t.test".into(),
                hash: hash.into(),
                quota_mb: 1024,
                suspended: false
            }
        );
        let e = parse_line(&LAYOUT.line(&a, hash, 5, true)).unwrap();
        assert_eq!((e.quota_mb, e.suspended), (5, true));
        assert!(parse_line("# comment").is_none());
        assert!(parse_line("broken:line").is_none());
    }

    #[test]
    fn replacing_keeps_other_lines_and_leaves_one_per_address() {
        let content = "# managed\nbob@t.test:H:1:1::/h::\nalice@t.test:OLD:1:1::/h::\nalice@t.test:DUP:1:1::/h::\n";
        let new = replace(content, "alice@t.test", Some("alice@t.test:NEW:1:1::/h::")).unwrap();
        assert_eq!(
            new,
            "# managed\nbob@t.test:H:1:1::/h::\nalice@t.test:NEW:1:1::/h::\n"
        );
        assert_eq!(
            replace(&new, "alice@t.test", Some("alice@t.test:NEW:1:1::/h::")),
            None
        );
        let added = replace("", "carol@t.test", Some("carol@t.test:X:1:1::/h::")).unwrap();
        assert_eq!(added, "carol@t.test:X:1:1::/h::\n");
        let removed = replace(&new, "alice@t.test", None).unwrap();
        assert_eq!(removed, "# managed\nbob@t.test:H:1:1::/h::\n");
        assert_eq!(replace(&removed, "alice@t.test", None), None);
        assert_eq!(
            find(&new, "alice@t.test"),
            Some("alice@t.test:NEW:1:1::/h::")
        );
        assert_eq!(find(&new, "alice@t.tes"), None);
        let no_newline = replace("bob@t.test:H:1:1::/h::", "x@t.test", None).unwrap();
        assert_eq!(no_newline, "bob@t.test:H:1:1::/h::\n");
    }

    #[test]
    fn mailboxes_are_listed_per_domain() {
        let a = parse_address("a@t.test").unwrap();
        let b = parse_address("b@other.test").unwrap();
        let c = parse_address("c@t.test").unwrap();
        let content = [
            LAYOUT.line(&a, "{X}h", 10, false),
            LAYOUT.line(&b, "{X}h", 10, false),
            LAYOUT.line(&c, "{X}h", 0, true),
        ]
        .join("\n");
        let list = mailboxes_of(&content, "t.test");
        assert_eq!(
            list,
            vec![
                MailboxInfo {
                    address: "a@t.test".into(),
                    quota_mb: 10,
                    suspended: false
                },
                MailboxInfo {
                    address: "c@t.test".into(),
                    quota_mb: 0,
                    suspended: true
                },
            ]
        );
    }

    #[test]
    fn hashes_are_argon2id_phc_strings_with_the_dovecot_scheme() {
        let h = hash_password("correct horse").unwrap();
        assert!(
            h.starts_with("{ARGON2ID}$argon2id$v=19$m=19456,t=2,p=1$"),
            "{h}"
        );
        assert_ne!(h, hash_password("correct horse").unwrap(), "salted");
        assert_eq!(normalise_hash(&h).unwrap(), h);
        let bare = h.trim_start_matches("{ARGON2ID}");
        assert_eq!(normalise_hash(bare).unwrap(), h);
        assert!(hash_password("").is_err());
        for bad in [
            "",
            "plain",
            "{ARGON2ID}",
            "{}x",
            "{a b}x",
            "$argon2id$a:b",
            "{X}a b",
            "{X}a\nb",
            "{PLAIN}secret",
            "{CRYPT}$1$abc",
            "$argon2i$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
            "{ARGON2ID}$argon2id$",
        ] {
            assert!(normalise_hash(bad).is_err(), "{bad:?}");
        }
    }
}
