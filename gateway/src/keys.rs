//! Keys and sealing. A [`KeyProvider`] hands out 256-bit keys by purpose:
//! [`LocalKeyFile`] generates them into the data dir (development);
//! [`DstackKeys`](crate::tee::DstackKeys) derives them in a dstack CVM. [`Sealer`] encrypts secrets at rest with
//! AES-256-GCM, binding each ciphertext to its owner and name.

use std::path::{Path, PathBuf};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::{Error, Result};

/// Which key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    /// Signs and verifies API tokens (HS256).
    Jwt,
    /// Seals secrets at rest (AES-256-GCM).
    Sealing,
    /// The Ed25519 seed that signs receipts and attestations' binding key.
    Receipts,
}

impl KeyPurpose {
    /// File / derivation-path name.
    pub fn name(self) -> &'static str {
        match self {
            KeyPurpose::Jwt => "jwt",
            KeyPurpose::Sealing => "sealing",
            KeyPurpose::Receipts => "receipts",
        }
    }
}

/// A key's version: `v1`, `v2`, … A new version is a new key; what the old
/// one sealed is re-encrypted (`oauth3 rotate-keys`), never reinterpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyVersion(u32);

impl KeyVersion {
    /// The first version, which the JWT and receipt keys always use.
    pub const V1: KeyVersion = KeyVersion(1);
}

impl std::fmt::Display for KeyVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "v{}", self.0)
    }
}

impl std::str::FromStr for KeyVersion {
    type Err = String;

    /// `v` and a number from 1 (`v1`, `v2`, …; no leading zeros).
    fn from_str(text: &str) -> std::result::Result<KeyVersion, String> {
        let bad = || format!("{text:?} is not a key version (v1, v2, …)");
        let digits = text.strip_prefix('v').ok_or_else(bad)?;
        if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        digits.parse().map(KeyVersion).map_err(|_| bad())
    }
}

/// Source of the gateway's long-lived keys. The same purpose and version
/// must give the same key across restarts and replicas, or tokens and sealed
/// secrets are lost.
#[async_trait::async_trait]
pub trait KeyProvider: Send + Sync {
    /// The 32-byte key for `purpose` at `version`. A provider that keeps
    /// keys makes only the first version here; a later one must already
    /// exist ([`KeyProvider::create_key_at`]).
    async fn key_at(&self, purpose: KeyPurpose, version: KeyVersion) -> Result<[u8; 32]>;

    /// The key for `purpose` at `version`, made now if this provider keeps
    /// keys and has none: what `oauth3 rotate-keys` asks for its target. A
    /// provider that derives keys derives it.
    async fn create_key_at(&self, purpose: KeyPurpose, version: KeyVersion) -> Result<[u8; 32]> {
        self.key_at(purpose, version).await
    }

    /// The 32-byte key for `purpose` at [`KeyVersion::V1`].
    async fn key(&self, purpose: KeyPurpose) -> Result<[u8; 32]> {
        self.key_at(purpose, KeyVersion::V1).await
    }

    /// What it is, for the log (never a key).
    fn name(&self) -> String;
}

/// Keys generated on first use into `<dir>/<purpose>.key` (`v1`) or
/// `<dir>/<purpose>-<version>.key`, mode 0600.
#[derive(Debug, Clone)]
pub struct LocalKeyFile {
    dir: PathBuf,
}

impl LocalKeyFile {
    /// Keys kept in `dir` (the data dir).
    pub fn new(dir: impl Into<PathBuf>) -> LocalKeyFile {
        LocalKeyFile { dir: dir.into() }
    }
}

#[async_trait::async_trait]
impl KeyProvider for LocalKeyFile {
    async fn key_at(&self, purpose: KeyPurpose, version: KeyVersion) -> Result<[u8; 32]> {
        // A first start makes v1; a later version made here, by a replica
        // that merely lacks the file, would seal what no other can open.
        self.file_key(purpose, version, version == KeyVersion::V1).await
    }

    async fn create_key_at(&self, purpose: KeyPurpose, version: KeyVersion) -> Result<[u8; 32]> {
        self.file_key(purpose, version, true).await
    }

    fn name(&self) -> String {
        format!("file ({})", self.dir.display())
    }
}

impl LocalKeyFile {
    /// The key file of `purpose` at `version`, read (made first if `create`)
    /// off the async runtime.
    async fn file_key(&self, purpose: KeyPurpose, version: KeyVersion, create: bool) -> Result<[u8; 32]> {
        let path = match version {
            KeyVersion::V1 => self.dir.join(format!("{}.key", purpose.name())),
            later => self.dir.join(format!("{}-{later}.key", purpose.name())),
        };
        tokio::task::spawn_blocking(move || if create { load_or_create(&path) } else { load(&path, version) })
            .await
            .map_err(|e| Error::Crypto(format!("key task: {e}")))?
    }
}

