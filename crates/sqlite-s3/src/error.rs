//! The public error type.
//!
//! Every variant says what happened, names the database (bucket and key) or
//! local file involved, and says what to do next. Variants are coarse on
//! purpose, and [`Error::kind`] coarser still: a caller matches on what it
//! should do (run the change again, try again later, fix the URL, fix
//! credentials), and reads the message for the details. No message ever
//! contains a credential: errors are built from the URL, the key and the
//! store's own error, never from the options.

use std::path::PathBuf;

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The error returned by every fallible operation of this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL does not name a database this crate can open.
    #[error("invalid database URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it and what a valid one looks like.
        reason: String,
    },

    /// The bucket (the container on Azure, the directory for `file://`)
    /// does not exist.
    #[error(
        "the {} {bucket:?} of {url} does not exist: create it first ({}), or check its name, the region \
         and the endpoint",
        bucket_kind(url),
        bucket_creation(url)
    )]
    BucketNotFound {
        /// The database URL.
        url: String,
        /// The bucket, or the directory for `file://` URLs.
        bucket: String,
    },

    /// There is no database at the key yet (for operations that only read).
    #[error("the database {url} does not exist yet: create it by writing to it (sqlite-s3 exec URL SQL)")]
    DatabaseNotFound {
        /// The database URL.
        url: String,
    },

    /// The store refused the credentials, or they lack a permission.
    #[error(
        "access denied to {url} ({operation}; {detail}): check the credentials ({credentials}, or the options \
         in code) and that they may read and write this key"
    )]
    AccessDenied {
        /// The database URL.
        url: String,
        /// What was being done.
        operation: &'static str,
        /// What the store said.
        detail: String,
        /// Where this kind of store takes its credentials from.
        credentials: &'static str,
        /// The store's error.
        #[source]
        source: Box<object_store::Error>,
    },

    /// A named AWS profile (feature `aws-config`) is missing, or gives no
    /// credentials (an expired SSO login, a failing credential process).
    #[error(
        "AWS profile {profile} gives no credentials: {reason}. Check ~/.aws/config and \
         ~/.aws/credentials (or AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE); for SSO, \
         run aws sso login --profile {profile}"
    )]
    Credentials {
        /// The profile's name.
        profile: String,
        /// What the AWS SDK said, with its causes; never a secret.
        reason: String,
    },

    /// Another process holds the database's lease ([`crate::lease`]) and
    /// kept it for as long as we were willing to wait.
    #[error(
        "the lease on {url} is held by {owner} for {expires_in_secs} more seconds: wait for it to be released \
         or to expire, then try again"
    )]
    LeaseHeld {
        /// The database URL.
        url: String,
        /// The holder's name, as it gave it.
        owner: String,
        /// How long the lease runs still, by the holder's last renewal.
        expires_in_secs: u64,
    },

    /// Our lease on the database expired or was taken over: nothing is
    /// published under it any more.
    #[error("the lease on {url} is lost ({reason}); nothing was published: acquire it again and redo the work")]
    LeaseLost {
        /// The database URL.
        url: String,
        /// What happened.
        reason: String,
    },

    /// The store could not be reached, or failed in a way that may pass,
    /// for the whole retry budget.
    #[error("the store failed while {operation} for {url}: {detail}")]
    Unavailable {
        /// The database URL.
        url: String,
        /// What was being done.
        operation: &'static str,
        /// What the store said, or that it did not answer, and what to do.
        detail: String,
        /// The store's error.
        #[source]
        source: Box<object_store::Error>,
    },

    /// The object at the key is not a SQLite database.
    #[error(
        "the object at {url} is not a SQLite database ({reason}): check the key, \
         or delete the object to start a new database there"
    )]
    NotADatabase {
        /// The database URL.
        url: String,
        /// What was found instead.
        reason: String,
    },

    /// A local file given to be published is not a sound SQLite database.
    #[error("{path} is not a sound SQLite database ({reason}); nothing was published")]
    InvalidFile {
        /// The file.
        path: PathBuf,
        /// What check failed.
        reason: String,
    },

    /// What the store holds for the database makes no sense: a damaged
    /// SQLite file or download cut short, a manifest, chunk, marker or lease
    /// record that does not decode or contradicts itself, an object the
    /// store serves without an ETag, or a database in both layouts at once.
    /// Nothing was installed from it, and the local working copy was left as
    /// it was.
    #[error(
        "the database at {url} is damaged, incomplete or makes no sense ({reason}); \
         nothing was installed from it. Try again; if it persists, restore the \
         object from a good copy"
    )]
    Corrupt {
        /// The database URL; for one object of the database, the URL and
        /// the object's key.
        url: String,
        /// What check failed, and for data that can only be fixed by hand,
        /// what to do.
        reason: String,
    },

    /// Someone else published a newer version since this one was pulled,
    /// and none of the tries of this change landed, nor ever will. The
    /// remote object was not touched by them.
    #[error(
        "conflict publishing {url}: another writer changed it since it was read \
         ({attempts} attempt(s)); the remote copy was left untouched. Re-read \
         and run the change again (the retrying transaction does this)"
    )]
    Conflict {
        /// The database URL.
        url: String,
        /// How many times the change was tried, each proven not to have
        /// landed: 1 for one publish (more when it was sent again after an
        /// answer was lost), the number of runs for the retrying
        /// transaction and [`Database::write`](crate::Database::write), the
        /// number of rounds for `convert` and `restore`.
        attempts: u32,
    },

    /// A write was sent, and whether it landed cannot be told: the store
    /// failed for the whole retry budget, or no longer shows it. The change
    /// must not be run again blindly.
    #[error("whether {operation} of {url} landed is unknown ({detail}): do not run it again blindly. {next}")]
    OutcomeUnknown {
        /// The database URL.
        url: String,
        /// What was being written.
        operation: &'static str,
        /// Why it cannot be told.
        detail: String,
        /// What happens next, and what to do.
        next: &'static str,
    },

    /// A local working copy is not a sound SQLite database (a full disk cut
    /// it short, another program wrote over it). Nothing of it was
    /// published; it was set aside, and the remote version is used instead.
    #[error(
        "the working copy of {url} is damaged ({reason}), so nothing was published from it; it was set aside \
         as {path} and the newest remote version is used instead"
    )]
    WorkingCopyDamaged {
        /// The database URL.
        url: String,
        /// Where the damaged copy is now.
        path: PathBuf,
        /// What check failed.
        reason: String,
    },

    /// The store does not honour conditional requests, so writing to it
    /// could lose other writers' updates silently: nothing was written.
    #[error(
        "{store} does not honour conditional writes ({failed}), so concurrent writers of {url} would silently \
         overwrite each other; nothing was written. Use a store that honours them (AWS S3, Cloudflare R2, \
         MinIO since 2024, SeaweedFS, Azure Blob Storage, Google Cloud Storage), or accept last-writer-wins with \
         --unsafe-store (StoreOptions::unsafe_store). `sqlite-s3 doctor URL` shows what the store supports"
    )]
    UnsafeStore {
        /// The database URL.
        url: String,
        /// The store, by kind and endpoint.
        store: String,
        /// What it did wrong.
        failed: String,
    },

    /// SQLite reported an error.
    #[error("SQL error: {0}")]
    Sql(#[from] rusqlite::Error),

    /// A working copy holds changes from an earlier session that could not be
    /// published. They are kept in `path`.
    #[error(
        "unpublished changes to {url} from an earlier session are kept in {path}, \
         and {reason}. Inspect them there; to drop them (they are moved aside, \
         not deleted) open with the discard-pending option (--discard-pending)"
    )]
    UnpublishedChanges {
        /// The database URL.
        url: String,
        /// Where the changes are.
        path: PathBuf,
        /// Why they could not be published.
        reason: String,
    },

    /// Every working copy of this database in the cache directory is in use.
    #[error(
        "every working copy of {url} in {cache_dir} is in use by other sessions: \
         close one, or use another cache directory"
    )]
    Busy {
        /// The database URL.
        url: String,
        /// The cache directory.
        cache_dir: PathBuf,
    },

    /// Contention with another process or connection that passes: the
    /// database is being converted between layouts, another gc is running,
    /// a branch is being created, the object kept changing while it was
    /// downloaded, the file changed while it was published, or another
    /// connection held a lock on the working copy. Nothing this call was
    /// to commit took effect (a publish did not reach its commit point; gc
    /// may have retired some versions, and a new run goes on from there),
    /// so the same call may simply be made again. Its kind is
    /// [`ErrorKind::TryAgain`], which says when the change itself may be
    /// run again.
    #[error("{url}: {reason}; try again")]
    TryAgain {
        /// The database URL; for a lock on a local file, that file.
        url: String,
        /// What was in the way.
        reason: String,
    },

    /// History work (log, restore, branch, gc) on a database that has no
    /// versions: it is in the single-object layout, or does not exist.
    #[error(
        "{url} has no versions: history, restore, branch and gc need the versioned layout \
         (sqlite-s3 convert {url} --to versioned)"
    )]
    NotVersioned {
        /// The database URL.
        url: String,
    },

    /// The version asked for does not exist (or gc deleted it).
    #[error("{url} has no {wanted} (sqlite-s3 log {url} lists its versions)")]
    VersionNotFound {
        /// The database URL.
        url: String,
        /// What was asked for, as the message says it: `version 7`, or
        /// `version committed at or before 2026-01-02T03:04:05Z`.
        wanted: String,
    },

    /// A new version was asked of a database whose versions ended when it
    /// moved to the single-object layout.
    #[error(
        "{url} moved to the single-object layout at version {version}, so it takes no new versions; \
         move it back first (sqlite-s3 convert {url} --to versioned)"
    )]
    MovedToSingle {
        /// The database URL.
        url: String,
        /// Its last version, marked as moved.
        version: u64,
    },

    /// The call does not fit the state of the session or its arguments: a
    /// refresh over unpublished changes, a read-only session holding
    /// changes, a transaction still open on the connection, a lease on a
    /// local file, a branch into another store, an argument out of range.
    /// Nothing was done; the calling code must change.
    #[error("{url}: {reason}")]
    Misuse {
        /// The database URL (for a local database, its path).
        url: String,
        /// What does not fit, and what to do instead.
        reason: String,
    },

    /// A local file is in a state the operation cannot work with: a journal
    /// beside a pull's destination, a shared working copy that cannot be
    /// switched to WAL mode or take a page size of another size. Nothing
    /// was changed.
    #[error("{path} cannot be used as it is: {reason}")]
    LocalFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it, and what to do.
        reason: String,
    },

    /// A local file could not be read or written.
    #[error("{operation} {path}: {source}")]
    Io {
        /// What was being done.
        operation: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },

    /// The store failed in a way not covered above.
    #[error("store error for {url} ({operation}): {source}")]
    Store {
        /// The database URL.
        url: String,
        /// What was being done.
        operation: &'static str,
        /// The store's error.
        #[source]
        source: Box<object_store::Error>,
    },

    /// The closure of a transaction gave up; nothing was published.
    #[error("transaction aborted: {0}")]
    Aborted(#[source] Box<dyn std::error::Error + Send + Sync>),
}

