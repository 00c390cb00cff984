//! What tells one database apart from any other, however its URL and
//! endpoint are spelled: the cache keys working copies (and the changes
//! waiting in them) by it, so one bucket must have one identity.
//!
//! - Endpoints: scheme and host in lower case, default ports and trailing
//!   slashes dropped, `localhost` and `[::1]` taken for `127.0.0.1`, and
//!   AWS's own S3 endpoints taken for no endpoint (bucket names are global
//!   there).
//! - Keys: as the store reads them (`a//b` is `a/b`).
//! - Directories of `file://` URLs: the real path, links resolved.

use object_store::path::Path;

use crate::location::{DatabaseUrl, Scheme};

/// The identity of the database at `key` of the store `url` names, reached
/// through `endpoint`.
pub(crate) fn of(url: &DatabaseUrl, endpoint_name: Option<&str>, key: &Path) -> String {
    let bucket = match url.directory() {
        Some(dir) => std::fs::canonicalize(&dir)
            .unwrap_or(dir)
            .to_string_lossy()
            .into_owned(),
        None => url.bucket().to_string(),
    };
    let scheme = url.scheme_name();
    let mut identity = format!("{}\n{scheme}://{bucket}/{}", endpoint(endpoint_name), key);
    if url.scheme() == Scheme::Memory {
        // A memory store lives and dies with its process, and its ETags
        // restart with it: a cached copy must never outlive it.
        identity.push_str(&format!("\n{}", *super::memory::PROCESS_NONCE));
    }
    identity
}

/// What earlier versions of this crate keyed the cache by (the endpoint
/// and the URL as given), when it differs from [`of`]: working copies kept
/// under it are adopted (`cache::adopt_legacy`). `None` for memory stores,
/// whose copies never outlive their process.
pub(crate) fn legacy(url: &DatabaseUrl, endpoint_name: Option<&str>, key: &Path) -> Option<String> {
    if url.scheme() == Scheme::Memory {
        return None;
    }
    let old = format!("{}\n{}", endpoint_name.unwrap_or(""), url);
    (old != of(url, endpoint_name, key)).then_some(old)
}

/// An endpoint, spelled one way. See the module docs.
pub(crate) fn endpoint(endpoint: Option<&str>) -> String {
    let Some(given) = endpoint.map(str::trim).filter(|e| !e.is_empty()) else {
        return String::new();
    };
    let Ok(parsed) = url::Url::parse(given) else {
        return given.trim_end_matches('/').to_string();
    };
    let host = match parsed.host_str().unwrap_or_default() {
        "localhost" | "[::1]" | "::1" => "127.0.0.1".to_string(),
        host => host.to_ascii_lowercase(),
    };
    let aws = host == "s3.amazonaws.com"
        || (host.ends_with(".amazonaws.com") && (host.starts_with("s3.") || host.starts_with("s3-")));
    if aws && parsed.scheme() == "https" && parsed.path().trim_matches('/').is_empty() {
        return String::new();
    }
    let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
    let path = parsed.path().trim_end_matches('/');
    format!("{}://{host}{port}{path}", parsed.scheme())
}

/// Whether an endpoint is plain HTTP (any capitalisation): allowed then
/// without further settings.
pub(crate) fn plain_http(endpoint: Option<&str>) -> bool {
    endpoint.is_some_and(|e| e.get(..7).is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_endpoint_has_one_spelling() {
        let same = [
            "http://127.0.0.1:9000",
            "http://127.0.0.1:9000/",
            "HTTP://LOCALHOST:9000",
            "http://localhost:9000/",
            "http://[::1]:9000",
        ];
        for spelling in same {
            assert_eq!(endpoint(Some(spelling)), "http://127.0.0.1:9000", "{spelling}");
        }
        assert_eq!(
            endpoint(Some("https://minio.example.com:443/")),
            "https://minio.example.com"
        );
        assert_eq!(
            endpoint(Some("http://minio.example.com:80")),
            "http://minio.example.com"
        );
        assert_ne!(
            endpoint(Some("http://127.0.0.1:9001")),
            endpoint(Some("http://127.0.0.1:9000"))
        );
        assert_ne!(
            endpoint(Some("https://a.example.com")),
            endpoint(Some("https://b.example.com"))
        );
        for aws in [
            None,
            Some(""),
            Some("https://s3.amazonaws.com"),
            Some("https://s3.eu-west-1.amazonaws.com/"),
        ] {
            assert_eq!(endpoint(aws), "", "{aws:?}");
        }
    }
}
