//! What an earlier session left in a slot, settled before anything else.
//!
//! The working copy is evidence, never truth: nothing in it is published
//! unless it is proven to be the pulled version plus local commits, and a
//! copy that is damaged is set aside (under `damaged/`, named in a warning)
//! while the session goes on from the remote.
//!
//! - A slot whose state file does not parse: what its copy was pulled
//!   from is unknown, so the copy is set aside.
//! - A slot closed cleanly: its copy must be exactly what was pulled. An
//!   unchanged file fingerprint proves it at no cost; otherwise the content
//!   hash must match. Anything else changed it outside any session.
//! - A slot left open (a session dropped, a process killed):
//!   1. SQLite opens the copy, which rolls back a half-done transaction or
//!      replays the WAL; the WAL is folded in; `quick_check` must pass. A
//!      copy that fails is set aside.
//!   2. A download that was being installed, and is the file, is adopted.
//!   3. Earlier publishes whose outcome is unknown are asked about, by
//!      reading only: one that landed becomes the pulled version.
//!   4. What still differs from the pulled version is pending, and
//!      [`PendingChanges`] decides: publish it over the version it was made
//!      on (always conditionally), set it aside, or keep it for later
//!      (read-only work, which never writes to the store).

use std::path::{Path, PathBuf};

use crate::cache::Slot;
use crate::cache::state::{Fingerprint, Status};
use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::layout::{Landed, Layout};
use crate::options::{Options, PendingChanges, WriteMode};
use crate::sqlite::{self, header};
use crate::store::Remote;

use super::publish::{self, Earlier};

/// How a slot was left.
#[derive(Debug)]
pub(crate) enum Settled {
    /// Nothing pending: the slot may be used.
    Clean,
    /// Unpublished changes are kept in it for later (read-only work).
    Kept,
}

/// Settles a slot an earlier session left. See the module docs.
pub(crate) async fn settle(slot: &mut Slot, remote: &Remote, options: &Options) -> Result<Settled> {
    if slot.state.unreadable {
        let folder =
            slot.set_aside_damaged("its state.json did not parse, so what the copy was pulled from is unknown")?;
        warn_set_aside(remote, &folder, "its state file is unreadable");
        return Ok(Settled::Clean);
    }
    if slot.state.status == Status::Clean {
        verify_clean(slot, remote).await?;
        return Ok(Settled::Clean);
    }
    let layout = crate::layout::for_kind(slot.state.layout.unwrap_or(options.layout), None);
    let layout = layout.as_ref();
    let db = slot.db_path();
    if !db.exists() {
        for side in sqlite::side_files(&db) {
            sqlite::remove_file(&side)?;
        }
        return finish(slot);
    }
    let examined = examine(&db, slot.state.version.is_some()).await?;
    if let (Ok(hash), Some(installing)) = (&examined, slot.state.installing.take())
        && installing.hash == *hash
    {
        slot.state.version = installing.version;
        slot.state.pulled_hash = Some(installing.hash);
    }
    let earlier = publish::resolve_in_flight(slot, remote, layout).await?;
    let hash = match examined {
        Ok(hash) => hash,
        Err(reason) => {
            let fate = tries_before_setting_aside(slot, remote, layout, earlier, !options.read_only).await?;
            let note = fate.note();
            let folder = slot.set_aside_damaged(&format!("{reason}{note}"))?;
            warn_set_aside(remote, &folder, &format!("it is damaged ({reason}){note}"));
            return Ok(Settled::Clean);
        }
    };
    if !slot.needs_publishing(&db, hash)? {
        slot.state.publishing = None;
        return finish(slot);
    }
    let policy = match options.pending {
        PendingChanges::Publish if options.read_only => PendingChanges::Keep,
        policy => policy,
    };
    match policy {
        PendingChanges::Keep => {
            tracing::warn!(
                "unpublished changes to {url} from an earlier session are kept in {}: `sqlite-s3 sync {url}` \
                 publishes them, `sqlite-s3 sync {url} --discard-pending` sets them aside",
                db.display(),
                url = remote.url()
            );
            Ok(Settled::Kept)
        }
        PendingChanges::Discard => discard_pending(slot, remote, layout, options, earlier, hash).await,
        PendingChanges::Publish => publish_pending(slot, remote, layout, options, earlier, hash).await,
    }
}

/// What became of a copy's earlier publishes when the copy is set aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TriesFate {
    /// There were none, or none landed and none ever will.
    Settled,
    /// One landed: the remote holds those changes.
    Landed,
    /// One may still land, or may have: it cannot be told.
    Unknown,
}

impl TriesFate {
    /// What a message about the set-aside copy adds.
    pub(crate) fn note(self) -> &'static str {
        match self {
            TriesFate::Settled => "",
            TriesFate::Landed => "; an earlier publish of its changes had landed, so the remote holds them",
            TriesFate::Unknown => {
                "; an earlier publish of its changes may or may not land, so compare the remote with it before \
                 making them again"
            }
        }
    }
}

