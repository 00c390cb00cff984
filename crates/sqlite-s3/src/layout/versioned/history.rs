//! History of a versioned database: listing versions, restoring one as a
//! new commit, branching in constant time, and collecting garbage.
//!
//! ## Why gc never deletes a chunk a commit in flight needs
//!
//! A commit uploads its new chunks first and creates its manifest last, so
//! for a while its chunks are referenced by no manifest. gc therefore deletes
//! only chunks that no kept manifest (of this database or of any branch
//! sharing its chunks) references **and** that are older than a grace period
//! (an hour by default). A commit that has been running longer than half the
//! grace period checks, just before creating its manifest, that every chunk
//! it uploaded is still there, and uploads again what is not. Chunks a commit
//! reuses from its base version are referenced by that base, which is the
//! newest version while the commit can still win, and gc never deletes the
//! newest version.
//!
//! ## Why a deleted version leaves a tombstone
//!
//! Readers find newer versions by probing N+1. If gc simply deleted old
//! manifests, a reader whose copy is older than everything kept would probe
//! a gap, take its old copy for the newest, and a writer there could create
//! N+1 again: a version no one after it would ever see. gc therefore
//! overwrites a deleted manifest with a small tombstone: the number stays
//! taken (a create there fails as a conflict), and a reader that meets one
//! finds the newest version with a listing.

use std::collections::HashSet;
use std::time::Duration;

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::PutPayload;
use object_store::path::Path as Key;
use serde::{Deserialize, Serialize};

use super::manifest::{Entry, Manifest};
use super::{Keys, Versioned, object_name};
use crate::error::{Error, Result};
use crate::store::{Remote, cas};

/// How old an unreferenced chunk must be before gc deletes it.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);

/// One version, as `log` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionInfo {
    /// Its number.
    pub version: u64,
    /// When it was committed (RFC 3339).
    pub committed_at: String,
    /// Size of the database.
    pub size: u64,
    /// Chunk bytes its commit uploaded (compressed).
    pub uploaded_bytes: u64,
    /// The commit token of its writer.
    pub writer: String,
    /// The version it was made from.
    pub parent: Option<u64>,
    /// Whether the database moved to the single-object layout after it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub moved_to_single: bool,
}

impl From<&Manifest> for VersionInfo {
    fn from(m: &Manifest) -> Self {
        Self {
            version: m.version,
            committed_at: m.committed_at.clone(),
            size: m.size,
            uploaded_bytes: m.uploaded_bytes,
            writer: m.writer.clone(),
            parent: m.parent,
            moved_to_single: m.moved_to_single,
        }
    }
}

/// Which versions gc keeps. The newest is always kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The newest `n` versions.
    Last(u64),
    /// The versions committed within this long of now.
    For(Duration),
}

/// What gc did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Versions kept.
    pub versions_kept: u64,
    /// Manifests deleted.
    pub manifests_deleted: u64,
    /// Chunks deleted.
    pub chunks_deleted: u64,
    /// Unreferenced chunks kept because they are younger than the grace period.
    pub chunks_in_grace: u64,
}

/// A database that shares this one's chunks, recorded under
/// `ROOT/branches/` so that gc keeps what it uses.
#[derive(Debug, Serialize, Deserialize)]
struct BranchRecord {
    /// The key of the branch's database.
    key: String,
}

fn not_versioned(remote: &Remote) -> Error {
    Error::InvalidState(format!(
        "{} has no versions: history, restore, branch and gc need the versioned layout \
         (sqlite-s3 convert {} --to versioned)",
        remote.url(),
        remote.url()
    ))
}

fn moved(remote: &Remote, version: u64) -> Error {
    Error::InvalidState(format!(
        "{} moved to the single-object layout at version {version}, so it takes no new versions; \
         move it back first (sqlite-s3 convert {} --to versioned)",
        remote.url(),
        remote.url()
    ))
}

async fn list(remote: &Remote, prefix: &Key, what: &'static str) -> Result<Vec<object_store::ObjectMeta>> {
    remote
        .store()
        .list(Some(prefix))
        .try_collect()
        .await
        .map_err(|e| remote.error(what, e))
}

