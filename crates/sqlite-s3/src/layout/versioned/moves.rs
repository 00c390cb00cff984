//! The versioned layout's side of a conversion between layouts (the
//! protocol is in `layout/convert.rs`).
//!
//! - Into this layout: the new version is uploaded and its manifest
//!   *staged* under `ROOT/staged/<writer>`, not created; the single object
//!   is then replaced by a marker naming the staged manifest, and only then
//!   is the manifest created ([`Versioned::finish_staged`]).
//! - Out of this layout: a copy of the newest version marked
//!   [`Manifest::moved_to_single`] is created as the next version
//!   ([`Versioned::freeze`]); no commit can follow it.
//! - A new database (a first commit, or a branch) is a move from nothing:
//!   its version 1 is staged, a marker naming it is created at the key
//!   with `If-None-Match: *`, then the version is created
//!   ([`Versioned::create_first`]). The marker is what keeps the two
//!   layouts from both holding a database at one key: a single-object
//!   writer's create fails on it, and this one fails on a database object.

use std::path::Path;

use object_store::path::Path as Key;
use object_store::{Attributes, ObjectStoreExt, PutPayload};

use super::versions::Versioned;
use crate::error::{Error, Result};
use crate::layout::contract::{Found, Landed, Published, conflict, publish_unknown};
use crate::layout::in_flight::InFlight;
use crate::layout::manifest::Manifest;
use crate::layout::marker::{Marker, marker_check};
use crate::progress::ProgressFn;
use crate::store::Remote;
use crate::store::cas::{self, Condition};
use crate::store::keys::{Keys, object_name};
use crate::timestamp::Timestamp;
use crate::token::CommitToken;

impl Versioned {
    /// Uploads the chunks of `file` that `parent` lacks and stages the
    /// manifest of the version after `parent`. Returns its number and the
    /// staged key.
    pub(crate) async fn stage(
        &self,
        remote: &Remote,
        file: &Path,
        parent: Option<&Manifest>,
        writer: &CommitToken,
        progress: Option<&ProgressFn>,
    ) -> Result<(u64, Key)> {
        let keys = Keys::new(remote);
        let manifest = self
            .upload_version(remote, &keys, file, parent, writer, progress)
            .await?;
        let key = self.stage_manifest(remote, &keys, &manifest).await?;
        Ok((manifest.version, key))
    }

    /// Uploads `manifest` to the staging key of its writer; returns the key.
    pub(crate) async fn stage_manifest(&self, remote: &Remote, keys: &Keys, manifest: &Manifest) -> Result<Key> {
        let key = keys.staged(&manifest.writer);
        remote
            .store()
            .put(&key, PutPayload::from(manifest.encode()))
            .await
            .map_err(|e| remote.error("uploading a staged manifest", e))?;
        Ok(key)
    }

    /// Creates the database at `remote` in this layout, its version 1 being
    /// `manifest` (whose chunks are uploaded): staged, then a marker at the
    /// key, created only if there is nothing there, then the version.
    /// `mine` tells which writer tokens count as ours (tries of the same
    /// change whose answers were lost). `Taken` when a database of either
    /// layout is there.
    pub(crate) async fn create_first(
        &self,
        remote: &Remote,
        keys: &Keys,
        manifest: &Manifest,
        hint: bool,
        mine: impl Fn(&CommitToken) -> Option<usize> + Sync,
    ) -> Result<cas::Outcome<(usize, Marker)>> {
        debug_assert_eq!(manifest.version, 1);
        let staged = self.stage_manifest(remote, keys, manifest).await?;
        let marker = Marker {
            version: 1,
            writer: manifest.writer.clone(),
        };
        let mine = &mine;
        let outcome = cas::put(
            remote,
            remote.key(),
            PutPayload::from(marker.encode()),
            Attributes::new(),
            &Condition::Absent,
            "creating the database",
            |_| marker_check(remote, &Condition::Absent, mine),
        )
        .await?;
        match outcome {
            // The marker is ours: from here on, an error leaves the database
            // half created (whoever meets the marker finishes it), which is
            // an unknown outcome, never "did not land".
            cas::Outcome::Written(put) => match self.create_manifest(remote, keys, manifest, hint).await {
                Ok(true) => {
                    self.discard_staged(remote, &staged).await;
                    Ok(cas::Outcome::Written(put))
                }
                // A database of this layout made before markers has none:
                // its version 1 is there already, and ours is not made.
                Ok(false) => {
                    self.discard_staged(remote, &staged).await;
                    Ok(cas::Outcome::Taken)
                }
                Err(e) => Ok(cas::Outcome::Unknown(e)),
            },
            cas::Outcome::Found((attempt, theirs)) => {
                // A try whose answer was lost (this one, or an earlier one
                // of the same change): finish what its marker names.
                if theirs.writer != manifest.writer {
                    self.discard_staged(remote, &staged).await;
                }
                match self
                    .finish_staged(remote, theirs.version, &theirs.staged(remote), &theirs.writer)
                    .await
                {
                    Ok(()) => Ok(cas::Outcome::Found((attempt, theirs))),
                    Err(e) => Ok(cas::Outcome::Unknown(e)),
                }
            }
            cas::Outcome::Taken => {
                self.discard_staged(remote, &staged).await;
                Ok(cas::Outcome::Taken)
            }
            // Whoever meets the marker finishes it; the staged manifest stays.
            cas::Outcome::Unknown(error) => Ok(cas::Outcome::Unknown(error)),
        }
    }

