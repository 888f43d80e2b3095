//! A domain goes live only once its customer proved control of it, checked
//! on the real services: the world's DNS is the harness's second PowerDNS
//! (`WORLD_DNS_*`), which mPanel never writes to, so mPanel's own zones can
//! never count as a proof. Until then the paid order waits, and mPanel's
//! PowerDNS holds no zone and nginx no site; a wrong token does not count;
//! the TXT token or a delegation to the provider's name servers makes it
//! live; seven days without proof (on an injected clock) fail it cleanly.

use std::sync::Arc;

use mpanel_domain::ManualClock;
use mpanel_provision::DriverError;
use mpanel_provision::domain_control::ControlSettings;
use mpanel_provision::saga::{ProvisionSubscription, Provisioner};
use serde_json::{Value, json};

use crate::provisioning_support::*;

/// The name servers the panel's DNS server gives its zones.
const PROVIDER_NS: &str = "ns1.example.net.";

/// The world's DNS, through its PowerDNS API.
struct World<'a> {
    panel: &'a Panel,
    client: reqwest::Client,
}

impl<'a> World<'a> {
    fn new(panel: &'a Panel) -> Self {
        Self {
            panel,
            client: reqwest::Client::new(),
        }
    }

    fn send(&self, req: reqwest::RequestBuilder) -> (u16, String) {
        let key = self.panel.svc.var("WORLD_DNS_API_KEY");
        self.panel.block_on(async {
            let res = req.header("x-api-key", key).send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        })
    }

    fn url(&self, path: &str) -> String {
        let api = self.panel.svc.var("WORLD_DNS_API_URL");
        format!("{api}/api/v1/servers/localhost{path}")
    }

    /// A zone served by someone other than the provider (its NS records
    /// name `nameservers`).
    fn zone(&self, name: &str, nameservers: &[&str]) {
        let body =
            json!({"name": format!("{name}."), "kind": "Native", "nameservers": nameservers});
        let (status, text) = self.send(self.client.post(self.url("/zones")).json(&body));
        assert_eq!(status, 201, "world zone {name}: {text}");
    }

    /// Replaces the records of `name`/`rtype` in `zone`.
    fn records(&self, zone: &str, name: &str, rtype: &str, contents: &[String]) {
        let records: Vec<Value> = contents
            .iter()
            .map(|c| json!({"content": c, "disabled": false}))
            .collect();
        let body = json!({"rrsets": [{"name": format!("{name}."), "type": rtype, "ttl": 60,
            "changetype": "REPLACE", "records": records}]});
        let path = format!("/zones/{zone}.");
        let (status, text) = self.send(self.client.patch(self.url(&path)).json(&body));
        assert_eq!(status, 204, "world records {name} {rtype}: {text}");
    }

    fn txt(&self, zone: &str, name: &str, value: &str) {
        self.records(zone, name, "TXT", &[format!("\"{value}\"")]);
    }
}

fn order(panel: &Panel, id: &str) -> Value {
    panel.expect(200, &panel.admin, &format!("GET /api/orders/{id}"), None)
}

