//! The rules for one record set a customer creates or replaces.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::names::{canonical_name, canonical_target, canonical_zone};
use super::txt::{normalise_txt, parse_quoted, quote};
use super::{DEFAULT_TTL, DnsRuleError, MAX_RECORDS, MAX_TTL, MIN_TTL, RecordSet, RecordType};

/// Checks a record set a customer wants in `zone` and returns it
/// normalised (absolute name, TTL filled in, contents in PowerDNS
/// presentation format), or the first rule it breaks.
///
/// `existing` is the zone's current record sets (a set with the same name
/// and type as `input` is the one being replaced and is ignored).
///
/// - Types: A, AAAA, CNAME, MX, TXT, SRV, CAA. NS and SOA are managed by
///   mPanel and refused.
/// - TTL: 60 to 86400 seconds; 0 means 3600.
/// - 1 to 100 records, no two the same once normalised.
/// - A: an IPv4 address; AAAA: an IPv6 address (not IPv4-mapped).
/// - CNAME: exactly one host name, not at the apex, and alone at its name
///   (no other type there, and no other type added where a CNAME is).
/// - MX: `<preference 0-65535> <host name>`.
/// - SRV: the name starts with `_service._proto.`; contents
///   `<priority> <weight> <port> <host name or .>`.
/// - TXT: quoted strings, or plain text that is quoted here; split into
///   255-byte strings; at most 4096 bytes.
/// - CAA: `<flags 0-255> <issue|issuewild|iodef> "<value>"` (the value may
///   come unquoted); an iodef value is a `mailto:` or `http(s)://` URL.
///
/// Host names in contents (CNAME, MX, SRV targets) are always taken as
/// absolute and may be outside the zone; an IP address is refused.
pub fn validate_rrset(
    zone: &str,
    input: &RecordSet,
    existing: &[RecordSet],
) -> Result<RecordSet, DnsRuleError> {
    let zone = canonical_zone(zone)?;
    let name = canonical_name(&zone, &input.name)?;
    let rtype = input.rtype;
    let apex = name == zone;
    if !rtype.customer_editable() {
        let why = if apex {
            format!("{rtype} records at the zone apex are managed by mPanel")
        } else {
            format!("{rtype} records cannot be edited (subzone delegation is not offered)")
        };
        return Err(DnsRuleError::new("type", why));
    }
    if rtype == RecordType::CNAME && apex {
        return Err(DnsRuleError::new(
            "name",
            "a CNAME cannot be at the zone apex (it would hide the zone's SOA and NS)",
        ));
    }
    if rtype == RecordType::SRV && !srv_name_shape(&name) {
        return Err(DnsRuleError::new(
            "name",
            format!("an SRV name starts with _service._proto. (like _sip._tcp), got {name}"),
        ));
    }
    let ttl = match input.ttl {
        0 => DEFAULT_TTL,
        t if (MIN_TTL..=MAX_TTL).contains(&t) => t,
        t => {
            return Err(DnsRuleError::new(
                "ttl",
                format!("must be {MIN_TTL} to {MAX_TTL} seconds, got {t}"),
            ));
        }
    };
    let count = input.records.len();
    if !(1..=MAX_RECORDS).contains(&count) {
        return Err(DnsRuleError::new(
            "records",
            format!("a record set holds 1 to {MAX_RECORDS} records, got {count}"),
        ));
    }
    if rtype == RecordType::CNAME && count != 1 {
        return Err(DnsRuleError::new(
            "records",
            format!("a CNAME holds exactly one target, got {count}"),
        ));
    }
    let mut records: Vec<String> = Vec::with_capacity(count);
    for (i, raw) in input.records.iter().enumerate() {
        let at =
            |message: String| DnsRuleError::new("records", format!("record {}: {message}", i + 1));
        let content = normalise(rtype, &name, raw).map_err(at)?;
        if let Some(first) = records.iter().position(|r| *r == content) {
            return Err(at(format!("the same as record {}", first + 1)));
        }
        records.push(content);
    }
    check_cname_exclusive(&zone, &name, rtype, existing)?;
    Ok(RecordSet {
        name,
        rtype,
        ttl,
        records,
    })
}