/// Before a copy is set aside while tries of a publish of it are recorded
/// (`earlier`, as [`publish::resolve_in_flight`] left them): a try that may
/// still land is fenced off when `writable`, so that what is set aside is
/// known not to be in the remote, or known to be.
pub(crate) async fn tries_before_setting_aside(
    slot: &mut Slot,
    remote: &Remote,
    layout: &dyn Layout,
    earlier: Earlier,
    writable: bool,
) -> Result<TriesFate> {
    Ok(match earlier {
        Earlier::None => TriesFate::Settled,
        Earlier::Landed => TriesFate::Landed,
        Earlier::Unknown(_) => TriesFate::Unknown,
        Earlier::Pending if !writable => TriesFate::Unknown,
        Earlier::Pending => {
            let in_flight = slot
                .state
                .publishing
                .clone()
                .expect("resolve_in_flight answers Pending only for tries it found recorded");
            let base = slot.state.version.clone();
            match layout.fence(remote, base.as_ref(), &in_flight).await {
                Ok(Landed::Never) => TriesFate::Settled,
                Ok(Landed::Yes(_)) => TriesFate::Landed,
                Ok(Landed::NotYet | Landed::Unknown(_)) => TriesFate::Unknown,
                Err(e) => {
                    tracing::debug!("fencing off an earlier publish of {} failed: {e}", remote.url());
                    TriesFate::Unknown
                }
            }
        }
    })
}

/// Marks the slot settled: nothing pending, no session in it.
fn finish(slot: &mut Slot) -> Result<Settled> {
    slot.state.status = Status::Clean;
    slot.state.installing = None;
    slot.state.fingerprint = Fingerprint::of(&slot.db_path())?;
    slot.save()?;
    Ok(Settled::Clean)
}

/// Proves that the copy of a slot closed cleanly is what was pulled, or
/// sets it aside.
async fn verify_clean(slot: &mut Slot, remote: &Remote) -> Result<()> {
    let db = slot.db_path();
    let side_content = sqlite::side_files(&db)
        .iter()
        .take(2)
        .any(|f| std::fs::metadata(f).is_ok_and(|m| m.len() > 0));
    if !db.exists() {
        for side in sqlite::side_files(&db) {
            sqlite::remove_file(&side)?;
        }
        return Ok(());
    }
    let fingerprint = Fingerprint::of(&db)?;
    if !side_content && slot.state.fingerprint.is_some() && slot.state.fingerprint == fingerprint {
        return Ok(());
    }
    let problem = match (&slot.state.pulled_hash, side_content) {
        (None, _) => Some("nothing records what it holds".to_string()),
        (Some(_), true) => {
            let path = db.clone();
            blocking(move || open_and_fold(&path)).await?
        }
        (Some(_), false) => None,
    };
    let problem = match problem {
        Some(problem) => Some(problem),
        None => {
            let (hash, _) = sqlite::hash_file(&db)?;
            (slot.state.pulled_hash != Some(hash))
                .then(|| "it is not the version it was pulled as: something changed it outside any session".to_string())
        }
    };
    match problem {
        None => {
            slot.state.fingerprint = Fingerprint::of(&db)?;
            slot.save()
        }
        Some(problem) => {
            let folder = slot.set_aside_damaged(&problem)?;
            warn_set_aside(remote, &folder, &problem);
            Ok(())
        }
    }
}

/// Opens a working copy with SQLite (rolling back a hot journal, replaying
/// the WAL), folds the WAL in, and checks it. Returns its content hash, or
/// what is wrong with it; an error when SQLite could not look at all.
async fn examine(db: &Path, has_version: bool) -> Result<std::result::Result<ContentHash, String>> {
    let path = db.to_path_buf();
    blocking(move || {
        if let Some(problem) = open_and_fold(&path)? {
            return Ok(Err(problem));
        }
        let len = std::fs::metadata(&path).map_err(Error::io("reading", &path))?.len();
        if len == 0 && has_version {
            return Ok(Err("it is empty, but was pulled from a version that is not".into()));
        }
        if len > 0 {
            if let Err(problem) = header::check(&sqlite::read_head(&path, 100)?, len) {
                return Ok(Err(problem.to_string()));
            }
            if let Some(problem) = sqlite::check_local(&path)? {
                return Ok(Err(problem));
            }
        }
        Ok(Ok(sqlite::hash_file(&path)?.0))
    })
    .await
}

/// Opens a copy with SQLite and folds its WAL in. `Some(what)` when SQLite
/// finds it damaged; an error when it could not look.
fn open_and_fold(db: &Path) -> Result<Option<String>> {
    let fold = || -> Result<()> {
        let conn = sqlite::open(db)?;
        sqlite::checkpoint(&conn, &db.display().to_string())?;
        conn.close().map_err(|(_, e)| Error::Sql(e))
    };
    match fold() {
        Ok(()) => Ok(None),
        Err(Error::Sql(e)) if sqlite::is_damage(&e) => Ok(Some(format!("SQLite cannot read it: {e}"))),
        Err(e) => Err(e),
    }
}

