//! HTTPS for hosted sites, end to end through the real binary against the
//! harness's Pebble (an ACME CA validating HTTP-01 at the web node's nginx,
//! resolving names through mPanel's PowerDNS): a paid site gets a
//! certificate and is served over HTTPS; renewal swaps it without a failed
//! request; a name that does not reach the node fails, is retried with
//! back-off and leaves HTTP serving; uploads are checked; termination
//! revokes. Checked as a browser would: curl and openssl against the node.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use mpanel_domain::ManualClock;
use mpanel_domain::tls::IssueCertificate;
use mpanel_provision::certificates::AcmeSettings;
use mpanel_provision::domain_control::ControlSettings;
use mpanel_provision::saga::Provisioner;
use serde_json::{Value, json};

use crate::provisioning_support::*;
use crate::support::*;

/// A panel whose sites get certificates from the harness's Pebble.
fn panel_with_pebble() -> Panel {
    let svc = Services::from_env();
    let directory = svc.var("PEBBLE_DIRECTORY_URL").to_owned();
    let ca = svc.var("PEBBLE_CA_FILE").to_owned();
    Panel::start_with(&[
        ("MPANEL_ACME_DIRECTORY_URL", directory.as_str()),
        ("MPANEL_ACME_CA_FILE", ca.as_str()),
    ])
}

/// A connection to the panel's database.
fn store(panel: &Panel) -> mpanel_store::Store {
    panel.block_on(async {
        mpanel_store::Store::connect(panel.database_url(), &mpanel_store::PoolSettings::default())
            .await
            .unwrap()
    })
}

/// A provisioner on the panel's database whose clock the test moves.
fn provisioner(panel: &Panel, clock: Arc<ManualClock>) -> Provisioner {
    let store = store(panel);
    Provisioner {
        store,
        clock,
        secrets: Some(mpanel_services::secret_box::SecretBox::from_base64(SECRETS_KEY).unwrap()),
        control: ControlSettings {
            resolver: "127.0.0.1:53".parse().unwrap(),
            authority_port: 53,
            recheck: time::Duration::seconds(1),
        },
        acme: AcmeSettings {
            directory_url: Some(panel.svc.var("PEBBLE_DIRECTORY_URL").to_owned()),
            ca_bundle: Some(std::fs::read(panel.svc.var("PEBBLE_CA_FILE")).unwrap()),
        },
    }
}

/// The root Pebble signs with (new at every Pebble start), as a file.
fn pebble_root(panel: &Panel) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    let url = format!("{}/roots/0", panel.svc.var("PEBBLE_MANAGEMENT_URL"));
    let out = Command::new("curl")
        .args(["-sSf", "--cacert", panel.svc.var("PEBBLE_CA_FILE"), "-o"])
        .arg(file.path())
        .arg(&url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    file
}

/// `curl https://NAME/PATH` at the web node's HTTPS port, trusting `ca`:
/// the status, or curl's error.
fn https_get(panel: &Panel, name: &str, ca: &std::path::Path) -> Result<(u16, String), String> {
    let port = panel.svc.var("WEB_HTTPS_PORT");
    let out = Command::new("curl")
        .args(["-sS", "-m", "5", "-w", "\n%{http_code}", "--cacert"])
        .arg(ca)
        .arg("--resolve")
        .arg(format!("{name}:{port}:127.0.0.1"))
        .arg(format!("https://{name}:{port}/"))
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(text(&out.stderr));
    }
    let body = text(&out.stdout);
    let (body, code) = body.rsplit_once('\n').unwrap();
    Ok((code.parse().unwrap(), body.to_owned()))
}

