//! IPv4 networks: parsing the CIDRs operators type, and mapping an address between subnets.

use std::fmt;
use std::net::Ipv4Addr;

/// An IPv4 network with no host bits set (`10.0.1.0/24`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    /// Parses `a.b.c.d/n` strictly: dotted quad, prefix 0–32, no host bits. The error says what
    /// was meant when only the host bits are wrong.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("\"{text}\" is not an IPv4 CIDR (a.b.c.d/n)"))?;
        let addr: Ipv4Addr = parse_ipv4(addr).map_err(|_| format!("\"{text}\" is not an IPv4 CIDR (a.b.c.d/n)"))?;
        let prefix: u8 = match prefix.parse::<u8>() {
            Ok(p) if p <= 32 && !prefix.starts_with('+') && (prefix == "0" || !prefix.starts_with('0')) => p,
            _ => return Err(format!("\"{text}\": the prefix length must be 0 to 32")),
        };
        let network = Ipv4Addr::from(u32::from(addr) & mask(prefix));
        if network != addr {
            return Err(format!(
                "\"{text}\" has host bits set; did you mean {network}/{prefix}?"
            ));
        }
        Ok(Cidr { network, prefix })
    }

    pub fn mask(&self) -> u32 {
        mask(self.prefix)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network)
    }

    /// Moves `ip` from `self` into `to`, keeping its host part: the peer's VIP 10.0.1.10 in
    /// 10.0.1.0/24 becomes 10.0.2.10 in 10.0.2.0/24. Both networks must have the same size.
    pub fn map_into(&self, ip: Ipv4Addr, to: &Cidr) -> Result<Ipv4Addr, String> {
        if !self.contains(ip) {
            return Err(format!("{ip} is not inside {self}"));
        }
        if self.prefix != to.prefix {
            return Err(format!(
                "cannot map {ip} from {self} into {to}: the prefix lengths differ"
            ));
        }
        let host = u32::from(ip) & !self.mask();
        Ok(Ipv4Addr::from(u32::from(to.network) | host))
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

/// A dotted-quad IPv4 address; std's parser already refuses leading zeros (octal ambiguity),
/// short forms and IPv6.
pub fn parse_ipv4(text: &str) -> Result<Ipv4Addr, String> {
    text.parse::<Ipv4Addr>()
        .map_err(|_| format!("\"{text}\" is not a dotted-quad IPv4 address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_good_cidrs() {
        assert_eq!(Cidr::parse("0.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
        assert_eq!(Cidr::parse("10.0.1.0/24").unwrap().prefix, 24);
        assert_eq!(Cidr::parse("10.0.1.7/32").unwrap().to_string(), "10.0.1.7/32");
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
        assert!(Cidr::parse("::/0").is_err());
        assert!(Cidr::parse("10.0.1.0/-1").is_err());
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
    }

    #[test]
    fn maps_between_equal_subnets_only() {
        let a = Cidr::parse("10.0.1.0/24").unwrap();
        let b = Cidr::parse("10.0.2.0/24").unwrap();
        let c = Cidr::parse("10.0.2.0/25").unwrap();
        assert_eq!(
            a.map_into("10.0.1.10".parse().unwrap(), &b).unwrap(),
            "10.0.2.10".parse::<Ipv4Addr>().unwrap()
        );
        assert!(a.map_into("10.0.1.10".parse().unwrap(), &c).is_err());
        assert!(a.map_into("10.0.3.10".parse().unwrap(), &b).is_err());
    }
}