fn load(path: &Path, version: KeyVersion) -> Result<[u8; 32]> {
    match std::fs::read(path) {
        Ok(bytes) => bytes
            .try_into()
            .map_err(|_| Error::Config(format!("{} is not a 32-byte key; restore it or move it away", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::Config(format!(
            "{} is missing: `oauth3 rotate-keys --to {version}` made it where it ran; copy it into this data dir",
            path.display()
        ))),
        Err(e) => Err(Error::io(format!("reading {}", path.display()))(e)),
    }
}

fn load_or_create(path: &Path) -> Result<[u8; 32]> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;

    match std::fs::read(path) {
        Ok(bytes) => {
            return bytes.try_into().map_err(|_| {
                Error::Config(format!("{} is not a 32-byte key; restore it or move it away", path.display()))
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("reading {}", path.display()))(e)),
    }
    if let Some(dir) = path.parent() {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(Error::io(format!("creating {}", dir.display())))?;
    }
    let key = random_bytes::<32>()?;
    // Written whole to a temporary file, then linked into place: replicas
    // starting at once on a shared key dir never read a half-written key,
    // and the link fails for all but one of them.
    let temporary = path.with_extension(format!("tmp-{}", hex(&random_bytes::<8>()?)));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&temporary)
        .and_then(|mut file| file.write_all(&key).and_then(|()| file.sync_all()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temporary);
        return Err(Error::io(format!("writing {}", temporary.display()))(e));
    }
    let linked = std::fs::hard_link(&temporary, path);
    let _ = std::fs::remove_file(&temporary);
    match linked {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return load_or_create(path),
        // A filesystem without hard links: created in place, as exclusive.
        Err(_) => {
            let created = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path);
            match created {
                Ok(mut file) => file
                    .write_all(&key)
                    .and_then(|()| file.sync_all())
                    .map_err(Error::io(format!("writing {}", path.display())))?,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return load_or_create(path),
                Err(e) => return Err(Error::io(format!("creating {}", path.display()))(e)),
            }
        }
    }
    // The new name survives a power loss before its check value is used.
    if let Some(dir) = path.parent()
        && let Ok(dir) = std::fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
    tracing::info!(path = %path.display(), "generated a new key");
    Ok(key)
}

/// How old a key file's temporary must be to be taken for one a crash
/// left: a live one exists for milliseconds.
const STALE_TEMPORARY: std::time::Duration = std::time::Duration::from_secs(60);

/// Removes the temporaries of key files (`<name>.tmp-<16 hex digits>`,
/// see [`load_or_create`]) that a crash left in `dir` over a minute ago:
/// each holds key material (a key never used, or a copy of one in use).
/// Returns how many; a failure is logged, never fatal.
pub fn remove_stale_temporaries(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let is_temporary = name.to_str().and_then(|n| n.rsplit_once(".tmp-")).is_some_and(|(stem, suffix)| {
            !stem.is_empty() && suffix.len() == 16 && suffix.bytes().all(|b| b.is_ascii_hexdigit())
        });
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|at| at.elapsed().is_ok_and(|age| age >= STALE_TEMPORARY));
        if !is_temporary || !stale {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => {
                tracing::warn!(path = %entry.path().display(), "removed a key file's temporary left by a crash");
                removed += 1;
            }
            Err(error) => {
                tracing::warn!(path = %entry.path().display(), %error, "could not remove a stale key temporary")
            }
        }
    }
    removed
}

/// `N` bytes from the system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    SystemRandom::new().fill(&mut bytes).map_err(|_| Error::Crypto("the system RNG failed".into()))?;
    Ok(bytes)
}

