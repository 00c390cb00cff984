//! What the tests of sqlite-s3 share: a backend (memory, a local directory,
//! the moto S3 mock, a SeaweedFS server, or the Azurite Azure emulator, all
//! on loopback) that hands out database URLs, options with a fresh cache
//! directory, and raw access to the objects; and the macros that run one
//! behaviour on every store ([`on_every_store!`](crate::on_every_store)) and
//! in both layouts ([`on_every_store_and_layout!`](crate::on_every_store_and_layout)).
//!
//! ```ignore
//! use test_support::on_every_store_and_layout;
//! use test_support::stores::{Backend, LayoutKind};
//!
//! on_every_store_and_layout!(a_change_is_published);
//!
//! async fn a_change_is_published(backend: Backend, layout: LayoutKind) {
//!     let options = backend.options().layout(layout);
//!     // ...
//! }
//! ```
//!
//! The tests the macros write are `#[tokio::test]`s: the calling crate
//! needs tokio (with the `macros` and `rt-multi-thread` features).

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
pub use sqlite_s3::LayoutKind;
use sqlite_s3::admin::CountingStore;
use sqlite_s3::{Options, Remote, StoreOptions};
use tempfile::TempDir;

/// The kinds of store every behaviour runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Memory,
    File,
    /// moto, a mock S3 server.
    S3,
    /// SeaweedFS, a real object store with an S3 gateway.
    Seaweed,
    /// Azurite, Microsoft's Azure Blob Storage emulator.
    Azure,
}

/// A place to put databases for one test.
pub struct Backend {
    pub kind: Kind,
    /// For `file://`: the directory acting as the bucket.
    _root: Option<TempDir>,
    bucket: String,
    endpoint: Option<String>,
    /// For Azure: the account and its key.
    account: Option<(&'static str, &'static str)>,
    caches: TempDir,
}

pub const ACCESS_KEY: &str = "testing-access-key";
pub const SECRET_KEY: &str = "testing-secret-key-never-shown";

impl Backend {
    /// A backend of this kind, or `None` when its server is not installed
    /// (the test then passes without running; CI requires moto).
    pub fn new(kind: Kind) -> Option<Self> {
        let caches = tempfile::tempdir().unwrap();
        let unique = format!("t{:x}", fastrand::u64(..));
        Some(match kind {
            Kind::Memory => Self {
                kind,
                _root: None,
                bucket: unique,
                endpoint: None,
                account: None,
                caches,
            },
            Kind::File => {
                let root = tempfile::tempdir().unwrap();
                Self {
                    kind,
                    bucket: root.path().display().to_string(),
                    _root: Some(root),
                    endpoint: None,
                    account: None,
                    caches,
                }
            }
            Kind::S3 => {
                let moto = crate::Moto::shared()?;
                Self {
                    kind,
                    _root: None,
                    bucket: moto.unique_bucket("behaviour"),
                    endpoint: Some(moto.endpoint()),
                    account: None,
                    caches,
                }
            }
            Kind::Seaweed => {
                let seaweed = crate::Seaweed::shared()?;
                Self {
                    kind,
                    _root: None,
                    bucket: seaweed.unique_bucket("behaviour"),
                    endpoint: Some(seaweed.endpoint()),
                    account: None,
                    caches,
                }
            }
            Kind::Azure => {
                let azurite = crate::Azurite::shared()?;
                Self {
                    kind,
                    _root: None,
                    bucket: azurite.unique_container("behaviour"),
                    endpoint: Some(azurite.endpoint()),
                    account: Some((crate::Azurite::ACCOUNT, crate::Azurite::KEY)),
                    caches,
                }
            }
        })
        .inspect(|backend| backend.prime_store_check())
    }

    /// Every kind of store, for tests that loop over them.
    pub const ALL: [Kind; 5] = [Kind::Memory, Kind::File, Kind::S3, Kind::Seaweed, Kind::Azure];

    /// The URL of database `name`.
    pub fn url(&self, name: &str) -> String {
        match self.kind {
            Kind::Memory => format!("memory://{}/{name}", self.bucket),
            Kind::File => format!("file://{}/{name}", self.bucket),
            Kind::S3 | Kind::Seaweed => format!("s3://{}/{name}", self.bucket),
            Kind::Azure => format!("az://{}/{name}", self.bucket),
        }
    }

    /// A URL in a bucket that does not exist (`None` for memory, where
    /// every bucket exists).
    pub fn missing_bucket_url(&self) -> Option<String> {
        match self.kind {
            Kind::Memory => None,
            Kind::File => Some(format!("file://{}/no-such-dir/app.db", self.bucket)),
            Kind::S3 | Kind::Seaweed => Some("s3://no-such-bucket-here/app.db".into()),
            Kind::Azure => Some("az://no-such-container/app.db".into()),
        }
    }

