//! History, restore, branches and garbage collection of a database in the
//! versioned layout. See `layout/versioned/history.rs` for how gc stays safe
//! while commits are in flight.

use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};
use crate::layout::versioned::Versioned;
use crate::store::Remote;

pub use crate::layout::versioned::history::{DEFAULT_GRACE, GcReport, Keep, VersionInfo};

/// Which state `restore` brings back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Version number `n`.
    Version(u64),
    /// The newest version committed at or before this time.
    At(SystemTime),
}

fn token() -> String {
    crate::layout::new_token()
}

/// Every version of the database, oldest first.
///
/// # Failure
/// [`Error::InvalidState`] when the database is not in the versioned layout.
pub async fn log(remote: &Remote) -> Result<Vec<VersionInfo>> {
    Versioned::default().log(remote).await
}

/// Makes the state of an earlier version the newest, as a new commit;
/// nothing is deleted. Returns the new version's number.
pub async fn restore(remote: &Remote, target: Target) -> Result<u64> {
    let number = match target {
        Target::Version(n) => n,
        Target::At(time) => {
            let time: chrono::DateTime<chrono::Utc> = time.into();
            log(remote)
                .await?
                .iter()
                .filter(|v| chrono::DateTime::parse_from_rfc3339(&v.committed_at).is_ok_and(|t| t <= time))
                .map(|v| v.version)
                .max()
                .ok_or_else(|| {
                    Error::InvalidState(format!(
                        "{} has no version committed at or before {}",
                        remote.url(),
                        time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    ))
                })?
        }
    };
    Versioned::default().restore(remote, number, &token()).await
}

/// Creates a new database at `target` whose first version is `version` (or
/// the newest) of `source`. The two share chunks; writes to either never
/// show in the other. A few requests, whatever the size.
pub async fn branch(source: &Remote, target: &Remote, version: Option<u64>) -> Result<u64> {
    if !source.same_bucket(target) {
        return Err(Error::InvalidState(format!(
            "{} and {} are in different stores: a branch shares chunks, so it must live in the same bucket",
            source.url(),
            target.url()
        )));
    }
    Versioned::default().branch(source, target, version, &token()).await
}

/// Deletes versions outside `keep` (never the newest) and the chunks no kept
/// version of this database or of its branches uses, once older than `grace`.
pub async fn gc(remote: &Remote, keep: Keep, grace: Duration) -> Result<GcReport> {
    Versioned::default().gc(remote, keep, grace).await
}
