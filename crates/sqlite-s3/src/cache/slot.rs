//! A slot: one working copy of one database, owned by one session at a time
//! through an advisory lock (`flock`) that the operating system releases when
//! the process dies.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use crate::cache::state::SlotState;
use crate::error::{Error, Result};
use crate::hash::ContentHash;

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

    /// Where damaged working copies are moved.
    pub fn damaged_dir(&self) -> PathBuf {
        self.dir.parent().unwrap_or(&self.dir).join("damaged")
    }

    /// Moves the working copy, the files SQLite keeps beside it, and the
    /// state file into a new folder under `damaged/`, and starts the slot
    /// afresh (nothing pulled). Returns the folder. Nothing is deleted.
    pub fn set_aside_damaged(&mut self, reason: &str) -> Result<PathBuf> {
        let db = self.db_path();
        let mut files = vec![db.clone(), self.dir.join("state.json")];
        files.extend(crate::sqlite::side_files(&db));
        let folder = self.set_aside(&files, reason)?;
        self.state = SlotState {
            url: std::mem::take(&mut self.state.url),
            layout: self.state.layout,
            ..Default::default()
        };
        self.save()?;
        Ok(folder)
    }

    /// Moves `files` (those that exist) into a new folder under
    /// `damaged/`, with a note saying why; returns the folder.
    pub fn set_aside(&self, files: &[PathBuf], reason: &str) -> Result<PathBuf> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let slot_name = self.dir.file_name().and_then(|n| n.to_str()).unwrap_or("slot");
        let folder = self
            .damaged_dir()
            .join(format!("{stamp}-{slot_name}-{:04x}", fastrand::u16(..)));
        std::fs::create_dir_all(&folder).map_err(Error::io("creating", &folder))?;
        for file in files {
            let Some(name) = file.file_name() else { continue };
            match std::fs::rename(file, folder.join(name)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("moving aside", file)(e)),
            }
        }
        let note = folder.join("REASON.txt");
        std::fs::write(&note, format!("{reason}\n")).map_err(Error::io("writing", &note))?;
        Ok(folder)
    }

    /// Whether `file`, whose content hash is `hash`, holds something to
    /// publish: it differs from what was pulled, and it is not a blank file
    /// standing for a database that does not exist remotely.
    pub fn needs_publishing(&self, file: &Path, hash: ContentHash) -> Result<bool> {
        if self.state.pulled_hash == Some(hash) {
            return Ok(false);
        }
        Ok(self.state.version.is_some() || !crate::sqlite::is_blank(file)?)
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
    fn a_held_slot_is_refused_and_freed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let slot = dir.path().join("slot-0");
        let first = Slot::try_lock(&slot).unwrap().expect("free");
        assert!(Slot::try_lock(&slot).unwrap().is_none(), "held by the first");
        drop(first);
        assert!(Slot::try_lock(&slot).unwrap().is_some(), "freed on drop");
    }
}
