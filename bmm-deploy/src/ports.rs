//! Port allocation: a configured range of host ports, and picking a free one.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::str::FromStr;

use crate::{DeployError, Result};

/// An inclusive range of TCP ports, written `A-B` (or `A` for one port).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    start: u16,
    end: u16,
}

impl PortRange {
    /// The default range of local deployments, 18000-18999.
    pub const DEFAULT: PortRange = PortRange {
        start: 18000,
        end: 18999,
    };

    /// The ports `start..=end`; fails when `start > end` or `start` is 0.
    pub fn new(start: u16, end: u16) -> Result<Self> {
        if start == 0 || start > end {
            return Err(DeployError::InvalidConfig {
                reason: format!("port range {start}-{end} is empty or starts at 0"),
            });
        }
        Ok(Self { start, end })
    }

    /// The first port.
    pub fn start(&self) -> u16 {
        self.start
    }

    /// The last port.
    pub fn end(&self) -> u16 {
        self.end
    }

    /// Whether `port` is in the range.
    pub fn contains(&self, port: u16) -> bool {
        (self.start..=self.end).contains(&port)
    }

    /// The first port of the range that is not in `taken` and that `bind`
    /// can listen on right now. Another process may still take it before the
    /// server binds it; the deploy then fails its health check and says so.
    pub fn pick(&self, bind: IpAddr, taken: &HashSet<u16>) -> Result<u16> {
        (self.start..=self.end)
            .filter(|port| !taken.contains(port))
            .find(|port| TcpListener::bind(SocketAddr::new(bind, *port)).is_ok())
            .ok_or_else(|| DeployError::PortRangeExhausted {
                range: self.to_string(),
            })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

impl FromStr for PortRange {
    type Err = DeployError;

    fn from_str(text: &str) -> Result<Self> {
        let invalid = || DeployError::InvalidConfig {
            reason: format!("port range {text:?} is not `A-B` with 1 <= A <= B <= 65535"),
        };
        let (a, b) = text.split_once('-').unwrap_or((text, text));
        let start: u16 = a.trim().parse().map_err(|_| invalid())?;
        let end: u16 = b.trim().parse().map_err(|_| invalid())?;
        Self::new(start, end).map_err(|_| invalid())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parses_ranges_and_single_ports() {
        assert_eq!(
            "9000-9010".parse::<PortRange>().unwrap(),
            PortRange::new(9000, 9010).unwrap()
        );
        assert_eq!(
            "9000".parse::<PortRange>().unwrap(),
            PortRange::new(9000, 9000).unwrap()
        );
        for bad in ["", "a-b", "9010-9000", "0-10", "1-70000"] {
            assert!(bad.parse::<PortRange>().is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn skips_taken_and_bound_ports_and_reports_exhaustion() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let range = PortRange::new(port, port).unwrap();
        let loopback: IpAddr = [127, 0, 0, 1].into();
        let error = range.pick(loopback, &HashSet::new()).unwrap_err();
        assert!(
            matches!(error, DeployError::PortRangeExhausted { .. }),
            "{error}"
        );
        assert!(error.to_string().contains(&format!("{port}-{port}")));
        drop(held);
        assert_eq!(range.pick(loopback, &HashSet::new()).unwrap(), port);
        let taken: HashSet<u16> = [port].into();
        assert!(range.pick(loopback, &taken).is_err());
    }
}
