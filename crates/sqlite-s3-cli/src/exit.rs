//! Exit codes: each class of failure a script may want to tell apart.

use sqlite_s3::Error;

/// Anything not listed below.
pub const FAILURE: u8 = 1;
/// A malformed command line or URL (clap uses 2 for usage errors too).
pub const USAGE: u8 = 2;
/// SQLite rejected the SQL.
pub const SQL: u8 = 3;
/// Another writer kept winning: still a conflict after every retry.
pub const CONFLICT: u8 = 4;
/// The store could not be reached.
pub const UNAVAILABLE: u8 = 5;
/// The credentials were refused, are missing, or lack a permission.
pub const ACCESS_DENIED: u8 = 6;
/// The bucket, or the database, does not exist.
pub const NOT_FOUND: u8 = 7;
/// The object is not a sound SQLite database.
pub const NOT_A_DATABASE: u8 = 8;
/// Unpublished changes from an earlier session, a damaged working copy, or
/// every working copy busy.
pub const LOCAL_STATE: u8 = 9;
/// A write was sent and whether it landed cannot be told: do not repeat it.
pub const OUTCOME_UNKNOWN: u8 = 10;
/// The store does not honour conditional writes: nothing was written.
pub const UNSAFE_STORE: u8 = 11;

/// Interrupted with Ctrl-C (128 + SIGINT, as shells report it).
pub const INTERRUPTED: u8 = 130;

/// The exit code for an error.
pub fn code(error: &Error) -> u8 {
    match error {
        Error::InvalidUrl { .. } => USAGE,
        Error::Sql(_) => SQL,
        Error::Conflict { .. } => CONFLICT,
        Error::Unavailable { .. } => UNAVAILABLE,
        Error::AccessDenied { .. } | Error::Credentials { .. } => ACCESS_DENIED,
        Error::BucketNotFound { .. } | Error::DatabaseNotFound { .. } => NOT_FOUND,
        Error::NotADatabase { .. } | Error::Corrupt { .. } | Error::InvalidFile { .. } => NOT_A_DATABASE,
        Error::UnpublishedChanges { .. } | Error::Busy { .. } | Error::WorkingCopyDamaged { .. } => LOCAL_STATE,
        Error::OutcomeUnknown { .. } => OUTCOME_UNKNOWN,
        Error::UnsafeStore { .. } => UNSAFE_STORE,
        _ => FAILURE,
    }
}

/// The table printed by `--help`.
pub const HELP: &str = "\
Exit codes:
  0  success
  1  any other failure
  2  malformed command line or URL
  3  SQL error
  4  conflict: another writer kept winning after every retry
  5  the store could not be reached
  6  access denied (credentials refused, missing or lacking a permission)
  7  the bucket, or the database, does not exist
  8  not a sound SQLite database (the object, or the file given to push)
  9  unpublished changes from an earlier session, a damaged working copy, or every working copy busy
 10  whether a write landed is unknown (the store failed throughout): do not run it again blindly; the
     next run on this cache finds out and finishes it exactly once
 11  the store does not honour conditional writes (nothing was written; --unsafe-store to accept
     last-writer-wins)
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
        ] {
            assert!(HELP.contains(&format!("{c:>3}  ")), "exit code {c} is not in the help");
        }
    }
}
