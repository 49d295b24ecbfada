//! Where workflow HTTP steps may connect: URL shape, and a policy over the
//! addresses a host name resolves to.
//!
//! The decision is made over the *resolved* IP addresses, and the engine must
//! connect to exactly the addresses it checked. Checking the host name alone is
//! not enough: a name an attacker controls can resolve to a public address when
//! checked and to 127.0.0.1 or 169.254.169.254 a moment later when connected to
//! (DNS rebinding), and any name can simply point at a private address. For the
//! same reason every redirect is a new request to be checked again.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::Invalid;

/// An outgoing URL that passed the shape checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUrl {
    /// `http` or `https`.
    pub scheme: String,
    /// Lower-case host name, or an IP address (without brackets).
    pub host: String,
    /// Port, explicit or the scheme's default.
    pub port: u16,
}

impl TargetUrl {
    /// Parses a URL: http or https only, no user name or password, a host that
    /// is a name or a plain IP address (no `0x7f.1`-style numbers that resolvers
    /// read as other addresses).
    pub fn parse(field: &str, url: &str) -> Result<TargetUrl, Invalid> {
        let bad = |why: &str| Invalid::new(field, format!("`{url}` {why}"));
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| bad("is not an absolute http or https URL"))?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return Err(bad("must use http or https")),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err(bad("must not carry a user name or password; use a header"));
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| bad("has an unclosed ["))?;
            h.parse::<Ipv6Addr>()
                .map_err(|_| bad("has a bad IPv6 address"))?;
            (h.to_string(), after.strip_prefix(':'))
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        let port = match port {
            None => default_port,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| bad("has a bad port"))?,
        };
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() {
            return Err(bad("has no host"));
        }
        if host.parse::<IpAddr>().is_err() {
            let label_ok = |l: &str| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            };
            if !host.split('.').all(label_ok) {
                return Err(bad("has a host that is not a DNS name"));
            }
            // As in the WHATWG URL parser, a name whose last label is a number is
            // an IPv4 address in disguise: `2130706433`, `0x7f.1`, `127.1`.
            let last = host.rsplit('.').next().unwrap_or_default();
            let hex = last
                .strip_prefix("0x")
                .is_some_and(|h| h.chars().all(|c| c.is_ascii_hexdigit()));
            if hex || last.chars().all(|c| c.is_ascii_digit()) {
                return Err(bad("has a numeric host that is not a plain IP address"));
            }
        }
        Ok(TargetUrl { scheme, host, port })
    }
}

/// One allow or deny entry: an address range, or a host name (`*.corp.example`
/// matches every name under `corp.example`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum NetRule {
    /// An address range.
    Cidr(IpAddr, u8),
    /// A host name, or `*.` and a domain.
    Host(String),
}

impl NetRule {
    /// Parses `10.0.0.0/8`, `fd00::/8`, `127.0.0.1`, `jira.internal` or `*.corp.example`.
    pub fn parse(field: &str, s: &str) -> Result<NetRule, Invalid> {
        let s = s.trim();
        let bad = || {
            Invalid::new(
                field,
                format!("`{s}` is not an address, range or host name"),
            )
        };
        if let Some((addr, bits)) = s.split_once('/') {
            let addr: IpAddr = addr.parse().map_err(|_| bad())?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let bits: u8 = bits.parse().ok().filter(|b| *b <= max).ok_or_else(bad)?;
            // A mapped range (`::ffff:10.0.0.0/104`) is the IPv4 range it maps.
            if let IpAddr::V6(v6) = addr {
                if let (Some(v4), true) = (v6.to_ipv4_mapped(), bits >= 96) {
                    return Ok(NetRule::Cidr(IpAddr::V4(v4), bits - 96));
                }
            }
            return Ok(NetRule::Cidr(addr, bits));
        }
        if let Ok(addr) = s.parse::<IpAddr>() {
            let addr = canonical(addr);
            return Ok(NetRule::Cidr(addr, if addr.is_ipv4() { 32 } else { 128 }));
        }
        let name = s.strip_prefix("*.").unwrap_or(s);
        TargetUrl::parse(field, &format!("http://{name}/")).map_err(|_| bad())?;
        Ok(NetRule::Host(s.to_ascii_lowercase()))
    }

    fn matches_ip(&self, ip: IpAddr) -> bool {
        match *self {
            NetRule::Cidr(net, bits) => in_range(ip, net, bits),
            NetRule::Host(_) => false,
        }
    }

    fn matches_host(&self, host: &str) -> bool {
        match self {
            NetRule::Host(h) => match h.strip_prefix("*.") {
                Some(domain) => host.strip_suffix(domain).is_some_and(|p| p.ends_with('.')),
                None => h == host,
            },
            NetRule::Cidr(..) => false,
        }
    }
}

impl TryFrom<String> for NetRule {
    type Error = Invalid;
    fn try_from(s: String) -> Result<Self, Invalid> {
        NetRule::parse("net", &s)
    }
}

