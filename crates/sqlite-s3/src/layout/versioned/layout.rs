//! The [`Layout`] implementation of the versioned layout.

use std::path::Path;

use async_trait::async_trait;

use super::commit::write_hint;
use super::versions::Versioned;
use crate::error::Result;
use crate::layout::contract::{
    Base, Found, Landed, Layout, Published, Pulled, conflict, fenced, publish_unknown, with_fence,
};
use crate::layout::in_flight::InFlight;
use crate::layout::manifest::Manifest;
use crate::layout::version::{RemoteVersion, Version};
use crate::options::WriteMode;
use crate::progress::ProgressFn;
use crate::store::Remote;
use crate::store::cas;
use crate::store::keys::Keys;
use crate::timestamp::Timestamp;
use crate::token::CommitToken;

#[async_trait]
impl Layout for Versioned {
    async fn pull(
        &self,
        remote: &Remote,
        known: Option<&RemoteVersion>,
        base_file: Option<Base<'_>>,
        dest: &Path,
        progress: Option<&ProgressFn>,
    ) -> Result<Pulled> {
        let keys = Keys::new(remote);
        let known_number = known.and_then(RemoteVersion::as_manifest).map(|m| m.version);
        let newest = match known_number {
            Some(n) => self.newest_after(remote, &keys, n).await?,
            None => self.latest(remote, &keys).await?,
        };
        let Some(manifest) = newest else {
            if known_number.is_some() {
                return Ok(Pulled::Unchanged);
            }
            remote.check_bucket().await?;
            return Ok(Pulled::Absent);
        };
        if manifest.moved_to_single {
            return Ok(Pulled::Moved { to_version: None });
        }
        self.materialize(remote, known, base_file, &manifest, dest, progress)
            .await
    }

    async fn publish(
        &self,
        remote: &Remote,
        file: &Path,
        base: Option<&RemoteVersion>,
        mode: WriteMode,
        in_flight: &InFlight,
        progress: Option<&ProgressFn>,
    ) -> Result<Found> {
        let keys = Keys::new(remote);
        let (this, token) = in_flight.current();
        let parent: Option<Manifest> = match (mode, base) {
            (WriteMode::LastWriterWins, _) => self.latest(remote, &keys).await?,
            (WriteMode::Conditional, None) => None,
            (WriteMode::Conditional, Some(base)) => match base.as_manifest() {
                Some(m) => Some(m.clone()),
                // A version of the single-object layout (a file pulled
                // before the database moved) is not the newest either.
                None => return Err(conflict(remote)),
            },
        };
        if parent.as_ref().is_some_and(|p| p.moved_to_single) {
            // The database moved to the single-object layout: the retried
            // transaction pulls again and follows it.
            return Err(conflict(remote));
        }
        let Some(parent) = parent else {
            return self.create(remote, &keys, file, in_flight, progress).await;
        };
        let manifest = self
            .upload_version(remote, &keys, file, Some(&parent), token, progress)
            .await?;
        let number = manifest.version;
        let outcome = self
            .create_version(remote, &keys, &manifest, |writer| in_flight.attempt(writer))
            .await?;
        match outcome {
            cas::Outcome::Written(_) => {
                write_hint(remote, &keys, number).await;
                Ok(Found {
                    attempt: this,
                    published: Published::Current(Self::version(manifest)),
                })
            }
            cas::Outcome::Found((attempt, theirs)) => Ok(Found {
                attempt,
                published: self.published(remote, &keys, theirs).await,
            }),
            cas::Outcome::Taken => Err(conflict(remote)),
            cas::Outcome::Unknown(error) => Err(publish_unknown(remote, error)),
        }
    }

    async fn landed(&self, remote: &Remote, in_flight: &InFlight) -> Result<Landed<Found>> {
        let keys = Keys::new(remote);
        if in_flight.last_writer_wins {
            return self.landed_anywhere(remote, &keys, in_flight).await;
        }
        // A conditional commit over version N is exactly version N+1: look
        // there, however many versions came after.
        let number = match &in_flight.base {
            // A base too high to have a successor (a damaged state file)
            // cannot tell.
            Some(Version::Numbered(n)) if *n >= crate::layout::manifest::MAX_VERSION => {
                return Ok(Landed::Unknown(format!(
                    "version {n}, the base of the change, is out of range"
                )));
            }
            Some(Version::Numbered(n)) => n + 1,
            // Made over a version of the single-object layout: it could
            // only conflict, so it never landed here.
            Some(_) => return Ok(Landed::Never),
            None => 1,
        };
        let found = self
            .version_check(remote, &keys, number, |writer| in_flight.attempt(writer))
            .await?;
        Ok(match found {
            Landed::Yes((attempt, manifest)) => Landed::Yes(Found {
                attempt,
                published: self.published(remote, &keys, manifest).await,
            }),
            Landed::NotYet if in_flight.base.is_none() => self.creation_check(remote, in_flight).await?,
            Landed::Never => Landed::Never,
            Landed::NotYet => Landed::NotYet,
            Landed::Unknown(reason) => Landed::Unknown(reason),
        })
    }

    async fn fence(
        &self,
        remote: &Remote,
        base: Option<&RemoteVersion>,
        in_flight: &InFlight,
    ) -> Result<Landed<Found>> {
        let keys = Keys::new(remote);
        let base = match base {
            Some(base) => match base.as_manifest() {
                Some(m) => m.clone(),
                // A version of the single-object layout: no try made over
                // it can land here.
                None => return self.landed(remote, in_flight).await,
            },
            None => {
                return Ok(Landed::Unknown(
                    "a first publish of a database cannot be fenced off without creating it".into(),
                ));
            }
        };
        let token = CommitToken::new();
        let fence = with_fence(in_flight, &token);
        let copy = Manifest {
            version: base.version + 1,
            parent: Some(base.version),
            committed_at: Timestamp::now(),
            writer: token.clone(),
            uploaded_bytes: 0,
            moved_to_single: false,
            ..base
        };
        let outcome = match self
            .create_version(remote, &keys, &copy, |writer| fence.attempt(writer))
            .await?
        {
            cas::Outcome::Written(put) => cas::Outcome::Written(put),
            cas::Outcome::Found((attempt, theirs)) => cas::Outcome::Found(Found {
                attempt,
                published: self.published(remote, &keys, theirs).await,
            }),
            cas::Outcome::Taken => cas::Outcome::Taken,
            cas::Outcome::Unknown(e) => cas::Outcome::Unknown(e),
        };
        Ok(fenced(outcome, fence.attempts.len() - 1))
    }
}
