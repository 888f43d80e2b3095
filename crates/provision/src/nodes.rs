//! Drivers for the servers of the inventory: credentials opened with the
//! secrets key, the SSH key and host key written to a private temporary
//! folder for as long as the driver lives.

use std::path::PathBuf;

use mpanel_services::secret_box::SecretBox;
use mpanel_services::servers::{Credentials, open_credentials};
use mpanel_store::servers::ServerRecord;
use serde_json::Value;

use crate::DriverError;
use crate::dns::PowerDns;
use crate::mail::MailNode;
use crate::ssh::SshTarget;
use crate::web::WebNode;

fn setting<'a>(s: &'a ServerRecord, key: &str) -> Result<&'a str, DriverError> {
    s.settings.get(key).and_then(Value::as_str).ok_or_else(|| {
        DriverError::Permanent(format!("server {} has no {key:?} in its settings", s.name))
    })
}

fn number(s: &ServerRecord, key: &str) -> Result<u32, DriverError> {
    s.settings
        .get(key)
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| DriverError::Permanent(format!("server {} has no numeric {key:?}", s.name)))
}

fn opened(sb: &SecretBox, s: &ServerRecord) -> Result<Credentials, DriverError> {
    open_credentials(sb, s).map_err(|e| DriverError::Permanent(e.to_string()))
}

/// An SSH target whose key files live as long as this value.
pub struct Ssh {
    pub target: SshTarget,
    _dir: tempfile::TempDir,
}

/// The SSH target of a server with SSH credentials and a `host_key`
/// setting (`ssh-ed25519 AAAA…`).
pub fn ssh(sb: &SecretBox, s: &ServerRecord) -> Result<Ssh, DriverError> {
    let Credentials::Ssh { user, private_key } = opened(sb, s)? else {
        return Err(DriverError::Permanent(format!(
            "server {} has no SSH credentials",
            s.name
        )));
    };
    let host_key = setting(s, "host_key")?;
    let dir = crate::ssh::scratch::folder("")
        .map_err(|e| DriverError::Transient(format!("cannot make a key folder: {e}")))?;
    let key_path: PathBuf = dir.path().join("id");
    let known_hosts: PathBuf = dir.path().join("known_hosts");
    let port = u16::try_from(s.port).unwrap_or(22);
    let host = if port == 22 {
        s.address.clone()
    } else {
        format!("[{}]:{port}", s.address)
    };
    let write = |path: &PathBuf, text: String| {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        opts.open(path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| DriverError::Transient(format!("cannot write a key file: {e}")))
    };
    let mut key = private_key;
    if !key.ends_with('\n') {
        key.push('\n');
    }
    write(&key_path, key)?;
    write(&known_hosts, format!("{host} {host_key}\n"))?;
    Ok(Ssh {
        target: SshTarget {
            host: s.address.clone(),
            port,
            user,
            key_path,
            known_hosts,
        },
        _dir: dir,
    })
}

/// A web node: settings `nginx_conf`, `sites_dir`, `root_dir`, `listen`,
/// optional `nginx_bin`, `helper` (default `sudo -n
/// /usr/local/sbin/mpanel-web-helper`), `php_socket_dir` (default
/// `/run/mpanel-php`) and `tls_listen` (default `443`).
pub fn web(sb: &SecretBox, s: &ServerRecord) -> Result<(WebNode, Ssh), DriverError> {
    let ssh = ssh(sb, s)?;
    let node = WebNode {
        ssh: ssh.target.clone(),
        nginx_conf: setting(s, "nginx_conf")?.to_owned(),
        sites_dir: setting(s, "sites_dir")?.to_owned(),
        root_dir: setting(s, "root_dir")?.to_owned(),
        listen: setting(s, "listen").unwrap_or("80").to_owned(),
        nginx_bin: setting(s, "nginx_bin")
            .unwrap_or("/usr/sbin/nginx")
            .to_owned(),
        helper: setting(s, "helper")
            .unwrap_or("sudo -n /usr/local/sbin/mpanel-web-helper")
            .to_owned(),
        php_socket_dir: setting(s, "php_socket_dir")
            .unwrap_or("/run/mpanel-php")
            .to_owned(),
        tls_listen: setting(s, "tls_listen").unwrap_or("443").to_owned(),
    };
    Ok((node, ssh))
}

/// A mail node: settings `passwd_file`, `root_dir`, `uid`, `gid`, optional
/// `reload_cmd` (none by default: Dovecot sees a change within a second).
pub fn mail(sb: &SecretBox, s: &ServerRecord) -> Result<(MailNode, Ssh), DriverError> {
    let ssh = ssh(sb, s)?;
    let node = MailNode {
        ssh: ssh.target.clone(),
        passwd_file: setting(s, "passwd_file")?.to_owned(),
        root_dir: setting(s, "root_dir")?.to_owned(),
        uid: number(s, "uid")?,
        gid: number(s, "gid")?,
        reload_cmd: setting(s, "reload_cmd").unwrap_or("").to_owned(),
    };
    Ok((node, ssh))
}

/// A PowerDNS server: API credentials; optional `server_id` setting.
pub fn dns(sb: &SecretBox, s: &ServerRecord) -> Result<PowerDns, DriverError> {
    let Credentials::Api { url, key } = opened(sb, s)? else {
        return Err(DriverError::Permanent(format!(
            "server {} has no API credentials",
            s.name
        )));
    };
    PowerDns::new(&url, &key, setting(s, "server_id").unwrap_or("localhost"))
}

/// The nameservers a DNS server's zones list (`nameservers` setting).
pub fn nameservers(s: &ServerRecord) -> Vec<String> {
    s.settings
        .get("nameservers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_else(|| vec![format!("{}.", s.address.trim_end_matches('.'))])
}
