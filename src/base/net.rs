//! Networks and addresses of both families: parsing what operators type (IPv6 in any form, used in
//! RFC 5952 form), route destinations (a CIDR or a managed prefix list), and mapping an address
//! between subnets of the same size.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::base::ids::check_id;

/// A network with no host bits set: `10.0.1.0/24` or `2600:1f18:abcd:ef00::/56`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    pub network: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/n` (prefix 0–32) or an IPv6 prefix in any form (0–128), strictly: no host
    /// bits, and the error says which network was meant when only they are wrong.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let shape = || format!("\"{text}\" is not a CIDR (a.b.c.d/n, or an IPv6 prefix such as 2600:1f18::/56)");
        let (addr, prefix) = text.split_once('/').ok_or_else(shape)?;
        let addr: IpAddr = if addr.contains(':') {
            IpAddr::V6(addr.parse().map_err(|_| shape())?)
        } else {
            IpAddr::V4(parse_ipv4(addr).map_err(|_| shape())?)
        };
        let max = bits(addr);
        let prefix: u8 = match prefix.parse::<u8>() {
            Ok(p) if p <= max && !prefix.starts_with('+') && (prefix == "0" || !prefix.starts_with('0')) => p,
            _ => return Err(format!("\"{text}\": the prefix length must be 0 to {max}")),
        };
        let network = masked(addr, prefix);
        if network != addr {
            return Err(format!(
                "\"{text}\" has host bits set; did you mean {network}/{prefix}?"
            ));
        }
        Ok(Cidr { network, prefix })
    }

    pub fn is_ipv6(&self) -> bool {
        self.network.is_ipv6()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv6() == self.is_ipv6() && masked(ip, self.prefix) == self.network
    }

    /// Moves `ip` from `self` into `to`, keeping its host part: the peer's VIP 10.0.1.10 in
    /// 10.0.1.0/24 becomes 10.0.2.10 in 10.0.2.0/24. Both networks must be of one family and size.
    pub fn map_into(&self, ip: IpAddr, to: &Cidr) -> Result<IpAddr, String> {
        if !self.contains(ip) {
            return Err(format!("{ip} is not inside {self}"));
        }
        if self.prefix != to.prefix || self.is_ipv6() != to.is_ipv6() {
            return Err(format!(
                "cannot map {ip} from {self} into {to}: the prefix lengths differ"
            ));
        }
        let host = as_u128(ip) & !mask(bits(ip), self.prefix);
        Ok(from_u128(to.network, as_u128(to.network) | host))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // std prints IPv6 in RFC 5952 form (lower case, the longest run of zeros compressed).
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Where a route goes: a CIDR of either family, or a managed prefix list (`pl-…`), which EC2
/// takes in `DestinationCidrBlock`, `DestinationIpv6CidrBlock` or `DestinationPrefixListId`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Destination {
    Cidr(Cidr),
    PrefixList(String),
}

impl Destination {
    /// A CIDR as `Cidr::parse` takes it, or `pl-` and 8 or 17 hex digits in any case (used in
    /// lower case).
    pub fn parse(text: &str) -> Result<Destination, String> {
        if text.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("pl-")) {
            return check_id(text, "pl-", "a managed prefix-list id").map(Destination::PrefixList);
        }
        Cidr::parse(text).map(Destination::Cidr)
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::Cidr(c) => c.fmt(f),
            Destination::PrefixList(id) => f.write_str(id),
        }
    }
}

fn bits(ip: IpAddr) -> u8 {
    if ip.is_ipv6() { 128 } else { 32 }
}

fn as_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_u128(family: IpAddr, value: u128) -> IpAddr {
    match family {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(value as u32)),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(value)),
    }
}

/// The network bits of a `width`-bit address with `prefix` of them set.
fn mask(width: u8, prefix: u8) -> u128 {
    let all = if width == 128 { u128::MAX } else { (1u128 << width) - 1 };
    if prefix == 0 {
        0
    } else {
        all & (all << (width - prefix))
    }
}

fn masked(ip: IpAddr, prefix: u8) -> IpAddr {
    from_u128(ip, as_u128(ip) & mask(bits(ip), prefix))
}

/// A dotted-quad IPv4 address; std's parser already refuses leading zeros (octal ambiguity),
/// short forms and IPv6.
pub fn parse_ipv4(text: &str) -> Result<Ipv4Addr, String> {
    text.parse::<Ipv4Addr>()
        .map_err(|_| format!("\"{text}\" is not a dotted-quad IPv4 address"))
}

