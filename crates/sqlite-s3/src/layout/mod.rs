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

use crate::cache::state::InFlight;
use crate::error::{Error, Result};
use crate::options::WriteMode;
use crate::progress::ProgressFn;
use crate::store::Remote;

/// A version of the remote database, as a layout identifies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteVersion {
    /// The store's ETag of the version (for the versioned layout: its
    /// number).
    pub etag: String,
    /// The store's own version of the object, where it has one (S3 with
    /// versioning, Google Cloud Storage's generation, which its conditional
    /// writes need).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_version: Option<String>,
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
/// the bucket holds, and the layout a working copy remembers is only where
/// to look first. Returns the layout in use, or `None` when there is no
/// database in either.
///
/// A move between layouts that a process left half done is finished first,
/// unless `read_only`: read-only work never writes to the store, so it
/// reads what it can and otherwise says that a writer must finish the move.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn pull_detecting(
    read_only: bool,
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
    // A move seen on the way: into the versioned layout as this version
    // (0: into the single-object layout).
    let mut moved_to: Option<u64> = None;
    let mut settled = false;
    let half_done = || {
        Error::InvalidState(format!(
            "{} is between layouts: a move (sqlite-s3 convert, or its creation) was left half done. Any \
             writing command finishes it: sqlite-s3 sync {}",
            remote.url(),
            remote.url()
        ))
    };
    // Each turn either returns or moves to the other layout; a database
    // moved back and forth while we look could keep us going, so give up
    // after a few turns.
    for _ in 0..6 {
        let pulled = kind
            .layout_with(cache)
            .pull(remote, known, base_file, dest, progress)
            .await?;
        // After the marker of a move into the versioned layout, the version
        // it names must exist, or the move is not finished (and older
        // versions are not the database).
        let unfinished = match (&pulled, moved_to) {
            (Pulled::Absent, Some(_)) if absent_once => true,
            (Pulled::Moved { .. }, Some(_)) => true,
            (Pulled::Downloaded { version, .. }, Some(wanted)) if kind == LayoutKind::Versioned => {
                version.etag.parse::<u64>().is_ok_and(|have| have < wanted)
            }
            _ => false,
        };
        if unfinished {
            if read_only || settled {
                return Err(half_done());
            }
            // Finish the move the process making it left halfway, then
            // look again from the start.
            convert::settle(remote).await?;
            settled = true;
            (moved_to, absent_once) = (None, false);
            continue;
        }
        match pulled {
            Pulled::Absent if absent_once => return Ok((None, Pulled::Absent)),
            Pulled::Absent => absent_once = true,
            Pulled::Moved { to_version } => moved_to = Some(to_version.unwrap_or(0)),
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
    /// The database moved to the other layout (see [`convert`]); into the
    /// versioned layout as this version, when known.
    Moved {
        /// The version the move to the versioned layout creates.
        to_version: Option<u64>,
    },
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

pub use crate::store::cas::Landed;

/// A try of a publish that landed: which one (an index into
/// [`InFlight::attempts`]), and what the remote holds now.
#[derive(Debug)]
pub struct Found {
    /// Which try.
    pub attempt: usize,
    /// Its version, if it is still the newest.
    pub published: Published,
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
    /// `base` (`None`: the database must not exist yet). `in_flight` holds
    /// the tries of this change over `base`, this one last (its token tags
    /// the new version); earlier ones may still land, and are looked for
    /// when the write is refused.
    ///
    /// # Failure
    /// [`Error::Conflict`] when `base` is no longer the newest version and
    /// none of the tries landed: the remote is untouched, and none ever
    /// will. [`Error::OutcomeUnknown`] when that cannot be told. Any other
    /// error: this try did not land. In [`WriteMode::LastWriterWins`]
    /// conflicts only when the database moved to the other layout.
    async fn publish(
        &self,
        remote: &Remote,
        file: &Path,
        base: Option<&RemoteVersion>,
        mode: WriteMode,
        in_flight: &InFlight,
        progress: Option<&ProgressFn>,
    ) -> Result<Found>;

    /// Whether one of the tries of `in_flight` landed: [`Landed::Never`]
    /// only with proof that none did or ever will.
    async fn landed(&self, remote: &Remote, in_flight: &InFlight) -> Result<Landed<Found>>;

    /// Makes sure no try of `in_flight` (made over `base`) can land any
    /// more, for changes being discarded while a try may still be on its
    /// way: a new version with the same content as `base` takes the place
    /// they were made for. [`Landed::Yes`]: one of them landed first (the
    /// remote holds it). [`Landed::Never`]: none ever will.
    async fn fence(&self, remote: &Remote, base: Option<&RemoteVersion>, in_flight: &InFlight)
    -> Result<Landed<Found>>;
}

/// A conflict on `remote`: another writer's version holds the place, and
/// the write did not land (one try; the retrying transaction counts its own).
pub(crate) fn conflict(remote: &Remote) -> Error {
    Error::Conflict {
        url: remote.url().to_string(),
        attempts: 1,
    }
}

/// A token for a new write.
pub(crate) fn new_token() -> String {
    format!("{:016x}", fastrand::u64(..))
}

/// `in_flight` with one more try, `token`, whose content is that of the
/// base (a fence): its index is the last.
pub(crate) fn with_fence(in_flight: &InFlight, token: &str) -> InFlight {
    let mut fenced = in_flight.clone();
    fenced.attempts.push(crate::cache::state::Attempt {
        token: token.to_string(),
        hash: String::new(),
    });
    fenced
}

/// What a fence's write came to, as [`Layout::fence`] answers: the fence
/// itself landing (`fence` is its index) means none of the tries can.
pub(crate) fn fenced(outcome: crate::store::cas::Outcome<Found>, fence: usize) -> Landed<Found> {
    use crate::store::cas::Outcome;
    match outcome {
        Outcome::Written(_) | Outcome::Taken => Landed::Never,
        Outcome::Found(found) if found.attempt == fence => Landed::Never,
        Outcome::Found(found) => Landed::Yes(found),
        Outcome::Unknown(error) => Landed::Unknown(error.to_string()),
    }
}

/// The error of a publish whose outcome cannot be told: `error` is what
/// the store last said.
pub(crate) fn publish_unknown(remote: &Remote, error: Error) -> Error {
    let detail = match error {
        Error::Unavailable { detail, .. } => detail,
        other => other.to_string(),
    };
    Error::OutcomeUnknown {
        url: remote.url().to_string(),
        operation: "a publish",
        detail,
        next: "The change is kept in the cache: the next session on this cache (sqlite-s3 sync URL) finds \
               out whether it landed and publishes it if it did not, exactly once",
    }
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
/// write after a lost answer, and to prove that it did not land, even if
/// dozens of writers published on top of it before we looked. 64 tokens of
/// 16 characters fit S3's 2 KiB of user metadata.
pub const LINEAGE_LEN: usize = 64;
