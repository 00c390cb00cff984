//! Which layout a database is in, and the layout implementation for a kind.

use std::path::Path;
use std::sync::Arc;

use super::contract::{Base, Layout, Pulled};
use super::convert;
use super::single::SingleObject;
use super::version::RemoteVersion;
use super::versioned::ChunkCache;
use super::versioned::Versioned;
use crate::error::{Error, Result};
use crate::options::LayoutKind;
use crate::progress::ProgressFn;
use crate::store::Remote;

/// The implementation of layout `kind`, keeping downloaded chunks in
/// `cache` (versioned layout).
pub(crate) fn for_kind(kind: LayoutKind, cache: Option<&ChunkCache>) -> Arc<dyn Layout> {
    match (kind, cache) {
        (LayoutKind::Single, _) => Arc::new(SingleObject),
        (LayoutKind::Versioned, Some(cache)) => Arc::new(Versioned::with_cache(cache.clone())),
        (LayoutKind::Versioned, None) => Arc::new(Versioned::default()),
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
    cache: Option<&ChunkCache>,
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
    let half_done = || Error::TryAgain {
        url: remote.url().to_string(),
        reason: format!(
            "it is between layouts: a move (sqlite-s3 convert, or its creation) is under way or was left half \
             done, and read-only work does not finish it; any writing command does (sqlite-s3 sync {})",
            remote.url()
        ),
    };
    // Each turn either returns or moves to the other layout; a database
    // moved back and forth while we look could keep us going, so give up
    // after a few turns.
    for _ in 0..6 {
        let pulled = for_kind(kind, cache)
            .pull(remote, known, base_file, dest, progress)
            .await?;
        // After the marker of a move into the versioned layout, the version
        // it names must exist, or the move is not finished (and older
        // versions are not the database).
        let unfinished = match (&pulled, moved_to) {
            (Pulled::Absent, Some(_)) if absent_once => true,
            (Pulled::Moved { .. }, Some(_)) => true,
            (Pulled::Downloaded { version, .. }, Some(wanted)) if kind == LayoutKind::Versioned => {
                version.as_manifest().is_some_and(|have| have.version < wanted)
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
    Err(Error::TryAgain {
        url: remote.url().to_string(),
        reason: "it is being converted between layouts by another process".into(),
    })
}
