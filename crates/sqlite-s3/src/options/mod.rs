//! Options for opening a database: how to reach the store, where the local
//! working copy lives, and how publishing behaves.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::progress::ProgressFn;

mod cache_dir;
mod store;

pub use cache_dir::resolve_cache_dir;
pub use store::{RequestRetry, StoreOptions};

/// The layouts: how a database is laid out in the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayoutKind {
    /// The object at the key is the SQLite file.
    #[default]
    Single,
    /// Manifests and chunks under `KEY.sqlite-s3/`.
    Versioned,
}

impl LayoutKind {
    /// Its name, as the command line spells it.
    pub fn name(self) -> &'static str {
        match self {
            LayoutKind::Single => "single",
            LayoutKind::Versioned => "versioned",
        }
    }

    /// The other layout.
    pub(crate) fn other(self) -> Self {
        match self {
            LayoutKind::Single => LayoutKind::Versioned,
            LayoutKind::Versioned => LayoutKind::Single,
        }
    }
}

/// How a publish treats a remote that changed since it was pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteMode {
    /// Publish only over the version that was pulled (a conditional write);
    /// otherwise fail with [`Error::Conflict`](crate::Error::Conflict).
    #[default]
    Conditional,
    /// Overwrite whatever is there. Another writer's changes made since the
    /// pull are lost: this is what the original PHP library did, and is only
    /// for callers who ask for it.
    LastWriterWins,
}

/// What to do at open with changes an earlier session committed to the
/// working copy but never published (it was dropped, or its process died).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PendingChanges {
    /// Publish them if the remote has not changed since they were made;
    /// otherwise fail with [`Error::UnpublishedChanges`](crate::Error::UnpublishedChanges)
    /// and keep them where they are.
    #[default]
    Publish,
    /// Move them aside (into the cache's `rescued` folder) and start from the
    /// remote version. Changes an earlier publish may still land are made
    /// sure of first; changes that turn out to be in the remote already are
    /// not moved aside (a warning says so).
    Discard,
    /// Leave them where they are, say so (a warning naming the command that
    /// publishes them), and use another working copy: what read-only work
    /// does, since it never writes to the store. Nor does such a session
    /// finish a move between layouts another process left half done (it
    /// says a writer must).
    Keep,
}

/// Retries of the retrying transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Upper bound of the first backoff; it doubles after each conflict.
    pub base_delay: Duration,
    /// Upper bound of any backoff.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The delay before try `attempt + 1` after `attempt` conflicts: a random
    /// duration up to `min(max_delay, base_delay * 2^(attempt-1))` ("full
    /// jitter"), so that writers that collided do not collide again.
    pub fn backoff(&self, attempt: u32) -> Duration {
        crate::backoff::full_jitter(self.base_delay, self.max_delay, attempt)
    }
}

/// Everything that shapes a session.
#[derive(Clone)]
pub struct Options {
    pub(crate) store: StoreOptions,
    pub(crate) cache_dir: Option<PathBuf>,
    pub(crate) write_mode: WriteMode,
    pub(crate) pending: PendingChanges,
    pub(crate) retry: RetryPolicy,
    pub(crate) progress: Option<ProgressFn>,
    pub(crate) layout: LayoutKind,
    pub(crate) chunk_cache_bytes: u64,
    pub(crate) shared: bool,
    pub(crate) read_only: bool,
}

/// The default size cap of the local chunk cache of one database.
pub const DEFAULT_CHUNK_CACHE_BYTES: u64 = 512 << 20;

impl Default for Options {
    fn default() -> Self {
        Self {
            store: StoreOptions::default(),
            cache_dir: None,
            write_mode: WriteMode::default(),
            pending: PendingChanges::default(),
            retry: RetryPolicy::default(),
            progress: None,
            layout: LayoutKind::default(),
            chunk_cache_bytes: DEFAULT_CHUNK_CACHE_BYTES,
            shared: false,
            read_only: false,
        }
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("store", &self.store)
            .field("cache_dir", &self.cache_dir)
            .field("write_mode", &self.write_mode)
            .field("pending", &self.pending)
            .field("retry", &self.retry)
            .field("progress", &self.progress.as_ref().map(|_| "<callback>"))
            .field("layout", &self.layout)
            .field("chunk_cache_bytes", &self.chunk_cache_bytes)
            .field("shared", &self.shared)
            .field("read_only", &self.read_only)
            .finish()
    }
}

