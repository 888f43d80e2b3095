//! The PowerDNS driver against the real PowerDNS of the harness
//! (`PDNS_API_URL`, `PDNS_API_KEY`, `PDNS_DNS_PORT`); answers are checked
//! with real DNS queries (`dig`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mpanel_domain::dns::{RecordSet, RecordType, template_records};
use mpanel_provision::dns::PowerDns;
use mpanel_provision::{DriverError, Ensured};

const WEB_IP: &str = "192.0.2.10";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run these tests under `bash scripts/test.sh`, which starts \
             PowerDNS and exports PDNS_API_URL, PDNS_API_KEY and PDNS_DNS_PORT"
        )
    })
}

fn pdns() -> PowerDns {
    PowerDns::new(&env("PDNS_API_URL"), &env("PDNS_API_KEY"), "localhost").unwrap()
}

fn nameservers() -> Vec<String> {
    vec!["ns1.example.net.".to_owned(), "ns2.example.net.".to_owned()]
}

/// A zone name no other test (process or run) uses, already absent.
async fn fresh_zone(dns: &PowerDns, tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
        % 1_000_000_000;
    let zone = format!("{tag}-{}-{n}-{micros}.mpanel.test.", std::process::id());
    dns.delete_zone(&zone).await.unwrap();
    zone
}

/// `dig +short` answers for one name and type at the harness's PowerDNS.
async fn dig(name: &str, rtype: &str) -> Vec<String> {
    let out = dig_raw(&["+short", rtype, name]).await;
    out.lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect()
}

