//! The address guard: after DNS, loopback, private, link-local, metadata and
//! other non-public addresses are refused unless the operator allow-lists the
//! upstream. Permits only name allow-listed non-public hosts with their
//! allow-listed port (checked when they are compiled), so the guard keys on
//! host names alone.

use std::collections::HashSet;
use std::net::SocketAddr;

use oauth3_policy::is_public_ip;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Every address a name resolved to was refused. Find it in a
/// `reqwest::Error`'s source chain to tell a refusal from a network failure.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to non-public addresses")]
pub struct AddressRefused(
    /// The host name, lower case.
    pub String,
);

impl AddressRefused {
    /// The refusal in `error`'s source chain, if the guard caused it.
    pub fn in_chain<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a AddressRefused> {
        let mut source = Some(error);
        while let Some(e) = source {
            if let Some(refused) = e.downcast_ref::<AddressRefused>() {
                return Some(refused);
            }
            source = e.source();
        }
        None
    }
}

/// A `reqwest` DNS resolver that drops non-public addresses (see
/// [`oauth3_policy::is_public_ip`]) unless the host name is allow-listed, and
/// fails with [`AddressRefused`] when none is left.
///
/// It keys on host names alone and never sees IP literals (reqwest connects
/// to those without resolving): callers check literals with `is_public_ip`
/// themselves, and use a resolver with allow-listed names only for requests
/// to an allow-listed host:port (a resolver with an empty list otherwise), so
/// an allow-listed host is not reachable on another port.
pub struct GuardedResolver {
    /// Lower-case host names (and bracketed IPv6) from the insecure list.
    insecure_hosts: HashSet<String>,
}

impl GuardedResolver {
    /// A resolver letting `insecure_hosts` (lower-case names, as in
    /// [`oauth3_policy::HostPort::host`]) resolve to any address.
    pub fn new(insecure_hosts: HashSet<String>) -> GuardedResolver {
        GuardedResolver { insecure_hosts }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let insecure = self.insecure_hosts.contains(&host);
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = resolved.filter(|addr| insecure || is_public_ip(addr.ip())).collect();
            if allowed.is_empty() {
                return Err(Box::new(AddressRefused(host)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    async fn resolve(resolver: &GuardedResolver, name: &str) -> Result<Vec<SocketAddr>, String> {
        match resolver.resolve(Name::from_str(name).unwrap()).await {
            Ok(addrs) => Ok(addrs.collect()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[tokio::test]
    async fn refuses_a_name_that_resolves_only_to_loopback() {
        let err = resolve(&GuardedResolver::new(HashSet::new()), "localhost").await.unwrap_err();
        assert_eq!(err, "localhost resolves only to non-public addresses");
    }

    #[tokio::test]
    async fn allows_an_allow_listed_name_to_resolve_to_loopback() {
        let resolver = GuardedResolver::new(["localhost".to_owned()].into());
        let addrs = resolve(&resolver, "LocalHost").await.unwrap();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()));
    }
}
