//! Where a database is: a plain local SQLite file, or a store URL. One
//! setting (`DATABASE_URL`, or any variable the application names) moves an
//! application between the two.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::location::DatabaseUrl;

/// A database location, as read from configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An ordinary SQLite file: no object store is involved, and publishing
    /// or refreshing does nothing.
    Local(PathBuf),
    /// A database kept in a store (`s3://`, `file://`, `memory://`).
    Remote(DatabaseUrl),
}

impl Target {
    /// Reads a location:
    /// - `s3://bucket/app.db`, `file:///srv/data/app.db`, `memory://name/app.db`:
    ///   a store URL;
    /// - `sqlite://data/app.db`, `sqlite:data/app.db` (as sqlx and Diesel
    ///   write them; a `?query` is ignored): a local file;
    /// - anything else without `://`: a local file path.
    ///
    /// # Failure
    /// [`Error::InvalidUrl`] for an empty value, an unknown scheme, or a
    /// malformed store URL.
    pub fn parse(value: &str) -> Result<Self> {
        let value = value.trim();
        let invalid = |reason: &str| Error::InvalidUrl {
            url: value.to_string(),
            reason: reason.to_string(),
        };
        if value.is_empty() {
            return Err(invalid(
                "it is empty; give a file path (data/app.db) or a store URL (s3://bucket/app.db)",
            ));
        }
        if let Some(rest) = value.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let path = path.split_once('?').map_or(path, |(path, _)| path);
            if path.is_empty() || path == ":memory:" {
                return Err(invalid(
                    "an in-memory SQLite database cannot be kept anywhere; give a file path",
                ));
            }
            return Ok(Self::Local(PathBuf::from(path)));
        }
        if value.contains("://") {
            return DatabaseUrl::parse(value).map(Self::Remote);
        }
        Ok(Self::Local(PathBuf::from(value)))
    }

    /// Reads the location from the environment variable `variable`
    /// (`DATABASE_URL` by convention).
    ///
    /// # Failure
    /// [`Error::InvalidUrl`] naming the variable when it is not set or not
    /// Unicode, and the errors of [`Target::parse`].
    pub fn from_env(variable: &str) -> Result<Self> {
        match std::env::var(variable) {
            Ok(value) => Self::parse(&value),
            Err(e) => Err(Error::InvalidUrl {
                url: format!("${variable}"),
                reason: format!(
                    "the environment variable {variable} {}; set it to a file path (data/app.db) or a store URL \
                     (s3://bucket/app.db)",
                    match e {
                        std::env::VarError::NotPresent => "is not set",
                        std::env::VarError::NotUnicode(_) => "is not valid Unicode",
                    }
                ),
            }),
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(path) => write!(f, "{}", path.display()),
            Self::Remote(url) => write!(f, "{url}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(path: &str) -> Target {
        Target::Local(PathBuf::from(path))
    }

    #[test]
    fn paths_and_sqlite_urls_are_local_files() {
        assert_eq!(Target::parse("app.db").unwrap(), local("app.db"));
        assert_eq!(Target::parse("/srv/app.db").unwrap(), local("/srv/app.db"));
        assert_eq!(
            Target::parse("sqlite://data/app.db?mode=rwc").unwrap(),
            local("data/app.db")
        );
        assert_eq!(Target::parse("sqlite:app.db").unwrap(), local("app.db"));
        assert_eq!(Target::parse(" sqlite:///abs/app.db ").unwrap(), local("/abs/app.db"));
    }

    #[test]
    fn store_urls_are_remote() {
        let Target::Remote(url) = Target::parse("s3://bucket/dir/app.db").unwrap() else {
            panic!("not remote");
        };
        assert_eq!((url.bucket(), url.key()), ("bucket", "dir/app.db"));
        assert!(matches!(
            Target::parse("file:///tmp/app.db").unwrap(),
            Target::Remote(_)
        ));
    }

    #[test]
    fn bad_values_say_what_to_give() {
        for bad in ["", "sqlite::memory:", "sqlite://", "ftp://host/app.db", "s3://"] {
            let err = Target::parse(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid database URL"), "{bad}: {err}");
        }
        let err = Target::from_env("SQLITE_S3_SURELY_UNSET_VARIABLE")
            .unwrap_err()
            .to_string();
        assert!(err.contains("SQLITE_S3_SURELY_UNSET_VARIABLE is not set"), "{err}");
    }
}
