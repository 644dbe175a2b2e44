//! Configuration: command-line flags, each with an environment variable
//! (read after an optional `.env`). Every setting has a default, so a bare
//! `oauth3` starts.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use oauth3_policy::HostPort;

use oauth3_drafting::LlmConfig;

/// Command line of the `oauth3` binary.
#[derive(Debug, Parser)]
#[command(
    name = "oauth3",
    version,
    about = "The oauth3 gateway: AI agents call HTTP APIs with credentials they never hold.",
    long_about = "The oauth3 gateway: AI agents call HTTP APIs with credentials they never hold.\n\n\
        With no arguments it runs `serve` with zero configuration: it listens on 127.0.0.1:3737 and keeps \
        an SQLite database, a generated JWT signing key and a generated sealing key in ./oauth3-data.\n\n\
        Every option can also be set with the environment variable shown, or in a `.env` file in the \
        working directory. Unknown OAUTH3_* variables are reported at start. Logging is set with RUST_LOG \
        (e.g. RUST_LOG=info,oauth3_gateway=debug)."
)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings for `serve` when no subcommand is given.
    #[command(flatten)]
    pub config: Config,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (the default).
    Serve(Box<Config>),
    /// Work with a spec file offline.
    #[command(subcommand)]
    Spec(SpecCommand),
    /// Re-encrypt every sealed secret under a new sealing key version
    /// (`oauth3/sealing/<version>` from dstack, or `sealing-<version>.key`
    /// in the data dir), in batches, while gateways keep serving. Safe to run
    /// again after an interruption. Reads the same settings as `serve`.
    RotateKeys(Box<RotateKeys>),
    /// Check what a gateway runs before trusting it with a secret.
    #[command(subcommand)]
    Attest(AttestCommand),
    /// Check a receipt a gateway signed.
    #[command(subcommand)]
    Receipt(ReceiptCommand),
    /// Create an account on a gateway; prints its token once.
    Signup(crate::client::commands::Signup),
    /// Keep a gateway's URL and your token (read from standard input, or a
    /// prompt that does not echo) for the commands below, in a file only you
    /// can read.
    Login(crate::client::commands::Login),
    /// Your secrets on a gateway (owners).
    #[command(subcommand)]
    Secrets(crate::client::commands::Secrets),
    /// Ask for a permit, or look at one (agents; owners may look).
    #[command(subcommand)]
    Permit(crate::client::commands::Permit),
    /// Approve a permit request, after showing what it asks (owners).
    Approve(crate::client::commands::Approve),
    /// Revoke a permit (owners).
    Revoke {
        /// The permit (`prm_…`).
        permit: String,
        /// The gateway, and the output format.
        #[command(flatten)]
        client: crate::client::commands::ClientArgs,
    },
    /// Run a script or a component under a permit and print what it printed;
    /// exits 1 when it failed or a call was denied, saying why.
    Run(crate::client::commands::Run),
    /// An MCP server on stdio whose tools are the gateway's (for MCP clients
    /// that only launch stdio servers; others connect to <url>/mcp).
    Mcp(crate::mcp::Stdio),
    /// The newest calls under your permits, oldest first (owners).
    Audit {
        /// One permit's calls only.
        #[arg(long)]
        permit: Option<String>,
        /// Keep printing new calls as they come.
        #[arg(long)]
        follow: bool,
        /// The gateway, and the output format.
        #[command(flatten)]
        client: crate::client::commands::ClientArgs,
    },
}

/// `oauth3 attest ...`.
#[derive(Debug, Subcommand)]
pub enum AttestCommand {
    /// Fetch the gateway's /attestation with a fresh random nonce and check
    /// it: the attested public URL is the one asked, the binding of its
    /// receipt key, config and the nonce into the TDX quote's report_data,
    /// the quote itself (Intel DCAP, with dcap-qvl), the OS image's
    /// measurements, RTMR3 replayed from the event log, and the app id,
    /// compose hash and key provider it names. Prints what it found and one
    /// line per check; exits 0 only when every check passed and every
    /// expectation was given, 1 otherwise.
    Verify {
        /// The gateway's base URL (https, or http to a loopback address).
        #[arg(long)]
        url: String,
        /// What the gateway must be.
        #[command(flatten)]
        expected: Expectations,
    },
}

