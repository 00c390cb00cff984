//! Publishing a slot's working copy: shared by a live session and by the
//! recovery of changes an earlier session left behind.

use crate::cache::Slot;
use crate::error::{Error, Result};
use crate::layout::{Layout, Published};
use crate::options::WriteMode;
use crate::progress::ProgressFn;
use crate::sqlite::{self, header};
use crate::store::Remote;

/// Publishes the working copy of `slot`, whose BLAKE3 is `hash`, over the
/// version it was pulled from, and records the result in the slot state.
///
/// The commit token is saved in the state before the upload starts, so that
/// if the process dies with the upload in flight, the next session can tell
/// from the remote lineage whether it landed.
pub(crate) async fn publish_slot(
    slot: &mut Slot,
    remote: &Remote,
    layout: &dyn Layout,
    mode: WriteMode,
    hash: blake3::Hash,
    progress: Option<&ProgressFn>,
) -> Result<()> {
    let db = slot.db_path();
    let len = std::fs::metadata(&db).map_err(Error::io("reading", &db))?.len();
    header::check(&sqlite::read_head(&db, 100)?, len).map_err(|problem| {
        Error::InvalidState(format!(
            "the working copy {} is not a sound SQLite database ({problem:?}); it was not published",
            db.display()
        ))
    })?;
    let token = format!("{:016x}", fastrand::u64(..));
    slot.state.publishing = Some(token.clone());
    slot.save()?;
    let result = layout
        .publish(remote, &db, slot.state.version.as_ref(), mode, &token, progress)
        .await;
    match result {
        Ok(published) => {
            record(slot, published, hash);
            slot.save()
        }
        Err(e @ Error::Conflict { .. }) => {
            slot.state.publishing = None;
            slot.save()?;
            Err(e)
        }
        // The outcome of anything else is unknown: keep the token so the
        // next attempt can find out from the remote.
        Err(e) => Err(e),
    }
}

/// Records a publish that landed.
pub(crate) fn record(slot: &mut Slot, published: Published, hash: blake3::Hash) {
    slot.state.version = match published {
        Published::Current(version) => Some(version),
        // Someone published on top of ours: forget the version, so that the
        // next pull downloads the newest one whatever it is.
        Published::Superseded => None,
    };
    slot.state.pulled_hash = Some(hash.to_hex().to_string());
    slot.state.publishing = None;
}
