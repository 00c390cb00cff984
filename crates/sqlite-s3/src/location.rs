//! Database URLs: which store, which bucket, which key.
//!
//! | URL | store | bucket | key |
//! |---|---|---|---|
//! | `s3://bucket/path/app.db` | S3 or an S3-compatible server | `bucket` | `path/app.db` |
//! | `az://container/app.db` (or `azure://`) | Azure Blob Storage | the container | `app.db` |
//! | `gs://bucket/app.db` | Google Cloud Storage | `bucket` | `app.db` |
//! | `file:///srv/data/app.db` | the local directory `/srv/data` | `/srv/data` | `app.db` |
//! | `memory://name/app.db` | an in-memory store shared by every `memory://name` URL of the process | `name` | `app.db` |

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The kind of store a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// `s3://`: AWS S3 or any S3-compatible server.
    S3,
    /// `az://` or `azure://`: Azure Blob Storage; the bucket is the container.
    Azure,
    /// `gs://`: Google Cloud Storage.
    Gcs,
    /// `file://`: a local directory acting as the bucket.
    File,
    /// `memory://`: an in-memory store, for tests.
    Memory,
}

/// A parsed database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    scheme: Scheme,
    /// The scheme as the user wrote it (`s3a`, `azure`), for messages.
    spelled: String,
    bucket: String,
    key: String,
}

impl DatabaseUrl {
    /// Parses `s3://bucket/key`, `az://container/key` (or `azure://`),
    /// `gs://bucket/key`, `file:///absolute/path` or `memory://name/key`.
    ///
    /// # Failure
    /// [`Error::InvalidUrl`] with a reason and an example of a valid URL.
    pub fn parse(url: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(invalid(
                "expected a URL such as s3://bucket/app.db, az://container/app.db, gs://bucket/app.db, \
                 file:///path/to/app.db or memory://name/app.db",
            ));
        };
        match scheme.to_ascii_lowercase().as_str() {
            spelled @ ("s3" | "s3a" | "az" | "azure" | "gs") => {
                let scheme = match spelled {
                    "s3" | "s3a" => Scheme::S3,
                    "az" | "azure" => Scheme::Azure,
                    _ => Scheme::Gcs,
                };
                let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
                validate_bucket(bucket, spelled).map_err(|reason| invalid(&reason))?;
                validate_key(key).map_err(|reason| invalid(&reason))?;
                Ok(Self {
                    scheme,
                    spelled: spelled.to_string(),
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                })
            }
            "file" => {
                let path = rest.strip_prefix("localhost").unwrap_or(rest);
                if !path.starts_with('/') {
                    return Err(invalid(
                        "a file URL needs an absolute path: file:///path/to/app.db (three slashes)",
                    ));
                }
                let path = Path::new(path);
                let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
                    return Err(invalid("the path names no file, as in file:///path/to/app.db"));
                };
                let name = name.to_str().ok_or_else(|| invalid("the file name is not UTF-8"))?;
                validate_key(name).map_err(|reason| invalid(&reason))?;
                Ok(Self {
                    scheme: Scheme::File,
                    spelled: "file".into(),
                    bucket: dir.to_string_lossy().into_owned(),
                    key: name.to_string(),
                })
            }
            "memory" => {
                let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(invalid("expected memory://name/key"));
                }
                validate_key(key).map_err(|reason| invalid(&reason))?;
                Ok(Self {
                    scheme: Scheme::Memory,
                    spelled: "memory".into(),
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                })
            }
            other => Err(invalid(&format!(
                "unknown scheme {other:?}: use s3://, az://, gs://, file:// or memory://"
            ))),
        }
    }

    /// The kind of store.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The kind of store, as this crate names it in URLs (`s3`, `az`, `gs`,
    /// `file`, `memory`), however the user spelled it.
    pub fn scheme_name(&self) -> &'static str {
        match self.scheme {
            Scheme::S3 => "s3",
            Scheme::Azure => "az",
            Scheme::Gcs => "gs",
            Scheme::File => "file",
            Scheme::Memory => "memory",
        }
    }

    /// The bucket; for `file://` URLs, the directory holding the database.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key of the database object inside the bucket.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// For `file://` URLs, the directory acting as the bucket.
    pub fn directory(&self) -> Option<PathBuf> {
        (self.scheme == Scheme::File).then(|| PathBuf::from(&self.bucket))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.scheme {
            Scheme::S3 | Scheme::Azure | Scheme::Gcs => write!(f, "{}://{}/{}", self.spelled, self.bucket, self.key),
            Scheme::File if self.bucket == "/" => write!(f, "file:///{}", self.key),
            Scheme::File => write!(f, "file://{}/{}", self.bucket, self.key),
            Scheme::Memory => write!(f, "memory://{}/{}", self.bucket, self.key),
        }
    }
}