/// The certificate the node serves for `name`, as `openssl x509 -text`
/// prints it.
fn served_certificate(panel: &Panel, name: &str) -> String {
    let port = panel.svc.var("WEB_HTTPS_PORT");
    let script = format!(
        "openssl s_client -connect 127.0.0.1:{port} -servername {name} </dev/null 2>/dev/null \
         | openssl x509 -noout -text -serial"
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    text(&out.stdout)
}

fn serial_of(openssl_text: &str) -> String {
    openssl_text
        .lines()
        .find_map(|l| l.strip_prefix("serial="))
        .unwrap_or_default()
        .to_ascii_lowercase()
}

fn certificates(panel: &Panel, account: &str) -> Value {
    let route = format!("GET /api/hosting/accounts/{account}/certificates");
    panel.expect(200, &panel.admin, &route, None)
}

/// Waits until the site serves an ACTIVE certificate; answers it.
fn wait_active(panel: &Panel, account: &str, not_serial: Option<&str>) -> Value {
    eventually("a certificate is served", || {
        let v = certificates(panel, account);
        let active = v["certificates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["status"] == "ACTIVE" && Some(c["serial"].as_str().unwrap()) != not_serial)
            .cloned();
        active.ok_or_else(|| v.to_string())
    })
}

fn live_site(panel: &Panel) -> (String, String) {
    let domain = unique_domain();
    let order = panel.paid_order(&domain);
    panel.wait_steps(&order, "COMPLETED");
    let account = panel.find("/api/hosting/accounts", "name", &domain);
    (domain, account["id"].as_str().unwrap().to_owned())
}

#[test]
fn a_paid_site_is_served_over_https_renewed_without_a_gap_and_revoked_at_termination() {
    let panel = panel_with_pebble();
    let (domain, account) = live_site(&panel);
    let first = wait_active(&panel, &account, None);
    assert_eq!(first["source"], "ACME", "{first:#}");
    assert_eq!(first["names"], json!([domain, format!("www.{domain}")]));
    let root = pebble_root(&panel);

    // A browser's view: 200 with the site's page over HTTPS, for both names,
    // with a certificate Pebble issued; plain HTTP redirects.
    // (nginx's reload hands over to new workers a moment after it returns.)
    for name in [domain.clone(), format!("www.{domain}")] {
        let (status, body) = eventually("the site answers over HTTPS", || {
            https_get(&panel, &name, root.path())
        });
        assert_eq!(status, 200, "{name}: {body}");
        assert!(body.contains(&domain), "{name}: {body}");
    }
    let served = served_certificate(&panel, &domain);
    assert!(served.contains(&format!("DNS:{domain}")), "{served}");
    assert!(served.contains(&format!("DNS:www.{domain}")), "{served}");
    assert!(
        served.contains("Issuer: CN = Pebble Intermediate CA"),
        "{served}"
    );
    let (status, location) = panel.http_redirect(&domain);
    assert_eq!(status, 301);
    assert_eq!(location, format!("https://{domain}/"));
    let v = certificates(&panel, &account);
    assert_eq!(v["issuance"]["state"], "ISSUED", "{v:#}");
    // A name the node has no certificate for gets no other site's.
    let stranger = https_get(&panel, "stranger.test", root.path());
    assert!(stranger.is_err(), "{stranger:?}");

    // Suspended, the site answers its suspended page over HTTPS too.
    for (action, expected) in [("suspend", 503), ("unsuspend", 200)] {
        let route = format!("POST /api/hosting/accounts/{account}/{action}");
        let queued = panel.expect(202, &panel.admin, &route, None);
        panel.wait_job(queued["job_id"].as_str().unwrap());
        let (status, body) =
            eventually(action, || match https_get(&panel, &domain, root.path())? {
                (status, body) if status == expected => Ok((status, body)),
                (status, body) => Err(format!("{status}: {body}")),
            });
        if status == 503 {
            assert!(body.contains("is suspended"), "{body}");
        }
    }

    // Renewal: the daily job, with the clock 25 days before the end, gets a
    // new certificate while a client keeps asking; none of its requests fails.
    let not_after = time::OffsetDateTime::parse(
        first["not_after"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let clock = Arc::new(ManualClock::at(not_after - time::Duration::days(25)));
    let p = provisioner(&panel, clock);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let client = {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        let (port, domain) = (panel.svc.var("WEB_HTTPS_PORT").to_owned(), domain.clone());
        let ca = root.path().to_owned();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let out = Command::new("curl")
                    .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5"])
                    .arg("--cacert")
                    .arg(&ca)
                    .arg("--resolve")
                    .arg(format!("{domain}:{port}:127.0.0.1"))
                    .arg(format!("https://{domain}:{port}/"))
                    .output()
                    .unwrap();
                let counter = if text(&out.stdout) == "200" {
                    &ok
                } else {
                    &failed
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let queued = panel.block_on(p.queue_renewals()).unwrap();
    assert_eq!(queued, 1, "one certificate is due");
    let job = IssueCertificate {
        tenant_id: first_tenant(&panel, &account),
        hosting_account_id: account.parse().unwrap(),
        requested: false,
    };
    panel.block_on(p.issue_certificate(&job)).unwrap();
    let second = wait_active(&panel, &account, first["serial"].as_str());
    eventually("the new certificate is served", || {
        match serial_of(&served_certificate(&panel, &domain)) {
            s if s.trim_start_matches('0')
                == second["serial"].as_str().unwrap().trim_start_matches('0') =>
            {
                Ok(())
            }
            s => Err(s),
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    client.join().unwrap();
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "a request failed during renewal"
    );
    assert!(ok.load(Ordering::Relaxed) > 0);
    let v = certificates(&panel, &account);
    let replaced = v["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["serial"] == first["serial"])
        .unwrap();
    assert_eq!(replaced["status"], "REPLACED", "{v:#}");

    // Termination revokes at the CA and leaves no key on the node.
    let route = format!("POST /api/hosting/accounts/{account}/terminate");
    let queued = panel.expect(202, &panel.admin, &route, None);
    panel.wait_job(queued["job_id"].as_str().unwrap());
    let v = certificates(&panel, &account);
    let last = v["certificates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["serial"] == second["serial"])
        .unwrap();
    assert_eq!(last["status"], "REVOKED", "{v:#}");
    let status = pebble_status(&panel, second["serial"].as_str().unwrap());
    assert_eq!(status["Status"], "Revoked", "{status}");
    let tls_dir = std::path::Path::new(panel.svc.var("WEB_SITES_DIR"))
        .join("tls")
        .join(&domain);
    assert!(!tls_dir.exists(), "{} is still there", tls_dir.display());
}

#[test]
fn a_name_that_does_not_reach_the_node_is_retried_with_back_off_and_http_keeps_serving() {
    let panel = panel_with_pebble();
    // The site's zone points its name at an address where no web node is.
    panel.set_web_public_ipv4("127.0.0.9");
    let (domain, account) = live_site(&panel);
    let v = eventually("the issuance fails", || {
        let v = certificates(&panel, &account);
        match v["issuance"]["state"].as_str() {
            Some("FAILING") => Ok(v),
            _ => Err(v.to_string()),
        }
    });
    let issuance = &v["issuance"];
    let why = issuance["last_error"].as_str().unwrap();
    assert!(why.contains(&domain) || why.contains("127.0.0.9"), "{why}");
    assert_eq!(issuance["attempts"], 1);
    assert!(issuance["next_attempt_at"].is_string(), "{v:#}");
    assert!(v["certificates"].as_array().unwrap().is_empty(), "{v:#}");
    panel.wait_http(
        "the site is still served over HTTP",
        &domain,
        |status, body| status == 200 && body.contains(&domain),
    );

    // The next attempt waits twice as long.
    let clock = Arc::new(ManualClock::at(time::OffsetDateTime::now_utc()));
    let p = provisioner(&panel, clock.clone());
    let job = IssueCertificate {
        tenant_id: first_tenant(&panel, &account),
        hosting_account_id: account.parse().unwrap(),
        requested: false,
    };
    let err = panel.block_on(p.issue_certificate(&job)).unwrap_err();
    match err {
        mpanel_provision::DriverError::Waiting { retry_in, .. } => {
            assert_eq!(retry_in, time::Duration::minutes(2))
        }
        other => panic!("{other:?}"),
    }
    let v = certificates(&panel, &account);
    assert_eq!(v["issuance"]["attempts"], 2, "{v:#}");
}

#[test]
fn uploaded_certificates_are_checked_and_a_valid_one_is_served() {
    let ca = TestCa::new();
    let roots = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(roots.path(), ca.pem()).unwrap();
    let roots_path = roots.path().to_str().unwrap().to_owned();
    let panel = Panel::start_with(&[("MPANEL_TLS_UPLOAD_ROOTS_FILE", roots_path.as_str())]);
    let (domain, account) = live_site(&panel);
    let route = format!("POST /api/hosting/accounts/{account}/certificates");
    let now = time::OffsetDateTime::now_utc();
    let day = time::Duration::days(1);
    let (good, good_key) = ca.leaf(
        &[&domain, &format!("www.{domain}")],
        now - day,
        now + 90 * day,
    );
    let (_, other_key) = ca.leaf(&[&domain], now - day, now + 90 * day);
    let (expired, expired_key) = ca.leaf(&[&domain], now - 90 * day, now - day);
    let (elsewhere, elsewhere_key) = ca.leaf(&["elsewhere.test"], now - day, now + 90 * day);
    for (chain, key, reason) in [
        (&good, &other_key, "key_mismatch"),
        (&expired, &expired_key, "certificate_expired"),
        (&elsewhere, &elsewhere_key, "certificate_name_mismatch"),
    ] {
        let body = json!({"certificate_chain": chain, "private_key": key});
        let (status, v) = panel.call(&panel.admin, &route, Some(body));
        assert_eq!(status, 422, "{reason}: {v}");
        assert_eq!(v["reason"], reason, "{v}");
        assert!(v["detail"].as_str().unwrap().len() > 20, "{v}");
    }
    let v = certificates(&panel, &account);
    assert!(
        v["certificates"].as_array().unwrap().is_empty(),
        "nothing stored: {v:#}"
    );

    let body = json!({"certificate_chain": good, "private_key": good_key});
    let made = panel.expect(201, &panel.admin, &route, Some(body));
    assert_eq!(made["status"], "PENDING", "{made:#}");
    assert_eq!(made["source"], "UPLOADED");
    let active = wait_active(&panel, &account, None);
    assert_eq!(active["id"], made["id"]);
    // The key's sealed copy went once the node had it.
    let store = store(&panel);
    let tenant = first_tenant(&panel, &account);
    let stored = panel
        .block_on(store.certificate(tenant, made["id"].as_str().unwrap().parse().unwrap()))
        .unwrap()
        .unwrap();
    assert!(
        stored.key_sealed.is_none(),
        "the uploaded key is still in the database"
    );
    let ca_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca_file.path(), ca.pem()).unwrap();
    let (status, body) = eventually("the upload is served", || {
        https_get(&panel, &domain, ca_file.path())
    });
    assert_eq!(status, 200, "{body}");
    let served = serial_of(&served_certificate(&panel, &domain));
    assert_eq!(
        served.trim_start_matches('0'),
        made["serial"].as_str().unwrap().trim_start_matches('0')
    );
}

/// The tenant of a hosting account, from the panel's database.
fn first_tenant(panel: &Panel, account: &str) -> mpanel_domain::TenantId {
    let store = store(panel);
    let v = panel.expect(200, &panel.admin, "GET /api/auth/me", None);
    let tenant: mpanel_domain::TenantId = v["tenant_id"].as_str().unwrap().parse().unwrap();
    let found = panel.block_on(store.resource(
        mpanel_store::provisioning::ResourceKind::HostingAccount,
        tenant,
        account.parse().unwrap(),
    ));
    assert!(
        found.unwrap().is_some(),
        "the account is the admin's tenant's"
    );
    tenant
}

/// Pebble's view of a certificate (`Status`: Valid or Revoked).
fn pebble_status(panel: &Panel, serial: &str) -> Value {
    let url = format!(
        "{}/cert-status-by-serial/{}",
        panel.svc.var("PEBBLE_MANAGEMENT_URL"),
        serial.trim_start_matches('0')
    );
    let out = Command::new("curl")
        .args(["-sS", "--cacert", panel.svc.var("PEBBLE_CA_FILE")])
        .arg(&url)
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| json!(text(&out.stdout)))
}

/// A private CA whose root the panel is told to trust for uploads.
struct TestCa {
    cert: rcgen::Certificate,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl TestCa {
    fn new() -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "mPanel test upload CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let cert = params.self_signed(&key).unwrap();
        let issuer = rcgen::Issuer::new(params, key);
        Self { cert, issuer }
    }

    fn pem(&self) -> String {
        pem("CERTIFICATE", self.cert.der())
    }

    /// A leaf for `names` valid between the two times: its PEM and key.
    fn leaf(
        &self,
        names: &[&str],
        not_before: time::OffsetDateTime,
        not_after: time::OffsetDateTime,
    ) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        params.not_before = not_before;
        params.not_after = not_after;
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (
            pem("CERTIFICATE", cert.der()),
            pem("PRIVATE KEY", &key.serialize_der()),
        )
    }
}

/// DER as PEM, 64 characters a line.
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
