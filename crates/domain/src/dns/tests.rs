//! The record set rules, good and bad inputs.

use super::*;

const Z: &str = "example.test";

fn set(name: &str, rtype: RecordType, records: &[&str]) -> RecordSet {
    RecordSet {
        name: name.to_owned(),
        rtype,
        ttl: 0,
        records: records.iter().map(|r| (*r).to_owned()).collect(),
    }
}

fn ok(name: &str, rtype: RecordType, records: &[&str]) -> RecordSet {
    validate_rrset(Z, &set(name, rtype, records), &[]).unwrap()
}

fn err(name: &str, rtype: RecordType, records: &[&str]) -> DnsRuleError {
    validate_rrset(Z, &set(name, rtype, records), &[]).unwrap_err()
}

#[test]
fn record_types_round_trip_as_upper_case() {
    for t in RecordType::ALL {
        assert_eq!(t.as_str().parse::<RecordType>().unwrap(), t);
        assert_eq!(t.to_string(), t.as_str());
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            format!("\"{}\"", t.as_str())
        );
    }
    assert!("aaaa".parse::<RecordType>().is_err());
    assert!("PTR".parse::<RecordType>().is_err());
    let json = r#"{"name":"www.example.test.","rtype":"AAAA","ttl":60,"records":["2001:db8::1"]}"#;
    let parsed: RecordSet = serde_json::from_str(json).unwrap();
    assert_eq!(parsed.rtype, RecordType::AAAA);
    assert_eq!(serde_json::to_string(&parsed).unwrap(), json);
}

#[test]
fn a_and_aaaa_take_addresses_of_their_family() {
    let a = ok("www", RecordType::A, &["192.0.2.1", " 192.0.2.2 "]);
    assert_eq!(a.name, "www.example.test.");
    assert_eq!(a.records, ["192.0.2.1", "192.0.2.2"]);
    assert_eq!(a.ttl, DEFAULT_TTL);
    let aaaa = ok("@", RecordType::AAAA, &["2001:DB8:0:0:1:0:0:1"]);
    assert_eq!(aaaa.name, "example.test.");
    assert_eq!(aaaa.records, ["2001:db8::1:0:0:1"]);
    for bad in [
        "2001:db8::1",
        "192.0.2",
        "192.0.2.010",
        "192.0.2.256",
        "host.test",
        "",
    ] {
        assert_eq!(
            err("www", RecordType::A, &[bad]).field,
            "records",
            "{bad:?}"
        );
    }
    for bad in ["192.0.2.1", "::ffff:192.0.2.1", "2001:db8::g"] {
        assert_eq!(
            err("www", RecordType::AAAA, &[bad]).field,
            "records",
            "{bad:?}"
        );
    }
}

#[test]
fn ttl_defaults_and_bounds() {
    let mut input = set("www", RecordType::A, &["192.0.2.1"]);
    for (ttl, want) in [
        (0, Some(3600)),
        (60, Some(60)),
        (86_400, Some(86_400)),
        (59, None),
        (86_401, None),
    ] {
        input.ttl = ttl;
        match (validate_rrset(Z, &input, &[]), want) {
            (Ok(out), Some(want)) => assert_eq!(out.ttl, want),
            (Err(e), None) => assert_eq!(e.field, "ttl"),
            (got, want) => panic!("ttl {ttl}: got {got:?}, wanted {want:?}"),
        }
    }
}

#[test]
fn record_counts_and_duplicates() {
    assert_eq!(err("www", RecordType::A, &[]).field, "records");
    let many: Vec<String> = (0..101)
        .map(|i| format!("10.0.{}.{}", i / 200, i % 200))
        .collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(err("www", RecordType::A, &refs).field, "records");
    assert_eq!(ok("www", RecordType::A, &refs[..100]).records.len(), 100);
    let dup = err("www", RecordType::A, &["192.0.2.1", "192.0.2.1"]);
    assert!(dup.message.contains("record 2"), "{dup}");
    // Duplicates are found after normalisation.
    assert!(
        validate_rrset(
            Z,
            &set(
                "@",
                RecordType::MX,
                &["10 MX.example.net", "10 mx.example.net."]
            ),
            &[]
        )
        .is_err()
    );
    assert!(validate_rrset(Z, &set("@", RecordType::TXT, &["hello", "\"hello\""]), &[]).is_err());
}

#[test]
fn ns_and_soa_are_managed_by_mpanel() {
    let apex_ns = err("@", RecordType::NS, &["ns1.example.net."]);
    assert_eq!(apex_ns.field, "type");
    assert!(apex_ns.message.contains("managed by mPanel"));
    assert_eq!(
        err(
            "@",
            RecordType::SOA,
            &["ns1.example.net. h.example.test. 1 2 3 4 5"]
        )
        .field,
        "type"
    );
    assert_eq!(
        err("sub", RecordType::NS, &["ns1.example.net."]).field,
        "type"
    );
}