impl Versioned {
    /// Every version, oldest first (one LIST and one GET per version).
    pub async fn log(&self, remote: &Remote) -> Result<Vec<VersionInfo>> {
        let keys = Keys::new(remote);
        let mut versions = Vec::new();
        for n in self.listed(remote, &keys).await? {
            if let Some(m) = self.manifest(remote, &keys, n).await? {
                versions.push(VersionInfo::from(&m));
            }
        }
        if versions.is_empty() {
            return Err(not_versioned(remote));
        }
        Ok(versions)
    }

    /// Makes the state of version `target` the newest version, as a new
    /// commit (nothing is deleted). Returns the new version's number.
    ///
    /// # Failure
    /// [`Error::InvalidState`] when the version does not exist;
    /// [`Error::Conflict`] when other writers kept committing.
    pub async fn restore(&self, remote: &Remote, target: u64, token: &str) -> Result<u64> {
        let keys = Keys::new(remote);
        let old = self.manifest(remote, &keys, target).await?.ok_or_else(|| {
            Error::InvalidState(format!("{} has no version {target} (see sqlite-s3 log)", remote.url()))
        })?;
        for _ in 0..10 {
            let newest = self.latest(remote, &keys).await?.ok_or_else(|| not_versioned(remote))?;
            if newest.moved_to_single {
                return Err(moved(remote, newest.version));
            }
            let number = newest.version + 1;
            let manifest = Manifest {
                version: number,
                parent: Some(newest.version),
                committed_at: now(),
                writer: token.to_string(),
                uploaded_bytes: 0,
                moved_to_single: false,
                ..old.clone()
            };
            if self.create_manifest(remote, &keys, &manifest, true).await? {
                return Ok(number);
            }
        }
        Err(Error::Conflict {
            url: remote.url().to_string(),
            attempts: 10,
        })
    }

    /// Creates at `target` a new database whose first version is `version`
    /// (or the newest) of `source`, sharing its chunks: a few requests,
    /// whatever the size.
    ///
    /// # Failure
    /// [`Error::Conflict`] when a database of either layout exists at `target`;
    /// [`Error::InvalidState`] when `source` has no such version.
    pub async fn branch(&self, source: &Remote, target: &Remote, version: Option<u64>, token: &str) -> Result<u64> {
        let keys = Keys::new(source);
        let from = match version {
            Some(n) => self.manifest(source, &keys, n).await?.ok_or_else(|| {
                Error::InvalidState(format!("{} has no version {n} (see sqlite-s3 log)", source.url()))
            })?,
            None => self.latest(source, &keys).await?.ok_or_else(|| not_versioned(source))?,
        };
        let target_keys = Keys::new(target);
        // A database of either layout at the target: nothing to record.
        if target.head().await?.is_some() {
            return Err(crate::layout::conflict(target));
        }
        // Record the branch in every home its chunks live in, before the
        // branch exists, so that gc there keeps them.
        let record = serde_json::to_vec(&BranchRecord {
            key: target.key().to_string(),
        })
        .expect("a record serializes");
        for home in &from.homes {
            let root = home.strip_suffix("/chunks").unwrap_or(home);
            let name = blake3::hash(target_keys.root.as_bytes()).to_hex();
            let key = Key::from(format!("{root}/branches/{}", &name[..32]));
            source
                .store()
                .put(&key, PutPayload::from(record.clone()))
                .await
                .map_err(|e| source.error("recording a branch", e))?;
        }
        let mut homes = from.homes.clone();
        homes.push(target_keys.own_home());
        let manifest = Manifest {
            version: 1,
            parent: None,
            homes,
            committed_at: now(),
            writer: token.to_string(),
            uploaded_bytes: 0,
            moved_to_single: false,
            ..from
        };
        // Behind a marker at the target's key, as any new database, so that
        // no single-object database can appear there too. No hint: readers
        // find version 1 with one listing.
        let outcome = self
            .create_first(target, &target_keys, &manifest, false, |writer| {
                (writer == token).then_some(0)
            })
            .await?;
        match outcome {
            cas::Outcome::Written(_) | cas::Outcome::Found(_) => Ok(1),
            cas::Outcome::Taken => Err(crate::layout::conflict(target)),
            cas::Outcome::Unknown(error) => Err(Error::OutcomeUnknown {
                url: target.url().to_string(),
                operation: "creating the branch",
                detail: error.to_string(),
                next: "Run sqlite-s3 info on the branch's URL before branching again",
            }),
        }
    }

