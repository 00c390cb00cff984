//! Garbage collection: deleting old versions and the chunks no kept
//! version uses.
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
use object_store::path::Path as Key;
use object_store::{ObjectStoreExt, PutPayload};
use serde::Serialize;

use super::branch::BranchRecord;
use super::log::not_versioned;
use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::layout::manifest::{self, Entry, Manifest};
use crate::layout::marker::{MARKER_MAX, Marker};
use crate::layout::versioned::Versioned;
use crate::store::Remote;
use crate::store::keys::{Keys, object_name};
use crate::timestamp::Timestamp;

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

async fn list(remote: &Remote, prefix: &Key, what: &'static str) -> Result<Vec<object_store::ObjectMeta>> {
    remote
        .store()
        .list(Some(prefix))
        .try_collect()
        .await
        .map_err(|e| remote.error(what, e))
}

/// Deletes the manifests outside `keep` (never the newest) and the
/// chunks of this database's own home that no kept manifest of it or of
/// a branch references and that are older than `grace`.
pub async fn gc(remote: &Remote, keep: Keep, grace: Duration) -> Result<GcReport> {
    let layout = Versioned::default();
    // A move between layouts left half done would leave chunks no
    // version names yet: finish it first.
    crate::layout::convert::settle(remote).await?;
    let keys = Keys::new(remote);
    let numbers = layout.listed(remote, &keys).await?;
    let newest = *numbers.last().ok_or_else(|| not_versioned(remote))?;
    let now = Timestamp::now();
    let mut report = GcReport::default();
    let mut referenced: HashSet<ContentHash> = HashSet::new();
    let own_home = keys.own_home();
    for &n in numbers.iter().rev() {
        let manifest = match layout.entry(remote, &keys, n).await? {
            Some(Entry::Version(m)) => m,
            // Deleted by an earlier gc: nothing to do.
            Some(Entry::Deleted) if n != newest => continue,
            // The newest is gone or a tombstone: another gc is racing this one.
            _ => {
                return Err(Error::TryAgain {
                    url: remote.url().to_string(),
                    reason: format!("version {n} changed while gc ran (is another gc running?)"),
                });
            }
        };
        if keeps(keep, n, newest, manifest.committed_at, now) {
            report.versions_kept += 1;
            note_references(&manifest, &own_home, &mut referenced);
        } else {
            // A tombstone, not a deletion: the number stays taken, and a
            // reader whose copy is this old learns to look further.
            remote
                .store()
                .put(&keys.manifest(n), PutPayload::from(manifest::tombstone(n)))
                .await
                .map_err(|e| remote.error("deleting a version", e))?;
            report.manifests_deleted += 1;
        }
    }
    note_branches(&layout, remote, &keys, &own_home, grace, &mut referenced).await?;
    // Versions committed while gc ran are kept and may reuse any chunk;
    // so may branches recorded meanwhile. Look again just before deleting.
    for n in layout.listed(remote, &keys).await?.into_iter().filter(|n| *n > newest) {
        if let Some(m) = layout.manifest(remote, &keys, n).await? {
            note_references(&m, &own_home, &mut referenced);
        }
    }
    note_branches(&layout, remote, &keys, &own_home, grace, &mut referenced).await?;
    let listed = list(remote, &Key::from(own_home.as_str()), "listing the chunks").await?;
    let plan = plan_chunks(listed, &referenced, grace, now);
    report.chunks_in_grace += plan.in_grace;
    for chunk in plan.unreferenced {
        // A commit may have rewritten it since the listing, to use it.
        match remote.store().head(&chunk.location).await {
            Ok(meta) if Timestamp::from(meta.last_modified).age_at(Timestamp::now()) < grace => {
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
    layout: &Versioned,
    remote: &Remote,
    keys: &Keys,
    own_home: &str,
    grace: Duration,
    referenced: &mut HashSet<ContentHash>,
) -> Result<()> {
    let branches = list(remote, &keys.branches(), "listing the branches").await?;
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
        let branch_keys = Keys::of(&record.key);
        let numbers = layout.listed(remote, &branch_keys).await?;
        if numbers.is_empty() {
            match unfinished_branch(remote, &record, &branch_keys).await? {
                // Staged: what it will be is known.
                Some(Some(staged)) => {
                    note_references(&staged, own_home, referenced);
                    continue;
                }
                // A database of the other layout took its key first.
                Some(None) => continue,
                None if Timestamp::from(branch.last_modified).age_at(Timestamp::now()) > grace => {
                    tracing::info!("a branch of {} at key {} never came to be", remote.url(), record.key);
                    continue;
                }
                None => {}
            }
            return Err(Error::TryAgain {
                url: remote.url().to_string(),
                reason: format!(
                    "a branch of it at key {} is being created, and gc must know which chunks it uses: wait until \
                     it exists",
                    record.key
                ),
            });
        }
        for n in numbers {
            if let Some(m) = layout.manifest(remote, &branch_keys, n).await? {
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
    if object.meta.size >= MARKER_MAX {
        return Ok(Some(None));
    }
    let bytes = object.bytes().await.map_err(|e| remote.error("checking a branch", e))?;
    let Some(marker) = Marker::decode(&bytes, remote)? else {
        return Ok(Some(None));
    };
    let staged = branch_keys.staged(&marker.writer);
    let bytes = match remote.store().get(&staged).await {
        Ok(result) => result
            .bytes()
            .await
            .map_err(|e| remote.error("reading a staged version", e))?,
        // Finished since its versions were listed, most likely: its
        // chunks are only known by listing again.
        Err(object_store::Error::NotFound { .. }) => {
            return Err(Error::TryAgain {
                url: remote.url().to_string(),
                reason: format!("a branch of it at key {} was being created while gc ran", record.key),
            });
        }
        Err(e) => return Err(remote.error("reading a staged version", e)),
    };
    Manifest::decode(&bytes, marker.version, &object_name(remote, &staged)).map(|m| Some(Some(m)))
}

/// Whether gc keeps version `n` (committed at `committed_at`) of a
/// database whose newest version is `newest`, at `now`. The newest is
/// always kept.
fn keeps(keep: Keep, n: u64, newest: u64, committed_at: Timestamp, now: Timestamp) -> bool {
    n == newest
        || match keep {
            Keep::Last(count) => newest - n < count.max(1),
            Keep::For(limit) => committed_at.age_at(now) <= limit,
        }
}

/// The chunks of the own home that gc may delete, as far as a listing
/// tells: those no kept version references, older than the grace period.
#[derive(Debug, PartialEq, Eq)]
struct ChunkPlan {
    /// Unreferenced and old enough: each is looked at once more before it
    /// is deleted.
    unreferenced: Vec<object_store::ObjectMeta>,
    /// Unreferenced but younger than the grace period.
    in_grace: u64,
}

fn plan_chunks(
    listed: Vec<object_store::ObjectMeta>,
    referenced: &HashSet<ContentHash>,
    grace: Duration,
    now: Timestamp,
) -> ChunkPlan {
    let mut plan = ChunkPlan {
        unreferenced: Vec::new(),
        in_grace: 0,
    };
    for chunk in listed {
        // A name that is not a hash is no chunk of any version.
        let hash = chunk
            .location
            .filename()
            .and_then(|name| name.parse::<ContentHash>().ok());
        if hash.is_some_and(|hash| referenced.contains(&hash)) {
            continue;
        }
        if Timestamp::from(chunk.last_modified).age_at(now) < grace {
            plan.in_grace += 1;
        } else {
            plan.unreferenced.push(chunk);
        }
    }
    plan
}

/// Adds to `referenced` the chunks of `manifest` that live in `own_home`.
fn note_references(manifest: &Manifest, own_home: &str, referenced: &mut HashSet<ContentHash>) {
    for chunk in &manifest.chunks {
        // A home the manifest does not list (which `Manifest::check` rules
        // out) could be this one: keep the chunk rather than guess.
        if manifest
            .homes
            .get(usize::from(chunk.home))
            .is_none_or(|home| home == own_home)
        {
            referenced.insert(chunk.hash);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from(chrono::DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap())
    }

    #[test]
    fn gc_keeps_the_newest_and_what_the_policy_asks() {
        let now = at(1000);
        // Keep the last two of 1..=5.
        let kept: Vec<u64> = (1..=5).filter(|&n| keeps(Keep::Last(2), n, 5, at(0), now)).collect();
        assert_eq!(kept, [4, 5]);
        // Keep::Last(0) still keeps the newest.
        assert!(keeps(Keep::Last(0), 5, 5, at(0), now));
        assert!(!keeps(Keep::Last(0), 4, 5, at(0), now));
        // Keep what is at most 100 s old; the newest whatever its age.
        let limit = Keep::For(Duration::from_secs(100));
        assert!(keeps(limit, 3, 5, at(900), now));
        assert!(!keeps(limit, 3, 5, at(899), now));
        assert!(keeps(limit, 5, 5, at(0), now));
    }

    #[test]
    fn gc_plans_to_delete_only_unreferenced_chunks_older_than_the_grace_period() {
        let meta = |name: String, seconds: i64| object_store::ObjectMeta {
            location: Key::from(format!("app.db.sqlite-s3/chunks/{name}")),
            last_modified: chrono::DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap(),
            size: 1,
            e_tag: None,
            version: None,
        };
        let (used, old, young) = (ContentHash::of(b"a"), ContentHash::of(b"b"), ContentHash::of(b"c"));
        let listed = vec![
            meta(used.to_hex(), 0),
            meta(old.to_hex(), 0),
            meta(young.to_hex(), 950),
            meta("stray".into(), 0),
        ];
        let plan = plan_chunks(listed, &HashSet::from([used]), Duration::from_secs(100), at(1000));
        let names: Vec<_> = plan
            .unreferenced
            .iter()
            .map(|m| m.location.filename().unwrap().to_string())
            .collect();
        assert_eq!(names, [old.to_hex(), "stray".to_string()]);
        assert_eq!(plan.in_grace, 1);
    }
    use crate::layout::versioned::tests::publish;
    use crate::layout::{Layout, Pulled};
    use crate::options::StoreOptions;

    /// A commit whose chunks exist already (uploaded long ago, referenced by
    /// a version gc deletes) uploads them again: gc, running after that and
    /// before the manifest is created, finds them young and keeps them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_that_reuses_an_old_chunk_keeps_it_from_gc() {
        let name = format!("memory://gc-reuse-{:08x}/app.db", fastrand::u32(..));
        let remote = Remote::connect(&name, &StoreOptions::new()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let mut bytes = vec![0u8; 3 * 256 * 1024];
        fastrand::fill(&mut bytes);
        std::fs::write(&a, &bytes).unwrap();
        fastrand::fill(&mut bytes);
        std::fs::write(&b, &bytes).unwrap();
        let v1 = publish(&remote, &a, None).await;
        let v2 = publish(&remote, &b, Some(&v1)).await;
        // A's chunks grow older than the grace period used below.
        tokio::time::sleep(Duration::from_millis(1500)).await;

        // A commit goes back to A's bytes: its chunks are uploaded again,
        // then gc runs before the commit creates its manifest.
        let layout = Versioned::default();
        let keys = Keys::new(&remote);
        let parent = v2.as_manifest().expect("a versioned version");
        let next = layout
            .upload_version(&remote, &keys, &a, Some(parent), &"c0ffee".into(), None)
            .await
            .unwrap();
        let report = gc(&remote, Keep::Last(1), Duration::from_secs(1)).await.unwrap();
        assert_eq!(report.manifests_deleted, 1, "{report:?}");
        assert_eq!(report.chunks_deleted, 0, "{report:?}");
        assert!(layout.create_manifest(&remote, &keys, &next, true).await.unwrap());

        let copy = dir.path().join("copy");
        let pulled = layout.pull(&remote, None, None, &copy, None).await.unwrap();
        assert!(matches!(pulled, Pulled::Downloaded { .. }), "{pulled:?}");
        assert_eq!(std::fs::read(&copy).unwrap(), std::fs::read(&a).unwrap());
        assert_eq!(next.version, 3);
    }
}