fn bucket_kind(url: &str) -> &'static str {
    match url.split_once("://").map(|(scheme, _)| scheme) {
        Some("file") => "directory",
        Some("az" | "azure") => "container",
        _ => "bucket",
    }
}

fn bucket_creation(url: &str) -> &'static str {
    match url.split_once("://").map(|(scheme, _)| scheme) {
        Some("file") => "mkdir -p",
        Some("az" | "azure") => "az storage container create",
        Some("gs") => "gcloud storage buckets create",
        _ => "aws s3 mb",
    }
}

/// What kind of failure an [`Error`] is: what a caller should do about it.
/// See [`Error::kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Another writer's version took the place of this change, which is
    /// proven not to have landed: run it again on the newest version.
    Conflict,
    /// Contention that passes (a conversion, another gc, a lock, a busy
    /// cache, a lease held by another process); nothing took effect as a
    /// change: make the same call again, later.
    TryAgain,
    /// The store failed for the whole retry budget and nothing landed: make
    /// the call again once it is back.
    Unavailable,
    /// A write was sent and whether it landed cannot be told: never run the
    /// change again blindly.
    OutcomeUnknown,
    /// The bucket, the database, or the version asked for does not exist
    /// (history work also needs the versioned layout).
    NotFound,
    /// Stored or local data is damaged or makes no sense.
    Damaged,
    /// The store or the protocol refused: the credentials, a permission, a
    /// store that does not honour conditional writes, a lease that is lost.
    Refused,
    /// A malformed URL, or a call that does not fit the session's state or
    /// its arguments: the calling code must change.
    Usage,
    /// Something in the cache or a local file needs attention first:
    /// changes kept from an earlier session, a local file in the way.
    LocalState,
    /// SQLite reported an error.
    Sql,
    /// A local file could not be read or written.
    Io,
    /// A transaction's closure gave up.
    Aborted,
    /// Anything else (a store failure of no known kind).
    Other,
}

