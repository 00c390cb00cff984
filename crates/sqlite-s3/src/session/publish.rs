//! Publishing a slot's working copy: shared by a live session and by the
//! recovery of changes an earlier session left behind.

use std::path::Path;

use crate::cache::Slot;
use crate::cache::state::InFlight;
use crate::error::{Error, Result};
use crate::layout::{Layout, Published};
use crate::options::WriteMode;
use crate::progress::ProgressFn;
use crate::sqlite::{self, header};
use crate::store::Remote;

/// Publishes `file` (the working copy of `slot`, or a snapshot of it), whose
/// content hash is `hash`, over the version the slot was pulled from, and records the result in the slot state.
/// Returns whether anything was uploaded (nothing when the copy matches
/// what was pulled or last published).
///
/// A publish of an earlier attempt whose outcome is unknown is settled
/// first. The token and the hash of the file are saved before the upload
/// starts, so that if the answer is lost, or the process dies, the next
/// attempt learns from the remote lineage whether it landed, and what it
/// held.
pub(crate) async fn publish_slot(
    slot: &mut Slot,
    remote: &Remote,
    layout: &dyn Layout,
    mode: WriteMode,
    file: &Path,
    hash: blake3::Hash,
    progress: Option<&ProgressFn>,
) -> Result<bool> {
    resolve_in_flight(slot, remote, layout).await?;
    let hash = hash.to_hex().to_string();
    if slot.state.pulled_hash.as_deref() == Some(hash.as_str()) {
        return Ok(false);
    }
    let db = file;
    let len = std::fs::metadata(db).map_err(Error::io("reading", &db))?.len();
    header::check(&sqlite::read_head(db, 100)?, len).map_err(|problem| {
        Error::InvalidState(format!(
            "the working copy {} is not a sound SQLite database ({problem}); it was not published",
            db.display()
        ))
    })?;
    let token = format!("{:016x}", fastrand::u64(..));
    slot.state.publishing = Some(InFlight {
        token: token.clone(),
        hash: hash.clone(),
        base: slot.state.version.as_ref().map(|v| v.etag.clone()),
    });
    slot.save()?;
    let result = layout
        .publish(remote, db, slot.state.version.as_ref(), mode, &token, progress)
        .await;
    match result {
        Ok(published) => {
            record(slot, published, &hash);
            slot.save()?;
            Ok(true)
        }
        Err(e @ Error::Conflict { .. }) => {
            slot.state.publishing = None;
            slot.save()?;
            Err(e)
        }
        // The outcome of anything else is unknown: the token stays, and the
        // next publish or open finds out.
        Err(e) => Err(e),
    }
}

/// Settles a publish whose outcome is unknown: if its token is in the remote
/// lineage it landed, and what it uploaded becomes the pulled version;
/// otherwise it did not, and is forgotten. Sends nothing when there is none.
pub(crate) async fn resolve_in_flight(slot: &mut Slot, remote: &Remote, layout: &dyn Layout) -> Result<()> {
    let Some(in_flight) = slot.state.publishing.clone() else {
        return Ok(());
    };
    match layout
        .landed(remote, &in_flight.token, in_flight.base.as_deref())
        .await?
    {
        Some(published) => {
            tracing::info!("an earlier publish of {} had landed", remote.url());
            record(slot, published, &in_flight.hash);
        }
        None => slot.state.publishing = None,
    }
    slot.save()
}

/// Records a publish that landed; `hash` is that of the file it uploaded.
fn record(slot: &mut Slot, published: Published, hash: &str) {
    slot.state.version = match published {
        Published::Current(version) => Some(version),
        // Someone published on top of ours: forget the version, so that the
        // next pull downloads the newest one whatever it is.
        Published::Superseded => None,
    };
    slot.state.pulled_hash = Some(hash.to_string());
    slot.state.publishing = None;
}