/// An IPv4 address (dotted quad) or an IPv6 address in any form; printed back, an IPv6 address is
/// in RFC 5952 form.
pub fn parse_ip(text: &str) -> Result<IpAddr, String> {
    if text.contains(':') {
        text.parse::<Ipv6Addr>()
            .map(IpAddr::V6)
            .map_err(|_| format!("\"{text}\" is not an IPv6 address"))
    } else {
        parse_ipv4(text).map(IpAddr::V4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_good_cidrs() {
        assert_eq!(Cidr::parse("0.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
        assert_eq!(Cidr::parse("10.0.1.0/24").unwrap().prefix, 24);
        assert_eq!(Cidr::parse("10.0.1.7/32").unwrap().to_string(), "10.0.1.7/32");
        assert_eq!(Cidr::parse("::/0").unwrap().to_string(), "::/0");
        assert_eq!(Cidr::parse("0:0:0:0:0:0:0:0/0").unwrap(), Cidr::parse("::/0").unwrap());
        assert_eq!(
            Cidr::parse("2600:1F18:ABCD:EF00:0000::/56").unwrap().to_string(),
            "2600:1f18:abcd:ef00::/56"
        );
    }

    #[test]
    fn rejects_bad_cidrs_with_a_reason() {
        assert!(
            Cidr::parse("10.0.1.1/24")
                .unwrap_err()
                .contains("did you mean 10.0.1.0/24")
        );
        assert!(Cidr::parse("10.0.1.0/33").unwrap_err().contains("0 to 32"));
        assert!(Cidr::parse("10.0.1.0/024").is_err());
        assert!(Cidr::parse("10.0.1.0").is_err());
        assert!(Cidr::parse("10.0.1/24").is_err());
        assert!(Cidr::parse("10.0.1.0/-1").is_err());
        assert!(Cidr::parse("2600:1f18::/129").unwrap_err().contains("0 to 128"));
        assert!(
            Cidr::parse("2600:1f18:abcd:ef01::/56")
                .unwrap_err()
                .contains("did you mean 2600:1f18:abcd:ef00::/56")
        );
        assert!(Cidr::parse("fe80::1%em0/64").is_err());
    }

    #[test]
    fn destinations_are_cidrs_or_prefix_lists() {
        assert_eq!(
            Destination::parse("PL-0123456789ABCDEF0").unwrap(),
            Destination::PrefixList("pl-0123456789abcdef0".into())
        );
        assert!(
            Destination::parse("pl-0123abc")
                .unwrap_err()
                .contains("8 or 17 hex digits")
        );
        assert_eq!(Destination::parse("::/0").unwrap().to_string(), "::/0");
    }

    #[test]
    fn rejects_bad_addresses() {
        for bad in [
            "",
            "10.0.1",
            "10.0.1.256",
            "010.0.1.1",
            "10.0.1.1 ",
            "fe80::1",
            "10.0.1.1/32",
        ] {
            assert!(parse_ipv4(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_ip("2600:1F18::10").unwrap().to_string(), "2600:1f18::10");
        assert!(parse_ip("2600:1f18::10::1").is_err());
    }

    #[test]
    fn maps_between_equal_subnets_only() {
        let a = Cidr::parse("10.0.1.0/24").unwrap();
        let b = Cidr::parse("10.0.2.0/24").unwrap();
        let c = Cidr::parse("10.0.2.0/25").unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(a.map_into(ip("10.0.1.10"), &b).unwrap(), ip("10.0.2.10"));
        assert!(a.map_into(ip("10.0.1.10"), &c).is_err());
        assert!(a.map_into(ip("10.0.3.10"), &b).is_err());
        let p = Cidr::parse("2600:1f18:abcd:ef03::/64").unwrap();
        let q = Cidr::parse("2600:1f18:abcd:ef00::/64").unwrap();
        assert_eq!(
            p.map_into(ip("2600:1f18:abcd:ef03::abcd:0:1"), &q).unwrap(),
            ip("2600:1f18:abcd:ef00::abcd:0:1")
        );
        assert!(p.map_into(ip("10.0.1.10"), &q).is_err());
        assert!(a.map_into(ip("10.0.1.10"), &q).is_err());
    }
}
