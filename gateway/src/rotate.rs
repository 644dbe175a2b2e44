//! `oauth3 rotate-keys --to v2`: re-encrypts every sealed secret under a
//! new sealing key version while gateways keep serving.
//!
//! The order makes it safe to stop at any point and run again:
//! 1. every key in use is shown to open one of its rows, then the new key
//!    is derived (made, for file keys); nothing changes if either fails, so
//!    a wrong data dir or provider stops here;
//! 2. the database's sealing version moves on, so every replica seals new
//!    secrets under it (a write sealed under the old one is refused);
//! 3. older rows are re-encrypted in batches, one transaction each, each row
//!    replaced only if it is unchanged since it was read. Gateways open
//!    every row with the key its version names, so both kinds serve.

use std::time::Duration;

use crate::db::Db;
use crate::error::{Error, Result};
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
    let current = secrets::sealing_version(db).await?;
    if rotation.to < current {
        return Err(Error::Config(format!(
            "the database already seals new secrets under {current}; rotating back to {} is refused",
            rotation.to
        )));
    }
    // The current key first: the right key dir and provider for this database.
    keyring.verify(db, current).await?;
    // The target last: for file keys, preparing it makes it.
    let in_use = secrets::versions_in_use(db).await?;
    for version in in_use.iter().filter(|version| **version != rotation.to) {
        keyring.opens_one(db, *version).await?;
    }
    let target = keyring.prepare(rotation.to).await?;
    keyring.verify(db, rotation.to).await?;
    if in_use.contains(&rotation.to) {
        keyring.opens_one(db, rotation.to).await?;
    }
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
            let now = secrets::sealing_version(db).await?;
            if now != rotation.to {
                return Err(Error::Config(format!("another rotation moved the sealing version to {now}; stopped")));
            }
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
            progress.left = count(db, rotation.to).await?;
            return Ok(progress);
        }
        if changed == 0 {
            settled = true;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Whether the keyring's `version` key opens a secret sealed under it: a
/// wrong data dir or key provider is found before anything changes.
async fn count(db: &Db, current: KeyVersion) -> Result<u64> {
    Ok(secrets::count_stale(db, current).await?.max(0) as u64)
}
