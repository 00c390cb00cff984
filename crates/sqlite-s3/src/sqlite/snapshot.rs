//! Copies between a working copy that other connections may be using (an
//! sqlx pool, a Diesel connection) and a standalone file, through SQLite's
//! backup API, which takes the locks a reader or a writer would take:
//! - [`snapshot`] copies what is committed, as one consistent state, while
//!   other connections go on reading and writing;
//! - [`restore`] replaces the contents of the working copy in one
//!   transaction; other connections see the new contents from their next
//!   transaction on, and reload the schema by themselves.
//!
//! Neither renames nor deletes the working copy, which open connections
//! would not notice. Both may wait up to 30 s for another connection's
//! lock; on a multi-threaded tokio runtime they run as blocking work.

use std::path::Path;
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};

/// How long a copy waits, in all, for another connection's lock.
const LOCK_WAIT: Duration = Duration::from_secs(30);
/// The pause between two tries.
const PAUSE: Duration = Duration::from_millis(10);

/// Writes what is committed in the database of `conn` to the new file
/// `dest`, as a rollback-journal database (the form the remote holds).
///
/// # Failure
/// [`Error::TryAgain`] when another connection holds a lock for longer
/// than 30 s; [`Error::Sql`] and [`Error::Io`] otherwise.
pub fn snapshot(conn: &Connection, dest: &Path) -> Result<()> {
    off_the_runtime(|| snapshot_now(conn, dest))
}

fn snapshot_now(conn: &Connection, dest: &Path) -> Result<()> {
    remove(dest)?;
    let mut out = Connection::open_with_flags(dest, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE)?;
    out.pragma_update(None, "journal_mode", "DELETE")?;
    let from_path = conn.path().map(std::path::PathBuf::from).unwrap_or_default();
    copy(conn, &mut out, &from_path)?;
    out.close().map_err(|(_, e)| Error::Sql(e))?;
    // The copy keeps the source's WAL flags in its header; with no WAL
    // beside it, it is a rollback-journal database, and says so.
    mark_rollback_journal(dest)
}

/// Replaces the contents of the database file `db` with those of `source`,
/// in one transaction, through a connection of its own. In WAL mode, once
/// that transaction holds the write lock and before anything is written,
/// `still_ok` is asked whether to go on: no other connection can commit in
/// between, so a check of theirs there is exact. (In rollback-journal mode
/// the lock shuts out readers, so it is asked just before.) When it says
/// no, nothing is changed and its error is returned.
///
/// # Failure
/// As [`snapshot`]; [`Error::LocalFile`] when the page sizes differ and
/// `db` is in WAL mode, which SQLite cannot copy into.
pub fn restore_snapshot(db: &Path, source: &Path, still_ok: impl FnOnce() -> Result<()>) -> Result<()> {
    off_the_runtime(|| restore_now(db, source, still_ok))
}

fn restore_now(db: &Path, source: &Path, still_ok: impl FnOnce() -> Result<()>) -> Result<()> {
    let mut to = Connection::open(db)?;
    to.busy_timeout(LOCK_WAIT)?;
    let page_size = |c: &Connection| -> Result<i64> { Ok(c.query_row("PRAGMA page_size", [], |r| r.get(0))?) };
    let wal = to
        .query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))?
        .eq_ignore_ascii_case("wal");
    if std::fs::metadata(source).map_err(Error::io("reading", source))?.len() == 0 {
        // A backup of no pages is done at its first step, before the check
        // could run: give the empty source one blank page, of the working
        // copy's size.
        let blank = Connection::open(source)?;
        blank.pragma_update(None, "page_size", page_size(&to)?)?;
        blank.execute_batch("PRAGMA user_version = 1; PRAGMA user_version = 0;")?;
    }
    let from = Connection::open_with_flags(source, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    if wal && page_size(&from)? != page_size(&to)? {
        return Err(Error::LocalFile {
            path: db.to_path_buf(),
            reason: format!(
                "the new version has a page size of {} bytes and this working copy uses {}: SQLite cannot write \
                 one into the other while it is in WAL mode. Close the connections on it and open the database \
                 again",
                page_size(&from)?,
                page_size(&to)?
            ),
        });
    }
    if !wal {
        // In rollback-journal mode the backup's lock shuts out readers too,
        // so the check cannot wait inside it.
        still_ok()?;
        let backup = Backup::new(&from, &mut to)?;
        return wait_for_locks(db, || backup.step(-1));
    }
    let backup = Backup::new(&from, &mut to)?;
    // A step of no pages takes the write lock and keeps it until the copy
    // is done or abandoned; in WAL mode readers go on, the check among them.
    wait_for_locks(db, || backup.step(0))?;
    still_ok()?;
    wait_for_locks(db, || backup.step(-1))
}

/// Runs a backup step until it is not stopped by another connection's
/// lock (30 s at most); `Ok` once it ran.
fn wait_for_locks(db: &Path, mut step: impl FnMut() -> rusqlite::Result<StepResult>) -> Result<()> {
    let mut waited = Duration::ZERO;
    loop {
        match step()? {
            StepResult::Busy | StepResult::Locked => {
                if waited >= LOCK_WAIT {
                    return Err(locked(db));
                }
                std::thread::sleep(PAUSE);
                waited += PAUSE;
            }
            _ => return Ok(()),
        }
    }
}

fn locked(db: &Path) -> Error {
    Error::TryAgain {
        url: db.display().to_string(),
        reason: format!(
            "another connection kept it locked for {}s: finish its transaction",
            LOCK_WAIT.as_secs()
        ),
    }
}