/// What an owner expects of a gateway, for `attest verify`.
#[derive(Debug, Clone, Args)]
pub struct Expectations {
    /// The app-compose.json it should run (its SHA-256 must be the attested
    /// compose hash).
    #[arg(long, value_name = "APP_COMPOSE_JSON")]
    pub compose: Option<PathBuf>,
    /// Its dstack app id (hex).
    #[arg(long, value_name = "HEX")]
    pub app_id: Option<String>,
    /// The dstack OS image's boot measurements, JSON
    /// `{"mrtd", "rtmr0", "rtmr1", "rtmr2"}` (hex), as `dstack-mr` computes
    /// them for the image.
    #[arg(long, value_name = "FILE")]
    pub measurements: Option<PathBuf>,
    /// The id of the KMS the app takes its keys from (the `key-provider`
    /// event's `id`).
    #[arg(long, value_name = "HEX")]
    pub key_provider_id: Option<String>,
    /// Where Intel's collateral comes from: a PCCS, or Intel's PCS
    /// (https://api.trustedservices.intel.com).
    #[arg(long, default_value = crate::tee::verify::DEFAULT_PCCS)]
    pub pccs: String,
    /// Saved collateral (dcap-qvl's JSON) instead of fetching it.
    #[arg(long, value_name = "FILE")]
    pub collateral: Option<PathBuf>,
    /// TCB statuses to accept besides UpToDate (comma-separated, e.g.
    /// SWHardeningNeeded).
    #[arg(long, value_name = "STATUS", value_delimiter = ',')]
    pub allow_tcb_status: Vec<String>,
}

/// `oauth3 receipt ...`.
#[derive(Debug, Subcommand)]
pub enum ReceiptCommand {
    /// Check a saved receipt offline: Ed25519 over the JCS bytes of its
    /// payload, by the expected key. Exits 1 if it does not verify.
    Verify {
        /// The receipt, or a status or decision response that holds one
        /// (`-` reads standard input).
        receipt: PathBuf,
        /// The gateway's receipt key (hex), as `oauth3 attest verify` shows it.
        #[arg(long, required_unless_present = "url", conflicts_with = "url")]
        key: Option<String>,
        /// Take the key from this gateway, once its attestation verifies as
        /// `oauth3 attest verify` checks it (with the same options).
        #[arg(long)]
        url: Option<String>,
        /// What the gateway must be, with --url.
        #[command(flatten)]
        expected: Expectations,
    },
}

/// `oauth3 rotate-keys`.
#[derive(Debug, Args)]
pub struct RotateKeys {
    /// The version to seal everything under: v2, v3, …
    #[arg(long, value_parser = clap::value_parser!(crate::keys::KeyVersion))]
    pub to: crate::keys::KeyVersion,
    /// Secrets re-encrypted per transaction.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(i64).range(1..=10_000))]
    pub batch: i64,
    /// Milliseconds to pause between batches, to spare a busy database.
    #[arg(long, default_value_t = 0)]
    pub pause_ms: u64,
    /// The gateway's settings (database, data dir, key provider).
    #[command(flatten)]
    pub config: Config,
}

