//! The versions of a database, as `sqlite-s3 log` lists them.

use crate::error::{Error, Result};
use crate::layout::VersionInfo;
use crate::layout::versioned::Versioned;
use crate::store::Remote;
use crate::store::keys::Keys;

/// Every version of the database, oldest first (one LIST and one GET per
/// version).
///
/// # Failure
/// [`Error::NotVersioned`] when the database is not in the versioned layout.
pub async fn log(remote: &Remote) -> Result<Vec<VersionInfo>> {
    let layout = Versioned::default();
    let keys = Keys::new(remote);
    let mut versions = Vec::new();
    for n in layout.listed(remote, &keys).await? {
        if let Some(m) = layout.manifest(remote, &keys, n).await? {
            versions.push(VersionInfo::from(&m));
        }
    }
    if versions.is_empty() {
        return Err(not_versioned(remote));
    }
    Ok(versions)
}

/// The error of history work on a database that has no versions.
pub(super) fn not_versioned(remote: &Remote) -> Error {
    Error::NotVersioned {
        url: remote.url().to_string(),
    }
}

/// The error of a new version asked of a database that moved to the
/// single-object layout at `version`.
pub(super) fn moved(remote: &Remote, version: u64) -> Error {
    Error::MovedToSingle {
        url: remote.url().to_string(),
        version,
    }
}

/// The error of a version that does not exist.
pub(super) fn no_version(remote: &Remote, version: u64) -> Error {
    Error::VersionNotFound {
        url: remote.url().to_string(),
        wanted: format!("version {version}"),
    }
}
