#![allow(dead_code)] // shared by several test files; each uses part of it
//! The permit the host tests use: `github` (bearer token, many routes of the
//! stub) and `weather` (api key in the query), both on one stub upstream.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

use oauth3_policy::{CompileOptions, CompiledPermit, HostPort, PermitSpec};
use serde_json::{Value, json};

use super::stub::Stub;

/// An obviously fake secret, different in every call.
pub fn fake_secret(label: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("fake_{label}_{nanos:x}{:x}", COUNTER.fetch_add(1, Ordering::SeqCst))
}

/// The stub's `host:port`, the only insecure upstream the tests allow.
pub fn insecure(stub: &Stub) -> BTreeSet<HostPort> {
    [stub.host_port().parse().unwrap()].into()
}

/// Compiles the test permit; `github_extra` replaces top-level fields of the
/// `github` integration (e.g. `rules`, `rate_limit`, `limits`).
pub fn permit(stub: &Stub, github_extra: Value) -> CompiledPermit {
    let weather = json!({"name": "weather", "base_url": stub.base_url(), "rules": [{"method": "GET", "path": "/forecast"}],
        "inject": {"query": {"api_key": "{WEATHER_KEY}"}}, "secrets": ["WEATHER_KEY"]});
    compile(stub, vec![github(stub, github_extra), weather])
}

/// The `github` integration (bearer token, many routes of the stub), with
/// `extra`'s top-level fields replacing its own.
pub fn github(stub: &Stub, extra: Value) -> Value {
    let mut github = json!({
        "name": "github",
        "base_url": stub.base_url(),
        "rules": [
            {"method": "GET", "path": "/repos/o/r/issues"},
            {"method": "POST", "path": "/repos/o/r/issues",
             "body": {"type": "object", "required": ["title"], "additionalProperties": false,
                      "properties": {"title": {"type": "string"}}}},
            {"method": "GET", "path": "/repos/o/r/contents/**"},
            {"method": "GET", "path": "/echo"},
            {"method": "GET", "path": "/reflect/*"},
            {"method": "GET", "path": "/gzip"},
            {"method": "GET", "path": "/redirect/**"},
            {"method": "GET", "path": "/big"},
            {"method": "GET", "path": "/slow"},
            {"method": "GET", "path": "/sleep/*"},
            {"method": "GET", "path": "/missing"}
        ],
        "inject": {"headers": {"Authorization": "Bearer {GITHUB_TOKEN}"}},
        "secrets": ["GITHUB_TOKEN"]
    });
    for (key, value) in extra.as_object().expect("an object of fields") {
        github[key] = value.clone();
    }
    github
}

/// A permit of these integrations, with the stub as the insecure upstream.
pub fn compile(stub: &Stub, integrations: Vec<Value>) -> CompiledPermit {
    let spec = PermitSpec::from_value(json!({"version": 1, "integrations": integrations})).unwrap();
    spec.compile(&CompileOptions { insecure_upstreams: insecure(stub), ..Default::default() }).unwrap()
}