    /// [`Layout::publish`](crate::layout::Layout::publish) of a database
    /// that does not exist yet: its first version, behind a marker.
    pub(crate) async fn create(
        &self,
        remote: &Remote,
        keys: &Keys,
        file: &Path,
        in_flight: &InFlight,
        progress: Option<&ProgressFn>,
    ) -> Result<Found> {
        let (this, token) = in_flight.current();
        let manifest = self.upload_version(remote, keys, file, None, token, progress).await?;
        match self
            .create_first(remote, keys, &manifest, true, |writer| in_flight.attempt(writer))
            .await?
        {
            cas::Outcome::Written(_) => Ok(Found {
                attempt: this,
                published: Published::Current(Self::version(manifest)),
            }),
            cas::Outcome::Found((attempt, _)) => {
                // It landed: what it is now is only worth one more look.
                let published = match self.manifest(remote, keys, 1).await {
                    Ok(Some(first)) => self.published(remote, keys, first).await,
                    _ => Published::Superseded,
                };
                Ok(Found { attempt, published })
            }
            cas::Outcome::Taken => Err(conflict(remote)),
            cas::Outcome::Unknown(error) => Err(publish_unknown(remote, error)),
        }
    }

    /// [`Layout::landed`](crate::layout::Layout::landed) of a first commit
    /// whose version 1 does not exist: a marker of ours at the key means
    /// it may still be finished.
    pub(crate) async fn creation_check(&self, remote: &Remote, in_flight: &InFlight) -> Result<Landed<Found>> {
        let mine = |writer: &CommitToken| in_flight.attempt(writer);
        Ok(match marker_check(remote, &Condition::Absent, &mine).await? {
            Landed::Yes(_) | Landed::NotYet => Landed::NotYet,
            Landed::Never => Landed::Never,
            Landed::Unknown(reason) => Landed::Unknown(reason),
        })
    }

    /// Creates version `number` from the manifest staged at `staged` by
    /// `writer`, unless that is done already. Safe to run by any number of
    /// processes at once.
    ///
    /// # Failure
    /// [`Error::Corrupt`] when neither the staged manifest nor the version
    /// it was to become can be found, or the version is someone else's.
    pub(crate) async fn finish_staged(
        &self,
        remote: &Remote,
        number: u64,
        staged: &Key,
        writer: &CommitToken,
    ) -> Result<()> {
        let keys = Keys::new(remote);
        let done = |m: &Option<Manifest>| m.as_ref().is_some_and(|m| m.writer == *writer);
        let bytes = match remote.store().get(staged).await {
            Ok(result) => result
                .bytes()
                .await
                .map_err(|e| remote.error("downloading a staged manifest", e))?,
            Err(object_store::Error::NotFound { .. }) => {
                // Finished by another process, which then removed it.
                if done(&self.manifest(remote, &keys, number).await?) {
                    return Ok(());
                }
                return Err(Error::Corrupt {
                    url: object_name(remote, staged),
                    reason: format!(
                        "a conversion to the versioned layout staged version {number} here, but it is gone"
                    ),
                });
            }
            Err(e) => return Err(remote.error("downloading a staged manifest", e)),
        };
        let manifest = Manifest::decode(&bytes, number, &object_name(remote, staged))?;
        if !self.create_manifest(remote, &keys, &manifest, true).await?
            && !done(&self.manifest(remote, &keys, number).await?)
        {
            return Err(Error::Corrupt {
                url: object_name(remote, &keys.manifest(number)),
                reason: format!("version {number} should be the one staged by a conversion, but is another"),
            });
        }
        self.discard_staged(remote, staged).await;
        Ok(())
    }

    /// Removes a staged manifest that will not be used. Failures only leave
    /// a small object behind.
    pub(crate) async fn discard_staged(&self, remote: &Remote, staged: &Key) {
        if let Err(e) = remote.store().delete(staged).await {
            tracing::debug!("could not remove the staged manifest {staged}: {e}");
        }
    }

    /// Creates the version after `newest`, a copy of it marked as moved to
    /// the single-object layout. `None` when another commit took the
    /// number first.
    pub(crate) async fn freeze(
        &self,
        remote: &Remote,
        newest: &Manifest,
        writer: &CommitToken,
    ) -> Result<Option<Manifest>> {
        let keys = Keys::new(remote);
        let moved = Manifest {
            version: newest.version + 1,
            parent: Some(newest.version),
            committed_at: Timestamp::now(),
            writer: writer.clone(),
            uploaded_bytes: 0,
            moved_to_single: true,
            ..newest.clone()
        };
        if self.create_manifest(remote, &keys, &moved, true).await? {
            return Ok(Some(moved));
        }
        Ok(None)
    }
}
