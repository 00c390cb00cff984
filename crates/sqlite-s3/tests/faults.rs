//! Faults injected at the store seam: answers lost after a write landed,
//! publishes whose outcome is unknown, refused credentials, and a real
//! endpoint on which nothing listens.

mod support;

use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult,
};
use sqlite_s3::store::CountingStore;
use sqlite_s3::{Error, Options, PublishOutcome, Remote, Session, StoreOptions};
use support::{Backend, Kind, SECRET_KEY, count_rows};

/// What the next PUT does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// The write lands, but the client sees a failed condition: what a retry
    /// reports when the first attempt's answer was lost.
    LandThenPrecondition,
    /// The write lands, but the client sees a transport error.
    LandThenTimeout,
    /// Every request is refused.
    Deny,
    /// Every PUT is refused; reads work.
    DenyPuts,
    /// The next manifest of the versioned layout lands, but the client sees
    /// a transport error.
    LandManifestThenTimeout,
}

#[derive(Debug)]
struct FaultStore {
    inner: Arc<dyn ObjectStore>,
    fault: Mutex<Fault>,
}

impl FaultStore {
    fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }

    fn denied(&self, location: &Path) -> object_store::Result<()> {
        if *self.fault.lock().unwrap() == Fault::Deny {
            return Err(object_store::Error::PermissionDenied {
                path: location.to_string(),
                source: "403 AccessDenied".into(),
            });
        }
        Ok(())
    }
}

