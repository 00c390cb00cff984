//! A slot: one working copy of one database, owned by one session at a time
//! through an advisory lock (`flock`) that the operating system releases when
//! the process dies.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use crate::cache::state::SlotState;
use crate::error::{Error, Result};

/// How many working copies of one database may be open at once.
pub const MAX_SLOTS: usize = 16;

/// A locked slot.
#[derive(Debug)]
pub struct Slot {
    dir: PathBuf,
    _lock: File,
    /// The state as last loaded or saved.
    pub state: SlotState,
}

impl Slot {
    /// Locks the lowest free slot of a database folder. Returns `None` when
    /// all [`MAX_SLOTS`] are in use.
    pub fn acquire(db_dir: &Path) -> Result<Option<Slot>> {
        for index in 0..MAX_SLOTS {
            if let Some(slot) = Self::try_lock(&db_dir.join(format!("slot-{index}")))? {
                return Ok(Some(slot));
            }
        }
        Ok(None)
    }

    /// Locks the slot in `dir` if no one holds it (creating it if needed).
    pub fn try_lock(dir: &Path) -> Result<Option<Slot>> {
        std::fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
        let lock_path = dir.join("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(Error::io("opening", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {
                let state = SlotState::load(&dir.join("state.json"))?;
                Ok(Some(Slot {
                    dir: dir.to_path_buf(),
                    _lock: lock,
                    state,
                }))
            }
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(Error::io("locking", &lock_path)(e)),
        }
    }

    /// The other slots of the same database that exist on disk.
    pub fn siblings(&self) -> Vec<PathBuf> {
        let Some(db_dir) = self.dir.parent() else { return vec![] };
        (0..MAX_SLOTS)
            .map(|i| db_dir.join(format!("slot-{i}")))
            .filter(|d| d != &self.dir && d.join("state.json").exists())
            .collect()
    }

    /// The folder of the slot.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The working copy.
    pub fn db_path(&self) -> PathBuf {
        self.dir.join("db.sqlite")
    }

    /// Where a download is written before it is checked.
    pub fn download_path(&self) -> PathBuf {
        self.dir.join("download.tmp")
    }

    /// Where a snapshot of a shared working copy is made to be published.
    pub fn snapshot_path(&self) -> PathBuf {
        self.dir.join("snapshot.sqlite")
    }

    /// Where unpublished changes are moved when they are discarded.
    pub fn rescue_dir(&self) -> PathBuf {
        self.dir.parent().unwrap_or(&self.dir).join("rescued")
    }

    /// Saves the state.
    pub fn save(&self) -> Result<()> {
        self.state.save(&self.dir.join("state.json"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_slot_is_skipped_and_freed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = Slot::acquire(dir.path()).unwrap().unwrap();
        let second = Slot::acquire(dir.path()).unwrap().unwrap();
        assert!(first.dir().ends_with("slot-0"));
        assert!(second.dir().ends_with("slot-1"));
        drop(first);
        let again = Slot::acquire(dir.path()).unwrap().unwrap();
        assert!(again.dir().ends_with("slot-0"));
    }
}
