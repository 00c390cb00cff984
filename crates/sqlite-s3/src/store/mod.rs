//! Stores: where the durable copy lives.
//!
//! Every store is an [`object_store::ObjectStore`], so there is one code path
//! for S3, S3-compatible servers, local directories and memory. A [`Remote`]
//! pairs a store with the key of one database and turns the store's errors
//! into this crate's [`Error`]s, naming the database.
//!
//! The guarantee rests on two store operations: a conditional GET (`If-None-Match`)
//! and a conditional PUT (`If-Match` / `If-None-Match: *`). S3 and memory have
//! both; for local directories [`local::LocalStore`] adds the missing one.

pub mod counting;
pub mod local;
pub mod memory;
#[cfg(feature = "aws-config")]
mod profile;
mod s3;

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path;

use crate::error::{Error, Result};
use crate::location::{DatabaseUrl, Scheme};
use crate::options::StoreOptions;

pub use counting::{CountingStore, Counts};

/// One database in one store: the store, the key, and the URL that named them.
#[derive(Debug, Clone)]
pub struct Remote {
    url: DatabaseUrl,
    store: Arc<dyn ObjectStore>,
    key: Path,
    /// The endpoint, for telling apart equal bucket names on different servers.
    endpoint: Option<String>,
}

impl Remote {
    /// Connects to the store a URL names. Nothing is sent yet.
    ///
    /// # Failure
    /// [`Error::InvalidUrl`] for a malformed URL; [`Error::BucketNotFound`]
    /// when a `file://` URL names a directory that does not exist;
    /// [`Error::Store`] when the S3 settings are unusable.
    pub fn connect(url: &str, options: &StoreOptions) -> Result<Self> {
        let url = DatabaseUrl::parse(url)?;
        let (store, endpoint): (Arc<dyn ObjectStore>, _) = match url.scheme() {
            Scheme::S3 => {
                let (store, endpoint) = s3::build(&url, options)?;
                (Arc::new(store), endpoint)
            }
            Scheme::File => (Arc::new(local::LocalStore::open(&url)?), None),
            Scheme::Memory => (memory::named(url.bucket()), None),
        };
        Ok(Self::with_store(url, store).endpoint(endpoint))
    }

    /// A database in a store built elsewhere (an instrumented or wrapped store,
    /// say). `url` names it in messages and in the cache.
    pub fn with_store(url: DatabaseUrl, store: Arc<dyn ObjectStore>) -> Self {
        let key = Path::from(url.key());
        Self {
            url,
            store,
            key,
            endpoint: None,
        }
    }

    fn endpoint(mut self, endpoint: Option<String>) -> Self {
        self.endpoint = endpoint;
        self
    }

    /// Wraps the store, keeping the URL and key: for instrumentation such as
    /// [`CountingStore`].
    pub fn map_store(mut self, wrap: impl FnOnce(Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore>) -> Self {
        self.store = wrap(self.store);
        self
    }

    /// The database URL.
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The key of the database object.
    pub fn key(&self) -> &Path {
        &self.key
    }

    /// Whether `other` is in the same bucket of the same store.
    pub fn same_bucket(&self, other: &Remote) -> bool {
        self.url.scheme() == other.url.scheme()
            && self.url.bucket() == other.url.bucket()
            && self.endpoint == other.endpoint
    }

    /// A string that tells this database apart from any other: scheme,
    /// endpoint, bucket and key.
    pub(crate) fn identity(&self) -> String {
        let mut identity = format!("{}\n{}", self.endpoint.as_deref().unwrap_or(""), self.url);
        if self.url.scheme() == Scheme::Memory {
            // A memory store lives and dies with its process, and its ETags
            // restart with it: a cached copy must never outlive it.
            identity.push_str(&format!("\n{}", *memory::PROCESS_NONCE));
        }
        identity
    }

    /// Turns a store error into an [`Error`] naming this database.
    ///
    /// `NotFound` becomes [`Error::BucketNotFound`] only where the caller has
    /// established that the bucket is missing; here it stays a store error.
    pub(crate) fn error(&self, operation: &'static str, source: object_store::Error) -> Error {
        let url = self.url.to_string();
        match source {
            object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
                Error::AccessDenied {
                    url,
                    operation,
                    source: Box::new(source),
                }
            }
            object_store::Error::Generic { .. } if self.url.scheme() == Scheme::S3 && is_transient(&source) => {
                Error::Unavailable {
                    url,
                    operation,
                    detail: innermost(&source),
                    source: Box::new(source),
                }
            }
            _ => Error::Store {
                url,
                operation,
                source: Box::new(source),
            },
        }
    }

    /// The metadata of the database object (size, ETag, last modified), or
    /// `None` when there is none.
    pub async fn head(&self) -> Result<Option<object_store::ObjectMeta>> {
        use object_store::ObjectStoreExt;
        match self.store.head(&self.key).await {
            Ok(meta) => Ok(Some(meta)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error("reading the object's metadata", e)),
        }
    }

    /// Called after a GET answered "not found": tells a missing object (Ok)
    /// from a missing bucket.
    pub(crate) async fn check_bucket(&self) -> Result<()> {
        let missing = || Error::BucketNotFound {
            url: self.url.to_string(),
            bucket: self.url.bucket().to_string(),
        };
        if let Some(dir) = self.url.directory() {
            return if dir.is_dir() { Ok(()) } else { Err(missing()) };
        }
        match self.store.list_with_delimiter(Some(&self.key)).await {
            Ok(_) => Ok(()),
            Err(object_store::Error::NotFound { .. }) => Err(missing()),
            Err(e) if chain_mentions(&e, "NoSuchBucket") => Err(missing()),
            Err(e) => Err(self.error("checking the bucket", e)),
        }
    }
}

/// True for failures that may pass: no connection, a timeout, a 5xx answer.
fn is_transient(error: &object_store::Error) -> bool {
    let text = chain_text(error);
    !text.contains("status code: 4") && !text.contains("NoSuchBucket")
}

fn chain_mentions(error: &object_store::Error, needle: &str) -> bool {
    chain_text(error).contains(needle)
}

fn chain_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(" | ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// The most specific message in an error chain ("Connection refused", say).
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut last = error;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

/// The metadata key under which each published version lists the commit
/// tokens of its most recent ancestors, newest first.
pub(crate) const LINEAGE_ATTRIBUTE: &str = "sqlite-s3-lineage";
