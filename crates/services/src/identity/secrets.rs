//! Random secrets: refresh tokens, API tokens, generated passwords, keys.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::ServiceError;

/// `N` random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], ServiceError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf)
        .map_err(|e| ServiceError::internal_msg(format!("no randomness: {e}")))?;
    Ok(buf)
}

/// A refresh token: `mprt_` + 256 random bits.
pub fn new_refresh_token() -> Result<String, ServiceError> {
    Ok(format!(
        "mprt_{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)
    ))
}

/// The token of an invitation or password-reset link: `mplk_` + 256
/// random bits, URL-safe.
pub fn new_link_token() -> Result<String, ServiceError> {
    Ok(format!(
        "mplk_{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>()?)
    ))
}

/// A password for an account created without one: 24 characters.
pub fn new_password() -> Result<String, ServiceError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<18>()?))
}
