//! Components agents submit, in the real sandbox against a real upstream on
//! 127.0.0.1: only the permit's world links, calls go through the same
//! egress (decided, credentialed, scrubbed), and the same limits stop them.

#[path = "support/components.rs"]
mod components;
#[path = "support/fixtures.rs"]
mod fixtures;
#[path = "support/stub.rs"]
mod stub;
#[path = "support/world.rs"]
mod world;

use std::time::Duration;

use components::{RESULT_BODY_OR_CODE, call_import, calls_once, component, core_module, returns, run_returning};
use oauth3_host::{AgentComponent, HostError, Limits, Outcome, RunError, Runtime, RuntimeConfig};
use oauth3_policy::OutboundRequest;
use serde_json::json;
use world::{World, runtime};

async fn world() -> World {
    World::start(json!({})).await
}

impl World {
    /// A component of this permit's world, from its own `wit()` document.
    fn component(&self, core: &str) -> Vec<u8> {
        component(&self.permit.wit(), "permit", core)
    }

    async fn load(&self, bytes: &[u8]) -> Result<AgentComponent, HostError> {
        runtime().await.load_component(bytes, &self.permit).await
    }

    async fn run(&self, core: &str, limits: Limits) -> Outcome {
        let component = self.load(&self.component(core)).await.unwrap();
        let outbound = self.outbound("exec");
        let outcome =
            runtime().await.run_component(&component, &self.permit, outbound, &json!({}), limits).await.unwrap();
        let output = outcome.output.clone().unwrap_or_default();
        assert!(!output.contains(&self.token) && !format!("{:?}", outcome.error).contains(&self.token));
        outcome
    }
}

fn limits() -> Limits {
    Limits::default().wall_time(Duration::from_secs(10))
}

