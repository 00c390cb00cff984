//! The versioned layout: a database costs what changed.
//!
//! ```text
//! KEY.sqlite-s3/
//!   manifests/00000000000000000001    immutable, zstd JSON: one complete version each
//!   manifests/00000000000000000002
//!   chunks/<blake3 of the bytes>       immutable, zstd: 256 KiB of the database file
//!   latest                             a hint: a recent version number (advisory)
//! ```
//!
//! - **Commit**: cut the file into 256 KiB chunks, upload the chunks the base
//!   version lacks (create-if-absent: content-addressed, so an existing one
//!   is fine), then create manifest N+1 with `If-None-Match: *`. Exactly one
//!   of several concurrent committers on N wins; the others get a conflict.
//!   Only create-if-absent is needed, which every store has.
//! - **Warm pull**: GET manifest N+1; 404 means N is still the newest: one
//!   request, nothing downloaded. Otherwise walk forward to the newest and
//!   download only the chunks whose hash changed, patched into a copy of the
//!   working copy; every chunk is checked against its hash.
//! - **Cold pull**: GET the `latest` hint, then walk forward from it; with no
//!   hint, one LIST of the manifests. The hint is rewritten every
//!   [`HINT_EVERY`] versions, so a commit costs no request for it most of the
//!   time, and a cold open walks at most that many versions forward.

pub mod cache;
mod chunks;
pub mod history;
pub mod manifest;
mod moves;

pub(crate) use self::moves::marker_check;

use std::collections::HashMap;
use std::path::Path;

use async_trait::async_trait;
use futures::StreamExt;
use object_store::path::Path as Key;
use object_store::{Attributes, ObjectStoreExt, PutMode, PutPayload};

use self::manifest::{ChunkRef, Entry, FORMAT, Manifest};
use super::{Found, Landed, Layout, Published, Pulled, RemoteVersion, extend_lineage};
use crate::cache::state::InFlight;
use crate::error::{Error, Result};
use crate::options::WriteMode;
use crate::progress::{Direction, ProgressFn, report};
use crate::store::Remote;
use crate::store::cas::{self, Condition};

/// The `latest` hint is rewritten by the commits whose number is a multiple
/// of this (and by the first).
pub const HINT_EVERY: u64 = 8;

/// Chunk transfers under way at once.
const TRANSFERS: usize = 8;

/// How many versions back [`Layout::landed`] looks for a commit token.
const LANDED_WINDOW: u64 = 16;

/// See the module docs.
#[derive(Debug, Default, Clone)]
pub struct Versioned {
    /// Where downloaded chunks are kept, if anywhere.
    cache: Option<cache::ChunkCache>,
}

impl Versioned {
    /// The layout, keeping downloaded chunks in `cache`.
    pub fn with_cache(cache: cache::ChunkCache) -> Self {
        Self { cache: Some(cache) }
    }
}

/// The keys of one database.
struct Keys {
    root: String,
}

impl Keys {
    fn new(remote: &Remote) -> Self {
        Self {
            root: format!("{}.sqlite-s3", remote.key()),
        }
    }

    fn manifest(&self, n: u64) -> Key {
        Key::from(format!("{}/manifests/{n:020}", self.root))
    }

    fn manifests(&self) -> Key {
        Key::from(format!("{}/manifests", self.root))
    }

    fn latest(&self) -> Key {
        Key::from(format!("{}/latest", self.root))
    }

    fn own_home(&self) -> String {
        format!("{}/chunks", self.root)
    }
}

fn chunk_key(home: &str, hash: &str) -> Key {
    Key::from(format!("{home}/{hash}"))
}

/// Rewrites the `latest` hint after version `number` was created, when its
/// turn comes. The hint is advisory: readers walk forward from it, so a
/// stale, failed or late write only costs them a request or a few.
async fn write_hint(remote: &Remote, keys: &Keys, number: u64) {
    if (number == 1 || number.is_multiple_of(HINT_EVERY))
        && let Err(e) = remote.store().put(&keys.latest(), number.to_string().into()).await
    {
        tracing::debug!("could not update the latest hint of {}: {e}", remote.url());
    }
}

/// Names an object of the database in messages.
fn object_name(remote: &Remote, key: &Key) -> String {
    format!("{} (object {key})", remote.url())
}

fn version_number(version: &RemoteVersion) -> Option<u64> {
    version.etag.parse().ok()
}

