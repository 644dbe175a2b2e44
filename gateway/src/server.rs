//! Starting the gateway: data dir, database and migrations, recovery of
//! interrupted executions, keys, sandbox, egress (with the owner's
//! confirmations), workers, retention, HTTP
//! listener; and stopping it gracefully.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use oauth3_host::{Egress, EgressConfig, Runtime, RuntimeConfig};
use oauth3_policy::CompileOptions;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use oauth3_drafting::{
    AnthropicDrafter, DocSource, DocsConfig, Drafter, Drafting, HttpDocs, OfflineDrafter, OpenAiDrafter,
};

use crate::auth::Tokens;
use crate::capabilities::{DbAudit, DbRateLimiter};
use crate::config::{Config, DrafterSettings, SignupMode, Switch};
use crate::confirm::DbConfirmations;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::executor::Workers;
use crate::keyring::Keyring;
use crate::keys::{KeyProvider, KeyPurpose, KeyVersion, new_id};
use crate::notify::{Notifier, Silent, Webhook};
use crate::state::{Gateway, Phase};
use crate::tee::{Dstack, Tee};
use crate::web::Web;
use crate::{api, executor, retention};

/// Capabilities injected into a gateway; [`Capabilities::local`] is the default.
pub struct Capabilities {
    /// Source of the JWT and sealing keys.
    pub keys: Arc<dyn KeyProvider>,
    /// Turns one intent and its docs into an integration.
    pub drafter: Arc<dyn Drafter>,
    /// Fetches the docs intents name.
    pub docs: Arc<dyn DocSource>,
    /// Tells owners a request or a call waits for them.
    pub notifier: Arc<dyn Notifier>,
    /// The dstack guest agent, inside a CVM: quotes for `/attestation`.
    pub tee: Option<Dstack>,
}

impl Capabilities {
    /// Keys from the dstack guest agent or generated into the data dir (as
    /// `OAUTH3_KEYS` selects), the drafter the configuration
    /// selects (offline unless an LLM is configured), docs fetched over HTTP
    /// through the address guard, and the approval webhook when configured.
    pub fn local(config: &Config) -> Result<Capabilities> {
        let drafter: Arc<dyn Drafter> = match config.drafter_settings().map_err(Error::Config)? {
            DrafterSettings::Offline => Arc::new(OfflineDrafter),
            DrafterSettings::Anthropic(llm) => Arc::new(AnthropicDrafter::new(llm)?),
            DrafterSettings::OpenAi(llm) => Arc::new(OpenAiDrafter::new(llm)?),
        };
        let docs = HttpDocs::new(DocsConfig {
            insecure_upstreams: config.insecure_upstreams().map_err(Error::Config)?,
            max_bytes: config.doc_max_bytes,
            timeout: Duration::from_secs(config.doc_timeout_secs),
        })?;
        let notifier: Arc<dyn Notifier> =
            match config.approval_webhook.as_ref().map(|u| u.0.as_str()).filter(|u| !u.trim().is_empty()) {
                Some(url) => Arc::new(Webhook::new(url, &config.insecure_upstreams().map_err(Error::Config)?)?),
                None => Arc::new(Silent),
            };
        let (keys, tee) = crate::keyring::select(config)?;
        Ok(Capabilities { keys, drafter, docs: Arc::new(docs), notifier, tee })
    }
}

/// A running gateway.
pub struct Server {
    addr: SocketAddr,
    gateway: Arc<Gateway>,
    workers: Workers,
    /// Held while this process runs (see `replica_id`).
    _replica_lock: Option<std::fs::File>,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// Starts a gateway with the local capabilities.
    pub async fn start(config: Config) -> Result<Server> {
        let capabilities = Capabilities::local(&config)?;
        Server::start_with(config, capabilities).await
    }

