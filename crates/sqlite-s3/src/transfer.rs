//! Copying whole databases between the store and plain local files: what
//! `sqlite-s3 pull` and `sqlite-s3 push` do, and what a test suite uses to
//! seed a database from a fixture.
//!
//! `pull` writes a plain SQLite file and remembers, in the cache, which
//! remote version the file came from. `push` publishes a file over exactly
//! that version: if someone published since, it is a conflict, unless forced.
//! A file that was not pulled can only create a database that does not exist.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic_file;
use crate::cache;
use crate::error::{Error, Result};
use crate::layout::{self, InFlight, Published, RemoteVersion, Version};
use crate::options::{Options, WriteMode};
use crate::session::Session;
use crate::sqlite::{self, header};
use crate::store::Remote;
use crate::token::CommitToken;

/// What a pull did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullReport {
    /// Size of the file written.
    pub bytes: u64,
    /// The remote version it holds.
    pub version: Version,
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// Bytes uploaded.
    pub bytes: u64,
    /// Whether the push created the database.
    pub created: bool,
}

/// Where the version a file was pulled from is remembered.
#[derive(Debug, Serialize, Deserialize)]
struct PullRecord {
    url: String,
    file: PathBuf,
    version: RemoteVersion,
}

fn record_path(options: &Options, remote: &Remote, file: &Path) -> PathBuf {
    let dir = cache::database_dir(&options.resolved_cache_dir(), remote).join("pulls");
    let hash = blake3::hash(file.as_os_str().as_encoded_bytes()).to_hex();
    dir.join(format!("{}.json", &hash[..24]))
}

fn absolute(file: &Path) -> Result<PathBuf> {
    std::path::absolute(file).map_err(Error::io("resolving", file))
}

/// Downloads the newest version of the database into `dest`, a plain SQLite
/// file. `dest` is written whole or not at all (a temporary file beside it
/// is renamed into place).
///
/// # Failure
/// [`Error::DatabaseNotFound`] when there is no database at the URL;
/// [`Error::LocalFile`] when a journal or WAL lies beside `dest`; the
/// errors of [`Session::open_remote`].
pub async fn pull_to_file(remote: Remote, options: &Options, dest: &Path) -> Result<PullReport> {
    let dest = absolute(dest)?;
    // A journal or WAL beside the destination belongs to the file being
    // replaced (open in another program, or left by a crash); SQLite would
    // apply it to the new file and corrupt it.
    if let Some(side) = sqlite::side_files(&dest).into_iter().take(2).find(|f| f.exists()) {
        return Err(Error::LocalFile {
            path: dest.clone(),
            reason: format!(
                "{} exists beside it: it is open in another program or was not closed cleanly; close it \
                 (or run sqlite3 on it once to finish its journal), then pull again",
                side.display()
            ),
        });
    }
    // Read-only: changes left in the cache are kept, not published.
    let session = Session::open_remote(remote.clone(), &options.clone().read_only(true)).await?;
    let Some(version) = session.remote_version().cloned() else {
        return Err(Error::DatabaseNotFound {
            url: remote.url().to_string(),
        });
    };
    let working_copy = session.working_copy();
    let mut source = std::fs::File::open(&working_copy).map_err(Error::io("reading", &working_copy))?;
    let bytes = atomic_file::write_with(&dest, |file| std::io::copy(&mut source, file))?;
    session.close().await?;
    let record = PullRecord {
        url: remote.url().to_string(),
        file: dest.clone(),
        version: version.clone(),
    };
    save_record(&record_path(options, &remote, &dest), &record)?;
    Ok(PullReport {
        bytes,
        version: version.id(),
    })
}

