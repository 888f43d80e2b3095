//! Where an endpoint may point. A tenant's URL is fetched by mPanel from
//! inside the provider's network, so an address that reaches the machine
//! itself or the private network behind it (the database, PowerDNS's API,
//! a cloud's metadata service at 169.254.169.254) is refused unless the
//! operator allowed its network in the configuration. The check runs on
//! every address the host name resolves to, at each delivery, so a name
//! that later resolves somewhere private is caught too.

use std::net::IpAddr;
use std::str::FromStr;

/// What kind of network an address belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Public,
    Loopback,
    Private,
    LinkLocal,
    /// Unspecified, multicast, broadcast, shared (CGNAT), documentation,
    /// benchmarking and reserved ranges: never a webhook receiver.
    Reserved,
}

impl AddressClass {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self::of_v4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self::of_v4(v4),
                None => Self::of_v6(v6),
            },
        }
    }

    fn of_v4(ip: std::net::Ipv4Addr) -> Self {
        let [a, b, c, _] = ip.octets();
        if ip.is_loopback() {
            Self::Loopback
        } else if ip.is_private() {
            Self::Private
        } else if ip.is_link_local() {
            Self::LinkLocal
        } else if a == 0
            || a >= 224
            || (a == 100 && (64..128).contains(&b))
            || (a == 192 && b == 0 && (c == 0 || c == 2))
            || (a == 198 && (b == 18 || b == 19))
            || (a == 198 && b == 51 && c == 100)
            || (a == 203 && b == 0 && c == 113)
        {
            Self::Reserved
        } else {
            Self::Public
        }
    }

    fn of_v6(ip: std::net::Ipv6Addr) -> Self {
        let seg = ip.segments();
        if ip.is_loopback() {
            return Self::Loopback;
        }
        if ip.is_unspecified() || ip.is_multicast() {
            return Self::Reserved;
        }
        // Forms that carry an IPv4 address, which is what they reach: the
        // deprecated IPv4-compatible ::a.b.c.d, NAT64 (64:ff9b::/96) and
        // 6to4 (2002:AABB:CCDD::/48).
        let embedded = |hi: u16, lo: u16| {
            Self::of_v4(std::net::Ipv4Addr::from(
                (u32::from(hi) << 16) | u32::from(lo),
            ))
        };
        if seg[..6] == [0; 6] {
            return embedded(seg[6], seg[7]);
        }
        if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
            return embedded(seg[6], seg[7]);
        }
        if seg[0] == 0x2002 {
            return embedded(seg[1], seg[2]);
        }
        match seg[0] {
            first if first & 0xfe00 == 0xfc00 => Self::Private,
            // Site-local (deprecated, still routed privately by some).
            first if first & 0xffc0 == 0xfec0 => Self::Private,
            first if first & 0xffc0 == 0xfe80 => Self::LinkLocal,
            // Documentation, Teredo (2001::/32) and NAT64's local-use
            // 64:ff9b:1::/48: nothing a receiver lives at.
            0x2001 if seg[1] == 0x0db8 || seg[1] == 0 => Self::Reserved,
            0x64 if seg[1] == 0xff9b => Self::Reserved,
            _ => Self::Public,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::LinkLocal => "link-local",
            Self::Reserved => "reserved",
        }
    }
}

/// A network the operator allows endpoints in (`127.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = s.split_once('/').unwrap_or((s, ""));
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an address or a CIDR network"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() {
            max
        } else {
            prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?} has a prefix length out of 0..={max}"))?
        };
        Ok(Self { network, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                masked(u32::from(n).into(), 32, self.prefix)
                    == masked(u32::from(a).into(), 32, self.prefix)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                masked(u128::from(n), 128, self.prefix) == masked(u128::from(a), 128, self.prefix)
            }
            _ => false,
        }
    }
}

fn masked(bits: u128, width: u32, prefix: u8) -> u128 {
    let host_bits = width - u32::from(prefix);
    if host_bits >= 128 {
        0
    } else {
        bits >> host_bits
    }
}

/// Whether mPanel may send to `ip`: a public address, or one inside a
/// network the operator allowed.
pub fn address_allowed(ip: IpAddr, allowed: &[Cidr]) -> Result<(), AddressClass> {
    let class = AddressClass::of(ip);
    if class == AddressClass::Public || allowed.iter().any(|n| n.contains(ip)) {
        Ok(())
    } else {
        Err(class)
    }
}

/// Why an endpoint URL is refused before any lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlRuleError {
    Malformed,
    Scheme,
    Credentials,
    TooLong,
    /// The host is an address literal in a refused network.
    Address(AddressClass),
}

