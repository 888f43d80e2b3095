//! TOTP, RFC 6238: HOTP (RFC 4226) over 30-second time steps, 6 digits.

use hmac::{Hmac, Mac};

pub const STEP_SECS: i64 = 30;
pub const DIGITS: u32 = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

fn hmac<M: Mac + hmac::digest::KeyInit>(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so this never fails.
    let Ok(mut mac) = <M as hmac::digest::KeyInit>::new_from_slice(key) else {
        return Vec::new();
    };
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

/// The code for time step `step`, with `digits` digits.
pub fn code_at_step(secret: &[u8], step: u64, algorithm: Algorithm, digits: u32) -> String {
    let msg = step.to_be_bytes();
    let digest = match algorithm {
        Algorithm::Sha1 => hmac::<Hmac<sha1::Sha1>>(secret, &msg),
        Algorithm::Sha256 => hmac::<Hmac<sha2::Sha256>>(secret, &msg),
        Algorithm::Sha512 => hmac::<Hmac<sha2::Sha512>>(secret, &msg),
    };
    let offset = usize::from(digest.last().copied().unwrap_or(0) & 0x0f);
    let part = digest.get(offset..offset + 4).unwrap_or(&[0, 0, 0, 0]);
    let binary = (u32::from(part[0] & 0x7f) << 24)
        | (u32::from(part[1]) << 16)
        | (u32::from(part[2]) << 8)
        | u32::from(part[3]);
    let modulo = 10u32.pow(digits.min(9));
    format!("{:0width$}", binary % modulo, width = digits as usize)
}

/// The time step of a Unix time.
pub fn step_of(unix: i64) -> u64 {
    u64::try_from(unix.div_euclid(STEP_SECS)).unwrap_or(0)
}

/// The step among `now`'s and its neighbours (±1) that `code` matches
/// (SHA-1, 6 digits), newest first; comparison is constant-time.
pub fn matching_step(secret: &[u8], code: &str, unix_now: i64) -> Option<u64> {
    let now = step_of(unix_now);
    let mut found = None;
    for step in [now + 1, now, now.saturating_sub(1)] {
        let expected = code_at_step(secret, step, Algorithm::Sha1, DIGITS);
        let same = expected.len() == code.len()
            && expected
                .bytes()
                .zip(code.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if same && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// The `otpauth://` URI authenticator apps scan.
pub fn otpauth_uri(issuer: &str, account: &str, secret_b32: &str) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={secret_b32}&issuer={}&algorithm=SHA1&digits=6&period=30",
        enc(issuer),
        enc(account),
        enc(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B: 8-digit codes at the listed times.
    #[test]
    fn rfc6238_appendix_b_vectors() {
        let sha1 = b"12345678901234567890".to_vec();
        let sha256 = b"12345678901234567890123456789012".to_vec();
        let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234".to_vec();
        let cases: [(i64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for (t, s1, s256, s512) in cases {
            assert_eq!(
                code_at_step(&sha1, step_of(t), Algorithm::Sha1, 8),
                s1,
                "SHA1 @{t}"
            );
            assert_eq!(
                code_at_step(&sha256, step_of(t), Algorithm::Sha256, 8),
                s256,
                "SHA256 @{t}"
            );
            assert_eq!(
                code_at_step(&sha512, step_of(t), Algorithm::Sha512, 8),
                s512,
                "SHA512 @{t}"
            );
        }
    }

    #[test]
    fn one_step_either_way_is_accepted() {
        let secret = b"12345678901234567890";
        let t = 1_700_000_000;
        let code = code_at_step(secret, step_of(t), Algorithm::Sha1, 6);
        assert_eq!(matching_step(secret, &code, t), Some(step_of(t)));
        assert_eq!(matching_step(secret, &code, t + 30), Some(step_of(t)));
        assert_eq!(matching_step(secret, &code, t - 30), Some(step_of(t)));
        assert_eq!(matching_step(secret, &code, t + 61), None);
        assert_eq!(
            matching_step(secret, "000000", t).is_some(),
            code == "000000"
        );
        let uri = otpauth_uri("mPanel acme", "jane@example.org", "JBSWY3DPEHPK3PXP");
        assert!(
            uri.starts_with(
                "otpauth://totp/mPanel%20acme:jane@example.org?secret=JBSWY3DPEHPK3PXP"
            ),
            "{uri}"
        );
    }
}
