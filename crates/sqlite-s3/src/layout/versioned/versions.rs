//! Reading the versions of a database: the newest, one by number, a
//! listing, and the [`Versioned`] layout itself.

use object_store::ObjectStoreExt;

use super::chunk_cache::ChunkCache;
use crate::error::{Error, Result};
use crate::layout::manifest::{self, Entry, Manifest};
use crate::layout::version::RemoteVersion;
use crate::store::Remote;
use crate::store::keys::{Keys, object_name};

/// See the module docs.
#[derive(Debug, Default, Clone)]
pub struct Versioned {
    /// Where downloaded chunks are kept, if anywhere.
    pub(super) cache: Option<ChunkCache>,
}

impl Versioned {
    /// The layout, keeping downloaded chunks in `cache`.
    pub fn with_cache(cache: ChunkCache) -> Self {
        Self { cache: Some(cache) }
    }
}

impl Versioned {
    /// What manifest key `n` holds, or `None` when there is nothing.
    pub(crate) async fn entry(&self, remote: &Remote, keys: &Keys, n: u64) -> Result<Option<Entry>> {
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
    pub(crate) async fn manifest(&self, remote: &Remote, keys: &Keys, n: u64) -> Result<Option<Manifest>> {
        Ok(match self.entry(remote, keys, n).await? {
            Some(Entry::Version(m)) => Some(m),
            Some(Entry::Deleted) | None => None,
        })
    }

    /// The newest manifest after version `n`, walking forward one version at
    /// a time (one request when `n` is the newest). Meeting a tombstone means
    /// `n` is older than anything gc kept: the listing says what is newest.
    pub(crate) async fn newest_after(&self, remote: &Remote, keys: &Keys, n: u64) -> Result<Option<Manifest>> {
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
    pub(crate) async fn newest_listed(&self, remote: &Remote, keys: &Keys) -> Result<Option<Manifest>> {
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
    pub(crate) async fn latest(&self, remote: &Remote, keys: &Keys) -> Result<Option<Manifest>> {
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
    pub(crate) async fn listed(&self, remote: &Remote, keys: &Keys) -> Result<Vec<u64>> {
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

    pub(crate) fn version(manifest: Manifest) -> RemoteVersion {
        RemoteVersion::Manifest(Box::new(manifest))
    }
}
