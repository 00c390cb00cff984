//! Manifests: immutable, numbered, each a complete description of one
//! version of the database.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::hash::ContentHash;
use crate::timestamp::Timestamp;
use crate::token::CommitToken;

/// The format written by this version of the crate.
pub(crate) const FORMAT: u32 = 1;

/// The largest chunk a manifest may declare (a damaged or hostile one could
/// otherwise make a reader allocate without bound).
pub(crate) const MAX_CHUNK_SIZE: u64 = 16 << 20;

/// The largest decoded manifest: 64 MiB holds the chunk list of a 100 GiB
/// database.
const MAX_MANIFEST_BYTES: usize = 64 << 20;

/// Decompresses at most [`MAX_MANIFEST_BYTES`].
fn decompress(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    zstd::stream::Decoder::new(bytes)?
        .take(MAX_MANIFEST_BYTES as u64 + 1)
        .read_to_end(&mut out)?;
    if out.len() > MAX_MANIFEST_BYTES {
        return Err(std::io::Error::other("larger than any manifest"));
    }
    Ok(out)
}

/// One chunk of the database file: the BLAKE3 of its bytes (uncompressed),
/// and which of the manifest's chunk homes holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ChunkRef {
    /// The hash of the chunk's bytes (uncompressed).
    pub hash: ContentHash,
    /// Index into [`Manifest::homes`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub home: u16,
}

fn is_zero(n: &u16) -> bool {
    *n == 0
}

/// A version of the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// Its number: 1 for the first version, then one more each commit.
    pub version: u64,
    /// The version it was made from.
    pub parent: Option<u64>,
    /// Size of the database file in bytes.
    pub size: u64,
    /// SQLite page size.
    pub page_size: u32,
    /// Bytes per chunk (the last chunk may be shorter).
    pub chunk_size: u64,
    /// Key prefixes that hold chunks; the first is this database's own.
    pub homes: Vec<String>,
    /// The chunks, in file order.
    pub chunks: Vec<ChunkRef>,
    /// When it was committed (RFC 3339).
    pub committed_at: Timestamp,
    /// The commit token of its writer.
    pub writer: CommitToken,
    /// Chunk bytes uploaded by this commit (compressed).
    pub uploaded_bytes: u64,
    /// Set on the last version before the database moved to the
    /// single-object layout (`sqlite-s3 convert --to single`): it holds the
    /// state the single object starts from, and no version may follow it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub moved_to_single: bool,
}

/// What a manifest key holds: a version, or the tombstone gc leaves in
/// place of a deleted one. The tombstone keeps the number taken, so that no
/// stale writer can create it again, and tells stale readers to look further.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Entry {
    /// A version.
    Version(Manifest),
    /// A version deleted by gc.
    Deleted,
}

#[derive(Serialize, Deserialize)]
struct Tombstone {
    format: u32,
    version: u64,
    deleted: bool,
}

/// The bytes of the tombstone of version `number`.
pub(crate) fn tombstone(number: u64) -> Vec<u8> {
    let json = serde_json::to_vec(&Tombstone {
        format: FORMAT,
        version: number,
        deleted: true,
    })
    .expect("a tombstone serializes");
    zstd::bulk::compress(&json, 3).expect("compressing to memory cannot fail")
}

/// Decodes what a manifest key holds; `number` is the version its key says.
pub(crate) fn decode_entry(bytes: &[u8], number: u64, what: &str) -> Result<Entry> {
    if let Ok(json) = decompress(bytes)
        && let Ok(t) = serde_json::from_slice::<Tombstone>(&json)
        && t.deleted
        && t.version == number
    {
        return Ok(Entry::Deleted);
    }
    Manifest::decode(bytes, number, what).map(Entry::Version)
}

impl Manifest {
    /// Encodes as zstd-compressed JSON.
    pub fn encode(&self) -> Vec<u8> {
        let json = serde_json::to_vec(self).expect("a manifest always serializes");
        zstd::bulk::compress(&json, 3).expect("compressing to memory cannot fail")
    }

