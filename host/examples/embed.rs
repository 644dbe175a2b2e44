//! Embedding the oauth3 runtime: a local stub upstream stands in for GitHub,
//! a permit allows one endpoint, and an agent script calls it with a
//! credential it never sees.
//!
//! `cargo run -p oauth3-host --example embed`

#[path = "../tests/support/stub.rs"]
mod stub;

use std::sync::Arc;

use oauth3_host::{
    CallContext, Egress, EgressConfig, MemoryConfirmations, MemoryRateLimiter, NoAudit, RunContext, Runtime,
    RuntimeConfig, StaticSecrets,
};
use oauth3_policy::{CompileOptions, PermitSpec};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let upstream = stub::Stub::start().await;
    // Plain http to 127.0.0.1 is only for upstreams the operator allow-lists.
    let insecure: std::collections::BTreeSet<_> = [upstream.host_port().parse()?].into();

    // What the owner approved.
    let spec = PermitSpec::from_value(serde_json::json!({
        "version": 1,
        "integrations": [{
            "name": "github",
            "base_url": upstream.base_url(),
            "rules": [{"method": "GET", "path": "/repos/*/*/issues"}],
            "inject": {"headers": {"Authorization": "Bearer {GITHUB_TOKEN}"}},
            "secrets": ["GITHUB_TOKEN"],
            "rate_limit": {"max_calls": 30, "window_seconds": 60}
        }]
    }))?;
    let permit =
        Arc::new(spec.compile(&CompileOptions { insecure_upstreams: insecure.clone(), ..Default::default() })?);
    println!("{}", permit.describe());

    // Built once per process.
    let runtime = Runtime::new(RuntimeConfig::default()).await?;
    let egress = Arc::new(Egress::new(
        EgressConfig { insecure_upstreams: insecure, ..Default::default() },
        Arc::new(MemoryRateLimiter::default()),
        Arc::new(NoAudit),
        Arc::new(MemoryConfirmations::default()),
    )?);

    // One execution: the agent's script, bound to the owner's secrets.
    let script = runtime
        .compile_js(
            "const issues = await github('GET', `/repos/${args.repo}/issues`);\n\
             console.log(`${issues.length} open:`, issues.map(i => i.title));\n\
             try { await github('DELETE', '/repos/o/r') } catch (e) { console.log('refused:', e.code) }",
        )
        .await?;
    let context = CallContext {
        permit_id: "permit-1".into(),
        execution_id: "execution-1".into(),
        permit: Arc::clone(&permit),
        secrets: Arc::new(StaticSecrets::default().with("GITHUB_TOKEN", "fake-token-for-the-example")),
    };
    let run = RunContext::for_permit(&permit).args(serde_json::json!({"repo": "o/r"}));
    let outcome = runtime.run(&script, Arc::new(egress.bind(context)), run).await?;

    print!("{}", outcome.stdout);
    for call in &outcome.calls {
        println!("call: {} {} → {} {:?} {:?}", call.method, call.url, call.decision, call.reason, call.status);
    }
    Ok(())
}
