//! API token format: `mpt_` + 32 random bytes (base64url) + `_` + an
//! 8-hex-digit checksum of the random part. The prefix makes leaked tokens
//! easy to find by secret scanners; the checksum rejects typos without a
//! database lookup. Only a SHA-256 hash of the whole token is stored.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

pub const PREFIX: &str = "mpt_";
/// Characters of a token shown in listings so users can tell them apart.
pub const DISPLAY_CHARS: usize = 12;

fn checksum(body: &str) -> String {
    let digest = Sha256::digest(body.as_bytes());
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

/// A token from 32 random bytes.
pub fn format(random: &[u8; 32]) -> String {
    let body = URL_SAFE_NO_PAD.encode(random);
    format!("{PREFIX}{body}_{}", checksum(&body))
}

/// Whether `token` has the shape and checksum of one of ours.
pub fn is_well_formed(token: &str) -> bool {
    let Some(rest) = token.strip_prefix(PREFIX) else {
        return false;
    };
    let Some((body, sum)) = rest.rsplit_once('_') else {
        return false;
    };
    body.len() == 43 && sum.len() == 8 && checksum(body) == sum
}

/// The stored form of a secret token (API token or refresh token).
pub fn hash_secret(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_a_checksum() {
        let token = format(&[7u8; 32]);
        assert!(token.starts_with("mpt_"));
        assert!(is_well_formed(&token));
        let mut typo = token.clone().into_bytes();
        typo[10] = if typo[10] == b'A' { b'B' } else { b'A' };
        assert!(!is_well_formed(&String::from_utf8(typo).unwrap()));
        assert!(!is_well_formed("mpt_short_00000000"));
        assert!(!is_well_formed("eyJhbGciOi.x.y"));
        assert_eq!(hash_secret(&token).len(), 32);
    }
}
