//! The sandbox runtime: one wasmtime engine with the guest runtime (a Javy
//! plugin) loaded once, then any number of isolated runs of agent scripts.
//!
//! ```no_run
//! # async fn demo(outbound: std::sync::Arc<dyn oauth3_host::Outbound>) -> Result<(), Box<dyn std::error::Error>> {
//! use oauth3_host::{Limits, RunContext, Runtime, RuntimeConfig};
//!
//! let runtime = Runtime::new(RuntimeConfig::default()).await?;
//! let script = runtime.compile_js("const issues = await github('GET', '/repos/o/r/issues'); console.log(issues.length)").await?;
//! let outcome = runtime
//!     .run(&script, outbound, RunContext::new(["github"]).args(serde_json::json!({"repo": "o/r"})).limits(Limits::default()))
//!     .await?;
//! println!("{}", outcome.stdout);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oauth3_policy::{CompiledPermit, IntegrationName};
use tokio::sync::Semaphore;
use wasmtime::component::{Component, InstancePre, Linker};
use wasmtime::{
    Cache, CacheConfig, Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap,
    UpdateDeadline,
};

use crate::call::Outbound;
use crate::code_cache::DiskCodeCache;
use crate::component::{self, AgentComponent, ComponentRejected};
use crate::error::{BoxedError, HostError};
use crate::js_component::bindings::RuntimePre;
use crate::js_component::bindings::exports::oauth3::js::script::JsError;
use crate::js_component::{self, JsComponent};
use crate::limits::{Limits, setters};
use crate::outcome::{Outcome, RunError};
use crate::sandbox::{
    BoundedPipe, MAX_CORE_INSTANCES, MAX_MEMORIES, MAX_TABLES, NoOutbound, State, StateLimits, StdoutTap, Stop, lock,
};
use crate::script::Script;
use crate::{scoped_fetch, wasi, wasi_http};

/// The guest runtime component as built by `build.rs` (before its snapshot).
const GUEST_RUNTIME: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/guest_runtime.wasm"));

/// How a [`Runtime`] is built. `RuntimeConfig::default()` suits most embedders.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RuntimeConfig {
    /// Where the snapshotted guest runtime and its compiled code are cached
    /// (default: `oauth3-sandbox` under [`std::env::temp_dir`]).
    pub cache_dir: Option<PathBuf>,
    /// Runs (and compilations) at once (at least 1); more wait for a slot. Also sizes the
    /// pooling allocator.
    pub max_instances: u32,
    /// The largest memory any run may have ([`Limits::memory_bytes`] is
    /// capped by it).
    pub max_memory_bytes: usize,
    /// Native wasm stack per run, in bytes.
    pub max_wasm_stack: usize,
    /// Use wasmtime's pooling allocator (fast instantiation; reserves virtual
    /// memory up front). Turn off on hosts with little address space.
    pub pooling: bool,
    /// How often the epoch ticks: the granularity of wall-clock limits and of
    /// yielding to other tasks while a script computes.
    pub epoch_tick: Duration,
    /// Compiled scripts kept in memory, by SHA-256 of their source.
    pub script_cache_entries: usize,
    /// The largest script source accepted, in bytes.
    pub max_source_bytes: usize,
    /// Bounds for compiling a script (fuel, memory, wall time).
    pub compile_limits: Limits,
    /// The largest component accepted, in bytes.
    pub max_component_bytes: usize,
    /// Compiled components kept in memory, by SHA-256 of their bytes (they
    /// are also cached on disk, see [`RuntimeConfig::disk_cache_bytes`]).
    pub component_cache_entries: usize,
    /// At most this many bytes of components (as submitted; their compiled
    /// code is a few times more) are kept in memory.
    pub component_cache_bytes: usize,
    /// About how much compiled code each of the two on-disk caches keeps:
    /// whole components (wasmtime's cache) and single functions
    /// (`<cache_dir>/functions`); past it, the least recently used are
    /// evicted.
    pub disk_cache_bytes: u64,
    /// Whether components may import `wasi:http/outgoing-handler` (their
    /// requests are routed to the permit's integrations through the same
    /// egress). Off, such a component is rejected by name.
    pub wasi_http: bool,
}

