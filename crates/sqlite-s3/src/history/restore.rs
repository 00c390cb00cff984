//! Restoring an earlier version as a new commit.

use std::time::SystemTime;

use super::log::{log, moved, no_version, not_versioned};
use crate::error::{Error, Result};
use crate::layout::manifest::Manifest;
use crate::layout::versioned::Versioned;
use crate::store::Remote;
use crate::store::keys::Keys;
use crate::timestamp::Timestamp;
use crate::token::CommitToken;

/// Which state [`restore`] brings back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestorePoint {
    /// Version number `n`.
    Version(u64),
    /// The newest version committed at or before this time.
    At(SystemTime),
}

/// How many times a restore starts again when writers keep committing.
const ATTEMPTS: u32 = 10;

/// Makes the state of an earlier version the newest, as a new commit;
/// nothing is deleted. Returns the new version's number.
///
/// # Failure
/// [`Error::NotVersioned`] when the database has no versions;
/// [`Error::VersionNotFound`] when there is no such version;
/// [`Error::MovedToSingle`] when the database moved to the single-object
/// layout; [`Error::Conflict`] when other writers kept committing.
pub async fn restore(remote: &Remote, point: RestorePoint) -> Result<u64> {
    let number = match point {
        RestorePoint::Version(n) => n,
        RestorePoint::At(time) => log(remote)
            .await?
            .iter()
            .filter(|v| v.committed_at <= time)
            .map(|v| v.version)
            .max()
            .ok_or_else(|| Error::VersionNotFound {
                url: remote.url().to_string(),
                wanted: format!(
                    "version committed at or before {}",
                    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
            })?,
    };
    let layout = Versioned::default();
    let keys = Keys::new(remote);
    let token = CommitToken::new();
    let old = layout
        .manifest(remote, &keys, number)
        .await?
        .ok_or_else(|| no_version(remote, number))?;
    for _ in 0..ATTEMPTS {
        let newest = layout
            .latest(remote, &keys)
            .await?
            .ok_or_else(|| not_versioned(remote))?;
        if newest.moved_to_single {
            return Err(moved(remote, newest.version));
        }
        let next = newest.version + 1;
        let restored = Manifest {
            version: next,
            parent: Some(newest.version),
            committed_at: Timestamp::now(),
            writer: token.clone(),
            uploaded_bytes: 0,
            moved_to_single: false,
            ..old.clone()
        };
        if layout.create_manifest(remote, &keys, &restored, true).await? {
            return Ok(next);
        }
    }
    Err(Error::Conflict {
        url: remote.url().to_string(),
        attempts: ATTEMPTS,
    })
}
