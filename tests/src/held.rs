//! An upstream that holds each call until the test lets it go: for showing
//! what happens while a run is still waiting on a call.

use std::sync::Arc;

use tokio::sync::{Notify, mpsc};

/// Starts an upstream on 127.0.0.1 whose `GET /wait` answers `{"ok": true}`
/// only once `release` is notified (once per call), and sends on `arrived`
/// as each call comes in: (its `host:port`, arrived, release).
pub async fn held_upstream() -> (String, mpsc::Receiver<()>, Arc<Notify>) {
    let (arrived_tx, arrived) = mpsc::channel(16);
    let release = Arc::new(Notify::new());
    let held = Arc::clone(&release);
    let app = axum::Router::new().route(
        "/wait",
        axum::routing::get(move || {
            let (arrived, held) = (arrived_tx.clone(), Arc::clone(&held));
            async move {
                let released = held.notified();
                let _ = arrived.send(()).await;
                released.await;
                axum::Json(serde_json::json!({"ok": true}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (address, arrived, release)
}
