//! Classification of IP addresses that egress must not reach by default.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused, or `None` when it is a public unicast address.
///
/// IPv6 forms that embed an IPv4 address (mapped, compatible, NAT64, 6to4)
/// are judged by the IPv4 address they carry.
pub(crate) fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

/// The canonical form of an address: an IPv4-mapped IPv6 address becomes IPv4.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        IpAddr::V4(_) => ip,
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_unspecified() || a == 0 {
        Some("unspecified address")
    } else if ip.is_loopback() {
        Some("loopback address")
    } else if ip.is_private() {
        Some("private address")
    } else if ip.is_link_local() {
        Some("link-local address")
    } else if a == 100 && (b & 0xc0) == 64 {
        Some("shared (carrier-grade NAT) address")
    } else if ip.is_multicast() {
        Some("multicast address")
    } else if ip.is_broadcast() || a >= 240 {
        Some("reserved address")
    } else if ip.is_documentation() || (a == 198 && (b & 0xfe) == 18) {
        Some("documentation or benchmarking address")
    } else if a == 192 && b == 0 && c == 0 {
        Some("IETF protocol assignment address")
    } else {
        None
    }
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified address");
    }
    if ip.is_loopback() {
        return Some("loopback address");
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_reason(v4);
    }
    // IPv4-compatible (::a.b.c.d, deprecated) and NAT64 (64:ff9b::/96).
    if segments[..6] == [0, 0, 0, 0, 0, 0] || segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return v4_reason(embedded_v4(segments[6], segments[7]));
    }
    // 6to4 (2002::/16) carries an IPv4 address in bits 16..48.
    if segments[0] == 0x2002 {
        return v4_reason(embedded_v4(segments[1], segments[2]));
    }
    if ip.is_multicast() {
        Some("multicast address")
    } else if ip.is_unique_local() {
        Some("unique-local address")
    } else if ip.is_unicast_link_local() || (segments[0] & 0xffc0) == 0xfec0 {
        Some("link-local address")
    } else if segments[0] == 0x64 && segments[1] == 0xff9b && segments[2] == 1 {
        Some("local-use NAT64 address")
    } else if segments[0] == 0x2001 && segments[1] == 0 {
        Some("Teredo tunnel address")
    } else if segments[0] == 0x2001 && segments[1] == 0xdb8 {
        Some("documentation address")
    } else if segments[..4] == [0x100, 0, 0, 0] {
        Some("discard-only address")
    } else {
        None
    }
}

fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(addr: &str, forbidden: bool) {
        let ip: IpAddr = addr.parse().unwrap();
        assert_eq!(
            forbidden_reason(ip).is_some(),
            forbidden,
            "{addr}: {:?}",
            forbidden_reason(ip)
        );
    }

    #[test]
    fn forbidden_ranges() {
        for addr in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.0.1",
            "100.64.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "192.0.0.170",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b:1::1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001::1",
            "2001:db8::1",
            "100::1",
        ] {
            check(addr, true);
        }
    }

    #[test]
    fn public_addresses_pass() {
        for addr in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "172.32.0.1",
            "100.128.0.1",
            "169.255.0.1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2606:4700:4700::1111",
        ] {
            check(addr, false);
        }
    }

    #[test]
    fn canonical_unwraps_mapped_addresses() {
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(canonical(mapped), IpAddr::V4(Ipv4Addr::LOCALHOST));
        let plain: IpAddr = "::1".parse().unwrap();
        assert_eq!(canonical(plain), plain);
    }
}