#[test]
fn names_are_canonical_and_inside_the_zone() {
    assert_eq!(
        ok("WWW.Example.Test.", RecordType::A, &["192.0.2.1"]).name,
        "www.example.test."
    );
    assert_eq!(
        ok("*.dev", RecordType::A, &["192.0.2.1"]).name,
        "*.dev.example.test."
    );
    assert_eq!(
        err("www.other.test.", RecordType::A, &["192.0.2.1"]).field,
        "name"
    );
    assert_eq!(
        validate_rrset(
            "not a zone",
            &set("www", RecordType::A, &["192.0.2.1"]),
            &[]
        )
        .unwrap_err()
        .field,
        "zone"
    );
}

#[test]
fn cname_takes_one_absolute_host_name_away_from_the_apex() {
    let c = ok("blog", RecordType::CNAME, &["Blogs.Example.NET"]);
    assert_eq!(c.records, ["blogs.example.net."]);
    assert_eq!(
        ok("shop", RecordType::CNAME, &["www.example.test."]).records,
        ["www.example.test."]
    );
    let apex = err("@", RecordType::CNAME, &["other.example.net."]);
    assert_eq!(apex.field, "name");
    assert!(apex.message.contains("apex"));
    assert_eq!(
        err("example.test.", RecordType::CNAME, &["x.example.net"]).field,
        "name"
    );
    assert_eq!(
        err(
            "blog",
            RecordType::CNAME,
            &["a.example.net", "b.example.net"]
        )
        .field,
        "records"
    );
    assert_eq!(
        err("blog", RecordType::CNAME, &["192.0.2.1"]).field,
        "records"
    );
    assert_eq!(
        err("blog", RecordType::CNAME, &["blog.example.test."]).field,
        "records"
    );
}

#[test]
fn cname_is_exclusive_both_ways() {
    let existing = [
        ok("www", RecordType::A, &["192.0.2.1"]),
        ok("blog", RecordType::CNAME, &["blogs.example.net"]),
    ];
    // A CNAME where an A is.
    let e = validate_rrset(
        Z,
        &set("www", RecordType::CNAME, &["x.example.net"]),
        &existing,
    )
    .unwrap_err();
    assert_eq!(e.field, "type");
    assert!(e.message.contains("A records"), "{e}");
    // Another type where a CNAME is (name given relative, existing absolute).
    for (rtype, content) in [
        (RecordType::A, "192.0.2.9"),
        (RecordType::TXT, "hi"),
        (RecordType::MX, "10 mx.example.net"),
    ] {
        let e = validate_rrset(Z, &set("blog", rtype, &[content]), &existing).unwrap_err();
        assert_eq!(e.field, "type", "{rtype}");
        assert!(e.message.contains("CNAME"), "{e}");
    }
    // Replacing the CNAME itself, or the A itself, is fine.
    let out = validate_rrset(
        Z,
        &set("blog", RecordType::CNAME, &["other.example.net"]),
        &existing,
    )
    .unwrap();
    assert_eq!(out.records, ["other.example.net."]);
    assert!(validate_rrset(Z, &set("www", RecordType::A, &["192.0.2.2"]), &existing).is_ok());
    // Other names are not affected.
    assert!(
        validate_rrset(
            Z,
            &set("www2", RecordType::CNAME, &["www.example.test."]),
            &existing
        )
        .is_ok()
    );
}

#[test]
fn mx_takes_a_preference_and_a_host_name() {
    let mx = ok(
        "@",
        RecordType::MX,
        &["10 mail.example.test", "20  MX2.example.net."],
    );
    assert_eq!(mx.records, ["10 mail.example.test.", "20 mx2.example.net."]);
    for bad in [
        "10 192.0.2.1",
        "10 2001:db8::1",
        "mail.example.test",
        "65536 mx.example.net",
        "-1 mx.example.net",
        "10 mx.example.net extra",
        "10 .",
    ] {
        assert_eq!(err("@", RecordType::MX, &[bad]).field, "records", "{bad:?}");
    }
    assert!(
        err("@", RecordType::MX, &["10 192.0.2.1"])
            .message
            .contains("IP address")
    );
}

#[test]
fn srv_needs_service_and_protocol_labels() {
    let srv = ok(
        "_sip._tcp",
        RecordType::SRV,
        &["10 5 5060 SIP.example.test", "0 0 0 ."],
    );
    assert_eq!(srv.name, "_sip._tcp.example.test.");
    assert_eq!(srv.records, ["10 5 5060 sip.example.test.", "0 0 0 ."]);
    assert!(
        validate_rrset(
            Z,
            &set(
                "_imaps._tcp.mail",
                RecordType::SRV,
                &["0 1 993 mail.example.test."]
            ),
            &[]
        )
        .is_ok()
    );
    for name in ["sip._tcp", "_sip.tcp", "_sip", "_._tcp", "www"] {
        assert_eq!(
            err(name, RecordType::SRV, &["10 5 5060 sip.example.test."]).field,
            "name",
            "{name:?}"
        );
    }
    for bad in [
        "10 5 5060",
        "10 5 70000 sip.example.test.",
        "a 5 5060 sip.example.test.",
        "10 5 5060 192.0.2.1",
    ] {
        assert_eq!(
            err("_sip._tcp", RecordType::SRV, &[bad]).field,
            "records",
            "{bad:?}"
        );
    }
}