impl Error {
    /// What kind of failure this is; the retrying transaction,
    /// [`Database::write`](crate::Database::write) and the Lambda layer
    /// decide by it what to run again.
    ///
    /// Only [`ErrorKind::Conflict`] proves by itself that a change did not
    /// land and may be run again. [`ErrorKind::TryAgain`] and
    /// [`ErrorKind::Unavailable`] from a publish say that this try did not
    /// land, but an earlier try of the same changes (whose answer was lost)
    /// may still be recorded as in flight: calling
    /// [`Session::publish`](crate::Session::publish) again is safe (it
    /// settles that first), running the change again is safe only when
    /// nothing is in flight, which the retrying transaction checks.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::TryAgain { .. } | Error::Busy { .. } | Error::LeaseHeld { .. } => ErrorKind::TryAgain,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::OutcomeUnknown { .. } => ErrorKind::OutcomeUnknown,
            Error::BucketNotFound { .. }
            | Error::DatabaseNotFound { .. }
            | Error::NotVersioned { .. }
            | Error::VersionNotFound { .. }
            | Error::MovedToSingle { .. } => ErrorKind::NotFound,
            Error::NotADatabase { .. }
            | Error::InvalidFile { .. }
            | Error::Corrupt { .. }
            | Error::WorkingCopyDamaged { .. } => ErrorKind::Damaged,
            Error::AccessDenied { .. }
            | Error::Credentials { .. }
            | Error::UnsafeStore { .. }
            | Error::LeaseLost { .. } => ErrorKind::Refused,
            Error::InvalidUrl { .. } | Error::Misuse { .. } => ErrorKind::Usage,
            Error::UnpublishedChanges { .. } | Error::LocalFile { .. } => ErrorKind::LocalState,
            Error::Sql(_) => ErrorKind::Sql,
            Error::Io { .. } => ErrorKind::Io,
            Error::Aborted(_) => ErrorKind::Aborted,
            Error::Store { .. } => ErrorKind::Other,
        }
    }

    /// Wraps an application error so a transaction closure can return it; the
    /// transaction is rolled back and nothing is published.
    pub fn abort(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Aborted(error.into())
    }

    /// True for [`Error::Conflict`]: `kind() == ErrorKind::Conflict`.
    pub fn is_conflict(&self) -> bool {
        self.kind() == ErrorKind::Conflict
    }

    /// This error, a [`Error::Conflict`] reporting `attempts` tries; any
    /// other error as it is. For the loops that know how many times a
    /// change was tried (a layout's conflict reports one try).
    pub(crate) fn with_attempts(self, attempts: u32) -> Self {
        match self {
            Error::Conflict { url, .. } => Error::Conflict { url, attempts },
            other => other,
        }
    }

    pub(crate) fn io(operation: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            operation,
            path,
            source,
        }
    }
}
