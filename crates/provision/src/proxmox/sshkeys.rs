//! The `sshkeys` config value (§3 PUT config, §5 "sshkeys encoding"):
//! PVE stores it percent-encoded and checks it against
//! `^[-%a-zA-Z0-9_.!~*'()]*$` (`pve_verify_urlencoded`), so `+` for a
//! space is refused and `:`, `/`, `+`, `=`, `@` must be escaped. Several
//! keys are joined with a newline (`%0A`). The form body then encodes the
//! value a second time; GET config returns the stored, still encoded form.

use percent_encoding::{percent_decode_str, utf8_percent_encode};

use super::values::UNRESERVED;

/// Percent-encodes OpenSSH public keys for the `sshkeys` config value the
/// way PVE expects: the keys (trimmed, empty ones left out) joined with
/// `\n`, then RFC 3986 encoded (only `A-Za-z0-9-._~` stay; a space is
/// `%20`, never `+`).
pub fn encode_ssh_keys(keys: &[String]) -> String {
    let joined = keys
        .iter()
        .map(|k| k.trim())
        .filter(|k| !k.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    utf8_percent_encode(&joined, UNRESERVED).to_string()
}

/// The stored `sshkeys` value decoded (`%XX` only: a `+` stays a `+`).
pub fn decode_ssh_keys(stored: &str) -> String {
    percent_decode_str(stored).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::{decode_ssh_keys, encode_ssh_keys};

    #[test]
    fn keys_are_joined_by_newline_and_encoded_without_plus() {
        let keys = vec![
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK+x/y= alice@laptop\n".to_owned(),
            String::new(),
            "ssh-rsa AAAAB3Nza+/= bob".to_owned(),
        ];
        let encoded = encode_ssh_keys(&keys);
        assert_eq!(
            encoded,
            "ssh-ed25519%20AAAAC3NzaC1lZDI1NTE5AAAAIK%2Bx%2Fy%3D%20alice%40laptop%0A\
             ssh-rsa%20AAAAB3Nza%2B%2F%3D%20bob"
        );
        // What PVE's pve_verify_urlencoded accepts.
        assert!(
            encoded
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-%_.!~*'()".contains(c))
        );
        assert_eq!(
            decode_ssh_keys(&encoded),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK+x/y= alice@laptop\nssh-rsa AAAAB3Nza+/= bob"
        );
        assert_eq!(encode_ssh_keys(&[]), "");
    }
}
