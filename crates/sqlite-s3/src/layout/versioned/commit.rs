//! Committing a version: chunks first, then the manifest, created with
//! `If-None-Match: *` (the commit point).

use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use object_store::{Attributes, ObjectStoreExt, PutMode, PutPayload};

use super::chunks;
use super::chunks::TRANSFERS;
use super::plan;
use super::versions::Versioned;
use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::layout::contract::{Found, Landed, Published};
use crate::layout::in_flight::InFlight;
use crate::layout::manifest::{Entry, FORMAT, Manifest};
use crate::progress::{Direction, ProgressFn, report};
use crate::store::Remote;
use crate::store::cas::{self, Condition};
use crate::store::keys::Keys;
use crate::timestamp::Timestamp;
use crate::token::CommitToken;

/// How old an unreferenced chunk must be before gc deletes it; a commit
/// that has run for half of it uploads its new chunks again.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);

/// How many versions back [`Layout::landed`](crate::layout::Layout::landed)
/// looks for the token of a last-writer-wins commit.
const LANDED_WINDOW: u64 = 16;

/// The `latest` hint is rewritten by the commits whose number is a multiple
/// of this (and by the first).
pub const HINT_EVERY: u64 = 8;

/// Rewrites the `latest` hint after version `number` was created, when its
/// turn comes. The hint is advisory: readers walk forward from it, so a
/// stale, failed or late write only costs them a request or a few.
pub(super) async fn write_hint(remote: &Remote, keys: &Keys, number: u64) {
    if (number == 1 || number.is_multiple_of(HINT_EVERY))
        && let Err(e) = remote.store().put(&keys.latest(), number.to_string().into()).await
    {
        tracing::debug!("could not update the latest hint of {}: {e}", remote.url());
    }
}

impl Versioned {
    /// Uploads the chunks of `file` that `parent` lacks and returns the
    /// manifest of the version after `parent` (version 1 without one), not
    /// yet created.
    pub(crate) async fn upload_version(
        &self,
        remote: &Remote,
        keys: &Keys,
        file: &Path,
        parent: Option<&Manifest>,
        token: &CommitToken,
        progress: Option<&ProgressFn>,
    ) -> Result<Manifest> {
        let started = std::time::Instant::now();
        let path = file.to_path_buf();
        let size = std::fs::metadata(file).map_err(Error::io("reading", file))?.len();
        let head = crate::sqlite::read_head(file, 100)?;
        let page_size = match head.get(16..18).map(|b| u16::from_be_bytes([b[0], b[1]])) {
            Some(1) => 65_536,
            Some(n) if n >= 512 => u32::from(n),
            _ => 4096,
        };
        let hashes = tokio::task::spawn_blocking(move || chunks::hash_chunks(&path, chunks::CHUNK_SIZE))
            .await
            .expect("hashing does not panic")?;

        // New chunks go to this database's own home (`plan::commit` adds it
        // when the parent's homes lack it: a database whose objects were
        // copied from another key keeps reading its old chunks there). gc of
        // the database copied from does not know of the copy, as it knows of
        // a branch: a copy should be made with `sqlite-s3 branch`.
        let plan = plan::commit(&hashes, size, chunks::CHUNK_SIZE, parent, &keys.own_home()).map_err(|reason| {
            Error::Corrupt {
                url: remote.url().to_string(),
                reason,
            }
        })?;
        let home = plan.homes[usize::from(plan.own)].clone();
        let home = home.as_str();
        report(progress, Direction::Upload, 0, plan.upload_bytes);
        let (mut uploaded, mut done) = (0u64, 0u64);
        let puts = futures::stream::iter(plan.uploads.iter().copied().map(|(index, hash)| async move {
            let key = Keys::chunk(home, &hash);
            let bytes = chunks::read_chunk(file, index, chunks::CHUNK_SIZE)?;
            // The file must not have changed since it was hashed: a chunk is
            // only ever stored under the hash of its bytes.
            if ContentHash::of(&bytes) != hash {
                return Err(Error::TryAgain {
                    url: remote.url().to_string(),
                    reason: format!(
                        "{} changed while it was being published, so nothing of it was committed",
                        file.display()
                    ),
                });
            }
            let compressed = chunks::compress(&bytes);
            let sizes = (compressed.len() as u64, bytes.len() as u64);
            // Overwrite, not create-if-absent: a chunk this commit needs that
            // already exists becomes young again, so gc's grace period covers
            // it until the manifest names it (and a damaged copy is repaired).
            remote
                .store()
                .put_opts(&key, PutPayload::from(compressed), PutMode::Overwrite.into())
                .await
                .map_err(|e| remote.error("uploading a chunk", e))?;
            Ok(sizes)
        }))
        .buffer_unordered(TRANSFERS);
        futures::pin_mut!(puts);
        while let Some(sizes) = puts.next().await {
            let (compressed, raw) = sizes?;
            uploaded += compressed;
            done += raw;
            report(progress, Direction::Upload, done, plan.upload_bytes);
        }
        // A commit this slow may have had its chunks collected by gc (see
        // history/gc.rs): upload them again before the manifest names them.
        if started.elapsed() > DEFAULT_GRACE / 2 {
            self.refresh_chunks(remote, file, home, &plan.uploads).await?;
        }
        let number = parent.map_or(1, |p| p.version + 1);
        Ok(Manifest {
            format: FORMAT,
            version: number,
            parent: parent.map(|p| p.version),
            size,
            page_size,
            chunk_size: chunks::CHUNK_SIZE,
            homes: plan.homes,
            chunks: plan.chunks,
            committed_at: Timestamp::now(),
            writer: token.clone(),
            uploaded_bytes: uploaded,
            moved_to_single: false,
        })
    }

