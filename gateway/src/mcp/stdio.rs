//! `oauth3 mcp --stdio`: an MCP server on standard input and output whose
//! tools are the gateway's, for clients that only launch stdio servers.
//! Each message is carried to `POST /mcp` with the user's token; the
//! gateway decides everything, this process only relays.

use clap::Args;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult, PaginatedRequestParams, ServerConfig,
};
use rmcp::service::{Peer, RequestContext, RoleClient, RoleServer, ServiceError};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ErrorData, ServerHandler, ServiceExt};

use crate::client::commands::{ClientArgs, credentials};

/// `oauth3 mcp --stdio`.
#[derive(Debug, Args)]
pub struct Stdio {
    /// Serve MCP on standard input and output (the only transport here; the
    /// gateway itself serves Streamable HTTP at /mcp).
    #[arg(long, required = true)]
    pub stdio: bool,
    /// The agent's token. Prefer OAUTH3_TOKEN (an MCP client's `env`) or
    /// `oauth3 login`: other users of this machine can read command lines.
    #[arg(long)]
    pub token: Option<String>,
    /// The gateway.
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Relays an MCP client on stdio to the gateway until either side closes.
/// Fails, before reading stdin, when the gateway cannot be reached or
/// refuses the token.
pub async fn proxy(args: Stdio) -> Result<(), String> {
    let (url, token) = match args.token {
        Some(token) => {
            eprintln!("oauth3 mcp: a token on the command line is visible to other users; prefer OAUTH3_TOKEN");
            (credentials_url(&args.client)?, token)
        }
        None => credentials(&args.client)?,
    };
    let endpoint = format!("{}/mcp", url.trim_end_matches('/'));
    let http = crate::client::api::http_client(&url)?;
    let config = StreamableHttpClientTransportConfig::with_uri(endpoint.as_str()).auth_header(token.trim());
    let upstream =
        ().serve(StreamableHttpClientTransport::with_client(http, config))
            .await
            .map_err(|e| format!("{endpoint}: {e}"))?;
    let upstream_info = upstream.peer_info().ok_or_else(|| format!("{endpoint}: no server info"))?;
    let name = Implementation::new("oauth3", env!("CARGO_PKG_VERSION"));
    let mut info = ServerConfig::new(upstream_info.capabilities.clone())
        .with_server_info(upstream_info.server_info.clone().unwrap_or(name));
    info.instructions = upstream_info.instructions.clone();
    let relay = Relay { upstream: upstream.peer().clone(), info };
    let downstream = relay.serve(rmcp::transport::stdio()).await.map_err(|e| format!("stdio: {e}"))?;
    let closed = downstream.waiting().await;
    let _ = upstream.cancel().await;
    closed.map(drop).map_err(|e| format!("stdio: {e}"))
}

/// The URL alone, for a token given on the command line.
fn credentials_url(client: &ClientArgs) -> Result<String, String> {
    match &client.url {
        Some(url) if !url.trim().is_empty() => Ok(url.trim().to_owned()),
        _ => Err("give --url (or OAUTH3_URL) with --token".into()),
    }
}

/// The stdio server: the gateway's tools, answered by the gateway.
struct Relay {
    upstream: Peer<RoleClient>,
    info: ServerConfig,
}

impl ServerHandler for Relay {
    fn get_info(&self) -> ServerConfig {
        self.info.clone()
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.upstream.list_tools(request).await.map_err(relayed)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.upstream.call_tool_once(request).await.map_err(relayed)
    }
}

/// The gateway's JSON-RPC error as it gave it; a failure to reach it as an
/// internal error naming the cause.
fn relayed(error: ServiceError) -> ErrorData {
    match error {
        ServiceError::McpError(error) => error,
        other => ErrorData::internal_error(format!("the gateway: {other}"), None),
    }
}
