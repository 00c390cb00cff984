//! Moving a database between the single-object and the versioned layout,
//! safely while other processes use it.
//!
//! Each direction has one commit point, a conditional write that makes the
//! old layout refuse every later commit; what follows it only copies data
//! that is already safe, and any process that finds it undone finishes it
//! (`settle`), so a crash between the two steps loses nothing.
//!
//! - **single → versioned**: upload the file's chunks and *stage* the next
//!   manifest (not yet a version); then replace the single object with a
//!   small marker naming it, `If-Match` the ETag that was read (the
//!   commit point: a single-object writer's next `If-Match` fails); then
//!   create the staged manifest. Until that last step no versioned reader or
//!   writer can see the new version, so the two layouts are never live at
//!   once.
//! - **versioned → single**: create the next version as a copy of the
//!   newest marked "moved to single" (the commit point: a versioned writer's
//!   create of that number fails, and no version may follow it); then write
//!   the single object from it, created if absent or `If-Match` over an old
//!   marker.
//!
//! Which step is undone is read from both sides: a marker newer than the
//! newest version means the versioned side is to be finished; a moved
//! version newer than the marker (or with no single object) means the
//! single object is to be written.

use std::path::Path;

use object_store::{Attributes, GetOptions, PutPayload};
use serde::Serialize;

use super::contract::{Layout, Pulled};
use super::in_flight::InFlight;
use super::manifest::Manifest;
use super::marker::{MARKER_MAX, Marker, marker_check};
use super::single::SingleObject;
use super::version::{ObjectVersion, RemoteVersion};
use super::versioned::Versioned;
use crate::error::{Error, Result};
use crate::options::LayoutKind;
use crate::options::WriteMode;
use crate::progress::ProgressFn;
use crate::store::Remote;
use crate::store::cas::{self, Condition};
use crate::token::CommitToken;

/// What the single object's key holds.
#[derive(Debug)]
enum SingleState {
    Absent,
    Database,
    /// The marker, and its ETag and store version.
    Moved {
        marker: Marker,
        etag: (String, Option<String>),
    },
}

async fn single_state(remote: &Remote) -> Result<SingleState> {
    let Some(meta) = remote.head().await? else {
        return Ok(SingleState::Absent);
    };
    if meta.size >= MARKER_MAX {
        return Ok(SingleState::Database);
    }
    let result = match remote.store().get_opts(remote.key(), GetOptions::default()).await {
        Ok(result) => result,
        Err(object_store::Error::NotFound { .. }) => return Ok(SingleState::Absent),
        Err(e) => return Err(remote.error("downloading", e)),
    };
    // No write can be conditional on an object the store keeps without an
    // ETag (a marker is replaced with `If-Match` when a move finishes).
    let etag = result.meta.e_tag.clone().ok_or_else(|| Error::Corrupt {
        url: remote.url().to_string(),
        reason: "the store serves its object without an ETag, and no write can be conditional on a version that \
                 has none"
            .into(),
    })?;
    let etag = (etag, result.meta.version.clone());
    let bytes = result.bytes().await.map_err(|e| remote.error("downloading", e))?;
    Ok(match Marker::decode(&bytes, remote)? {
        Some(marker) => SingleState::Moved { marker, etag },
        None => SingleState::Database,
    })
}

/// Where a database stands, read from both layouts.
#[derive(Debug)]
enum State {
    /// Nothing in either layout.
    Empty,
    /// Live in one layout.
    Live(LayoutKind),
    /// Moving to the versioned layout; the marker is written, the version
    /// not yet created.
    ToVersioned(Marker),
    /// Moving to the single-object layout; the moved version exists, the
    /// single object is absent or an older marker (with this ETag).
    ToSingle(Manifest, Option<(String, Option<String>)>),
    /// A database object and versions after it, which no conversion makes.
    Both { newest: Manifest },
}

impl State {
    /// What it is, for messages.
    fn describe(&self) -> String {
        match self {
            State::Empty => "there is no database any more".into(),
            State::Live(LayoutKind::Single) => "it is in the single-object layout".into(),
            State::Live(LayoutKind::Versioned) => "it is in the versioned layout".into(),
            State::ToVersioned(marker) => format!("it is moving to the versioned layout as version {}", marker.version),
            State::ToSingle(moved, _) => format!(
                "it is moving to the single-object layout after version {}",
                moved.version
            ),
            State::Both { newest } => format!("it holds a database object and versions up to {}", newest.version),
        }
    }
}

