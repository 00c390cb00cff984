//! The content hash of a database file: BLAKE3 of its bytes with the header
//! fields that SQLite rewrites without any change to the data set to zero.
//!
//! Those fields are the file format's WAL flags (bytes 18-19), the change
//! counter (24-27), the schema cookie (40-43), and the "version valid for"
//! number and SQLite version (92-99). A copy made with SQLite's backup API
//! differs from its source in exactly those fields, so hashing content
//! rather than bytes lets a snapshot of a working copy that other
//! connections use be compared with the working copy itself, and a file
//! switched between WAL and rollback-journal mode count as unchanged. Every
//! change to the data changes some page beyond them.

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
use crate::hash::ContentHash;

/// Header byte ranges left out of the content hash.
const VOLATILE: [std::ops::Range<usize>; 4] = [18..20, 24..28, 40..44, 92..100];

/// The end of the last volatile range: bytes past it are hashed as they are.
const HEADER_END: usize = 100;

/// A BLAKE3 hasher that zeroes the volatile header fields of the stream it
/// is fed, however it is split.
#[derive(Debug, Default)]
pub struct ContentHasher {
    hasher: blake3::Hasher,
    /// Bytes fed so far.
    offset: u64,
}

impl ContentHasher {
    /// A hasher at the start of a file.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes of the file.
    pub fn update(&mut self, bytes: &[u8]) {
        if self.offset >= HEADER_END as u64 {
            self.hasher.update(bytes);
        } else {
            let start = self.offset as usize;
            let head_len = bytes.len().min(HEADER_END - start);
            let mut head = bytes[..head_len].to_vec();
            for range in VOLATILE {
                for at in range {
                    if (start..start + head_len).contains(&at) {
                        head[at - start] = 0;
                    }
                }
            }
            self.hasher.update(&head);
            self.hasher.update(&bytes[head_len..]);
        }
        self.offset += bytes.len() as u64;
    }

    /// The hash, and how many bytes were fed.
    pub fn finalize(&self) -> (ContentHash, u64) {
        (self.hasher.finalize().into(), self.offset)
    }
}

/// The content hash of a file, and its length.
pub fn hash_file(path: &Path) -> Result<(ContentHash, u64)> {
    let mut file = std::fs::File::open(path).map_err(Error::io("reading", path))?;
    let mut hasher = ContentHasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(Error::io("reading", path))?;
        if n == 0 {
            return Ok(hasher.finalize());
        }
        hasher.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_in_pieces(bytes: &[u8], piece: usize) -> ContentHash {
        let mut hasher = ContentHasher::new();
        for part in bytes.chunks(piece) {
            hasher.update(part);
        }
        hasher.finalize().0
    }

    #[test]
    fn the_hash_does_not_depend_on_how_the_bytes_arrive() {
        let bytes: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
        let whole = hash_in_pieces(&bytes, bytes.len());
        for piece in [1, 3, 17, 99, 100, 101, 4096] {
            assert_eq!(hash_in_pieces(&bytes, piece), whole, "pieces of {piece}");
        }
    }

    #[test]
    fn only_the_volatile_header_fields_are_left_out() {
        let bytes: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let base = hash_in_pieces(&bytes, 7);
        for at in 0..300 {
            let mut changed = bytes.clone();
            changed[at] ^= 0xff;
            let volatile = VOLATILE.iter().any(|r| r.contains(&at));
            assert_eq!(hash_in_pieces(&changed, 7) == base, volatile, "byte {at}");
        }
    }
}
