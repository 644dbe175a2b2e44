//! The `oauth3` binary. See `oauth3 --help`.

use clap::Parser;
use oauth3_gateway::client::commands::ClientCommand;
use oauth3_gateway::client::run as run_client;
use oauth3_gateway::config::{
    AttestCommand, Cli, Command, LogFormat, ReceiptCommand, RotateKeys, SpecCommand, unknown_variables,
};
use oauth3_gateway::rotate::{Rotation, rotate};
use oauth3_gateway::tee;
use oauth3_gateway::{Config, Server};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // A missing .env is normal; a broken one is reported below once logging
    // is up. Only the server's commands read one: a client command run in a
    // checked-out repository must not take its gateway or token from there.
    let dotenv =
        if reads_dotenv(std::env::args().nth(1).as_deref()) { dotenvy::dotenv() } else { Ok(Default::default()) };
    let cli = Cli::parse();
    let config = match cli.command {
        Some(Command::Serve(config)) => *config,
        Some(Command::Spec(command)) => return spec(command),
        Some(Command::Attest(AttestCommand::Verify { url, expected })) => {
            return exit(tee::cli::attest_verify(&url, &expected).await);
        }
        Some(Command::Receipt(ReceiptCommand::Verify { receipt, key, url, expected })) => {
            return exit(tee::cli::receipt_verify(&receipt, key.as_deref(), url.as_deref(), &expected).await);
        }
        Some(Command::Signup(signup)) => return exit(run_client(ClientCommand::Signup(signup)).await),
        Some(Command::Login(login)) => return exit(run_client(ClientCommand::Login(login)).await),
        Some(Command::Secrets(secrets)) => return exit(run_client(ClientCommand::Secrets(secrets)).await),
        Some(Command::Permit(permit)) => return exit(run_client(ClientCommand::Permit(permit)).await),
        Some(Command::Approve(approve)) => return exit(run_client(ClientCommand::Approve(approve)).await),
        Some(Command::Revoke { permit, client }) => {
            return exit(run_client(ClientCommand::Revoke { permit, client }).await);
        }
        Some(Command::Run(run)) => return exit(run_client(ClientCommand::Run(run)).await),
        Some(Command::Audit { permit, follow, client }) => {
            return exit(run_client(ClientCommand::Audit { permit, follow, client }).await);
        }
        Some(Command::Mcp(stdio)) => {
            return exit(match oauth3_gateway::mcp::proxy(stdio).await {
                Ok(()) => true,
                Err(error) => {
                    eprintln!("oauth3 mcp: {error}");
                    false
                }
            });
        }
        Some(Command::RotateKeys(rotate)) => {
            init_logging(&rotate.config);
            return rotate_keys(*rotate).await;
        }
        None => cli.config,
    };
    init_logging(&config);
    if let Err(error) = &dotenv
        && !error.not_found()
    {
        tracing::warn!(%error, "could not read .env");
    }
    for name in unknown_variables(std::env::vars().map(|(name, _)| name)) {
        tracing::warn!(variable = %name, "unknown OAUTH3_ variable ignored (see oauth3 --help)");
    }
    match run(config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = %error.chain(), "oauth3 stopped");
            eprintln!("oauth3: {}", error.chain());
            std::process::ExitCode::FAILURE
        }
    }
}

/// Whether the command (the first argument) is the server's: `serve`
/// (named, or by default) or `rotate-keys`.
fn reads_dotenv(first: Option<&str>) -> bool {
    match first {
        None => true,
        Some(first) => first.starts_with('-') || matches!(first, "serve" | "rotate-keys"),
    }
}

fn exit(passed: bool) -> std::process::ExitCode {
    if passed { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE }
}