impl Default for RuntimeConfig {
    fn default() -> RuntimeConfig {
        RuntimeConfig {
            cache_dir: None,
            max_instances: 64,
            max_memory_bytes: 256 << 20,
            max_wasm_stack: 1 << 20,
            pooling: true,
            epoch_tick: Duration::from_millis(10),
            script_cache_entries: 1024,
            max_source_bytes: 1 << 20,
            compile_limits: Limits::default().wall_time(Duration::from_secs(10)),
            max_component_bytes: 8 << 20,
            component_cache_entries: 64,
            component_cache_bytes: 64 << 20,
            disk_cache_bytes: 1 << 30,
            wasi_http: true,
        }
    }
}

setters!(RuntimeConfig {
    max_instances(instances: u32) = instances.max(1);
    max_memory_bytes(bytes: usize);
    pooling(pooling: bool);
    script_cache_entries(entries: usize);
    max_component_bytes(bytes: usize);
    component_cache_entries(entries: usize);
    component_cache_bytes(bytes: usize);
    disk_cache_bytes(bytes: u64);
    wasi_http(enabled: bool);
});

impl RuntimeConfig {
    /// Sets [`RuntimeConfig::cache_dir`].
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> RuntimeConfig {
        self.cache_dir = Some(dir.into());
        self
    }

    fn cache_path(&self) -> PathBuf {
        self.cache_dir.clone().unwrap_or_else(|| std::env::temp_dir().join("oauth3-sandbox"))
    }
}

/// What one run gets: the integration functions to define, the `args`
/// global and its limits.
#[derive(Debug, Clone, Default)]
pub struct RunContext {
    /// Integration names (from the permit); each becomes an async function
    /// `name(method, path, options)`.
    pub integrations: Vec<String>,
    /// The `args` global.
    pub args: serde_json::Value,
    /// Bounds of the run.
    pub limits: Limits,
    /// Where what it prints can be read while it runs.
    pub stdout: Option<StdoutTap>,
}

impl RunContext {
    /// A context defining these integrations, with `args = null` and default limits.
    pub fn new<I, S>(integrations: I) -> RunContext
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RunContext { integrations: integrations.into_iter().map(Into::into).collect(), ..RunContext::default() }
    }

    /// A context defining the integrations of `permit`.
    pub fn for_permit(permit: &oauth3_policy::CompiledPermit) -> RunContext {
        RunContext::new(permit.integrations().iter().map(|i| i.name()))
    }

    /// Sets [`RunContext::args`].
    pub fn args(mut self, args: serde_json::Value) -> RunContext {
        self.args = args;
        self
    }

    /// Sets [`RunContext::limits`].
    pub fn limits(mut self, limits: Limits) -> RunContext {
        self.limits = limits;
        self
    }

    /// Sets [`RunContext::stdout`].
    pub fn stdout(mut self, tap: StdoutTap) -> RunContext {
        self.stdout = Some(tap);
        self
    }
}

/// The sandbox: built once ([`Runtime::new`]), cheap to clone and share
/// between tasks; compiles scripts and runs each in a fresh instance.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    /// The snapshotted guest runtime, as bytes (what compositions embed).
    snapshot: Arc<[u8]>,
    /// The guest runtime alone, for compiling scripts (it can make no call).
    plain: RuntimePre<State>,
    /// The guest runtime composed per list of integration names.
    js: Mutex<HashMap<Vec<IntegrationName>, Arc<Building>>>,
    /// Inert WASI and the shared types: what every component may import
    /// besides its permit's interfaces.
    base: Linker<State>,
    config: RuntimeConfig,
    scripts: Mutex<HashMap<[u8; 32], Arc<[u8]>>>,
    components: Mutex<HashMap<[u8; 32], AgentComponent>>,
    /// Components linked to a permit's world, by component and spec hash.
    linked: Mutex<HashMap<LinkKey, InstancePre<State>>>,
    /// Compiling agents' components is CPU-bound: at most one per core at
    /// once, apart from building permits' JavaScript components (`builds`),
    /// so a flood of submissions does not hold up a new permit's first run.
    compiles: Semaphore,
    builds: Semaphore,
    slots: Arc<Semaphore>,
    ticker_stop: Arc<AtomicBool>,
}