impl Versioned {
    /// Writes version `manifest` into `dest`, starting from `base_file` (the
    /// working copy, holding `known`) when it has the same chunking, and
    /// taking each missing chunk from the local cache or the store.
    pub(crate) async fn materialize(
        &self,
        remote: &Remote,
        known: Option<&RemoteVersion>,
        base_file: Option<crate::layout::Base<'_>>,
        manifest: &Manifest,
        dest: &Path,
        progress: Option<&ProgressFn>,
    ) -> Result<Pulled> {
        // Start from the working copy when it holds a known version with the
        // same chunking; fetch only the chunks whose hash differs.
        let base = known
            .and_then(|v| v.manifest.as_deref())
            .zip(base_file)
            .filter(|(m, _)| m.chunk_size == manifest.chunk_size);
        match base {
            Some((_, file)) => file.copy_to(dest)?,
            None => std::fs::File::create(dest)
                .map(drop)
                .map_err(Error::io("writing", dest))?,
        }
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .open(dest)
            .map_err(Error::io("writing", dest))?;
        out.set_len(manifest.size).map_err(Error::io("writing", dest))?;
        let wanted: Vec<usize> = (0..manifest.chunks.len())
            .filter(|&i| base.and_then(|(m, _)| m.chunks.get(i)).map(|c| &c.hash) != Some(&manifest.chunks[i].hash))
            .collect();
        let total: u64 = wanted
            .iter()
            .map(|&i| manifest.range(i).end - manifest.range(i).start)
            .sum();
        let (mut written, mut downloaded) = (0u64, 0u64);
        // Chunks this machine already has cost nothing.
        let mut fetch = Vec::new();
        for index in wanted {
            let cached = self.cache.as_ref().and_then(|c| c.get(&manifest.chunks[index].hash));
            let range = manifest.range(index);
            match cached {
                Some(bytes) if bytes.len() as u64 == range.end - range.start => {
                    chunks::write_at(&mut out, range.start, &bytes, dest)?;
                    written += bytes.len() as u64;
                }
                _ => fetch.push(index),
            }
        }
        {
            let manifest = &manifest;
            let fetches = futures::stream::iter(fetch)
                .map(|index| async move { (index, self.fetch_chunk(remote, manifest, index).await) })
                .buffer_unordered(TRANSFERS);
            futures::pin_mut!(fetches);
            while let Some((index, fetched)) = fetches.next().await {
                let (bytes, compressed) = fetched?;
                chunks::write_at(&mut out, manifest.range(index).start, &bytes, dest)?;
                if let Some(cache) = &self.cache {
                    cache.put(&manifest.chunks[index].hash, &bytes);
                }
                written += bytes.len() as u64;
                downloaded += compressed;
                report(progress, Direction::Download, written, total);
            }
        }
        if let Some(cache) = &self.cache {
            cache.trim();
        }
        out.sync_all().map_err(Error::io("writing", dest))?;
        drop(out);
        let (hash, _) = crate::sqlite::hash_file(dest)?;
        let lineage = vec![manifest.writer.clone()];
        Ok(Pulled::Downloaded {
            version: Self::version(manifest.clone(), lineage),
            hash,
            bytes: downloaded,
        })
    }

