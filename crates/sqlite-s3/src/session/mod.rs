//! The session: a local working copy of a remote database, kept in step with
//! the remote by pulls and conditional publishes.
//!
//! Life of a session:
//! 1. **Open**: lock a slot of the cache, settle whatever an earlier session
//!    left unpublished there (see `recovery.rs`), pull (one conditional GET when
//!    the copy is warm), open a SQLite connection on the working copy.
//! 2. **Work**: the application uses the [`rusqlite::Connection`].
//! 3. **Publish**: if the file changed since the pull, upload it with a
//!    condition on the pulled version; a failed condition is
//!    [`Error::Conflict`] and the remote is untouched.
//! 4. **Close**: publish, then mark the slot clean and unlock it.
//!
//! [`Session::transaction`] wraps 2-3 in a loop that re-pulls and re-runs the
//! closure on conflict.

mod publish;
mod recovery;
mod shared;
mod transaction;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use rusqlite::Connection;

use crate::atomic_file;
use crate::cache::state::{Installing, Status};
use crate::cache::{self, Slot};
use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::layout::versioned::ChunkCache;
use crate::layout::{self, Pulled, RemoteVersion, Version, VersionInfo};
use crate::location::DatabaseUrl;
use crate::options::{LayoutKind, Options, resolve_cache_dir};
use crate::sqlite::{self, header};
use crate::store::Remote;

/// What a publish did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishOutcome {
    /// The working copy had not changed since it was pulled: nothing was sent.
    Unchanged,
    /// A new version was published.
    Published {
        /// Bytes uploaded.
        bytes: u64,
    },
}

/// What a refresh did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// The working copy already held the newest version.
    Unchanged,
    /// A newer version was downloaded.
    Downloaded {
        /// Bytes downloaded.
        bytes: u64,
    },
    /// There is no database at the key: the working copy is empty.
    Absent,
}

/// A session on one remote database. See the module docs.
///
/// Dropping a session without [`close`](Session::close) publishes nothing:
/// committed changes stay in the working copy, a warning is logged, and the
/// next session that opens this database publishes them (or reports why it
/// cannot).
#[derive(Debug)]
pub struct Session {
    remote: Remote,
    options: Options,
    slot: Slot,
    conn: Option<Connection>,
    /// Set by the commit hook when the connection commits a write.
    wrote: Arc<AtomicBool>,
    /// When the working copy was last known to match the remote.
    last_sync: Instant,
    /// A shared working copy: `PRAGMA data_version` when it last matched
    /// the remote (see `shared.rs`).
    synced_data_version: std::sync::Mutex<Option<i64>>,
    closed: bool,
}

impl Session {
    /// Opens the database a URL names (`s3://`, `file://`, `memory://`).
    ///
    /// # Failure
    /// Any [`Error`] of [`Remote::connect`] and [`Session::open_remote`].
    pub async fn open(url: &str, options: &Options) -> Result<Self> {
        Self::open_remote(Remote::connect(url, &options.store)?, options).await
    }

    /// Opens a database in a store built elsewhere.
    ///
    /// # Failure
    /// [`Error::BucketNotFound`], [`Error::AccessDenied`],
    /// [`Error::Unavailable`] when the store cannot be used;
    /// [`Error::NotADatabase`] or [`Error::Corrupt`] when the object is not a
    /// sound SQLite database (the working copy is then left as it was);
    /// [`Error::UnpublishedChanges`] when an earlier session left changes
    /// that cannot be published; [`Error::Busy`] when every slot is taken.
    pub async fn open_remote(remote: Remote, options: &Options) -> Result<Self> {
        let cache_dir = resolve_cache_dir(options.cache_dir.as_deref());
        let remote = remote.remember_store_checks_in(&cache_dir);
        let db_dir = cache::database_dir(&cache_dir, &remote);
        cache::adopt_legacy(&cache_dir, &remote)?;
        let mut chosen = None;
        for index in 0..cache::slot::MAX_SLOTS {
            let Some(mut slot) = Slot::try_lock(&db_dir.join(format!("slot-{index}")))? else {
                continue;
            };
            slot.state.url = remote.url().to_string();
            match recovery::settle(&mut slot, &remote, options).await? {
                recovery::Settled::Clean => {
                    chosen = Some(slot);
                    break;
                }
                // Changes kept for later: use another working copy.
                recovery::Settled::Kept => continue,
            }
        }
        let slot = chosen.ok_or_else(|| Error::Busy {
            url: remote.url().to_string(),
            cache_dir: cache_dir.clone(),
        })?;
        let mut session = Session {
            remote,
            options: options.clone(),
            slot,
            conn: None,
            wrote: Arc::default(),
            last_sync: Instant::now(),
            synced_data_version: std::sync::Mutex::new(None),
            closed: false,
        };
        if !options.read_only {
            // Publish what sessions that died left in the other copies.
            for sibling in session.slot.siblings() {
                if let Some(mut other) = Slot::try_lock(&sibling)? {
                    recovery::settle(&mut other, &session.remote, &session.options).await?;
                }
            }
        }
        session.slot.state.status = Status::Open;
        session.slot.save()?;
        session.pull().await?;
        session.connect()?;
        Ok(session)
    }