async fn state(remote: &Remote) -> Result<State> {
    let single = single_state(remote).await?;
    let newest = Versioned::default().newest(remote).await?;
    Ok(match (single, newest) {
        (SingleState::Absent, None) => State::Empty,
        (SingleState::Database, None) => State::Live(LayoutKind::Single),
        (SingleState::Database, Some(m)) if m.moved_to_single => State::Live(LayoutKind::Single),
        (SingleState::Database, Some(newest)) => State::Both { newest },
        (SingleState::Moved { marker, .. }, None) => State::ToVersioned(marker),
        (SingleState::Moved { marker, .. }, Some(m)) if m.version < marker.version => State::ToVersioned(marker),
        (SingleState::Moved { etag, .. }, Some(m)) if m.moved_to_single => State::ToSingle(m, Some(etag)),
        (SingleState::Absent, Some(m)) if m.moved_to_single => State::ToSingle(m, None),
        (SingleState::Moved { .. } | SingleState::Absent, Some(_)) => State::Live(LayoutKind::Versioned),
    })
}

/// The layout the database at `remote` lives in (`None`: there is none),
/// after finishing a conversion a crashed process left half done.
pub async fn detect(remote: &Remote) -> Result<Option<LayoutKind>> {
    loop {
        match state(remote).await? {
            State::Empty => return Ok(None),
            State::Live(kind) => return Ok(Some(kind)),
            State::Both { .. } => return Ok(Some(LayoutKind::Single)),
            pending => finish(remote, pending, None).await?,
        }
    }
}

/// Finishes a conversion another process left half done, if there is one.
pub(crate) async fn settle(remote: &Remote) -> Result<()> {
    match state(remote).await? {
        pending @ (State::ToVersioned(_) | State::ToSingle(..)) => finish(remote, pending, None).await,
        _ => Ok(()),
    }
}

/// Does the step after a commit point. `file`, when given, holds the moved
/// version (a conversion that just froze the versioned side has it).
async fn finish(remote: &Remote, state: State, file: Option<&Path>) -> Result<()> {
    match state {
        State::ToVersioned(marker) => {
            Versioned::default()
                .finish_staged(remote, marker.version, &marker.staged(remote), &marker.writer)
                .await
        }
        State::ToSingle(moved, marker_etag) => {
            let scratch;
            let file = match file {
                Some(file) => file,
                None => {
                    scratch =
                        tempfile::NamedTempFile::new().map_err(Error::io("creating", Path::new("a temporary file")))?;
                    let pulled = Versioned::default()
                        .materialize(remote, None, None, &moved, scratch.path(), None)
                        .await?;
                    debug_assert!(matches!(pulled, Pulled::Downloaded { .. }));
                    scratch.path()
                }
            };
            let base = marker_etag.map(|(etag, object_version)| {
                RemoteVersion::Object(ObjectVersion {
                    etag,
                    object_version,
                    lineage: Vec::new(),
                })
            });
            let in_flight = InFlight::over(base.as_ref(), false).with_attempt(moved.writer.clone(), None);
            let published = SingleObject
                .publish(remote, file, base.as_ref(), WriteMode::Conditional, &in_flight, None)
                .await;
            match published {
                Ok(_) => Ok(()),
                // Another process wrote it first; `state` tells whether that is so.
                Err(Error::Conflict { .. }) => match state_of(remote).await? {
                    State::Live(LayoutKind::Single) => Ok(()),
                    other => Err(Error::TryAgain {
                        url: remote.url().to_string(),
                        reason: format!(
                            "it is moving to the single-object layout, but another process changed its object \
                             meanwhile ({}); if this persists, run sqlite-s3 info on it",
                            other.describe()
                        ),
                    }),
                },
                Err(e) => Err(e),
            }
        }
        _ => Ok(()),
    }
}

/// [`state`] again, boxed so that [`finish`] may call it.
fn state_of(remote: &Remote) -> futures::future::BoxFuture<'_, Result<State>> {
    Box::pin(state(remote))
}

/// What [`convert`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConvertReport {
    /// The layout the database was in.
    pub from: LayoutKind,
    /// The layout it is in now.
    pub to: LayoutKind,
    /// The version of the versioned layout the move created or ended.
    pub version: Option<u64>,
}

/// How many times [`convert`] starts again when writers keep committing.
const ATTEMPTS: u32 = 5;