impl From<NetRule> for String {
    fn from(r: NetRule) -> String {
        match r {
            NetRule::Cidr(a, b) => format!("{a}/{b}"),
            NetRule::Host(h) => h,
        }
    }
}

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetDenied {
    /// The host or address is on the deny list.
    #[error("{host} ({ip}) is on the deny list")]
    Listed {
        /// Host as requested.
        host: String,
        /// Address it resolved to.
        ip: IpAddr,
    },
    /// The address is in a range denied by default and not allowed.
    #[error("{host} resolves to {ip}, a {range} address; allow it explicitly to call it")]
    Reserved {
        /// Host as requested.
        host: String,
        /// Address it resolved to.
        ip: IpAddr,
        /// The kind of range (loopback, private, link-local, …).
        range: &'static str,
    },
    /// The name resolved to nothing.
    #[error("{host} resolves to no address")]
    NoAddress {
        /// Host as requested.
        host: String,
    },
}

/// The outgoing HTTP policy: configured allow and deny lists over the defaults.
///
/// Order: the deny list wins; then the allow list; then the default, which
/// refuses loopback, private, shared (CGNAT), link-local (with cloud metadata),
/// unspecified, multicast, broadcast, documentation and reserved ranges, and
/// allows every other (public) address. An allowed host *name* admits private
/// addresses it resolves to (an internal Jira), but not loopback, link-local
/// or the other special ranges: those need the address range itself allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetPolicy {
    /// Exceptions to the default refusals.
    pub allow: Vec<NetRule>,
    /// Always refused.
    pub deny: Vec<NetRule>,
}

impl NetPolicy {
    /// Builds a policy from configured text, naming `allow[i]` or `deny[i]` in errors.
    pub fn parse(allow: &[String], deny: &[String]) -> Result<NetPolicy, Invalid> {
        let rules = |name: &str, items: &[String]| {
            items
                .iter()
                .enumerate()
                .map(|(i, s)| NetRule::parse(&format!("{name}[{i}]"), s))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(NetPolicy {
            allow: rules("allow", allow)?,
            deny: rules("deny", deny)?,
        })
    }

    /// Whether a connection to `ip`, which `host` resolved to, is allowed.
    pub fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), NetDenied> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let ip = canonical(ip);
        if self
            .deny
            .iter()
            .any(|r| r.matches_ip(ip) || r.matches_host(&host))
        {
            return Err(NetDenied::Listed { host, ip });
        }
        if self.allow.iter().any(|r| r.matches_ip(ip)) {
            return Ok(());
        }
        match reserved(ip) {
            None => Ok(()),
            Some((range, private)) => {
                if private && self.allow.iter().any(|r| r.matches_host(&host)) {
                    Ok(())
                } else {
                    Err(NetDenied::Reserved { host, ip, range })
                }
            }
        }
    }

    /// Whether `host`, resolved to `ips`, may be called: every address must be
    /// allowed (the client may pick any of them), and there must be one.
    pub fn check_resolved(&self, host: &str, ips: &[IpAddr]) -> Result<(), NetDenied> {
        if ips.is_empty() {
            return Err(NetDenied::NoAddress {
                host: host.to_string(),
            });
        }
        ips.iter().try_for_each(|ip| self.check_ip(host, *ip))
    }
}

/// IPv4 addresses embedded in IPv6 forms (mapped `::ffff:a.b.c.d`, compatible
/// `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged as the IPv4
/// address they reach.
pub fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    let s = v6.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    if s[..6] == [0, 0, 0, 0, 0, 0] && !(s[6] == 0 && s[7] <= 1) {
        return IpAddr::V4(tail); // IPv4-compatible (deprecated)
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return IpAddr::V4(tail);
    }
    if s[0] == 0x2002 {
        return IpAddr::V4(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        ));
    }
    ip
}