impl fmt::Display for FaultStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fault({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for FaultStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.denied(location)?;
        if *self.fault.lock().unwrap() == Fault::DenyPuts {
            return Err(object_store::Error::PermissionDenied {
                path: location.to_string(),
                source: "403 AccessDenied".into(),
            });
        }
        let manifest = location.as_ref().contains("/manifests/");
        let fault = {
            let mut fault = self.fault.lock().unwrap();
            match *fault {
                Fault::LandManifestThenTimeout if !manifest => Fault::None,
                _ => std::mem::replace(&mut *fault, Fault::None),
            }
        };
        let result = self.inner.put_opts(location, payload, opts).await?;
        match fault {
            Fault::LandThenPrecondition => Err(object_store::Error::Precondition {
                path: location.to_string(),
                source: "412 on the retried request".into(),
            }),
            Fault::LandThenTimeout | Fault::LandManifestThenTimeout => Err(object_store::Error::Generic {
                store: "S3",
                source: "error sending request: operation timed out".into(),
            }),
            _ => Ok(result),
        }
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        self.denied(location)?;
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

/// A database behind a fault store and a counting store.
fn faulty(backend: &Backend) -> (Remote, Arc<FaultStore>, CountingStore) {
    let (remote, counter) = backend.counted("app.db");
    let fault = Arc::new(FaultStore {
        inner: remote.store().clone(),
        fault: Mutex::new(Fault::None),
    });
    let wrapped = fault.clone();
    (remote.map_store(move |_| wrapped), fault, counter)
}

/// A transport failure: `Unavailable` on S3, a store error elsewhere.
fn outcome_unknown(error: &Error) -> bool {
    matches!(error, Error::Unavailable { .. } | Error::Store { .. })
}

async fn add(session: &mut Session, n: i64) -> sqlite_s3::Result<()> {
    session
        .transaction(move |tx| {
            tx.execute_batch("CREATE TABLE IF NOT EXISTS c(n INTEGER)")?;
            tx.execute("INSERT INTO c VALUES (?1)", [n])?;
            Ok(())
        })
        .await
}

on_every_store!(
    a_lost_answer_to_a_write_that_landed_is_not_a_conflict,
    a_publish_whose_answer_was_lost_is_found_landed_by_the_next_open,
    publishing_again_after_a_lost_answer_applies_the_change_once,
    commits_made_after_a_lost_answer_are_not_taken_as_published,
    a_transaction_whose_answer_was_lost_succeeds_once,
);

async fn a_lost_answer_to_a_write_that_landed_is_not_a_conflict(backend: Backend) {
    let (remote, fault, counter) = faulty(&backend);
    let options = backend.options();
    let mut db = Session::open_remote(remote.clone(), &options).await.unwrap();
    add(&mut db, 1).await.unwrap();

    fault.set(Fault::LandThenPrecondition);
    add(&mut db, 2).await.expect("our own write is recognised, not re-run");
    assert_eq!(
        count_rows(&backend.raw_get("app.db").await.unwrap(), "c"),
        2,
        "applied exactly once"
    );
    assert_eq!(counter.counts().puts, 2);

    // The session knows the version it published: the next write is plain.
    add(&mut db, 3).await.unwrap();
    db.close().await.unwrap();
    assert_eq!(count_rows(&backend.raw_get("app.db").await.unwrap(), "c"), 3);
}

async fn a_publish_whose_answer_was_lost_is_found_landed_by_the_next_open(backend: Backend) {
    let (remote, fault, counter) = faulty(&backend);
    let options = backend.options();
    let mut db = Session::open_remote(remote.clone(), &options).await.unwrap();
    add(&mut db, 1).await.unwrap();
    db.connection().execute("INSERT INTO c VALUES (2)", []).unwrap();

    fault.set(Fault::LandThenTimeout);
    let err = db.publish().await.unwrap_err();
    assert!(outcome_unknown(&err), "{err}");
    drop(db); // the process gives up here

    counter.reset();
    let db = Session::open_remote(remote, &options).await.unwrap();
    let n: i64 = db
        .connection()
        .query_row("SELECT count(*) FROM c", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(
        counter.counts().puts,
        0,
        "the landed publish is recognised, not sent again"
    );
    assert!(!db.has_unpublished_changes().unwrap());
    assert_eq!(count_rows(&backend.raw_get("app.db").await.unwrap(), "c"), 2);
}

async fn publishing_again_after_a_lost_answer_applies_the_change_once(backend: Backend) {
    let (remote, fault, counter) = faulty(&backend);
    let mut db = Session::open_remote(remote, &backend.options()).await.unwrap();
    add(&mut db, 1).await.unwrap();
    db.connection().execute("INSERT INTO c VALUES (2)", []).unwrap();
    fault.set(Fault::LandThenTimeout);
    assert!(outcome_unknown(&db.publish().await.unwrap_err()));
    counter.reset();
    // The next publish learns that the first one landed: no conflict, no
    // second upload.
    assert_eq!(db.publish().await.unwrap(), PublishOutcome::Unchanged);
    assert_eq!(counter.counts().puts, 0);
    add(&mut db, 3).await.unwrap();
    db.close().await.unwrap();
    let bytes = backend.raw_get("app.db").await.unwrap();
    assert_eq!(count_rows(&bytes, "c"), 3);
}

async fn commits_made_after_a_lost_answer_are_not_taken_as_published(backend: Backend) {
    let (remote, fault, _) = faulty(&backend);
    let options = backend.options();
    let mut db = Session::open_remote(remote.clone(), &options).await.unwrap();
    add(&mut db, 1).await.unwrap();
    db.connection().execute("INSERT INTO c VALUES (2)", []).unwrap();
    fault.set(Fault::LandThenTimeout);
    assert!(db.publish().await.is_err());
    // The application goes on committing, then the process dies.
    db.connection().execute("INSERT INTO c VALUES (3)", []).unwrap();
    drop(db);

    let db = Session::open_remote(remote, &options).await.unwrap();
    assert!(!db.has_unpublished_changes().unwrap());
    let bytes = backend.raw_get("app.db").await.unwrap();
    assert_eq!(count_rows(&bytes, "c"), 3, "the later commit was published too");
}

async fn a_transaction_whose_answer_was_lost_succeeds_once(backend: Backend) {
    let (remote, fault, _) = faulty(&backend);
    let mut db = Session::open_remote(remote, &backend.options()).await.unwrap();
    add(&mut db, 1).await.unwrap();
    fault.set(Fault::LandThenTimeout);
    add(&mut db, 2)
        .await
        .expect("the landed write is found, so the transaction succeeded");
    db.close().await.unwrap();
    assert_eq!(count_rows(&backend.raw_get("app.db").await.unwrap(), "c"), 2);
}

#[tokio::test]
async fn a_lost_answer_is_recognised_even_after_many_later_commits() {
    let backend = Backend::new(Kind::Memory).unwrap();
    let (remote, fault, _) = faulty(&backend);
    let options = backend.options().layout(sqlite_s3::LayoutKind::Versioned);
    let mut db = Session::open_remote(remote.clone(), &options).await.unwrap();
    add(&mut db, 1).await.unwrap();
    db.connection().execute("INSERT INTO c VALUES (2)", []).unwrap();
    fault.set(Fault::LandManifestThenTimeout);
    assert!(outcome_unknown(&db.publish().await.unwrap_err()));
    drop(db); // the process gives up here

    let mut other = Session::open(&backend.url("app.db"), &backend.options()).await.unwrap();
    for n in 100..120 {
        add(&mut other, n).await.unwrap();
    }
    other.close().await.unwrap();

    // Twenty versions later, the next open still finds that the commit
    // landed: no error, and the row is there once.
    let db = Session::open_remote(remote, &options).await.unwrap();
    let twos: i64 = db
        .connection()
        .query_row("SELECT count(*) FROM c WHERE n = 2", [], |r| r.get(0))
        .unwrap();
    assert_eq!(twos, 1);
    assert!(!db.has_unpublished_changes().unwrap());
}

#[tokio::test]
async fn a_transaction_that_fails_to_publish_leaves_nothing_behind() {
    let backend = Backend::new(Kind::Memory).unwrap();
    let (remote, fault, _) = faulty(&backend);
    let options = backend.options();
    let mut db = Session::open_remote(remote.clone(), &options).await.unwrap();
    add(&mut db, 1).await.unwrap();

    fault.set(Fault::DenyPuts);
    let err = add(&mut db, 2).await.unwrap_err();
    assert!(matches!(err, Error::AccessDenied { .. }), "{err}");
    assert!(!db.has_unpublished_changes().unwrap(), "reverted at once");
    fault.set(Fault::None);
    drop(db);

    // Nothing of the failed transaction is published later behind the
    // caller's back.
    let mut db = Session::open_remote(remote, &options).await.unwrap();
    assert_eq!(db.publish().await.unwrap(), PublishOutcome::Unchanged);
    let n: i64 = db
        .connection()
        .query_row("SELECT count(*) FROM c", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn access_denied_is_reported_with_the_database_named() {
    let backend = Backend::new(Kind::Memory).unwrap();
    let (remote, fault, _) = faulty(&backend);
    fault.set(Fault::Deny);
    let err = Session::open_remote(remote, &backend.options()).await.unwrap_err();
    assert!(matches!(err, Error::AccessDenied { .. }), "{err}");
    assert!(err.to_string().contains("memory://"), "{err}");
}

#[test]
fn conflicts_after_every_retry_are_reported_with_the_attempts() {
    let backend = Backend::new(Kind::Memory).unwrap();
    let url = backend.url("app.db");
    let mut seed = sqlite_s3::blocking::Session::open(&url, &backend.options()).unwrap();
    seed.transaction(|tx| Ok(tx.execute_batch("CREATE TABLE c(n INTEGER)")?))
        .unwrap();

    let mut db = sqlite_s3::blocking::Session::open(&url, &backend.options().max_attempts(3)).unwrap();
    let mut tries = 0;
    let err = db
        .transaction(|tx| {
            tries += 1;
            tx.execute("INSERT INTO c VALUES (100)", [])?;
            // Another writer publishes while this try runs, every time.
            std::thread::scope(|s| {
                s.spawn(|| {
                    let mut other =
                        sqlite_s3::blocking::Session::open(&url, &Options::new().cache_dir(backend.fresh_cache()))
                            .unwrap();
                    other
                        .transaction(|tx| Ok(tx.execute("INSERT INTO c VALUES (1)", [])?))
                        .unwrap();
                    other.close().unwrap();
                });
            });
            Ok(())
        })
        .unwrap_err();
    assert_eq!(tries, 3);
    match err {
        Error::Conflict { attempts, .. } => assert_eq!(attempts, 3),
        other => panic!("expected a conflict, got {other}"),
    }
    // Nothing of the losing writer is left to be published.
    assert!(!db.has_unpublished_changes().unwrap());
    db.close().unwrap();
    let bytes = futures::executor::block_on(backend.raw_get("app.db")).unwrap();
    assert_eq!(count_rows(&bytes, "c WHERE n = 100"), 0);
    assert_eq!(count_rows(&bytes, "c WHERE n = 1"), 3);
}

#[tokio::test]
async fn an_unreachable_endpoint_is_reported_quickly_and_without_the_secret() {
    let endpoint = test_support::closed_endpoint();
    let store = StoreOptions::new()
        .endpoint(&endpoint)
        .region("us-east-1")
        .credentials("AKIDEXAMPLE", SECRET_KEY);
    let cache = tempfile::tempdir().unwrap();
    let options = Options::new().store(store).cache_dir(cache.path());
    let err = Session::open("s3://some-bucket/app.db", &options).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("s3://some-bucket/app.db"), "{shown}");
    assert!(!shown.contains(SECRET_KEY), "{shown}");
}

#[tokio::test]
async fn refused_credentials_are_reported_without_the_secret() {
    let Some(moto) = test_support::Moto::start_with_auth("guarded-bucket") else {
        return;
    };
    let store = StoreOptions::new()
        .endpoint(moto.endpoint())
        .region("us-east-1")
        .credentials("AKIDUNKNOWN", SECRET_KEY);
    let cache = tempfile::tempdir().unwrap();
    let options = Options::new().store(store).cache_dir(cache.path());
    let err = Session::open("s3://guarded-bucket/app.db", &options).await.unwrap_err();
    assert!(matches!(err, Error::AccessDenied { .. }), "{err}");
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("s3://guarded-bucket/app.db"), "{shown}");
    assert!(!shown.contains(SECRET_KEY), "{shown}");
}
