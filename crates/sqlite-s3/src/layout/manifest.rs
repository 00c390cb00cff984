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

/// The highest version number a manifest may have: far beyond any real
/// history, and low enough that the number after it never overflows.
pub const MAX_VERSION: u64 = u64::MAX / 2;

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
    ///
    /// Everything else reads manifests through this (or through
    /// [`Manifest::check`], for the copies the cache keeps), so the rest of
    /// the crate may index chunks and homes by what a manifest says.
    pub fn decode(bytes: &[u8], number: u64, what: &str) -> Result<Self> {
        let corrupt = |reason: String| Error::Corrupt {
            url: what.to_string(),
            reason,
        };
        let json = decompress(bytes).map_err(|e| corrupt(format!("manifest does not decompress: {e}")))?;
        let manifest: Manifest =
            serde_json::from_slice(&json).map_err(|e| corrupt(format!("manifest does not parse: {e}")))?;
        if manifest.version != number {
            return Err(corrupt(format!(
                "manifest says version {} under key {number}",
                manifest.version
            )));
        }
        manifest.check().map_err(corrupt)?;
        Ok(manifest)
    }

    /// Whether the manifest is one this crate can use: its format, a
    /// version number in range, a sane chunk size, as many chunks as its
    /// size needs, and every chunk in a home it lists. What is wrong, if
    /// not.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.format != FORMAT {
            return Err(format!(
                "manifest format {} is not {FORMAT}: written by another version of sqlite-s3",
                self.format
            ));
        }
        if self.version == 0 || self.version > MAX_VERSION {
            return Err(format!("version number {} is out of range", self.version));
        }
        if self.chunk_size == 0 || self.chunk_size > MAX_CHUNK_SIZE || self.homes.is_empty() {
            return Err(format!(
                "chunk size {} or {} chunk homes cannot be right",
                self.chunk_size,
                self.homes.len()
            ));
        }
        let expected = self.size.div_ceil(self.chunk_size);
        if self.chunks.len() as u64 != expected {
            return Err(format!(
                "{} chunks of {} bytes cannot hold {} bytes",
                self.chunks.len(),
                self.chunk_size,
                self.size
            ));
        }
        if let Some((index, chunk)) = self
            .chunks
            .iter()
            .enumerate()
            .find(|(_, c)| usize::from(c.home) >= self.homes.len())
        {
            return Err(format!(
                "chunk {index} is in home {}, but the manifest lists {} home(s)",
                chunk.home,
                self.homes.len()
            ));
        }
        Ok(())
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

    #[test]
    fn a_chunk_in_a_home_the_manifest_does_not_list_is_corrupt() {
        let mut m = sample();
        m.chunks[1].home = 5;
        let err = Manifest::decode(&m.encode(), 7, "s3://b/app.db (object m)").unwrap_err();
        assert!(
            matches!(&err, Error::Corrupt { url, .. } if url.contains("object m")),
            "{err}"
        );
        assert!(err.to_string().contains("chunk 1 is in home 5"), "{err}");
    }

    #[test]
    fn a_version_number_out_of_range_is_corrupt() {
        for number in [0, MAX_VERSION + 1, u64::MAX] {
            let m = Manifest {
                version: number,
                ..sample()
            };
            let err = Manifest::decode(&m.encode(), number, "m").unwrap_err();
            assert!(err.to_string().contains("out of range"), "{number}: {err}");
        }
    }

    #[test]
    fn a_manifest_that_decompresses_beyond_any_size_is_corrupt() {
        // A few kilobytes that would decompress to 80 MiB.
        let bomb = zstd::bulk::compress(&vec![b' '; 80 << 20], 3).unwrap();
        assert!(bomb.len() < 1 << 20);
        let err = Manifest::decode(&bomb, 7, "m").unwrap_err();
        assert!(err.to_string().contains("larger than any manifest"), "{err}");
    }
}
