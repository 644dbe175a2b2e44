//! Cranelift's incremental compilation cache, on disk: one file per
//! compiled function, keyed by what the function's code depends on. Every
//! permit's JavaScript component embeds the same guest runtime, so its
//! QuickJS code compiles once per machine instead of once per permit.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use wasmtime::CacheStore;

/// A directory of compiled functions, at most about `limit` bytes. A file's
/// modification time is when it was last used; making room evicts the least
/// recently used down to nine tenths of the limit, so the QuickJS functions
/// every JavaScript component uses stay while agents' one-off components
/// (and keys an older wasmtime wrote) go.
#[derive(Debug)]
pub(crate) struct DiskCodeCache {
    dir: PathBuf,
    limit: u64,
    used: AtomicU64,
    /// One eviction at a time; others skip keeping their function.
    evicting: Mutex<()>,
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
        Ok(DiskCodeCache { dir, limit, used: AtomicU64::new(used), evicting: Mutex::new(()) })
    }

    /// Removes the least recently used functions until `needed` more bytes
    /// fit under nine tenths of the limit. False if another eviction is
    /// under way or the room could not be made.
    fn make_room(&self, needed: u64) -> bool {
        let Ok(_evicting) = self.evicting.try_lock() else { return false };
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return false };
        let mut files: Vec<(SystemTime, u64, PathBuf)> = entries
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let metadata = entry.metadata().ok()?;
                // Only what `insert` names (SHA-256 hex): not `.tmp` files
                // being written, nor anything else someone put here.
                let name = entry.file_name();
                let name = name.to_string_lossy();
                (name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()))
                    .then(|| (metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH), metadata.len(), entry.path()))
            })
            .collect();
        files.sort_unstable_by_key(|(used, _, _)| *used);
        let target = (self.limit - self.limit / 10).saturating_sub(needed);
        let mut used: u64 = files.iter().map(|(_, len, _)| len).sum();
        for (_, len, path) in files {
            if used <= target {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                used -= len;
            }
        }
        self.used.store(used, Ordering::Relaxed);
        used <= target
    }

    fn path(&self, key: &[u8]) -> PathBuf {
        let digest = ring::digest::digest(&ring::digest::SHA256, key);
        self.dir.join(crate::runtime::hex(digest.as_ref()))
    }
}

impl CacheStore for DiskCodeCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        use std::io::Read;
        let mut file = std::fs::File::open(self.path(key)).ok()?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).ok()?;
        // Used now: what eviction keeps longest.
        let _ = file.set_modified(SystemTime::now());
        Some(Cow::Owned(bytes))
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let size = value.len() as u64;
        if size > self.limit / 10 {
            return false;
        }
        if self.used.fetch_add(size, Ordering::Relaxed) + size > self.limit {
            self.used.fetch_sub(size, Ordering::Relaxed);
            if !self.make_room(size) {
                return false;
            }
            self.used.fetch_add(size, Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("oauth3-code-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_full_cache_evicts_the_least_recently_used_functions() {
        let dir = dir("lru");
        let cache = DiskCodeCache::open(dir.clone(), 1000).unwrap();
        let keys: Vec<[u8; 1]> = (0..10u8).map(|k| [k]).collect();
        for key in &keys {
            assert!(cache.insert(key, vec![0; 100]));
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        // The first is used again, so the second and third are now the
        // least recently used: they make room (down to nine tenths).
        assert!(cache.get(&keys[0]).is_some());
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(cache.insert(b"new", vec![0; 100]));
        assert!(cache.get(&keys[1]).is_none() && cache.get(&keys[2]).is_none());
        for kept in [&keys[0][..], &keys[3][..], &keys[9][..], b"new"] {
            assert!(cache.get(kept).is_some());
        }
        // Reopened, the cache counts what is on disk.
        assert_eq!(DiskCodeCache::open(dir.clone(), 1000).unwrap().used.load(Ordering::Relaxed), 900);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_function_larger_than_a_tenth_of_the_limit_is_not_kept() {
        let dir = dir("large");
        let cache = DiskCodeCache::open(dir.clone(), 1000).unwrap();
        assert!(!cache.insert(b"big", vec![0; 101]));
        assert!(cache.get(b"big").is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