/// Moves the database at `remote` into layout `to`, keeping everything it
/// holds, while other processes may be using it: their next commit in the
/// old layout fails as a conflict, and the retrying transaction re-runs it
/// in the new one. A database already in `to` is left as it is. History
/// is kept: moving to single and back continues the version numbers.
///
/// # Failure
/// [`Error::DatabaseNotFound`] when there is no database; [`Error::Conflict`]
/// when writers kept committing through every attempt; [`Error::NotADatabase`]
/// when the single object is not a SQLite file; [`Error::Corrupt`] when
/// both layouts hold a database.
pub async fn convert(remote: &Remote, to: LayoutKind, progress: Option<&ProgressFn>) -> Result<ConvertReport> {
    let writer = CommitToken::new();
    for _ in 0..ATTEMPTS {
        let state = state(remote).await?;
        match state {
            State::Empty => {
                return Err(Error::DatabaseNotFound {
                    url: remote.url().to_string(),
                });
            }
            State::Both { newest, .. } => {
                return Err(Error::Corrupt {
                    url: remote.url().to_string(),
                    reason: format!(
                        "it holds a database object and also versions up to {} under {}.sqlite-s3/, which no \
                         conversion leaves behind; sessions use the object. Delete the one you do not want",
                        newest.version,
                        remote.key()
                    ),
                });
            }
            State::Live(kind) if kind == to => {
                return Ok(ConvertReport {
                    from: kind,
                    to,
                    version: None,
                });
            }
            State::Live(LayoutKind::Single) => {
                if let Some(version) = to_versioned(remote, &writer, progress).await? {
                    return Ok(ConvertReport {
                        from: LayoutKind::Single,
                        to,
                        version: Some(version),
                    });
                }
            }
            State::Live(LayoutKind::Versioned) => {
                if let Some(version) = to_single(remote, &writer, progress).await? {
                    return Ok(ConvertReport {
                        from: LayoutKind::Versioned,
                        to,
                        version: Some(version),
                    });
                }
            }
            pending => finish(remote, pending, None).await?,
        }
    }
    Err(Error::Conflict {
        url: remote.url().to_string(),
        attempts: ATTEMPTS,
    })
}

/// Moves a live single-object database; `None` when a writer changed it
/// meanwhile.
async fn to_versioned(remote: &Remote, writer: &CommitToken, progress: Option<&ProgressFn>) -> Result<Option<u64>> {
    let scratch = tempfile::NamedTempFile::new().map_err(Error::io("creating", Path::new("a temporary file")))?;
    let version = match SingleObject.pull(remote, None, None, scratch.path(), progress).await? {
        Pulled::Downloaded {
            version: RemoteVersion::Object(version),
            ..
        } => version,
        _ => return Ok(None),
    };
    crate::sqlite::quick_check(scratch.path()).map_err(|reason| Error::NotADatabase {
        url: remote.url().to_string(),
        reason,
    })?;
    let versioned = Versioned::default();
    // Continue the history of an earlier move out of this layout, if any.
    let parent = versioned.newest(remote).await?;
    let (number, staged) = versioned
        .stage(remote, scratch.path(), parent.as_ref(), writer, progress)
        .await?;
    let marker = Marker {
        version: number,
        writer: writer.clone(),
    };
    // The commit point: the object becomes the marker, if it is still the
    // version that was read.
    let condition = Condition::matches(version.etag, version.object_version);
    let ours = |w: &CommitToken| (w == writer).then_some(0);
    let outcome = cas::put(
        remote,
        remote.key(),
        PutPayload::from(marker.encode()),
        Attributes::new(),
        &condition,
        "replacing the object with a marker",
        |_| marker_check(remote, &condition, &ours),
    )
    .await?;
    match outcome {
        cas::Outcome::Written(_) | cas::Outcome::Found(_) => {}
        cas::Outcome::Taken => {
            versioned.discard_staged(remote, &staged).await;
            return Ok(None);
        }
        cas::Outcome::Unknown(error) => {
            return Err(Error::OutcomeUnknown {
                url: remote.url().to_string(),
                operation: "the move to the versioned layout",
                detail: error.to_string(),
                next: "Run sqlite-s3 info URL: a move left half done is finished by the next session that meets it",
            });
        }
    }
    finish(remote, State::ToVersioned(marker), None).await?;
    Ok(Some(number))
}

/// Moves a live versioned database; `None` when a writer committed
/// meanwhile.
async fn to_single(remote: &Remote, writer: &CommitToken, progress: Option<&ProgressFn>) -> Result<Option<u64>> {
    let versioned = Versioned::default();
    let Some(newest) = versioned.newest(remote).await? else {
        return Ok(None);
    };
    let scratch = tempfile::NamedTempFile::new().map_err(Error::io("creating", Path::new("a temporary file")))?;
    versioned
        .materialize(remote, None, None, &newest, scratch.path(), progress)
        .await?;
    let Some(moved) = versioned.freeze(remote, &newest, writer).await? else {
        return Ok(None);
    };
    let marker_etag = match single_state(remote).await? {
        SingleState::Moved { etag, .. } => Some(etag),
        _ => None,
    };
    let number = moved.version;
    finish(remote, State::ToSingle(moved, marker_etag), Some(scratch.path())).await?;
    Ok(Some(number))
}
