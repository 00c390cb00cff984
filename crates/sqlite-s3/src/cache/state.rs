//! `state.json`: what a slot's working copy was pulled from.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::layout::{InFlight, RemoteVersion};
use crate::options::LayoutKind;

/// Whether a session has the slot open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The last session closed cleanly: the working copy is exactly the
    /// pulled version (or there is none).
    #[default]
    Clean,
    /// A session opened the slot and did not close it: it may hold
    /// unpublished changes, to be checked by the next session.
    Open,
}

/// The state of one slot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SlotState {
    /// The database URL, for people reading the cache.
    pub url: String,
    /// The remote version the working copy was pulled from or last published
    /// as; `None` when the remote had no object, or nothing was pulled.
    pub version: Option<RemoteVersion>,
    /// BLAKE3 of the working copy as pulled (hex); `None` when there is no
    /// working copy.
    pub pulled_hash: Option<ContentHash>,
    /// Open or cleanly closed.
    pub status: Status,
    /// The layout of the database, once known.
    pub layout: Option<LayoutKind>,
    /// Tries of a publish whose outcome is not known yet (under way, or
    /// answers lost): before anything else is published, the remote is
    /// asked whether one landed (the lineage of the single object, or
    /// version N+1 of the versioned layout).
    pub publishing: Option<InFlight>,
    /// A download being put in place of the working copy: if the process
    /// dies between the rename and the next save, the next session sees
    /// that the file is this download, not local changes.
    pub installing: Option<Installing>,
    /// The file system's view of the working copy when the last session
    /// closed: while it is unchanged the copy need not be hashed again to
    /// prove it is what was pulled.
    pub fingerprint: Option<Fingerprint>,
    /// Set when `state.json` did not parse (never saved): nothing it said
    /// can be trusted.
    #[serde(skip)]
    pub unreadable: bool,
}

/// Size, inode, and modification and change times of a file: any write to
/// it changes one of them (the change time cannot be set back by a program).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    len: u64,
    inode: u64,
    modified_ns: i128,
    changed_ns: i128,
}

impl Fingerprint {
    /// The fingerprint of the file at `path`, or `None` when there is none.
    pub fn of(path: &Path) -> Result<Option<Self>> {
        let metadata = match std::fs::metadata(path) {
            Ok(metadata) => metadata,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("reading", path)(e)),
        };
        #[cfg(unix)]
        let (inode, changed_ns) = {
            use std::os::unix::fs::MetadataExt;
            (
                metadata.ino(),
                i128::from(metadata.ctime()) * 1_000_000_000 + i128::from(metadata.ctime_nsec()),
            )
        };
        #[cfg(not(unix))]
        let (inode, changed_ns) = (0, 0);
        let modified_ns = metadata
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i128);
        Ok(Some(Self {
            len: metadata.len(),
            inode,
            modified_ns,
            changed_ns,
        }))
    }
}

/// A download being installed as the working copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installing {
    /// Its version (`None`: the empty database of a key with no object).
    pub version: Option<RemoteVersion>,
    /// BLAKE3 (hex) of the file.
    pub hash: ContentHash,
}

impl SlotState {
    /// Reads the state, or the default when there is none yet. A state file
    /// that does not parse is [`SlotState::unreadable`]: the working copy
    /// beside it is then set aside, since what it was pulled from is unknown.
    pub fn load(path: &Path) -> Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_else(|_| SlotState {
                status: Status::Open,
                unreadable: true,
                ..Default::default()
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(Error::io("reading", path)(e)),
        }
    }

    /// Writes the state whole or not at all, durably (see `atomic_file`).
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self).expect("the state always serializes");
        crate::atomic_file::write(path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::manifest::{ChunkRef, FORMAT, Manifest};

    fn with_home(home: u16) -> SlotState {
        SlotState {
            url: "memory://b/app.db".into(),
            version: Some(RemoteVersion::Manifest(Box::new(Manifest {
                format: FORMAT,
                version: 2,
                parent: Some(1),
                size: 4096,
                page_size: 4096,
                chunk_size: 4096,
                homes: vec!["app.db.sqlite-s3/chunks".into()],
                chunks: vec![ChunkRef {
                    hash: ContentHash::of(b"00"),
                    home,
                }],
                committed_at: serde_json::from_str("\"2026-01-01T00:00:00Z\"").unwrap(),
                writer: "w".into(),
                uploaded_bytes: 0,
                moved_to_single: false,
            }))),
            pulled_hash: Some(ContentHash::of(b"ab")),
            ..Default::default()
        }
    }

    /// A state whose kept manifest names a chunk home it does not list
    /// (damaged on disk, or edited) is unreadable, like one that does not
    /// parse: nothing it says is used to publish.
    #[test]
    fn a_state_whose_manifest_makes_no_sense_is_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        with_home(0).save(&path).unwrap();
        let loaded = SlotState::load(&path).unwrap();
        assert!(!loaded.unreadable);
        assert_eq!(loaded, with_home(0));
        with_home(3).save(&path).unwrap();
        let loaded = SlotState::load(&path).unwrap();
        assert!(loaded.unreadable);
        assert_eq!(loaded.version, None);
    }
}