    /// The SQLite connection on the working copy.
    ///
    /// # Panics
    /// When an earlier call failed to reopen the working copy (see
    /// [`Session::is_connected`]).
    pub fn connection(&self) -> &Connection {
        self.conn
            .as_ref()
            .expect("a session has a connection between operations")
    }

    /// The SQLite connection, for transactions.
    pub fn connection_mut(&mut self) -> &mut Connection {
        self.conn
            .as_mut()
            .expect("a session has a connection between operations")
    }

    /// The database URL.
    pub fn url(&self) -> &DatabaseUrl {
        self.remote.url()
    }

    /// The store and key of the database.
    pub fn remote(&self) -> &Remote {
        &self.remote
    }

    /// The working copy: an ordinary SQLite file.
    pub fn working_copy(&self) -> PathBuf {
        self.slot.db_path()
    }

    /// The layout of the database (for a database that does not exist yet,
    /// the one it will be created with).
    pub fn layout(&self) -> LayoutKind {
        self.slot.state.layout.unwrap_or(self.options.layout)
    }

    /// The remote version the working copy was pulled from or last published
    /// as (`None`: the database does not exist remotely yet).
    pub fn version(&self) -> Option<Version> {
        self.slot.state.version.as_ref().map(RemoteVersion::id)
    }

    /// What `sqlite-s3 log` shows of [`Session::version`], for a database
    /// in the versioned layout: when it was committed, its size, its writer.
    pub fn version_info(&self) -> Option<VersionInfo> {
        self.slot.state.version.as_ref().and_then(RemoteVersion::info)
    }

    /// The remote version the working copy was pulled from or last
    /// published as, as the layout knows it.
    pub(crate) fn remote_version(&self) -> Option<&RemoteVersion> {
        self.slot.state.version.as_ref()
    }

    /// Whether a publish whose outcome is not known yet is recorded: its
    /// changes may still land, so they must not be dropped or run again.
    pub(crate) fn has_publish_in_flight(&self) -> bool {
        self.slot.state.publishing.is_some()
    }

    /// Whether the working copy differs from what was pulled or published.
    pub fn has_unpublished_changes(&self) -> Result<bool> {
        if !self.options.shared {
            sqlite::checkpoint(self.connection(), &self.remote.url().to_string())?;
            let db = self.slot.db_path();
            let (hash, _) = sqlite::hash_file(&db)?;
            return self.slot.needs_publishing(&db, hash);
        }
        let Some(snapshot) = self.snapshot()? else {
            return Ok(false);
        };
        let answer =
            sqlite::hash_file(&snapshot.path).and_then(|(hash, _)| self.slot.needs_publishing(&snapshot.path, hash));
        sqlite::remove_database(&snapshot.path)?;
        if let Ok(false) = answer
            && self.slot.state.publishing.is_none()
            && !self.wrote.load(Ordering::SeqCst)
        {
            // The same content as the remote's: a sync point.
            self.set_synced(Some(snapshot.data_version));
        }
        answer
    }

    /// Brings the working copy up to date: one conditional GET, and a download
    /// only when the remote changed.
    ///
    /// # Failure
    /// [`Error::Misuse`] when the working copy has unpublished changes
    /// (publish or discard them first), and the errors of [`Session::open_remote`].
    pub async fn refresh(&mut self) -> Result<RefreshOutcome> {
        if self.has_unpublished_changes()? {
            return Err(Error::Misuse {
                url: self.remote.url().to_string(),
                reason: "the working copy has unpublished changes: publish or discard them before refreshing".into(),
            });
        }
        self.pull().await
    }

