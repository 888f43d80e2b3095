//! What an SFTP public key may be: one plain OpenSSH public key line (type,
//! base64 key, optional simple comment), no options (`command=`, `from=`),
//! no second line. The API checks it before queuing, the web driver before
//! sending, and the node helper again.

const KEY_TYPES: [&str; 6] = [
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
];

/// Whether `key` is one plain public key line.
pub fn is_public_key_line(key: &str) -> bool {
    let words: Vec<&str> = key.split(' ').collect();
    let data_ok = |d: &str| {
        let body = d.trim_end_matches('=');
        !body.is_empty()
            && d.len() - body.len() <= 3
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    };
    let comment_ok = |c: &str| {
        c.len() <= 100
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"@._+-".contains(&b))
    };
    match words.as_slice() {
        [kind, data] => KEY_TYPES.contains(kind) && data_ok(data),
        [kind, data, comment] => KEY_TYPES.contains(kind) && data_ok(data) && comment_ok(comment),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_public_key_line;

    #[test]
    fn only_plain_public_key_lines_pass() {
        assert!(is_public_key_line(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB/x+y= me@laptop"
        ));
        assert!(is_public_key_line("ssh-rsa AAAAB3NzaC1yc2E="));
        for bad in [
            "",
            "ssh-ed25519",
            "command=\"x\" ssh-ed25519 AAAA",
            "ssh-ed25519 AAAA\nssh-rsa BBBB",
            "ssh-dss AAAA",
            "ssh-ed25519 AA$A",
            "ssh-ed25519 AAAA a comment with spaces",
            "ssh-ed25519 ====",
        ] {
            assert!(!is_public_key_line(bad), "{bad:?}");
        }
    }
}
