//! A cluster's IPv4 pool: the network (CIDR), its gateway and the range
//! pods' addresses are taken from. Which address a pod gets is decided in
//! mPanel's database (unique per cluster), never by the cluster.

use std::net::Ipv4Addr;

/// A checked pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Pool {
    pub network: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub first: Ipv4Addr,
    pub last: Ipv4Addr,
}

impl Ipv4Pool {
    /// Checks a pool: `cidr` like `203.0.113.0/24`, the gateway inside it,
    /// `first..=last` inside it, not the network or broadcast address.
    pub fn parse(cidr: &str, gateway: &str, first: &str, last: &str) -> Result<Self, String> {
        let (net, prefix) = cidr
            .split_once('/')
            .ok_or_else(|| format!("{cidr:?} is not a CIDR such as 203.0.113.0/24"))?;
        let network: Ipv4Addr = net
            .parse()
            .map_err(|_| format!("{net:?} is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (8..=30).contains(p))
            .ok_or_else(|| format!("the prefix of {cidr:?} must be between 8 and 30"))?;
        let mask = u32::MAX << (32 - prefix);
        if u32::from(network) & !mask != 0 {
            return Err(format!("{cidr:?} has host bits set"));
        }
        let parse = |what: &str, v: &str| -> Result<Ipv4Addr, String> {
            v.parse()
                .map_err(|_| format!("the {what} {v:?} is not an IPv4 address"))
        };
        let pool = Self {
            network,
            prefix,
            gateway: parse("gateway", gateway)?,
            first: parse("first address", first)?,
            last: parse("last address", last)?,
        };
        for (what, a) in [
            ("gateway", pool.gateway),
            ("first address", pool.first),
            ("last address", pool.last),
        ] {
            if !pool.usable(a) {
                return Err(format!("the {what} {a} is not a host address of {cidr}"));
            }
        }
        if u32::from(pool.first) > u32::from(pool.last) {
            return Err("the first address comes after the last".into());
        }
        Ok(pool)
    }

    fn mask(&self) -> u32 {
        u32::MAX << (32 - self.prefix)
    }

    /// Inside the network and neither its network nor broadcast address.
    fn usable(&self, a: Ipv4Addr) -> bool {
        let (a, net, mask) = (u32::from(a), u32::from(self.network), self.mask());
        a & mask == net && a != net && a != net | !mask
    }

    /// How many addresses the range holds (the gateway included if it is
    /// inside).
    pub fn size(&self) -> u32 {
        u32::from(self.last) - u32::from(self.first) + 1
    }

    /// The lowest address of the range that is not the gateway and not in
    /// `taken`.
    pub fn first_free(&self, taken: &[Ipv4Addr]) -> Option<Ipv4Addr> {
        (u32::from(self.first)..=u32::from(self.last))
            .map(Ipv4Addr::from)
            .find(|a| *a != self.gateway && !taken.contains(a))
    }

    /// The `n` lowest free addresses of the range (the gateway and
    /// `taken` left out).
    pub fn free(&self, taken: &[Ipv4Addr], n: usize) -> Vec<Ipv4Addr> {
        (u32::from(self.first)..=u32::from(self.last))
            .map(Ipv4Addr::from)
            .filter(|a| *a != self.gateway && !taken.contains(a))
            .take(n)
            .collect()
    }

    /// The cloud-init `ipconfig0` value of `address`.
    pub fn ipconfig(&self, address: Ipv4Addr) -> String {
        format!("ip={address}/{},gw={}", self.prefix, self.gateway)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> Ipv4Pool {
        Ipv4Pool::parse(
            "203.0.113.0/24",
            "203.0.113.1",
            "203.0.113.1",
            "203.0.113.4",
        )
        .unwrap()
    }

    #[test]
    fn addresses_are_handed_out_lowest_first_skipping_the_gateway_and_taken_ones() {
        let p = pool();
        let a = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(p.first_free(&[]), Some(a("203.0.113.2")));
        assert_eq!(p.first_free(&[a("203.0.113.2")]), Some(a("203.0.113.3")));
        assert_eq!(
            p.first_free(&[a("203.0.113.2"), a("203.0.113.3"), a("203.0.113.4")]),
            None
        );
        assert_eq!(
            p.ipconfig(a("203.0.113.2")),
            "ip=203.0.113.2/24,gw=203.0.113.1"
        );
    }

    #[test]
    fn a_pool_outside_its_network_is_refused() {
        assert!(
            Ipv4Pool::parse(
                "203.0.113.0/24",
                "203.0.113.1",
                "203.0.113.10",
                "203.0.114.3"
            )
            .is_err()
        );
        assert!(
            Ipv4Pool::parse(
                "203.0.113.5/24",
                "203.0.113.1",
                "203.0.113.10",
                "203.0.113.20"
            )
            .is_err()
        );
        assert!(
            Ipv4Pool::parse(
                "203.0.113.0/24",
                "203.0.113.1",
                "203.0.113.0",
                "203.0.113.20"
            )
            .is_err()
        );
        assert!(
            Ipv4Pool::parse(
                "203.0.113.0/24",
                "203.0.113.1",
                "203.0.113.30",
                "203.0.113.20"
            )
            .is_err()
        );
        assert!(Ipv4Pool::parse("nonsense", "x", "y", "z").is_err());
    }
}