    /// Decodes and checks what [`Manifest::encode`] wrote; `number` is the
    /// version its key says it is. `what` names the object in errors.
    pub fn decode(bytes: &[u8], number: u64, what: &str) -> Result<Self> {
        let corrupt = |reason: String| Error::Corrupt {
            url: what.to_string(),
            reason,
        };
        let json =
            zstd::stream::decode_all(bytes).map_err(|e| corrupt(format!("manifest does not decompress: {e}")))?;
        let manifest: Manifest =
            serde_json::from_slice(&json).map_err(|e| corrupt(format!("manifest does not parse: {e}")))?;
        if manifest.format != FORMAT {
            return Err(corrupt(format!(
                "manifest format {} is not {FORMAT}: written by another version of sqlite-s3",
                manifest.format
            )));
        }
        if manifest.version != number {
            return Err(corrupt(format!(
                "manifest says version {} under key {number}",
                manifest.version
            )));
        }
        if manifest.chunk_size == 0 || manifest.chunk_size > MAX_CHUNK_SIZE || manifest.homes.is_empty() {
            return Err(corrupt(format!(
                "chunk size {} or {} chunk homes cannot be right",
                manifest.chunk_size,
                manifest.homes.len()
            )));
        }
        let expected = manifest.size.div_ceil(manifest.chunk_size);
        if manifest.chunks.len() as u64 != expected {
            return Err(corrupt(format!(
                "{} chunks of {} bytes cannot hold {} bytes",
                manifest.chunks.len(),
                manifest.chunk_size,
                manifest.size
            )));
        }
        if manifest
            .chunks
            .iter()
            .any(|c| usize::from(c.home) >= manifest.homes.len())
        {
            return Err(corrupt("a chunk names a home the manifest does not list".into()));
        }
        Ok(manifest)
    }

    /// The byte range of chunk `index` in the file.
    pub fn range(&self, index: usize) -> std::ops::Range<u64> {
        let start = index as u64 * self.chunk_size;
        start..(start + self.chunk_size).min(self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            format: FORMAT,
            version: 7,
            parent: Some(6),
            size: 2_500_000,
            page_size: 4096,
            chunk_size: 1 << 20,
            homes: vec!["app.db.sqlite-s3/chunks".into()],
            chunks: (0..3)
                .map(|i| ChunkRef {
                    hash: format!("{i:064x}").parse().unwrap(),
                    home: 0,
                })
                .collect(),
            committed_at: serde_json::from_str("\"2026-11-25T10:00:00Z\"").unwrap(),
            writer: "abc".into(),
            uploaded_bytes: 1000,
            moved_to_single: false,
        }
    }

    #[test]
    fn tombstones_are_told_apart() {
        assert_eq!(decode_entry(&tombstone(7), 7, "m").unwrap(), Entry::Deleted);
        assert!(decode_entry(&tombstone(7), 8, "m").is_err());
        assert_eq!(
            decode_entry(&sample().encode(), 7, "m").unwrap(),
            Entry::Version(sample())
        );
    }

    #[test]
    fn round_trips_and_checks_itself() {
        let m = sample();
        assert_eq!(Manifest::decode(&m.encode(), 7, "m").unwrap(), m);
        assert_eq!(m.range(2), 2 << 20..2_500_000);
        assert!(matches!(
            Manifest::decode(&m.encode(), 8, "m"),
            Err(Error::Corrupt { .. })
        ));
        assert!(matches!(
            Manifest::decode(b"garbage", 7, "m"),
            Err(Error::Corrupt { .. })
        ));
        let mut short = sample();
        short.chunks.pop();
        assert!(matches!(
            Manifest::decode(&short.encode(), 7, "m"),
            Err(Error::Corrupt { .. })
        ));
    }
}