    /// Publishes the working copy if it changed since it was pulled: one
    /// conditional PUT. A read-only session sends nothing.
    ///
    /// # Failure
    /// [`Error::Conflict`] when someone else published first and none of
    /// these changes landed (nor ever will): the changes stay in the working
    /// copy (publish them with
    /// [`WriteMode::LastWriterWins`](crate::WriteMode::LastWriterWins) or
    /// [`discard`](Session::discard) them). [`Error::OutcomeUnknown`] when
    /// whether they landed cannot be told: they are kept, and the next
    /// publish or open finds out. [`Error::WorkingCopyDamaged`] when the
    /// working copy failed its check: nothing of it was sent, it was set
    /// aside, and the session goes on from the remote version.
    /// [`Error::Misuse`] when a transaction is open, or the session is
    /// read-only; [`Error::TryAgain`] when another connection keeps the
    /// working copy locked, or it changed while it was being published.
    /// Store errors as for [`Session::open_remote`]: this try did not land
    /// (an earlier one whose answer was lost may still be recorded, and is
    /// settled by the next publish).
    pub async fn publish(&mut self) -> Result<PublishOutcome> {
        self.publish_guarded(|| async { Ok(()) }).await
    }

    /// [`Session::publish`], calling `guard` once it is known that something
    /// will be uploaded, just before: its error stops the publish (a lease
    /// that is no longer held).
    pub(crate) async fn publish_guarded<F, Fut>(&mut self, guard: F) -> Result<PublishOutcome>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        let (file, data_version) = if self.options.shared {
            match self.snapshot()? {
                Some(snapshot) => (snapshot.path, Some(snapshot.data_version)),
                None => return Ok(PublishOutcome::Unchanged),
            }
        } else {
            sqlite::checkpoint(self.connection(), &self.remote.url().to_string())?;
            (self.slot.db_path(), None)
        };
        let published = self.publish_file(&file, guard).await;
        if data_version.is_some() {
            sqlite::remove_database(&file)?;
        }
        let (uploaded, bytes) = published?;
        self.wrote.store(false, Ordering::SeqCst);
        if data_version.is_some() {
            self.set_synced(data_version);
        }
        if !uploaded {
            return Ok(PublishOutcome::Unchanged);
        }
        self.last_sync = Instant::now();
        Ok(PublishOutcome::Published { bytes })
    }

    /// Publishes `file` (the working copy, or a snapshot of it); returns
    /// whether anything was uploaded, and the file's size.
    async fn publish_file<F, Fut>(&mut self, file: &Path, guard: F) -> Result<(bool, u64)>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        let (hash, bytes) = sqlite::hash_file(file)?;
        if self.slot.state.publishing.is_none() && !self.slot.needs_publishing(file, hash)? {
            return Ok((false, bytes));
        }
        if self.options.read_only {
            return Err(Error::Misuse {
                url: self.remote.url().to_string(),
                reason: "this session is read-only, but its working copy holds changes: they were not published".into(),
            });
        }
        guard().await?;
        let layout = self.layout();
        self.slot.state.layout = Some(layout);
        let published = publish::publish_slot(
            &mut self.slot,
            &self.remote,
            layout::for_kind(layout, None).as_ref(),
            self.options.write_mode,
            file,
            hash,
            self.options.progress.as_ref(),
        )
        .await;
        match published {
            Ok(uploaded) => Ok((uploaded, bytes)),
            Err(Error::WorkingCopyDamaged { url, reason, .. }) => {
                // Nothing of this publish was sent. Earlier ones of changes
                // in the copy may be recorded: settle them first, so that
                // what is set aside is known to be in the remote, or not.
                let layout = layout::for_kind(self.layout(), None);
                let earlier = publish::resolve_in_flight(&mut self.slot, &self.remote, layout.as_ref()).await?;
                let fate =
                    recovery::tries_before_setting_aside(&mut self.slot, &self.remote, layout.as_ref(), earlier, true)
                        .await?;
                let reason = format!("{reason}{}", fate.note());
                let path = self.set_aside_damaged(file, &reason).await?;
                if fate == recovery::TriesFate::Unknown {
                    return Err(publish::earlier_unknown(
                        &self.remote,
                        format!("the copy holding them was damaged and set aside as {}", path.display()),
                    ));
                }
                Err(Error::WorkingCopyDamaged { url, path, reason })
            }
            Err(e) => Err(e),
        }
    }

    /// Sets a damaged working copy aside (nothing of it was published) and
    /// goes on from the newest remote version. `candidate` is what failed
    /// the check: the working copy, or a snapshot of a shared one. Returns
    /// where it went.
    async fn set_aside_damaged(&mut self, candidate: &Path, reason: &str) -> Result<PathBuf> {
        let folder = if self.options.shared {
            // Other connections hold the working copy: keep the snapshot
            // that showed the damage, and write the remote version in.
            let folder = self.slot.set_aside(&[candidate.to_path_buf()], reason)?;
            self.discard_shared().await?;
            folder
        } else {
            self.disconnect()?;
            let folder = self.slot.set_aside_damaged(reason)?;
            self.slot.state.status = Status::Open;
            self.slot.save()?;
            let pulled = self.pull().await;
            self.connect()?;
            pulled?;
            folder
        };
        tracing::warn!(
            "the working copy of {} was damaged ({reason}) and nothing of it was published; it was set aside in {}",
            self.remote.url(),
            folder.display()
        );
        Ok(folder)
    }

    /// Publishes what changed, then pulls the newest version: afterwards the
    /// working copy and the remote agree.
    ///
    /// # Failure
    /// The errors of [`Session::publish`] (nothing is pulled then) and of a pull.
    pub async fn sync(&mut self) -> Result<(PublishOutcome, RefreshOutcome)> {
        let published = self.publish().await?;
        let refreshed = self.pull().await?;
        Ok((published, refreshed))
    }

    /// Throws away unpublished changes and pulls the newest version (a full
    /// download). A publish of them whose outcome is unknown is fenced off
    /// first, so that it cannot land later (a warning says when that cannot
    /// be made sure of, or when it had landed).
    ///
    /// # Failure
    /// The errors of a pull. The working copy is then an empty database that
    /// is not taken for any remote version: publishing it could only create
    /// a database that does not exist yet.
    pub async fn discard(&mut self) -> Result<RefreshOutcome> {
        self.settle_before_discarding().await;
        if self.options.shared {
            return self.discard_shared().await;
        }
        self.disconnect()?;
        let outcome = self.discard_disconnected().await;
        self.wrote.store(false, Ordering::SeqCst);
        let connected = self.connect();
        let outcome = outcome?;
        connected?;
        Ok(outcome)
    }

    /// A publish of the changes being discarded may still be on its way:
    /// make sure it never lands (a fence), so that what is dropped is not
    /// applied behind the caller's back. When that cannot be made sure of,
    /// say so; the discard goes on.
    async fn settle_before_discarding(&mut self) {
        if self.slot.state.publishing.is_none() || self.options.read_only {
            return;
        }
        let layout = layout::for_kind(self.layout(), None);
        let fate = match publish::resolve_in_flight(&mut self.slot, &self.remote, layout.as_ref()).await {
            Ok(earlier) => {
                recovery::tries_before_setting_aside(&mut self.slot, &self.remote, layout.as_ref(), earlier, true).await
            }
            Err(e) => Err(e),
        };
        match fate {
            Ok(recovery::TriesFate::Settled) => {}
            Ok(recovery::TriesFate::Landed) => tracing::warn!(
                "an earlier publish of the changes discarded from {} had landed: the remote holds them",
                self.remote.url()
            ),
            Ok(recovery::TriesFate::Unknown) | Err(_) => tracing::warn!(
                "an earlier publish of the changes discarded from {} may still land: look at the remote before \
                 making them again",
                self.remote.url()
            ),
        }
    }

    async fn discard_disconnected(&mut self) -> Result<RefreshOutcome> {
        // Forget the version before anything else: whatever happens next, the
        // discarded changes are never taken for changes to publish on it.
        sqlite::remove_database(&self.slot.db_path())?;
        let state = &mut self.slot.state;
        (state.version, state.pulled_hash, state.publishing, state.installing) = (None, None, None, None);
        self.slot.save()?;
        match self.pull().await {
            Ok(outcome) => Ok(outcome),
            Err(e) => {
                self.install(None, None)?;
                Err(e)
            }
        }
    }

    /// Publishes what changed, then releases the working copy.
    ///
    /// # Failure
    /// The errors of [`Session::publish`]; the changes then stay in the
    /// working copy, and the next session publishes them or reports why not.
    pub async fn close(mut self) -> Result<()> {
        self.publish().await?;
        self.disconnect()?;
        self.slot.state.status = Status::Clean;
        // What the working copy is now: the pulled (or published) version.
        // The next session proves it unchanged by this, without hashing.
        self.slot.state.fingerprint = crate::cache::state::Fingerprint::of(&self.slot.db_path())?;
        self.slot.save()?;
        self.closed = true;
        Ok(())
    }

    /// Downloads the newest version unless the working copy holds it. The
    /// working copy must have no unpublished changes.
    async fn pull(&mut self) -> Result<RefreshOutcome> {
        self.pull_over(false).await
    }

    /// [`Session::pull`]; with `overwrite`, a shared working copy is
    /// replaced even if other connections committed to it since the last
    /// sync (a discard).
    async fn pull_over(&mut self, overwrite: bool) -> Result<RefreshOutcome> {
        let db = self.slot.db_path();
        let have_copy = db.exists() && self.slot.state.pulled_hash.is_some();
        let known = if have_copy {
            self.slot.state.version.clone()
        } else {
            None
        };
        let dest = self.slot.download_path();
        let progress = self.options.progress.as_ref();
        // Other connections' commits may sit in the WAL of a shared copy
        // that is open: it is read through SQLite then.
        let base = have_copy.then(|| match self.options.shared && self.conn.is_some() {
            true => layout::Base::Live(db.as_path()),
            false => layout::Base::File(db.as_path()),
        });
        let cache = self.chunk_cache();
        // Read-only work, and work that keeps what others left (the shell),
        // does not finish another process's half-done move either.
        let hands_off = self.options.read_only || self.options.pending == crate::options::PendingChanges::Keep;
        let pulled = layout::pull_detecting(
            hands_off,
            self.slot.state.layout,
            Some(&cache),
            &self.remote,
            known.as_ref(),
            base,
            &dest,
            progress,
        )
        .await;
        let pulled = pulled.map(|(kind, pulled)| {
            if kind.is_some() {
                self.slot.state.layout = kind;
            }
            pulled
        });
        let outcome = match pulled {
            Err(e) => {
                sqlite::remove_database(&dest)?;
                return Err(e);
            }
            Ok(Pulled::Unchanged) => RefreshOutcome::Unchanged,
            // `pull_detecting` follows moves; this is only for completeness.
            Ok(Pulled::Moved { .. }) => {
                return Err(Error::TryAgain {
                    url: self.remote.url().to_string(),
                    reason: "it is being converted between layouts".into(),
                });
            }
            Ok(Pulled::Absent) => {
                if !have_copy || self.slot.state.version.is_some() {
                    self.replace_working_copy(None, None, overwrite)?;
                }
                RefreshOutcome::Absent
            }
            Ok(Pulled::Downloaded { version, hash, bytes }) => {
                if let Err(e) = check_download(self.remote.url().to_string(), &dest).await {
                    sqlite::remove_database(&dest)?;
                    return Err(e);
                }
                self.replace_working_copy(Some(&dest), Some((version, hash)), overwrite)?;
                RefreshOutcome::Downloaded { bytes }
            }
        };
        self.last_sync = Instant::now();
        Ok(outcome)
    }

    /// The chunks this machine has downloaded (versioned layout). Chunks
    /// are named by their content, so every database in the cache directory
    /// shares one cache: a branch finds its parent's chunks there.
    fn chunk_cache(&self) -> ChunkCache {
        let dir = self.options.resolved_cache_dir().join("chunks");
        ChunkCache::new(dir, self.options.chunk_cache_bytes)
    }

    /// Puts a checked download (or, with `None`, an empty database) in place
    /// of the working copy, and records what it is. The connection, if open,
    /// is reopened on the new file, whatever happens.
    fn replace_working_copy(
        &mut self,
        download: Option<&Path>,
        pulled: Option<(RemoteVersion, ContentHash)>,
        overwrite: bool,
    ) -> Result<()> {
        if self.options.shared && self.conn.is_some() {
            return self.restore_working_copy(download, pulled, overwrite);
        }
        let reconnect = self.conn.is_some();
        self.disconnect()?;
        let installed = self.install(download, pulled);
        if reconnect {
            self.connect()?;
        }
        installed
    }

    /// The body of [`Session::replace_working_copy`], with no connection open.
    fn install(&mut self, download: Option<&Path>, pulled: Option<(RemoteVersion, ContentHash)>) -> Result<()> {
        let db = self.slot.db_path();
        let (source, version, hash) = self.announce_install(download, pulled)?;
        for side in sqlite::side_files(&db) {
            sqlite::remove_file(&side)?;
        }
        atomic_file::install(&source, &db)?;
        let state = &mut self.slot.state;
        (state.version, state.pulled_hash) = (version, Some(hash));
        (state.installing, state.publishing) = (None, None);
        self.slot.save()
    }

    /// The file to install (`download`, or a new empty file) and what it
    /// is, recorded in the slot state before anything is replaced, so that a
    /// crash before the state says it is installed is not taken for local
    /// changes.
    fn announce_install(
        &mut self,
        download: Option<&Path>,
        pulled: Option<(RemoteVersion, ContentHash)>,
    ) -> Result<(PathBuf, Option<RemoteVersion>, ContentHash)> {
        let (source, version, hash) = match (download, pulled) {
            (Some(file), Some((version, hash))) => (file.to_path_buf(), Some(version), hash),
            _ => {
                let empty = self.slot.download_path();
                std::fs::write(&empty, b"").map_err(Error::io("creating", &empty))?;
                (empty, None, ContentHash::of(b""))
            }
        };
        self.slot.state.installing = Some(Installing {
            version: version.clone(),
            hash,
        });
        self.slot.save()?;
        Ok((source, version, hash))
    }

    fn connect(&mut self) -> Result<()> {
        let conn = sqlite::open(&self.slot.db_path())?;
        if self.options.shared {
            // WAL: readers and the snapshot never block writers, and a
            // refresh can check for their commits while it holds the lock.
            let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(Error::LocalFile {
                    path: self.slot.db_path(),
                    reason: format!(
                        "it could not be switched to WAL mode (it is in {mode} mode), which a working copy shared \
                         with other connections needs; close the other connections on it (or keep the cache \
                         directory on a local disk) and open the database again"
                    ),
                });
            }
        }
        let wrote = self.wrote.clone();
        conn.commit_hook(Some(move || {
            wrote.store(true, Ordering::SeqCst);
            false
        }));
        self.conn = Some(conn);
        self.mark_synced()
    }

    fn disconnect(&mut self) -> Result<()> {
        if let Some(conn) = self.conn.take()
            && let Err((conn, e)) = conn.close()
        {
            self.conn = Some(conn);
            return Err(Error::Sql(e));
        }
        Ok(())
    }

    /// Whether the session has its SQLite connection. It loses it only when
    /// reopening the working copy failed, which the failing call reported;
    /// [`Session::connection`] then panics, and the session should be dropped.
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.closed && self.wrote.load(Ordering::SeqCst) {
            tracing::warn!(
                "a session on {} was dropped with unpublished changes; they stay in {} \
                 and the next open of this database publishes them or says why it cannot",
                self.remote.url(),
                self.slot.db_path().display()
            );
        }
    }
}