/// A CNAME must be the only record set at its name: refuses a CNAME where
/// another type is, and another type where a CNAME is.
fn check_cname_exclusive(
    zone: &str,
    name: &str,
    rtype: RecordType,
    existing: &[RecordSet],
) -> Result<(), DnsRuleError> {
    let mut others = existing.iter().filter(|set| {
        set.rtype != rtype
            && canonical_name(zone, &set.name).unwrap_or_else(|_| set.name.to_ascii_lowercase())
                == name
    });
    if rtype == RecordType::CNAME {
        if let Some(other) = others.next() {
            return Err(DnsRuleError::new(
                "type",
                format!(
                    "{name} already has {} records; a CNAME must be alone at its name",
                    other.rtype
                ),
            ));
        }
    } else if others.any(|set| set.rtype == RecordType::CNAME) {
        return Err(DnsRuleError::new(
            "type",
            format!("{name} is a CNAME; no other record set may share its name"),
        ));
    }
    Ok(())
}

/// `_service._proto.` then at least one more label.
fn srv_name_shape(name: &str) -> bool {
    let mut labels = name.trim_end_matches('.').split('.');
    let underscored = |l: Option<&str>| l.is_some_and(|l| l.len() > 1 && l.starts_with('_'));
    underscored(labels.next()) && underscored(labels.next()) && labels.next().is_some()
}

/// One record's contents in presentation format, or why it is wrong.
fn normalise(rtype: RecordType, name: &str, raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    match rtype {
        RecordType::A => raw
            .parse::<Ipv4Addr>()
            .map(|ip| ip.to_string())
            .map_err(|_| format!("{raw:?} is not an IPv4 address")),
        RecordType::AAAA => {
            let ip = raw
                .parse::<Ipv6Addr>()
                .map_err(|_| format!("{raw:?} is not an IPv6 address"))?;
            if ip.to_ipv4_mapped().is_some() {
                return Err(format!(
                    "{raw:?} is an IPv4-mapped address: use an A record"
                ));
            }
            Ok(ip.to_string())
        }
        RecordType::CNAME => {
            let target = target(raw)?;
            if target == name {
                return Err(format!("{name} cannot be an alias of itself"));
            }
            Ok(target)
        }
        RecordType::MX => match raw.split_whitespace().collect::<Vec<_>>()[..] {
            [pref, host] => Ok(format!("{} {}", number(pref, "preference")?, target(host)?)),
            _ => Err(format!(
                "expected \"<preference> <host name>\", got {raw:?}"
            )),
        },
        RecordType::SRV => match raw.split_whitespace().collect::<Vec<_>>()[..] {
            [prio, weight, port, host] => Ok(format!(
                "{} {} {} {}",
                number(prio, "priority")?,
                number(weight, "weight")?,
                number(port, "port")?,
                if host == "." {
                    ".".to_owned()
                } else {
                    target(host)?
                },
            )),
            _ => Err(format!(
                "expected \"<priority> <weight> <port> <host name>\", got {raw:?}"
            )),
        },
        RecordType::TXT => normalise_txt(raw),
        RecordType::CAA => caa(raw),
        RecordType::NS | RecordType::SOA => Err(format!("{rtype} records are managed by mPanel")),
    }
}

fn target(host: &str) -> Result<String, String> {
    canonical_target(host).map_err(|e| e.message)
}

fn number(raw: &str, what: &str) -> Result<u16, String> {
    raw.parse::<u16>()
        .map_err(|_| format!("the {what} must be a number from 0 to 65535, got {raw:?}"))
}

/// `<flags> <tag> <value>`: tag lower-cased, value quoted.
fn caa(raw: &str) -> Result<String, String> {
    let shape = || format!("expected '<flags> <issue|issuewild|iodef> \"<value>\"', got {raw:?}");
    let (flags, rest) = raw.split_once(char::is_whitespace).ok_or_else(shape)?;
    let (tag, value) = rest
        .trim_start()
        .split_once(char::is_whitespace)
        .ok_or_else(shape)?;
    let flags: u8 = flags
        .parse()
        .map_err(|_| format!("CAA flags must be a number from 0 to 255, got {flags:?}"))?;
    let tag = tag.to_ascii_lowercase();
    if !matches!(tag.as_str(), "issue" | "issuewild" | "iodef") {
        return Err(format!(
            "CAA tag must be issue, issuewild or iodef, got {tag:?}"
        ));
    }
    let value = value.trim();
    let value: Vec<u8> = if value.starts_with('"') {
        match parse_quoted(value)?.as_slice() {
            [one] => one.clone(),
            _ => return Err("a CAA value is one quoted string".to_owned()),
        }
    } else {
        value.as_bytes().to_vec()
    };
    if tag == "iodef"
        && !["mailto:", "https://", "http://"]
            .iter()
            .any(|scheme| value.starts_with(scheme.as_bytes()))
    {
        return Err("an iodef value is a mailto: or http(s):// URL".to_owned());
    }
    Ok(format!("{flags} {tag} {}", quote(&value)))
}