/// A JavaScript component built once, however many runs wait for it.
type Building = tokio::sync::OnceCell<Arc<JsComponent>>;

/// (component hash, spec hash).
type LinkKey = ([u8; 32], [u8; 32]);

impl Drop for Inner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

fn engine_err(e: impl Into<BoxedError>) -> HostError {
    HostError::Engine(e.into())
}

fn guest_err(e: impl Into<BoxedError>) -> HostError {
    HostError::GuestRuntime(e.into())
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in parts {
        ctx.update(part);
    }
    let mut out = [0; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Runtime {
    /// Builds the engine and loads the guest runtime. The first time on a
    /// machine (per cache directory) this snapshots and compiles the guest
    /// runtime, which takes a few seconds and blocks the calling thread;
    /// afterwards it loads both from the cache.
    pub async fn new(config: RuntimeConfig) -> Result<Runtime, HostError> {
        let mut wasm = Config::new();
        // No component-model async: the guest uses the classic async ABI, and
        // the concurrent machinery (per-store state, a worker fiber disposed
        // by unwinding it with an error on drop) made a run with two async
        // `wait-call`s ~200 µs slower in benches/sandbox.rs.
        wasm.consume_fuel(true)
            .epoch_interruption(true)
            .max_wasm_stack(config.max_wasm_stack)
            .concurrency_support(false);
        if config.pooling {
            let instances = config.max_instances;
            let mut pool = PoolingAllocationConfig::new();
            // As many per run as the limiter allows one, so that no run can
            // use up the pool for the others.
            let (core, memories, tables) = (MAX_CORE_INSTANCES as u32, MAX_MEMORIES as u32, MAX_TABLES as u32);
            pool.total_component_instances(instances)
                .total_core_instances(instances * core)
                .max_core_instances_per_component(core)
                .total_memories(instances * memories)
                .max_memories_per_component(memories)
                .max_memories_per_module(1)
                .total_tables(instances * tables)
                .max_tables_per_component(tables)
                .total_stacks(instances)
                .total_gc_heaps(0)
                .max_memory_size(config.max_memory_bytes)
                .max_unused_warm_slots(instances.min(16));
            if keep_written_pages() {
                // A slot keeps the pages a run wrote (up to 1 MiB per
                // memory), reset from the image by copying those
                // PAGEMAP_SCAN finds: the next run there takes no
                // copy-on-write fault. Each such fault flushes the TLB of
                // every core running the process, which made 1,000
                // concurrent runs ~40% slower. The cost: used slots stay
                // resident.
                pool.linear_memory_keep_resident(1 << 20).pagemap_scan(wasmtime::Enabled::Yes);
            }
            wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let cache_dir = config.cache_path();
        let compiled_dir = cache_dir.join("compiled");
        std::fs::create_dir_all(&compiled_dir)
            .map_err(|source| HostError::Cache { path: compiled_dir.clone(), source })?;
        // The host loads whatever it finds here: keep it private to this user.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&cache_dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|source| HostError::Cache { path: cache_dir.clone(), source })?;
        }
        let mut cache_config = CacheConfig::new();
        cache_config.with_directory(&compiled_dir).with_files_total_size_soft_limit(config.disk_cache_bytes);
        wasm.cache(Some(Cache::new(cache_config).map_err(engine_err)?));
        let functions_dir = cache_dir.join("functions");
        let functions = DiskCodeCache::open(functions_dir.clone(), config.disk_cache_bytes)
            .map_err(|source| HostError::Cache { path: functions_dir, source })?;
        wasm.enable_incremental_compilation(Arc::new(functions)).map_err(engine_err)?;
        let engine = Engine::new(&wasm).map_err(engine_err)?;

        let snapshot: Arc<[u8]> = snapshot(&cache_dir).await?.into();
        let component = Component::new(&engine, &snapshot).map_err(guest_err)?;
        let mut base = Linker::<State>::new(&engine);
        wasi::add_inert(&mut base).map_err(engine_err)?;
        scoped_fetch::add_types(&mut base).map_err(engine_err)?;
        if config.wasi_http {
            wasi_http::add_to_linker(&mut base).map_err(engine_err)?;
        }
        let mut linker = base.clone();
        js_component::add_dispatch_stub(&mut linker).map_err(guest_err)?;
        let plain = RuntimePre::new(linker.instantiate_pre(&component).map_err(guest_err)?).map_err(guest_err)?;
        let cores = std::thread::available_parallelism().map_or(1, usize::from);

        let ticker_stop = Arc::new(AtomicBool::new(false));
        {
            let engine = engine.clone();
            let stop = ticker_stop.clone();
            let tick = config.epoch_tick.max(Duration::from_millis(1));
            std::thread::Builder::new()
                .name("oauth3-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(tick);
                        engine.increment_epoch();
                    }
                })
                .map_err(engine_err)?;
        }

        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                snapshot,
                plain,
                js: Mutex::new(HashMap::new()),
                base,
                slots: Arc::new(Semaphore::new(config.max_instances.max(1) as usize)),
                scripts: Mutex::new(HashMap::new()),
                components: Mutex::new(HashMap::new()),
                linked: Mutex::new(HashMap::new()),
                compiles: Semaphore::new(cores),
                builds: Semaphore::new(cores),
                config,
                ticker_stop,
            }),
        })
    }

    /// The configuration this runtime was built with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Compiles an agent's script (an ES module: top-level `await` works) to
    /// bytecode. Compiled scripts are cached in memory by the SHA-256 of
    /// their source.
    pub async fn compile_js(&self, source: &str) -> Result<Script, HostError> {
        let limit = self.inner.config.max_source_bytes;
        if source.len() > limit {
            return Err(HostError::ScriptTooLarge { size: source.len(), limit });
        }
        let hash = sha256(&[source.as_bytes()]);
        if let Some(bytecode) = self.scripts().get(&hash) {
            return Ok(Script { hash, bytecode: bytecode.clone() });
        }

        let limits = self.inner.config.compile_limits;
        let mut session = self.session(Arc::new(NoOutbound), None, &limits, None).await;
        let pre = &self.inner.plain;
        let result = session
            .drive(async |store| {
                pre.instantiate_async(&mut *store).await?.oauth3_js_script().call_compile(store, source).await
            })
            .await;
        let bytecode: Arc<[u8]> = match result {
            Ok(Ok(bytecode)) => bytecode.into(),
            Ok(Err(e)) => {
                let message = if e.name.is_empty() { e.message } else { format!("{}: {}", e.name, e.message) };
                return Err(HostError::Syntax { message, line: e.line.unwrap_or(0), column: e.column.unwrap_or(0) });
            }
            Err(error) => return Err(HostError::CompileFailed(error)),
        };

        let mut scripts = self.scripts();
        if scripts.len() >= self.inner.config.script_cache_entries {
            // Recompiling costs well under a millisecond.
            evict_any(&mut scripts);
        }
        if self.inner.config.script_cache_entries > 0 {
            scripts.insert(hash, bytecode.clone());
        }
        Ok(Script { hash, bytecode })
    }

    /// Runs a compiled script in a fresh instance whose only way out is
    /// `outbound`. Whatever the script does, this returns an [`Outcome`];
    /// `Err` only means the context was invalid.
    pub async fn run(
        &self,
        script: &Script,
        outbound: Arc<dyn Outbound>,
        context: RunContext,
    ) -> Result<Outcome, HostError> {
        // The spec's one grammar: each name is a JavaScript function and a WIT interface.
        let names = context
            .integrations
            .iter()
            .map(|name| IntegrationName::parse(name))
            .collect::<Result<Vec<_>, _>>()
            .map_err(HostError::InvalidContext)?;
        let js = self.js_component(names).await?;
        let args = serde_json::to_string(&context.args).map_err(|e| HostError::InvalidContext(e.to_string()))?;
        let mut limits = context.limits;
        limits.memory_bytes = limits.memory_bytes.min(self.inner.config.max_memory_bytes);

        let started = Instant::now();
        let mut session = self.session(outbound, None, &limits, context.stdout.as_ref()).await;
        let bytecode = script.bytecode.clone();
        let integrations = context.integrations;
        let pre = &js.pre;
        let result = session
            .drive(async |store| {
                let runtime = pre.instantiate_async(&mut *store).await?;
                runtime.oauth3_js_script().call_run(store, &bytecode, &integrations, &args).await
            })
            .await;
        let error = match result {
            Ok(Ok(())) => None,
            Ok(Err(js)) => Some(uncaught(js)),
            Err(error) => Some(error),
        };
        Ok(session.finish(error, started).await)
    }

    fn scripts(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Arc<[u8]>>> {
        lock(&self.inner.scripts)
    }

    /// The component the host runs for `permit`'s JavaScript: the guest
    /// runtime composed with the permit's interfaces, importing exactly the
    /// permit's world and inert WASI. Built once per list of integration
    /// names (a first call composes and compiles it; call it ahead, e.g.
    /// at approval, so the first run does not wait).
    pub async fn permit_component(&self, permit: &CompiledPermit) -> Result<Arc<[u8]>, HostError> {
        Ok(Arc::clone(&self.js_component(integration_names(permit)).await?.bytes))
    }

    async fn js_component(&self, names: Vec<IntegrationName>) -> Result<Arc<JsComponent>, HostError> {
        let cell = {
            let mut js = lock(&self.inner.js);
            if !js.contains_key(&names) && js.len() >= self.inner.config.component_cache_entries.max(1) {
                // The disk cache has its code.
                evict_any(&mut js);
            }
            Arc::clone(js.entry(names.clone()).or_default())
        };
        let built = cell.get_or_try_init(|| self.build_js_component(names)).await?;
        Ok(Arc::clone(built))
    }

    async fn build_js_component(&self, names: Vec<IntegrationName>) -> Result<Arc<JsComponent>, HostError> {
        let (engine, snapshot) = (self.inner.engine.clone(), Arc::clone(&self.inner.snapshot));
        // The semaphore is never closed.
        let _slot = self.inner.builds.acquire().await.ok();
        let (bytes, component) = {
            let names = names.clone();
            tokio::task::spawn_blocking(move || -> Result<_, BoxedError> {
                let bytes = js_component::compose(&snapshot, &names)?;
                let component = Component::new(&engine, &bytes)?;
                Ok((bytes, component))
            })
            .await
            .map_err(guest_err)?
            .map_err(guest_err)?
        };
        let mut linker = self.inner.base.clone();
        scoped_fetch::add_integrations(&mut linker, &names).map_err(guest_err)?;
        let pre = RuntimePre::new(linker.instantiate_pre(&component).map_err(guest_err)?).map_err(guest_err)?;
        Ok(Arc::new(JsComponent { bytes: bytes.into(), pre }))
    }

    /// Checks and compiles a component an agent submitted: it must be a
    /// component within [`RuntimeConfig::max_component_bytes`], import
    /// nothing but permit interfaces, the shared types and inert WASI, and
    /// export `run: func(args: string) -> result<string, string>`. Its
    /// imports are checked against `permit` before anything is compiled.
    /// Compiled code is cached by the SHA-256 of `bytes`, in memory and on
    /// disk.
    pub async fn load_component(&self, bytes: &[u8], permit: &CompiledPermit) -> Result<AgentComponent, HostError> {
        let limit = self.inner.config.max_component_bytes;
        if bytes.len() > limit {
            let reason = format!("the component is {} bytes; at most {limit} are allowed", bytes.len());
            return Err(ComponentRejected::one("component", reason).into());
        }
        let hash = sha256(&[bytes]);
        if let Some(loaded) = lock(&self.inner.components).get(&hash).cloned() {
            loaded.check_imports(permit, self.inner.config.wasi_http)?;
            self.linked(&loaded, permit)?;
            return Ok(loaded);
        }
        // Refused by name before any compiling.
        let imports = component::top_level_imports(bytes)?;
        component::check_imports(&imports, permit, self.inner.config.wasi_http)?;

        let compiled = {
            // The semaphore is never closed.
            let _slot = self.inner.compiles.acquire().await.ok();
            let (engine, owned) = (self.inner.engine.clone(), bytes.to_vec());
            tokio::task::spawn_blocking(move || Component::new(&engine, &owned))
                .await
                .map_err(engine_err)?
                .map_err(|e| ComponentRejected::one("component", format!("invalid: {e:#}")))?
        };
        component::check_run_export(&compiled, &self.inner.engine)?;
        let loaded = component::new(hash, compiled, imports, bytes.len());
        // Types too, not only names: what linking under the permit checks.
        self.linked(&loaded, permit)?;

        let (entries, budget) = (self.inner.config.component_cache_entries, self.inner.config.component_cache_bytes);
        let mut components = lock(&self.inner.components);
        let mut size: usize = components.values().map(AgentComponent::size).sum();
        // Evict arbitrary entries (and their linked forms, which hold their
        // code) until this one fits; the disk cache still has their code.
        while components.len() >= entries.max(1) || size + loaded.size() > budget {
            let Some((key, evicted)) = evict_any(&mut components) else { break };
            size -= evicted.size();
            lock(&self.inner.linked).retain(|(component, _), _| *component != key);
        }
        if entries > 0 && loaded.size() <= budget {
            components.insert(hash, loaded.clone());
        }
        Ok(loaded)
    }

    /// A component [`Runtime::load_component`] loaded before, by
    /// [`AgentComponent::hash_hex`], while it is in the in-memory cache.
    pub fn loaded_component(&self, hash_hex: &str) -> Option<AgentComponent> {
        let components = lock(&self.inner.components);
        components.values().find(|c| c.hash_hex() == hash_hex).cloned()
    }

    /// Runs a loaded component under `permit`: its imports are checked
    /// against the permit's world, it is instantiated with only those
    /// interfaces (and inert WASI) linked, and its `run` is called with
    /// `args` as JSON, within `limits`. Like [`Runtime::run`], whatever the
    /// component does is an [`Outcome`].
    pub async fn run_component(
        &self,
        component: &AgentComponent,
        permit: &Arc<CompiledPermit>,
        outbound: Arc<dyn Outbound>,
        args: &serde_json::Value,
        limits: Limits,
    ) -> Result<Outcome, HostError> {
        self.run_component_tapped(component, permit, outbound, args, limits, None).await
    }

    /// [`Runtime::run_component`], with what it prints readable from
    /// `stdout` while it runs.
    pub async fn run_component_tapped(
        &self,
        component: &AgentComponent,
        permit: &Arc<CompiledPermit>,
        outbound: Arc<dyn Outbound>,
        args: &serde_json::Value,
        limits: Limits,
        stdout: Option<&StdoutTap>,
    ) -> Result<Outcome, HostError> {
        component.check_imports(permit, self.inner.config.wasi_http)?;
        let pre = self.linked(component, permit)?;
        let args = serde_json::to_string(args).map_err(|e| HostError::InvalidContext(e.to_string()))?;
        let mut limits = limits;
        limits.memory_bytes = limits.memory_bytes.min(self.inner.config.max_memory_bytes);

        let started = Instant::now();
        let mut session = self.session(outbound, Some(Arc::clone(permit)), &limits, stdout).await;
        let result = session
            .drive(async |store| {
                let instance = pre.instantiate_async(&mut *store).await?;
                let run = instance.get_typed_func::<(&str,), (Result<String, String>,)>(&mut *store, "run")?;
                let (result,) = run.call_async(&mut *store, (&args,)).await?;
                Ok(result)
            })
            .await;
        // What `run` returns is output like stdout, under the same bound.
        let limit = limits.stdout_bytes;
        let too_long = RunError::OutputLimit { stream: "run's result", limit };
        let (output, error) = match result {
            Ok(Ok(output)) if output.len() > limit => (None, Some(too_long)),
            Ok(Ok(output)) => (Some(output), None),
            Ok(Err(message)) if message.len() > limit => (None, Some(too_long)),
            Ok(Err(message)) => (None, Some(RunError::Failed(message))),
            Err(error) => (None, Some(error)),
        };
        let mut outcome = session.finish(error, started).await;
        outcome.output = output;
        Ok(outcome)
    }

    /// The component linked to the permit's interfaces, made once per
    /// (component, spec) pair. A mismatch the name check cannot see (an
    /// import with the wrong type) is a rejection.
    fn linked(&self, component: &AgentComponent, permit: &CompiledPermit) -> Result<InstancePre<State>, HostError> {
        let key = (component.hash, *permit.spec_hash().as_bytes());
        if let Some(pre) = lock(&self.inner.linked).get(&key) {
            return Ok(pre.clone());
        }
        let mut linker = self.inner.base.clone();
        scoped_fetch::add_integrations(&mut linker, &integration_names(permit)).map_err(engine_err)?;
        let pre = linker.instantiate_pre(&component.component).map_err(|e| {
            ComponentRejected::one("component", format!("its imports do not match the permit's world: {e:#}"))
        })?;
        let mut linked = lock(&self.inner.linked);
        if linked.len() >= self.inner.config.component_cache_entries.max(1) * 4 {
            evict_any(&mut linked);
        }
        linked.insert(key, pre.clone());
        Ok(pre)
    }

    /// A store for one run; `permit` routes wasi:http requests, `tap` sees stdout.
    async fn session(
        &self,
        outbound: Arc<dyn Outbound>,
        permit: Option<Arc<CompiledPermit>>,
        limits: &Limits,
        tap: Option<&StdoutTap>,
    ) -> Session {
        // The semaphore is never closed.
        let slot = self.inner.slots.clone().acquire_owned().await.ok();
        let stdout = BoundedPipe::tapped(limits.stdout_bytes, tap);
        let stderr = BoundedPipe::new(limits.stderr_bytes);
        let state = State::new(
            outbound,
            permit,
            stdout.clone(),
            stderr.clone(),
            StateLimits {
                memory_bytes: limits.memory_bytes,
                max_calls: limits.max_calls,
                max_concurrent_calls: limits.max_concurrent_calls,
            },
        );
        let mut store = Store::new(&self.inner.engine, state);
        store.limiter(|s| &mut s.limiter);
        let deadline = Instant::now() + limits.wall_time;
        store.epoch_deadline_callback(move |mut cx| {
            if Instant::now() >= deadline {
                cx.data_mut().stop = Some(Stop::Timeout);
                wasmtime::bail!("wall-clock limit exceeded");
            }
            // Let other tasks on this thread run while the script computes.
            Ok(UpdateDeadline::Yield(1))
        });
        store.set_epoch_deadline(1);
        // Fuel is always enabled on this engine.
        let _ = store.set_fuel(limits.fuel);
        Session { store, stdout, stderr, limits: *limits, deadline, _slot: slot }
    }
}

