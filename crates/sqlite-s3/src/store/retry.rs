//! Transient store failures absorbed: connection resets, timeouts, bodies
//! cut short, 5xx answers and throttling (503 SlowDown, 429) are retried
//! here, with a jittered exponential backoff, so that a session never sees
//! them unless the store stays down for the whole budget.
//!
//! [`RetryingStore`] wraps every store a [`Remote`](super::Remote) uses:
//!
//! - GET, HEAD, LIST, DELETE and unconditional PUTs are sent again as they
//!   are: they change nothing, or write the same bytes again.
//! - A GET whose body breaks off is resumed where it stopped with a ranged
//!   GET conditional on the ETag of the first answer, so a download never
//!   mixes two versions.
//! - Conditional PUTs (`If-Match`, `If-None-Match: *`) pass through once:
//!   whether a failed one landed is a question only its caller can answer,
//!   so they are retried by [`cas`](super::cas), which asks it.
//!
//! object_store's own retries are turned off for the stores built here
//! (`store/s3.rs`): a conditional PUT must be sent exactly once per
//! attempt, or a failed condition could be the answer to a retry of a
//! request that landed.

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetRange, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

/// How often, and how patiently, a request is sent again after a
/// transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestRetry {
    /// Tries in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Upper bound of the first pause; it doubles after each failure.
    pub base_delay: Duration,
    /// Upper bound of any pause.
    pub max_delay: Duration,
}

impl Default for RequestRetry {
    /// Eight tries, pauses of up to 50 ms doubling to 2 s: about 5 s at
    /// most before a store that stays down is reported.
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RequestRetry {
    /// The pause after failed try `attempt` (1-based): a random duration
    /// up to `min(max_delay, base_delay * 2^(attempt-1))`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        crate::backoff::full_jitter(self.base_delay, self.max_delay, attempt)
    }
}

/// Whether a store error may pass if the request is sent again: no
/// connection, a reset, a timeout, a body cut short, a 5xx answer, 408 or
/// 429 (throttling). Refusals (4xx), missing objects and failed conditions
/// are answers, not failures.
pub fn is_transient(error: &object_store::Error) -> bool {
    if !matches!(error, object_store::Error::Generic { .. }) {
        return false;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.downcast_ref::<object_store::client::HttpError>().is_some() {
            return true;
        }
        source = e.source();
    }
    match status_of(error) {
        // S3 answers 400 RequestTimeout when a request body came too slowly.
        Some(400) => super::chain_text(error).contains("RequestTimeout"),
        // 501 Not Implemented and 505 are answers: they will not pass.
        Some(501 | 505) => false,
        Some(status) => status >= 500 || status == 408 || status == 429,
        None => {
            let text = super::chain_text(error);
            text.contains("SlowDown") || text.contains("InternalError")
        }
    }
}

