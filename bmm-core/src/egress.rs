//! Egress allowlist entries: which hosts a server's tools may reach.
//!
//! An entry is `host`, `*.domain` (any subdomain, at any depth, but not the
//! domain itself) or either of those with `:port`. Without a port an entry
//! allows the scheme's default port only. Hosts are lowercase DNS names, IPv4
//! literals or bracketed IPv6 literals. The runtime enforces the same rules at
//! connect time; this module is the one place they are written.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// One parsed egress entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EgressRule {
    host: String,
    wildcard: bool,
    port: Option<u16>,
}

impl EgressRule {
    /// Parses an entry, explaining what is wrong when it is malformed.
    pub fn parse(entry: &str) -> Result<Self, String> {
        if entry.is_empty() {
            return Err("an egress entry must name a host".into());
        }
        if entry.contains("://") || entry.contains('/') {
            return Err(format!(
                "`{entry}` must be a host such as \"api.example.com\", without scheme or path"
            ));
        }
        let (host_part, port) = split_port(entry)?;
        let (wildcard, host) = match host_part.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, host_part),
        };
        if host.contains('*') {
            return Err(format!(
                "`{entry}`: a wildcard may only be a leading `*.` before a domain"
            ));
        }
        if host.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(format!("`{entry}`: write hosts in lowercase"));
        }
        let is_ip = host.parse::<Ipv4Addr>().is_ok()
            || host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .is_some_and(|h| h.parse::<Ipv6Addr>().is_ok());
        if is_ip {
            if wildcard {
                return Err(format!(
                    "`{entry}`: a wildcard cannot precede an IP address"
                ));
            }
        } else if !is_dns_name(host) {
            return Err(format!("`{entry}` is not a valid host name"));
        } else if wildcard && !host.contains('.') {
            return Err(format!(
                "`{entry}`: a wildcard must cover a domain with at least two labels"
            ));
        }
        Ok(Self {
            host: host.to_owned(),
            wildcard,
            port,
        })
    }

    /// The host part: a lowercase DNS name (without the `*.` of a wildcard),
    /// an IPv4 literal, or an IPv6 literal in brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Whether the entry is `*.domain`: any subdomain, not the domain itself.
    pub fn is_wildcard(&self) -> bool {
        self.wildcard
    }

    /// The port, when the entry names one; otherwise the scheme's default applies.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Whether this entry allows connecting to `host` (lowercase, IPv6 in brackets)
    /// on `port`, where `default_port` is the scheme's default.
    pub fn allows(&self, host: &str, port: u16, default_port: u16) -> bool {
        let port_ok = port == self.port.unwrap_or(default_port);
        let host_ok = if self.wildcard {
            host.strip_suffix(&self.host)
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.'))
        } else {
            host == self.host
        };
        port_ok && host_ok
    }
}

impl fmt::Display for EgressRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        f.write_str(&self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        Ok(())
    }
}

/// Whether any of `rules` allows `host:port`.
pub fn allowed(rules: &[EgressRule], host: &str, port: u16, default_port: u16) -> bool {
    rules.iter().any(|r| r.allows(host, port, default_port))
}

fn split_port(entry: &str) -> Result<(&str, Option<u16>), String> {
    let colon = if entry.starts_with('[') {
        entry
            .find(']')
            .map(|end| end + 1)
            .filter(|&i| i < entry.len())
    } else {
        entry.rfind(':')
    };
    let Some(i) = colon else {
        return Ok((entry, None));
    };
    let (host, port) = (&entry[..i], &entry[i + 1..]);
    if entry.as_bytes().get(i) != Some(&b':') {
        return Err(format!("`{entry}` is not a valid host"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok((host, Some(p))),
        _ => Err(format!(
            "`{entry}`: the port must be a number from 1 to 65535"
        )),
    }
}

fn is_dns_name(host: &str) -> bool {
    host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches() {
        let exact = EgressRule::parse("api.example.com").unwrap();
        assert!(exact.allows("api.example.com", 443, 443));
        assert!(!exact.allows("api.example.com", 8443, 443));
        assert!(!exact.allows("x.api.example.com", 443, 443));
        let wild = EgressRule::parse("*.example.com").unwrap();
        assert!(wild.allows("a.b.example.com", 443, 443));
        assert!(!wild.allows("example.com", 443, 443));
        assert!(!wild.allows("badexample.com", 443, 443));
        let port = EgressRule::parse("localhost:8080").unwrap();
        assert!(port.allows("localhost", 8080, 80));
        assert!(!port.allows("localhost", 80, 80));
        let v6 = EgressRule::parse("[::1]:9000").unwrap();
        assert!(v6.allows("[::1]", 9000, 443));
        assert_eq!(v6.to_string(), "[::1]:9000");
        assert!(
            EgressRule::parse("127.0.0.1")
                .unwrap()
                .allows("127.0.0.1", 443, 443)
        );
    }

    #[test]
    fn refuses_malformed_entries() {
        for bad in [
            "",
            "https://a.com",
            "a.com/x",
            "*",
            "*.com",
            "a.*.com",
            "A.com",
            "a.com:0",
            "a.com:99999",
            "a.com:x",
            "-a.com",
            "*.1.2.3.4",
            "[::1",
            "a..com",
        ] {
            assert!(EgressRule::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