/// `oauth3 spec ...`: offline, no gateway needed.
#[derive(Debug, Subcommand)]
pub enum SpecCommand {
    /// Print the WIT world a component for this spec is built against (the
    /// document `GET /permits/{id}/wit` returns once it is approved).
    Wit {
        /// The spec, as JSON (`-` reads standard input).
        spec: PathBuf,
        /// A host:port the spec may reach over plain http (repeatable), as
        /// OAUTH3_INSECURE_UPSTREAMS allows on the gateway.
        #[arg(long = "insecure-upstream", value_name = "HOST:PORT")]
        insecure_upstreams: Vec<String>,
    },
    /// Check a spec as the gateway would (parse, validate, compile): prints
    /// its spec hash and each risk an owner will see flagged, or what is
    /// wrong with it (exit 1).
    Lint {
        /// The spec, as JSON (`-` reads standard input).
        spec: PathBuf,
        /// A host:port the spec may reach over plain http (repeatable).
        #[arg(long = "insecure-upstream", value_name = "HOST:PORT")]
        insecure_upstreams: Vec<String>,
        /// `{valid, spec_hash, risks, error}` as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Describe a spec as its owner will be asked to approve it: one line per
    /// rule, risks flagged, and its spec hash.
    Describe {
        /// The spec, as JSON (`-` reads standard input).
        spec: PathBuf,
        /// A host:port the spec may reach over plain http (repeatable).
        #[arg(long = "insecure-upstream", value_name = "HOST:PORT")]
        insecure_upstreams: Vec<String>,
        /// The same view `POST /draft` answers with (spec, spec_hash,
        /// summary, risks, wit, capabilities), as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Whether anyone may sign up as an owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SignupMode {
    /// Anyone may sign up as an agent or an owner (development).
    Open,
    /// Agents sign up freely; owners need an invite code. The first code is
    /// printed once, at first start; owners create more with `POST /invites`.
    Invite,
}

/// A feature the operator turns on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Every setting of a running gateway.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on (port 0 picks a free port; the chosen address is logged).
    #[arg(long, env = "OAUTH3_LISTEN", default_value = "127.0.0.1:3737")]
    pub listen: SocketAddr,

    /// Directory for the SQLite database, the generated keys and the code cache; created 0700.
    #[arg(long, env = "OAUTH3_DATA_DIR", default_value = "./oauth3-data")]
    pub data_dir: PathBuf,

    /// Base of the approval and status URLs handed out (default: http://<listen address>).
    #[arg(long, env = "OAUTH3_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// `sqlite://path` or `postgres://user@host/db` (default: sqlite in the data dir).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Comma-separated host:port upstreams that specs and doc fetches may reach over plain http
    /// and past the private-address guard. Development and tests only.
    #[arg(long, env = "OAUTH3_INSECURE_UPSTREAMS", value_delimiter = ',', default_value = "")]
    pub insecure_upstreams: Vec<String>,

    /// Who may sign up as an owner [default: `invite` when the gateway listens on a non-loopback
    /// address or its public URL is https, `open` otherwise].
    #[arg(long, env = "OAUTH3_SIGNUP", value_enum)]
    pub signup: Option<SignupMode>,

    /// Fuel (roughly, Wasm instructions) per execution.
    #[arg(long, env = "OAUTH3_FUEL", default_value_t = 5_000_000_000)]
    pub fuel: u64,

    /// Guest memory per execution, in MiB.
    #[arg(long, env = "OAUTH3_MEMORY_MB", default_value_t = 64)]
    pub memory_mb: usize,

    /// Wall-clock limit per execution, in seconds.
    #[arg(long, env = "OAUTH3_TIMEOUT_SECS", default_value_t = 30)]
    pub timeout_secs: u64,

    /// Executions run at once by this process (the worker pool size).
    #[arg(long, env = "OAUTH3_MAX_CONCURRENT", default_value_t = 64)]
    pub max_concurrent: usize,

    /// Calls out of the sandbox per execution.
    #[arg(long, env = "OAUTH3_MAX_CALLS", default_value_t = 100)]
    pub max_calls: u32,

    /// Executions one agent may have queued or running at once.
    #[arg(long, env = "OAUTH3_MAX_EXECUTIONS_PER_AGENT", default_value_t = 256)]
    pub max_executions_per_agent: u64,

    /// Largest request body the API accepts, in bytes.
    #[arg(long, env = "OAUTH3_MAX_BODY_BYTES", default_value_t = 2 << 20)]
    pub max_body_bytes: usize,

    /// Largest component an agent may submit, in bytes (a submission's body
    /// may be larger, to fit it base64-encoded).
    #[arg(long, env = "OAUTH3_MAX_COMPONENT_BYTES", default_value_t = 8 << 20)]
    pub max_component_bytes: usize,

    /// Whether submitted components may import wasi:http's outgoing-handler. Their requests are
    /// routed to the permit's integrations through the same egress; `off` rejects such components.
    #[arg(long, env = "OAUTH3_WASI_HTTP", value_enum, default_value = "on")]
    pub wasi_http: Switch,

    /// Lifetime of tokens issued at signup, in seconds (default 30 days).
    #[arg(long, env = "OAUTH3_TOKEN_TTL_SECS", default_value_t = 30 * 24 * 3600)]
    pub token_ttl_secs: u64,

    /// URL that receives a JSON POST when a permit request is waiting for an owner
    /// (https, or http to an OAUTH3_INSECURE_UPSTREAMS host:port). Never logged.
    #[arg(long, env = "OAUTH3_APPROVAL_WEBHOOK", hide_env_values = true)]
    pub approval_webhook: Option<ApiKey>,

    /// How long a web UI sign-in lasts, in seconds (default 12 hours).
    #[arg(long, env = "OAUTH3_SESSION_TTL_SECS", default_value_t = 12 * 3600,
          value_parser = clap::value_parser!(u64).range(60..=30 * 24 * 3600))]
    pub session_ttl_secs: u64,

    /// How long a permit request waits for its owner before it expires, in seconds.
    #[arg(long, env = "OAUTH3_REQUEST_TTL_SECS", default_value_t = 24 * 3600)]
    pub request_ttl_secs: u64,

    /// Directory for compiled sandbox code (default: <data dir>/cache). Must be private to the gateway.
    #[arg(long, env = "OAUTH3_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Log format.
    #[arg(long, env = "OAUTH3_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,

    /// On SIGTERM or SIGINT, how long running executions may take to finish, in seconds; those still
    /// running then are marked failed (`interrupted`). Queued ones stay queued for the next start.
    #[arg(long, env = "OAUTH3_SHUTDOWN_GRACE_SECS", default_value_t = 30)]
    pub shutdown_grace_secs: u64,

    /// Delete audit records older than this many days [default: keep them].
    #[arg(long, env = "OAUTH3_AUDIT_RETENTION_DAYS", value_parser = clap::value_parser!(u64).range(1..))]
    pub audit_retention_days: Option<u64>,

    /// Delete finished executions (and their results) older than this many days [default: keep them].
    #[arg(long, env = "OAUTH3_EXECUTION_RETENTION_DAYS", value_parser = clap::value_parser!(u64).range(1..))]
    pub execution_retention_days: Option<u64>,

    /// Where the sealing and token keys come from. `auto`: the dstack guest agent when its socket is found
    /// (or DSTACK_SIMULATOR_ENDPOINT is set), else key files in the data dir.
    #[arg(long, env = "OAUTH3_KEYS", value_enum, default_value = "auto")]
    pub keys: KeysChoice,

    /// Where key files are kept when keys come from files (default: the data dir). Replicas outside a TEE
    /// share their keys by pointing this at one mounted directory (0700, readable by the gateway's user only).
    #[arg(long, env = "OAUTH3_KEY_DIR")]
    pub key_dir: Option<PathBuf>,

    /// How often a status wait re-reads an execution that another replica runs, in milliseconds. On
    /// Postgres replicas also wake each other at once (LISTEN/NOTIFY); this is the fallback.
    #[arg(long, env = "OAUTH3_REREAD_MS", default_value_t = 1000)]
    pub reread_ms: u64,

    /// A replica whose heartbeat is older than this many milliseconds is taken for dead: the others mark
    /// its running executions `interrupted`. Replicas heartbeat every quarter of it (at least every 5 s).
    /// Use one value for every replica.
    #[arg(long, env = "OAUTH3_REPLICA_TIMEOUT_MS", default_value_t = 60_000,
          value_parser = clap::value_parser!(u64).range(4000..))]
    pub replica_timeout_ms: u64,

    /// Which drafter turns intents into specs. `auto`: Anthropic when ANTHROPIC_API_KEY is set, else an
    /// OpenAI-compatible server when OPENAI_BASE_URL or OPENAI_API_KEY is set, else the offline OpenAPI drafter.
    #[arg(long, env = "OAUTH3_DRAFTER", value_enum, default_value = "auto")]
    pub drafter: DrafterChoice,

    /// API key for the Anthropic Messages API.
    #[arg(long, env = "ANTHROPIC_API_KEY", hide_env_values = true)]
    pub anthropic_api_key: Option<ApiKey>,

    /// Base URL of the Anthropic API.
    #[arg(long, env = "ANTHROPIC_BASE_URL", default_value = "https://api.anthropic.com")]
    pub anthropic_base_url: String,

    /// Anthropic model used for drafting.
    #[arg(long, env = "ANTHROPIC_MODEL", default_value = "claude-sonnet-4-5")]
    pub anthropic_model: String,

    /// API key for an OpenAI-compatible chat completions API (optional for local servers).
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    pub openai_api_key: Option<ApiKey>,

    /// Base URL of an OpenAI-compatible API, up to `/v1` (vLLM, llama.cpp, Ollama in the same CVM)
    /// [default: https://api.openai.com/v1].
    #[arg(long, env = "OPENAI_BASE_URL")]
    pub openai_base_url: Option<String>,

    /// Model used with the OpenAI-compatible API.
    #[arg(long, env = "OPENAI_MODEL", default_value = "gpt-4.1-mini")]
    pub openai_model: String,

    /// Time limit for each LLM request while drafting, in seconds.
    #[arg(long, env = "OAUTH3_DRAFTER_TIMEOUT_SECS", default_value_t = 60)]
    pub drafter_timeout_secs: u64,

    /// Largest API doc fetched for drafting, in bytes (GitHub's published OpenAPI document is 13 MB).
    #[arg(long, env = "OAUTH3_DOC_MAX_BYTES", default_value_t = 16 << 20)]
    pub doc_max_bytes: usize,

    /// Time limit for fetching each API doc, in seconds.
    #[arg(long, env = "OAUTH3_DOC_TIMEOUT_SECS", default_value_t = 10)]
    pub doc_timeout_secs: u64,
}

