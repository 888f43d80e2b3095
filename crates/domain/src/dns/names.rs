//! Domain names: zone names, record names relative to a zone, and the host
//! names records point at, all made absolute, lower-case, with a trailing
//! dot.

use std::net::IpAddr;

use super::DnsRuleError;

/// The longest name, in presentation form without the trailing dot.
const MAX_NAME_LEN: usize = 253;
/// The longest label.
const MAX_LABEL_LEN: usize = 63;

/// A zone name made canonical: lower-case, at least two labels, each of
/// 1–63 characters of `a-z`, `0-9`, `-` and `_` (no leading or trailing
/// `-`), at most 253 characters, with a trailing dot (`example.test.`).
pub fn canonical_zone(zone: &str) -> Result<String, DnsRuleError> {
    let bare = bare_lower(zone);
    check_labels("zone", &bare, false)?;
    if !bare.contains('.') {
        return Err(DnsRuleError::new(
            "zone",
            format!("{bare:?} needs at least two labels (like example.test)"),
        ));
    }
    Ok(format!("{bare}."))
}

/// A record name made absolute inside `zone`: `@` is the apex, a name with
/// a trailing dot is absolute, a name without one is absolute when it is
/// the zone or ends with `.zone` and relative to the zone otherwise
/// (`www` → `www.example.test.`). The labels follow the [`canonical_zone`]
/// rules, except that the leftmost one may be `*` (a wildcard). A name
/// outside the zone is refused.
pub fn canonical_name(zone: &str, name: &str) -> Result<String, DnsRuleError> {
    let zone = canonical_zone(zone)?;
    let zone_bare = zone.trim_end_matches('.');
    let raw = name.trim();
    if raw.is_empty() {
        return Err(DnsRuleError::new(
            "name",
            "must not be empty (use @ for the zone itself)",
        ));
    }
    if raw == "@" {
        return Ok(zone);
    }
    let lower = raw.to_ascii_lowercase();
    let inside = |n: &str| n == zone_bare || n.ends_with(&format!(".{zone_bare}"));
    let absolute = match lower.strip_suffix('.') {
        Some(abs) => abs.to_owned(),
        None if inside(&lower) => lower,
        None => format!("{lower}.{zone_bare}"),
    };
    check_labels("name", &absolute, true)?;
    if !inside(&absolute) {
        return Err(DnsRuleError::new(
            "name",
            format!("{absolute}. is not inside the zone {zone}"),
        ));
    }
    Ok(format!("{absolute}."))
}

/// A host name a record points at (CNAME, MX, SRV targets), made absolute:
/// always taken as a full name (the trailing dot is optional and added),
/// lower-cased, label rules as [`canonical_zone`], and never an IP address.
/// Errors name the field `target`.
pub fn canonical_target(host: &str) -> Result<String, DnsRuleError> {
    let bare = bare_lower(host);
    if bare.parse::<IpAddr>().is_ok() {
        return Err(DnsRuleError::new(
            "target",
            format!("{bare:?} is an IP address; a host name is needed"),
        ));
    }
    check_labels("target", &bare, false)?;
    Ok(format!("{bare}."))
}

