//! Exit codes: each class of failure a script may want to tell apart.

use sqlite_s3::Error;

/// Anything not listed below.
pub const FAILURE: u8 = 1;
/// A malformed command line or URL, or an argument that does not fit
/// (clap uses 2 for usage errors too).
pub const USAGE: u8 = 2;
/// SQLite rejected the SQL.
pub const SQL: u8 = 3;
/// Another writer kept winning: still a conflict after every retry.
pub const CONFLICT: u8 = 4;
/// The store could not be reached.
pub const UNAVAILABLE: u8 = 5;
/// The credentials were refused, are missing, or lack a permission.
pub const ACCESS_DENIED: u8 = 6;
/// The bucket, the database, or the version asked for does not exist
/// (history work needs the versioned layout).
pub const NOT_FOUND: u8 = 7;
/// The object is not a sound SQLite database.
pub const NOT_A_DATABASE: u8 = 8;
/// Unpublished changes from an earlier session, a damaged working copy,
/// every working copy busy, or a local file in the way.
pub const LOCAL_STATE: u8 = 9;
/// A write was sent and whether it landed cannot be told: do not repeat it.
pub const OUTCOME_UNKNOWN: u8 = 10;
/// The store does not honour conditional writes: nothing was written.
pub const UNSAFE_STORE: u8 = 11;
/// Contention that passes (another process converting the database or
/// collecting its garbage, a lock held by another connection): run it
/// again.
pub const TRY_AGAIN: u8 = 12;

/// Interrupted with Ctrl-C (128 + SIGINT, as shells report it).
pub const INTERRUPTED: u8 = 130;

/// The exit code for an error.
pub fn code(error: &Error) -> u8 {
    match error {
        Error::InvalidUrl { .. } | Error::Misuse { .. } => USAGE,
        Error::Sql(_) => SQL,
        Error::Conflict { .. } => CONFLICT,
        Error::Unavailable { .. } => UNAVAILABLE,
        Error::AccessDenied { .. } | Error::Credentials { .. } => ACCESS_DENIED,
        Error::BucketNotFound { .. }
        | Error::DatabaseNotFound { .. }
        | Error::NotVersioned { .. }
        | Error::VersionNotFound { .. }
        | Error::MovedToSingle { .. } => NOT_FOUND,
        Error::NotADatabase { .. } | Error::Corrupt { .. } | Error::InvalidFile { .. } => NOT_A_DATABASE,
        Error::UnpublishedChanges { .. }
        | Error::Busy { .. }
        | Error::WorkingCopyDamaged { .. }
        | Error::LocalFile { .. } => LOCAL_STATE,
        Error::OutcomeUnknown { .. } => OUTCOME_UNKNOWN,
        Error::UnsafeStore { .. } => UNSAFE_STORE,
        Error::TryAgain { .. } => TRY_AGAIN,
        _ => FAILURE,
    }
}

/// The table printed by `--help`.
pub const HELP: &str = "\
Exit codes:
  0  success
  1  any other failure
  2  malformed command line or URL, or an argument that does not fit (--grace, --at)
  3  SQL error
  4  conflict: another writer kept winning after every retry
  5  the store could not be reached
  6  access denied (credentials refused, missing or lacking a permission)
  7  the bucket, the database, or the version asked for does not exist (log, restore, branch and gc
     need the versioned layout)
  8  not a sound SQLite database (the object, or the file given to push), or stored data that makes
     no sense
  9  unpublished changes from an earlier session, a damaged working copy, every working copy busy,
     or a local file in the way (a journal beside pull's destination)
 10  whether a write landed is unknown (the store failed throughout): do not run it again blindly; the
     next run on this cache finds out and finishes it exactly once
 11  the store does not honour conditional writes (nothing was written; --unsafe-store to accept
     last-writer-wins)
 12  contention that passes (another process converting the database or running gc, a lock held by
     another connection): run it again; an exec that exits 12 was not applied
130  interrupted (Ctrl-C): nothing half-written is left behind";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_class_has_its_own_documented_code() {
        let conflict = Error::Conflict {
            url: "s3://b/k".into(),
            attempts: 3,
        };
        let sql = Error::Sql(rusqlite::Error::InvalidQuery);
        let url = Error::InvalidUrl {
            url: "x".into(),
            reason: "y".into(),
        };
        let missing = Error::DatabaseNotFound { url: "s3://b/k".into() };
        let codes = [code(&url), code(&sql), code(&conflict), code(&missing)];
        assert_eq!(codes, [USAGE, SQL, CONFLICT, NOT_FOUND]);
        let url = || "s3://b/k".to_string();
        let reason = || "r".to_string();
        let more = [
            Error::TryAgain {
                url: url(),
                reason: reason(),
            },
            Error::NotVersioned { url: url() },
            Error::VersionNotFound {
                url: url(),
                wanted: "version 9".into(),
            },
            Error::MovedToSingle { url: url(), version: 3 },
            Error::Misuse {
                url: url(),
                reason: reason(),
            },
            Error::LocalFile {
                path: "f.db".into(),
                reason: reason(),
            },
            Error::Corrupt {
                url: url(),
                reason: reason(),
            },
        ];
        assert_eq!(
            more.iter().map(code).collect::<Vec<_>>(),
            [
                TRY_AGAIN,
                NOT_FOUND,
                NOT_FOUND,
                NOT_FOUND,
                USAGE,
                LOCAL_STATE,
                NOT_A_DATABASE
            ]
        );
        for c in [
            FAILURE,
            USAGE,
            SQL,
            CONFLICT,
            UNAVAILABLE,
            ACCESS_DENIED,
            NOT_FOUND,
            NOT_A_DATABASE,
            LOCAL_STATE,
            OUTCOME_UNKNOWN,
            UNSAFE_STORE,
            TRY_AGAIN,
        ] {
            assert!(HELP.contains(&format!("{c:>3}  ")), "exit code {c} is not in the help");
        }
    }
}
