#![allow(dead_code)] // shared by several test files; each uses part of it
//! One runtime per test binary, and a world to run in: the stub upstream,
//! real egress and the test permit (`fixtures::permit`), with the owner's
//! GITHUB_TOKEN, a fresh fake secret.

use std::sync::Arc;

use oauth3_host::{
    CallContext, Egress, EgressConfig, MemoryConfirmations, MemoryRateLimiter, NoAudit, Outbound, Runtime,
    RuntimeConfig, StaticSecrets,
};
use oauth3_policy::CompiledPermit;
use serde_json::Value;
use tokio::sync::OnceCell;

use super::fixtures;
use super::stub::Stub;

static RUNTIME: OnceCell<Runtime> = OnceCell::const_new();

/// The test binary's runtime (16 instances), made on first use.
pub async fn runtime() -> &'static Runtime {
    RUNTIME.get_or_init(|| async { Runtime::new(RuntimeConfig::default().max_instances(16)).await.unwrap() }).await
}

pub struct World {
    pub stub: Stub,
    pub egress: Arc<Egress>,
    pub permit: Arc<CompiledPermit>,
    pub token: String,
    /// The owner's confirmations of calls `confirm` rules allow.
    pub confirmations: Arc<MemoryConfirmations>,
}

impl World {
    /// A fresh stub and egress; `github_extra` as `fixtures::permit` takes it.
    pub async fn start(github_extra: Value) -> World {
        let stub = Stub::start().await;
        let permit = fixtures::permit(&stub, github_extra);
        let config = EgressConfig { insecure_upstreams: fixtures::insecure(&stub), ..Default::default() };
        let confirmations = Arc::new(MemoryConfirmations::default());
        let egress =
            Egress::new(config, Arc::new(MemoryRateLimiter::default()), Arc::new(NoAudit), confirmations.clone())
                .unwrap();
        let (egress, permit, token) = (Arc::new(egress), Arc::new(permit), fixtures::fake_secret("gh"));
        World { stub, egress, permit, token, confirmations }
    }

    /// Egress bound to this permit for one execution; only GITHUB_TOKEN is set.
    pub fn outbound(&self, execution_id: &str) -> Arc<dyn Outbound> {
        let context = CallContext {
            permit_id: "permit".into(),
            execution_id: execution_id.into(),
            permit: Arc::clone(&self.permit),
            secrets: Arc::new(StaticSecrets::default().with("GITHUB_TOKEN", &self.token)),
        };
        Arc::new(self.egress.bind(context))
    }
}
