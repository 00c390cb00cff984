//! Changes left behind: a session that was dropped without closing, or whose
//! process died, leaves its slot marked open. The next session to lock that
//! slot settles it here, before pulling:
//!
//! 1. SQLite opens the working copy, which rolls back a half-done
//!    transaction (hot journal) or replays the WAL, and folds the WAL in.
//! 2. If the file still hashes to what was pulled, there is nothing to do.
//!    If a download was being installed and the file is that download, the
//!    install is completed.
//! 3. If a publish was in flight and the remote lineage holds its token, it
//!    landed: what it uploaded becomes the pulled version.
//! 4. If the file still differs, there are unpublished committed changes. With
//!    [`PendingChanges::Publish`] (the default) they are published over the
//!    version they were made on, always conditionally (even when the
//!    session asked for last-writer-wins, an old copy never overwrites); if the remote moved on since, publishing
//!    would overwrite someone's work, so the open fails with
//!    [`Error::UnpublishedChanges`] and the file stays where it is. With
//!    [`PendingChanges::Discard`] the file is moved to the `rescued` folder.

use crate::cache::{Slot, state::Status};
use crate::error::{Error, Result};
use crate::layout::Layout;
use crate::options::{Options, PendingChanges, WriteMode};
use crate::sqlite;
use crate::store::Remote;

use super::{publish, remove_database};

/// Settles a slot an earlier session left open. See the module docs.
pub(crate) async fn settle(slot: &mut Slot, remote: &Remote, options: &Options) -> Result<()> {
    let layout = slot.state.layout.unwrap_or(options.layout).layout();
    let layout = layout.as_ref();
    if slot.state.status == Status::Clean {
        return Ok(());
    }
    let db = slot.db_path();
    if db.exists() {
        let conn = sqlite::open(&db)?;
        sqlite::checkpoint(&conn)?;
        conn.close().map_err(|(_, e)| Error::Sql(e))?;
        let (hash, _) = sqlite::hash_file(&db)?;
        let hex = hash.to_hex().to_string();
        if let Some(installing) = slot.state.installing.take()
            && installing.hash == hex
        {
            slot.state.version = installing.version;
            slot.state.pulled_hash = Some(installing.hash);
        }
        publish::resolve_in_flight(slot, remote, layout).await?;
        if super::needs_publishing(slot, &db, hash)? {
            handle_pending(slot, remote, layout, options, hash).await?;
        }
    }
    slot.state.status = Status::Clean;
    slot.state.publishing = None;
    slot.state.installing = None;
    slot.save()
}

async fn handle_pending(
    slot: &mut Slot,
    remote: &Remote,
    layout: &dyn Layout,
    options: &Options,
    hash: blake3::Hash,
) -> Result<()> {
    let db = slot.db_path();
    match options.pending {
        PendingChanges::Discard => {
            let rescue = slot.rescue_dir();
            std::fs::create_dir_all(&rescue).map_err(Error::io("creating", &rescue))?;
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis();
            let target = rescue.join(format!("{stamp}-{}.sqlite", fastrand::u32(..)));
            std::fs::rename(&db, &target).map_err(Error::io("moving aside", &db))?;
            remove_database(&db)?;
            slot.state.version = None;
            slot.state.pulled_hash = None;
            tracing::warn!(
                "unpublished changes to {} were discarded; they are kept in {}",
                remote.url(),
                target.display()
            );
            Ok(())
        }
        // Always conditional: an old copy never overwrites newer work, even
        // for a session that asked for last-writer-wins.
        PendingChanges::Publish => match publish::publish_slot(
            slot,
            remote,
            layout,
            WriteMode::Conditional,
            &db,
            hash,
            options.progress.as_ref(),
        )
        .await
        {
            Ok(_) => {
                tracing::info!("published changes to {} left by an earlier session", remote.url());
                Ok(())
            }
            Err(Error::Conflict { .. }) => Err(Error::UnpublishedChanges {
                url: remote.url().to_string(),
                path: db,
                reason: "the remote changed since they were made, so publishing them would \
                             overwrite another writer's changes"
                    .into(),
            }),
            Err(e) => Err(e),
        },
    }
}
