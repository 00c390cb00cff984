//! The move marker: the small object that takes the place of the single
//! object while a database moves into the versioned layout (or is created
//! in it), naming the version the move creates. See `convert.rs` for the
//! protocol.

use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};

use super::contract::Landed;
use crate::error::{Error, Result};
use crate::store::Remote;
use crate::store::cas::Condition;
use crate::store::keys::Keys;
use crate::token::CommitToken;

/// How a marker's body begins; readable by anyone who downloads it.
const MAGIC: &[u8] = b"sqlite-s3: this database moved to the versioned layout (KEY.sqlite-s3/)\n";

/// Objects smaller than this may be markers; every SQLite file but the
/// empty one is at least one 512-byte page.
pub(crate) const MARKER_MAX: u64 = 512;

/// What replaces the single object when the database moves to the
/// versioned layout: the version the move creates, and who staged it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Marker {
    /// The version the staged manifest becomes.
    pub version: u64,
    /// The writer token of the conversion (names the staged manifest).
    pub writer: CommitToken,
}

impl Marker {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend(serde_json::to_vec(self).expect("a marker serializes"));
        bytes.push(b'\n');
        bytes
    }

    /// The marker in `bytes`, `None` when they are not one.
    pub(crate) fn decode(bytes: &[u8], remote: &Remote) -> Result<Option<Self>> {
        let Some(json) = bytes.strip_prefix(MAGIC) else {
            return Ok(None);
        };
        serde_json::from_slice(json).map(Some).map_err(|e| Error::Corrupt {
            url: remote.url().to_string(),
            reason: format!("the marker of a move to the versioned layout does not parse: {e}"),
        })
    }

    /// Where the version it names is staged.
    pub(crate) fn staged(&self, remote: &Remote) -> object_store::path::Path {
        Keys::new(remote).staged(&self.writer)
    }
}

/// Whether the key holds a marker of ours (`mine` tells the writer tokens
/// that are), or something that still allows a write under `condition`,
/// or something else.
pub(crate) async fn marker_check(
    remote: &Remote,
    condition: &Condition,
    mine: &(dyn Fn(&CommitToken) -> Option<usize> + Sync),
) -> Result<Landed<(usize, Marker)>> {
    let result = match remote.store().get(remote.key()).await {
        Ok(result) => result,
        Err(object_store::Error::NotFound { .. }) if condition.holds_for(None) => return Ok(Landed::NotYet),
        Err(object_store::Error::NotFound { .. }) => return Ok(Landed::Never),
        Err(e) => return Err(remote.error("checking the database object", e)),
    };
    let still = condition.holds_for(result.meta.e_tag.as_deref());
    if result.meta.size >= MARKER_MAX {
        return Ok(if still { Landed::NotYet } else { Landed::Never });
    }
    let bytes = result
        .bytes()
        .await
        .map_err(|e| remote.error("checking the database object", e))?;
    Ok(match Marker::decode(&bytes, remote)? {
        Some(marker) if let Some(attempt) = mine(&marker.writer) => Landed::Yes((attempt, marker)),
        _ if still => Landed::NotYet,
        _ => Landed::Never,
    })
}
