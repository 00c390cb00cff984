//! Cutting a database file into fixed-size chunks, and compressing them.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::{Error, Result};
use crate::hash::ContentHash;

/// Chunk transfers under way at once.
pub const TRANSFERS: usize = 8;

/// Bytes per chunk. A one-row change rewrites two chunks (the row's, and
/// the first, whose header counts changes), about 512 KiB; a 1 GiB database
/// has 4096 chunks, whose manifest is about 160 KiB compressed.
pub const CHUNK_SIZE: u64 = 256 << 10;

/// The hash of each chunk of a file.
pub fn hash_chunks(path: &Path, chunk_size: u64) -> Result<Vec<ContentHash>> {
    let mut file = std::fs::File::open(path).map_err(Error::io("reading", path))?;
    let mut hashes = Vec::new();
    let mut buf = vec![0u8; chunk_size as usize];
    loop {
        let n = read_full(&mut file, &mut buf).map_err(Error::io("reading", path))?;
        if n == 0 {
            break;
        }
        hashes.push(ContentHash::of(&buf[..n]));
        if n < buf.len() {
            break;
        }
    }
    Ok(hashes)
}

/// Reads chunk `index` of a file.
pub fn read_chunk(path: &Path, index: usize, chunk_size: u64) -> Result<Vec<u8>> {
    let mut file = std::fs::File::open(path).map_err(Error::io("reading", path))?;
    file.seek(SeekFrom::Start(index as u64 * chunk_size))
        .map_err(Error::io("reading", path))?;
    let mut buf = vec![0u8; chunk_size as usize];
    let n = read_full(&mut file, &mut buf).map_err(Error::io("reading", path))?;
    buf.truncate(n);
    Ok(buf)
}

/// Writes `bytes` at `offset` of an open file.
pub fn write_at(file: &mut std::fs::File, offset: u64, bytes: &[u8], path: &Path) -> Result<()> {
    file.seek(SeekFrom::Start(offset)).map_err(Error::io("writing", path))?;
    file.write_all(bytes).map_err(Error::io("writing", path))
}

/// zstd at a level that costs little CPU.
pub fn compress(bytes: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(bytes, 3).expect("compressing to memory cannot fail")
}

/// Decompresses a chunk and checks it against its hash.
pub fn decompress_checked(
    compressed: &[u8],
    hash: &ContentHash,
    chunk_size: u64,
) -> std::result::Result<Vec<u8>, String> {
    let bytes =
        zstd::bulk::decompress(compressed, chunk_size as usize).map_err(|e| format!("does not decompress: {e}"))?;
    let actual = ContentHash::of(&bytes);
    if actual != *hash {
        return Err(format!("its content hashes to {actual}, not {hash}"));
    }
    Ok(bytes)
}

fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_file_and_verify() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..2500u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let hashes = hash_chunks(&path, 1000).unwrap();
        assert_eq!(hashes.len(), 3);
        let last = read_chunk(&path, 2, 1000).unwrap();
        assert_eq!(last, &data[2000..]);
        let packed = compress(&last);
        assert_eq!(decompress_checked(&packed, &hashes[2], 1000).unwrap(), last);
        assert!(decompress_checked(&packed, &hashes[0], 1000).is_err());
        assert!(decompress_checked(b"junk", &hashes[2], 1000).is_err());
    }
}
