//! A working copy shared with other connections
//! ([`Options::shared_working_copy`](crate::Options::shared_working_copy)):
//! an sqlx pool or a Diesel connection reads and writes it while the session
//! lives, so the session never renames, deletes or uploads the file itself.
//!
//! - **Publish** copies what is committed into a snapshot with SQLite's
//!   backup API (writers wait only for the local copy, not the upload) and
//!   publishes the snapshot. Whether anything was committed since the last
//!   sync is told by `PRAGMA data_version`, which changes whenever another
//!   connection commits; a publish that finds no commit sends nothing and
//!   copies nothing.
//! - **Refresh** and **discard** write the downloaded version into the
//!   working copy through the backup API, in one transaction.
//! - Snapshots, downloads and the working copy are compared by content hash
//!   (`sqlite::content`), which leaves out the header fields a backup
//!   rewrites; so after a crash the next session sees that a published
//!   working copy has nothing left to publish.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use rusqlite::Connection;

use super::Session;
use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::layout::RemoteVersion;
use crate::sqlite;

/// A snapshot made to be published.
pub(super) struct Snapshot {
    /// The file.
    pub path: PathBuf,
    /// `PRAGMA data_version` read just before it was made: a later value
    /// that differs means a commit the snapshot may not hold.
    pub data_version: i64,
}

impl Session {
    /// A snapshot of what is committed, or `None` when nothing was committed
    /// since the last sync and no publish is in flight.
    pub(super) fn snapshot(&self) -> Result<Option<Snapshot>> {
        let conn = self.connection();
        if !conn.is_autocommit() {
            return Err(Error::Misuse {
                url: self.remote.url().to_string(),
                reason: "a transaction is still open on the session's connection: commit or roll it back before \
                         publishing"
                    .into(),
            });
        }
        let data_version = data_version(conn)?;
        let unchanged = self.synced() == Some(data_version) && !self.wrote.load(Ordering::SeqCst);
        if unchanged && self.slot.state.publishing.is_none() {
            return Ok(None);
        }
        let path = self.slot.snapshot_path();
        sqlite::snapshot(conn, &path)?;
        Ok(Some(Snapshot { path, data_version }))
    }

    /// Writes `download` (or, with `None`, an empty database) into the shared
    /// working copy, and records what it is. Unless `overwrite`, refuses
    /// when another connection committed since the last sync: checked while
    /// the restore holds the write lock, so no commit can slip in and be
    /// overwritten.
    pub(super) fn restore_working_copy(
        &mut self,
        download: Option<&Path>,
        pulled: Option<(RemoteVersion, ContentHash)>,
        overwrite: bool,
    ) -> Result<()> {
        let (source, version, hash) = self.announce_install(download, pulled)?;
        let db = self.slot.db_path();
        let synced = self.synced();
        let url = self.remote.url().to_string();
        let conn = self.connection();
        let restored = sqlite::restore_snapshot(&db, &source, || {
            if overwrite || (synced.is_some() && synced == Some(data_version(conn)?)) {
                Ok(())
            } else {
                Err(Error::Misuse {
                    url,
                    reason: format!(
                        "another connection committed to the working copy {} while it was being refreshed: \
                         publish (or discard) first, then refresh",
                        db.display()
                    ),
                })
            }
        });
        sqlite::remove_database(&source)?;
        if let Err(e) = restored {
            self.slot.state.installing = None;
            self.slot.save()?;
            return Err(e);
        }
        let state = &mut self.slot.state;
        (state.version, state.pulled_hash) = (version, Some(hash));
        (state.installing, state.publishing) = (None, None);
        self.slot.save()?;
        // The restore was another connection's commit, and one of theirs may
        // follow it before a new value could be read: the next publish
        // compares content instead.
        self.set_synced(None);
        self.wrote.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// `PRAGMA data_version` when the shared copy last matched the remote,
    /// if known.
    pub(super) fn synced(&self) -> Option<i64> {
        *self.synced_data_version.lock().expect("sync state")
    }

    pub(super) fn set_synced(&self, data_version: Option<i64>) {
        *self.synced_data_version.lock().expect("sync state") = data_version;
    }

    /// Notes that the working copy now matches the remote.
    pub(super) fn mark_synced(&mut self) -> Result<()> {
        if self.options.shared
            && let Some(conn) = &self.conn
        {
            self.set_synced(Some(data_version(conn)?));
        }
        self.wrote.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// [`Session::discard`] for a shared working copy, which must not be
    /// removed under the connections that use it: the newest version is
    /// downloaded whole and written into it.
    pub(super) async fn discard_shared(&mut self) -> Result<super::RefreshOutcome> {
        let state = &mut self.slot.state;
        (state.version, state.pulled_hash, state.publishing, state.installing) = (None, None, None, None);
        self.slot.save()?;
        let outcome = self.pull_over(true).await;
        // The changes are gone from what gets published even if the pull
        // failed: with no version recorded, publishing can only create a
        // database that does not exist, which fails if it does.
        self.set_synced(None);
        self.wrote.store(false, Ordering::SeqCst);
        outcome
    }
}

/// `PRAGMA data_version` of `conn`.
fn data_version(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("PRAGMA data_version", [], |r| r.get(0))?)
}