    /// Deletes the manifests outside `keep` (never the newest) and the
    /// chunks of this database's own home that no kept manifest of it or of
    /// a branch references and that are older than `grace`.
    pub async fn gc(&self, remote: &Remote, keep: Keep, grace: Duration) -> Result<GcReport> {
        // A move between layouts left half done would leave chunks no
        // version names yet: finish it first.
        crate::layout::convert::settle(remote).await?;
        let keys = Keys::new(remote);
        let numbers = self.listed(remote, &keys).await?;
        let newest = *numbers.last().ok_or_else(|| not_versioned(remote))?;
        let now = chrono::Utc::now();
        let mut report = GcReport::default();
        let mut referenced: HashSet<String> = HashSet::new();
        let own_home = keys.own_home();
        for &n in numbers.iter().rev() {
            let manifest = match self.entry(remote, &keys, n).await? {
                Some(Entry::Version(m)) => m,
                // Deleted by an earlier gc: nothing to do.
                Some(Entry::Deleted) if n != newest => continue,
                // The newest is gone or a tombstone: another gc is racing this one.
                _ => {
                    return Err(Error::InvalidState(format!(
                        "version {n} of {} changed under gc: is another gc running? Run it again",
                        remote.url()
                    )));
                }
            };
            let kept = n == newest
                || match keep {
                    Keep::Last(count) => newest - n < count.max(1),
                    Keep::For(limit) => chrono::DateTime::parse_from_rfc3339(&manifest.committed_at)
                        .map(|t| age(now, t.with_timezone(&chrono::Utc)) <= limit)
                        .unwrap_or(true),
                };
            if kept {
                report.versions_kept += 1;
                note_references(&manifest, &own_home, &mut referenced);
            } else {
                // A tombstone, not a deletion: the number stays taken, and a
                // reader whose copy is this old learns to look further.
                remote
                    .store()
                    .put(&keys.manifest(n), PutPayload::from(super::manifest::tombstone(n)))
                    .await
                    .map_err(|e| remote.error("deleting a version", e))?;
                report.manifests_deleted += 1;
            }
        }
        self.note_branches(remote, &keys, &own_home, grace, &mut referenced)
            .await?;
        // Versions committed while gc ran are kept and may reuse any chunk;
        // so may branches recorded meanwhile. Look again just before deleting.
        for n in self.listed(remote, &keys).await?.into_iter().filter(|n| *n > newest) {
            if let Some(m) = self.manifest(remote, &keys, n).await? {
                note_references(&m, &own_home, &mut referenced);
            }
        }
        self.note_branches(remote, &keys, &own_home, grace, &mut referenced)
            .await?;
        let chunks = list(remote, &Key::from(own_home.as_str()), "listing the chunks").await?;
        for chunk in chunks {
            let Some(hash) = chunk.location.filename() else {
                continue;
            };
            if referenced.contains(hash) {
                continue;
            }
            if age(now, chunk.last_modified) < grace {
                report.chunks_in_grace += 1;
                continue;
            }
            // A commit may have rewritten it since the listing, to use it.
            match remote.store().head(&chunk.location).await {
                Ok(meta) if age(chrono::Utc::now(), meta.last_modified) < grace => {
                    report.chunks_in_grace += 1;
                    continue;
                }
                Ok(_) => {}
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(remote.error("checking a chunk", e)),
            }
            remote
                .store()
                .delete(&chunk.location)
                .await
                .map_err(|e| remote.error("deleting a chunk", e))?;
            report.chunks_deleted += 1;
        }
        Ok(report)
    }

