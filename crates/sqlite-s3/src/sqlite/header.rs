//! Checks on the SQLite file format that need no SQLite: run on every
//! download before anything else looks at it.
//!
//! See <https://www.sqlite.org/fileformat.html#the_database_header>.

/// The first 16 bytes of every SQLite database file.
pub const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Why a file is not a usable database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Not SQLite at all.
    NotADatabase(String),
    /// SQLite, but cut short or damaged.
    Corrupt(String),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::NotADatabase(reason) | Problem::Corrupt(reason) => f.write_str(reason),
        }
    }
}

/// Checks the header of a file of `len` bytes whose first bytes are `head`
/// (at least 100 of them when the file has that many).
///
/// An empty file is a valid, empty database: SQLite treats it so.
pub fn check(head: &[u8], len: u64) -> Result<(), Problem> {
    if len == 0 {
        return Ok(());
    }
    let prefix = &head[..head.len().min(MAGIC.len())];
    if !MAGIC.starts_with(prefix) {
        return Err(Problem::NotADatabase("it does not start with the SQLite header".into()));
    }
    if len < 100 || head.len() < 100 {
        return Err(Problem::Corrupt(format!(
            "only {len} bytes, shorter than the 100-byte header"
        )));
    }
    let page_size = match u16::from_be_bytes([head[16], head[17]]) {
        1 => 65_536u64,
        n if n >= 512 && n.is_power_of_two() => u64::from(n),
        n => return Err(Problem::NotADatabase(format!("invalid page size {n} in the header"))),
    };
    if !len.is_multiple_of(page_size) {
        return Err(Problem::Corrupt(format!(
            "{len} bytes is not a whole number of {page_size}-byte pages"
        )));
    }
    let change_counter = u32::from_be_bytes([head[24], head[25], head[26], head[27]]);
    let pages = u32::from_be_bytes([head[28], head[29], head[30], head[31]]);
    let valid_for = u32::from_be_bytes([head[92], head[93], head[94], head[95]]);
    // The page count in the header is only meaningful when SQLite wrote it
    // with the current change counter (3.7.0 and later).
    if pages != 0 && change_counter == valid_for && u64::from(pages) * page_size > len {
        return Err(Problem::Corrupt(format!(
            "the header says {pages} pages of {page_size} bytes but the file has {len} bytes"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(page_size: u16, pages: u32) -> Vec<u8> {
        let mut h = vec![0u8; 100];
        h[..16].copy_from_slice(MAGIC);
        h[16..18].copy_from_slice(&page_size.to_be_bytes());
        h[24..28].copy_from_slice(&7u32.to_be_bytes());
        h[28..32].copy_from_slice(&pages.to_be_bytes());
        h[92..96].copy_from_slice(&7u32.to_be_bytes());
        h
    }

    #[test]
    fn accepts_a_whole_database_and_an_empty_file() {
        assert_eq!(check(&header(4096, 3), 3 * 4096), Ok(()));
        assert_eq!(check(&[], 0), Ok(()));
    }

    #[test]
    fn tells_foreign_files_from_damaged_ones() {
        assert!(matches!(
            check(b"<html>hello</html>", 18),
            Err(Problem::NotADatabase(_))
        ));
        assert!(matches!(check(&header(1000, 1), 1000), Err(Problem::NotADatabase(_))));
        assert!(matches!(check(&header(4096, 3), 2 * 4096), Err(Problem::Corrupt(_))));
        assert!(matches!(
            check(&header(4096, 3), 3 * 4096 - 10),
            Err(Problem::Corrupt(_))
        ));
        assert!(matches!(check(&MAGIC[..10], 10), Err(Problem::Corrupt(_))));
    }
}
