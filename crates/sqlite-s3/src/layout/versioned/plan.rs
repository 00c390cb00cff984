//! The plans of a commit and of a pull, apart from the requests and file
//! writes that carry them out: which chunks a commit uploads and how its
//! manifest names them, which chunks a pull must find. Pure functions,
//! tested on their own.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use crate::hash::ContentHash;
use crate::layout::manifest::{ChunkRef, Manifest};

/// What a commit uploads, and the chunk list of its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommitPlan {
    /// The chunk homes of the new version: the parent's, then this
    /// database's own home if the parent's lack it.
    pub homes: Vec<String>,
    /// Which of `homes` is this database's own: where new chunks go.
    pub own: u16,
    /// The chunks of the new version, in file order.
    pub chunks: Vec<ChunkRef>,
    /// The chunks to upload, each once: the index of its first place in
    /// the file, and its hash.
    pub uploads: Vec<(usize, ContentHash)>,
    /// The bytes (uncompressed) the uploads carry.
    pub upload_bytes: u64,
}

/// Plans the commit of a file of `size` bytes whose chunks of `chunk_size`
/// hash to `hashes`, as the version after `parent`: chunks the parent has
/// are named where they are; the others are uploaded to `own_home`.
///
/// # Failure
/// When the parent names more chunk homes than a manifest can hold.
pub(crate) fn commit(
    hashes: &[ContentHash],
    size: u64,
    chunk_size: u64,
    parent: Option<&Manifest>,
    own_home: &str,
) -> Result<CommitPlan, String> {
    let mut homes = parent.map_or_else(Vec::new, |p| p.homes.clone());
    // A database whose versions were copied from another key reads the
    // chunks where they are, and writes its new ones to its own home.
    let own = match homes.iter().position(|h| h == own_home) {
        Some(own) => own,
        None => {
            homes.push(own_home.to_string());
            homes.len() - 1
        }
    };
    let own =
        u16::try_from(own).map_err(|_| format!("a manifest names {} chunk homes, more than it may", homes.len()))?;
    let existing: HashMap<&ContentHash, &ChunkRef> = parent
        .iter()
        .flat_map(|p| p.chunks.iter().map(|c| (&c.hash, c)))
        .collect();
    let mut chunks = Vec::with_capacity(hashes.len());
    let mut sent = HashSet::new();
    let mut uploads = Vec::new();
    let mut upload_bytes = 0;
    for (index, hash) in hashes.iter().enumerate() {
        if let Some(existing) = existing.get(hash) {
            chunks.push((*existing).clone());
            continue;
        }
        chunks.push(ChunkRef { hash: *hash, home: own });
        if sent.insert(*hash) {
            let range = chunk_range(index, chunk_size, size);
            upload_bytes += range.end - range.start;
            uploads.push((index, *hash));
        }
    }
    Ok(CommitPlan {
        homes,
        own,
        chunks,
        uploads,
        upload_bytes,
    })
}

/// What a pull must find, chunk by chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PullPlan {
    /// Whether to start from the base file (it has the same chunking).
    pub from_base: bool,
    /// The chunks of the version that the base does not hold, by index.
    pub wanted: Vec<usize>,
    /// Their bytes.
    pub bytes: u64,
}

/// Plans building `manifest` in a file, starting from a copy of a file
/// holding `base` when there is one with the same chunking: only the
/// chunks whose hash differs are wanted.
pub(crate) fn pull(manifest: &Manifest, base: Option<&Manifest>) -> PullPlan {
    let base = base.filter(|b| b.chunk_size == manifest.chunk_size);
    let wanted: Vec<usize> = manifest
        .chunks
        .iter()
        .enumerate()
        .filter(|(i, chunk)| base.and_then(|b| b.chunks.get(*i)).map(|c| &c.hash) != Some(&chunk.hash))
        .map(|(i, _)| i)
        .collect();
    let bytes = wanted.iter().map(|&i| manifest.range(i)).map(|r| r.end - r.start).sum();
    PullPlan {
        from_base: base.is_some(),
        wanted,
        bytes,
    }
}

