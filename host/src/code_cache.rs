//! Cranelift's incremental compilation cache, on disk: one file per
//! compiled function, keyed by what the function's code depends on. Every
//! permit's JavaScript component embeds the same guest runtime, so its
//! QuickJS code compiles once per machine instead of once per permit.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::CacheStore;

/// A directory of compiled functions, at most about `limit` bytes: past it,
/// new functions are compiled but not kept (nothing is evicted; clear the
/// directory after upgrading wasmtime, whose new keys would not fit).
#[derive(Debug)]
pub(crate) struct DiskCodeCache {
    dir: PathBuf,
    limit: u64,
    used: AtomicU64,
}

impl DiskCodeCache {
    /// The cache in `dir` (created if missing).
    pub(crate) fn open(dir: PathBuf, limit: u64) -> std::io::Result<DiskCodeCache> {
        std::fs::create_dir_all(&dir)?;
        let mut used = 0;
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().contains(".tmp") {
                // Left by a process that died mid-write.
                let _ = std::fs::remove_file(entry.path());
                continue;
            }
            used += entry.metadata().map_or(0, |m| m.len());
        }
        Ok(DiskCodeCache { dir, limit, used: AtomicU64::new(used) })
    }

    fn path(&self, key: &[u8]) -> PathBuf {
        let digest = ring::digest::digest(&ring::digest::SHA256, key);
        self.dir.join(crate::runtime::hex(digest.as_ref()))
    }
}

impl CacheStore for DiskCodeCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        std::fs::read(self.path(key)).ok().map(Cow::Owned)
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let size = value.len() as u64;
        if self.used.fetch_add(size, Ordering::Relaxed) + size > self.limit {
            self.used.fetch_sub(size, Ordering::Relaxed);
            return false;
        }
        let path = self.path(key);
        // Written whole, then renamed: a reader never sees half a function.
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let unique = NEXT.fetch_add(1, Ordering::Relaxed);
        let tmp = path.with_extension(format!("tmp{}-{unique}", std::process::id()));
        let written = std::fs::write(&tmp, &value).and_then(|()| std::fs::rename(&tmp, &path));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
            self.used.fetch_sub(size, Ordering::Relaxed);
        }
        written.is_ok()
    }
}