/// The response status (`NOERROR`, `NXDOMAIN`, `REFUSED` …) for a name.
async fn dig_status(name: &str, rtype: &str) -> String {
    let out = dig_raw(&[rtype, name]).await;
    let status = out
        .split("status: ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("no status in dig output:\n{out}"));
    status.to_owned()
}

async fn dig_raw(args: &[&str]) -> String {
    let port = env("PDNS_DNS_PORT");
    let out = tokio::process::Command::new("dig")
        .args(["@127.0.0.1", "-p", &port, "+time=2", "+tries=1"])
        .args(args)
        .output()
        .await
        .expect("dig runs (package dnsutils, installed by scripts/test.sh)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "dig {args:?} failed: {stdout}");
    stdout
}

/// Polls `dig` briefly until the sorted answer is `want`; returns the last.
async fn dig_until(name: &str, rtype: &str, want: &[&str]) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut got = dig(name, rtype).await;
        got.sort();
        if got == want || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn one(zone: &[RecordSet], name: &str, rtype: RecordType) -> RecordSet {
    let found: Vec<&RecordSet> = zone
        .iter()
        .filter(|s| s.name == name && s.rtype == rtype)
        .collect();
    assert_eq!(found.len(), 1, "{name} {rtype} in {zone:#?}");
    found[0].clone()
}

#[tokio::test]
async fn ensure_zone_creates_a_zone_that_answers_over_dns() {
    let dns = pdns();
    let zone = fresh_zone(&dns, "create").await;
    let records = template_records(&zone, WEB_IP, Some("mail.example.net"));
    let www = format!("www.{zone}");

    let ensured = dns
        .ensure_zone(&zone, &nameservers(), &records)
        .await
        .unwrap();
    assert_eq!(ensured, Ensured::Created);

    assert_eq!(dig_until(&zone, "A", &[WEB_IP]).await, [WEB_IP]);
    assert_eq!(dig_until(&www, "A", &[WEB_IP]).await, [WEB_IP]);
    assert_eq!(dig(&zone, "MX").await, ["10 mail.example.net."]);
    assert_eq!(dig(&zone, "TXT").await, ["\"v=spf1 mx a ~all\""]);
    assert_eq!(dig(&zone, "NS").await.len(), 2);

    let sets = dns.zone(&zone).await.unwrap().expect("the zone exists");
    assert_eq!(one(&sets, &zone, RecordType::A).records, [WEB_IP]);
    let mut ns = one(&sets, &zone, RecordType::NS).records;
    ns.sort();
    assert_eq!(ns, nameservers());
    one(&sets, &zone, RecordType::SOA);
    dns.delete_zone(&zone).await.unwrap();
}

#[tokio::test]
async fn ensure_zone_twice_is_already_there_without_duplicates() {
    let dns = pdns();
    let zone = fresh_zone(&dns, "twice").await;
    let records = template_records(&zone, WEB_IP, Some("mail.example.net"));
    assert_eq!(
        dns.ensure_zone(&zone, &nameservers(), &records)
            .await
            .unwrap(),
        Ensured::Created
    );
    let before = dns.zone(&zone).await.unwrap().unwrap();

    let again = dns
        .ensure_zone(&zone, &nameservers(), &records)
        .await
        .unwrap();
    assert_eq!(again, Ensured::AlreadyThere);
    let after = dns.zone(&zone).await.unwrap().unwrap();
    assert_eq!(after, before, "nothing was written the second time");
    for set in &after {
        let same = after
            .iter()
            .filter(|s| s.name == set.name && s.rtype == set.rtype)
            .count();
        assert_eq!(same, 1, "one rrset per name and type: {after:#?}");
    }
    assert_eq!(one(&after, &zone, RecordType::A).records, [WEB_IP]);
    assert_eq!(dig(&zone, "A").await, [WEB_IP]);
    dns.delete_zone(&zone).await.unwrap();
}

#[tokio::test]
async fn ensure_zone_replaces_a_changed_record_and_keeps_the_others() {
    let dns = pdns();
    let zone = fresh_zone(&dns, "change").await;
    let first = template_records(&zone, WEB_IP, None);
    dns.ensure_zone(&zone, &nameservers(), &first)
        .await
        .unwrap();
    // A record the customer added since; ensure_zone must leave it.
    let note = RecordSet {
        name: format!("note.{zone}"),
        rtype: RecordType::TXT,
        ttl: 300,
        records: vec!["\"kept\"".to_owned()],
    };
    dns.replace_rrset(&zone, &note).await.unwrap();

    let moved = template_records(&zone, "192.0.2.20", None);
    assert_eq!(
        dns.ensure_zone(&zone, &nameservers(), &moved)
            .await
            .unwrap(),
        Ensured::Created
    );

    assert_eq!(dig_until(&zone, "A", &["192.0.2.20"]).await, ["192.0.2.20"]);
    assert_eq!(
        dig_until(&format!("www.{zone}"), "A", &["192.0.2.20"]).await,
        ["192.0.2.20"]
    );
    assert_eq!(dig(&format!("note.{zone}"), "TXT").await, ["\"kept\""]);
    let sets = dns.zone(&zone).await.unwrap().unwrap();
    assert_eq!(one(&sets, &zone, RecordType::A).records, ["192.0.2.20"]);
    assert_eq!(
        dns.ensure_zone(&zone, &nameservers(), &moved)
            .await
            .unwrap(),
        Ensured::AlreadyThere
    );
    dns.delete_zone(&zone).await.unwrap();
}

#[tokio::test]
async fn replace_and_delete_rrset_are_served_and_repeatable() {
    let dns = pdns();
    let zone = fresh_zone(&dns, "rrset").await;
    dns.ensure_zone(&zone, &nameservers(), &[]).await.unwrap();
    let shop = RecordSet {
        name: "shop".to_owned(),
        rtype: RecordType::A,
        ttl: 0,
        records: vec!["192.0.2.31".to_owned(), "192.0.2.32".to_owned()],
    };
    let name = format!("shop.{zone}");
    dns.replace_rrset(&zone, &shop).await.unwrap();
    dns.replace_rrset(&zone, &shop).await.unwrap();
    assert_eq!(
        dig_until(&name, "A", &["192.0.2.31", "192.0.2.32"]).await,
        ["192.0.2.31", "192.0.2.32"]
    );
    let sets = dns.zone(&zone).await.unwrap().unwrap();
    assert_eq!(one(&sets, &name, RecordType::A).ttl, 3600);

    dns.delete_rrset(&zone, "shop", RecordType::A)
        .await
        .unwrap();
    dns.delete_rrset(&zone, "shop", RecordType::A)
        .await
        .unwrap();
    assert!(dig_until(&name, "A", &[]).await.is_empty());
    let sets = dns.zone(&zone).await.unwrap().unwrap();
    assert!(!sets.iter().any(|s| s.name == name), "{sets:#?}");

    // Content PowerDNS refuses comes back as a permanent error in its words.
    let bad = RecordSet {
        name: "t".to_owned(),
        rtype: RecordType::TXT,
        ttl: 0,
        records: vec!["not quoted".to_owned()],
    };
    match dns.replace_rrset(&zone, &bad).await {
        Err(DriverError::Permanent(m)) => assert!(m.contains("422") && m.contains("TXT"), "{m}"),
        other => panic!("expected a permanent error, got {other:?}"),
    }
    dns.delete_zone(&zone).await.unwrap();
    // Deleting a record set of a zone that is gone is fine too.
    dns.delete_rrset(&zone, "shop", RecordType::A)
        .await
        .unwrap();
}

#[tokio::test]
async fn delete_zone_removes_it_from_the_api_and_from_dns() {
    let dns = pdns();
    let zone = fresh_zone(&dns, "delete").await;
    dns.ensure_zone(
        &zone,
        &nameservers(),
        &template_records(&zone, WEB_IP, None),
    )
    .await
    .unwrap();
    assert_eq!(dig_until(&zone, "A", &[WEB_IP]).await, [WEB_IP]);

    dns.delete_zone(&zone).await.unwrap();
    assert_eq!(dns.zone(&zone).await.unwrap(), None);
    assert!(dig_until(&zone, "A", &[]).await.is_empty());
    let status = dig_status(&zone, "A").await;
    assert!(
        status == "NXDOMAIN" || status == "REFUSED",
        "status {status}"
    );
    // Deleting again is fine.
    dns.delete_zone(&zone).await.unwrap();
}

#[tokio::test]
async fn missing_zone_is_none_and_deleting_it_is_ok() {
    let dns = pdns();
    let zone = fresh_zone(&dns, "missing").await;
    assert_eq!(dns.zone(&zone).await.unwrap(), None);
    dns.delete_zone(&zone).await.unwrap();
}

#[tokio::test]
async fn ping_measures_the_api() {
    let took = pdns().ping().await.unwrap();
    assert!(took < Duration::from_secs(15), "{took:?}");
}

#[tokio::test]
async fn wrong_api_key_is_permanent_and_not_echoed() {
    let key = "not-the-key-3f9a";
    let dns = PowerDns::new(&env("PDNS_API_URL"), key, "localhost").unwrap();
    for result in [
        dns.ping().await.map(drop),
        dns.zone("example.test").await.map(drop),
        dns.ensure_zone("example.test", &nameservers(), &[])
            .await
            .map(drop),
    ] {
        match result {
            Err(DriverError::Permanent(m)) => {
                assert!(m.contains("401"), "{m}");
                assert!(!m.contains(key), "the key leaked: {m}");
            }
            other => panic!("expected a permanent error, got {other:?}"),
        }
    }
    assert!(!format!("{dns:?}").contains(key));
}

#[tokio::test]
async fn unreachable_api_is_transient() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dns = PowerDns::new(&format!("http://127.0.0.1:{port}"), "key", "localhost").unwrap();
    match dns.ping().await {
        Err(e @ DriverError::Transient(_)) => assert!(e.is_transient()),
        other => panic!("expected a transient error, got {other:?}"),
    }
    let err = dns.ensure_zone("example.test", &[], &[]).await.unwrap_err();
    assert!(err.is_transient(), "{err:?}");
}

#[tokio::test]
async fn invalid_names_are_refused_before_any_request() {
    let dns = pdns();
    for zone in ["", "bad..zone.test", "zone/../x.test"] {
        match dns.ensure_zone(zone, &nameservers(), &[]).await {
            Err(DriverError::Permanent(m)) => assert!(m.contains("zone"), "{m}"),
            other => panic!("{zone:?}: expected a permanent error, got {other:?}"),
        }
    }
    assert!(PowerDns::new("not a url", "k", "localhost").is_err());
    assert!(PowerDns::new("http://127.0.0.1:1", "k", "local/host").is_err());
}