/// One store and its pipes, from instantiation to [`Outcome`].
struct Session {
    store: Store<State>,
    stdout: BoundedPipe,
    stderr: BoundedPipe,
    limits: Limits,
    deadline: Instant,
    _slot: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl Session {
    /// Calls `f` (which instantiates and runs the guest) within the
    /// wall-clock limit; a trap or timeout becomes a [`RunError`].
    async fn drive<R>(&mut self, f: impl AsyncFnOnce(&mut Store<State>) -> wasmtime::Result<R>) -> Result<R, RunError> {
        let store = &mut self.store;
        let work = f(store);
        match tokio::time::timeout_at(self.deadline.into(), work).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(self.classify(&error)),
            Err(_) => Err(RunError::Timeout { limit: self.limits.wall_time }),
        }
    }

    fn classify(&self, error: &wasmtime::Error) -> RunError {
        let limits = &self.limits;
        let state = self.store.data();
        match state.stop {
            Some(Stop::Timeout) => return RunError::Timeout { limit: limits.wall_time },
            Some(Stop::Calls) => return RunError::CallLimit { limit: limits.max_calls },
            None => {}
        }
        if state.limiter.exceeded {
            return RunError::MemoryLimit { limit: limits.memory_bytes };
        }
        if self.stdout.overflowed() {
            return RunError::OutputLimit { stream: "stdout", limit: limits.stdout_bytes };
        }
        if self.stderr.overflowed() {
            return RunError::OutputLimit { stream: "stderr", limit: limits.stderr_bytes };
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => RunError::OutOfFuel { limit: limits.fuel },
            Some(Trap::StackOverflow) => RunError::StackOverflow,
            Some(Trap::Interrupt) => RunError::Timeout { limit: limits.wall_time },
            Some(trap) => RunError::Trap(trap.to_string()),
            None => RunError::Trap(format!("{error:#}")),
        }
    }

