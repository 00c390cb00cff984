//! The local chunk cache: chunks already downloaded are kept, named by their
//! hash, so that moving back to an earlier version, a restore, or opening a
//! branch downloads only what the machine never had.
//!
//! `CACHE_DIR/chunks/<hash>` holds a chunk's bytes, uncompressed. The name
//! is the content's hash, so every database in the cache directory shares
//! the one cache.
//! Every read checks the bytes against the name, so a damaged file is
//! dropped, never returned. Files are written whole (temporary file,
//! rename), so processes sharing the directory never see half a chunk. After
//! each pull the cache is cut back to its size cap, least recently used
//! first (use touches a file's modification time).

use crate::hash::ContentHash;
use std::path::PathBuf;

/// A chunk cache. See the module docs.
#[derive(Debug, Clone)]
pub struct ChunkCache {
    dir: PathBuf,
    cap: u64,
}

impl ChunkCache {
    /// The cache in `dir`, holding at most about `cap` bytes.
    pub fn new(dir: PathBuf, cap: u64) -> Self {
        Self { dir, cap }
    }

    fn path(&self, hash: &ContentHash) -> PathBuf {
        self.dir.join(hash.to_hex())
    }

    /// The bytes of chunk `hash`, if cached and sound.
    pub fn get(&self, hash: &ContentHash) -> Option<Vec<u8>> {
        let path = self.path(hash);
        let bytes = std::fs::read(&path).ok()?;
        if ContentHash::of(&bytes) != *hash {
            let _ = std::fs::remove_file(&path);
            return None;
        }
        let _ = std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
        Some(bytes)
    }

    /// Keeps chunk `hash`. Failures only cost a later download.
    ///
    /// Not through `atomic_file`: no fsync is worth its cost here, since a
    /// chunk torn by a crash fails its hash check in [`ChunkCache::get`].
    pub fn put(&self, hash: &ContentHash, bytes: &[u8]) {
        if self.cap == 0 || std::fs::create_dir_all(&self.dir).is_err() {
            return;
        }
        let write = || -> std::io::Result<()> {
            let mut staged = tempfile::Builder::new().prefix(".part-").tempfile_in(&self.dir)?;
            std::io::Write::write_all(&mut staged, bytes)?;
            staged.persist(self.path(hash)).map_err(|e| e.error)?;
            Ok(())
        };
        if let Err(e) = write() {
            tracing::debug!("could not cache chunk {hash}: {e}");
        }
    }

    /// Deletes the least recently used chunks until at most `cap` bytes remain.
    pub fn trim(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                let modified = meta.modified().ok()?;
                meta.is_file().then(|| (modified, meta.len(), e.path()))
            })
            .collect();
        let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
        if total <= self.cap {
            return;
        }
        files.sort();
        for (_, len, path) in files {
            if total <= self.cap {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(bytes: &[u8]) -> ContentHash {
        ContentHash::of(bytes)
    }

    #[test]
    fn a_damaged_chunk_is_dropped_not_returned() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ChunkCache::new(dir.path().join("chunks"), 1 << 20);
        let bytes = vec![7u8; 4096];
        cache.put(&hash(&bytes), &bytes);
        assert_eq!(cache.get(&hash(&bytes)).as_deref(), Some(&bytes[..]));

        std::fs::write(cache.path(&hash(&bytes)), b"not the chunk").unwrap();
        assert_eq!(cache.get(&hash(&bytes)), None);
        assert!(!cache.path(&hash(&bytes)).exists(), "the damaged file is removed");
    }

    #[test]
    fn trim_drops_the_least_recently_used_first() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ChunkCache::new(dir.path().to_path_buf(), 2 * 1000);
        let chunks: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 1000]).collect();
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        for (i, chunk) in chunks.iter().enumerate() {
            cache.put(&hash(chunk), chunk);
            let file = std::fs::File::options()
                .write(true)
                .open(cache.path(&hash(chunk)))
                .unwrap();
            file.set_modified(old + std::time::Duration::from_secs(i as u64))
                .unwrap();
        }
        // Reading the oldest makes it the most recently used.
        assert!(cache.get(&hash(&chunks[0])).is_some());
        cache.trim();
        assert!(cache.get(&hash(&chunks[0])).is_some());
        assert!(cache.get(&hash(&chunks[1])).is_none(), "least recently used");
        assert!(cache.get(&hash(&chunks[2])).is_some());
        let held: u64 = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert_eq!(held, 2000);
    }

    #[test]
    fn a_zero_cap_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ChunkCache::new(dir.path().join("chunks"), 0);
        cache.put(&hash(b"x"), b"x");
        assert_eq!(cache.get(&hash(b"x")), None);
    }
}
