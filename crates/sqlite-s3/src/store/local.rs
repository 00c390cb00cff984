//! `file://` stores: a local directory acting as the bucket, with the same
//! compare-and-swap as S3.
//!
//! object_store's `LocalFileSystem` can create an object only if absent, but
//! has no conditional update (`If-Match`). [`LocalStore`] adds it:
//!
//! - Next to each object `dir/NAME` lives a small version file
//!   `dir/.NAME.sqlite-s3-version` holding a random token that changes with
//!   every write made through this store, then the object's user metadata
//!   (`x-amz-meta-*` on S3), one `key=value` a line.
//! - The ETag of an object is `TOKEN:FILE-ETAG`, where the file ETag is
//!   object_store's own (inode, modification time, size) of the file that
//!   was actually read. An object rewritten by another program changes the
//!   second part, a write through this store changes the first, so an ETag
//!   never comes back after it has been replaced, even when the file system
//!   reuses an inode within one clock tick.
//! - Every write holds an exclusive lock on the version file (`flock`), reads
//!   the current ETag, checks the condition, writes the object (a temporary
//!   file renamed over the old one, with fsync), then writes a new token.
//!   Writers in other processes wait for the lock, so check-and-write is
//!   atomic among them.
//! - Reads take no lock: a read that races a write may pair an old token with
//!   a new file (or the reverse). That pair is never the ETag of any later
//!   state, so a write conditioned on it fails as a conflict, which is safe.

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

use crate::error::{Error, Result};
use crate::location::DatabaseUrl;

const VERSION_SUFFIX: &str = ".sqlite-s3-version";

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

    fn read_version(path: &std::path::Path) -> (String, Attributes) {
        parse_version(&std::fs::read_to_string(path).unwrap_or_default())
    }

    async fn current_etag(&self, location: &Path, token: &str) -> object_store::Result<Option<String>> {
        match self.inner.head(location).await {
            Ok(meta) => Ok(Some(compose(token, &meta))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
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

fn compose(token: &str, meta: &ObjectMeta) -> String {
    format!("{token}:{}", meta.e_tag.as_deref().unwrap_or(""))
}

fn generic(source: std::io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "LocalStore",
        source: Box::new(source),
    }
}

/// An exclusive lock on a version file, held while it lives.
struct VersionLock {
    file: File,
}

impl VersionLock {
    async fn acquire(path: PathBuf) -> object_store::Result<Self> {
        tokio::task::spawn_blocking(move || {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let file = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)?;
            file.lock()?;
            Ok(VersionLock { file })
        })
        .await?
        .map_err(generic)
    }

    fn token(&mut self) -> std::io::Result<String> {
        let mut text = String::new();
        self.file.seek(SeekFrom::Start(0))?;
        self.file.read_to_string(&mut text)?;
        Ok(parse_version(&text).0)
    }

    fn write(&mut self, text: &str) -> std::io::Result<()> {
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        self.file.write_all(text.as_bytes())?;
        self.file.sync_data()
    }
}

impl fmt::Display for LocalStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalStore({})", self.root.display())
    }
}

fn is_version_file(meta: &ObjectMeta) -> bool {
    meta.location
        .filename()
        .is_some_and(|name| name.ends_with(VERSION_SUFFIX))
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let mut lock = VersionLock::acquire(self.version_file(location)).await?;
        let token = lock.token().map_err(generic)?;
        let current = self.current_etag(location, &token).await?;
        let path = location.to_string();
        match (&opts.mode, &current) {
            (PutMode::Create, Some(_)) => {
                return Err(object_store::Error::AlreadyExists {
                    path,
                    source: "the object exists".into(),
                });
            }
            (PutMode::Update(expected), current) if expected.e_tag.is_none() || current != &expected.e_tag => {
                return Err(object_store::Error::Precondition {
                    path,
                    source: "the object changed since it was read".into(),
                });
            }
            _ => {}
        }
        let metadata = opts.attributes.clone();
        let inner_opts = PutOptions {
            mode: PutMode::Overwrite,
            attributes: Attributes::new(),
            ..opts
        };
        let written = self.inner.put_opts(location, payload, inner_opts).await?;
        let new_token = format!("{:016x}", fastrand::u64(..));
        lock.write(&format_version(&new_token, &metadata)).map_err(generic)?;
        Ok(PutResult {
            e_tag: Some(format!("{new_token}:{}", written.e_tag.as_deref().unwrap_or(""))),
            ..written
        })
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
        let (token, metadata) = Self::read_version(&self.version_file(location));
        let GetOptions {
            if_match,
            if_none_match,
            ..
        } = &options;
        let (if_match, if_none_match) = (if_match.clone(), if_none_match.clone());
        let inner_options = GetOptions {
            if_match: None,
            if_none_match: None,
            ..options
        };
        let mut result = self.inner.get_opts(location, inner_options).await?;
        let etag = compose(&token, &result.meta);
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
    use object_store::UpdateVersion;

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
