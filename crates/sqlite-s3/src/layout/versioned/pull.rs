//! Building a version in a local file: chunks the working copy or the
//! chunk cache already has cost nothing; the rest is fetched and checked.

use std::path::Path;

use futures::StreamExt;
use object_store::ObjectStoreExt;

use super::chunks::{self, TRANSFERS};
use super::plan;
use super::versions::Versioned;
use crate::error::{Error, Result};
use crate::layout::contract::{Base, Pulled};
use crate::layout::manifest::Manifest;
use crate::layout::version::RemoteVersion;
use crate::progress::{Direction, ProgressFn, report};
use crate::store::Remote;
use crate::store::keys::{Keys, object_name};

impl Versioned {
    /// Writes version `manifest` into `dest`, starting from `base_file` (the
    /// working copy, holding `known`) when it has the same chunking, and
    /// taking each missing chunk from the local cache or the store.
    pub(crate) async fn materialize(
        &self,
        remote: &Remote,
        known: Option<&RemoteVersion>,
        base_file: Option<Base<'_>>,
        manifest: &Manifest,
        dest: &Path,
        progress: Option<&ProgressFn>,
    ) -> Result<Pulled> {
        // Start from the working copy when it holds a known version with the
        // same chunking; fetch only the chunks whose hash differs.
        let base = known
            .and_then(RemoteVersion::as_manifest)
            .filter(|_| base_file.is_some());
        let plan = plan::pull(manifest, base);
        match base_file {
            Some(file) if plan.from_base => file.copy_to(dest)?,
            _ => std::fs::File::create(dest)
                .map(drop)
                .map_err(Error::io("writing", dest))?,
        }
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .open(dest)
            .map_err(Error::io("writing", dest))?;
        out.set_len(manifest.size).map_err(Error::io("writing", dest))?;
        let total = plan.bytes;
        let (mut written, mut downloaded) = (0u64, 0u64);
        // Chunks this machine already has cost nothing.
        let mut fetch = Vec::new();
        for index in plan.wanted {
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
        Ok(Pulled::Downloaded {
            version: Self::version(manifest.clone()),
            hash,
            bytes: downloaded,
        })
    }

    pub(crate) async fn fetch_chunk(
        &self,
        remote: &Remote,
        manifest: &Manifest,
        index: usize,
    ) -> Result<(Vec<u8>, u64)> {
        // `Manifest::check` (every manifest read or kept passes it) made
        // sure of both; a manifest that did not is reported, not indexed.
        let Some((chunk, home)) = manifest
            .chunks
            .get(index)
            .and_then(|chunk| Some((chunk, manifest.homes.get(usize::from(chunk.home))?)))
        else {
            return Err(Error::Corrupt {
                url: object_name(remote, &Keys::new(remote).manifest(manifest.version)),
                reason: format!("chunk {index} is not in a home the manifest lists"),
            });
        };
        let key = Keys::chunk(home, &chunk.hash);
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
}
