//! Publishing a slot's working copy: shared by a live session and by the
//! recovery of changes an earlier session left behind.
//!
//! Every publish is recorded in the slot state (its token and the hash of
//! what it uploads) before it is sent, so that a publish whose answer is
//! lost, or whose process dies, is settled later from the remote. All the
//! tries of one change are made over the same base version, so at most one
//! of them can land, and its token says which.

use std::path::Path;

use crate::cache::Slot;
use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::layout::{InFlight, Landed, Layout, Published};
use crate::options::WriteMode;
use crate::progress::ProgressFn;
use crate::sqlite::{self, header};
use crate::store::Remote;
use crate::token::CommitToken;

/// Where earlier tries stand after [`resolve_in_flight`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Earlier {
    /// There were none, or none landed and none ever will.
    None,
    /// One landed: what it uploaded is now the pulled version.
    Landed,
    /// None landed yet, and the remote still allows them: a new try over
    /// the same base is safe (at most one of them lands).
    Pending,
    /// The remote cannot show whether one landed (why).
    Unknown(String),
}

/// Publishes `file` (the working copy of `slot`, or a snapshot of it), whose
/// content hash is `hash`, over the version the slot was pulled from, and
/// records the result in the slot state. Returns whether anything was
/// uploaded (nothing when the copy matches what was pulled or last
/// published).
///
/// # Failure
/// [`Error::Conflict`] when the remote moved on and no try of this change
/// landed (none ever will), reporting how many tries were sent (more than
/// one when earlier answers were lost). [`Error::OutcomeUnknown`] when that cannot be
/// told: the tries stay recorded. [`Error::WorkingCopyDamaged`] when `file`
/// is not a sound database: nothing was sent. Any other error: this try did
/// not land.
pub(crate) async fn publish_slot(
    slot: &mut Slot,
    remote: &Remote,
    layout: &dyn Layout,
    mode: WriteMode,
    file: &Path,
    hash: ContentHash,
    progress: Option<&ProgressFn>,
) -> Result<bool> {
    let earlier = resolve_in_flight(slot, remote, layout).await?;
    if let Earlier::Unknown(reason) = earlier {
        return Err(earlier_unknown(remote, reason));
    }
    let mut uploaded = false;
    while slot.state.pulled_hash != Some(hash) {
        check_candidate(remote, file).map_err(|e| match e {
            Error::WorkingCopyDamaged { url, path, reason } if earlier == Earlier::Landed => {
                Error::WorkingCopyDamaged {
                    url,
                    path,
                    reason: format!("{reason}; an earlier publish of its changes had landed, so the remote holds them"),
                }
            }
            e => e,
        })?;
        let base = slot.state.version.clone();
        let mut in_flight = slot
            .state
            .publishing
            .take()
            .unwrap_or_else(|| InFlight::over(base.as_ref(), mode == WriteMode::LastWriterWins))
            .with_attempt(CommitToken::new(), Some(hash));
        slot.state.publishing = Some(in_flight.clone());
        slot.save()?;
        let found = match layout
            .publish(remote, file, base.as_ref(), mode, &in_flight, progress)
            .await
        {
            Ok(found) => found,
            Err(e @ Error::Conflict { .. }) => {
                // None of the tries landed, and none ever will: each of
                // them is an attempt the conflict reports.
                slot.state.publishing = None;
                slot.save()?;
                return Err(e.with_attempts(u32::try_from(in_flight.attempts.len()).unwrap_or(u32::MAX)));
            }
            Err(e @ Error::OutcomeUnknown { .. }) => return Err(e),
            Err(e) => {
                // This try was not sent, or refused: it did not land.
                in_flight.attempts.pop();
                slot.state.publishing = (!in_flight.attempts.is_empty()).then_some(in_flight);
                slot.save()?;
                return Err(e);
            }
        };
        uploaded = true;
        let landed = &in_flight.attempts[found.attempt];
        let superseded = matches!(found.published, Published::Superseded);
        record(slot, found.published, landed.hash);
        if let Err(e) = slot.save() {
            // It landed. The state on disk still holds the tries, so the
            // next session learns that from the remote: go on.
            tracing::warn!("could not record a publish of {} that landed: {e}", remote.url());
        }
        if landed.hash != Some(hash) && superseded {
            // An earlier try landed, and others built on it, before the
            // commits made since could follow.
            return Err(crate::layout::conflict(remote));
        }
        // An earlier try landed: publish the commits made since over it.
    }
    Ok(uploaded)
}

/// Settles earlier tries of a publish whose outcome is unknown, by
/// reading the remote only: one that landed becomes the pulled version
/// (with the hash of what it uploaded, not whatever the file holds now).
/// Sends nothing when there are none.
pub(crate) async fn resolve_in_flight(slot: &mut Slot, remote: &Remote, layout: &dyn Layout) -> Result<Earlier> {
    let Some(in_flight) = slot.state.publishing.clone() else {
        return Ok(Earlier::None);
    };
    if in_flight.attempts.is_empty() {
        slot.state.publishing = None;
        slot.save()?;
        return Ok(Earlier::None);
    }
    let earlier = match layout.landed(remote, &in_flight).await? {
        Landed::Yes(found) => {
            tracing::info!("an earlier publish of {} had landed", remote.url());
            record(slot, found.published, in_flight.attempts[found.attempt].hash);
            Earlier::Landed
        }
        Landed::Never => {
            slot.state.publishing = None;
            Earlier::None
        }
        Landed::NotYet => Earlier::Pending,
        Landed::Unknown(reason) => Earlier::Unknown(reason),
    };
    slot.save()?;
    Ok(earlier)
}

/// The error for changes whose earlier publish may or may not have landed.
pub(crate) fn earlier_unknown(remote: &Remote, reason: String) -> Error {
    Error::OutcomeUnknown {
        url: remote.url().to_string(),
        operation: "an earlier publish of the working copy's changes",
        detail: reason,
        next: "The changes stay in the cache; compare the database with them before making them again, then set \
               them aside with --discard-pending",
    }
}

/// Records a publish that landed; `hash` is that of the file it uploaded.
pub(crate) fn record(slot: &mut Slot, published: Published, hash: Option<ContentHash>) {
    slot.state.version = match published {
        Published::Current(version) => Some(version),
        // Someone published on top of ours: forget the version, so that the
        // next pull downloads the newest one whatever it is.
        Published::Superseded => None,
    };
    slot.state.pulled_hash = hash;
    slot.state.publishing = None;
}

/// Checks that `file` is a sound, non-empty SQLite database before any of
/// it is sent: the local copy is evidence, and a damaged one (a full disk
/// truncates files, tools write over them) must never reach the remote.
pub(crate) fn check_candidate(remote: &Remote, file: &Path) -> Result<()> {
    let damaged = |reason: String| Error::WorkingCopyDamaged {
        url: remote.url().to_string(),
        path: file.to_path_buf(),
        reason,
    };
    let len = std::fs::metadata(file).map_err(Error::io("reading", file))?.len();
    if len == 0 {
        return Err(damaged("it is empty".into()));
    }
    header::check(&sqlite::read_head(file, 100)?, len).map_err(|problem| damaged(problem.to_string()))?;
    match sqlite::check_local(file)? {
        None => Ok(()),
        Some(problem) => Err(damaged(problem)),
    }
}
