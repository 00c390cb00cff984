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
//! - [`versioned`]: immutable numbered manifests and content-addressed
//!   chunks; a commit costs what changed.

pub mod convert;
pub mod single;
pub mod versioned;

use std::path::Path;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
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
    /// For the versioned layout: the manifest of the version, so that the
    /// next pull and publish need not fetch it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Box<versioned::manifest::Manifest>>,
}

/// The layouts.
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
    /// Its implementation.
    pub fn layout(self) -> std::sync::Arc<dyn Layout> {
        self.layout_with(None)
    }

    /// Its implementation, keeping downloaded chunks in `cache` (versioned).
    pub fn layout_with(self, cache: Option<&versioned::cache::ChunkCache>) -> std::sync::Arc<dyn Layout> {
        match (self, cache) {
            (LayoutKind::Single, _) => std::sync::Arc::new(single::SingleObject),
            (LayoutKind::Versioned, Some(cache)) => {
                std::sync::Arc::new(versioned::Versioned::with_cache(cache.clone()))
            }
            (LayoutKind::Versioned, None) => std::sync::Arc::new(versioned::Versioned::default()),
        }
    }

    /// Its name, as the command line spells it.
    pub fn name(self) -> &'static str {
        match self {
            LayoutKind::Single => "single",
            LayoutKind::Versioned => "versioned",
        }
    }

    fn other(self) -> Self {
        match self {
            LayoutKind::Single => LayoutKind::Versioned,
            LayoutKind::Versioned => LayoutKind::Single,
        }
    }
}

/// Pulls with the layout a working copy last used (`known_kind`), or, when
/// that finds nothing, with the other one: a database is detected from what
/// the bucket holds. Returns the layout in use, or `None` when there is no
/// database in either.
pub(crate) async fn pull_detecting(
    known_kind: Option<LayoutKind>,
    cache: Option<&versioned::cache::ChunkCache>,
    remote: &Remote,
    known: Option<&RemoteVersion>,
    base_file: Option<Base<'_>>,
    dest: &Path,
    progress: Option<&ProgressFn>,
) -> Result<(Option<LayoutKind>, Pulled)> {
    let mut kind = known_kind.unwrap_or_default();
    let (mut known, mut base_file) = (known, base_file);
    let mut absent_once = false;
    // Each turn either returns or moves to the other layout; a database
    // moved back and forth while we look could keep us going, so give up
    // after a few turns.
    for _ in 0..4 {
        match kind
            .layout_with(cache)
            .pull(remote, known, base_file, dest, progress)
            .await?
        {
            Pulled::Absent if absent_once => return Ok((None, Pulled::Absent)),
            Pulled::Absent => absent_once = true,
            // Finish the move if the process making it stopped halfway.
            Pulled::Moved => convert::settle(remote).await?,
            pulled => return Ok((Some(kind), pulled)),
        }
        kind = kind.other();
        (known, base_file) = (None, None);
    }
    Err(Error::InvalidState(format!(
        "{} is being converted between layouts by another process; try again",
        remote.url()
    )))
}

/// The layout of the database at `remote`, or `None` when there is none.
pub async fn detect(remote: &Remote) -> Result<Option<LayoutKind>> {
    convert::detect(remote).await
}

/// The outcome of a pull.
#[derive(Debug)]
pub enum Pulled {
    /// The remote still holds the version we know: nothing was downloaded.
    Unchanged,
    /// There is no database at the key yet.
    Absent,
    /// The database moved to the other layout (see [`convert`]).
    Moved,
    /// A version was written into the destination file (not yet checked
    /// as SQLite).
    Downloaded {
        /// Its version.
        version: RemoteVersion,
        /// BLAKE3 of the file written.
        hash: blake3::Hash,
        /// Bytes downloaded for it.
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

/// The working copy a pull may start from, holding the known version.
#[derive(Debug, Clone, Copy)]
pub enum Base<'a> {
    /// A file no other connection writes: copied as it is.
    File(&'a Path),
    /// A shared working copy (see `session/shared.rs`): copied with SQLite's
    /// backup API, which also sees what sits in its WAL.
    Live(&'a Path),
}

impl Base<'_> {
    /// Copies the base into `dest`. A layout calls this only once it knows
    /// there is a newer version to build, so a pull that finds nothing new
    /// copies nothing.
    pub fn copy_to(self, dest: &Path) -> Result<()> {
        match self {
            Base::File(file) => std::fs::copy(file, dest).map(drop).map_err(Error::io("writing", dest)),
            Base::Live(file) => {
                let conn = crate::sqlite::open(file)?;
                crate::sqlite::snapshot(&conn, dest)
            }
        }
    }
}

/// How a database is stored in the bucket. See the module docs.
#[async_trait]
pub trait Layout: Send + Sync + std::fmt::Debug {
    /// A short name, such as `single`.
    fn name(&self) -> &'static str;

    /// Downloads the newest version into `dest`, unless it is `known`.
    /// `base_file` is the working copy, holding `known`: a layout may start
    /// from it instead of downloading everything.
    async fn pull(
        &self,
        remote: &Remote,
        known: Option<&RemoteVersion>,
        base_file: Option<Base<'_>>,
        dest: &Path,
        progress: Option<&ProgressFn>,
    ) -> Result<Pulled>;

    /// Publishes the complete SQLite file at `file` as the successor of
    /// `base` (`None`: the database must not exist yet), tagged with `token`.
    ///
    /// # Failure
    /// [`Error::Conflict`] when `base` is no longer the newest version; the
    /// remote is then untouched. In [`WriteMode::LastWriterWins`] only when
    /// the database moved to the other layout.
    async fn publish(
        &self,
        remote: &Remote,
        file: &Path,
        base: Option<&RemoteVersion>,
        mode: WriteMode,
        token: &str,
        progress: Option<&ProgressFn>,
    ) -> Result<Published>;

    /// Whether the publish tagged `token`, made over the version whose ETag
    /// is `base`, landed (`None`: not as far as the remote shows).
    async fn landed(&self, remote: &Remote, token: &str, base: Option<&str>) -> Result<Option<Published>>;
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