/// `oauth3 spec ...`: prints to stdout, errors to stderr (exit 1).
fn spec(command: SpecCommand) -> std::process::ExitCode {
    let failed = |name: &str, error: oauth3_gateway::Error| {
        eprintln!("oauth3 spec {name}: {}", error.chain());
        std::process::ExitCode::FAILURE
    };
    match command {
        SpecCommand::Wit { spec, insecure_upstreams } => match oauth3_gateway::spec_wit(&spec, &insecure_upstreams) {
            Ok(wit) => {
                print!("{wit}");
                std::process::ExitCode::SUCCESS
            }
            Err(error) => failed("wit", error),
        },
        SpecCommand::Lint { spec, insecure_upstreams, json } => {
            let lint = match oauth3_gateway::spec_lint(&spec, &insecure_upstreams) {
                Ok(lint) => lint,
                Err(error) => return failed("lint", error),
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&lint).unwrap_or_default());
            } else if let Some(hash) = &lint.spec_hash {
                println!("valid: spec_hash {hash}");
                for risk in &lint.risks {
                    println!("warning: {risk}");
                }
            } else {
                eprintln!("invalid: {}", lint.error.as_deref().unwrap_or_default());
            }
            exit(lint.valid)
        }
        SpecCommand::Describe { spec, insecure_upstreams, json } => {
            match oauth3_gateway::spec_describe(&spec, &insecure_upstreams) {
                Ok(view) if json => {
                    println!("{}", serde_json::to_string_pretty(&view).unwrap_or_default());
                    std::process::ExitCode::SUCCESS
                }
                Ok(view) => {
                    print!("{}", view.summary);
                    println!("spec_hash {}", view.spec_hash);
                    std::process::ExitCode::SUCCESS
                }
                Err(error) => failed("describe", error),
            }
        }
    }
}

/// `oauth3 rotate-keys`: progress on stdout, exit 1 if any secret is left
/// under another version.
async fn rotate_keys(command: RotateKeys) -> std::process::ExitCode {
    let rotation =
        Rotation { to: command.to, batch: command.batch, pause: std::time::Duration::from_millis(command.pause_ms) };
    let rotated = async {
        let db = oauth3_gateway::db::Db::connect(&command.config.database_url()).await?;
        let (provider, _) = oauth3_gateway::keyring::select(&command.config)?;
        tracing::info!(provider = %provider.name(), to = %rotation.to, "rotating the sealing key");
        let keyring = oauth3_gateway::keyring::Keyring::new(provider);
        rotate(&db, &keyring, &rotation, |progress| {
            println!("re-encrypted {} secrets; {} left under other versions", progress.done, progress.left);
        })
        .await
    };
    match rotated.await {
        Ok(progress) if progress.left == 0 => {
            println!("done: every secret is sealed under {}", rotation.to);
            std::process::ExitCode::SUCCESS
        }
        Ok(progress) => {
            for failure in &progress.failed {
                eprintln!("oauth3 rotate-keys: did not open {failure}");
            }
            eprintln!("oauth3 rotate-keys: {} secrets are still under other versions", progress.left);
            std::process::ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("oauth3 rotate-keys: {}", error.chain());
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> oauth3_gateway::Result<()> {
    let grace = std::time::Duration::from_secs(config.shutdown_grace_secs);
    let server = Server::start(config).await?;
    // A plain line on stdout, for people and scripts waiting for the port.
    println!("oauth3 listening on http://{} (public URL {})", server.addr(), server.public_url());
    let mut signals = Signals::new();
    signals.next().await;
    tracing::info!(grace_secs = grace.as_secs(), "shutting down (a second SIGINT or SIGTERM stops at once)");
    server.shutdown_within(grace, signals.next()).await
}

/// SIGINT (Ctrl-C) and SIGTERM, as one stream.
struct Signals {
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Signals {
        let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
        if let Err(error) = &terminate {
            tracing::warn!(%error, "cannot listen for SIGTERM");
        }
        Signals { terminate: terminate.ok() }
    }

    async fn next(&mut self) {
        let terminate = async {
            match &mut self.terminate {
                Some(signal) => drop(signal.recv().await),
                None => std::future::pending().await,
            }
        };
        let interrupt = async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = interrupt => {}
            () = terminate => {}
        }
    }
}

fn init_logging(config: &Config) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // rmcp logs each MCP request at info and, at debug, the tool calls'
    // arguments and results (code, args, what a run printed): bodies are
    // never logged here, at any level.
    let filter = match "rmcp=warn".parse() {
        Ok(directive) => filter.add_directive(directive),
        Err(_) => filter,
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