fn rejected(result: Result<AgentComponent, HostError>) -> Vec<(String, String)> {
    match result {
        Err(HostError::ComponentRejected(r)) => r.refusals.into_iter().map(|r| (r.item, r.reason)).collect(),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_of_the_permits_world_runs_and_returns_its_output() {
    let w = world().await;
    let outcome = w.run(&returns("hello from wasm"), limits()).await;
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.output.as_deref(), Some("hello from wasm"));
    assert!(outcome.calls.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_allowed_call_gets_the_credential_and_the_component_never_sees_it() {
    let w = world().await;
    let outcome = w.run(&calls_once("github", "GET", "/echo"), limits()).await;
    assert_eq!(outcome.error, None, "{outcome:?}");
    let seen = w.stub.last().unwrap();
    assert!(seen.headers.contains(&("authorization".into(), format!("Bearer {}", w.token))));
    // The upstream echoed the header; the component got it scrubbed.
    let output = outcome.output.unwrap();
    assert!(output.contains("[REDACTED]") && !output.contains(&w.token), "{output}");
    assert_eq!(outcome.calls.len(), 1);
    assert_eq!((outcome.calls[0].decision.as_str(), outcome.calls[0].status), ("allow", Some(200)));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_call_returns_the_policy_deny_code_and_nothing_is_sent() {
    let w = world().await;
    let expected = w.permit.decide(&OutboundRequest::new("github", "DELETE", "/repos/o/r/issues")).deny_code().unwrap();
    let outcome = w.run(&calls_once("github", "DELETE", "/repos/o/r/issues"), limits()).await;
    assert_eq!(outcome.error, Some(RunError::Failed(expected.as_str().to_owned())));
    assert_eq!(w.stub.hits(), 0);
    assert_eq!(outcome.calls[0].reason, Some(expected.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn two_fetches_both_complete_and_each_result_is_handed_over_once() {
    let w = world().await;
    let imports = r#"
  (import "oauth3:permit/github" "fetch" (func $fetch (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "oauth3:scoped-fetch/types@0.1.0" "[method]future-response.subscribe" (func $subscribe (param i32) (result i32)))
  (import "oauth3:scoped-fetch/types@0.1.0" "[method]future-response.get" (func $get (param i32 i32)))
  (import "oauth3:scoped-fetch/types@0.1.0" "[resource-drop]future-response" (func $drop_future (param i32)))
  (import "wasi:io/poll@0.2.0" "[method]pollable.block" (func $block (param i32)))
  (import "wasi:io/poll@0.2.0" "[resource-drop]pollable" (func $drop_pollable (param i32)))"#;
    let body = format!(
        r#"(data (i32.const 16) "GET")
  (data (i32.const 64) "/sleep/50")
  (data (i32.const 128) "/repos/o/r/issues")
  (func (export "run") (param i32 i32) (result i32)
    (local $slow i32) (local $fast i32) (local $p i32) (local $q i32)
    (local.set $slow (call $fetch (i32.const 16) (i32.const 3) (i32.const 64) (i32.const 9)
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
    (local.set $fast (call $fetch (i32.const 16) (i32.const 3) (i32.const 128) (i32.const 17)
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
    (local.set $p (call $subscribe (local.get $slow)))
    (local.set $q (call $subscribe (local.get $fast)))
    (call $block (local.get $q))
    (call $block (local.get $p))
    (call $drop_pollable (local.get $p))
    (call $drop_pollable (local.get $q))
    ;; the slow one: some(ok(..)), then some(err(failed(already_taken)))
    (call $get (local.get $slow) (i32.const 3000))
    (if (i32.ne (i32.load8_u (i32.const 3000)) (i32.const 1)) (then unreachable))
    (if (i32.ne (i32.load8_u (i32.const 3004)) (i32.const 0)) (then unreachable))
    (call $get (local.get $slow) (i32.const 3100))
    (if (i32.ne (i32.load8_u (i32.const 3104)) (i32.const 1)) (then unreachable))
    (if (i32.ne (i32.load8_u (i32.const 3108)) (i32.const 1)) (then unreachable))
    (call $drop_future (local.get $slow))
    (call $get (local.get $fast) (i32.const 3200))
    (call $drop_future (local.get $fast))
    (call $result_body_or_code (i32.const 3204)))
  {RESULT_BODY_OR_CODE}"#
    );
    let outcome = w.run(&core_module(imports, &body), limits()).await;
    assert_eq!(outcome.error, None, "{outcome:?}");
    assert_eq!(outcome.output.as_deref(), Some(r#"[{"number":1,"title":"first"}]"#));
    let mut urls: Vec<&str> = outcome.calls.iter().map(|c| c.url.rsplit('/').next().unwrap()).collect();
    urls.sort();
    assert_eq!(urls, ["50", "issues"]);
}

/// Two `fetch`es, then waits on the second's pollable only, and returns its body.
fn fetch_two_wait_on_the_second(first: &str, second: &str) -> String {
    let imports = r#"
  (import "oauth3:permit/github" "fetch" (func $fetch (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "oauth3:scoped-fetch/types@0.1.0" "[method]future-response.subscribe" (func $subscribe (param i32) (result i32)))
  (import "oauth3:scoped-fetch/types@0.1.0" "[method]future-response.get" (func $get (param i32 i32)))
  (import "wasi:io/poll@0.2.0" "[method]pollable.block" (func $block (param i32)))"#;
    let body = format!(
        r#"(data (i32.const 16) "GET")
  (data (i32.const 64) "{first}")
  (data (i32.const 128) "{second}")
  (func (export "run") (param i32 i32) (result i32)
    (local $b i32)
    (drop (call $fetch (i32.const 16) (i32.const 3) (i32.const 64) (i32.const {first_len})
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
    (local.set $b (call $fetch (i32.const 16) (i32.const 3) (i32.const 128) (i32.const {second_len})
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
    (call $block (call $subscribe (local.get $b)))
    (call $get (local.get $b) (i32.const 3000))
    (call $result_body_or_code (i32.const 3004)))
  {RESULT_BODY_OR_CODE}"#,
        first_len = first.len(),
        second_len = second.len(),
    );
    core_module(imports, &body)
}

#[tokio::test(flavor = "multi_thread")]
async fn waiting_on_one_call_drives_the_others_so_a_call_waiting_for_a_slot_gets_one() {
    let w = world().await;
    // One call at a time: the second waits for the first's slot, and the
    // guest waits on the second only.
    let limits = limits().max_concurrent_calls(1).wall_time(Duration::from_secs(5));
    let outcome = w.run(&fetch_two_wait_on_the_second("/sleep/20", "/repos/o/r/issues"), limits).await;
    assert_eq!(outcome.error, None, "{outcome:?}");
    assert_eq!(outcome.output.as_deref(), Some(r#"[{"number":1,"title":"first"}]"#));
    assert_eq!(outcome.calls.len(), 2, "{:?}", outcome.calls);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_memory_limit_counts_every_memory_of_a_component() {
    let w = world().await;
    // Two memories of 5 MiB each against a limit of 8 MiB.
    let grow = core_module(
        "",
        r#"(memory $second 1)
  (func (export "run") (param i32 i32) (result i32)
    (drop (memory.grow 0 (i32.const 80)))
    (drop (memory.grow $second (i32.const 80)))
    (i32.const 0))"#,
    );
    // The pooling allocator refuses a module with two memories outright.
    let refusals = rejected(w.load(&w.component(&grow)).await);
    assert!(refusals[0].1.contains("memories"), "{refusals:?}");
    // Without it, both memories count against the one limit.
    let runtime = Runtime::new(RuntimeConfig::default().max_instances(2).pooling(false)).await.unwrap();
    let component = runtime.load_component(&w.component(&grow), &w.permit).await.unwrap();
    let outbound = w.outbound("exec");
    let limits = limits().memory_bytes(8 << 20);
    let outcome = runtime.run_component(&component, &w.permit, outbound, &json!({}), limits).await.unwrap();
    assert_eq!(outcome.error, Some(RunError::MemoryLimit { limit: 8 << 20 }));
}

#[tokio::test(flavor = "multi_thread")]
async fn what_run_returns_is_bounded_like_stdout() {
    let w = world().await;
    let outcome = w.run(&returns("0123456789"), limits().stdout_bytes(8)).await;
    assert!(matches!(outcome.error, Some(RunError::OutputLimit { limit: 8, .. })), "{outcome:?}");
    assert_eq!(outcome.output, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn imports_outside_the_permits_world_are_rejected_by_name_before_anything_runs() {
    let w = world().await;
    let wit = r#"package test:outside;
world outside {
    import wasi:sockets/tcp@0.2.0;
    import wasi:http/outgoing-handler@0.2.0;
    import oauth3:permit/slack;
    import oauth3:permit/github;
    export run: func(args: string) -> result<string, string>;
}
package wasi:sockets@0.2.0 { interface tcp { connect: func(); } }
package wasi:http@0.2.0 { interface outgoing-handler { handle: func(); } }
package oauth3:permit {
    interface slack { call: func(); }
    interface github { call: func(); }
}
"#;
    let imports = r#"(import "wasi:sockets/tcp@0.2.0" "connect" (func))
  (import "wasi:http/outgoing-handler@0.2.0" "handle" (func))
  (import "oauth3:permit/slack" "call" (func))"#;
    let bytes = component(wit, "outside", &core_module(imports, &run_returning("x")));
    let refusals = rejected(w.load(&bytes).await);
    let names: Vec<&str> = refusals.iter().map(|(item, _)| item.as_str()).collect();
    // wasi:http is on here (its requests are routed to the integrations);
    // `wasi_http.rs` has it turned off.
    assert_eq!(names, ["wasi:sockets/tcp@0.2.0", "oauth3:permit/slack"]);
    assert!(refusals[1].1.contains("github, weather"), "{refusals:?}");
    assert_eq!(w.stub.hits(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_import_with_the_right_name_and_the_wrong_type_is_rejected_when_loaded() {
    let w = world().await;
    let wit = r#"package test:impostor;
world impostor {
    import oauth3:permit/github;
    export run: func(args: string) -> result<string, string>;
}
package oauth3:permit { interface github { call: func(); } }
"#;
    let imports = r#"(import "oauth3:permit/github" "call" (func))"#;
    let bytes = component(wit, "impostor", &core_module(imports, &run_returning("x")));
    let refusals = rejected(w.load(&bytes).await);
    assert!(refusals[0].1.contains("oauth3:permit/github"), "{refusals:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_core_module_or_garbage_is_not_a_component() {
    let w = world().await;
    let module = wat::parse_str("(module)").unwrap();
    let refusals = rejected(w.load(&module).await);
    assert!(refusals[0].1.contains("core WebAssembly module"), "{refusals:?}");
    let refusals = rejected(w.load(b"definitely not wasm").await);
    assert_eq!(refusals[0].0, "component");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_without_the_worlds_run_is_rejected() {
    let w = world().await;
    let wit = "package test:other;\nworld other { export start: func(args: string) -> result<string, string>; }\n";
    let core = returns("x").replace(r#"(export "run")"#, r#"(export "start")"#);
    let refusals = rejected(w.load(&component(wit, "other", &core)).await);
    assert_eq!(refusals[0].0, "run");
    let wit = "package test:other;\nworld other { export run: func(args: string) -> string; }\n";
    let core = core_module("", r#"(func (export "run") (param i32 i32) (result i32) (i32.const 0))"#);
    let refusals = rejected(w.load(&component(wit, "other", &core)).await);
    assert_eq!(refusals[0].0, "run");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_larger_than_the_limit_is_rejected_unread() {
    let runtime =
        Runtime::new(RuntimeConfig::default().max_instances(2).pooling(false).max_component_bytes(1024)).await.unwrap();
    let w = world().await;
    let bytes = vec![0; 2048];
    let refusals = rejected(runtime.load_component(&bytes, &w.permit).await);
    assert!(refusals[0].1.contains("at most 1024"), "{refusals:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_looping_component_is_stopped_by_fuel_or_the_deadline_and_the_host_keeps_serving() {
    let w = world().await;
    let spin = core_module("", r#"(func (export "run") (param i32 i32) (result i32) (loop $l (br $l)) (i32.const 0))"#);
    let outcome = w.run(&spin, limits().fuel(50_000_000)).await;
    assert_eq!(outcome.error, Some(RunError::OutOfFuel { limit: 50_000_000 }));
    let outcome = w.run(&spin, limits().fuel(u64::MAX / 2).wall_time(Duration::from_millis(300))).await;
    assert_eq!(outcome.error, Some(RunError::Timeout { limit: Duration::from_millis(300) }));
    let outcome = w.run(&returns("still here"), limits()).await;
    assert_eq!(outcome.output.as_deref(), Some("still here"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_growing_memory_is_stopped_at_the_limit() {
    let w = world().await;
    let grow = core_module(
        "",
        r#"(func (export "run") (param i32 i32) (result i32)
    (loop $l (drop (memory.grow (i32.const 16))) (br $l))
    (i32.const 0))"#,
    );
    let outcome = w.run(&grow, limits().memory_bytes(8 << 20)).await;
    assert_eq!(outcome.error, Some(RunError::MemoryLimit { limit: 8 << 20 }));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_component_past_the_call_limit_is_stopped() {
    let w = world().await;
    let imports = call_import("github");
    let body = format!(
        r#"(data (i32.const 16) "GET")
  (data (i32.const 64) "/repos/o/r/issues")
  (func (export "run") (param i32 i32) (result i32)
    (loop $l
      (call $call_github (i32.const 16) (i32.const 3) (i32.const 64) (i32.const 17)
        (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
        (i32.const 1024))
      (br $l))
    (call $result_body_or_code (i32.const 1024)))
  {RESULT_BODY_OR_CODE}"#
    );
    let outcome = w.run(&core_module(&imports, &body), limits().max_calls(3)).await;
    assert_eq!(outcome.error, Some(RunError::CallLimit { limit: 3 }));
    assert_eq!(w.stub.hits(), 3);
    assert_eq!(outcome.calls.len(), 4, "three sent, the fourth refused: {:?}", outcome.calls);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_in_memory_component_cache_keeps_within_its_byte_budget_and_evicted_components_still_run() {
    let w = world().await;
    let (a, b) = (w.component(&returns("first")), w.component(&returns("second")));
    let config = RuntimeConfig::default().max_instances(2).pooling(false).component_cache_bytes(a.len().max(b.len()));
    let runtime = Runtime::new(config).await.unwrap();
    let first = runtime.load_component(&a, &w.permit).await.unwrap();
    assert!(runtime.loaded_component(&first.hash_hex()).is_some());
    let second = runtime.load_component(&b, &w.permit).await.unwrap();
    assert!(runtime.loaded_component(&first.hash_hex()).is_none(), "evicted to fit the second");
    assert!(runtime.loaded_component(&second.hash_hex()).is_some());
    for (component, expected) in [(&first, "first"), (&second, "second")] {
        let outbound = w.outbound("exec");
        let outcome = runtime.run_component(component, &w.permit, outbound, &json!({}), limits()).await.unwrap();
        assert_eq!(outcome.output.as_deref(), Some(expected));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_future_response_does_not_cancel_its_call_which_is_settled_and_recorded() {
    let w = world().await;
    let imports = r#"
  (import "oauth3:permit/github" "fetch" (func $fetch (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "oauth3:scoped-fetch/types@0.1.0" "[resource-drop]future-response" (func $drop_future (param i32)))"#;
    let body = r#"(data (i32.const 16) "GET")
  (data (i32.const 64) "/sleep/30")
  (data (i32.const 128) "dropped")
  (func (export "run") (param i32 i32) (result i32)
    (call $drop_future (call $fetch (i32.const 16) (i32.const 3) (i32.const 64) (i32.const 9)
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))
    (i32.store8 (i32.const 1024) (i32.const 0))
    (i32.store (i32.const 1028) (i32.const 128))
    (i32.store (i32.const 1032) (i32.const 7))
    (i32.const 1024))"#;
    let outcome = w.run(&core_module(imports, body), limits()).await;
    assert_eq!(outcome.output.as_deref(), Some("dropped"), "{outcome:?}");
    assert_eq!(outcome.calls.len(), 1);
    assert_eq!(outcome.calls[0].status, Some(200), "the call finished: {:?}", outcome.calls);
}
