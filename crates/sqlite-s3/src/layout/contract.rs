//! What a layout does: the [`Layout`] trait, and what its operations answer.
//!
//! A layout knows how to bring a working copy up to date ([`Layout::pull`])
//! and how to publish one as the successor of the version it was pulled from
//! ([`Layout::publish`]), atomically and only if no one else published in
//! between. Everything above (the session, the cache, the retrying
//! transaction) works through this trait and nothing else.

use std::path::Path;

use async_trait::async_trait;

use super::in_flight::{Attempt, InFlight};
use super::version::RemoteVersion;
use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::options::WriteMode;
use crate::progress::ProgressFn;
use crate::store::Remote;
pub use crate::store::cas::Landed;
use crate::token::CommitToken;

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
        hash: ContentHash,
        /// Bytes downloaded for it.
        bytes: u64,
    },
}

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
/// the write did not land. It reports one attempt, this try: a layout does
/// not know how many were made. The callers that do set the real number
/// ([`Error::with_attempts`]): `publish_slot` the tries of one change, the
/// retrying transaction and `Database::write` their runs.
pub(crate) fn conflict(remote: &Remote) -> Error {
    Error::Conflict {
        url: remote.url().to_string(),
        attempts: 1,
    }
}

/// `in_flight` with one more try, `token`, whose content is that of the
/// base (a fence): its index is the last.
pub(crate) fn with_fence(in_flight: &InFlight, token: &CommitToken) -> InFlight {
    let mut fenced = in_flight.clone();
    fenced.attempts.push(Attempt {
        token: token.clone(),
        hash: None,
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