async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .expect("checks of a file do not panic")
}

fn warn_set_aside(remote: &Remote, folder: &Path, why: &str) {
    tracing::warn!(
        "the working copy of {} was set aside in {} because {why}; the newest remote version is used instead",
        remote.url(),
        folder.display()
    );
}

async fn publish_pending(
    slot: &mut Slot,
    remote: &Remote,
    layout: &dyn Layout,
    options: &Options,
    earlier: Earlier,
    hash: ContentHash,
) -> Result<Settled> {
    let db = slot.db_path();
    if let Earlier::Unknown(reason) = earlier {
        return Err(Error::UnpublishedChanges {
            url: remote.url().to_string(),
            path: db,
            reason: format!(
                "an earlier publish of them may or may not have landed ({reason}), so publishing them again \
                 could apply them twice: compare the remote with them first"
            ),
        });
    }
    // Always conditional: an old copy never overwrites newer work, even for
    // a session that asked for last-writer-wins.
    let published = publish::publish_slot(
        slot,
        remote,
        layout,
        WriteMode::Conditional,
        &db,
        hash,
        options.progress.as_ref(),
    )
    .await;
    match published {
        Ok(_) => {
            tracing::info!("published changes to {} left by an earlier session", remote.url());
            finish(slot)
        }
        Err(Error::Conflict { .. }) => Err(Error::UnpublishedChanges {
            url: remote.url().to_string(),
            path: db,
            reason: "the remote changed since they were made, so publishing them would overwrite another \
                     writer's changes"
                .into(),
        }),
        Err(Error::WorkingCopyDamaged { reason, .. }) => {
            let folder = slot.set_aside_damaged(&reason)?;
            warn_set_aside(remote, &folder, &format!("it is damaged ({reason})"));
            Ok(Settled::Clean)
        }
        Err(e) => Err(e),
    }
}

async fn discard_pending(
    slot: &mut Slot,
    remote: &Remote,
    layout: &dyn Layout,
    options: &Options,
    earlier: Earlier,
    hash: ContentHash,
) -> Result<Settled> {
    let db = slot.db_path();
    let mut note = "";
    match earlier {
        Earlier::Pending if options.read_only => {
            tracing::warn!(
                "unpublished changes to {} in {} were not set aside: an earlier publish of them may still land, \
                 and read-only work cannot make sure it will not (`sqlite-s3 sync --discard-pending` can)",
                remote.url(),
                db.display()
            );
            return Ok(Settled::Kept);
        }
        Earlier::Pending => {
            let in_flight = slot
                .state
                .publishing
                .clone()
                .expect("resolve_in_flight answers Pending only for tries it found recorded");
            let base = slot.state.version.clone();
            match layout.fence(remote, base.as_ref(), &in_flight).await? {
                Landed::Yes(found) => {
                    let attempt = &in_flight.attempts[found.attempt];
                    publish::record(slot, found.published, attempt.hash);
                    if attempt.hash == Some(hash) {
                        tracing::warn!(
                            "unpublished changes to {} were not set aside: their earlier publish landed, so the \
                             remote holds them",
                            remote.url()
                        );
                        return finish(slot);
                    }
                    note = " (an earlier publish of part of them landed: the remote holds that part)";
                }
                Landed::Never => slot.state.publishing = None,
                Landed::NotYet | Landed::Unknown(_) => {
                    note = " (an earlier publish of them may still land: compare the remote with them before \
                            making them again)"
                }
            }
        }
        Earlier::Unknown(_) => {
            note = " (an earlier publish of them may or may not have landed: compare the remote with them before \
                    making them again)"
        }
        Earlier::None | Earlier::Landed => {}
    }
    let target = rescue(slot, &db)?;
    tracing::warn!(
        "unpublished changes to {} were discarded{note}; they are kept in {}",
        remote.url(),
        target.display()
    );
    Ok(Settled::Clean)
}

/// Moves the working copy into `rescued/` and starts the slot afresh.
fn rescue(slot: &mut Slot, db: &Path) -> Result<PathBuf> {
    let rescue = slot.rescue_dir();
    std::fs::create_dir_all(&rescue).map_err(Error::io("creating", &rescue))?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let target = rescue.join(format!("{stamp}-{}.sqlite", fastrand::u32(..)));
    std::fs::rename(db, &target).map_err(Error::io("moving aside", db))?;
    sqlite::remove_database(db)?;
    let state = &mut slot.state;
    (state.version, state.pulled_hash, state.publishing) = (None, None, None);
    finish(slot)?;
    Ok(target)
}
