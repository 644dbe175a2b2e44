//! Typed origins: scheme, host and port parsed once from `base_url`, the
//! operator's insecure allow-list, and the public-address test egress applies
//! after DNS.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use url::{Host, Url};

use crate::path;

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP: only for allow-listed development and test upstreams.
    Http,
    /// HTTPS.
    Https,
}

/// Scheme, host and port: where an integration's calls go, exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The scheme.
    pub scheme: Scheme,
    /// Lower-case domain (IDNA-encoded) or IP address.
    pub host: Host<String>,
    /// Explicit or default port.
    pub port: u16,
}

impl Origin {
    /// The `host:port` pair, as the insecure allow-list names it.
    pub fn host_port(&self) -> HostPort {
        HostPort { host: self.host.to_string(), port: self.port }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scheme, default) = match self.scheme {
            Scheme::Http => ("http", 80),
            Scheme::Https => ("https", 443),
        };
        write!(f, "{scheme}://{}", self.host)?;
        if self.port != default {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

/// A `host:port` entry of the operator's insecure-upstream allow-list
/// (`OAUTH3_INSECURE_UPSTREAMS`). Hosts are compared lower-cased; IPv6
/// addresses are written in brackets (`[::1]:8080`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPort {
    host: String,
    port: u16,
}

impl HostPort {
    /// The host: a lower-case domain, an IPv4 address or a bracketed IPv6 address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl FromStr for HostPort {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not host:port (for example 127.0.0.1:8080)");
        let url = Url::parse(&format!("http://{s}/")).map_err(|_| bad())?;
        let (Some(host), Some(port)) = (url.host(), url.port_or_known_default()) else {
            return Err(bad());
        };
        let explicit_port = s.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok());
        if url.path() != "/" || !url.username().is_empty() || !explicit_port {
            return Err(bad());
        }
        Ok(HostPort { host: host.to_string(), port })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// A checked `base_url`.
#[derive(Debug, Clone)]
pub(crate) struct BaseUrl {
    pub origin: Origin,
    /// Normal-form path prefix without a trailing `/` (empty for none).
    pub path: String,
}

impl BaseUrl {
    /// Parses and checks a base URL; `insecure` is whether the operator
    /// allow-lists its host:port.
    pub fn parse(text: &str, insecure: impl Fn(&HostPort) -> bool) -> Result<BaseUrl, String> {
        let url = Url::parse(text).map_err(|e| format!("'{text}' is not a URL ({e})"))?;
        let scheme = match url.scheme() {
            "https" => Scheme::Https,
            "http" => Scheme::Http,
            other => return Err(format!("scheme '{other}' is not allowed; use https")),
        };
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not contain user info (user:password@); credentials go in inject".into());
        }
        if url.query().is_some() || text.contains('?') {
            return Err("must not contain a query string; use inject.query or rule query".into());
        }
        if url.fragment().is_some() || text.contains('#') {
            return Err("must not contain a fragment (#...)".into());
        }
        let host = url.host().ok_or("must name a host")?.to_owned();
        let port = url.port_or_known_default().ok_or("must have a port")?;
        let origin = Origin { scheme, host, port };
        let allowed = insecure(&origin.host_port());
        if scheme == Scheme::Http && !allowed {
            return Err(format!(
                "must use https; plain http is only for hosts in the operator's insecure list (not {})",
                origin.host_port()
            ));
        }
        if !allowed && !is_public_host(&origin.host) {
            return Err(format!(
                "host {} is loopback, private or otherwise non-public; only the operator's insecure list may name such hosts",
                origin.host
            ));
        }
        // Check the path as written: Url would silently resolve `..`.
        let after_scheme = &text[text.find("://").map_or(0, |i| i + 3)..];
        let raw_path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
        let raw_path = raw_path.strip_suffix('/').unwrap_or(raw_path);
        if raw_path.ends_with('/') {
            return Err("path has an empty segment ('//' or more than one trailing '/')".into());
        }
        if !raw_path.is_empty() {
            path::segments(raw_path).map_err(|why| format!("path {why}"))?;
        }
        Ok(BaseUrl { origin, path: raw_path.to_owned() })
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.origin, self.path)
    }
}

fn is_public_host(host: &Host<String>) -> bool {
    match host {
        Host::Domain(d) => {
            let d = d.trim_end_matches('.');
            !(d == "localhost" || d.ends_with(".localhost") || d.ends_with(".internal") || d.ends_with(".local"))
        }
        Host::Ipv4(ip) => is_public_ip(IpAddr::V4(*ip)),
        Host::Ipv6(ip) => is_public_ip(IpAddr::V6(*ip)),
    }
}

/// True for globally routable unicast addresses. Egress refuses every other
/// address after DNS (loopback, private, link-local and cloud metadata,
/// CGNAT, multicast, documentation and reserved ranges, and IPv6 forms that
/// embed such an IPv4 address) unless the operator allow-lists the host:port.
pub fn is_public_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || a == 10
        || a == 127
        || a >= 224 // multicast, reserved, broadcast
        || (a == 100 && (64..128).contains(&b)) // CGNAT
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 168)
        || (a == 192 && b == 0 && (c == 0 || c == 2)) // IETF, TEST-NET-1
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)) // TEST-NET-3
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    let embedded_v4 = |hi: u16, lo: u16| Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
    match s {
        [0, 0, 0, 0, 0, 0, 0, 0] | [0, 0, 0, 0, 0, 0, 0, 1] => false,
        [0, 0, 0, 0, 0, 0, hi, lo] => is_public_v4(embedded_v4(hi, lo)), // IPv4-compatible
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => is_public_v4(embedded_v4(hi, lo)), // NAT64
        [0x2002, hi, lo, ..] => is_public_v4(embedded_v4(hi, lo)),       // 6to4
        [0x2001, 0xdb8, ..] => false,                                    // documentation
        [0x2001, 0, ..] => false,                                        // Teredo
        [first, ..] => {
            (first & 0xfe00) != 0xfc00 // unique local
                && (first & 0xffc0) != 0xfe80 // link-local
                && (first & 0xffc0) != 0xfec0 // site-local (deprecated)
                && (first & 0xff00) != 0xff00 // multicast
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_loopback_private_and_metadata_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:a00:1::",
            "ff02::1",
        ] {
            assert!(!is_public_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["140.82.112.3", "1.1.1.1", "2606:4700::1111", "::ffff:140.82.112.3"] {
            assert!(is_public_ip(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn host_port_requires_an_explicit_port() {
        assert_eq!("127.0.0.1:8080".parse::<HostPort>().unwrap().to_string(), "127.0.0.1:8080");
        assert_eq!("LocalHost:80".parse::<HostPort>().unwrap().to_string(), "localhost:80");
        assert_eq!("[::1]:9".parse::<HostPort>().unwrap().to_string(), "[::1]:9");
        for bad in ["127.0.0.1", "a:b", "x:1/path", "u@h:1", ""] {
            assert!(bad.parse::<HostPort>().is_err(), "{bad}");
        }
    }
}