impl Options {
    /// Default options: store settings from the environment, the default
    /// cache directory, conditional writes, 10 tries per transaction.
    pub fn new() -> Self {
        Self::default()
    }

    /// Lets other connections use the working copy
    /// ([`Session::working_copy`](crate::Session::working_copy)) while the
    /// session lives: an sqlx pool, a Diesel connection, any driver. A
    /// publish then copies what is committed into a snapshot with SQLite's
    /// backup API (a local copy of the whole file, made only when something
    /// was committed since the last publish) and uploads the snapshot; a
    /// refresh writes the new version into the working copy through the
    /// same API, in one transaction, so open connections see it from their
    /// next transaction on. Off by default: the session's own connection is
    /// then the only one, and publishes upload the file itself. The sqlx
    /// and Diesel adapters turn it on.
    pub fn shared_working_copy(mut self, shared: bool) -> Self {
        self.shared = shared;
        self
    }

    /// A session that never writes to the store: changes left by earlier
    /// sessions are kept and reported, not published
    /// ([`PendingChanges::Keep`] unless discarding was asked for), and
    /// [`Session::publish`](crate::Session::publish) refuses to send
    /// anything. What `query`, `info` and `pull` use.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        if read_only && self.pending == PendingChanges::Publish {
            self.pending = PendingChanges::Keep;
        }
        self
    }

    /// How to reach the store.
    pub fn store(mut self, store: StoreOptions) -> Self {
        self.store = store;
        self
    }

    /// Shorthand for a store option: the region.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.store = self.store.region(region);
        self
    }

    /// Shorthand for a store option: the endpoint.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.store = self.store.endpoint(endpoint);
        self
    }

    /// The directory holding local working copies. Without it:
    /// `SQLITE_S3_CACHE_DIR`, then `/tmp/sqlite-s3` on AWS Lambda, then the
    /// platform's cache directory (`~/.cache/sqlite-s3` on Linux).
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Conditional writes (the default) or last writer wins.
    pub fn write_mode(mut self, mode: WriteMode) -> Self {
        self.write_mode = mode;
        self
    }

    /// What to do with unpublished changes found at open.
    pub fn pending_changes(mut self, pending: PendingChanges) -> Self {
        self.pending = pending;
        self
    }

    /// Retries of the retrying transaction.
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The layout of a database created by this session; an existing
    /// database keeps the layout it has.
    pub fn layout(mut self, layout: LayoutKind) -> Self {
        self.layout = layout;
        self
    }

    /// The size cap of the local chunk cache of each database (versioned
    /// layout): chunks downloaded before are not downloaded again, the least
    /// recently used go first. 0 keeps none. Default 512 MiB.
    pub fn chunk_cache_bytes(mut self, bytes: u64) -> Self {
        self.chunk_cache_bytes = bytes;
        self
    }

    /// A callback told how downloads and uploads progress.
    pub fn progress(mut self, progress: ProgressFn) -> Self {
        self.progress = Some(progress);
        self
    }

    /// What happens to changes left by earlier sessions.
    pub fn pending(&self) -> PendingChanges {
        self.pending
    }

    /// How to reach the store.
    pub fn store_options(&self) -> &StoreOptions {
        &self.store
    }

    /// The cache directory in use: the option, `SQLITE_S3_CACHE_DIR`, or the default.
    pub fn resolved_cache_dir(&self) -> PathBuf {
        resolve_cache_dir(self.cache_dir.as_deref())
    }

    /// Shorthand: tries in all for the retrying transaction (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.retry.max_attempts = attempts.max(1);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secrets() {
        let opts = StoreOptions::new()
            .credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG")
            .session_token("FwoGZXIvYXdzEJr");
        let shown = format!("{:?}", Options::new().store(opts));
        assert!(shown.contains("AKIDEXAMPLE"));
        assert!(!shown.contains("wJalrXUtnFEMI"));
        assert!(!shown.contains("FwoGZXIvYXdzEJr"));
    }

    #[test]
    fn backoff_is_bounded_and_grows() {
        let policy = RetryPolicy::default();
        for attempt in 1..40 {
            let cap = policy
                .base_delay
                .saturating_mul(1 << (attempt - 1).min(20))
                .min(policy.max_delay);
            assert!(policy.backoff(attempt) <= cap);
        }
    }
}
