//! API-token authentication as pveproxy does it: the first
//! `PVEAPIToken[= ]([^;]*)` of the Authorization header, uri-unescaped,
//! split into token id and secret at the **last** `=`. A failure is a 401
//! with the reason in the status line, an empty body, after a delay.

use percent_encoding::percent_decode_str;

use crate::envelope::Reply;
use crate::world::Shared;

pub const TOKEN_ID: &str = "mpanel@pve!ci";

/// `Ok(user@realm!token)` or the 401 to send (after the delay).
pub fn check(shared: &Shared, authorization: Option<&str>) -> Result<String, Reply> {
    let Some(value) = authorization.and_then(extract_token) else {
        return Err(Reply::bare(401, "No ticket"));
    };
    let failed = || Reply::bare(401, "Authentication failed!");
    let (id, secret) = value.rsplit_once('=').ok_or_else(failed)?;
    if shared.world().token_revoked || id != shared.token_id || secret != shared.token_secret {
        return Err(failed());
    }
    Ok(id.to_owned())
}

fn extract_token(header: &str) -> Option<String> {
    let start = header.find("PVEAPIToken")? + "PVEAPIToken".len();
    let rest = &header[start..];
    let rest = rest.strip_prefix('=').or_else(|| rest.strip_prefix(' '))?;
    let value = rest.split(';').next().unwrap_or("");
    Some(percent_decode_str(value).decode_utf8_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::extract_token;

    #[test]
    fn the_token_is_read_up_to_a_semicolon_and_unescaped() {
        assert_eq!(
            extract_token("PVEAPIToken=a@pve!ci=1%3D2;x").as_deref(),
            Some("a@pve!ci=1=2")
        );
        assert_eq!(
            extract_token("PVEAPIToken x@pve!t=s").as_deref(),
            Some("x@pve!t=s")
        );
        assert_eq!(extract_token("Bearer x"), None);
    }
}