    /// Adds the chunks of this database's home that its branches use. A
    /// branch being created counts by its staged version 1; one recorded
    /// less than `grace` ago whose marker is not written yet stops gc (its
    /// chunks are unknown); one older than that never came to be.
    async fn note_branches(
        &self,
        remote: &Remote,
        keys: &Keys,
        own_home: &str,
        grace: Duration,
        referenced: &mut HashSet<String>,
    ) -> Result<()> {
        let branches = list(
            remote,
            &Key::from(format!("{}/branches", keys.root)),
            "listing the branches",
        )
        .await?;
        for branch in branches {
            let bytes = remote
                .store()
                .get(&branch.location)
                .await
                .map_err(|e| remote.error("reading a branch record", e))?
                .bytes()
                .await
                .map_err(|e| remote.error("reading a branch record", e))?;
            let record: BranchRecord = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
                url: object_name(remote, &branch.location),
                reason: format!("branch record does not parse: {e}"),
            })?;
            let branch_keys = Keys {
                root: format!("{}.sqlite-s3", record.key),
            };
            let numbers = self.listed(remote, &branch_keys).await?;
            if numbers.is_empty() {
                match self.unfinished_branch(remote, &record, &branch_keys).await? {
                    // Staged: what it will be is known.
                    Some(Some(staged)) => {
                        note_references(&staged, own_home, referenced);
                        continue;
                    }
                    // A database of the other layout took its key first.
                    Some(None) => continue,
                    None if age(chrono::Utc::now(), branch.last_modified) > grace => {
                        tracing::info!("a branch of {} at key {} never came to be", remote.url(), record.key);
                        continue;
                    }
                    None => {}
                }
                return Err(Error::InvalidState(format!(
                    "a branch of {} at key {} is being created: run gc again once it exists",
                    remote.url(),
                    record.key
                )));
            }
            for n in numbers {
                if let Some(m) = self.manifest(remote, &branch_keys, n).await? {
                    note_references(&m, own_home, referenced);
                }
            }
        }
        Ok(())
    }

    /// What the key of a branch with no version holds: `Some(Some(m))` its
    /// marker and the version 1 it stages; `Some(None)` a database of the
    /// single-object layout (the branch lost to it); `None` nothing yet.
    /// Fails, stopping gc, when the staged version went away meanwhile.
    async fn unfinished_branch(
        &self,
        remote: &Remote,
        record: &BranchRecord,
        branch_keys: &Keys,
    ) -> Result<Option<Option<Manifest>>> {
        let key = Key::from(record.key.as_str());
        let object = match remote.store().get(&key).await {
            Ok(object) => object,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(remote.error("checking a branch", e)),
        };
        if object.meta.size >= crate::layout::convert::MARKER_MAX {
            return Ok(Some(None));
        }
        let bytes = object.bytes().await.map_err(|e| remote.error("checking a branch", e))?;
        let Some(marker) = crate::layout::convert::Marker::decode(&bytes, remote)? else {
            return Ok(Some(None));
        };
        let staged = Key::from(format!("{}/staged/{}", branch_keys.root, marker.writer));
        let bytes = match remote.store().get(&staged).await {
            Ok(result) => result
                .bytes()
                .await
                .map_err(|e| remote.error("reading a staged version", e))?,
            // Finished since its versions were listed, most likely: its
            // chunks are only known by listing again.
            Err(object_store::Error::NotFound { .. }) => {
                return Err(Error::InvalidState(format!(
                    "a branch of {} at key {} was being created while gc ran: run gc again",
                    remote.url(),
                    record.key
                )));
            }
            Err(e) => return Err(remote.error("reading a staged version", e)),
        };
        Manifest::decode(&bytes, marker.version, &object_name(remote, &staged)).map(|m| Some(Some(m)))
    }

    /// Creates a manifest if its number is free; `false` when another
    /// writer's version holds it. A create whose answer was lost is found
    /// by its writer token. `hint`: whether to update the `latest` hint
    /// when its turn comes.
    ///
    /// # Failure
    /// [`Error::OutcomeUnknown`] when the store cannot say whether it was
    /// created.
    pub(super) async fn create_manifest(
        &self,
        remote: &Remote,
        keys: &Keys,
        manifest: &Manifest,
        hint: bool,
    ) -> Result<bool> {
        let writer = manifest.writer.as_str();
        let outcome = self
            .create_version(remote, keys, manifest, |w| (w == writer).then_some(0))
            .await?;
        match outcome {
            cas::Outcome::Written(_) => {
                if hint {
                    super::write_hint(remote, keys, manifest.version).await;
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

fn age(now: chrono::DateTime<chrono::Utc>, then: chrono::DateTime<chrono::Utc>) -> Duration {
    now.signed_duration_since(then).to_std().unwrap_or_default()
}

fn note_references(manifest: &Manifest, own_home: &str, referenced: &mut HashSet<String>) {
    for chunk in &manifest.chunks {
        if manifest.homes[usize::from(chunk.home)] == own_home {
            referenced.insert(chunk.hash.clone());
        }
    }
}

/// Now, as manifests record it.
pub(super) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
