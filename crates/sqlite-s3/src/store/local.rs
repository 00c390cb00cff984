//! `file://` stores: a local directory acting as the bucket, with the same
//! compare-and-swap as S3.
//!
//! object_store's `LocalFileSystem` can create an object only if absent, but
//! has no conditional update (`If-Match`). [`LocalStore`] adds it:
//!
//! - Next to each object `dir/NAME` that is updated conditionally or
//!   carries metadata lives a small version file `dir/.NAME.sqlite-s3-version`
//!   holding a random token that changes with every write made through this
//!   store, then the object's user metadata (`x-amz-meta-*` on S3), one
//!   `key=value` a line. Other objects (the chunks, manifests and hint of
//!   the versioned layout) need none.
//! - The ETag of an object is `TOKEN:FILE-ETAG`, where the file ETag
//!   (inode, modification time, size) is that of the file actually read. An
//!   object rewritten by another program changes the second part, a write
//!   through this store changes the first, so an ETag never comes back after
//!   it has been replaced, even when the file system reuses an inode within
//!   one clock tick.
//! - Every write holds an exclusive lock (`flock`) on the directory's
//!   `.sqlite-s3-lock` file, reads the current ETag, checks the condition, writes the object (a temporary
//!   file renamed over the old one, with fsync), then writes a new token.
//!   Writers in other processes wait for the lock, so check-and-write is
//!   atomic among them. All of it runs in one blocking task that owns the
//!   lock: a caller that stops waiting (a timeout, Ctrl-C) cannot release the
//!   lock while its write is still to land.
//! - Reads take no lock: a read that races a write may pair an old token with
//!   a new file (or the reverse). That pair is never the ETag of any later
//!   state, so a write conditioned on it fails as a conflict, which is safe.

use std::fmt;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

use crate::atomic_file;
use crate::error::{Error, Result};
use crate::location::DatabaseUrl;

const VERSION_SUFFIX: &str = ".sqlite-s3-version";
const LOCK_NAME: &str = ".sqlite-s3-lock";

/// A local directory with conditional updates. See the module docs.
#[derive(Debug)]
pub struct LocalStore {
    root: PathBuf,
    inner: LocalFileSystem,
}

impl LocalStore {
    /// The store for the directory of a `file://` URL.
    ///
    /// # Failure
    /// [`Error::BucketNotFound`] when the directory does not exist.
    pub fn open(url: &DatabaseUrl) -> Result<Self> {
        let root = url.directory().expect("a file:// URL has a directory");
        if !root.is_dir() {
            return Err(Error::BucketNotFound {
                url: url.to_string(),
                bucket: root.display().to_string(),
            });
        }
        Self::new(root).map_err(|source| Error::Store {
            url: url.to_string(),
            operation: "opening the directory",
            source: Box::new(source),
        })
    }

    /// The store for an existing directory.
    pub fn new(root: PathBuf) -> object_store::Result<Self> {
        let inner = LocalFileSystem::new_with_prefix(&root)?.with_fsync(true);
        Ok(Self { root, inner })
    }

    fn version_file(&self, location: &Path) -> PathBuf {
        let mut parts: Vec<String> = location.parts().map(|p| p.as_ref().to_string()).collect();
        let name = parts.pop().unwrap_or_default();
        let mut path = self.root.clone();
        path.extend(parts);
        path.push(format!(".{name}{VERSION_SUFFIX}"));
        path
    }
}

/// The token and the metadata of a version file.
fn parse_version(text: &str) -> (String, Attributes) {
    let mut lines = text.lines();
    let token = lines.next().unwrap_or_default().to_string();
    let mut attributes = Attributes::new();
    for (key, value) in lines.filter_map(|l| l.split_once('=')) {
        attributes.insert(Attribute::Metadata(key.to_string().into()), value.to_string().into());
    }
    (token, attributes)
}

/// A version file's text: the token, then the user metadata that fits on a line.
fn format_version(token: &str, attributes: &Attributes) -> String {
    let mut text = format!("{token}\n");
    for (attribute, value) in attributes {
        if let Attribute::Metadata(key) = attribute
            && !key.contains(['=', '\n'])
            && !value.contains('\n')
        {
            text.push_str(&format!("{key}={}\n", value.as_ref()));
        }
    }
    text
}

/// The ETag of the file behind `metadata`: inode, modification time in
/// microseconds and size, as common HTTP servers make them.
fn file_etag(metadata: &std::fs::Metadata) -> String {
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(metadata);
    #[cfg(not(unix))]
    let inode = 0u64;
    let mtime = metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .unwrap_or_default()
        .as_micros();
    format!("{inode:x}-{mtime:x}-{:x}", metadata.len())
}

