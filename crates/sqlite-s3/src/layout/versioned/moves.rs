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

use std::path::Path;

use object_store::path::Path as Key;
use object_store::{ObjectStoreExt, PutPayload};

use super::manifest::Manifest;
use super::{Keys, Versioned, history, object_name};
use crate::error::{Error, Result};
use crate::progress::ProgressFn;
use crate::store::Remote;

/// The key where a conversion by `writer` stages its manifest.
fn staged_key(keys: &Keys, writer: &str) -> Key {
    Key::from(format!("{}/staged/{writer}", keys.root))
}

impl Versioned {
    /// Uploads the chunks of `file` that `parent` lacks and stages the
    /// manifest of the version after `parent`. Returns its number and the
    /// staged key.
    pub(crate) async fn stage(
        &self,
        remote: &Remote,
        file: &Path,
        parent: Option<&Manifest>,
        writer: &str,
        progress: Option<&ProgressFn>,
    ) -> Result<(u64, String)> {
        let keys = Keys::new(remote);
        let manifest = self
            .upload_version(remote, &keys, file, parent, writer, progress)
            .await?;
        let key = staged_key(&keys, writer);
        remote
            .store()
            .put(&key, PutPayload::from(manifest.encode()))
            .await
            .map_err(|e| remote.error("uploading a staged manifest", e))?;
        Ok((manifest.version, key.to_string()))
    }

    /// Creates version `number` from the manifest staged at `staged` by
    /// `writer`, unless that is done already. Safe to run by any number of
    /// processes at once.
    ///
    /// # Failure
    /// [`Error::Corrupt`] when neither the staged manifest nor the version
    /// it was to become can be found, or the version is someone else's.
    pub(crate) async fn finish_staged(&self, remote: &Remote, number: u64, staged: &str, writer: &str) -> Result<()> {
        let keys = Keys::new(remote);
        let staged = Key::from(staged);
        let done = |m: &Option<Manifest>| m.as_ref().is_some_and(|m| m.writer == writer);
        let bytes = match remote.store().get(&staged).await {
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
                    url: object_name(remote, &staged),
                    reason: format!(
                        "a conversion to the versioned layout staged version {number} here, but it is gone"
                    ),
                });
            }
            Err(e) => return Err(remote.error("downloading a staged manifest", e)),
        };
        let manifest = Manifest::decode(&bytes, number, &object_name(remote, &staged))?;
        if !self.create_manifest(remote, &keys, &manifest, true).await?
            && !done(&self.manifest(remote, &keys, number).await?)
        {
            return Err(Error::Corrupt {
                url: object_name(remote, &keys.manifest(number)),
                reason: format!("version {number} should be the one staged by a conversion, but is another"),
            });
        }
        self.discard_staged(remote, staged.as_ref()).await;
        Ok(())
    }

    /// Removes a staged manifest that will not be used. Failures only leave
    /// a small object behind.
    pub(crate) async fn discard_staged(&self, remote: &Remote, staged: &str) {
        if let Err(e) = remote.store().delete(&Key::from(staged)).await {
            tracing::debug!("could not remove the staged manifest {staged}: {e}");
        }
    }

    /// Creates the version after `newest`, a copy of it marked as moved to
    /// the single-object layout. `None` when another commit took the
    /// number first.
    pub(crate) async fn freeze(&self, remote: &Remote, newest: &Manifest, writer: &str) -> Result<Option<Manifest>> {
        let keys = Keys::new(remote);
        let moved = Manifest {
            version: newest.version + 1,
            parent: Some(newest.version),
            committed_at: history::now(),
            writer: writer.to_string(),
            uploaded_bytes: 0,
            moved_to_single: true,
            ..newest.clone()
        };
        if self.create_manifest(remote, &keys, &moved, true).await?
            || self.wrote(remote, &keys, moved.version, writer).await?
        {
            return Ok(Some(moved));
        }
        Ok(None)
    }
}
