//! Wake-ups across replicas. A long-poll waits on [`crate::state::Finished`],
//! which the local worker notifies; on Postgres a trigger also announces
//! every execution that ends with `NOTIFY` when its transaction commits
//! (migration 0009), and each process listens, so a status wait on one
//! replica returns as soon as another finishes the run.
//! Re-reading the row (every `OAUTH3_REREAD_MS`) stays as the fallback: for
//! SQLite (one process), a lost listener connection, or a pooler that does
//! not pass `LISTEN` through.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;

use crate::db::Backend;
use crate::state::Gateway;

/// The channel finished executions are announced on (payload: the id), by
/// the trigger `execution_finished`.
const CHANNEL: &str = "oauth3_finished";

/// Listens for other replicas' announcements (Postgres only), waking local
/// waiters, until the process ends. Reconnects after a lost connection.
pub fn start(gateway: Arc<Gateway>) {
    if gateway.db.backend != Backend::Postgres {
        return;
    }
    tokio::spawn(async move {
        let url = gateway.config.database_url();
        let mut pause = Duration::from_secs(1);
        loop {
            match listen(&gateway, &url).await {
                Ok(()) => return,
                Err(error) => {
                    tracing::warn!(%error, "listening for finished executions failed; re-reading meanwhile");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(60));
                }
            }
        }
    });
}

/// Ok when the process is stopping.
async fn listen(gateway: &Gateway, url: &str) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    loop {
        tokio::select! {
            notification = listener.recv() => gateway.finished.notify(notification?.payload(), None),
            () = gateway.stopping.wait() => return Ok(()),
        }
    }
}
