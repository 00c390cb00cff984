//! Database URLs: which store, which bucket, which key.
//!
//! | URL | store | bucket | key |
//! |---|---|---|---|
//! | `s3://bucket/path/app.db` | S3 or an S3-compatible server | `bucket` | `path/app.db` |
//! | `az://container/app.db` (or `azure://`) | Azure Blob Storage | the container | `app.db` |
//! | `gs://bucket/app.db` | Google Cloud Storage | `bucket` | `app.db` |
//! | `file:///srv/data/app.db` | the local directory `/srv/data` | `/srv/data` | `app.db` |
//! | `memory://name/app.db` | an in-memory store shared by every `memory://name` URL of the process | `name` | `app.db` |
//!
//! URLs are read by the `url` crate. Bucket names, keys and `file://` paths
//! are percent-decoded (`s3://bucket/my%20db.sqlite` names the key
//! `my db.sqlite`); a URL is still shown as it was written. A database URL
//! takes no user name, password, port, query or fragment.

use std::fmt;
use std::path::{Path, PathBuf};

use percent_encoding::percent_decode_str;
use url::Url;

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

impl Scheme {
    /// The store a scheme names, as written in lower case; `None` for
    /// schemes this crate does not open.
    fn from_name(name: &str) -> Option<Self> {
        match name {
            "s3" | "s3a" => Some(Self::S3),
            "az" | "azure" => Some(Self::Azure),
            "gs" => Some(Self::Gcs),
            "file" => Some(Self::File),
            "memory" => Some(Self::Memory),
            _ => None,
        }
    }
}

/// What a URL that is not one looks like, for messages.
const EXAMPLES: &str = "expected a URL such as s3://bucket/app.db, az://container/app.db, gs://bucket/app.db, \
                        file:///path/to/app.db or memory://name/app.db";

/// A parsed database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    scheme: Scheme,
    /// The URL as the user wrote it, for messages.
    written: String,
    bucket: String,
    key: String,
}

impl DatabaseUrl {
    /// Parses `s3://bucket/key`, `az://container/key` (or `azure://`),
    /// `gs://bucket/key`, `file:///absolute/path` or `memory://name/key`.
    /// Bucket names, keys and paths are percent-decoded.
    ///
    /// # Failure
    /// [`Error::InvalidUrl`] with a reason and an example of a valid URL.
    pub fn parse(url: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        // The URL parser drops these silently, which would change the key.
        if url.chars().any(|c| c.is_ascii_control()) {
            return Err(invalid(
                "it holds a control character (a tab or a line break, say); percent-encode it",
            ));
        }
        if url.trim() != url {
            return Err(invalid("it starts or ends with a space"));
        }
        let parsed = Url::parse(url).map_err(|e| invalid(&not_a_url(url, e)))?;
        // `scheme:path` without `//` is a URL, but not a database URL.
        if !url[parsed.scheme().len()..].starts_with("://") {
            return Err(invalid(EXAMPLES));
        }
        let spelled = parsed.scheme();
        let scheme = Scheme::from_name(spelled).ok_or_else(|| invalid(&unknown_scheme(spelled)))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(invalid(
                "a database URL takes no user name or password: credentials come from the environment",
            ));
        }
        if parsed.port().is_some() {
            return Err(invalid(
                "a database URL takes no port: the host part is the bucket; give a server as the endpoint",
            ));
        }
        if parsed.query().is_some() {
            return Err(invalid(
                "a database URL takes no query (?...); write a '?' in a key as %3F",
            ));
        }
        if parsed.fragment().is_some() {
            return Err(invalid(
                "a database URL takes no fragment (#...); write a '#' in a key as %23",
            ));
        }
        let (bucket, key) = match scheme {
            Scheme::S3 | Scheme::Azure | Scheme::Gcs => {
                let bucket = decode(parsed.host_str().unwrap_or_default()).map_err(|reason| invalid(&reason))?;
                validate_bucket(&bucket, spelled).map_err(|reason| invalid(&reason))?;
                (bucket, key_of(url, &parsed).map_err(|reason| invalid(&reason))?)
            }
            Scheme::Memory => {
                let bucket = decode(parsed.host_str().unwrap_or_default()).map_err(|reason| invalid(&reason))?;
                if bucket.is_empty() {
                    return Err(invalid("expected memory://name/key"));
                }
                (bucket, key_of(url, &parsed).map_err(|reason| invalid(&reason))?)
            }
            Scheme::File => {
                // The parser reads `file://localhost/` as `file:///`; any
                // other host is a relative path missing its slash.
                if parsed.host().is_some() {
                    return Err(invalid(
                        "a file URL needs an absolute path: file:///path/to/app.db (three slashes)",
                    ));
                }
                let path = decode_segments(parsed.path()).map_err(|reason| invalid(&reason))?;
                let path = Path::new(&path);
                let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
                    return Err(invalid("the path names no file, as in file:///path/to/app.db"));
                };
                let name = name.to_str().ok_or_else(|| invalid("the file name is not UTF-8"))?;
                validate_key(name).map_err(|reason| invalid(&reason))?;
                (dir.to_string_lossy().into_owned(), name.to_string())
            }
        };
        Ok(Self {
            scheme,
            written: url.to_string(),
            bucket,
            key,
        })
    }

    /// The URL as it was written.
    pub fn as_str(&self) -> &str {
        &self.written
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

    /// The bucket, percent-decoded; for `file://` URLs, the directory
    /// holding the database.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The key of the database object inside the bucket, percent-decoded.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// For `file://` URLs, the directory acting as the bucket.
    pub fn directory(&self) -> Option<PathBuf> {
        (self.scheme == Scheme::File).then(|| PathBuf::from(&self.bucket))
    }
}

