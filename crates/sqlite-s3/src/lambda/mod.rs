//! AWS Lambda (feature `lambda`): a tower layer that keeps a [`Database`]
//! in step with its bucket around every invocation, before the response
//! leaves.
//!
//! Around each invocation [`SyncLayer`]:
//! 1. waits for the invocations before it in this process (one at a time
//!    touches the database, even under `run_concurrent`);
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
//! case it runs again on the newest version. Nothing is left for the
//! shutdown phase, which is too short to upload anything.
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

use tokio::sync::Mutex;
use tower::{Layer, Service};

pub use replay::Replay;

use crate::Database;
use crate::error::Error;
use crate::options::RetryPolicy;

/// The error type of a synced handler: the handler's own errors, and this
/// crate's [`Error`] (downcast to tell a conflict with
/// [`Error::is_conflict`]).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The layer. See the module docs.
#[derive(Debug, Clone)]
pub struct SyncLayer<R = Once> {
    db: Arc<Database>,
    lock: Arc<Mutex<()>>,
    rerun: R,
}

/// Conflicts fail the invocation.
#[derive(Debug, Clone, Copy)]
pub struct Once;

/// Conflicts re-run the handler, up to a number of tries.
#[derive(Debug, Clone, Copy)]
pub struct Rerun(RetryPolicy);

impl SyncLayer<Once> {
    /// A layer for `db`. Use one layer per database: its clones share the
    /// lock that serializes invocations.
    pub fn new(db: Arc<Database>) -> Self {
        Self {
            db,
            lock: Arc::default(),
            rerun: Once,
        }
    }

    /// Declares the handler safe to run again: on a conflict it re-runs on
    /// the newest version, up to `max_attempts` tries in all, with a
    /// jittered backoff. Only for handlers whose effects outside the
    /// database can be repeated. The request must be [`Replay`].
    pub fn rerun_on_conflict(self, max_attempts: u32) -> SyncLayer<Rerun> {
        SyncLayer {
            db: self.db,
            lock: self.lock,
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
            lock: self.lock.clone(),
            rerun: self.rerun.clone(),
        }
    }
}

/// The service [`SyncLayer`] wraps a handler in.
#[derive(Debug, Clone)]
pub struct SyncService<S, R> {
    inner: S,
    db: Arc<Database>,
    lock: Arc<Mutex<()>>,
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
        let (inner, db, lock) = self.take();
        Box::pin(async move {
            let _turn = lock.lock().await;
            before(&db).await?;
            let mut inner = inner;
            let response = inner.call(request).await.map_err(Into::into);
            after(&db, response).await.map_err(|(e, _)| e)
        })
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
        let (inner, db, lock) = self.take();
        let policy = self.rerun.0;
        Box::pin(async move {
            let _turn = lock.lock().await;
            let mut inner = inner;
            let mut attempt = 1;
            loop {
                before(&db).await?;
                std::future::poll_fn(|cx| inner.poll_ready(cx))
                    .await
                    .map_err(Into::into)?;
                let response = inner.call(request.replay()).await.map_err(Into::into);
                match after(&db, response).await {
                    Ok(response) => return Ok(response),
                    Err((e, true)) if attempt < policy.max_attempts => {
                        tracing::debug!("conflict on try {attempt}; running the handler again: {e}");
                        tokio::time::sleep(policy.backoff(attempt)).await;
                        attempt += 1;
                    }
                    Err((e, _)) => return Err(e),
                }
            }
        })
    }
}

impl<S: Clone, R> SyncService<S, R> {
    /// The ready inner service (leaving a fresh clone in its place, as tower
    /// asks), the database and the lock, for a call's future.
    fn take(&mut self) -> (S, Arc<Database>, Arc<Mutex<()>>) {
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        (ready, self.db.clone(), self.lock.clone())
    }
}

/// Before the handler: publishes what an earlier invocation left (after a
/// store error whose outcome was unknown; normally nothing, and no
/// request), then refreshes.
async fn before(db: &Database) -> Result<(), BoxError> {
    match db.publish().await {
        Ok(_) => {}
        Err(e) if e.is_conflict() => {
            tracing::warn!("changes left by an earlier invocation conflict and are dropped: {e}");
            db.discard().await?;
        }
        Err(e) => return Err(e.into()),
    }
    db.refresh().await?;
    Ok(())
}

/// After the handler: publishes on success, throws the invocation's writes
/// away on failure. The error says whether it was a conflict.
async fn after<T>(db: &Database, response: Result<T, BoxError>) -> Result<T, (BoxError, bool)> {
    let response = match response {
        Ok(response) => response,
        Err(e) => {
            if db.has_unpublished_changes().await.map_err(|e| (e.into(), false))? {
                db.discard().await.map_err(|e| (e.into(), false))?;
            }
            return Err((e, false));
        }
    };
    match db.publish().await {
        Ok(_) => Ok(response),
        Err(e) if e.is_conflict() => {
            db.discard().await.map_err(|e| (e.into(), false))?;
            let url = db.url().map(ToString::to_string).unwrap_or_default();
            Err((Box::new(Error::Conflict { url, attempts: 1 }) as BoxError, true))
        }
        Err(e) => Err((e.into(), false)),
    }
}
