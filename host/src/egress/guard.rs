//! The address guard: after DNS, loopback, private, link-local, metadata and
//! other non-public addresses are refused unless the operator allow-lists the
//! upstream. Permits only name allow-listed non-public hosts with their
//! allow-listed port (checked when they are compiled), so the guard keys on
//! host names alone.

use std::collections::HashSet;
use std::net::SocketAddr;

use oauth3_policy::is_public_ip;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Every address a name resolved to was refused.
#[derive(Debug, thiserror::Error)]
#[error("{0} resolves only to non-public addresses")]
pub(crate) struct AddressRefused(pub String);

pub(crate) struct GuardedResolver {
    /// Lower-case host names (and bracketed IPv6) from the insecure list.
    insecure_hosts: HashSet<String>,
}

impl GuardedResolver {
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
