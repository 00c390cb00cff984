//! Files written whole or not at all, and durably.
//!
//! The content goes to a temporary file beside the target, which is
//! fsynced, renamed over the target, and then the directory is fsynced so
//! that the rename itself survives a crash (on Unix; elsewhere the file
//! system is trusted with the rename). A crash leaves the old file or the
//! new one, never a mix; at worst a temporary file stays behind.
//!
//! - [`write`]: bytes in memory.
//! - [`write_with`]: content written by the caller, such as a copy of
//!   another file.
//! - [`install`]: a file the caller already wrote in the target's directory
//!   (a download), put in place.
//!
//! Temporary files are named `.sqlite-s3-tmp-PID-N`; the `file://` store
//! hides every name starting with `.sqlite-s3-` from its listings.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// How temporary files begin.
const TEMPORARY_PREFIX: &str = ".sqlite-s3-tmp-";

/// Numbers the temporary files of this process.
static NEXT: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path`, replacing any file there, whole or not at all.
///
/// # Failure
/// [`Error::Io`] naming `path`; the old file, if any, is left as it was.
pub(crate) fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |file| file.write_all(bytes))
}

/// Writes `path` whole or not at all, with the content `fill` writes into
/// a new temporary file beside it; returns what `fill` returns.
///
/// # Failure
/// [`Error::Io`] naming `path` when `fill` or any step fails; the
/// temporary file is removed and the old file, if any, is left as it was.
pub(crate) fn write_with<T>(path: &Path, fill: impl FnOnce(&mut File) -> io::Result<T>) -> Result<T> {
    let dir = directory_of(path);
    let (temporary, mut file) = create_temporary(dir).map_err(Error::io("creating a file in", dir))?;
    let filled = fill(&mut file)
        .and_then(|value| file.sync_all().map(|()| value))
        .map_err(Error::io("writing", path));
    drop(file);
    let value = match filled {
        Ok(value) => value,
        Err(e) => {
            let _ = std::fs::remove_file(&temporary);
            return Err(e);
        }
    };
    rename_durably(&temporary, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&temporary);
    })?;
    Ok(value)
}

/// Puts `written`, a file in the same directory as `path`, in place of
/// `path`: fsync, rename, fsync of the directory.
///
/// # Failure
/// [`Error::Io`] naming the file that could not be synced or renamed;
/// `written` is left where it was on failure.
pub(crate) fn install(written: &Path, path: &Path) -> Result<()> {
    File::open(written)
        .and_then(|file| file.sync_all())
        .map_err(Error::io("writing", written))?;
    rename_durably(written, path)
}

/// Renames `from` over `to`, then fsyncs the directory of `to`.
fn rename_durably(from: &Path, to: &Path) -> Result<()> {
    std::fs::rename(from, to).map_err(Error::io("renaming into place", to))?;
    let dir = directory_of(to);
    sync_directory(dir).map_err(Error::io("syncing the directory", dir))
}

/// The directory a file is in (`.` for a bare name).
fn directory_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// A new file in `dir` under a name no one else uses.
fn create_temporary(dir: &Path) -> io::Result<(PathBuf, File)> {
    loop {
        let name = format!(
            "{TEMPORARY_PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = dir.join(name);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            // Left by an earlier process that had the same id.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(unix)]
fn sync_directory(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Directories cannot be opened as files here; the rename is left to the
/// file system.
#[cfg(not(unix))]
fn sync_directory(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn the_content_lands_and_no_temporary_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        write(&path, b"{}").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{}");
        assert_eq!(names(dir.path()), ["state.json"]);
    }

    #[test]
    fn an_existing_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, b"old and longer").unwrap();
        write(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["state.json"]);
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, b"old").unwrap();
        let err = write_with(&path, |file| {
            file.write_all(b"half")?;
            Err::<(), _>(io::Error::other("the source broke off"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("state.json"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(names(dir.path()), ["state.json"]);
    }

    #[test]
    fn write_with_returns_what_the_content_returned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("copy.db");
        let copied = write_with(&path, |file| io::copy(&mut &b"twelve bytes"[..], file)).unwrap();
        assert_eq!(copied, 12);
        assert_eq!(std::fs::read(&path).unwrap(), b"twelve bytes");
    }

    #[test]
    fn a_written_file_is_installed_over_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let (download, path) = (dir.path().join("download.tmp"), dir.path().join("working.db"));
        std::fs::write(&download, b"new").unwrap();
        std::fs::write(&path, b"old").unwrap();
        install(&download, &path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["working.db"]);
    }

    #[test]
    fn a_missing_directory_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir").join("state.json");
        let err = write(&path, b"{}").unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err}");
        assert!(err.to_string().contains("no-such-dir"), "{err}");
    }
}