#[test]
fn txt_is_quoted_escaped_and_split() {
    let spf = ok("@", RecordType::TXT, &["v=spf1 mx a ~all"]);
    assert_eq!(spf.records, ["\"v=spf1 mx a ~all\""]);
    // Already quoted input is kept (and re-escaped canonically).
    assert_eq!(
        ok("@", RecordType::TXT, &["\"v=spf1 -all\""]).records,
        ["\"v=spf1 -all\""]
    );
    assert_eq!(
        ok("t", RecordType::TXT, &[r#""a" "b\"c""#]).records,
        [r#""a" "b\"c""#]
    );
    // Quotes and backslashes in plain input are escaped; non-ASCII as \DDD.
    assert_eq!(
        ok("t", RecordType::TXT, &[r#"say "hi" \o/"#]).records,
        [r#""say \"hi\" \\o/""#]
    );
    assert_eq!(
        ok("t", RecordType::TXT, &["héllo\ttab"]).records,
        [r#""h\195\169llo\009tab""#]
    );
    assert_eq!(
        ok("t", RecordType::TXT, &[r#""h\195\169llo""#]).records,
        [r#""h\195\169llo""#]
    );
    // Longer than 255 bytes: split into 255-byte strings.
    let long = "k".repeat(600);
    let split = ok("dkim._domainkey", RecordType::TXT, &[&long]);
    let want = format!(
        "\"{}\" \"{}\" \"{}\"",
        "k".repeat(255),
        "k".repeat(255),
        "k".repeat(90)
    );
    assert_eq!(split.records, std::slice::from_ref(&want));
    // An over-long quoted string is split the same way.
    assert_eq!(
        ok("t", RecordType::TXT, &[&format!("\"{long}\"")]).records,
        [want]
    );
    // Escapes count as one byte: 255 bytes with quotes stay one string.
    let quotes = format!("a{}", "\"".repeat(254));
    assert_eq!(ok("t", RecordType::TXT, &[&quotes]).records.len(), 1);
    assert!(!ok("t", RecordType::TXT, &[&quotes]).records[0].contains("\" \""));
    for bad in [
        "",
        "\"\"",
        "\"open",
        "\"a\"b",
        "\"a\" b",
        "\"\\25\"",
        "\"\\256\"",
    ] {
        assert_eq!(
            err("t", RecordType::TXT, &[bad]).field,
            "records",
            "{bad:?}"
        );
    }
    assert_eq!(
        err("t", RecordType::TXT, &[&"x".repeat(4097)]).field,
        "records"
    );
}

#[test]
fn caa_takes_flags_tag_and_quoted_value() {
    let caa = ok(
        "@",
        RecordType::CAA,
        &[
            "0 issue \"letsencrypt.org\"",
            "0 ISSUEWILD letsencrypt.org",
            "128 iodef \"mailto:security@example.test\"",
            "0 issue \"ca.test; validationmethods=dns-01\"",
            "0 issue \";\"",
        ],
    );
    assert_eq!(
        caa.records,
        [
            "0 issue \"letsencrypt.org\"",
            "0 issuewild \"letsencrypt.org\"",
            "128 iodef \"mailto:security@example.test\"",
            "0 issue \"ca.test; validationmethods=dns-01\"",
            "0 issue \";\"",
        ]
    );
    for bad in [
        "256 issue \"ca.test\"",
        "0 tbs \"ca.test\"",
        "0 issue",
        "issue \"ca.test\"",
        "0 iodef \"security@example.test\"",
        "0 issue \"a\" \"b\"",
    ] {
        assert_eq!(
            err("@", RecordType::CAA, &[bad]).field,
            "records",
            "{bad:?}"
        );
    }
}

#[test]
fn template_is_web_www_mail_and_spf() {
    let sets = template_records("Example.Test", "192.0.2.10", Some("mail.example.test"));
    let brief: Vec<(&str, RecordType, &str)> = sets
        .iter()
        .map(|s| (s.name.as_str(), s.rtype, s.records[0].as_str()))
        .collect();
    assert_eq!(
        brief,
        [
            ("example.test.", RecordType::A, "192.0.2.10"),
            ("www.example.test.", RecordType::A, "192.0.2.10"),
            ("example.test.", RecordType::MX, "10 mail.example.test."),
            ("example.test.", RecordType::TXT, "\"v=spf1 mx a ~all\""),
        ]
    );
    // Every template set passes the customer rules unchanged.
    for s in &sets {
        assert_eq!(&validate_rrset(Z, s, &sets).unwrap(), s);
    }
    let no_mail = template_records("example.test.", "192.0.2.10", None);
    assert_eq!(no_mail.len(), 3);
    assert!(no_mail.iter().all(|s| s.rtype != RecordType::MX));
}
