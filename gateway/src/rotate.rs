//! `oauth3 rotate-keys --to v2`: re-encrypts every sealed secret under a
//! new sealing key version while gateways keep serving.
//!
//! The order makes it safe to stop at any point and run again:
//! 1. the new key is derived (nothing changes if that fails);
//! 2. the database's sealing version moves on, so every replica seals new
//!    secrets under it (a write sealed under the old one is refused);
//! 3. older rows are re-encrypted in batches, one transaction each, each row
//!    replaced only if it is unchanged since it was read. Gateways open
//!    every row with the key its version names, so both kinds serve.

use std::time::Duration;

use crate::db::Db;
use crate::error::Result;
use crate::keyring::Keyring;
use crate::keys::KeyVersion;
use crate::store::secrets::{self, Sealed, StaleSecret};

/// What to rotate to, and how gently.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The version to seal everything under.
    pub to: KeyVersion,
    /// Rows per transaction.
    pub batch: i64,
    /// A pause between batches, to spare a busy database.
    pub pause: Duration,
}

/// How far a rotation got.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Rows re-encrypted so far.
    pub done: u64,
    /// Rows still under another version when last counted.
    pub left: u64,
    /// Rows that did not open, as `owner/name: why` (they stay as they are).
    pub failed: Vec<String>,
}

/// Rotates every secret in `db` to `rotation.to`, telling `report` after
/// each batch. Errs only when the database or the new key fails; rows that
/// do not open under their own version are listed in `failed`.
pub async fn rotate(
    db: &Db,
    keyring: &Keyring,
    rotation: &Rotation,
    mut report: impl FnMut(&Progress),
) -> Result<Progress> {
    let target = keyring.sealer(rotation.to).await?;
    secrets::set_sealing_version(db, rotation.to).await?;
    let mut progress = Progress { left: count(db, rotation.to).await?, ..Progress::default() };
    report(&progress);
    // A write that read the old version just before the switch commits
    // within moments; the settling pass after a quiet one catches it.
    let mut settled = false;
    loop {
        let mut after = (String::new(), String::new());
        let mut changed = 0;
        progress.failed.clear();
        loop {
            let page = secrets::stale(db, rotation.to, &after, rotation.batch.max(1)).await?;
            let Some(last) = page.last() else { break };
            after = (last.owner_id.clone(), last.name.clone());
            let mut batch: Vec<(StaleSecret, Sealed)> = Vec::with_capacity(page.len());
            for old in page {
                match keyring.open(old.sealed.version, &old.owner_id, &old.name, &old.sealed.bytes).await {
                    Ok(plain) => {
                        let bytes = target.seal(&old.owner_id, &old.name, &plain)?;
                        batch.push((old, Sealed { bytes, version: rotation.to }));
                    }
                    Err(error) => progress.failed.push(format!("{}/{}: {error}", old.owner_id, old.name)),
                }
            }
            let replaced = secrets::reseal(db, &batch).await?;
            changed += replaced;
            progress.done += replaced;
            progress.left = count(db, rotation.to).await?;
            report(&progress);
            if !rotation.pause.is_zero() {
                tokio::time::sleep(rotation.pause).await;
            }
        }
        if changed == 0 && settled {
            return Ok(progress);
        }
        if changed == 0 {
            settled = true;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

async fn count(db: &Db, current: KeyVersion) -> Result<u64> {
    Ok(secrets::count_stale(db, current).await?.max(0) as u64)
}