    /// The outcome, once the run's calls have settled: nothing not yet sent
    /// leaves after this, and calls on the wire are awaited (each within its
    /// integration's timeout) so the outcome lists every call. The instance
    /// and its memory are released before that wait.
    async fn finish(mut self, error: Option<RunError>, started: Instant) -> Outcome {
        let fuel_used = self.limits.fuel.saturating_sub(self.store.get_fuel().unwrap_or(0));
        let settling = self.store.data_mut().end_calls();
        let (stdout, stderr) = (self.stdout.contents(), self.stderr.contents());
        drop(self);
        let calls = settling.settle().await;
        Outcome { stdout, stderr, error, output: None, calls, fuel_used, duration: started.elapsed() }
    }
}

fn uncaught(js: JsError) -> RunError {
    let stack_overflow = (js.name == "RangeError" && js.message.contains("call stack"))
        || (js.name == "InternalError" && js.message.contains("stack overflow"));
    if stack_overflow {
        return RunError::StackOverflow;
    }
    let message = if js.name.is_empty() { js.message } else { format!("{}: {}", js.name, js.message) };
    RunError::Uncaught { message, stack: js.stack, line: js.line, column: js.column }
}

/// The guest runtime after `initialize-runtime`, from the cache or made now.
async fn snapshot(cache_dir: &Path) -> Result<Vec<u8>, HostError> {
    let key = sha256(&[GUEST_RUNTIME, b"wasmtime-wizer 48.0.8"]);
    let path = cache_dir.join(format!("guest-runtime-{}.wasm", hex(&key[..16])));
    if let Ok(bytes) = std::fs::read(&path)
        && wasmparser_looks_valid(&bytes)
    {
        return Ok(bytes);
    }

    // A plain engine: the snapshot is bytes, compiled later by the real one.
    let engine = Engine::new(&Config::new()).map_err(engine_err)?;
    let state = State::new(
        Arc::new(NoOutbound),
        None,
        BoundedPipe::new(1 << 16),
        BoundedPipe::new(1 << 16),
        StateLimits { memory_bytes: usize::MAX, max_calls: 0, max_concurrent_calls: 1 },
    );
    let mut store = Store::new(&engine, state);
    let (bytes, _) = wasmtime_wizer::Wizer::new()
        .init_func("initialize-runtime")
        .keep_init_func(true)
        .run_component(&mut store, GUEST_RUNTIME, async |store, component| {
            let mut linker = Linker::<State>::new(store.engine());
            wasi::add_inert(&mut linker)?;
            scoped_fetch::add_types(&mut linker)?;
            js_component::add_dispatch_stub(&mut linker)?;
            linker.instantiate_async(store, component).await
        })
        .await
        .map_err(guest_err)?;

    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = std::fs::write(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        // Not fatal: the next start snapshots again.
        tracing::warn!(path = %path.display(), error = %e, "could not cache the guest runtime snapshot");
        let _ = std::fs::remove_file(&tmp);
    }
    Ok(bytes)
}