    /// Uploads the chunks of `file` that `parent` lacks and returns the
    /// manifest of the version after `parent` (version 1 without one), not
    /// yet created.
    async fn upload_version(
        &self,
        remote: &Remote,
        keys: &Keys,
        file: &Path,
        parent: Option<&Manifest>,
        token: &str,
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

        let homes = parent
            .as_ref()
            .map_or_else(|| vec![keys.own_home()], |p| p.homes.clone());
        let existing: HashMap<&str, &ChunkRef> = parent
            .iter()
            .flat_map(|p| p.chunks.iter().map(|c| (c.hash.as_str(), c)))
            .collect();
        let own = homes.iter().position(|h| *h == keys.own_home()).expect("pushed above");
        let own = u16::try_from(own).map_err(|_| Error::InvalidState("too many chunk homes".into()))?;
        let mut refs = Vec::with_capacity(hashes.len());
        let mut sent: HashMap<String, ()> = HashMap::new();
        let to_send: u64 = hashes
            .iter()
            .enumerate()
            .filter(|(_, h)| !existing.contains_key(h.as_str()))
            .map(|(i, _)| {
                let start = i as u64 * chunks::CHUNK_SIZE;
                (start + chunks::CHUNK_SIZE).min(size) - start
            })
            .sum();
        report(progress, Direction::Upload, 0, to_send);
        let mut uploads = Vec::new();
        for (index, hash) in hashes.iter().enumerate() {
            if let Some(existing) = existing.get(hash.as_str()) {
                refs.push((*existing).clone());
                continue;
            }
            refs.push(ChunkRef {
                hash: hash.clone(),
                home: own,
            });
            if sent.insert(hash.clone(), ()).is_none() {
                uploads.push((index, chunk_key(&homes[usize::from(own)], hash)));
            }
        }
        let (mut uploaded, mut done) = (0u64, 0u64);
        let hashes_ref = &hashes;
        let puts = futures::stream::iter(uploads.into_iter().map(|(index, key)| async move {
            let bytes = chunks::read_chunk(file, index, chunks::CHUNK_SIZE)?;
            // The file must not have changed since it was hashed: a chunk is
            // only ever stored under the hash of its bytes.
            if blake3::hash(&bytes).to_hex().as_str() != hashes_ref[index] {
                return Err(Error::InvalidState(format!(
                    "{} changed while it was being published; publish again",
                    file.display()
                )));
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
            report(progress, Direction::Upload, done, to_send);
        }
        // A commit this slow may have had its chunks collected by gc (see
        // history.rs): upload them again before the manifest names them.
        if started.elapsed() > history::DEFAULT_GRACE / 2 {
            self.refresh_chunks(remote, file, &hashes, &homes[usize::from(own)], &sent)
                .await?;
        }
        let number = parent.map_or(1, |p| p.version + 1);
        Ok(Manifest {
            format: FORMAT,
            version: number,
            parent: parent.map(|p| p.version),
            size,
            page_size,
            chunk_size: chunks::CHUNK_SIZE,
            homes,
            chunks: refs,
            committed_at: history::now(),
            writer: token.to_string(),
            uploaded_bytes: uploaded,
            moved_to_single: false,
        })
    }

    /// What manifest key `n` holds, or `None` when there is nothing.
    async fn entry(&self, remote: &Remote, keys: &Keys, n: u64) -> Result<Option<Entry>> {
        let key = keys.manifest(n);
        let bytes = match remote.store().get(&key).await {
            Ok(result) => result
                .bytes()
                .await
                .map_err(|e| remote.error("downloading a manifest", e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(remote.error("downloading a manifest", e)),
        };
        manifest::decode_entry(&bytes, n, &object_name(remote, &key)).map(Some)
    }

    /// Version `n`, or `None` when there is none (or gc deleted it).
    async fn manifest(&self, remote: &Remote, keys: &Keys, n: u64) -> Result<Option<Manifest>> {
        Ok(match self.entry(remote, keys, n).await? {
            Some(Entry::Version(m)) => Some(m),
            Some(Entry::Deleted) | None => None,
        })
    }

    /// The newest manifest after version `n`, walking forward one version at
    /// a time (one request when `n` is the newest). Meeting a tombstone means
    /// `n` is older than anything gc kept: the listing says what is newest.
    async fn newest_after(&self, remote: &Remote, keys: &Keys, n: u64) -> Result<Option<Manifest>> {
        let mut newest = None;
        let mut next = n + 1;
        loop {
            match self.entry(remote, keys, next).await? {
                Some(Entry::Version(manifest)) => newest = Some(manifest),
                Some(Entry::Deleted) => return self.newest_listed(remote, keys).await,
                None => return Ok(newest),
            }
            next += 1;
        }
    }

    /// The newest version according to a listing of the manifests: the
    /// highest number that holds a version (tombstones and strays skipped),
    /// then forward over versions created since the listing.
    async fn newest_listed(&self, remote: &Remote, keys: &Keys) -> Result<Option<Manifest>> {
        let numbers = self.listed(remote, keys).await?;
        let mut newest = None;
        for &n in numbers.iter().rev() {
            if let Some(Entry::Version(m)) = self.entry(remote, keys, n).await? {
                newest = Some(m);
                break;
            }
        }
        let Some(mut newest) = newest else {
            if numbers.is_empty() {
                return Ok(None);
            }
            return Err(Error::Corrupt {
                url: object_name(remote, &keys.manifests()),
                reason: format!("{} manifest(s) listed, but none holds a version", numbers.len()),
            });
        };
        while let Some(manifest) = self.manifest(remote, keys, newest.version + 1).await? {
            newest = manifest;
        }
        Ok(Some(newest))
    }

    /// The newest manifest, knowing nothing: the hint, else one listing,
    /// then forward to the newest.
    async fn latest(&self, remote: &Remote, keys: &Keys) -> Result<Option<Manifest>> {
        let hinted = match remote.store().get(&keys.latest()).await {
            Ok(result) => {
                let bytes = result
                    .bytes()
                    .await
                    .map_err(|e| remote.error("reading the latest hint", e))?;
                std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok())
            }
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => return Err(remote.error("reading the latest hint", e)),
        };
        let Some(start) = hinted else {
            return self.newest_listed(remote, keys).await;
        };
        match self.entry(remote, keys, start).await? {
            Some(Entry::Version(base)) => Ok(Some(self.newest_after(remote, keys, start).await?.unwrap_or(base))),
            // The hint names a version gc deleted, or none at all.
            Some(Entry::Deleted) | None => self.newest_listed(remote, keys).await,
        }
    }

    /// The version numbers listed under `manifests/`, ascending.
    async fn listed(&self, remote: &Remote, keys: &Keys) -> Result<Vec<u64>> {
        use futures::TryStreamExt;
        let listed: Vec<_> = remote
            .store()
            .list(Some(&keys.manifests()))
            .try_collect()
            .await
            .map_err(|e| remote.error("listing the versions", e))?;
        let mut numbers: Vec<u64> = listed
            .iter()
            .filter_map(|m| m.location.filename().and_then(|f| f.parse::<u64>().ok()))
            .collect();
        numbers.sort_unstable();
        Ok(numbers)
    }

    /// The newest entry that holds a version (possibly one marked
    /// [`Manifest::moved_to_single`]), or `None` when there is none.
    pub(crate) async fn newest(&self, remote: &Remote) -> Result<Option<Manifest>> {
        self.latest(remote, &Keys::new(remote)).await
    }

    /// Whether a database in this layout exists at `remote`: one request,
    /// for version 1, which every versioned database has (gc leaves a
    /// tombstone in its place, never nothing).
    pub async fn exists(&self, remote: &Remote) -> Result<bool> {
        let key = Keys::new(remote).manifest(1);
        match remote.store().head(&key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(remote.error("looking for versions", e)),
        }
    }

    async fn fetch_chunk(&self, remote: &Remote, manifest: &Manifest, index: usize) -> Result<(Vec<u8>, u64)> {
        let chunk = &manifest.chunks[index];
        let key = chunk_key(&manifest.homes[usize::from(chunk.home)], &chunk.hash);
        let corrupt = |reason: String| Error::Corrupt {
            url: object_name(remote, &key),
            reason,
        };
        let compressed = match remote.store().get(&key).await {
            Ok(result) => result
                .bytes()
                .await
                .map_err(|e| remote.error("downloading a chunk", e))?,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(corrupt(format!(
                    "chunk {index} of version {} is missing",
                    manifest.version
                )));
            }
            Err(e) => return Err(remote.error("downloading a chunk", e)),
        };
        let bytes = chunks::decompress_checked(&compressed, &chunk.hash, manifest.chunk_size).map_err(corrupt)?;
        let expected = manifest.range(index);
        if bytes.len() as u64 != expected.end - expected.start {
            return Err(corrupt(format!(
                "chunk {index} has {} bytes, not {}",
                bytes.len(),
                expected.end - expected.start
            )));
        }
        Ok((bytes, compressed.len() as u64))
    }

    /// Uploads again every chunk of `sent`, so that each is young enough for
    /// gc's grace period to cover it until the manifest names it.
    async fn refresh_chunks(
        &self,
        remote: &Remote,
        file: &Path,
        hashes: &[String],
        home: &str,
        sent: &HashMap<String, ()>,
    ) -> Result<()> {
        for (index, hash) in hashes.iter().enumerate() {
            if !sent.contains_key(hash) {
                continue;
            }
            let bytes = chunks::compress(&chunks::read_chunk(file, index, chunks::CHUNK_SIZE)?);
            remote
                .store()
                .put_opts(&chunk_key(home, hash), bytes.into(), PutMode::Overwrite.into())
                .await
                .map_err(|e| remote.error("uploading a chunk", e))?;
        }
        Ok(())
    }

    fn version(manifest: Manifest, lineage: Vec<String>) -> RemoteVersion {
        RemoteVersion {
            etag: manifest.version.to_string(),
            object_version: None,
            lineage,
            manifest: Some(Box::new(manifest)),
        }
    }
}

#[async_trait]
impl Layout for Versioned {
    fn name(&self) -> &'static str {
        "versioned"
    }

    async fn pull(
        &self,
        remote: &Remote,
        known: Option<&RemoteVersion>,
        base_file: Option<crate::layout::Base<'_>>,
        dest: &Path,
        progress: Option<&ProgressFn>,
    ) -> Result<Pulled> {
        let keys = Keys::new(remote);
        let known_number = known.and_then(version_number);
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
        let this = in_flight
            .attempts
            .len()
            .checked_sub(1)
            .expect("the try being made is recorded");
        let token = in_flight.attempts[this].token.as_str();
        let parent: Option<Manifest> = match (mode, base) {
            (WriteMode::LastWriterWins, _) => self.latest(remote, &keys).await?,
            (WriteMode::Conditional, None) => None,
            (WriteMode::Conditional, Some(base)) => match &base.manifest {
                Some(m) => Some((**m).clone()),
                None => {
                    // A version of the single-object layout (a file pulled
                    // before the database moved) is not the newest either.
                    let n = version_number(base).ok_or_else(|| super::conflict(remote))?;
                    Some(
                        self.manifest(remote, &keys, n)
                            .await?
                            .ok_or_else(|| super::conflict(remote))?,
                    )
                }
            },
        };
        if parent.as_ref().is_some_and(|p| p.moved_to_single) {
            // The database moved to the single-object layout: the retried
            // transaction pulls again and follows it.
            return Err(super::conflict(remote));
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
                    published: Published::Current(Self::version(manifest, extend_lineage(token, base))),
                })
            }
            cas::Outcome::Found((attempt, theirs)) => Ok(Found {
                attempt,
                published: self.published(remote, &keys, theirs).await,
            }),
            cas::Outcome::Taken => Err(super::conflict(remote)),
            cas::Outcome::Unknown(error) => Err(super::publish_unknown(remote, error)),
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
            Some(base) => match base.parse::<u64>() {
                Ok(n) => n + 1,
                // Made over a version of the single-object layout: it could
                // only conflict, so it never landed here.
                Err(_) => return Ok(Landed::Never),
            },
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
        let base = match base.and_then(version_number) {
            Some(n) => match base.and_then(|b| b.manifest.as_deref()) {
                Some(m) => m.clone(),
                None => match self.manifest(remote, &keys, n).await? {
                    Some(m) => m,
                    None => return self.landed(remote, in_flight).await,
                },
            },
            None => {
                return Ok(Landed::Unknown(
                    "a first publish of a database cannot be fenced off without creating it".into(),
                ));
            }
        };
        let token = super::new_token();
        let fence = super::with_fence(in_flight, &token);
        let copy = Manifest {
            version: base.version + 1,
            parent: Some(base.version),
            committed_at: history::now(),
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
        Ok(super::fenced(outcome, fence.attempts.len() - 1))
    }
}

impl Versioned {
    /// Creates version `manifest.version` with `If-None-Match: *`; `mine`
    /// tells which writer tokens count as ours (and which try they were).
    async fn create_version(
        &self,
        remote: &Remote,
        keys: &Keys,
        manifest: &Manifest,
        mine: impl Fn(&str) -> Option<usize> + Sync,
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
    async fn version_check(
        &self,
        remote: &Remote,
        keys: &Keys,
        number: u64,
        mine: impl Fn(&str) -> Option<usize> + Sync,
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
    async fn published(&self, remote: &Remote, keys: &Keys, manifest: Manifest) -> Published {
        match self.newest_after(remote, keys, manifest.version).await {
            Ok(None) => {
                let lineage = vec![manifest.writer.clone()];
                Published::Current(Self::version(manifest, lineage))
            }
            Ok(Some(_)) => Published::Superseded,
            Err(e) => {
                tracing::debug!("what followed version {} is unknown: {e}", manifest.version);
                Published::Superseded
            }
        }
    }

    /// Last-writer-wins commits land on whatever was newest: look back over
    /// the last versions. Not finding one proves nothing.
    async fn landed_anywhere(&self, remote: &Remote, keys: &Keys, in_flight: &InFlight) -> Result<Landed<Found>> {
        let Some(newest) = self.latest(remote, keys).await? else {
            return Ok(Landed::Unknown("the database has no version".into()));
        };
        if let Some(attempt) = in_flight.attempt(&newest.writer) {
            let lineage = vec![newest.writer.clone()];
            return Ok(Landed::Yes(Found {
                attempt,
                published: Published::Current(Self::version(newest, lineage)),
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
