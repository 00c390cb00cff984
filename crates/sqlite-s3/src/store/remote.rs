//! [`Remote`]: one database in one store.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::path::Path;

use super::counting::CountingStore;
use super::failure::{chain_mentions, describe, is_transient};
use super::{azure, gcs, identity, local, memory, retry, s3};
use crate::error::{Error, Result};
use crate::location::{DatabaseUrl, Scheme};
use crate::options::{RequestRetry, StoreOptions};

/// One database in one store: the store, the key, and the URL that named them.
///
/// Every request goes through a retrying store (`store/retry.rs`), so transient
/// failures of the store are retried before anyone sees them.
#[derive(Debug, Clone)]
pub struct Remote {
    url: DatabaseUrl,
    /// The store as built or wrapped by [`Remote::map_store`].
    raw: Arc<dyn ObjectStore>,
    /// `raw` behind the retries: what every request goes through.
    store: Arc<dyn ObjectStore>,
    retry: RequestRetry,
    key: Path,
    /// The endpoint, for telling apart equal bucket names on different servers.
    endpoint: Option<String>,
    /// Writes go on even on a store that ignores conditional requests.
    unsafe_store: bool,
    /// Where the store check remembers stores that passed.
    cache_dir: Option<std::path::PathBuf>,
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
            Scheme::Azure => {
                let (store, endpoint) = azure::build(&url, options)?;
                (Arc::new(store), endpoint)
            }
            Scheme::Gcs => {
                let (store, endpoint) = gcs::build(&url, options)?;
                (Arc::new(store), endpoint)
            }
            Scheme::File => (Arc::new(local::LocalStore::open(&url)?), None),
            Scheme::Memory => (memory::named(url.bucket()), None),
        };
        let mut remote = Self::with_store(url, store)
            .endpoint(endpoint)
            .request_retry(options.request_retry);
        remote.unsafe_store = options.unsafe_store;
        Ok(remote)
    }

    /// A database in a store built elsewhere (an instrumented or wrapped store,
    /// say). `url` names it in messages and in the cache.
    pub fn with_store(url: DatabaseUrl, store: Arc<dyn ObjectStore>) -> Self {
        let key = Path::from(url.key());
        let retry = RequestRetry::default();
        Self {
            url,
            store: Arc::new(retry::RetryingStore::new(store.clone(), retry)),
            raw: store,
            retry,
            key,
            endpoint: None,
            unsafe_store: false,
            cache_dir: None,
        }
    }

    /// Where the check that the store honours conditional writes remembers
    /// stores that passed (`CACHE_DIR/stores/`); by default the cache
    /// directory ([`Options::resolved_cache_dir`](crate::Options::resolved_cache_dir)).
    pub fn remember_store_checks_in(mut self, cache_dir: impl Into<std::path::PathBuf>) -> Self {
        self.cache_dir = Some(cache_dir.into());
        self
    }

    pub(crate) fn cache_dir(&self) -> Option<&std::path::Path> {
        self.cache_dir.as_deref()
    }

    pub(crate) fn accepts_unsafe_store(&self) -> bool {
        self.unsafe_store
    }

    fn endpoint(mut self, endpoint: Option<String>) -> Self {
        self.endpoint = endpoint;
        self
    }

    /// How transient failures of the store are retried.
    pub fn request_retry(mut self, retry: RequestRetry) -> Self {
        self.retry = retry;
        self.store = Arc::new(retry::RetryingStore::new(self.raw.clone(), retry));
        self
    }

    /// The retry policy of the store's requests.
    pub(crate) fn retry_policy(&self) -> &RequestRetry {
        &self.retry
    }

    /// Wraps the store, keeping the URL and key: for instrumentation such as
    /// [`CountingStore`], or fault injection. The wrapper sits under the
    /// retries, so it sees (and counts) every try of every request.
    pub fn map_store(mut self, wrap: impl FnOnce(Arc<dyn ObjectStore>) -> Arc<dyn ObjectStore>) -> Self {
        self.raw = wrap(self.raw);
        self.store = Arc::new(retry::RetryingStore::new(self.raw.clone(), self.retry));
        self
    }

    /// The same database, each try of each request counted (and logged at
    /// `debug` level) by the [`CountingStore`] returned with it.
    pub fn counted(self) -> (Self, CountingStore) {
        let mut counting = None;
        let remote = self.map_store(|inner| {
            let store = CountingStore::new(inner);
            counting = Some(store.clone());
            Arc::new(store)
        });
        (remote, counting.expect("map_store calls the closure"))
    }

    /// The database URL.
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// The store, behind the retries of transient failures.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The store without the retries: each call is exactly one request.
    /// Conditional writes use it (through `cas`), which retry themselves.
    pub(crate) fn raw_store(&self) -> &Arc<dyn ObjectStore> {
        &self.raw
    }

    /// The key of the database object.
    pub fn key(&self) -> &Path {
        &self.key
    }

    /// Whether `other` is in the same bucket of the same store.
    pub fn same_bucket(&self, other: &Remote) -> bool {
        self.url.scheme() == other.url.scheme()
            && self.url.bucket() == other.url.bucket()
            && identity::endpoint(self.endpoint.as_deref()) == identity::endpoint(other.endpoint.as_deref())
    }

    /// A string that tells this database apart from any other, however its
    /// URL and endpoint are spelled (see `identity.rs`).
    pub(crate) fn identity(&self) -> String {
        identity::of(&self.url, self.endpoint.as_deref(), &self.key)
    }

    /// The identity earlier versions keyed the cache by, if it differs.
    pub(crate) fn legacy_identity(&self) -> Option<String> {
        identity::legacy(&self.url, self.endpoint.as_deref(), &self.key)
    }

    pub(crate) fn endpoint_name(&self) -> Option<&str> {
        self.endpoint.as_deref()
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
                    detail: describe(&source),
                    credentials: match self.url.scheme() {
                        Scheme::Azure => {
                            "AZURE_STORAGE_ACCOUNT_NAME / AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_KEY or \
                             AZURE_STORAGE_TOKEN"
                        }
                        Scheme::Gcs => "GOOGLE_SERVICE_ACCOUNT or GOOGLE_APPLICATION_CREDENTIALS",
                        _ => "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or --profile",
                    },
                    source: Box::new(source),
                }
            }
            object_store::Error::Generic { .. } if is_transient(&source) => Error::Unavailable {
                url,
                operation,
                detail: describe(&source),
                source: Box::new(source),
            },
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
            Err(e)
                if ["NoSuchBucket", "ContainerNotFound"]
                    .iter()
                    .any(|code| chain_mentions(&e, code)) =>
            {
                Err(missing())
            }
            Err(e) => Err(self.error("checking the bucket", e)),
        }
    }
}

/// The metadata key under which each published version lists the commit
/// tokens of its most recent ancestors, newest first. Letters only: Azure
/// takes only C identifiers as metadata names, S3 and GCS lower-case them.
pub(crate) const LINEAGE_ATTRIBUTE: &str = "sqlites3lineage";

/// Where versions written before this name was chosen keep their lineage.
pub(crate) const LEGACY_LINEAGE_ATTRIBUTE: &str = "sqlite-s3-lineage";
