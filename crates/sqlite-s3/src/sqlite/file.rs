//! The database file itself: opening it, checking it, and the files SQLite
//! keeps beside it.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};

/// How long a statement waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the working copy for reading and writing.
pub fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// Runs `PRAGMA quick_check` on a file (a fresh download). Returns what
/// SQLite found wrong, if anything.
pub fn quick_check(path: &Path) -> std::result::Result<(), String> {
    let check = || -> rusqlite::Result<Vec<String>> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        let mut stmt = conn.prepare("PRAGMA quick_check")?;
        let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
        rows.collect()
    };
    match check() {
        Ok(rows) if rows == ["ok"] => Ok(()),
        Ok(rows) => Err(format!("quick_check: {}", rows.join("; "))),
        Err(e) => Err(format!("SQLite cannot read it: {e}")),
    }
}

/// Whether a local copy is sound: `Ok(None)` when it opens and passes
/// `PRAGMA quick_check`, `Ok(Some(what))` when SQLite finds it damaged (not
/// a database, corrupt, shorter than its pages), and an error when SQLite
/// could not look (no memory, no file handles, a lock held elsewhere): a
/// copy is never taken for damaged on such grounds.
pub fn check_local(path: &Path) -> Result<Option<String>> {
    let check = || -> rusqlite::Result<Vec<String>> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mut stmt = conn.prepare("PRAGMA quick_check")?;
        let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
        rows.collect()
    };
    match check() {
        Ok(rows) if rows == ["ok"] => Ok(None),
        Ok(rows) => Ok(Some(format!("quick_check: {}", rows.join("; ")))),
        Err(e) if is_damage(&e) => Ok(Some(format!("SQLite cannot read it: {e}"))),
        Err(e) => Err(Error::Sql(e)),
    }
}

/// Whether an SQLite error says the file is damaged, rather than that
/// something else went wrong.
pub fn is_damage(error: &rusqlite::Error) -> bool {
    match error {
        rusqlite::Error::SqliteFailure(e, _) => {
            matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase
            ) || e.extended_code == rusqlite::ffi::SQLITE_IOERR_SHORT_READ
        }
        _ => false,
    }
}

/// Makes the main database file complete: in WAL mode, copies every
/// committed frame into it and empties the WAL. A no-op in rollback-journal
/// mode, where the main file is complete whenever no transaction is open.
/// `what` names the database in errors (its URL, or the file).
///
/// # Failure
/// [`Error::Misuse`] when a transaction is open on `conn`;
/// [`Error::TryAgain`] when another connection's reader keeps the
/// checkpoint from finishing.
pub fn checkpoint(conn: &Connection, what: &str) -> Result<()> {
    if !conn.is_autocommit() {
        return Err(Error::Misuse {
            url: what.to_string(),
            reason: "a transaction is still open on the connection: commit or roll it back before publishing".into(),
        });
    }
    let (busy, log, done): (i64, i64, i64) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    if busy != 0 || log != done {
        return Err(Error::TryAgain {
            url: what.to_string(),
            reason: format!(
                "another connection is reading the working copy's write-ahead log, so it could not be copied \
                 into the database ({done} of {log} frames): finish that read"
            ),
        });
    }
    Ok(())
}

/// Whether a database file holds nothing: no bytes at all, or no table,
/// index, view or trigger and no `user_version` or `application_id`. A
/// driver that only opened a new database (sqlx switching it to WAL mode)
/// leaves such a file, and there is nothing in it to create a remote
/// database for.
pub fn is_blank(path: &Path) -> Result<bool> {
    if std::fs::metadata(path).map_err(Error::io("reading", path))?.len() == 0 {
        return Ok(true);
    }
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    Ok(conn.query_row(
        "SELECT (SELECT count(*) FROM sqlite_master) = 0 \
            AND (SELECT user_version FROM pragma_user_version) = 0 \
            AND (SELECT application_id FROM pragma_application_id) = 0",
        [],
        |r| r.get(0),
    )?)
}

/// Reads the first `n` bytes of a file (fewer if it is shorter).
pub fn read_head(path: &Path, n: usize) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path).map_err(Error::io("reading", path))?;
    let mut head = Vec::with_capacity(n);
    file.take(n as u64)
        .read_to_end(&mut head)
        .map_err(Error::io("reading", path))?;
    Ok(head)
}

/// The files SQLite keeps beside a database: journal, WAL, shared memory.
pub fn side_files(db: &Path) -> [std::path::PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name)
    };
    [with("-journal"), with("-wal"), with("-shm")]
}

/// Removes a database file and the journal, WAL and shared-memory files
/// beside it. A stale WAL next to a new database file would corrupt it.
pub fn remove_database(db: &Path) -> Result<()> {
    for path in std::iter::once(db.to_path_buf()).chain(side_files(db)) {
        remove_file(&path)?;
    }
    Ok(())
}

/// Removes a file; one that is not there is fine.
pub fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("removing", path)(e)),
    }
}
