//! Which keys this gateway uses: the [`KeyProvider`] `OAUTH3_KEYS` selects,
//! and a [`Keyring`] of sealers by key version. Every sealed secret names
//! the version it was sealed under; new secrets are sealed under the version
//! the database names (moved on by `oauth3 rotate-keys`), so replicas agree
//! without a restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::config::{Config, KeysChoice};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::keys::{KeyProvider, KeyPurpose, KeyVersion, LocalKeyFile, Sealer};
use crate::store::key_checks;
use crate::tee::{Dstack, DstackKeys, Endpoint};

/// The key provider `config.keys` selects, and the dstack guest agent when
/// it is the one: `auto` takes dstack when its socket is found, `dstack`
/// refuses to go on without it, `file` keeps keys in the data dir.
pub fn select(config: &Config) -> Result<(Arc<dyn KeyProvider>, Option<Dstack>)> {
    match (config.keys, Endpoint::discover()) {
        (KeysChoice::File, _) | (KeysChoice::Auto, None) => {
            let dir = config.key_dir.as_ref().unwrap_or(&config.data_dir);
            warn_if_shared(dir);
            crate::keys::remove_stale_temporaries(dir);
            Ok((Arc::new(LocalKeyFile::new(dir)), None))
        }
        (KeysChoice::Dstack | KeysChoice::Auto, Some(endpoint)) => {
            let agent = Dstack::new(endpoint);
            Ok((Arc::new(DstackKeys::new(agent.clone())), Some(agent)))
        }
        (KeysChoice::Dstack, None) => Err(Error::Config(format!(
            "OAUTH3_KEYS=dstack, but no dstack guest agent was found (looked for {}; or set {})",
            crate::tee::dstack::SOCKETS.join(", "),
            crate::tee::dstack::ENDPOINT_VARIABLE
        ))),
    }
}

/// Says so when a key dir others may read exists (a mounted one is not
/// made by the gateway, so not made private by it).
fn warn_if_shared(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = std::fs::metadata(dir)
        && metadata.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(dir = %dir.display(), "the key dir is readable by other users; chmod 700 it");
    }
}

/// Refuses `key` unless it is the key `purpose` at `version` was first used
/// with against this database (its check value, stored then): a replica
/// with other keys would issue tokens the others refuse and seal secrets
/// they cannot open.
pub async fn verify(db: &Db, purpose: KeyPurpose, version: KeyVersion, key: &[u8; 32]) -> Result<()> {
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), b"oauth3 key check v1");
    let check = crate::keys::hex(&tag.as_ref()[..16]);
    let stored = key_checks::stored_or(db, purpose.name(), &version.to_string(), &check).await?;
    if stored == check {
        return Ok(());
    }
    Err(Error::Config(format!(
        "the {} key ({version}) is not the one this database was set up with: every replica must use the same \
         keys (the same OAUTH3_KEY_DIR contents, or the same dstack app)",
        purpose.name()
    )))
}

/// Sealers by key version, each derived from the provider once.
pub struct Keyring {
    provider: Arc<dyn KeyProvider>,
    sealers: Mutex<HashMap<KeyVersion, Arc<Sealer>>>,
}

impl Keyring {
    /// Sealing keys from `provider`.
    pub fn new(provider: Arc<dyn KeyProvider>) -> Keyring {
        Keyring { provider, sealers: Mutex::default() }
    }

    /// The sealer of `version`, whose key must exist.
    pub async fn sealer(&self, version: KeyVersion) -> Result<Arc<Sealer>> {
        self.sealer_made(version, false).await
    }

    /// The sealer of `version`, its key made if the provider keeps keys and
    /// has none: only for the target of a rotation.
    pub async fn prepare(&self, version: KeyVersion) -> Result<Arc<Sealer>> {
        self.sealer_made(version, true).await
    }

    async fn sealer_made(&self, version: KeyVersion, create: bool) -> Result<Arc<Sealer>> {
        if let Some(sealer) = self.sealers.lock().expect("sealers lock").get(&version) {
            return Ok(Arc::clone(sealer));
        }
        // Derived outside the lock; two racing derivations give the same key.
        let key = match create {
            true => self.provider.create_key_at(KeyPurpose::Sealing, version).await?,
            false => self.provider.key_at(KeyPurpose::Sealing, version).await?,
        };
        let sealer = Arc::new(Sealer::new(&key)?);
        Ok(Arc::clone(self.sealers.lock().expect("sealers lock").entry(version).or_insert(sealer)))
    }

    /// [`verify`] for the sealing key of `version`. Before a first check
    /// value is recorded (a database from before checks), the key must open
    /// a secret sealed under `version`, if there is one: a fresh key on a
    /// database with secrets is refused, not recorded.
    pub async fn verify(&self, db: &Db, version: KeyVersion) -> Result<()> {
        let key = self.provider.key_at(KeyPurpose::Sealing, version).await?;
        if key_checks::stored(db, KeyPurpose::Sealing.name(), &version.to_string()).await?.is_none() {
            self.opens_one(db, version).await?;
        }
        verify(db, KeyPurpose::Sealing, version, &key).await
    }

    /// Fails unless the key of `version` opens a secret sealed under it (when there is one).
    pub async fn opens_one(&self, db: &Db, version: KeyVersion) -> Result<()> {
        let Some(row) = crate::store::secrets::sample(db, version).await? else { return Ok(()) };
        self.open(version, &row.owner_id, &row.name, &row.sealed.bytes).await.map(drop).map_err(|error| {
            Error::Config(format!(
                "the {version} sealing key does not open {}/{} ({error}): is this the gateway's key dir \
                 (OAUTH3_KEY_DIR, or the data dir) and key provider? Copy the key files that sealed it",
                row.owner_id, row.name
            ))
        })
    }

    /// Opens what was sealed under `version` for (`owner`, `name`).
    pub async fn open(&self, version: KeyVersion, owner: &str, name: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        self.sealer(version).await?.open(owner, name, sealed).map_err(|error| match error {
            Error::Crypto(message) => Error::Crypto(format!("{message} (key {version})")),
            other => other,
        })
    }
}