/// A fresh random id, `<prefix>_<32 hex digits>` (128 bits: unguessable).
pub fn new_id(prefix: &str) -> Result<String> {
    Ok(format!("{prefix}_{}", hex(&random_bytes::<16>()?)))
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Seals and opens secret values. A sealed value is `nonce || ciphertext || tag`;
/// the associated data binds it to its owner and name, so a sealed value
/// copied to another row does not open.
pub struct Sealer {
    key: LessSafeKey,
}

impl Sealer {
    /// A sealer with a 256-bit key.
    pub fn new(key: &[u8; 32]) -> Result<Sealer> {
        let key = UnboundKey::new(&AES_256_GCM, key).map_err(|_| Error::Crypto("bad sealing key".into()))?;
        Ok(Sealer { key: LessSafeKey::new(key) })
    }

    /// Encrypts `value` for (`owner`, `name`) under a fresh random nonce.
    pub fn seal(&self, owner: &str, name: &str, value: &[u8]) -> Result<Vec<u8>> {
        let nonce = random_bytes::<NONCE_LEN>()?;
        let mut out = Vec::with_capacity(NONCE_LEN + value.len() + AES_256_GCM.tag_len());
        out.extend_from_slice(&nonce);
        let mut body = value.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), aad(owner, name).as_aad(), &mut body)
            .map_err(|_| Error::Crypto("sealing failed".into()))?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    /// Decrypts what [`Sealer::seal`] produced for the same owner and name.
    pub fn open(&self, owner: &str, name: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return Err(Error::Crypto("sealed value too short".into()));
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Error::Crypto("bad nonce".into()))?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, aad(owner, name).as_aad(), &mut body)
            .map_err(|_| Error::Crypto(format!("secret {name} does not open with this gateway's sealing key")))?;
        Ok(plain.to_vec())
    }
}

struct AssociatedData(Vec<u8>);

impl AssociatedData {
    fn as_aad(&self) -> Aad<&[u8]> {
        Aad::from(self.0.as_slice())
    }
}

fn aad(owner: &str, name: &str) -> AssociatedData {
    AssociatedData(format!("oauth3-secret-v1\0{owner}\0{name}").into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_for_their_owner_and_name() {
        let sealer = Sealer::new(&random_bytes::<32>().unwrap()).unwrap();
        let sealed = sealer.seal("owner-1", "GITHUB_TOKEN", b"fake-value").unwrap();
        assert!(!sealed.windows(10).any(|w| w == b"fake-value"));
        assert_eq!(sealer.open("owner-1", "GITHUB_TOKEN", &sealed).unwrap(), b"fake-value");
        assert!(sealer.open("owner-2", "GITHUB_TOKEN", &sealed).is_err());
        assert!(sealer.open("owner-1", "OTHER", &sealed).is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(sealer.open("owner-1", "GITHUB_TOKEN", &tampered).is_err());
    }

    #[test]
    fn the_same_value_seals_differently_each_time() {
        let sealer = Sealer::new(&random_bytes::<32>().unwrap()).unwrap();
        assert_ne!(sealer.seal("o", "N", b"v").unwrap(), sealer.seal("o", "N", b"v").unwrap());
    }

    #[tokio::test]
    async fn local_keys_are_generated_once_with_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let provider = LocalKeyFile::new(dir.path());
        let first = provider.key(KeyPurpose::Sealing).await.unwrap();
        assert_eq!(provider.key(KeyPurpose::Sealing).await.unwrap(), first);
        assert_ne!(provider.key(KeyPurpose::Jwt).await.unwrap(), first);
        let mode = std::fs::metadata(dir.path().join("sealing.key")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // A later version is made only when asked to be (rotation), never
        // on the way to opening something.
        let version = "v2".parse().unwrap();
        let missing = provider.key_at(KeyPurpose::Sealing, version).await.unwrap_err().to_string();
        assert!(missing.contains("sealing-v2.key is missing"), "{missing}");
        assert!(!dir.path().join("sealing-v2.key").exists());
        let v2 = provider.create_key_at(KeyPurpose::Sealing, version).await.unwrap();
        assert_ne!(v2, first);
        assert_eq!(std::fs::read(dir.path().join("sealing-v2.key")).unwrap(), v2);
        assert_eq!(provider.key_at(KeyPurpose::Sealing, version).await.unwrap(), v2);
    }

    #[test]
    fn key_temporaries_a_crash_left_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let write = |name: &str, aged: bool| {
            let file = std::fs::File::create(dir.path().join(name)).unwrap();
            if aged {
                file.set_modified(old).unwrap();
            }
        };
        write("sealing.tmp-0123456789abcdef", true);
        write("jwt-v2.tmp-fedcba9876543210", true);
        // Another replica's, being written now.
        write("receipts.tmp-00112233445566aa", false);
        write("sealing.key", true);
        write("notes.tmp-short", true);
        assert_eq!(remove_stale_temporaries(dir.path()), 2);
        let mut left: Vec<String> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left, ["notes.tmp-short", "receipts.tmp-00112233445566aa", "sealing.key"]);
    }

    #[test]
    fn key_versions_are_v_and_a_number_from_one() {
        assert_eq!("v1".parse::<KeyVersion>().unwrap(), KeyVersion::V1);
        assert_eq!("v12".parse::<KeyVersion>().unwrap().to_string(), "v12");
        for bad in ["", "v", "v0", "v01", "1", "V2", "v2 ", "v-1", "v99999999999", "v2/../x"] {
            assert!(bad.parse::<KeyVersion>().is_err(), "{bad:?}");
        }
    }
}