/// Where keys come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeysChoice {
    /// dstack when its guest agent is found, else files.
    Auto,
    /// The dstack guest agent's GetKey (fails to start without it).
    Dstack,
    /// Files in the data dir (development; anyone with the disk has every secret).
    File,
}

/// Which drafter to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DrafterChoice {
    /// An LLM when one is configured, else the offline OpenAPI drafter.
    Auto,
    /// The offline OpenAPI drafter (no LLM, deterministic).
    Offline,
    /// The Anthropic Messages API.
    Anthropic,
    /// An OpenAI-compatible chat completions API.
    Openai,
}

/// The drafter a configuration resolves to.
#[derive(Debug, Clone)]
pub enum DrafterSettings {
    /// The offline OpenAPI drafter.
    Offline,
    /// Anthropic.
    Anthropic(LlmConfig),
    /// OpenAI-compatible.
    OpenAi(LlmConfig),
}

/// An API key, or a URL that embeds one (a webhook's): never shown by
/// `Debug`, `--help` or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(pub String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::str::FromStr for ApiKey {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(ApiKey(s.to_owned()))
    }
}

/// Whether `url`'s host is this machine: `localhost` or a loopback address.
pub(crate) fn names_this_machine(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Every `OAUTH3_*` variable the gateway reads; others are reported at start.
pub const KNOWN_VARIABLES: &[&str] = &[
    "OAUTH3_LISTEN",
    "OAUTH3_DATA_DIR",
    "OAUTH3_KEY_DIR",
    "OAUTH3_REREAD_MS",
    "OAUTH3_REPLICA_TIMEOUT_MS",
    "OAUTH3_PUBLIC_URL",
    "OAUTH3_INSECURE_UPSTREAMS",
    "OAUTH3_SIGNUP",
    "OAUTH3_FUEL",
    "OAUTH3_MEMORY_MB",
    "OAUTH3_TIMEOUT_SECS",
    "OAUTH3_MAX_CONCURRENT",
    "OAUTH3_MAX_CALLS",
    "OAUTH3_MAX_EXECUTIONS_PER_AGENT",
    "OAUTH3_MAX_BODY_BYTES",
    "OAUTH3_MAX_COMPONENT_BYTES",
    "OAUTH3_WASI_HTTP",
    "OAUTH3_TOKEN_TTL_SECS",
    "OAUTH3_REQUEST_TTL_SECS",
    "OAUTH3_SESSION_TTL_SECS",
    "OAUTH3_APPROVAL_WEBHOOK",
    "OAUTH3_CACHE_DIR",
    "OAUTH3_LOG_FORMAT",
    "OAUTH3_SHUTDOWN_GRACE_SECS",
    "OAUTH3_AUDIT_RETENTION_DAYS",
    "OAUTH3_EXECUTION_RETENTION_DAYS",
    "OAUTH3_DRAFTER",
    "OAUTH3_KEYS",
    "OAUTH3_DRAFTER_TIMEOUT_SECS",
    "OAUTH3_DOC_MAX_BYTES",
    "OAUTH3_DOC_TIMEOUT_SECS",
];

/// The client commands' variables (`oauth3 login`, `oauth3 secrets`, …),
/// which a shell that runs both may well have set: not reported either.
pub const CLIENT_VARIABLES: &[&str] = &["OAUTH3_URL", "OAUTH3_TOKEN", "OAUTH3_CONFIG"];

/// `OAUTH3_*` variables in `vars` that the gateway does not read (typos).
pub fn unknown_variables(vars: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut unknown: Vec<String> = vars
        .into_iter()
        .filter(|name| {
            name.starts_with("OAUTH3_")
                && !KNOWN_VARIABLES.contains(&name.as_str())
                && !CLIENT_VARIABLES.contains(&name.as_str())
        })
        .collect();
    unknown.sort();
    unknown
}

impl Config {
    /// The defaults, as a bare `oauth3` would run, with `data_dir` replaced
    /// (tests, embedding). Settings that name other machines are cleared even
    /// when the environment sets them.
    pub fn for_data_dir(data_dir: impl Into<PathBuf>) -> Config {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            config: Config,
        }
        let mut config = Only::parse_from(["oauth3"]).config;
        config.data_dir = data_dir.into();
        config.public_url = None;
        config.database_url = None;
        config.insecure_upstreams = Vec::new();
        config.cache_dir = None;
        config.key_dir = None;
        config.drafter = DrafterChoice::Auto;
        config.anthropic_api_key = None;
        config.anthropic_base_url = "https://api.anthropic.com".into();
        config.openai_api_key = None;
        config.openai_base_url = None;
        config
    }

    /// The drafter these settings select, or why they are inconsistent.
    pub fn drafter_settings(&self) -> Result<DrafterSettings, String> {
        let key = |k: &Option<ApiKey>| k.as_ref().map(|k| k.0.clone()).filter(|k| !k.is_empty());
        let timeout = Duration::from_secs(self.drafter_timeout_secs);
        let anthropic = || LlmConfig {
            base_url: self.anthropic_base_url.trim_end_matches('/').to_owned(),
            api_key: key(&self.anthropic_api_key),
            model: self.anthropic_model.clone(),
            timeout,
            max_output_tokens: 8192,
        };
        let openai = || LlmConfig {
            base_url: self
                .openai_base_url
                .as_deref()
                .filter(|u| !u.is_empty())
                .unwrap_or("https://api.openai.com/v1")
                .trim_end_matches('/')
                .to_owned(),
            api_key: key(&self.openai_api_key),
            model: self.openai_model.clone(),
            timeout,
            max_output_tokens: 8192,
        };
        let openai_configured =
            key(&self.openai_api_key).is_some() || self.openai_base_url.as_deref().is_some_and(|u| !u.is_empty());
        match self.drafter {
            DrafterChoice::Offline => Ok(DrafterSettings::Offline),
            DrafterChoice::Anthropic if key(&self.anthropic_api_key).is_none() => {
                Err("OAUTH3_DRAFTER=anthropic needs ANTHROPIC_API_KEY".into())
            }
            DrafterChoice::Anthropic => Ok(DrafterSettings::Anthropic(anthropic())),
            DrafterChoice::Openai => Ok(DrafterSettings::OpenAi(openai())),
            DrafterChoice::Auto if key(&self.anthropic_api_key).is_some() => {
                Ok(DrafterSettings::Anthropic(anthropic()))
            }
            DrafterChoice::Auto if openai_configured => Ok(DrafterSettings::OpenAi(openai())),
            DrafterChoice::Auto => Ok(DrafterSettings::Offline),
        }
    }

    /// The upstreams allowed over plain http, parsed.
    pub fn insecure_upstreams(&self) -> Result<BTreeSet<HostPort>, String> {
        self.insecure_upstreams
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<HostPort>().map_err(|e| format!("OAUTH3_INSECURE_UPSTREAMS: '{s}' is not host:port ({e})"))
            })
            .collect()
    }

    /// Where the database lives.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) if !url.is_empty() => url.clone(),
            _ => format!("sqlite://{}?mode=rwc", self.data_dir.join("oauth3.db").display()),
        }
    }

    /// Base URL for links handed out, given the address actually bound.
    pub fn public_url(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(url) if !url.is_empty() => url.trim_end_matches('/').to_owned(),
            _ => format!("http://{bound}"),
        }
    }

    /// Whether other machines may reach the gateway: it listens on a
    /// non-loopback address, or its public URL is https or names a host
    /// other than this one (a proxy in front).
    pub fn is_exposed(&self) -> bool {
        let public = self.public_url.as_deref().filter(|u| !u.trim().is_empty()).map(|u| url::Url::parse(u.trim()));
        let public_is_local = |url: &url::Url| url.scheme() == "http" && names_this_machine(url);
        // A public URL that names another machine, or https, means a proxy
        // in front (an unparsable one counts as exposed: fail safe).
        !self.listen.ip().is_loopback() || public.is_some_and(|url| !url.as_ref().is_ok_and(public_is_local))
    }

    /// Who may sign up as an owner: as set, else `invite` on an exposed
    /// gateway ([`Config::is_exposed`]) and `open` on a local one.
    pub fn signup_mode(&self) -> SignupMode {
        self.signup.unwrap_or(if self.is_exposed() { SignupMode::Invite } else { SignupMode::Open })
    }

    /// Settings that are unsafe where they are used, each as a warning for
    /// the operator (logged at start).
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let exposed = || match &self.public_url {
            Some(url) if !self.listen.ip().is_loopback() => format!("it listens on {} (public URL {url})", self.listen),
            Some(url) => format!("its public URL is {url}"),
            None => format!("it listens on {}", self.listen),
        };
        if self.signup == Some(SignupMode::Open) && self.is_exposed() {
            warnings.push(format!(
                "OAUTH3_SIGNUP=open on a gateway other machines can reach ({}): anyone who reaches it can sign up \
                 as an owner and approve permits. Use OAUTH3_SIGNUP=invite unless this is a throwaway test.",
                exposed()
            ));
        }
        let insecure = self.insecure_upstreams.iter().any(|u| !u.trim().is_empty());
        if insecure && !self.listen.ip().is_loopback() {
            warnings.push(format!(
                "OAUTH3_INSECURE_UPSTREAMS is set on a gateway listening on {}: specs may reach those upstreams \
                 over plain http and past the private-address guard. It is meant for local development and tests.",
                self.listen
            ));
        }
        warnings
    }

    /// Wall-clock limit per execution.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    /// Directory of compiled sandbox code.
    pub fn cache_dir(&self) -> PathBuf {
        self.cache_dir.clone().unwrap_or_else(|| self.data_dir.join("cache"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_oauth3_variables_are_reported_and_others_ignored() {
        let vars = ["OAUTH3_LISTEN", "OAUTH3_LISTN", "PATH", "DATABASE_URL", "OAUTH3_FUEL", "OAUTH3_", "OAUTH3_TOKEN"];
        let unknown = unknown_variables(vars.map(String::from));
        assert_eq!(unknown, ["OAUTH3_", "OAUTH3_LISTN"]);
    }

    #[test]
    fn every_known_variable_is_an_option() {
        let command = <Cli as clap::CommandFactory>::command();
        let envs: Vec<String> =
            command.get_arguments().filter_map(|a| a.get_env()).map(|e| e.to_string_lossy().into_owned()).collect();
        for name in KNOWN_VARIABLES {
            assert!(envs.iter().any(|e| e == name), "{name} has no option");
        }
        for name in envs.iter().filter(|e| e.starts_with("OAUTH3_")) {
            assert!(KNOWN_VARIABLES.contains(&name.as_str()), "{name} is missing from KNOWN_VARIABLES");
        }
    }

    #[test]
    fn defaults_to_sqlite_in_the_data_dir_and_a_public_url_from_the_bound_address() {
        let config = Config::for_data_dir("/srv/oauth3");
        assert_eq!(config.database_url(), "sqlite:///srv/oauth3/oauth3.db?mode=rwc");
        assert_eq!(config.public_url("127.0.0.1:4000".parse().unwrap()), "http://127.0.0.1:4000");
        assert_eq!(config.cache_dir(), PathBuf::from("/srv/oauth3/cache"));
    }

    #[test]
    fn the_drafter_is_offline_unless_an_llm_is_configured() {
        let mut config = Config::for_data_dir("/d");
        assert!(matches!(config.drafter_settings(), Ok(DrafterSettings::Offline)));

        config.openai_base_url = Some("http://127.0.0.1:8000/v1/".into());
        let Ok(DrafterSettings::OpenAi(llm)) = config.drafter_settings() else { panic!("OpenAI-compatible") };
        assert_eq!(llm.base_url, "http://127.0.0.1:8000/v1");
        assert_eq!(llm.api_key, None, "a local server needs no key");

        config.anthropic_api_key = Some(ApiKey("fake-anthropic-key".into()));
        assert!(matches!(config.drafter_settings(), Ok(DrafterSettings::Anthropic(_))), "Anthropic wins in auto");

        config.drafter = DrafterChoice::Offline;
        assert!(matches!(config.drafter_settings(), Ok(DrafterSettings::Offline)), "an explicit choice wins");
    }

    #[test]
    fn credentials_never_show_in_debug_output() {
        let mut config = Config::for_data_dir("/d");
        config.anthropic_api_key = Some(ApiKey("fake-anthropic-key".into()));
        config.approval_webhook = Some(ApiKey("https://hooks.example.com/fake-webhook-key".into()));
        let shown = format!("{config:?}");
        assert!(!shown.contains("fake-anthropic-key") && !shown.contains("fake-webhook-key"), "{shown}");
    }

    #[test]
    fn choosing_anthropic_without_a_key_is_a_configuration_error() {
        let mut config = Config::for_data_dir("/d");
        config.drafter = DrafterChoice::Anthropic;
        assert!(config.drafter_settings().unwrap_err().contains("ANTHROPIC_API_KEY"));
    }

    #[test]
    fn api_keys_never_show_in_debug_output() {
        let mut config = Config::for_data_dir("/d");
        config.anthropic_api_key = Some(ApiKey("fake-key-do-not-print".into()));
        config.openai_api_key = Some(ApiKey("fake-key-do-not-print".into()));
        let Ok(DrafterSettings::Anthropic(llm)) = config.drafter_settings() else { panic!("Anthropic") };
        for shown in [format!("{config:?}"), format!("{llm:?}")] {
            assert!(!shown.contains("fake-key-do-not-print"), "{shown}");
        }
    }

    #[test]
    fn signup_defaults_to_invite_where_other_machines_can_reach_the_gateway() {
        let mut config = Config::for_data_dir("/d");
        assert_eq!(config.signup_mode(), SignupMode::Open, "loopback and http: a local gateway");
        assert!(config.warnings().is_empty());
        config.listen = "0.0.0.0:3737".parse().unwrap();
        assert_eq!(config.signup_mode(), SignupMode::Invite);
        config.listen = "[::]:3737".parse().unwrap();
        assert_eq!(config.signup_mode(), SignupMode::Invite);
        config.listen = "[::1]:3737".parse().unwrap();
        assert_eq!(config.signup_mode(), SignupMode::Open);
        config.public_url = Some("http://127.0.0.1:3737".into());
        assert_eq!(config.signup_mode(), SignupMode::Open, "a local public URL");
        config.public_url = Some("http://gateway.internal.example".into());
        assert_eq!(config.signup_mode(), SignupMode::Invite, "behind a proxy");
        config.public_url = Some("HTTPS://oauth3.example.com".into());
        assert_eq!(config.signup_mode(), SignupMode::Invite, "behind a TLS proxy");
        config.signup = Some(SignupMode::Open);
        assert_eq!(config.signup_mode(), SignupMode::Open, "an explicit choice wins");
        assert!(config.warnings()[0].contains("OAUTH3_SIGNUP=open"), "{:?}", config.warnings());
    }

    #[test]
    fn insecure_upstreams_on_an_exposed_listener_are_warned_about() {
        let mut config = Config::for_data_dir("/d");
        config.insecure_upstreams = vec!["127.0.0.1:8080".into()];
        assert!(config.warnings().is_empty(), "fine on loopback");
        config.listen = "0.0.0.0:3737".parse().unwrap();
        let warnings = config.warnings();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("OAUTH3_INSECURE_UPSTREAMS"), "{warnings:?}");
    }

    #[test]
    fn insecure_upstreams_must_be_host_port() {
        let mut config = Config::for_data_dir("/d");
        config.insecure_upstreams = vec!["127.0.0.1:8080".into(), " ".into()];
        assert_eq!(config.insecure_upstreams().unwrap().len(), 1);
        config.insecure_upstreams = vec!["http://127.0.0.1:8080".into()];
        assert!(config.insecure_upstreams().unwrap_err().contains("not host:port"));
    }
}
