//! A driver's error as tenant staff see it: what failed and why, without
//! the platform's insides (node addresses, ports, Unix users, paths), which
//! are the platform operator's business and an attacker's map.

/// `message` with every address (`192.0.2.7`, `[2001:db8::1]:22`,
/// `host:2222`), account (`user@host`) and absolute path replaced.
pub fn for_tenant_staff(message: &str) -> String {
    message
        .split(' ')
        .map(mask_word)
        .collect::<Vec<_>>()
        .join(" ")
}

fn mask_word(word: &str) -> String {
    // `[2001:db8::1]:22` keeps its brackets.
    let bracketed = word.trim_end_matches([',', ';', ')', '.', '"', '\'']);
    if bracketed.starts_with('[') && bracketed.parse::<std::net::SocketAddr>().is_ok() {
        return word.replacen(bracketed, "[node]", 1);
    }
    let trimmed = word.trim_matches(|c: char| "()[]{},;'\"`".contains(c));
    let core = trimmed.trim_end_matches([':', '.', ',', ';']);
    if core.is_empty() {
        return word.to_owned();
    }
    let masked = if core.parse::<std::net::IpAddr>().is_ok()
        || core.parse::<std::net::SocketAddr>().is_ok()
    {
        Some("[node]")
    } else if core.contains('@') {
        Some("[account]")
    } else if core.starts_with('/') && core.len() > 1 {
        Some("[path]")
    } else if let Some((host, port)) = core.rsplit_once(':')
        && !host.is_empty()
        && !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
    {
        Some("[node]")
    } else {
        None
    };
    match masked {
        Some(m) => word.replacen(core, m, 1),
        None => word.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_accounts_and_paths_are_masked_the_reason_stays() {
        assert_eq!(
            for_tenant_staff(
                "site.create: ssh to 192.0.2.7:2222 as mpanel-web@192.0.2.7 refused (Connection refused)"
            ),
            "site.create: ssh to [node] as [account] refused (Connection refused)"
        );
        assert_eq!(
            for_tenant_staff("dns.zone.create: PowerDNS at http://10.0.0.5:8081 answered 500"),
            "dns.zone.create: PowerDNS at [node] answered 500"
        );
        assert_eq!(
            for_tenant_staff("nginx -t failed: open() \"/etc/nginx/sites/a.test.conf\" failed"),
            "nginx -t failed: open() \"[path]\" failed"
        );
        assert_eq!(
            for_tenant_staff("[2001:db8::1]:22 timed out"),
            "[node] timed out"
        );
        assert_eq!(
            for_tenant_staff("the zone example.test already exists on the DNS server"),
            "the zone example.test already exists on the DNS server"
        );
    }
}
