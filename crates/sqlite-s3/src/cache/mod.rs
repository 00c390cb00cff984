//! The local cache: where working copies live.
//!
//! ```text
//! CACHE_DIR/
//!   app.db-3f9a0c1d2e4b5a69/     one folder per database (key name + hash of endpoint and URL)
//!     slot-0/                    one working copy; a session holds its lock while open
//!       lock                     flock'ed by the session that owns the slot
//!       db.sqlite                the working copy, an ordinary SQLite file
//!       state.json               what was pulled (ETag, hash) and whether a session is open
//!     slot-1/                    a second process opening the same database at once
//!     rescued/                   unpublished changes moved aside by "discard pending"
//! ```
//!
//! Sessions take the lowest free slot, so sequential sessions reuse one warm
//! copy, and concurrent processes never share a working copy.

pub mod slot;
pub mod state;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::layout::Version;
use crate::store::Remote;

pub use slot::Slot;

/// The folder of one database inside the cache directory.
pub fn database_dir(cache_dir: &Path, remote: &Remote) -> PathBuf {
    dir_for(cache_dir, remote, &remote.identity())
}

fn dir_for(cache_dir: &Path, remote: &Remote, identity: &str) -> PathBuf {
    let hash = blake3::hash(identity.as_bytes()).to_hex();
    let name: String = remote
        .url()
        .key()
        .rsplit('/')
        .next()
        .unwrap_or("db")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    cache_dir.join(format!("{name}-{}", &hash[..16]))
}

/// Moves the working copies that earlier versions kept under the URL as
/// spelled (before one bucket had one identity) into the database's
/// folder, as further slots, so that what they hold is settled like any
/// other slot's. Slots in use by another process are left where they are.
pub fn adopt_legacy(cache_dir: &Path, remote: &Remote) -> Result<()> {
    let Some(legacy) = remote.legacy_identity() else {
        return Ok(());
    };
    let old = dir_for(cache_dir, remote, &legacy);
    if !old.is_dir() {
        return Ok(());
    }
    let new = database_dir(cache_dir, remote);
    std::fs::create_dir_all(&new).map_err(Error::io("creating", &new))?;
    for index in 0..slot::MAX_SLOTS {
        let from = old.join(format!("slot-{index}"));
        if !from.is_dir() {
            continue;
        }
        // Held while it moves: no one else is using it.
        let Some(_held) = Slot::try_lock(&from)? else { continue };
        let Some(free) = (0..slot::MAX_SLOTS)
            .map(|i| new.join(format!("slot-{i}")))
            .find(|dir| !dir.exists())
        else {
            break;
        };
        std::fs::rename(&from, &free).map_err(Error::io("moving", &from))?;
        tracing::info!("adopted the working copy {} as {}", from.display(), free.display());
    }
    for folder in ["rescued", "damaged", "pulls"] {
        let (from, to) = (old.join(folder), new.join(folder));
        if from.is_dir() && !to.exists() {
            std::fs::rename(&from, &to).map_err(Error::io("moving", &from))?;
        }
    }
    Ok(())
}

/// The state of the local working copy of a database, as `sqlite-s3 info`
/// reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalCopy {
    /// No working copy in this cache directory.
    Absent,
    /// A working copy that matches the version it was pulled from.
    Clean {
        /// The version it was pulled from (`None`: the database did not exist).
        version: Option<Version>,
    },
    /// A working copy with changes that were not published.
    Dirty {
        /// The working copy.
        path: PathBuf,
    },
    /// A session of another process holds the working copy right now.
    InUse,
}

/// Looks at the working copies of a database without changing anything (no
/// lock is kept, nothing is published or rolled back). Any copy with
/// unpublished changes makes the answer [`LocalCopy::Dirty`]; then any copy
/// in use makes it [`LocalCopy::InUse`]; otherwise the first copy decides.
pub fn inspect(cache_dir: &Path, remote: &Remote) -> Result<LocalCopy> {
    let db_dir = database_dir(cache_dir, remote);
    let mut seen = Vec::new();
    for index in 0..slot::MAX_SLOTS {
        let slot_dir = db_dir.join(format!("slot-{index}"));
        if slot_dir.join("state.json").exists() {
            seen.push(inspect_slot(&slot_dir)?);
        }
    }
    let dirty = seen.iter().find(|c| matches!(c, LocalCopy::Dirty { .. })).cloned();
    let in_use = seen.contains(&LocalCopy::InUse);
    Ok(match (dirty, in_use, seen.into_iter().next()) {
        (Some(dirty), _, _) => dirty,
        (None, true, _) => LocalCopy::InUse,
        (None, false, first) => first.unwrap_or(LocalCopy::Absent),
    })
}

fn inspect_slot(slot_dir: &Path) -> Result<LocalCopy> {
    let Some(slot) = Slot::try_lock(slot_dir)? else {
        return Ok(LocalCopy::InUse);
    };
    let db = slot.db_path();
    if !db.exists() || slot.state.pulled_hash.is_none() {
        return Ok(LocalCopy::Absent);
    }
    let version = slot.state.version.as_ref().map(|v| v.id());
    if slot.state.status == state::Status::Clean {
        return Ok(LocalCopy::Clean { version });
    }
    let wal_has_frames = crate::sqlite::side_files(&db)
        .iter()
        .take(2)
        .any(|f| std::fs::metadata(f).is_ok_and(|m| m.len() > 0));
    let (hash, _) = crate::sqlite::hash_file(&db)?;
    if wal_has_frames || slot.state.pulled_hash != Some(hash) {
        Ok(LocalCopy::Dirty { path: db })
    } else {
        Ok(LocalCopy::Clean { version })
    }
}