/// Runs `f`, a local copy that may wait for other connections' locks, as
/// blocking work: on a multi-threaded tokio runtime the worker hands its
/// other tasks over first (among them, perhaps, the one whose transaction
/// holds the lock). Elsewhere it just runs.
fn off_the_runtime<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

/// Copies every page of `from` (the working copy `from_path`) into `to` in
/// one step, waiting while another connection holds a lock that stops it.
fn copy(from: &Connection, to: &mut Connection, from_path: &Path) -> Result<()> {
    let backup = Backup::new(from, to)?;
    loop {
        wait_for_locks(from_path, || backup.step(-1))?;
        if backup.progress().remaining == 0 {
            return Ok(());
        }
    }
}

/// Sets the file format bytes of a closed database file to "rollback
/// journal", as `PRAGMA journal_mode=DELETE` does when the WAL is empty.
fn mark_rollback_journal(path: &Path) -> Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(Error::io("opening", path))?;
    let mut versions = [0u8; 2];
    file.seek(SeekFrom::Start(18)).map_err(Error::io("reading", path))?;
    if file.read_exact(&mut versions).is_err() {
        return Ok(()); // an empty database: no header yet
    }
    if versions != [1, 1] {
        file.seek(SeekFrom::Start(18)).map_err(Error::io("writing", path))?;
        file.write_all(&[1, 1]).map_err(Error::io("writing", path))?;
        file.sync_all().map_err(Error::io("writing", path))?;
    }
    Ok(())
}

fn remove(path: &Path) -> Result<()> {
    for file in std::iter::once(path.to_path_buf()).chain(super::file::side_files(path)) {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("removing", &file)(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sqlite::hash_file;

    fn rows(conn: &Connection) -> Vec<i64> {
        let mut stmt = conn.prepare("SELECT x FROM t ORDER BY x").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect()
    }

    #[test]
    fn a_snapshot_holds_what_is_committed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db.sqlite");
        let control = Connection::open(&db).unwrap();
        let mut other = Connection::open(&db).unwrap();
        other.pragma_update(None, "journal_mode", "WAL").unwrap();
        other
            .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1)")
            .unwrap();
        // A transaction in progress on another connection is left out.
        let tx = other.transaction().unwrap();
        tx.execute("INSERT INTO t VALUES (2)", []).unwrap();
        let snap = dir.path().join("snap.sqlite");
        snapshot(&control, &snap).unwrap();
        tx.commit().unwrap();

        assert_eq!(&std::fs::read(&snap).unwrap()[18..20], &[1, 1]);
        let copy = Connection::open(&snap).unwrap();
        assert_eq!(rows(&copy), [1]);
        let mode: String = copy.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "delete");
        let check: String = copy.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
        assert_eq!(check, "ok");
    }

    #[test]
    fn a_snapshot_of_an_unchanged_database_has_its_content_hash() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db.sqlite");
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2)")
            .unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        snapshot(&conn, &a).unwrap();
        snapshot(&conn, &b).unwrap();
        let original = hash_file(&db).unwrap();
        assert_eq!(hash_file(&a).unwrap(), original);
        assert_eq!(hash_file(&b).unwrap(), original);
        conn.execute("INSERT INTO t VALUES (3)", []).unwrap();
        snapshot(&conn, &a).unwrap();
        assert_ne!(hash_file(&a).unwrap(), original);
    }

    /// `db.sqlite` in `dir`, in WAL mode, holding table `t` with the row 1,
    /// and a connection on it.
    fn wal_database_with_one_row(dir: &Path) -> (std::path::PathBuf, Connection) {
        let db = dir.join("db.sqlite");
        let conn = Connection::open(&db).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1)")
            .unwrap();
        (db, conn)
    }

    #[test]
    fn a_restore_shows_in_other_connections() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source.sqlite");
        Connection::open(&source)
            .unwrap()
            .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (7), (8)")
            .unwrap();
        let (db, other) = wal_database_with_one_row(dir.path());
        assert_eq!(rows(&other), [1]);

        // The check runs while the restore holds the write lock: nobody
        // can commit then. Refused, nothing changes.
        let refused = restore_snapshot(&db, &source, || {
            other.busy_timeout(Duration::ZERO).unwrap();
            assert!(
                other.execute("INSERT INTO t VALUES (2)", []).is_err(),
                "the lock is held"
            );
            Err(Error::Misuse {
                url: "x".into(),
                reason: "no".into(),
            })
        });
        assert!(refused.is_err());
        other.busy_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(rows(&other), [1]);

        restore_snapshot(&db, &source, || Ok(())).unwrap();
        assert_eq!(rows(&other), [7, 8]);
        // After a checkpoint the working copy holds the source's content.
        other
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        assert_eq!(hash_file(&db).unwrap(), hash_file(&source).unwrap());
    }

    #[test]
    fn an_empty_source_is_checked_before_anything_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let (db, other) = wal_database_with_one_row(dir.path());
        let empty = dir.path().join("empty.sqlite");
        std::fs::write(&empty, b"").unwrap();
        let refuse = || {
            Err(Error::Misuse {
                url: "x".into(),
                reason: "no".into(),
            })
        };
        assert!(restore_snapshot(&db, &empty, refuse).is_err());
        assert_eq!(rows(&other), [1]);

        std::fs::write(&empty, b"").unwrap();
        restore_snapshot(&db, &empty, || Ok(())).unwrap();
        let tables: i64 = other
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 0);
        assert!(crate::sqlite::is_blank(&db).unwrap());
    }
}