    /// Moto's endpoint, for S3.
    pub fn endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// The environment a child process needs to reach the store with
    /// default options (`StoreOptions::new()`, the program): endpoint and
    /// credentials, as `AWS_*` or `AZURE_STORAGE_*` variables. Empty for
    /// memory, which no other process sees, and local directories.
    pub fn child_env(&self) -> Vec<(&'static str, String)> {
        let Some(endpoint) = self.endpoint.clone() else {
            return Vec::new();
        };
        match self.account {
            Some((account, key)) => vec![
                ("AZURE_STORAGE_ENDPOINT", endpoint),
                ("AZURE_STORAGE_ACCOUNT_NAME", account.into()),
                ("AZURE_STORAGE_ACCOUNT_KEY", key.into()),
            ],
            None => vec![
                ("AWS_ENDPOINT_URL", endpoint),
                ("AWS_REGION", "us-east-1".into()),
                ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
                ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ],
        }
    }

    /// How to reach the store: the server's endpoint, and made-up
    /// credentials (S3) or the emulator's account (Azure).
    pub fn store_options(&self) -> StoreOptions {
        let mut options = StoreOptions::new().request_retry(fast_retries());
        if let Some(endpoint) = &self.endpoint {
            let (id, secret) = self.account.unwrap_or((ACCESS_KEY, SECRET_KEY));
            options = options.endpoint(endpoint).region("us-east-1").credentials(id, secret);
        }
        options
    }

    /// Options with a cache directory of its own: each call is another
    /// machine, as far as the cache goes.
    pub fn options(&self) -> Options {
        Options::new().store(self.store_options()).cache_dir(self.fresh_cache())
    }

    /// A new, empty cache directory.
    pub fn fresh_cache(&self) -> PathBuf {
        let dir = self.caches.path().join(format!("cache-{:x}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The database `name` reached through a counting store.
    pub fn counted(&self, name: &str) -> (Remote, CountingStore) {
        Remote::connect(&self.url(name), &self.store_options())
            .unwrap()
            .counted()
    }

    /// The store and key of `name`, past this crate.
    pub fn raw(&self, name: &str) -> (Arc<dyn ObjectStore>, Path) {
        let remote = Remote::connect(&self.url(name), &self.store_options()).unwrap();
        (remote.store().clone(), remote.key().clone())
    }

    /// The bytes of the object, if any, read past this crate.
    pub async fn raw_get(&self, name: &str) -> Option<Bytes> {
        let (store, key) = self.raw(name);
        match store.get(&key).await {
            Ok(r) => Some(r.bytes().await.unwrap()),
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => panic!("raw get: {e}"),
        }
    }

    /// Writes the object past this crate, as another tool would.
    pub async fn raw_put(&self, name: &str, bytes: impl Into<Bytes>) {
        let (store, key) = self.raw(name);
        store.put(&key, PutPayload::from(bytes.into())).await.unwrap();
    }

    /// Deletes the object past this crate.
    pub async fn raw_delete(&self, name: &str) {
        let (store, key) = self.raw(name);
        store.delete(&key).await.unwrap();
    }

    /// The keys under `prefix` (a folder: `app.db.sqlite-s3/chunks`),
    /// sorted, listed past this crate.
    pub async fn raw_list(&self, prefix: &str) -> Vec<String> {
        use futures::TryStreamExt;
        // The store of a name at the top: keys are relative to the bucket
        // (a local directory store is rooted at the folder of its key).
        let (store, _) = self.raw("top");
        let mut keys: Vec<String> = store
            .list(Some(&Path::from(prefix)))
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .unwrap();
        keys.sort();
        keys
    }
}

impl Backend {
    /// Runs the check that a store honours conditional writes once per
    /// server and process, so that request counts of the tests do not
    /// depend on which test happens to write to the store first.
    fn prime_store_check(&self) {
        static PRIMED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        let Some(endpoint) = self.endpoint.clone() else { return };
        let mut primed = PRIMED.lock().unwrap();
        if primed.contains(&endpoint) {
            return;
        }
        let (url, options) = (self.url("probe.db"), self.store_options());
        std::thread::spawn(move || {
            let scratch = tempfile::tempdir().unwrap();
            let remote = Remote::connect(&url, &options)
                .unwrap()
                .remember_store_checks_in(scratch.path());
            let report = tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(sqlite_s3::admin::check_store(&remote))
                .expect("the test server answers");
            assert_eq!(report.unfit, None, "the test server must honour conditional writes");
        })
        .join()
        .unwrap();
        primed.push(endpoint);
    }
}

/// Retries of transient store failures, quick enough for tests: eight
/// tries within a few tens of milliseconds.
pub fn fast_retries() -> sqlite_s3::RequestRetry {
    sqlite_s3::RequestRetry {
        max_attempts: 8,
        base_delay: std::time::Duration::from_millis(1),
        max_delay: std::time::Duration::from_millis(8),
    }
}

/// The bytes of a small valid SQLite database holding `rows` rows in `t`.
pub fn sqlite_bytes(rows: i64) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);")
        .unwrap();
    for i in 0..rows {
        conn.execute("INSERT INTO t(v) VALUES (?1)", [format!("row {i} {}", "x".repeat(200))])
            .unwrap();
    }
    drop(conn);
    std::fs::read(path).unwrap()
}

/// Opens SQLite bytes as a database and counts the rows of `table`.
pub fn count_rows(bytes: &[u8], table: &str) -> i64 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    std::fs::write(&path, bytes).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// Runs each named async behaviour `fn NAME(backend: Backend)` on every
/// store, as tests `NAME::memory`, `NAME::file`, `NAME::s3`,
/// `NAME::seaweed` and `NAME::azure`. A store whose server is not installed
/// skips (unless the servers are required, as in CI).
#[macro_export]
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {
        $crate::on_stores!([memory, file, s3, seaweed, azure] $($name),*);
    };
}

