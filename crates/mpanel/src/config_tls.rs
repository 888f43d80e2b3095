//! The TLS keys of the configuration: where sites' certificates come from
//! (`acme_directory_url`, `none` for nowhere; `acme_ca_file` to trust a
//! private ACME server) and what an uploaded certificate may chain to
//! (`tls_upload_roots_file`). Files are read once, at start.

use std::path::Path;

use mpanel_provision::certificates::AcmeSettings;
use mpanel_services::certificates::roots_from_pem;
use mpanel_services::site_certificates::UploadRoots;

use crate::config::ConfigError;

/// What the TLS keys say.
pub struct TlsConfig {
    pub acme: AcmeSettings,
    pub upload_roots: UploadRoots,
}

pub fn check(
    directory_url: &str,
    ca_file: Option<&Path>,
    upload_roots_file: Option<&Path>,
    bad: &impl Fn(&str, &str) -> ConfigError,
) -> Result<TlsConfig, ConfigError> {
    let directory_url = match directory_url.trim() {
        "" | "none" => None,
        url if url.starts_with("https://") && url::Url::parse(url).is_ok() => Some(url.to_owned()),
        _ => {
            return Err(bad(
                "acme_directory_url",
                "must be an https:// URL of an ACME directory, or none",
            ));
        }
    };
    let ca_bundle = match ca_file {
        None => None,
        Some(path) => {
            let pem = read(path, "acme_ca_file", bad)?;
            roots_from_pem(&pem).map_err(|e| bad("acme_ca_file", &e.to_string()))?;
            Some(pem)
        }
    };
    let upload_roots = match upload_roots_file {
        None => UploadRoots::default(),
        Some(path) => {
            let pem = read(path, "tls_upload_roots_file", bad)?;
            let roots =
                roots_from_pem(&pem).map_err(|e| bad("tls_upload_roots_file", &e.to_string()))?;
            UploadRoots::new(roots)
        }
    };
    Ok(TlsConfig {
        acme: AcmeSettings {
            directory_url,
            ca_bundle,
        },
        upload_roots,
    })
}

fn read(
    path: &Path,
    key: &str,
    bad: &impl Fn(&str, &str) -> ConfigError,
) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| bad(key, &format!("cannot read {}: {e}", path.display())))
}