    /// Uploads again every chunk of `uploads` (index in `file`, hash), so
    /// that each is young enough for gc's grace period to cover it until
    /// the manifest names it.
    pub(crate) async fn refresh_chunks(
        &self,
        remote: &Remote,
        file: &Path,
        home: &str,
        uploads: &[(usize, ContentHash)],
    ) -> Result<()> {
        for (index, hash) in uploads {
            let bytes = chunks::compress(&chunks::read_chunk(file, *index, chunks::CHUNK_SIZE)?);
            remote
                .store()
                .put_opts(&Keys::chunk(home, hash), bytes.into(), PutMode::Overwrite.into())
                .await
                .map_err(|e| remote.error("uploading a chunk", e))?;
        }
        Ok(())
    }
}

impl Versioned {
    /// Creates version `manifest.version` with `If-None-Match: *`; `mine`
    /// tells which writer tokens count as ours (and which try they were).
    pub(crate) async fn create_version(
        &self,
        remote: &Remote,
        keys: &Keys,
        manifest: &Manifest,
        mine: impl Fn(&CommitToken) -> Option<usize> + Sync,
    ) -> Result<cas::Outcome<(usize, Manifest)>> {
        let number = manifest.version;
        let mine = &mine;
        cas::put(
            remote,
            &keys.manifest(number),
            PutPayload::from(manifest.encode()),
            Attributes::new(),
            &Condition::Absent,
            "uploading a manifest",
            |_| self.version_check(remote, keys, number, mine),
        )
        .await
    }

    /// Who holds version `number`: one of ours (`mine`), someone else, or
    /// no one yet. A version deleted by gc cannot tell.
    pub(crate) async fn version_check(
        &self,
        remote: &Remote,
        keys: &Keys,
        number: u64,
        mine: impl Fn(&CommitToken) -> Option<usize> + Sync,
    ) -> Result<Landed<(usize, Manifest)>> {
        Ok(match self.entry(remote, keys, number).await? {
            None => Landed::NotYet,
            Some(Entry::Deleted) => Landed::Unknown(format!("version {number} was deleted by gc")),
            Some(Entry::Version(m)) => match mine(&m.writer) {
                Some(attempt) => Landed::Yes((attempt, m)),
                None => Landed::Never,
            },
        })
    }

    /// What a version of ours that landed is now: the newest, or built on.
    /// It landed whatever happens here: when the store cannot say what
    /// followed it, it counts as built on, and the next pull finds out.
    pub(crate) async fn published(&self, remote: &Remote, keys: &Keys, manifest: Manifest) -> Published {
        match self.newest_after(remote, keys, manifest.version).await {
            Ok(None) => Published::Current(Self::version(manifest)),
            Ok(Some(_)) => Published::Superseded,
            Err(e) => {
                tracing::debug!("what followed version {} is unknown: {e}", manifest.version);
                Published::Superseded
            }
        }
    }

    /// Last-writer-wins commits land on whatever was newest: look back over
    /// the last versions. Not finding one proves nothing.
    pub(crate) async fn landed_anywhere(
        &self,
        remote: &Remote,
        keys: &Keys,
        in_flight: &InFlight,
    ) -> Result<Landed<Found>> {
        let Some(newest) = self.latest(remote, keys).await? else {
            return Ok(Landed::Unknown("the database has no version".into()));
        };
        if let Some(attempt) = in_flight.attempt(&newest.writer) {
            return Ok(Landed::Yes(Found {
                attempt,
                published: Published::Current(Self::version(newest)),
            }));
        }
        let oldest = newest.version.saturating_sub(LANDED_WINDOW).max(1);
        for n in (oldest..newest.version).rev() {
            if let Some(m) = self.manifest(remote, keys, n).await?
                && let Some(attempt) = in_flight.attempt(&m.writer)
            {
                return Ok(Landed::Yes(Found {
                    attempt,
                    published: Published::Superseded,
                }));
            }
        }
        Ok(Landed::Unknown(format!(
            "a last-writer-wins commit is not among the last {LANDED_WINDOW} versions, which proves nothing"
        )))
    }
}

impl Versioned {
    /// Creates a manifest if its number is free; `false` when another
    /// writer's version holds it. A create whose answer was lost is found
    /// by its writer token. `hint`: whether to update the `latest` hint
    /// when its turn comes.
    ///
    /// # Failure
    /// [`Error::OutcomeUnknown`] when the store cannot say whether it was
    /// created.
    pub(crate) async fn create_manifest(
        &self,
        remote: &Remote,
        keys: &Keys,
        manifest: &Manifest,
        hint: bool,
    ) -> Result<bool> {
        let writer = &manifest.writer;
        let outcome = self
            .create_version(remote, keys, manifest, |w| (w == writer).then_some(0))
            .await?;
        match outcome {
            cas::Outcome::Written(_) => {
                if hint {
                    write_hint(remote, keys, manifest.version).await;
                }
                Ok(true)
            }
            cas::Outcome::Found(_) => Ok(true),
            cas::Outcome::Taken => Ok(false),
            cas::Outcome::Unknown(error) => Err(Error::OutcomeUnknown {
                url: remote.url().to_string(),
                operation: "creating a version",
                detail: error.to_string(),
                next: "Look at the versions (sqlite-s3 log URL) before running it again",
            }),
        }
    }
}