impl fmt::Display for DatabaseUrl {
    /// The URL as it was written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

/// Why `url` could not be parsed at all.
fn not_a_url(url: &str, error: url::ParseError) -> String {
    match url.split_once("://") {
        Some((scheme, _)) if Scheme::from_name(&scheme.to_ascii_lowercase()).is_none() => {
            unknown_scheme(&scheme.to_ascii_lowercase())
        }
        Some(_) => format!("it is not a valid URL ({error}); {EXAMPLES}"),
        None => EXAMPLES.to_string(),
    }
}

fn unknown_scheme(scheme: &str) -> String {
    format!("unknown scheme {scheme:?}: use s3://, az://, gs://, file:// or memory://")
}

/// The key of an `s3://`, `az://`, `gs://` or `memory://` URL: its path
/// without the leading `/`, percent-decoded.
fn key_of(written: &str, parsed: &Url) -> std::result::Result<String, String> {
    // The parser resolves `.` and `..` (`a/../b` is `b`); object keys cannot
    // hold them, so they are looked for in the path as written.
    let path_written = written
        .split_once("://")
        .map_or("", |(_, rest)| rest)
        .split(['?', '#'])
        .next()
        .unwrap_or_default();
    let dot_segment = path_written.split('/').skip(1).find(|segment| {
        let decoded = percent_decode_str(segment).decode_utf8_lossy();
        decoded == "." || decoded == ".."
    });
    if let Some(segment) = dot_segment {
        return Err(format!(
            "the key holds the segment {segment:?}: object keys cannot hold '.' or '..' folders"
        ));
    }
    let key = decode_segments(parsed.path().strip_prefix('/').unwrap_or(parsed.path()))?;
    validate_key(&key)?;
    Ok(key)
}

/// Percent-decodes each `/`-separated segment of a path.
///
/// An encoded `/` (`%2F`) is refused rather than decoded: a segment of an
/// object key cannot hold a `/`, and reading it as a separator would make
/// `a%2Fb` and `a/b` the same object without saying so.
fn decode_segments(path: &str) -> std::result::Result<String, String> {
    let segments = path
        .split('/')
        .map(|segment| {
            let decoded = decode(segment)?;
            if decoded.contains('/') {
                return Err(format!(
                    "the segment {segment:?} holds an encoded '/' (%2F): a name in a key cannot hold a '/'; \
                     write a plain '/' to name a folder"
                ));
            }
            Ok(decoded)
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(segments.join("/"))
}

fn decode(text: &str) -> std::result::Result<String, String> {
    percent_decode_str(text)
        .decode_utf8()
        .map(|decoded| decoded.into_owned())
        .map_err(|_| format!("{text:?} is not UTF-8 once percent-decoded"))
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
            ("s3:bucket/app.db", "expected a URL"),
            ("https://", "unknown scheme"),
            ("s3://bucket:abc/k", "not a valid URL"),
        ] {
            let err = DatabaseUrl::parse(url).unwrap_err();
            assert!(matches!(err, Error::InvalidUrl { .. }), "{url}: {err}");
            assert!(err.to_string().contains(needle), "{url}: {err}");
        }
    }

    #[test]
    fn keys_buckets_and_paths_are_percent_decoded() {
        let url = DatabaseUrl::parse("s3://my-bucket/my%20db.sqlite").unwrap();
        assert_eq!(url.key(), "my db.sqlite");
        assert_eq!(url.to_string(), "s3://my-bucket/my%20db.sqlite", "shown as written");
        assert_eq!(url.as_str(), "s3://my-bucket/my%20db.sqlite");

        let url = DatabaseUrl::parse("s3://my-bucket/dir/caf%C3%A9/%E6%97%A5.db").unwrap();
        assert_eq!(url.key(), "dir/café/日.db");
        let url = DatabaseUrl::parse("gs://my-bucket/café.db").unwrap();
        assert_eq!(url.key(), "café.db");
        let url = DatabaseUrl::parse("s3://my-bucket/my db.sqlite").unwrap();
        assert_eq!(url.key(), "my db.sqlite", "a space as written is kept");
        assert_eq!(url.to_string(), "s3://my-bucket/my db.sqlite");

        let url = DatabaseUrl::parse("s3://my%2Dbucket/app.db").unwrap();
        assert_eq!(url.bucket(), "my-bucket");
        let url = DatabaseUrl::parse("memory://t%201/app.db").unwrap();
        assert_eq!(url.bucket(), "t 1");

        let url = DatabaseUrl::parse("file:///tmp/my%20dir/my%20db.sqlite").unwrap();
        assert_eq!((url.bucket(), url.key()), ("/tmp/my dir", "my db.sqlite"));
        assert_eq!(url.directory(), Some(PathBuf::from("/tmp/my dir")));
        assert_eq!(url.to_string(), "file:///tmp/my%20dir/my%20db.sqlite");

        let url = DatabaseUrl::parse("file://localhost/tmp/app.db").unwrap();
        assert_eq!((url.bucket(), url.key()), ("/tmp", "app.db"));
        let url = DatabaseUrl::parse("file:///app.db").unwrap();
        assert_eq!((url.bucket(), url.key()), ("/", "app.db"));
        assert_eq!(url.to_string(), "file:///app.db");
    }

    #[test]
    fn the_scheme_may_be_written_in_capitals() {
        let url = DatabaseUrl::parse("S3://my-bucket/app.db").unwrap();
        assert_eq!((url.scheme(), url.scheme_name()), (Scheme::S3, "s3"));
        assert_eq!(url.to_string(), "S3://my-bucket/app.db", "shown as written");
    }

    #[test]
    fn refuses_what_no_object_key_can_hold() {
        for (url, needle) in [
            // An encoded '/' is refused, not read as a folder separator.
            ("s3://bucket/a%2Fb.db", "encoded '/'"),
            ("s3://bucket/dir/a%2fb.db", "encoded '/'"),
            ("file:///tmp/a%2Fb/app.db", "encoded '/'"),
            ("s3://bucket/a/../b.db", "'..'"),
            ("s3://bucket/./b.db", "'.'"),
            ("s3://bucket/a/%2e%2E/b.db", "'..'"),
            ("memory://t/a/%2E/b.db", "'.'"),
            ("s3://bucket/a%2F", "encoded '/'"),
            ("s3://bucket/a%00b", "not a valid object key"),
            ("s3://bucket/%FF.db", "not UTF-8"),
            ("s3://bucket/a\tb", "control character"),
            ("s3://bucket/app.db ", "space"),
        ] {
            let err = DatabaseUrl::parse(url).unwrap_err();
            assert!(matches!(err, Error::InvalidUrl { .. }), "{url}: {err}");
            assert!(err.to_string().contains(needle), "{url}: {err}");
            assert!(
                err.to_string().contains(&format!("{url:?}")),
                "quotes the URL as written: {err}"
            );
        }
    }

    #[test]
    fn refuses_the_url_parts_a_database_url_has_no_use_for() {
        for (url, needle) in [
            ("s3://bucket/app.db?versionId=3", "no query"),
            ("s3://bucket/app.db?", "no query"),
            ("s3://bucket/app.db#top", "no fragment"),
            ("file:///tmp/app.db?mode=ro", "no query"),
            ("memory://t/app.db#x", "no fragment"),
            ("s3://user:secret@bucket/app.db", "no user name or password"),
            ("s3://bucket:9000/app.db", "no port"),
            ("file:/tmp/app.db", "expected a URL"),
        ] {
            let err = DatabaseUrl::parse(url).unwrap_err();
            assert!(matches!(err, Error::InvalidUrl { .. }), "{url}: {err}");
            assert!(err.to_string().contains(needle), "{url}: {err}");
        }
        // Encoded, they are part of the key.
        let url = DatabaseUrl::parse("s3://bucket/why%3F%23.db").unwrap();
        assert_eq!(url.key(), "why?#.db");
    }
}