/// A cheap check that a cached file is a whole component (a truncated or
/// foreign file is rebuilt rather than trusted).
fn wasmparser_looks_valid(bytes: &[u8]) -> bool {
    bytes.len() > 8 && bytes.starts_with(b"\0asm")
}

/// Whether reused slots may keep written pages resident: only with
/// PAGEMAP_SCAN (Linux 6.7+) and no swap. The scan does not see a written
/// page that was swapped out, so the page would be neither reset nor
/// released, and the next run in the slot could read it (wasmtime #14357).
/// Without the scan, keeping pages resident would copy the whole budget on
/// every run.
fn keep_written_pages() -> bool {
    let swap_devices = std::fs::read_to_string("/proc/swaps").map_or(usize::MAX, |s| s.lines().skip(1).count());
    swap_devices == 0 && wasmtime::PoolingAllocationConfig::is_pagemap_scan_available()
}

/// The permit's integrations' names, in spec order: what its interfaces and
/// its JavaScript component depend on.
fn integration_names(permit: &CompiledPermit) -> Vec<IntegrationName> {
    permit.integrations().iter().map(|i| i.integration_name().clone()).collect()
}

/// Removes an arbitrary entry of a cache (everything cached here is on disk
/// or cheap to make again), returning it.
fn evict_any<K: Clone + Eq + std::hash::Hash, V>(map: &mut HashMap<K, V>) -> Option<(K, V)> {
    let key = map.keys().next()?.clone();
    map.remove_entry(&key)
}