/// The HTTP status an error reports, if any (object_store says it only in
/// its message: "Server returned non-2xx status code: 503 ...").
pub(crate) fn status_of(error: &(dyn std::error::Error + 'static)) -> Option<u16> {
    let text = super::chain_text(error);
    let at = text.find("status code: ")? + "status code: ".len();
    text.get(at..at + 3)?.parse().ok()
}

/// Sends `request` until it succeeds, fails for good, or the budget is
/// spent.
pub(crate) async fn retrying<T, F, Fut>(policy: &RequestRetry, what: &str, mut request: F) -> object_store::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = object_store::Result<T>>,
{
    let mut attempt = 1;
    loop {
        match request().await {
            Err(e) if is_transient(&e) && attempt < policy.max_attempts => {
                let pause = policy.backoff(attempt);
                tracing::debug!("{what} failed (try {attempt}), again in {pause:?}: {e}");
                tokio::time::sleep(pause).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// A store whose transient failures are retried. See the module docs.
#[derive(Debug)]
pub struct RetryingStore {
    inner: Arc<dyn ObjectStore>,
    policy: RequestRetry,
}

impl RetryingStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn ObjectStore>, policy: RequestRetry) -> Self {
        Self { inner, policy }
    }
}

impl fmt::Display for RetryingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Retrying({})", self.inner)
    }
}

fn is_conditional(mode: &PutMode) -> bool {
    matches!(mode, PutMode::Create | PutMode::Update(_))
}

#[async_trait]
impl ObjectStore for RetryingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        if is_conditional(&opts.mode) {
            return self.inner.put_opts(location, payload, opts).await;
        }
        retrying(&self.policy, "PUT", || {
            self.inner.put_opts(location, payload.clone(), opts.clone())
        })
        .await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        let result = retrying(&self.policy, "GET", || self.inner.get_opts(location, options.clone())).await?;
        if options.head {
            return Ok(result);
        }
        let GetResultPayload::Stream(stream) = result.payload else {
            return Ok(result);
        };
        let resume = Resume {
            store: self.inner.clone(),
            policy: self.policy,
            location: location.clone(),
            options,
            etag: result.meta.e_tag.clone(),
            remaining: result.range.clone(),
        };
        Ok(GetResult {
            payload: GetResultPayload::Stream(resume.stream(stream)),
            ..result
        })
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let (inner, policy) = (self.inner.clone(), self.policy);
        locations
            .and_then(move |location| {
                let inner = inner.clone();
                async move {
                    retrying(&policy, "DELETE", || {
                        let one = futures::stream::once(futures::future::ready(Ok(location.clone()))).boxed();
                        let inner = inner.clone();
                        async move { inner.delete_stream(one).try_collect::<Vec<_>>().await }
                    })
                    .await?;
                    Ok(location)
                }
            })
            .boxed()
    }

    /// Listed whole, then handed out: a listing that breaks off is started
    /// again rather than continued, so nothing is listed twice.
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let (inner, policy, prefix) = (self.inner.clone(), self.policy, prefix.cloned());
        futures::stream::once(async move {
            retrying(&policy, "LIST", || inner.list(prefix.as_ref()).try_collect::<Vec<_>>()).await
        })
        .map_ok(|all| futures::stream::iter(all.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        retrying(&self.policy, "LIST", || self.inner.list_with_delimiter(prefix)).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        retrying(&self.policy, "COPY", || self.inner.copy_opts(from, to, options.clone())).await
    }
}

/// What it takes to resume a GET whose body broke off.
struct Resume {
    store: Arc<dyn ObjectStore>,
    policy: RequestRetry,
    location: Path,
    options: GetOptions,
    /// The version being read: a resumed read must be of the same one.
    etag: Option<String>,
    /// The bytes of the object not received yet.
    remaining: Range<u64>,
}

impl Resume {
    fn stream(
        self,
        first: BoxStream<'static, object_store::Result<Bytes>>,
    ) -> BoxStream<'static, object_store::Result<Bytes>> {
        futures::stream::unfold((self, first, 1u32), |(mut resume, mut body, mut attempt)| async move {
            loop {
                match body.next().await {
                    None => return None,
                    Some(Ok(bytes)) => {
                        resume.remaining.start += bytes.len() as u64;
                        return Some((Ok(bytes), (resume, body, attempt)));
                    }
                    Some(Err(e))
                        if is_transient(&e)
                            && attempt < resume.policy.max_attempts
                            && resume.etag.is_some()
                            && !resume.remaining.is_empty() =>
                    {
                        tokio::time::sleep(resume.policy.backoff(attempt)).await;
                        attempt += 1;
                        tracing::debug!(
                            "the body of {} broke off ({e}); resuming at byte {}",
                            resume.location,
                            resume.remaining.start
                        );
                        let options = GetOptions {
                            range: Some(GetRange::Bounded(resume.remaining.clone())),
                            if_match: resume.etag.clone(),
                            if_none_match: None,
                            ..resume.options.clone()
                        };
                        match resume.store.get_opts(&resume.location, options).await {
                            Ok(result) => body = result.into_stream(),
                            Err(e) if is_transient(&e) => body = futures::stream::once(async { Err(e) }).boxed(),
                            Err(e) => return Some((Err(e), (resume, futures::stream::empty().boxed(), attempt))),
                        }
                    }
                    Some(Err(e)) => return Some((Err(e), (resume, futures::stream::empty().boxed(), attempt))),
                }
            }
        })
        .boxed()
    }
}