fn compose(token: &str, metadata: &std::fs::Metadata) -> String {
    format!("{token}:{}", file_etag(metadata))
}

fn generic(source: impl std::error::Error + Send + Sync + 'static) -> object_store::Error {
    object_store::Error::Generic {
        store: "LocalStore",
        source: Box::new(source),
    }
}

/// Lock, compare, write, record: the body of [`LocalStore::put_opts`].
fn compare_and_swap(
    object: &std::path::Path,
    version: &std::path::Path,
    path: &str,
    payload: PutPayload,
    opts: PutOptions,
) -> object_store::Result<PutResult> {
    let dir = object.parent().expect("an object path has a parent");
    std::fs::create_dir_all(dir).map_err(generic)?;
    let lock = File::options()
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(LOCK_NAME))
        .map_err(generic)?;
    lock.lock().map_err(generic)?;
    let text = match std::fs::read_to_string(version) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(generic(e)),
    };
    let (token, _) = parse_version(text.as_deref().unwrap_or_default());
    let current = match std::fs::metadata(object) {
        Ok(metadata) => Some(compose(&token, &metadata)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(generic(e)),
    };
    match (&opts.mode, &current) {
        (PutMode::Create, Some(_)) => {
            return Err(object_store::Error::AlreadyExists {
                path: path.to_string(),
                source: "the object exists".into(),
            });
        }
        (PutMode::Update(expected), current) if expected.e_tag.is_none() || current != &expected.e_tag => {
            return Err(object_store::Error::Precondition {
                path: path.to_string(),
                source: "the object changed since it was read".into(),
            });
        }
        _ => {}
    }
    atomic_file::write_with(object, |file| {
        payload.iter().try_for_each(|chunk| file.write_all(chunk))
    })
    .map_err(generic)?;
    // Under the lock: no write through this store can have replaced it.
    let metadata = std::fs::metadata(object).map_err(generic)?;
    // Objects never updated conditionally and without metadata (chunks,
    // manifests, hints) keep no version file: no condition ever names their
    // ETag, so the file part is enough.
    let needs_version = text.is_some() || !opts.attributes.is_empty() || matches!(opts.mode, PutMode::Update(_));
    let new_token = if needs_version {
        let new_token = format!("{:016x}", fastrand::u64(..));
        atomic_file::write(version, format_version(&new_token, &opts.attributes).as_bytes()).map_err(generic)?;
        new_token
    } else {
        String::new()
    };
    drop(lock);
    Ok(PutResult {
        e_tag: Some(compose(&new_token, &metadata)),
        version: None,
        extensions: Default::default(),
    })
}

impl fmt::Display for LocalStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalStore({})", self.root.display())
    }
}

