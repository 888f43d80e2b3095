//! What the CloudPods tests share: the Proxmox VE fake on its own runtime
//! (it must answer while the test thread waits), registered as a `CLOUD`
//! server of a bare panel, and the four seed plans as products.

use std::time::Duration;

use mpanel_pve_fake::{Config, Running};
use serde_json::{Value, json};

use crate::provisioning_support::*;

/// A public key cloud-init puts on the pod.
pub const SSH_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHQ3kKIv3dZ0kd6J3fF2m8s0Qxq2cXx4n0Q0yWw4pL8c jane@laptop";

/// The fake on a runtime of its own.
pub struct Pve {
    pub run: Running,
    http: reqwest::Client,
    rt: tokio::runtime::Runtime,
}

impl Pve {
    /// Tasks take `task` (clone, start, resize …).
    pub fn start(task: Duration) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let run = rt
            .block_on(mpanel_pve_fake::serve(Config {
                task_duration: task,
                auth_delay: Duration::from_millis(100),
                ..Config::default()
            }))
            .unwrap();
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates({
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(rustls::pki_types::CertificateDer::from(
                    run.cert_der.clone(),
                ))
                .unwrap();
            roots
        })
        .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .build()
            .unwrap();
        Self { run, http, rt }
    }

    /// `POST /__fake/<path>`.
    pub fn admin(&self, path: &str, body: Value) {
        let url = self.run.admin_url(path);
        let status = self
            .rt
            .block_on(async { self.http.post(url).json(&body).send().await })
            .unwrap()
            .status();
        assert!(status.is_success(), "{path}: {status}");
    }

    /// The VMs the fake holds (templates left out).
    pub fn vms(&self) -> Vec<Value> {
        self.run.state()["vms"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["template"] != true)
            .cloned()
            .collect()
    }

    pub fn vm(&self, vmid: u64) -> Value {
        self.vms()
            .into_iter()
            .find(|v| v["vmid"] == vmid)
            .unwrap_or(Value::Null)
    }

    /// The `CLOUD` server body for this fake (`fingerprint` to pin).
    pub fn server(&self, fingerprint: &str) -> Value {
        json!({"name": "pve-cluster", "role": "CLOUD", "address": "127.0.0.1",
            "port": self.run.addr.port(),
            "credentials": {"type": "API", "url": self.run.url,
                "key": format!("{}={}", self.run.token_id, self.run.token_secret)},
            "settings": {
                "fingerprint": fingerprint,
                "nodes": ["pve1", "pve2"],
                "templates": {"debian-12": {"pve1": 9000, "pve2": 9100}},
                "storage": "local-lvm",
                "bridge": "vmbr0",
                "ipv4_pool": {"cidr": "203.0.113.0/24", "gateway": "203.0.113.1",
                    "first": "203.0.113.10", "last": "203.0.113.250"},
                "resolvers": ["1.1.1.1", "9.9.9.9"]},
            "capacity": 1000})
    }
}

/// A bare panel with the fake as its cluster and the seed plans as
/// products; the plans' product ids by code.
pub struct Pods {
    pub panel: Panel,
    pub pve: Pve,
    pub plans: std::collections::HashMap<&'static str, String>,
}

impl Pods {
    pub fn start() -> Self {
        Self::start_with(Duration::from_millis(150))
    }

    pub fn start_with(task: Duration) -> Self {
        let panel = Panel::start_bare();
        let pve = Pve::start(task);
        let fingerprint = pve.run.fingerprint.clone();
        panel.expect(
            201,
            &panel.operator,
            "POST /api/servers",
            Some(pve.server(&fingerprint)),
        );
        let mut plans = std::collections::HashMap::new();
        for (code, vcpus, memory, disk, price) in [
            ("MINI", 1, 1024, 20, 999),
            ("PRO", 2, 2048, 50, 1999),
            ("BUSINESS", 4, 4096, 100, 3999),
        ] {
            let product = json!({"name": code, "slug": code.to_lowercase(), "category": "CLOUDPOD",
                "billing_model": "RECURRING", "status": "ACTIVE", "visibility": "PUBLIC",
                "base_currency": "EUR",
                "provisioning_template": {"type": "CLOUD_POD", "plan": code, "vcpus": vcpus,
                    "memory_mb": memory, "disk_gb": disk}});
            let v = panel.expect(
                201,
                &panel.admin,
                "POST /api/billing/products",
                Some(product),
            );
            let id = v["id"].as_str().unwrap().to_owned();
            let price = json!({"period": "MONTHLY", "currency": "EUR", "amount_minor": price});
            let route = format!("POST /api/billing/products/{id}/prices");
            panel.expect(201, &panel.admin, &route, Some(price));
            plans.insert(code, id);
        }
        Self { panel, pve, plans }
    }

    /// A signed, paid order of plan `code` with `options`; its id.
    pub fn order(&self, code: &str, reference: &str, options: Value) -> String {
        let amount = match code {
            "MINI" => 999,
            "PRO" => 1999,
            _ => 3999,
        };
        let body = json!({"customer": {"email": "jane@example.org", "name": "Jane", "country": "DE"},
            "items": [{"product_id": self.plans[code], "period": "MONTHLY", "options": options}],
            "currency": "EUR",
            "payment": {"status": "PAID", "provider": "BANK_TRANSFER", "reference": reference,
                "amount_minor": amount}});
        let (status, v) = self.panel.post_order(&body, reference);
        assert_eq!(status, 201, "{v}");
        v["order_id"].as_str().unwrap().to_owned()
    }

    /// The pod of the order's subscription, waited for until `status`.
    pub fn wait_pod(&self, subscription: &str, status: &str) -> Value {
        eventually(&format!("the pod is {status}"), || {
            let page =
                self.panel
                    .expect(200, &self.panel.admin, "GET /api/cloudpods?limit=200", None);
            let pod = page["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["subscription_id"] == subscription)
                .cloned()
                .ok_or_else(|| format!("no pod for {subscription}: {page}"))?;
            if pod["status"] == status {
                Ok(pod)
            } else {
                Err(format!("{pod:#}"))
            }
        })
    }

    /// The subscription of the order's first item.
    pub fn subscription_of(&self, order: &str) -> String {
        let v = self.panel.expect(
            200,
            &self.panel.admin,
            &format!("GET /api/orders/{order}"),
            None,
        );
        v["items"][0]["subscription_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}