fn in_range(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits as u32)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits as u32)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The default-denied ranges: (network, prefix, name, whether it is merely
/// private — reachable by an allowed host name — rather than special).
const RESERVED: &[(&str, u8, &str, bool)] = &[
    ("0.0.0.0", 8, "unspecified", false),
    ("10.0.0.0", 8, "private", true),
    ("100.64.0.0", 10, "shared (CGNAT)", true),
    ("127.0.0.0", 8, "loopback", false),
    ("169.254.0.0", 16, "link-local (cloud metadata)", false),
    ("172.16.0.0", 12, "private", true),
    ("192.0.0.0", 24, "IETF protocol", false),
    ("192.0.2.0", 24, "documentation", false),
    ("192.168.0.0", 16, "private", true),
    ("198.18.0.0", 15, "benchmarking", false),
    ("198.51.100.0", 24, "documentation", false),
    ("203.0.113.0", 24, "documentation", false),
    ("224.0.0.0", 4, "multicast", false),
    ("240.0.0.0", 4, "reserved or broadcast", false),
    ("::", 128, "unspecified", false),
    ("::1", 128, "loopback", false),
    ("100::", 64, "discard", false),
    ("2001:db8::", 32, "documentation", false),
    ("fc00::", 7, "private (ULA)", true),
    ("fe80::", 10, "link-local", false),
    ("fec0::", 10, "site-local", true),
    ("ff00::", 8, "multicast", false),
];

fn reserved(ip: IpAddr) -> Option<(&'static str, bool)> {
    RESERVED.iter().find_map(|(net, bits, name, private)| {
        let net: IpAddr = net.parse().expect("constant address");
        in_range(ip, net, *bits).then_some((*name, *private))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn default_policy_table() {
        let p = NetPolicy::default();
        for denied in [
            "127.0.0.1",
            "127.8.9.10",
            "::1",
            "169.254.169.254",
            "10.1.2.3",
            "192.168.1.1",
            "172.16.0.1",
            "100.64.0.1",
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "255.255.255.255",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::1",
        ] {
            assert!(
                p.check_ip("h", ip(denied)).is_err(),
                "{denied} should be denied"
            );
        }
        for public in [
            "1.1.1.1",
            "93.184.216.34",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(
                p.check_ip("h", ip(public)).is_ok(),
                "{public} should be allowed"
            );
        }
        let e = p
            .check_ip("metadata.evil.example", ip("169.254.169.254"))
            .unwrap_err();
        assert!(e.to_string().contains("link-local"), "{e}");
    }

    #[test]
    fn allowed_when_listed_and_deny_wins() {
        let p = NetPolicy::parse(
            &[
                "127.0.0.0/8".into(),
                "169.254.169.254".into(),
                "fd00::/8".into(),
                "jira.internal".into(),
            ],
            &["10.9.0.0/16".into(), "*.evil.example".into()],
        )
        .unwrap();
        assert!(p.check_ip("localhost", ip("127.0.0.1")).is_ok());
        assert!(
            p.check_ip("x", ip("::ffff:127.0.0.1")).is_ok(),
            "mapped form of an allowed address"
        );
        assert!(p.check_ip("m", ip("169.254.169.254")).is_ok());
        assert!(p.check_ip("x", ip("fd00::1")).is_ok());
        // An allowed name reaches private addresses, but not special ones.
        assert!(p.check_ip("jira.internal", ip("10.1.2.3")).is_ok());
        assert!(p.check_ip("JIRA.internal.", ip("192.168.0.5")).is_ok());
        assert!(p.check_ip("jira.internal", ip("169.254.1.1")).is_err());
        assert!(p.check_ip("other.internal", ip("10.1.2.3")).is_err());
        // Deny wins over allow and over public.
        assert!(p.check_ip("jira.internal", ip("10.9.1.1")).is_err());
        assert!(p.check_ip("a.evil.example", ip("1.1.1.1")).is_err());
        assert!(p.check_ip("evil.example", ip("1.1.1.1")).is_ok());
        // Every resolved address must pass.
        assert!(p
            .check_resolved("x", &[ip("1.1.1.1"), ip("10.0.0.1")])
            .is_err());
        assert!(p.check_resolved("x", &[]).is_err());
        assert!(p.check_resolved("x", &[ip("1.1.1.1")]).is_ok());
    }

    #[test]
    fn rules_name_the_field() {
        assert_eq!(
            NetPolicy::parse(&["10.0.0.0/33".into()], &[])
                .unwrap_err()
                .field,
            "allow[0]"
        );
        assert_eq!(
            NetPolicy::parse(&[], &["ok.example".into(), "bad host".into()])
                .unwrap_err()
                .field,
            "deny[1]"
        );
        assert_eq!(
            String::from(NetRule::parse("r", "::ffff:10.0.0.0/104").unwrap()),
            "10.0.0.0/8"
        );
    }

    #[test]
    fn urls() {
        let u = TargetUrl::parse("u", "https://Jira.Example.com:8443/rest?x=1").unwrap();
        assert_eq!(
            (u.scheme.as_str(), u.host.as_str(), u.port),
            ("https", "jira.example.com", 8443)
        );
        assert_eq!(TargetUrl::parse("u", "http://[::1]/x").unwrap().host, "::1");
        assert_eq!(TargetUrl::parse("u", "http://127.0.0.1").unwrap().port, 80);
        for bad in [
            "ftp://x.example",
            "file:///etc/passwd",
            "https://user:pw@x.example/",
            "https://x.example@evil/",
            "//x.example",
            "https://",
            "https://x.example:0/",
            "https://x.example:99999/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://127.1/",
            "http://[::1/",
            "http://a b/",
        ] {
            assert_eq!(
                TargetUrl::parse("steps[0].http.url", bad)
                    .unwrap_err()
                    .field,
                "steps[0].http.url",
                "{bad}"
            );
        }
    }
}