/// [`on_every_store!`](crate::on_every_store) on the stores listed, for a
/// behaviour too slow to run on every server (say why where it is used):
/// `on_stores!([memory, file, s3] NAME, ...)`.
#[macro_export]
macro_rules! on_stores {
    ($stores:tt $($name:ident),* $(,)?) => {$(
        mod $name {
            $crate::__store_tests!(@each $name $stores);
        }
    )*};
}

/// Runs each named async behaviour `fn NAME(backend: Backend, layout:
/// LayoutKind)` on every store and in both layouts, as tests
/// `NAME::memory_single`, `NAME::memory_versioned`, `NAME::s3_versioned`
/// and so on.
#[macro_export]
macro_rules! on_every_store_and_layout {
    ($($name:ident),* $(,)?) => {
        $crate::on_stores_and_layouts!([memory, file, s3, seaweed, azure] $($name),*);
    };
}

/// [`on_every_store_and_layout!`](crate::on_every_store_and_layout) on the
/// stores listed, for a behaviour too slow to run on every server (say why
/// where it is used): `on_stores_and_layouts!([memory, file, s3] NAME, ...)`.
#[macro_export]
macro_rules! on_stores_and_layouts {
    ($stores:tt $($name:ident),* $(,)?) => {$(
        mod $name {
            async fn run(kind: $crate::stores::Kind, layout: $crate::stores::LayoutKind) {
                if let Some(backend) = $crate::stores::Backend::new(kind) {
                    super::$name(backend, layout).await
                }
            }
            $crate::__store_and_layout_tests!(@each $stores);
        }
    )*};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __store_tests {
    (@each $name:ident [$($store:ident),* $(,)?]) => {$(
        $crate::__store_tests!($name $store);
    )*};
    ($name:ident memory) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn memory() {
            super::$name($crate::stores::Backend::new($crate::stores::Kind::Memory).unwrap()).await
        }
    };
    ($name:ident file) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn file() {
            super::$name($crate::stores::Backend::new($crate::stores::Kind::File).unwrap()).await
        }
    };
    ($name:ident s3) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn s3() {
            if let Some(backend) = $crate::stores::Backend::new($crate::stores::Kind::S3) {
                super::$name(backend).await
            }
        }
    };
    ($name:ident seaweed) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn seaweed() {
            if let Some(backend) = $crate::stores::Backend::new($crate::stores::Kind::Seaweed) {
                super::$name(backend).await
            }
        }
    };
    ($name:ident azure) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn azure() {
            if let Some(backend) = $crate::stores::Backend::new($crate::stores::Kind::Azure) {
                super::$name(backend).await
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __store_and_layout_tests {
    (@each [$($store:ident),* $(,)?]) => {$(
        $crate::__store_and_layout_tests!($store);
    )*};
    (memory) => {
        $crate::__store_and_layout_tests!(@pair Memory, memory_single, memory_versioned);
    };
    (file) => {
        $crate::__store_and_layout_tests!(@pair File, file_single, file_versioned);
    };
    (s3) => {
        $crate::__store_and_layout_tests!(@pair S3, s3_single, s3_versioned);
    };
    (seaweed) => {
        $crate::__store_and_layout_tests!(@pair Seaweed, seaweed_single, seaweed_versioned);
    };
    (azure) => {
        $crate::__store_and_layout_tests!(@pair Azure, azure_single, azure_versioned);
    };
    (@pair $kind:ident, $single:ident, $versioned:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $single() {
            run($crate::stores::Kind::$kind, $crate::stores::LayoutKind::Single).await
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $versioned() {
            run($crate::stores::Kind::$kind, $crate::stores::LayoutKind::Versioned).await
        }
    };
}
