//! AWS Lambda (feature `lambda`): a tower layer that keeps a [`Database`]
//! in step with its bucket around every invocation, before the response
//! leaves.
//!
//! Around each invocation [`SyncLayer`]:
//! 1. waits for the invocations before it in this process (one at a time
//!    touches the database, even under `run_concurrent`: it is
//!    [`Database::write`] with the handler as the work);
//! 2. refreshes the working copy: one conditional GET, nothing downloaded
//!    when nothing changed;
//! 3. runs the handler;
//! 4. publishes what the handler committed, with a conditional write.
//!
//! When the handler fails, what it committed is thrown away, so a failed
//! invocation leaves no trace. When another writer published first, the
//! invocation fails with [`Error::Conflict`], which
//! the caller can retry, and its writes are thrown away; unless the handler
//! was declared safe to re-run ([`SyncLayer::rerun_on_conflict`]), in which
//! case it runs again on the newest version. What is re-run is decided by
//! [`Error::kind`], as [`Database::write`] does: a conflict, or passing
//! contention ([`ErrorKind::TryAgain`](crate::ErrorKind::TryAgain)) once no
//! earlier try of the publish is in flight; never an unknown outcome.
//! Nothing is left for the shutdown phase, which is too short to upload
//! anything.
//!
//! ```no_run
//! use std::sync::Arc;
//! use lambda_runtime::{LambdaEvent, service_fn, tower::ServiceBuilder};
//! use sqlite_s3::{Database, Options, lambda::SyncLayer};
//!
//! # async fn demo() -> Result<(), lambda_runtime::Error> {
//! let db = Arc::new(Database::from_env("DATABASE_URL", &Options::new()).await?);
//! let conn_db = db.clone();
//! let handler = service_fn(move |event: LambdaEvent<serde_json::Value>| {
//!     let db = conn_db.clone();
//!     async move {
//!         let conn = rusqlite::Connection::open(db.path())?;
//!         conn.execute("INSERT INTO hits(body) VALUES (?1)", [event.payload.to_string()])?;
//!         Ok::<_, lambda_runtime::Error>(serde_json::json!({"ok": true}))
//!     }
//! });
//! lambda_runtime::run(ServiceBuilder::new().layer(SyncLayer::new(db).rerun_on_conflict(5)).service(handler)).await
//! # }
//! ```

mod replay;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower::{Layer, Service};

pub use replay::Replay;

use crate::database::Database;
use crate::error::Error;
use crate::options::RetryPolicy;

/// The error type of a synced handler: the handler's own errors, and this
/// crate's [`Error`] (downcast it and ask [`Error::kind`] what it was: a
/// conflict, passing contention, an unknown outcome...).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The layer. See the module docs.
#[derive(Debug, Clone)]
pub struct SyncLayer<R = Once> {
    db: Arc<Database>,
    rerun: R,
}

/// Conflicts fail the invocation.
#[derive(Debug, Clone, Copy)]
pub struct Once;

/// Conflicts re-run the handler, up to a number of tries.
#[derive(Debug, Clone, Copy)]
pub struct Rerun(RetryPolicy);

impl SyncLayer<Once> {
    /// A layer for `db`.
    pub fn new(db: Arc<Database>) -> Self {
        Self { db, rerun: Once }
    }

    /// Declares the handler safe to run again: on a conflict (or passing
    /// contention proven not to have landed, see [`Database::write`]) it
    /// re-runs on the newest version, up to `max_attempts` tries in all,
    /// with a jittered backoff. Only for handlers whose effects outside the
    /// database can be repeated. The request must be [`Replay`].
    pub fn rerun_on_conflict(self, max_attempts: u32) -> SyncLayer<Rerun> {
        SyncLayer {
            db: self.db,
            rerun: Rerun(RetryPolicy {
                max_attempts: max_attempts.max(1),
                ..RetryPolicy::default()
            }),
        }
    }
}

impl<S, R: Clone> Layer<S> for SyncLayer<R> {
    type Service = SyncService<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        SyncService {
            inner,
            db: self.db.clone(),
            rerun: self.rerun.clone(),
        }
    }
}

/// The service [`SyncLayer`] wraps a handler in.
#[derive(Debug, Clone)]
pub struct SyncService<S, R> {
    inner: S,
    db: Arc<Database>,
    rerun: R,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, Req> Service<Req> for SyncService<S, Once>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    S::Response: Send,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<Result<S::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let (inner, db) = self.take();
        let mut request = Some(request);
        let once = RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        };
        Box::pin(run(db, inner, once, move || request.take().expect("one try only")))
    }
}

impl<S, Req> Service<Req> for SyncService<S, Rerun>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Into<BoxError>,
    S::Response: Send,
    Req: Replay + Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<Result<S::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let (inner, db) = self.take();
        Box::pin(run(db, inner, self.rerun.0, move || request.replay()))
    }
}

impl<S: Clone, R> SyncService<S, R> {
    /// The ready inner service (leaving a fresh clone in its place, as tower
    /// asks) and the database, for a call's future.
    fn take(&mut self) -> (S, Arc<Database>) {
        let clone = self.inner.clone();
        (std::mem::replace(&mut self.inner, clone), self.db.clone())
    }
}

/// One invocation: the handler as the work of [`Database::write`], so that
/// it runs on the newest version, what it committed is published, or
/// dropped when it fails, and conflicts follow `policy`. The handler's own
/// errors come back as they were.
async fn run<S, Req>(
    db: Arc<Database>,
    inner: S,
    policy: RetryPolicy,
    mut request: impl FnMut() -> Req + Send,
) -> Result<S::Response, BoxError>
where
    S: Service<Req> + Clone + Send,
    S::Future: Send,
    S::Error: Into<BoxError>,
{
    let template = inner.clone();
    let mut first = Some(inner);
    let work = move || {
        // The first try uses the service that was polled ready; a re-run a
        // fresh clone, polled here.
        let (mut service, ready) = match first.take() {
            Some(service) => (service, true),
            None => (template.clone(), false),
        };
        let request = request();
        async move {
            if !ready {
                std::future::poll_fn(|cx| service.poll_ready(cx))
                    .await
                    .map_err(|e| Error::abort(e.into()))?;
            }
            service.call(request).await.map_err(|e| Error::abort(e.into()))
        }
    };
    match db.write_with(policy, work).await {
        Ok(response) => Ok(response),
        Err(Error::Aborted(handler_error)) => Err(handler_error),
        Err(e) => Err(e.into()),
    }
}