/// Trimmed, one trailing dot removed, ASCII lower-cased.
fn bare_lower(name: &str) -> String {
    let name = name.trim();
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

/// Checks a lower-case name without its trailing dot.
fn check_labels(field: &str, name: &str, wildcard: bool) -> Result<(), DnsRuleError> {
    let bad = |why: String| Err(DnsRuleError::new(field, why));
    if name.is_empty() {
        return bad("must not be empty".to_owned());
    }
    if !name.is_ascii() {
        return bad(format!(
            "{name:?} must be ASCII (internationalised names in their xn-- form)"
        ));
    }
    if name.len() > MAX_NAME_LEN {
        return bad(format!(
            "is {} characters long; at most {MAX_NAME_LEN}",
            name.len()
        ));
    }
    for (i, label) in name.split('.').enumerate() {
        if wildcard && i == 0 && label == "*" {
            continue;
        }
        if label.is_empty() {
            return bad(format!("{name:?} has an empty label"));
        }
        if label.len() > MAX_LABEL_LEN {
            return bad(format!(
                "label {label:?} is {} characters long; at most {MAX_LABEL_LEN}",
                label.len()
            ));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return bad(format!(
                "label {label:?} may only hold a-z, 0-9, '-' and '_'"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad(format!("label {label:?} must not start or end with '-'"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_are_lower_case_with_one_trailing_dot() {
        assert_eq!(canonical_zone("Example.TEST").unwrap(), "example.test.");
        assert_eq!(canonical_zone(" example.test. ").unwrap(), "example.test.");
        assert_eq!(
            canonical_zone("xn--bcher-kva.test").unwrap(),
            "xn--bcher-kva.test."
        );
    }

    #[test]
    fn bad_zones_are_refused() {
        for zone in [
            "",
            ".",
            "test",
            "example..test",
            "example.test..",
            "-a.test",
            "a-.test",
            "a b.test",
            "bücher.test",
            "*.example.test",
            "a/b.test",
        ] {
            let err = canonical_zone(zone).unwrap_err();
            assert_eq!(err.field, "zone", "{zone:?}");
        }
        let long_label = format!("{}.test", "a".repeat(64));
        assert!(canonical_zone(&long_label).is_err());
        assert!(canonical_zone(&format!("{}.test", "a".repeat(63))).is_ok());
    }

    #[test]
    fn names_longer_than_253_are_refused() {
        let label = "a".repeat(63);
        // 4 × 63 + 3 dots = 255 characters.
        let long = format!("{label}.{label}.{label}.{label}");
        assert!(canonical_zone(&long).is_err());
        // 3 × 63 + 3 dots + 56 + ".test" = exactly 253.
        let fits = format!("{label}.{label}.{label}.{}.test", "b".repeat(56));
        assert_eq!(fits.len(), 253);
        assert!(canonical_zone(&fits).is_ok());
    }

    #[test]
    fn record_names_become_absolute_inside_the_zone() {
        let z = "example.test";
        assert_eq!(canonical_name(z, "@").unwrap(), "example.test.");
        assert_eq!(canonical_name(z, "www").unwrap(), "www.example.test.");
        assert_eq!(
            canonical_name(z, "WWW.Example.Test").unwrap(),
            "www.example.test."
        );
        assert_eq!(
            canonical_name(z, "www.example.test.").unwrap(),
            "www.example.test."
        );
        assert_eq!(canonical_name(z, "example.test").unwrap(), "example.test.");
        assert_eq!(canonical_name(z, "a.b").unwrap(), "a.b.example.test.");
        assert_eq!(
            canonical_name(z, "_sip._tcp").unwrap(),
            "_sip._tcp.example.test."
        );
        assert_eq!(canonical_name(z, "*").unwrap(), "*.example.test.");
        assert_eq!(canonical_name(z, "*.dev").unwrap(), "*.dev.example.test.");
        assert_eq!(
            canonical_name("EXAMPLE.test.", "www").unwrap(),
            "www.example.test."
        );
    }

    #[test]
    fn record_names_outside_the_zone_or_malformed_are_refused() {
        let z = "example.test";
        for name in [
            "",
            "www.other.test.",
            "example.test.evil.",
            "notexample.test.",
            "a..b",
            "-a",
            "a-",
            "a b",
            "dev.*",
            "**",
            "é",
        ] {
            let err = canonical_name(z, name).unwrap_err();
            assert_eq!(err.field, "name", "{name:?}");
        }
        // An invalid zone is reported against the zone.
        assert_eq!(canonical_name("test", "www").unwrap_err().field, "zone");
    }

    #[test]
    fn relative_names_may_not_overflow_the_length_limit() {
        let zone = format!("{}.test", "z".repeat(60));
        let name = ["a".repeat(63), "b".repeat(63), "c".repeat(63)].join(".");
        assert!(canonical_name(&zone, &name).is_err());
    }

    #[test]
    fn targets_are_absolute_host_names_not_addresses() {
        assert_eq!(
            canonical_target("Mail.Example.NET").unwrap(),
            "mail.example.net."
        );
        assert_eq!(
            canonical_target("mail.example.net.").unwrap(),
            "mail.example.net."
        );
        for bad in [
            "192.0.2.1",
            "192.0.2.1.",
            "2001:db8::1",
            "",
            "a..b",
            "*.example.net",
        ] {
            assert_eq!(
                canonical_target(bad).unwrap_err().field,
                "target",
                "{bad:?}"
            );
        }
    }
}
