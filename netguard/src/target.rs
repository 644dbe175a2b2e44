//! Where an outbound fetch may go, checked on the URL before any
//! connection: the same rule for doc fetches, webhooks and every other
//! request the gateway makes on its own (egress checks upstreams against
//! the compiled permit instead).

use std::collections::BTreeSet;
use std::net::IpAddr;

use oauth3_policy::{HostPort, is_public_ip};
use reqwest::Url;

/// Checks `url`: https, or plain http to an `insecure_upstreams` host:port;
/// no user info; IP literals public unless allow-listed. `Ok(true)` when the
/// host:port is allow-listed (then its names may resolve to non-public
/// addresses: use a [`GuardedResolver`](crate::GuardedResolver) that lets
/// its name through). The reason never quotes the URL (a redirect's target
/// comes from a response).
pub fn check_url(url: &Url, insecure_upstreams: &BTreeSet<HostPort>) -> Result<bool, String> {
    match url.scheme() {
        "https" | "http" => {}
        other => return Err(format!("only https URLs are fetched, not {other}:")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("user info in a URL is not allowed".into());
    }
    let Some(host) = url.host() else { return Err("the URL has no host".into()) };
    let port = url.port_or_known_default().ok_or("the URL has no port")?;
    let host_str = url.host_str().unwrap_or_default();
    let allow_listed = insecure_upstreams.iter().any(|hp| hp.host() == host_str && hp.port() == port);
    if url.scheme() == "http" && !allow_listed {
        return Err("plain http is fetched only from upstreams in OAUTH3_INSECURE_UPSTREAMS; use https".into());
    }
    let literal = match host {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    };
    if let Some(ip) = literal
        && !allow_listed
        && !is_public_ip(ip)
    {
        return Err("the host is not a public address".into());
    }
    Ok(allow_listed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(url: &str, insecure: &[&str]) -> Result<bool, String> {
        let insecure = insecure.iter().map(|hp| hp.parse().unwrap()).collect();
        check_url(&Url::parse(url).unwrap(), &insecure)
    }

    #[test]
    fn only_https_or_allow_listed_http_to_public_addresses() {
        assert_eq!(check("https://hooks.example.com/x", &[]), Ok(false));
        assert_eq!(check("http://127.0.0.1:9000/hook", &["127.0.0.1:9000"]), Ok(true));
        assert!(check("http://hooks.example.com/x", &[]).is_err(), "plain http");
        assert!(check("https://127.0.0.1/x", &[]).is_err(), "loopback");
        assert!(check("https://169.254.169.254/latest", &[]).is_err(), "metadata");
        assert!(check("https://[::1]/x", &[]).is_err());
        assert!(check("http://127.0.0.1:9001/hook", &["127.0.0.1:9000"]).is_err(), "another port");
        assert!(check("https://user:pw@hooks.example.com/", &[]).is_err(), "user info");
        assert!(check("file:///etc/passwd", &[]).is_err());
    }
}