/// Checks that a download is a sound SQLite database.
async fn check_download(url: String, dest: &Path) -> Result<()> {
    let bytes = std::fs::metadata(dest).map_err(Error::io("reading", dest))?.len();
    let head = sqlite::read_head(dest, 100)?;
    header::check(&head, bytes).map_err(|problem| match problem {
        header::Problem::NotADatabase(reason) => Error::NotADatabase {
            url: url.clone(),
            reason,
        },
        header::Problem::Corrupt(reason) => Error::Corrupt {
            url: url.clone(),
            reason,
        },
    })?;
    if bytes > 0 {
        let path = dest.to_path_buf();
        tokio::task::spawn_blocking(move || sqlite::quick_check(&path))
            .await
            .expect("quick_check does not panic")
            .map_err(|reason| Error::Corrupt { url, reason })?;
    }
    Ok(())
}

/// Sessions move between threads: their futures must be `Send`, so that
/// they can run in `tokio::spawn`, axum handlers and Lambda functions. This
/// function is never called; it fails to compile if one is not.
#[allow(dead_code)]
fn futures_are_send(session: &mut Session, owned: Session, options: &Options) {
    fn send<T: Send>(_: T) {}
    send(Session::open("memory://x/y", options));
    send(session.publish());
    send(session.refresh());
    send(session.sync());
    send(session.discard());
    send(session.transaction(|_| Ok(())));
    send(owned.close());
}