    /// Starts a gateway with the given capabilities.
    pub async fn start_with(mut config: Config, capabilities: Capabilities) -> Result<Server> {
        create_private_dir(&config.data_dir)?;
        // Absolute from here on: the code cache requires it, and logs are clearer.
        config.data_dir = std::path::absolute(&config.data_dir).map_err(Error::io("resolving the data dir"))?;
        if let Some(cache) = &config.cache_dir {
            config.cache_dir = Some(std::path::absolute(cache).map_err(Error::io("resolving the cache dir"))?);
        }
        let insecure_upstreams = config.insecure_upstreams().map_err(Error::Config)?;
        for warning in config.warnings() {
            tracing::warn!("WARNING: {warning}");
        }
        let db = Db::connect(&config.database_url()).await?;
        // Every key is derived now and checked against the one the database
        // was set up with, before anything is written: a provider that cannot
        // give it, or gives other keys than the other replicas', stops the
        // start rather than a request. Sealing first: on a database from
        // before key checks, its key must open a stored secret, so a wrong key
        // dir is refused before any other key's check value is recorded.
        tracing::info!(provider = %capabilities.keys.name(), "keys");
        let keyring = Arc::new(Keyring::new(Arc::clone(&capabilities.keys)));
        let sealing = crate::store::secrets::sealing_version(&db).await?;
        keyring.sealer(sealing).await?;
        keyring.verify(&db, sealing).await?;
        let token_key = capabilities.keys.key(KeyPurpose::Jwt).await?;
        crate::keyring::verify(&db, KeyPurpose::Jwt, KeyVersion::V1, &token_key).await?;
        let tokens = Tokens::new(&token_key, Duration::from_secs(config.token_ttl_secs));
        let receipts_key = capabilities.keys.key(KeyPurpose::Receipts).await?;
        crate::keyring::verify(&db, KeyPurpose::Receipts, KeyVersion::V1, &receipts_key).await?;
        let (replica_id, replica_lock) = replica_id(&config.data_dir)?;
        let interrupted = executor::recover(&db, &replica_id, config.replica_timeout_ms).await?;
        if interrupted > 0 {
            tracing::warn!(count = interrupted, "marked executions interrupted by a previous stop as failed");
        }
        if config.signup_mode() == SignupMode::Invite
            && let Some(code) = api::first_invite(&db).await?
        {
            // Printed once, to the console only (never to the log).
            println!("oauth3: first owner invite code (single use; POST /signup with \"invite\"): {code}");
        }

        tracing::info!(drafter = capabilities.drafter.name(), model = capabilities.drafter.model(), "drafter");
        let signing = ring::signature::Ed25519KeyPair::from_seed_unchecked(&receipts_key)
            .map_err(|e| Error::Crypto(format!("the receipt key: {e}")))?;
        let tee = Tee {
            agent: capabilities.tee,
            info: Default::default(),
            // The kind only (`dstack`, `file`): the attested config has no paths.
            key_provider: capabilities.keys.name().split(" (").next().unwrap_or_default().to_owned(),
            signing,
        };
        let memory = config.memory_mb << 20;
        let runtime = Runtime::new(
            RuntimeConfig::default()
                .cache_dir(config.cache_dir())
                .max_instances(config.max_concurrent as u32 + 8)
                .max_memory_bytes(memory)
                .max_component_bytes(config.max_component_bytes)
                .wasi_http(config.wasi_http == Switch::On),
        )
        .await?;
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(Error::io(format!("listening on {}", config.listen)))?;
        let addr = listener.local_addr().map_err(Error::io("reading the bound address"))?;
        let public_url = config.public_url(addr);

        let audit = Arc::new(DbAudit::new(db.clone()));
        let confirmations = DbConfirmations::new(db.clone(), Arc::clone(&capabilities.notifier), &public_url);
        let egress = Arc::new(Egress::new(
            EgressConfig { insecure_upstreams: insecure_upstreams.clone(), ..EgressConfig::default() },
            Arc::new(DbRateLimiter::new(db.clone())),
            Arc::clone(&audit) as Arc<dyn oauth3_host::AuditSink>,
            Arc::new(confirmations),
        )?);
        let (queue, queued) = mpsc::channel(4096);
        let workers = executor::places(&config);
        let compile_options = CompileOptions { insecure_upstreams, ..CompileOptions::default() };
        let web = Web::new(&token_key, &public_url, Duration::from_secs(config.session_ttl_secs));
        let gateway = Arc::new(Gateway {
            config,
            public_url,
            db,
            tokens,
            keyring,
            drafting: Drafting::new(capabilities.docs, capabilities.drafter, compile_options.clone()),
            compile_options,
            runtime,
            egress,
            audit,
            replica_id,
            queue,
            workers,
            running: Default::default(),
            finished: Default::default(),
            permits: Default::default(),
            secrets: Default::default(),
            stopping: Default::default(),
            web,
            notifier: capabilities.notifier,
            tee,
        });
        let workers = executor::start(Arc::clone(&gateway), queued);
        retention::start(Arc::clone(&gateway));
        crate::wakeups::start(Arc::clone(&gateway));

        let (shutdown, stop) = oneshot::channel::<()>();
        let app = api::router(Arc::clone(&gateway));
        let task = tokio::spawn(async move {
            // The peer address is what sign-in throttling counts by.
            axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(async {
                    let _ = stop.await;
                })
                .await
        });
        tracing::info!(%addr, public_url = %gateway.public_url, signup = ?gateway.config.signup_mode(), "oauth3 listening");
        Ok(Server { addr, gateway, workers, _replica_lock: replica_lock, shutdown: Some(shutdown), task })
    }

