//! Layouts: how a database is laid out in the bucket.
//!
//! A layout knows how to bring a working copy up to date ([`Layout::pull`])
//! and how to publish one as the successor of the version it was pulled from
//! ([`Layout::publish`]), atomically and only if no one else published in
//! between. Everything above (the session, the cache, the retrying
//! transaction) works through this trait and nothing else, so a second
//! layout plugs in here.
//!
//! - [`single`]: the object at the key IS the SQLite file.

pub mod single;

use std::path::Path;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::options::WriteMode;
use crate::progress::ProgressFn;
use crate::store::Remote;

/// A version of the remote database, as a layout identifies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteVersion {
    /// The store's ETag of the version.
    pub etag: String,
    /// Commit tokens of this version and its recent ancestors, newest first,
    /// as recorded by the writers (empty for objects written by other tools).
    #[serde(default)]
    pub lineage: Vec<String>,
}

/// The outcome of a pull.
#[derive(Debug)]
pub enum Pulled {
    /// The remote still holds the version we know: nothing was downloaded.
    Unchanged,
    /// There is no database at the key yet.
    Absent,
    /// A version was downloaded into the destination file (not yet checked
    /// as SQLite).
    Downloaded {
        /// Its version.
        version: RemoteVersion,
        /// BLAKE3 of the downloaded file.
        hash: blake3::Hash,
        /// Its size.
        bytes: u64,
    },
}

/// The outcome of a publish that landed.
#[derive(Debug)]
pub enum Published {
    /// Our version is the newest.
    Current(RemoteVersion),
    /// Our version landed, but someone already published on top of it (this
    /// is learnt when a retried request's first answer was lost).
    Superseded,
}

/// How a database is stored in the bucket. See the module docs.
#[async_trait]
pub trait Layout: Send + Sync + std::fmt::Debug {
    /// A short name, such as `single`.
    fn name(&self) -> &'static str;

    /// Downloads the newest version into `dest`, unless it is `known`.
    async fn pull(
        &self,
        remote: &Remote,
        known: Option<&RemoteVersion>,
        dest: &Path,
        progress: Option<&ProgressFn>,
    ) -> Result<Pulled>;

    /// Publishes the complete SQLite file at `file` as the successor of
    /// `base` (`None`: the database must not exist yet), tagged with `token`.
    ///
    /// # Failure
    /// [`Error::Conflict`](crate::Error::Conflict) when `base` is no longer
    /// the newest version; the remote is then untouched. In
    /// [`WriteMode::LastWriterWins`] there is no condition.
    async fn publish(
        &self,
        remote: &Remote,
        file: &Path,
        base: Option<&RemoteVersion>,
        mode: WriteMode,
        token: &str,
        progress: Option<&ProgressFn>,
    ) -> Result<Published>;

    /// Whether the publish tagged `token` landed (`None`: not as far as the
    /// remote shows).
    async fn landed(&self, remote: &Remote, token: &str) -> Result<Option<Published>>;
}

/// The layout of the database at `remote`. There is one layout so far; the
/// choice will look at what the bucket holds.
pub fn for_remote(_remote: &Remote) -> std::sync::Arc<dyn Layout> {
    std::sync::Arc::new(single::SingleObject)
}

/// The lineage of a new version: its token, then its parent's lineage, up to
/// [`LINEAGE_LEN`] tokens.
pub fn extend_lineage(token: &str, parent: Option<&RemoteVersion>) -> Vec<String> {
    std::iter::once(token.to_string())
        .chain(parent.into_iter().flat_map(|p| p.lineage.iter().cloned()))
        .take(LINEAGE_LEN)
        .collect()
}

/// How many commit tokens a version remembers: enough to recognise our own
/// write after a lost answer even if a dozen writers published on top of it
/// before we looked.
pub const LINEAGE_LEN: usize = 16;
