//! The component the host runs for a permit's JavaScript, decoded from its
//! bytes: it imports exactly the permit's world and inert WASI, nothing of
//! the runtime's internals, no filesystem, sockets or HTTP.

#[path = "support/fixtures.rs"]
mod fixtures;
#[path = "support/stub.rs"]
mod stub;

use std::collections::BTreeSet;

use oauth3_host::{Runtime, RuntimeConfig};
use oauth3_policy::{CompileOptions, CompiledPermit, PermitSpec};
use serde_json::json;
use tokio::sync::OnceCell;
use wit_component::DecodedWasm;

static RUNTIME: OnceCell<Runtime> = OnceCell::const_new();

async fn runtime() -> &'static Runtime {
    RUNTIME.get_or_init(|| async { Runtime::new(RuntimeConfig::default().max_instances(4)).await.unwrap() }).await
}

fn permit(integrations: &[(&str, &str)]) -> CompiledPermit {
    let integrations: Vec<_> = integrations
        .iter()
        .map(|(name, path)| {
            json!({"name": name, "base_url": format!("https://{name}.example.com"),
                   "rules": [{"method": "GET", "path": path}]})
        })
        .collect();
    let spec = PermitSpec::from_value(json!({"version": 1, "integrations": integrations})).unwrap();
    spec.compile(&CompileOptions::default()).unwrap()
}

/// The world's imports as WIT tooling reads them from `wit()`.
fn world_imports(permit: &CompiledPermit) -> BTreeSet<String> {
    let mut resolve = wit_parser::Resolve::new();
    let package = resolve.push_str("permit.wit", &permit.wit()).unwrap();
    let world = resolve.select_world(&[package], Some("permit")).unwrap();
    resolve.worlds[world].imports.keys().map(|k| resolve.name_world_key(k)).collect()
}

/// (import name, its functions) decoded from the component's bytes.
fn decoded_imports(bytes: &[u8]) -> Vec<(String, Vec<String>)> {
    let DecodedWasm::Component(resolve, world) = wit_component::decode(bytes).unwrap() else {
        panic!("not a component")
    };
    resolve.worlds[world]
        .imports
        .iter()
        .map(|(key, item)| {
            let functions = match item {
                wit_parser::WorldItem::Interface { id, .. } => {
                    resolve.interfaces[*id].functions.keys().cloned().collect()
                }
                _ => Vec::new(),
            };
            (resolve.name_world_key(key), functions)
        })
        .collect()
}

const INERT_WASI: &[&str] = &[
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:cli/stdout@",
    "wasi:cli/stderr@",
    "wasi:cli/stdin@",
    "wasi:cli/environment@",
    "wasi:cli/exit@",
    "wasi:cli/terminal-",
];

#[tokio::test(flavor = "multi_thread")]
async fn the_js_component_imports_exactly_the_permits_world_and_inert_wasi() {
    let permit = permit(&[("github", "/repos/*"), ("slack_chat", "/chat"), ("list", "/l")]);
    let bytes = runtime().await.permit_component(&permit).await.unwrap();
    let imports = decoded_imports(&bytes);

    let oauth3: BTreeSet<String> =
        imports.iter().map(|(n, _)| n.clone()).filter(|n| n.starts_with("oauth3:")).collect();
    let expected: BTreeSet<String> = world_imports(&permit).into_iter().filter(|n| n.starts_with("oauth3:")).collect();
    assert_eq!(oauth3, expected);
    for (name, functions) in &imports {
        if name.starts_with("oauth3:permit/") {
            assert_eq!(functions, &["call", "fetch"], "{name}");
        } else if !name.starts_with("oauth3:") {
            assert!(INERT_WASI.iter().any(|p| name.starts_with(p)), "{name} is not inert WASI: {imports:?}");
        }
    }
    assert!(!imports.iter().any(|(n, _)| n.contains("oauth3:js") || n.contains("filesystem")), "{imports:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn permits_naming_the_same_integrations_share_one_component() {
    let runtime = runtime().await;
    let one = runtime.permit_component(&permit(&[("github", "/a"), ("weather", "/b")])).await.unwrap();
    let other = runtime.permit_component(&permit(&[("github", "/x/**"), ("weather", "/y")])).await.unwrap();
    assert_eq!(one, other, "the rules are not in the component; the host enforces them");
    let reordered = runtime.permit_component(&permit(&[("weather", "/b"), ("github", "/a")])).await.unwrap();
    assert_ne!(one, reordered);
}