/// The bytes of chunk `index` of a file of `size` bytes.
fn chunk_range(index: usize, chunk_size: u64, size: u64) -> Range<u64> {
    let start = index as u64 * chunk_size;
    start..(start + chunk_size).min(size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timestamp::Timestamp;

    fn hash(n: u8) -> ContentHash {
        ContentHash::of(&[n])
    }

    fn manifest(hashes: &[u8], homes: &[&str], size: u64) -> Manifest {
        Manifest {
            format: crate::layout::manifest::FORMAT,
            version: 1,
            parent: None,
            size,
            page_size: 4096,
            chunk_size: 10,
            homes: homes.iter().map(|h| h.to_string()).collect(),
            chunks: hashes.iter().map(|&n| ChunkRef { hash: hash(n), home: 0 }).collect(),
            committed_at: Timestamp::now(),
            writer: "w".into(),
            uploaded_bytes: 0,
            moved_to_single: false,
        }
    }

    #[test]
    fn a_first_commit_uploads_each_distinct_chunk_once() {
        let hashes = [hash(1), hash(2), hash(1), hash(3)];
        let plan = commit(&hashes, 35, 10, None, "a.db.sqlite-s3/chunks").unwrap();
        assert_eq!(plan.homes, ["a.db.sqlite-s3/chunks"]);
        assert_eq!(plan.own, 0);
        assert_eq!(plan.uploads, [(0, hash(1)), (1, hash(2)), (3, hash(3))]);
        // The last chunk is short: 10 + 10 + 5.
        assert_eq!(plan.upload_bytes, 25);
        assert_eq!(plan.chunks.iter().map(|c| c.hash).collect::<Vec<_>>(), hashes);
    }

    #[test]
    fn a_commit_uploads_only_what_its_parent_lacks_and_names_the_rest_where_it_is() {
        let mut parent = manifest(&[1, 2, 3], &["src.db.sqlite-s3/chunks", "a.db.sqlite-s3/chunks"], 30);
        parent.chunks[1].home = 1;
        let hashes = [hash(1), hash(2), hash(9)];
        let plan = commit(&hashes, 30, 10, Some(&parent), "a.db.sqlite-s3/chunks").unwrap();
        assert_eq!(plan.homes, parent.homes);
        assert_eq!(plan.own, 1);
        assert_eq!(plan.uploads, [(2, hash(9))]);
        assert_eq!(plan.upload_bytes, 10);
        assert_eq!(plan.chunks[0], parent.chunks[0], "kept in the branch's source home");
        assert_eq!(plan.chunks[1], parent.chunks[1]);
        assert_eq!(plan.chunks[2], ChunkRef { hash: hash(9), home: 1 });
    }

    #[test]
    fn a_copied_database_writes_new_chunks_to_its_own_home() {
        // Versions copied from a.db to b.db name only a.db's home.
        let parent = manifest(&[1, 2], &["a.db.sqlite-s3/chunks"], 20);
        let plan = commit(&[hash(1), hash(7)], 20, 10, Some(&parent), "b.db.sqlite-s3/chunks").unwrap();
        assert_eq!(plan.homes, ["a.db.sqlite-s3/chunks", "b.db.sqlite-s3/chunks"]);
        assert_eq!(plan.own, 1);
        assert_eq!(plan.chunks[0].home, 0);
        assert_eq!(plan.chunks[1], ChunkRef { hash: hash(7), home: 1 });
    }

    #[test]
    fn too_many_homes_is_refused() {
        let homes: Vec<String> = (0..=u16::MAX as usize).map(|i| format!("h{i}")).collect();
        let homes: Vec<&str> = homes.iter().map(String::as_str).collect();
        let parent = manifest(&[1], &homes, 10);
        assert!(commit(&[hash(1)], 10, 10, Some(&parent), "mine").is_err());
    }

    #[test]
    fn a_pull_wants_the_chunks_whose_hash_differs_from_the_base() {
        let base = manifest(&[1, 2, 3], &["h"], 30);
        let next = manifest(&[1, 5, 3, 6], &["h"], 35);
        let plan = pull(&next, Some(&base));
        assert!(plan.from_base);
        assert_eq!(plan.wanted, [1, 3]);
        assert_eq!(plan.bytes, 10 + 5);
    }

    #[test]
    fn a_pull_without_a_base_of_the_same_chunking_wants_everything() {
        let mut base = manifest(&[1, 2], &["h"], 20);
        base.chunk_size = 20;
        let next = manifest(&[1, 2], &["h"], 20);
        for base in [None, Some(&base)] {
            let plan = pull(&next, base);
            assert!(!plan.from_base);
            assert_eq!(plan.wanted, [0, 1]);
            assert_eq!(plan.bytes, 20);
        }
    }
}