/// Waits until the order's job has looked for the proof, found none and
/// waits (every step shows it, none failed), and the last look saw
/// `seen`; the order.
fn wait_waiting(panel: &Panel, id: &str, seen: &str) -> Value {
    eventually(
        &format!("order {id} waits for verification ({seen})"),
        || {
            let order = order(panel, id);
            let proof = &order["domain_verifications"][0];
            let steps = order["items"][0]["steps"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let waiting = !steps.is_empty()
                && steps
                    .iter()
                    .all(|s| s["state"] == "WAITING_FOR_VERIFICATION");
            let last = proof["last_result"].as_str().unwrap_or_default();
            if proof["status"] == "PENDING" && waiting && last.contains(seen) {
                Ok(order)
            } else {
                Err(format!("{order:#}"))
            }
        },
    )
}

/// Nothing of `domain` is on the provider's nodes.
fn assert_nothing_made(panel: &Panel, domain: &str) {
    let (zone, body) = panel.pdns_zone(domain);
    assert_eq!(
        zone, 404,
        "mPanel's PowerDNS holds no zone {domain}: {body}"
    );
    let (status, body) = panel.http(domain).unwrap();
    assert_eq!(status, 404, "no site for {domain}: {body}");
}

#[test]
fn an_unproven_domain_waits_and_goes_live_once_its_txt_token_is_published() {
    let panel = Panel::start_requiring_domain_control();
    let world = World::new(&panel);
    let domain = unique_domain();
    // The customer's domain is served by another DNS provider today.
    world.zone(&domain, &["ns1.other-dns.example."]);
    let id = panel.paid_order(&domain);

    let waiting = wait_waiting(&panel, &id, "no TXT record");
    let proof = &waiting["domain_verifications"][0];
    assert_eq!(proof["domain"], domain.as_str(), "{waiting:#}");
    assert_eq!(proof["txt_name"], format!("_mpanel-challenge.{domain}"));
    let token = proof["txt_value"].as_str().unwrap().to_owned();
    let hex = token.strip_prefix("mpanel-verify=").unwrap();
    assert!(hex.len() >= 32, "at least 128 bits: {token}");
    assert!(proof["verified_at"].is_null() && proof["method"].is_null());
    let last = proof["last_result"].as_str().unwrap();
    assert!(
        last.contains("NS ns1.other-dns.example (by the resolver)"),
        "{last}"
    );
    let step = &waiting["items"][0]["steps"][0];
    assert!(
        step["last_error"]
            .as_str()
            .unwrap()
            .contains("waiting for proof of control"),
        "{step}"
    );
    assert_nothing_made(&panel, &domain);

    // A token that is not this order's does not count.
    let challenge = format!("_mpanel-challenge.{domain}");
    let wrong = format!("mpanel-verify={}", "0".repeat(40));
    world.txt(&domain, &challenge, &wrong);
    wait_waiting(&panel, &id, "do not hold the token");
    assert_nothing_made(&panel, &domain);

    // The right one does: the job, looking again, makes it live.
    world.txt(&domain, &challenge, &token);
    let done = panel.wait_steps(&id, "COMPLETED");
    let proof = &done["domain_verifications"][0];
    assert_eq!(proof["status"], "VERIFIED", "{done:#}");
    assert_eq!(proof["method"], "TXT");
    assert!(proof["verified_at"].is_string(), "{done:#}");
    let (zone, body) = panel.pdns_zone(&domain);
    assert_eq!(zone, 200, "{body}");
    panel.wait_http("the site is served", &domain, |status, body| {
        status == 200 && body.contains(&domain)
    });
}

#[test]
fn a_domain_delegated_to_the_providers_name_servers_goes_live_without_a_txt_record() {
    let panel = Panel::start_requiring_domain_control();
    let world = World::new(&panel);
    // The world's parent zone (a registry, served by ns.PARENT) delegates
    // the customer's domain to the provider, whose servers hold no zone for
    // it yet: the delegation is read from the parent's server.
    let parent = unique_domain();
    let registry_ns = format!("ns.{parent}");
    world.zone(&parent, &[&format!("{registry_ns}.")]);
    world.records(&parent, &registry_ns, "A", &["127.0.0.1".to_owned()]);
    let domain = format!("shop.{parent}");
    world.records(&parent, &domain, "NS", &[PROVIDER_NS.to_owned()]);
    let id = panel.paid_order(&domain);
    let done = panel.wait_steps(&id, "COMPLETED");
    let proof = &done["domain_verifications"][0];
    assert_eq!(proof["status"], "VERIFIED", "{done:#}");
    assert_eq!(proof["method"], "DELEGATION");
    let seen = proof["last_result"].as_str().unwrap();
    assert!(
        seen.contains("delegated to ns1.example.net (by the parent zone)"),
        "{seen}"
    );
    let (zone, body) = panel.pdns_zone(&domain);
    assert_eq!(zone, 200, "{body}");

    // Its owner leaves; the registry still delegates the name to us. For a
    // stranger who orders it next, that dangling delegation proves nothing:
    // only the TXT token does.
    let sub = done["items"][0]["subscription_id"].as_str().unwrap();
    panel.expect(
        200,
        &panel.admin,
        &format!("POST /api/billing/subscriptions/{sub}/cancel"),
        Some(json!({"mode": "IMMEDIATE"})),
    );
    let mut body = panel.order_body(&domain, "tx-stranger");
    body["customer"]["email"] = json!("stranger@example.org");
    // The name is free once the cancelled site and zone are taken down.
    let placed = eventually("the name is free again", || {
        match panel.post_order(&body, "tx-stranger") {
            (201, placed) => Ok(placed),
            (_, refused) => Err(refused.to_string()),
        }
    });
    let id = placed["order_id"].as_str().unwrap();
    let waiting = wait_waiting(&panel, id, "no TXT record");
    let step = &waiting["items"][0]["steps"][0];
    assert!(
        !step["last_error"]
            .as_str()
            .unwrap()
            .contains("or delegate it"),
        "{step}"
    );
}

#[test]
fn seven_days_without_proof_fail_the_order_and_leave_nothing_made() {
    let panel = Panel::start_requiring_domain_control();
    let domain = unique_domain();
    World::new(&panel).zone(&domain, &["ns1.other-dns.example."]);
    let id = panel.paid_order(&domain);
    let waiting = wait_waiting(&panel, &id, "no TXT record");
    let job_id = waiting["items"][0]["steps"][0]["job_id"].as_str().unwrap();
    let job = panel.expect(
        200,
        &panel.operator,
        &format!("GET /api/ops/jobs/{job_id}"),
        None,
    );
    let payload: ProvisionSubscription = serde_json::from_value(job["payload"].clone()).unwrap();

    // The same job, run by a provisioner whose clock the test moves.
    let store = panel.block_on(async {
        mpanel_store::Store::connect(panel.database_url(), &mpanel_store::PoolSettings::default())
            .await
            .unwrap()
    });
    let clock = Arc::new(ManualClock::at(time::OffsetDateTime::now_utc()));
    let provisioner = Provisioner {
        acme: Default::default(),
        store,
        clock: clock.clone(),
        secrets: Some(mpanel_services::secret_box::SecretBox::from_base64(SECRETS_KEY).unwrap()),
        control: ControlSettings {
            resolver: format!("127.0.0.1:{}", panel.svc.var("WORLD_DNS_PORT"))
                .parse()
                .unwrap(),
            authority_port: panel.svc.var("WORLD_DNS_PORT").parse().unwrap(),
            recheck: time::Duration::seconds(1),
        },
    };
    clock.advance(time::Duration::days(6));
    let err = panel
        .block_on(provisioner.provision(&payload, false))
        .unwrap_err();
    assert!(matches!(err, DriverError::Waiting { .. }), "day 6: {err:?}");

    clock.advance(time::Duration::days(1) + time::Duration::minutes(1));
    let err = panel
        .block_on(provisioner.provision(&payload, false))
        .unwrap_err();
    match &err {
        DriverError::Permanent(m) => {
            assert!(m.contains("not proven within 7 days"), "{m}");
            assert!(m.contains("what was made before was removed"), "{m}");
        }
        other => panic!("day 7: {other:?}"),
    }
    assert_nothing_made(&panel, &domain);
    let order = order(&panel, &id);
    assert_eq!(
        order["domain_verifications"][0]["status"], "PENDING",
        "{order:#}"
    );
}