fn validate_bucket(bucket: &str, scheme: &str) -> std::result::Result<(), String> {
    let valid_chars = bucket
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
    let edges = bucket
        .bytes()
        .next()
        .zip(bucket.bytes().last())
        .is_some_and(|(a, z)| a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric());
    let what = if scheme.starts_with("az") {
        "container"
    } else {
        "bucket"
    };
    if bucket.is_empty() {
        Err(format!("the {what} is missing: expected {scheme}://{what}/key"))
    } else if !(3..=63).contains(&bucket.len()) || !valid_chars || !edges {
        Err(format!(
            "{bucket:?} is not a valid {what} name: 3 to 63 characters, lowercase letters, \
             digits, '-' and '.', starting and ending with a letter or digit"
        ))
    } else {
        Ok(())
    }
}

fn validate_key(key: &str) -> std::result::Result<(), String> {
    if key.is_empty() {
        return Err("the key is missing: expected a database name after the bucket, as in s3://bucket/app.db".into());
    }
    if key.ends_with('/') {
        return Err("the key ends with '/': it must name an object, not a folder".into());
    }
    object_store::path::Path::parse(key)
        .map(|_| ())
        .map_err(|e| format!("the key {key:?} is not a valid object key: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_scheme() {
        let s3 = DatabaseUrl::parse("s3://my-bucket/dir/app.db").unwrap();
        assert_eq!(
            (s3.scheme(), s3.bucket(), s3.key()),
            (Scheme::S3, "my-bucket", "dir/app.db")
        );
        assert_eq!(s3.to_string(), "s3://my-bucket/dir/app.db");

        let file = DatabaseUrl::parse("file:///tmp/x/app.db").unwrap();
        assert_eq!(
            (file.scheme(), file.bucket(), file.key()),
            (Scheme::File, "/tmp/x", "app.db")
        );
        assert_eq!(file.to_string(), "file:///tmp/x/app.db");

        let mem = DatabaseUrl::parse("memory://t1/a/b.db").unwrap();
        assert_eq!((mem.bucket(), mem.key()), ("t1", "a/b.db"));

        for (url, scheme) in [
            ("az://box/app.db", Scheme::Azure),
            ("azure://box/app.db", Scheme::Azure),
            ("gs://box/app.db", Scheme::Gcs),
            ("s3a://box/app.db", Scheme::S3),
        ] {
            let parsed = DatabaseUrl::parse(url).unwrap();
            assert_eq!(
                (parsed.scheme(), parsed.bucket(), parsed.key()),
                (scheme, "box", "app.db")
            );
            assert_eq!(parsed.to_string(), url, "named as written");
        }
    }

    #[test]
    fn rejects_malformed_urls_with_a_reason() {
        for (url, needle) in [
            ("app.db", "expected a URL"),
            ("s3://", "bucket is missing"),
            ("s3://bucket", "key is missing"),
            ("s3://bucket/", "key is missing"),
            ("s3://Bad_Bucket/k", "not a valid bucket name"),
            ("s3://ab/k", "not a valid bucket name"),
            ("s3://bucket/dir/", "ends with '/'"),
            ("s3://bucket/a//b", "not a valid object key"),
            ("file://relative/app.db", "absolute path"),
            ("ftp://bucket/app.db", "unknown scheme"),
            ("az://", "container is missing"),
        ] {
            let err = DatabaseUrl::parse(url).unwrap_err();
            assert!(matches!(err, Error::InvalidUrl { .. }), "{url}: {err}");
            assert!(err.to_string().contains(needle), "{url}: {err}");
        }
    }
}
