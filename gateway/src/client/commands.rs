//! The client's commands: their arguments (clap) and what each does.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use std::path::PathBuf;

use super::api::Api;
use super::profile::Profile;
use super::work;

/// Where the gateway is, and how to print.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The gateway's base URL (default: the one `oauth3 login` saved).
    #[arg(long, env = "OAUTH3_URL")]
    pub url: Option<String>,
    /// Print the gateway's JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `oauth3 signup`.
#[derive(Debug, Args)]
pub struct Signup {
    /// `agent` or `owner`.
    #[arg(long, default_value = "agent")]
    pub role: String,
    /// The account's name.
    #[arg(long)]
    pub name: String,
    /// An owner invite code (gateways with OAUTH3_SIGNUP=invite).
    #[arg(long)]
    pub invite: Option<String>,
    /// Keep the URL and the new token for later commands, as `oauth3 login` does.
    #[arg(long)]
    pub save: bool,
    /// The gateway, and the output format.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `oauth3 login`.
#[derive(Debug, Args)]
pub struct Login {
    /// The gateway, and the output format.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `oauth3 secrets ...` (owners).
#[derive(Debug, Subcommand)]
pub enum Secrets {
    /// Store (or replace) a secret. The value is read from standard input,
    /// or a prompt that does not echo: never from the command line.
    Set {
        /// Its name, as specs name it (e.g. GITHUB_TOKEN).
        name: String,
        /// The gateway, and the output format.
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Your secrets' names and times (never values).
    List {
        /// The gateway, and the output format.
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete a secret.
    Rm {
        /// Its name.
        name: String,
        /// The gateway, and the output format.
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// `oauth3 permit ...`.
#[derive(Debug, Subcommand)]
pub enum Permit {
    /// Ask for a permit (or to extend one): prints the approval link to hand
    /// to your owner.
    Request {
        /// A spec: `{version, integrations}`, a list of integrations, or one.
        #[arg(long, required_unless_present = "intent", conflicts_with = "intent", value_name = "SPEC_JSON")]
        spec: Option<PathBuf>,
        /// An intent for the gateway's drafter: `{name, goal, doc_urls, secret_hints}` (or a list).
        #[arg(long, value_name = "INTENT_JSON")]
        intent: Option<PathBuf>,
        /// What for, in your words (shown to the owner).
        #[arg(long, default_value = "requested with oauth3 permit request")]
        description: String,
        /// Extend this permit instead of asking for a new one.
        #[arg(long, value_name = "PERMIT_ID")]
        extend: Option<String>,
        /// The gateway, and the output format.
        #[command(flatten)]
        client: ClientArgs,
    },
    /// A request (`req_…`) or a permit (`prm_…`): status, spec hash, summary.
    Show {
        /// `req_…` or `prm_…`.
        id: String,
        /// The gateway, and the output format.
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// `oauth3 approve`.
#[derive(Debug, Args)]
pub struct Approve {
    /// The request (`req_…`).
    pub id: String,
    /// Deny it instead.
    #[arg(long)]
    pub deny: bool,
    /// How long the permit lasts (`1h`, `24h`, `7d`); default: as the gateway decides.
    #[arg(long)]
    pub expires: Option<String>,
    /// Do not ask, even on a terminal.
    #[arg(long)]
    pub yes: bool,
    /// The gateway, and the output format.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// `oauth3 run`.
#[derive(Debug, Args)]
pub struct Run {
    /// The permit to run under.
    #[arg(long)]
    pub permit: String,
    /// A script (JavaScript), or a component (`.wasm`).
    pub code: PathBuf,
    /// Its `args`, as JSON.
    #[arg(long)]
    pub args: Option<String>,
    /// Names this action, so that running it again (the same code and args)
    /// returns the first run instead of running twice: for retries. Default: a new one.
    #[arg(long)]
    pub action_id: Option<String>,
    /// The gateway, and the output format.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// A client command.
#[derive(Debug)]
pub enum ClientCommand {
    /// `oauth3 signup`.
    Signup(Signup),
    /// `oauth3 login`.
    Login(Login),
    /// `oauth3 secrets ...`.
    Secrets(Secrets),
    /// `oauth3 permit ...`.
    Permit(Permit),
    /// `oauth3 approve`.
    Approve(Approve),
    /// `oauth3 revoke PERMIT`.
    Revoke {
        /// The permit.
        permit: String,
        /// The gateway, and the output format.
        client: ClientArgs,
    },
    /// `oauth3 run`.
    Run(Run),
    /// `oauth3 audit`.
    Audit {
        /// One permit's calls only.
        permit: Option<String>,
        /// Keep printing new calls.
        follow: bool,
        /// The gateway, and the output format.
        client: ClientArgs,
    },
}

/// Runs `command`; prints its output, or `oauth3: <why>` on stderr.
pub async fn run(command: ClientCommand) -> bool {
    match dispatch(command).await {
        Ok(()) => true,
        Err(error) => {
            eprintln!("oauth3: {error}");
            false
        }
    }
}

async fn dispatch(command: ClientCommand) -> Result<(), String> {
    match command {
        ClientCommand::Permit(Permit::Request { spec, intent, description, extend, client }) => {
            work::request(&client, spec.as_deref(), intent.as_deref(), &description, extend.as_deref()).await
        }
        ClientCommand::Permit(Permit::Show { id, client }) => work::show(&client, &id).await,
        ClientCommand::Approve(approve) => {
            let expires = approve.expires.as_deref();
            work::decide(&approve.client, &approve.id, approve.deny, expires, approve.yes).await
        }
        ClientCommand::Revoke { permit, client } => work::revoke(&client, &permit).await,
        ClientCommand::Run(run) => {
            match work::run(&run.client, &run.permit, &run.code, run.args.as_deref(), run.action_id.as_deref()).await? {
                true => Ok(()),
                false => Err("the run failed or a call was denied".into()),
            }
        }
        ClientCommand::Audit { permit, follow, client } => work::audit(&client, permit.as_deref(), follow).await,
        ClientCommand::Signup(signup) => {
            let url = gateway_url(&signup.client)?;
            let body = json!({"name": signup.name, "role": signup.role, "invite": signup.invite});
            let signed_up = Api::new(&url, None)?.call(Method::POST, "/signup", Some(&body)).await?;
            let token = signed_up["token"].as_str().ok_or("the gateway returned no token")?;
            if signup.save {
                let path = Profile { url: Some(url), token: Some(token.to_owned()) }.save()?;
                eprintln!("saved to {}", path.display());
            }
            if signup.client.json {
                println!("{signed_up:#}");
            } else {
                println!(
                    "signed up: {} {} ({})",
                    signed_up["role"].as_str().unwrap_or("-"),
                    text(&signed_up["tenant_id"]),
                    text(&signed_up["name"])
                );
                println!("token (shown once; `oauth3 login` keeps it): {token}");
            }
            Ok(())
        }
        ClientCommand::Login(login) => {
            let url = gateway_url(&login.client)?;
            let token = read_secret("token")?;
            // Checked before it is kept: every role may list its permits.
            Api::new(&url, Some(token.clone()))?.call(Method::GET, "/permits", None).await?;
            let path = Profile { url: Some(url.clone()), token: Some(token) }.save()?;
            if login.client.json {
                println!("{}", json!({"url": url, "config": path}));
            } else {
                println!("signed in to {url}; saved to {} (mode 0600)", path.display());
            }
            Ok(())
        }
        ClientCommand::Secrets(Secrets::Set { name, client }) => {
            let api = signed_in(&client)?;
            let value = read_secret(&format!("value of {name}"))?;
            let stored = api.call(Method::POST, "/secrets", Some(&json!({"name": name, "value": value}))).await?;
            print(&client, &stored, || format!("stored {}", text(&stored["name"])));
            Ok(())
        }
        ClientCommand::Secrets(Secrets::List { client }) => {
            let listed = signed_in(&client)?.call(Method::GET, "/secrets", None).await?;
            let lines = || {
                let secrets = listed["secrets"].as_array().cloned().unwrap_or_default();
                let lines: Vec<String> = secrets
                    .iter()
                    .map(|s| format!("{}  (updated {})", text(&s["name"]), text(&s["updated_at"])))
                    .collect();
                if lines.is_empty() { "no secrets".to_owned() } else { lines.join("\n") }
            };
            print(&client, &listed, lines);
            Ok(())
        }
        ClientCommand::Secrets(Secrets::Rm { name, client }) => {
            let path = format!(
                "/secrets/{}",
                percent_encoding::utf8_percent_encode(&name, percent_encoding::NON_ALPHANUMERIC)
            );
            signed_in(&client)?.call(Method::DELETE, &path, None).await?;
            print(&client, &json!({"deleted": name}), || format!("deleted {name}"));
            Ok(())
        }
    }
}

/// `--url` / `OAUTH3_URL`, else the saved one.
fn gateway_url(client: &ClientArgs) -> Result<String, String> {
    match &client.url {
        Some(url) if !url.trim().is_empty() => Ok(url.trim().to_owned()),
        _ => Profile::load()?.url.ok_or_else(|| "no gateway URL: give --url, set OAUTH3_URL, or `oauth3 login`".into()),
    }
}

/// The gateway, with `OAUTH3_TOKEN`, or the saved token when the gateway
/// is the saved one (a token is never sent to another gateway).
pub(super) fn signed_in(client: &ClientArgs) -> Result<Api, String> {
    let (url, token) = credentials(client)?;
    Api::new(&url, Some(token))
}

/// The gateway's URL and the token for it, as [`signed_in`] chooses them.
pub(crate) fn credentials(client: &ClientArgs) -> Result<(String, String), String> {
    let url = gateway_url(client)?;
    let token = match std::env::var("OAUTH3_TOKEN") {
        Ok(token) if !token.trim().is_empty() => token.trim().to_owned(),
        _ => {
            let profile = Profile::load()?;
            let token = profile.token.ok_or("not signed in: set OAUTH3_TOKEN or run `oauth3 login`")?;
            let saved = profile.url.unwrap_or_default();
            if saved.trim_end_matches('/') != url.trim_end_matches('/') {
                return Err(format!("the saved token is for {saved}: `oauth3 login --url {url}`, or set OAUTH3_TOKEN"));
            }
            token
        }
    };
    Ok((url, token))
}

/// A secret from standard input (all of it, one final newline dropped), or
/// from a prompt that does not echo when standard input is a terminal.
fn read_secret(what: &str) -> Result<String, String> {
    use std::io::{IsTerminal, Read};
    let value = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("{what}: ")).map_err(|e| format!("reading the {what}: {e}"))?
    } else {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| format!("reading the {what}: {e}"))?;
        let text = text.strip_suffix('\n').map(|t| t.strip_suffix('\r').unwrap_or(t)).unwrap_or(&text);
        text.to_owned()
    };
    if value.is_empty() {
        return Err(format!("no {what} given (standard input was empty)"));
    }
    if value.contains(['\n', '\r']) {
        // Never stored cut short: values go into headers and query strings.
        return Err(format!("the {what} has more than one line"));
    }
    Ok(value)
}

pub(super) fn print(client: &ClientArgs, value: &Value, human: impl FnOnce() -> String) {
    if client.json {
        println!("{value:#}");
    } else {
        println!("{}", human());
    }
}

/// A field for people: the gateway's (or an agent's) text, made printable.
pub(super) fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) => crate::visible::shown(text),
        other => other.to_string(),
    }
}