/// Publishes the SQLite file `file` as the database at `remote`.
///
/// The file is copied through SQLite's backup API (so a file in WAL mode, or
/// one another program is writing, yields a consistent copy) and checked
/// with `PRAGMA quick_check` before anything is sent. Without `force`, the
/// upload is conditional on the version `file` was pulled from; a file that
/// was never pulled may only create a database that does not exist yet.
///
/// # Failure
/// [`Error::InvalidFile`] when `file` is not a sound SQLite database;
/// [`Error::Conflict`] when the remote is not the version the file was
/// pulled from (or exists, for a file never pulled); store errors.
pub async fn push_file(remote: Remote, options: &Options, file: &Path, force: bool) -> Result<PushReport> {
    let file = absolute(file)?;
    let scratch_dir = cache::database_dir(&options.resolved_cache_dir(), &remote);
    std::fs::create_dir_all(&scratch_dir).map_err(Error::io("creating", &scratch_dir))?;
    let snapshot = tempfile::Builder::new()
        .prefix("push-")
        .tempfile_in(&scratch_dir)
        .map_err(Error::io("creating a file in", &scratch_dir))?;
    let snapshot_path = snapshot.path().to_path_buf();
    {
        let (file, snapshot_path) = (file.clone(), snapshot_path.clone());
        tokio::task::spawn_blocking(move || check_and_copy(&file, &snapshot_path))
            .await
            .expect("the copy does not panic")?;
    }
    let record_path = record_path(options, &remote, &file);
    let base = load_record(&record_path).map(|r| r.version);
    let mode = if force {
        WriteMode::LastWriterWins
    } else {
        WriteMode::Conditional
    };
    let in_flight =
        InFlight::over(base.as_ref(), mode == WriteMode::LastWriterWins).with_attempt(CommitToken::new(), None);
    let bytes = std::fs::metadata(&snapshot_path)
        .map_err(Error::io("reading", &snapshot_path))?
        .len();
    let kind = match layout::detect(&remote).await? {
        Some(kind) => kind,
        None => options.layout,
    };
    let published = layout::for_kind(kind, None)
        .publish(
            &remote,
            &snapshot_path,
            base.as_ref(),
            mode,
            &in_flight,
            options.progress.as_ref(),
        )
        .await
        .map_err(|e| match e {
            Error::OutcomeUnknown { url, detail, .. } => Error::OutcomeUnknown {
                url,
                operation: "the push",
                detail,
                next: "Look at the database (sqlite-s3 info URL) before pushing again",
            },
            e => e,
        })?;
    if let Published::Current(version) = published.published {
        let record = PullRecord {
            url: remote.url().to_string(),
            file,
            version,
        };
        save_record(&record_path, &record)?;
    }
    Ok(PushReport {
        bytes,
        created: base.is_none() && !force,
    })
}

/// Copies `file` into `copy` through SQLite and checks the copy.
fn check_and_copy(file: &Path, copy: &Path) -> Result<()> {
    let invalid = |reason: String| Error::InvalidFile {
        path: file.to_path_buf(),
        reason,
    };
    let len = std::fs::metadata(file).map_err(Error::io("reading", file))?.len();
    if len == 0 {
        return Err(invalid("the file is empty".into()));
    }
    header::check(&sqlite::read_head(file, 100)?, len).map_err(|p| invalid(p.to_string()))?;
    // Failures of our own scratch copy (a full disk, say) are not the file's fault.
    let ours = |e: &rusqlite::Error| {
        matches!(
            e.sqlite_error_code(),
            Some(
                rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure | rusqlite::ErrorCode::CannotOpen
            )
        )
    };
    let source = rusqlite::Connection::open_with_flags(file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| invalid(format!("SQLite cannot open it: {e}")))?;
    source.backup(rusqlite::MAIN_DB, copy, None).map_err(|e| {
        if ours(&e) {
            Error::Sql(e)
        } else {
            invalid(format!("SQLite cannot read it: {e}"))
        }
    })?;
    sqlite::quick_check(copy).map_err(invalid)
}

fn load_record(path: &Path) -> Option<PullRecord> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn save_record(path: &Path, record: &PullRecord) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
    }
    let bytes = serde_json::to_vec_pretty(record).expect("a record always serializes");
    atomic_file::write(path, &bytes)
}