    /// The address bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL handed out in links.
    pub fn public_url(&self) -> &str {
        &self.gateway.public_url
    }

    /// Serves until the HTTP server stops (it only stops on [`Server::shutdown`] or an I/O error).
    pub async fn wait(mut self) -> Result<()> {
        let result = (&mut self.task).await;
        match result {
            Ok(io) => io.map_err(Error::io("serving")),
            Err(e) => Err(Error::Internal(format!("server task: {e}"))),
        }
    }

    /// Stops gracefully within `OAUTH3_SHUTDOWN_GRACE_SECS` ([`Server::shutdown_within`]).
    pub async fn shutdown(self) -> Result<()> {
        let grace = Duration::from_secs(self.gateway.config.shutdown_grace_secs);
        self.shutdown_within(grace, std::future::pending()).await
    }

    /// Stops gracefully: no new connections, no new executions claimed
    /// (queued ones stay queued for the next start), long-polls answered
    /// with the current status; running executions may finish until `grace`
    /// has passed or `hurry` resolves (a second signal), and those still
    /// running then are marked failed with `interrupted`. Open requests get
    /// what is left of the grace period.
    pub async fn shutdown_within(mut self, grace: Duration, hurry: impl Future<Output = ()>) -> Result<()> {
        let deadline = tokio::time::Instant::now() + grace;
        self.gateway.stopping.begin();
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let running = self.workers.running();
        if running > 0 {
            tracing::info!(running, grace_secs = grace.as_secs(), "waiting for running executions to finish");
        }
        let stopped = tokio::select! {
            stopped = self.workers.stop(&self.gateway, deadline) => stopped,
            () = hurry => {
                tracing::warn!("stopping now");
                self.workers.stop(&self.gateway, tokio::time::Instant::now()).await
            }
        };
        match stopped {
            Ok(0) => {}
            Ok(marked) => tracing::warn!(count = marked, "marked executions still running as interrupted"),
            Err(error) => tracing::error!(%error, "could not mark running executions as interrupted"),
        }
        let deadline = deadline.max(tokio::time::Instant::now() + Duration::from_millis(500));
        let served = tokio::time::timeout_at(deadline, &mut self.task).await;
        self.gateway.stopping.advance(Phase::Stopped);
        match served {
            Ok(Ok(io)) => io.map_err(Error::io("serving")),
            Ok(Err(e)) => Err(Error::Internal(format!("server task: {e}"))),
            Err(_) => {
                tracing::warn!("open requests did not finish within the grace period");
                self.task.abort();
                Ok(())
            }
        }
    }
}

fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(Error::io(format!("creating the data dir {}", dir.display())))?;
    let mode = std::fs::metadata(dir).map_err(Error::io(format!("reading {}", dir.display())))?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(dir = %dir.display(), "the data dir is readable by other users; chmod 700 it");
    }
    Ok(())
}

/// This process's replica id, and the lock that holds it. The data dir's
/// `replica-id` file stays locked while the process runs: when the lock is
/// free, the process before this one on the data dir has stopped, and the
/// executions it left running are this one's to mark interrupted (same id).
/// When another live process holds it (two on one data dir, as in an
/// overlapping restart), this one takes a fresh id and leaves the other's
/// executions alone; should it die, the heartbeat sweep recovers its own.
fn replica_id(dir: &Path) -> Result<(String, Option<std::fs::File>)> {
    use std::io::{Read, Seek, Write};
    let path = dir.join("replica-id");
    let io = |what: &str| Error::io(format!("{what} {}", path.display()));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io("opening"))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            tracing::warn!(path = %path.display(), "another oauth3 process uses this data dir; taking a fresh replica id");
            return Ok((new_id("rep")?, None));
        }
        Err(std::fs::TryLockError::Error(error)) => return Err(io("locking")(error)),
    }
    let mut id = String::new();
    file.read_to_string(&mut id).map_err(io("reading"))?;
    let id = match id.trim() {
        "" => {
            let id = new_id("rep")?;
            file.set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| file.write_all(id.as_bytes()))
                .map_err(io("writing"))?;
            id
        }
        id => id.to_owned(),
    };
    Ok((id, Some(file)))
}