impl std::fmt::Display for UrlRuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed => f.write_str("is not an absolute URL with a host"),
            Self::Scheme => f.write_str("must use https or http"),
            Self::Credentials => f.write_str("must not carry a user name or password"),
            Self::TooLong => f.write_str("is longer than 2048 characters"),
            Self::Address(class) => write!(
                f,
                "points at a {} address, which this installation does not allow",
                class.as_str()
            ),
        }
    }
}

/// The rules a URL must meet to be stored; `host_ip` is the host when it is
/// an address literal (the caller parsed the URL).
pub fn check_url(
    scheme: &str,
    has_credentials: bool,
    host_ip: Option<IpAddr>,
    length: usize,
    allowed: &[Cidr],
) -> Result<(), UrlRuleError> {
    if length > 2048 {
        return Err(UrlRuleError::TooLong);
    }
    if scheme != "https" && scheme != "http" {
        return Err(UrlRuleError::Scheme);
    }
    if has_credentials {
        return Err(UrlRuleError::Credentials);
    }
    match host_ip {
        Some(ip) => address_allowed(ip, allowed).map_err(UrlRuleError::Address),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> AddressClass {
        AddressClass::of(s.parse().unwrap())
    }

    #[test]
    fn networks_that_reach_the_provider_are_classified() {
        assert_eq!(class("127.0.0.1"), AddressClass::Loopback);
        assert_eq!(class("::1"), AddressClass::Loopback);
        assert_eq!(class("::ffff:127.0.0.1"), AddressClass::Loopback);
        assert_eq!(class("10.1.2.3"), AddressClass::Private);
        assert_eq!(class("172.16.0.1"), AddressClass::Private);
        assert_eq!(class("192.168.1.1"), AddressClass::Private);
        assert_eq!(class("fd12::1"), AddressClass::Private);
        assert_eq!(class("169.254.169.254"), AddressClass::LinkLocal);
        assert_eq!(class("fe80::1"), AddressClass::LinkLocal);
        assert_eq!(class("0.0.0.0"), AddressClass::Reserved);
        assert_eq!(class("100.64.0.1"), AddressClass::Reserved);
        assert_eq!(class("224.0.0.1"), AddressClass::Reserved);
        assert_eq!(class("255.255.255.255"), AddressClass::Reserved);
        assert_eq!(class("::"), AddressClass::Reserved);
        assert_eq!(class("93.184.216.34"), AddressClass::Public);
        assert_eq!(class("2606:4700::1111"), AddressClass::Public);
        assert_eq!(class("172.32.0.1"), AddressClass::Public);
        // IPv6 forms that carry an IPv4 address reach that address.
        assert_eq!(class("::127.0.0.1"), AddressClass::Loopback);
        assert_eq!(class("::10.0.0.5"), AddressClass::Private);
        assert_eq!(class("64:ff9b::a00:5"), AddressClass::Private);
        assert_eq!(class("64:ff9b::7f00:1"), AddressClass::Loopback);
        assert_eq!(class("64:ff9b::5db8:d822"), AddressClass::Public);
        assert_eq!(class("2002:a9fe:a9fe::1"), AddressClass::LinkLocal);
        assert_eq!(class("2002:c000:0201::1"), AddressClass::Reserved);
        assert_eq!(class("64:ff9b:1::a00:5"), AddressClass::Reserved);
        assert_eq!(class("2001:0:4136:e378::1"), AddressClass::Reserved);
        assert_eq!(class("fec0::1"), AddressClass::Private);
    }

    #[test]
    fn the_operator_can_allow_a_network() {
        let loopback: Cidr = "127.0.0.0/8".parse().unwrap();
        let ip = "127.0.0.1".parse().unwrap();
        assert_eq!(address_allowed(ip, &[]), Err(AddressClass::Loopback));
        assert_eq!(address_allowed(ip, &[loopback]), Ok(()));
        let other = "10.0.0.1".parse().unwrap();
        assert_eq!(
            address_allowed(other, &[loopback]),
            Err(AddressClass::Private)
        );
        let host: Cidr = "10.0.0.1".parse().unwrap();
        assert!(host.contains(other));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(other));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense/8".parse::<Cidr>().is_err());
    }

    #[test]
    fn urls_are_checked_before_any_lookup() {
        let literal = Some("169.254.169.254".parse().unwrap());
        assert_eq!(check_url("https", false, None, 30, &[]), Ok(()));
        assert_eq!(
            check_url("ftp", false, None, 30, &[]),
            Err(UrlRuleError::Scheme)
        );
        assert_eq!(
            check_url("https", true, None, 30, &[]),
            Err(UrlRuleError::Credentials)
        );
        assert_eq!(
            check_url("https", false, None, 3000, &[]),
            Err(UrlRuleError::TooLong)
        );
        assert_eq!(
            check_url("http", false, literal, 30, &[]),
            Err(UrlRuleError::Address(AddressClass::LinkLocal))
        );
    }
}
