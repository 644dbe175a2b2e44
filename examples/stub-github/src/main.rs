//! `stub-github [host:port]` (default 127.0.0.1:3738): serves the stub until stopped.

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:3738".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("stub-github listening on http://{}", listener.local_addr()?);
    stub_github::serve(listener).await
}
