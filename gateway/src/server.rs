//! Starting the gateway: data dir, database and migrations, recovery of
//! interrupted executions, keys, sandbox, egress, workers, HTTP listener.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use oauth3_host::{Egress, EgressConfig, Runtime, RuntimeConfig};
use oauth3_policy::CompileOptions;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::auth::Tokens;
use crate::capabilities::{DbAudit, DbRateLimiter};
use crate::config::{Config, DrafterSettings, SignupMode};
use crate::db::Db;
use crate::drafting::{
    AnthropicDrafter, DocSource, DocsConfig, Drafter, Drafting, HttpDocs, OfflineDrafter, OpenAiDrafter,
};
use crate::error::{Error, Result};
use crate::keys::{KeyProvider, KeyPurpose, LocalKeyFile, Sealer, new_id};
use crate::state::Gateway;
use crate::{api, executor};

/// Capabilities injected into a gateway; [`Capabilities::local`] is the default.
pub struct Capabilities {
    /// Source of the JWT and sealing keys.
    pub keys: Arc<dyn KeyProvider>,
    /// Turns one intent and its docs into an integration.
    pub drafter: Arc<dyn Drafter>,
    /// Fetches the docs intents name.
    pub docs: Arc<dyn DocSource>,
}

impl Capabilities {
    /// Keys generated into the data dir, the drafter the configuration
    /// selects (offline unless an LLM is configured), docs fetched over HTTP
    /// through the address guard.
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
        Ok(Capabilities { keys: Arc::new(LocalKeyFile::new(&config.data_dir)), drafter, docs: Arc::new(docs) })
    }
}

/// A running gateway.
pub struct Server {
    addr: SocketAddr,
    gateway: Arc<Gateway>,
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
        let db = Db::connect(&config.database_url()).await?;
        let replica_id = replica_id(&config.data_dir)?;
        let interrupted = executor::recover(&db, &replica_id).await?;
        if interrupted > 0 {
            tracing::warn!(count = interrupted, "marked executions interrupted by a previous stop as failed");
        }
        if config.signup == SignupMode::Invite
            && let Some(code) = api::first_invite(&db).await?
        {
            // Printed once, to the console only (never to the log).
            println!("oauth3: first owner invite code (single use; POST /signup with \"invite\"): {code}");
        }

        tracing::info!(drafter = capabilities.drafter.name(), model = capabilities.drafter.model(), "drafter");
        let tokens =
            Tokens::new(&capabilities.keys.key(KeyPurpose::Jwt).await?, Duration::from_secs(config.token_ttl_secs));
        let sealer = Arc::new(Sealer::new(&capabilities.keys.key(KeyPurpose::Sealing).await?)?);
        let memory = config.memory_mb << 20;
        let runtime = Runtime::new(
            RuntimeConfig::default()
                .cache_dir(config.cache_dir())
                .max_instances(config.max_concurrent as u32 + 8)
                .max_memory_bytes(memory),
        )
        .await?;
        let egress = Arc::new(Egress::new(
            EgressConfig { insecure_upstreams: insecure_upstreams.clone(), ..EgressConfig::default() },
            Arc::new(DbRateLimiter::new(db.clone())),
            Arc::new(DbAudit::new(db.clone())),
        )?);

        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(Error::io(format!("listening on {}", config.listen)))?;
        let addr = listener.local_addr().map_err(Error::io("reading the bound address"))?;
        let public_url = config.public_url(addr);
        let (queue, queued) = mpsc::channel(4096);
        let compile_options = CompileOptions { insecure_upstreams, ..CompileOptions::default() };
        let gateway = Arc::new(Gateway {
            config,
            public_url,
            db,
            tokens,
            sealer,
            drafting: Drafting::new(capabilities.docs, capabilities.drafter, compile_options.clone()),
            compile_options,
            runtime,
            egress,
            replica_id,
            queue,
            finished: Default::default(),
            permits: Default::default(),
        });
        executor::start(Arc::clone(&gateway), queued);

        let (shutdown, stop) = oneshot::channel::<()>();
        let app = api::router(Arc::clone(&gateway));
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stop.await;
                })
                .await
        });
        tracing::info!(%addr, public_url = %gateway.public_url, "oauth3 listening");
        Ok(Server { addr, gateway, shutdown: Some(shutdown), task })
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

    /// Stops accepting requests and waits for open ones to finish.
    pub async fn shutdown(mut self) -> Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.wait().await
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

/// This data dir's replica id: executions it left running are its own to
/// mark interrupted at the next start.
fn replica_id(dir: &Path) -> Result<String> {
    let path = dir.join("replica-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_owned()),
        _ => {
            let id = new_id("rep")?;
            std::fs::write(&path, &id).map_err(Error::io(format!("writing {}", path.display())))?;
            Ok(id)
        }
    }
}
