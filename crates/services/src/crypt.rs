//! SHA-512-crypt (`$6$`), the password hash a Linux shadow file takes:
//! what the web node's SFTP logins are checked against. Ulrich Drepper's
//! specification ("Unix crypt using SHA-256 and SHA-512"), default 5000
//! rounds; made here so a job carries the hash, never the password.

use sha2::{Digest, Sha512};

const B64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const ROUNDS: usize = 5000;

/// `$6$<salt>$<hash>` of `password`, with a fresh 16-character salt.
pub fn sha512_crypt_new(password: &str) -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)?;
    let salt: String = bytes
        .iter()
        .map(|b| char::from(B64[usize::from(b & 0x3f)]))
        .collect();
    Ok(sha512_crypt(password.as_bytes(), salt.as_bytes()))
}

/// `$6$<salt>$<hash>`; the salt is cut to 16 bytes, as the specification
/// says (it must not contain `$`).
pub fn sha512_crypt(password: &[u8], salt: &[u8]) -> String {
    let salt = &salt[..salt.len().min(16)];
    let p = password;
    let b = Sha512::new()
        .chain_update(p)
        .chain_update(salt)
        .chain_update(p)
        .finalize();
    let mut a = Sha512::new().chain_update(p).chain_update(salt);
    let mut left = p.len();
    while left > 64 {
        a.update(b);
        left -= 64;
    }
    a.update(&b[..left]);
    let mut n = p.len();
    while n > 0 {
        if n & 1 == 1 {
            a.update(b);
        } else {
            a.update(p);
        }
        n >>= 1;
    }
    let a = a.finalize();
    let mut dp = Sha512::new();
    for _ in 0..p.len() {
        dp.update(p);
    }
    let p_seq = repeat(&dp.finalize(), p.len());
    let mut ds = Sha512::new();
    for _ in 0..16 + usize::from(a[0]) {
        ds.update(salt);
    }
    let s_seq = repeat(&ds.finalize(), salt.len());
    let mut c = a;
    for i in 0..ROUNDS {
        let mut h = Sha512::new();
        if i % 2 == 1 {
            h.update(&p_seq);
        } else {
            h.update(c);
        }
        if i % 3 != 0 {
            h.update(&s_seq);
        }
        if i % 7 != 0 {
            h.update(&p_seq);
        }
        if i % 2 == 1 {
            h.update(c);
        } else {
            h.update(&p_seq);
        }
        c = h.finalize();
    }
    let mut out = String::from("$6$");
    out.push_str(&String::from_utf8_lossy(salt));
    out.push('$');
    for k in 0..21 {
        let (x, y, z) = (c[k], c[k + 21], c[k + 42]);
        let (b2, b1, b0) = match k % 3 {
            0 => (x, y, z),
            1 => (y, z, x),
            _ => (z, x, y),
        };
        encode(&mut out, b2, b1, b0, 4);
    }
    encode(&mut out, 0, 0, c[63], 2);
    out
}

/// `digest` repeated to `len` bytes.
fn repeat(digest: &[u8], len: usize) -> Vec<u8> {
    digest.iter().copied().cycle().take(len).collect()
}

fn encode(out: &mut String, b2: u8, b1: u8, b0: u8, n: usize) {
    let mut w = (u32::from(b2) << 16) | (u32::from(b1) << 8) | u32::from(b0);
    for _ in 0..n {
        out.push(char::from(B64[(w & 0x3f) as usize]));
        w >>= 6;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_specification_and_openssl() {
        // The specification's own example, and `openssl passwd -6 -salt`.
        assert_eq!(
            sha512_crypt(b"Hello world!", b"saltstring"),
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
        );
        let long = "x".repeat(130);
        assert_eq!(
            sha512_crypt(long.as_bytes(), b"abcdefghijklmnopqrstuvwxyz"),
            "$6$abcdefghijklmnop$0RaDDxnDIdW3wUVFxZEKWndsiMV.U4ZJ0Bm1qKE0tJMr9x4SJYz.3PVJGJ52jrjaGNKV1.cVYMNOo14Wfasjt/"
        );
    }

    #[test]
    fn fresh_salts_differ() {
        let a = sha512_crypt_new("pw").unwrap();
        let b = sha512_crypt_new("pw").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("$6$") && a.len() == 3 + 16 + 1 + 86, "{a}");
    }
}
