//! `state.json`: what a slot's working copy was pulled from.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::layout::{LayoutKind, RemoteVersion};

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
    pub pulled_hash: Option<String>,
    /// Open or cleanly closed.
    pub status: Status,
    /// The layout of the database, once known.
    pub layout: Option<LayoutKind>,
    /// A publish whose outcome is not known yet (under way, or its answer
    /// was lost): before anything else is published, the remote lineage is
    /// searched for its token to learn whether it landed.
    pub publishing: Option<InFlight>,
    /// A download being put in place of the working copy: if the process
    /// dies between the rename and the next save, the next session sees
    /// that the file is this download, not local changes.
    pub installing: Option<Installing>,
}

/// A publish whose outcome is not known yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlight {
    /// Its commit token.
    pub token: String,
    /// BLAKE3 (hex) of the file it uploads.
    pub hash: String,
    /// The version it was published over (its ETag, or number), if any.
    #[serde(default)]
    pub base: Option<String>,
}

/// A download being installed as the working copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installing {
    /// Its version (`None`: the empty database of a key with no object).
    pub version: Option<RemoteVersion>,
    /// BLAKE3 (hex) of the file.
    pub hash: String,
}

impl SlotState {
    /// Reads the state, or the default when there is none yet. A state file
    /// that does not parse counts as "open" with nothing pulled, so the
    /// working copy is checked and nothing in it is trusted as clean.
    pub fn load(path: &Path) -> Result<Self> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_else(|_| SlotState {
                status: Status::Open,
                ..Default::default()
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(Error::io("reading", path)(e)),
        }
    }

    /// Writes the state atomically (temporary file, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(self).expect("the state always serializes");
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&tmp)?;
            std::io::Write::write_all(&mut file, &bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(Error::io("writing", path))
    }
}
