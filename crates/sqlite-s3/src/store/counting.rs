//! An instrumented store: counts the requests made to the store it wraps and
//! the body bytes moved, and logs each request at `debug` level (target
//! `sqlite_s3::requests`). Tests use it to hold request and byte budgets;
//! users use it to see what a session costs.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult,
};

/// What a [`CountingStore`] has seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Every request, of any kind.
    pub requests: u64,
    /// GET requests, conditional ones included.
    pub gets: u64,
    /// HEAD requests.
    pub heads: u64,
    /// PUT requests.
    pub puts: u64,
    /// LIST requests.
    pub lists: u64,
    /// Other requests (delete, copy).
    pub others: u64,
    /// Body bytes received.
    pub bytes_down: u64,
    /// Body bytes sent.
    pub bytes_up: u64,
}

#[derive(Debug, Default)]
struct Counters {
    gets: AtomicU64,
    heads: AtomicU64,
    puts: AtomicU64,
    lists: AtomicU64,
    others: AtomicU64,
    bytes_down: AtomicU64,
    bytes_up: AtomicU64,
}

/// A store that counts what passes through it. Clones share their counts.
#[derive(Debug, Clone)]
pub struct CountingStore {
    inner: Arc<dyn ObjectStore>,
    counters: Arc<Counters>,
}

impl CountingStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self {
            inner,
            counters: Arc::default(),
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> Counts {
        let c = &self.counters;
        let load = |a: &AtomicU64| a.load(Ordering::SeqCst);
        let (gets, heads, puts, lists, others) = (
            load(&c.gets),
            load(&c.heads),
            load(&c.puts),
            load(&c.lists),
            load(&c.others),
        );
        Counts {
            requests: gets + heads + puts + lists + others,
            gets,
            heads,
            puts,
            lists,
            others,
            bytes_down: load(&c.bytes_down),
            bytes_up: load(&c.bytes_up),
        }
    }

    /// Sets every count back to zero.
    pub fn reset(&self) {
        let c = &self.counters;
        for a in [
            &c.gets,
            &c.heads,
            &c.puts,
            &c.lists,
            &c.others,
            &c.bytes_down,
            &c.bytes_up,
        ] {
            a.store(0, Ordering::SeqCst);
        }
    }
}

fn log<T>(method: &str, key: &Path, started: Instant, result: &object_store::Result<T>, bytes: u64) {
    let status = match result {
        Ok(_) => "ok".to_string(),
        Err(object_store::Error::NotModified { .. }) => "not modified".to_string(),
        Err(object_store::Error::NotFound { .. }) => "not found".to_string(),
        Err(object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. }) => {
            "precondition failed".to_string()
        }
        Err(e) => format!("error: {e}"),
    };
    tracing::debug!(
        target: "sqlite_s3::requests",
        "{method} {key} -> {status}, {bytes} bytes, {} ms",
        started.elapsed().as_millis()
    );
}

impl fmt::Display for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for CountingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let started = Instant::now();
        let bytes = payload.content_length() as u64;
        self.counters.puts.fetch_add(1, Ordering::SeqCst);
        self.counters.bytes_up.fetch_add(bytes, Ordering::SeqCst);
        let result = self.inner.put_opts(location, payload, opts).await;
        log("PUT", location, started, &result, bytes);
        result
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.counters.others.fetch_add(1, Ordering::SeqCst);
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        let started = Instant::now();
        let head = options.head;
        let counter = if head {
            &self.counters.heads
        } else {
            &self.counters.gets
        };
        counter.fetch_add(1, Ordering::SeqCst);
        let result = self.inner.get_opts(location, options).await;
        let bytes = match (&result, head) {
            (Ok(r), false) => r.range.end - r.range.start,
            _ => 0,
        };
        self.counters.bytes_down.fetch_add(bytes, Ordering::SeqCst);
        log(if head { "HEAD" } else { "GET" }, location, started, &result, bytes);
        result
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.counters.others.fetch_add(1, Ordering::SeqCst);
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.counters.lists.fetch_add(1, Ordering::SeqCst);
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let started = Instant::now();
        self.counters.lists.fetch_add(1, Ordering::SeqCst);
        let result = self.inner.list_with_delimiter(prefix).await;
        log("LIST", prefix.unwrap_or(&Path::from("")), started, &result, 0);
        result
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        self.counters.others.fetch_add(1, Ordering::SeqCst);
        self.inner.copy_opts(from, to, options).await
    }
}
