//! CIDR blocks (`10.0.0.0/8`, `::1/128`, or a bare address) and membership tests, for IP
//! rules and trusted proxies. IPv4-mapped IPv6 addresses (`::ffff:127.0.0.1`, as a
//! dual-stack listener reports IPv4 clients) count as their IPv4 address.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// A block of addresses: a network address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a CIDR did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not an address or CIDR block (e.g. 10.0.0.0/8, 127.0.0.1, ::1/128)")]
pub struct CidrError(String);

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || CidrError(text.to_string());
        let (addr, prefix) = match text.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text.trim(), None),
        };
        let network = IpAddr::from_str(addr).map_err(|_| bad())?.to_canonical();
        let max = max_prefix(network);
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
        };
        // Stored masked, so `10.1.2.3/8` means 10.0.0.0/8.
        Ok(Self {
            network: mask(network, prefix),
            prefix,
        })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl Cidr {
    /// Whether `ip` is in the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        ip.is_ipv4() == self.network.is_ipv4() && mask(ip, self.prefix) == self.network
    }
}

/// Whether any of `blocks` contains `ip`.
pub fn any_contains(blocks: &[Cidr], ip: IpAddr) -> bool {
    blocks.iter().any(|b| b.contains(ip))
}

fn max_prefix(ip: IpAddr) -> u8 {
    if ip.is_ipv4() {
        32
    } else {
        128
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let kept = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((bits & kept).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let kept = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((bits & kept).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Cidr {
        text.parse().expect("cidr")
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn blocks_contain_their_addresses_only() {
        assert!(cidr("127.0.0.1/32").contains(ip("127.0.0.1")));
        assert!(!cidr("127.0.0.1/32").contains(ip("127.0.0.2")));
        assert!(cidr("10.1.2.3/8").contains(ip("10.200.0.1")));
        assert_eq!(cidr("10.1.2.3/8").to_string(), "10.0.0.0/8");
        assert!(cidr("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(
            !cidr("0.0.0.0/0").contains(ip("::1")),
            "families do not mix"
        );
        assert!(cidr("::/0").contains(ip("2001:db8::1")));
        assert!(cidr("2001:db8::/32").contains(ip("2001:db8:ffff::1")));
        assert!(cidr("::1").contains(ip("::1")));
        // A dual-stack listener's view of an IPv4 client.
        assert!(cidr("127.0.0.0/8").contains(ip("::ffff:127.0.0.2")));
    }

    #[test]
    fn malformed_blocks_are_errors() {
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "10.0.0.0/x",
            "host/8",
            "/8",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }
}