/// The store's own files, which are not objects.
fn is_version_file(meta: &ObjectMeta) -> bool {
    meta.location
        .filename()
        .is_some_and(|name| name.ends_with(VERSION_SUFFIX) || name.starts_with(".sqlite-s3-"))
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let object = self.inner.path_to_filesystem(location)?;
        let version = self.version_file(location);
        let path = location.to_string();
        // One blocking task does the whole compare-and-swap while holding the
        // lock; it completes as a unit even if this future is dropped.
        tokio::task::spawn_blocking(move || compare_and_swap(&object, &version, &path, payload, opts)).await?
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner
            .put_multipart_opts(
                location,
                PutMultipartOptions {
                    attributes: Attributes::new(),
                    ..opts
                },
            )
            .await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        let text = std::fs::read_to_string(self.version_file(location)).unwrap_or_default();
        let (token, metadata) = parse_version(&text);
        let (if_match, if_none_match) = (options.if_match.clone(), options.if_none_match.clone());
        let inner_options = GetOptions {
            if_match: None,
            if_none_match: None,
            ..options
        };
        let mut result = self.inner.get_opts(location, inner_options).await?;
        let etag = match &result.payload {
            // The file that was opened, whatever has replaced it since.
            GetResultPayload::File(file, _) => compose(&token, &file.metadata().map_err(generic)?),
            GetResultPayload::Stream(_) => format!("{token}:{}", result.meta.e_tag.as_deref().unwrap_or("")),
        };
        let path = location.to_string();
        if if_none_match.is_some_and(|v| v == "*" || v == etag) {
            return Err(object_store::Error::NotModified {
                path,
                source: "the object has not changed".into(),
            });
        }
        if if_match.is_some_and(|v| v != "*" && v != etag) {
            return Err(object_store::Error::Precondition {
                path,
                source: "the object changed".into(),
            });
        }
        result.meta.e_tag = Some(etag);
        result.attributes = metadata;
        Ok(result)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner
            .list(prefix)
            .filter(|m| futures::future::ready(!m.as_ref().is_ok_and(is_version_file)))
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let mut result = self.inner.list_with_delimiter(prefix).await?;
        result.objects.retain(|m| !is_version_file(m));
        Ok(result)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::{ObjectStoreExt, UpdateVersion};

    fn update(e_tag: &str) -> PutOptions {
        PutOptions::from(PutMode::Update(UpdateVersion {
            e_tag: Some(e_tag.to_string()),
            version: None,
        }))
    }

    #[tokio::test]
    async fn conditional_update_and_get() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().to_path_buf()).unwrap();
        let key = Path::from("app.db");

        let first = store
            .put_opts(&key, "one".into(), PutMode::Create.into())
            .await
            .unwrap();
        let first = first.e_tag.unwrap();
        let err = store
            .put_opts(&key, "x".into(), PutMode::Create.into())
            .await
            .unwrap_err();
        assert!(matches!(err, object_store::Error::AlreadyExists { .. }), "{err}");

        let second = store
            .put_opts(&key, "two".into(), update(&first))
            .await
            .unwrap()
            .e_tag
            .unwrap();
        assert_ne!(first, second);
        let err = store.put_opts(&key, "stale".into(), update(&first)).await.unwrap_err();
        assert!(matches!(err, object_store::Error::Precondition { .. }), "{err}");
        assert_eq!(store.get(&key).await.unwrap().bytes().await.unwrap(), "two");

        let head = store.head(&key).await.unwrap();
        assert_eq!(head.e_tag.as_deref(), Some(second.as_str()));
        let not_modified = store
            .get_opts(
                &key,
                GetOptions {
                    if_none_match: Some(second.clone()),
                    ..Default::default()
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(not_modified, object_store::Error::NotModified { .. }));

        // A file replaced behind the store's back changes the ETag too.
        std::fs::write(dir.path().join("app.db"), "three").unwrap();
        let err = store.put_opts(&key, "stale".into(), update(&second)).await.unwrap_err();
        assert!(matches!(err, object_store::Error::Precondition { .. }), "{err}");

        // User metadata is kept, as S3 keeps x-amz-meta-*.
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::Metadata("lineage".into()), "a,b".into());
        let options = PutOptions {
            attributes,
            ..PutMode::Overwrite.into()
        };
        store.put_opts(&key, "four".into(), options).await.unwrap();
        let got = store.get(&key).await.unwrap();
        assert_eq!(
            got.attributes
                .get(&Attribute::Metadata("lineage".into()))
                .map(|v| v.as_ref()),
            Some("a,b")
        );

        // Version files are not objects.
        let listed: Vec<_> = store
            .list(None)
            .map(|m| m.unwrap().location.to_string())
            .collect()
            .await;
        assert_eq!(listed, vec!["app.db".to_string()]);
    }

    #[tokio::test]
    async fn a_write_whose_caller_gave_up_still_completes_under_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(LocalStore::new(dir.path().to_path_buf()).unwrap());
        let key = Path::from("app.db");
        let first = store
            .put_opts(&key, "one".into(), PutMode::Create.into())
            .await
            .unwrap();
        // Start a conditional write, then drop the future after one poll.
        {
            let write = store.put_opts(&key, "two".into(), update(first.e_tag.as_deref().unwrap()));
            futures::pin_mut!(write);
            let _ = futures::poll!(write);
        }
        // A second writer that read the first version must not win: it
        // either waits for the abandoned write to finish and fails its
        // condition, or (if the abandoned one had not begun) wins once.
        let second = store
            .put_opts(&key, "three".into(), update(first.e_tag.as_deref().unwrap()))
            .await;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let content = store.get(&key).await.unwrap().bytes().await.unwrap();
        let head = store.head(&key).await.unwrap().e_tag.unwrap();
        match second {
            Ok(put) => {
                assert_eq!(content, "three");
                assert_eq!(put.e_tag.unwrap(), head, "nothing landed after the winner");
            }
            Err(e) => {
                assert!(matches!(e, object_store::Error::Precondition { .. }), "{e}");
                assert_eq!(content, "two");
            }
        }
    }

    #[test]
    fn our_file_etag_matches_what_a_head_returns() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().to_path_buf()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let key = Path::from("a.db");
        let put = runtime
            .block_on(store.put_opts(&key, "x".into(), PutMode::Create.into()))
            .unwrap();
        let head = runtime.block_on(store.head(&key)).unwrap();
        assert_eq!(put.e_tag, head.e_tag);
    }

    #[tokio::test]
    async fn update_of_a_missing_object_fails() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().to_path_buf()).unwrap();
        let err = store
            .put_opts(&Path::from("a.db"), "x".into(), update("t:e"))
            .await
            .unwrap_err();
        assert!(matches!(err, object_store::Error::Precondition { .. }), "{err}");
    }
}
