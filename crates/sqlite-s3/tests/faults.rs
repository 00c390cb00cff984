//! Faults injected at the store seam (`support/faults.rs`), in both layouts
//! and on every store: answers lost after a write landed, writes that land
//! after their answer, stores that fail for a while, refused access, and a
//! real endpoint on which nothing listens. The rule under test: a change is
//! applied exactly once, re-run only with proof that it did not land, and
//! reported as of unknown outcome when neither can be shown.

use std::sync::Arc;
use std::time::Duration;

use sqlite_s3::{Error, LayoutKind, Options, PendingChanges, PublishOutcome, Remote, Session, StoreOptions};
use test_support::fault_store::{Fault, Faults, Op};
use test_support::stores::{Backend, Kind, SECRET_KEY, count_rows};
use test_support::{on_every_store, on_every_store_and_layout, on_stores_and_layouts};

/// The keys whose PUT decides whether a commit lands: the single object,
/// or a manifest.
fn commit_point(key: &str) -> bool {
    key == "app.db" || key.contains("/manifests/")
}

fn options(backend: &Backend, layout: LayoutKind) -> Options {
    backend.options().layout(layout)
}

/// A database behind a fault store.
fn faulty(backend: &Backend) -> (Remote, Arc<Faults>) {
    Faults::wrap(&Remote::connect(&backend.url("app.db"), &backend.store_options()).unwrap())
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

/// Rows `n` in the newest version, read by a fresh cache.
async fn rows_in_remote(backend: &Backend, layout: LayoutKind, n: i64) -> i64 {
    let db = Session::open(&backend.url("app.db"), &options(backend, layout).read_only(true))
        .await
        .unwrap();
    let count = db
        .connection()
        .query_row("SELECT count(*) FROM c WHERE n = ?1", [n], |r| r.get(0))
        .unwrap();
    let check: String = db
        .connection()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    count
}

/// Makes every try of the next commit fail, the first landing late (after
/// `late`), the rest answered 503 without landing: its outcome stays
/// unknown for the whole retry budget.
fn unknown_commit(faults: &Faults, late: Duration) {
    faults.once(Op::Put, commit_point, Fault::LandLater(late));
    faults.always(Op::Put, commit_point, Fault::Status(503));
}

on_every_store_and_layout!(
    a_lost_answer_to_a_write_that_landed_is_not_a_conflict,
    a_write_that_lands_after_its_answer_is_applied_once,
    an_unknown_outcome_is_never_run_again_and_is_settled_by_the_next_open,
    a_try_that_never_lands_is_published_again_by_the_next_open,
    commits_made_after_an_unknown_outcome_are_published_after_it,
    discarding_waits_for_no_one_and_never_sets_aside_a_landed_change,
    a_flaky_store_is_absorbed,
    a_damaged_copy_is_set_aside_only_once_its_publish_is_settled,
    a_discarded_change_whose_publish_may_still_land_never_lands,
);

async fn a_discarded_change_whose_publish_may_still_land_never_lands(backend: Backend, layout: LayoutKind) {
    let (remote, faults) = faulty(&backend);
    let mut db = Session::open_remote(remote, &options(&backend, layout)).await.unwrap();
    add(&mut db, 1).await.unwrap();
    unknown_commit(&faults, Duration::from_millis(500));
    db.connection().execute("INSERT INTO c VALUES (2)", []).unwrap();
    assert!(matches!(db.publish().await, Err(Error::OutcomeUnknown { .. })));
    faults.clear();
    db.discard().await.unwrap();
    assert!(!db.has_unpublished_changes().unwrap());
    // Nothing else is published: only the fence keeps the late try out.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        rows_in_remote(&backend, layout, 2).await,
        0,
        "the late try was fenced off"
    );
    add(&mut db, 3).await.unwrap();
    db.close().await.unwrap();
    assert_eq!(rows_in_remote(&backend, layout, 3).await, 1);
}

/// Garbage over the middle page of a working copy.
fn damage_a_page(copy: &std::path::Path) {
    let mut bytes = std::fs::read(copy).unwrap();
    let at = (bytes.len() / 4096 / 2) * 4096;
    fastrand::fill(&mut bytes[at..at + 4096]);
    std::fs::write(copy, bytes).unwrap();
}

/// A publish of unknown outcome, then the copy is damaged: before it is
/// set aside the publish is settled (found landed, or fenced off), so the
/// change can never land behind a user who makes it again.
async fn a_damaged_copy_is_set_aside_only_once_its_publish_is_settled(backend: Backend, layout: LayoutKind) {
    for lands_first in [true, false] {
        let backend = Backend::new(backend.kind).unwrap();
        let (remote, faults) = faulty(&backend);
        let mut db = Session::open_remote(remote.clone(), &options(&backend, layout))
            .await
            .unwrap();
        db.transaction(|tx| {
            tx.execute_batch("CREATE TABLE c(n INTEGER, pad BLOB)")?;
            tx.execute_batch("INSERT INTO c SELECT 1, randomblob(3000) FROM (WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 40) SELECT i FROM r)")?;
            Ok(())
        })
        .await
        .unwrap();
        let late = if lands_first { 100 } else { 1500 };
        unknown_commit(&faults, Duration::from_millis(late));
        db.connection().execute("INSERT INTO c VALUES (2, NULL)", []).unwrap();
        assert!(matches!(db.publish().await, Err(Error::OutcomeUnknown { .. })));
        faults.clear();
        if lands_first {
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        damage_a_page(&db.working_copy());
        db.connection().execute("INSERT INTO c VALUES (3, NULL)", []).ok();
        let err = db.publish().await.unwrap_err();
        let Error::WorkingCopyDamaged { reason, .. } = &err else {
            panic!("expected a damaged copy, got {err}");
        };
        assert_eq!(reason.contains("had landed"), lands_first, "{reason}");
        drop(db);
        tokio::time::sleep(Duration::from_millis(1700)).await;
        let expected = if lands_first { 1 } else { 0 };
        assert_eq!(
            rows_in_remote(&backend, layout, 2).await,
            expected,
            "landed first: {lands_first}"
        );
    }
}

async fn a_lost_answer_to_a_write_that_landed_is_not_a_conflict(backend: Backend, layout: LayoutKind) {
    let (remote, faults) = faulty(&backend);
    let options = options(&backend, layout);
    let mut db = Session::open_remote(remote.clone(), &options).await.unwrap();
    add(&mut db, 1).await.unwrap();
    faults.once(Op::Put, commit_point, Fault::LoseAnswer);
    add(&mut db, 2).await.expect("our own write is recognised, not re-run");
    assert_eq!(faults.stats().lost_answers, 1);
    // The session knows the version it published: the next write is plain.
    add(&mut db, 3).await.unwrap();
    db.close().await.unwrap();
    for n in 1..=3 {
        assert_eq!(rows_in_remote(&backend, layout, n).await, 1, "row {n}");
    }
}

async fn a_write_that_lands_after_its_answer_is_applied_once(backend: Backend, layout: LayoutKind) {
    let (remote, faults) = faulty(&backend);
    let mut db = Session::open_remote(remote, &options(&backend, layout)).await.unwrap();
    add(&mut db, 1).await.unwrap();
    // The first try gets 503 and lands a moment later; the retry races it.
    // Whichever lands, the other fails its condition and is found ours.
    faults.once(Op::Put, commit_point, Fault::LandLater(Duration::from_millis(5)));
    add(&mut db, 2).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    add(&mut db, 3).await.unwrap();
    db.close().await.unwrap();
    assert_eq!(faults.stats().landed_later, 1);
    for n in 1..=3 {
        assert_eq!(rows_in_remote(&backend, layout, n).await, 1, "row {n}");
    }
}

async fn an_unknown_outcome_is_never_run_again_and_is_settled_by_the_next_open(backend: Backend, layout: LayoutKind) {
    let (remote, faults) = faulty(&backend);
    let options = options(&backend, layout);
    let mut db = Session::open_remote(remote.clone(), &options).await.unwrap();
    add(&mut db, 1).await.unwrap();
    // Late enough that every try of the commit and its check are over
    // before it lands, even on a loaded machine.
    unknown_commit(&faults, Duration::from_millis(1500));
    let mut runs = 0;
    let err = db
        .transaction(|tx| {
            runs += 1;
            tx.execute("INSERT INTO c VALUES (2)", [])?;
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::OutcomeUnknown { .. }), "{err}");
    assert!(err.to_string().contains("do not run it again"), "{err}");
    assert_eq!(runs, 1, "never re-run without proof");
    drop(db);
    faults.clear();
    // The late try lands; the next open finds it, and publishes nothing.
    tokio::time::sleep(Duration::from_millis(1800)).await;
    let db = Session::open_remote(remote, &options).await.unwrap();
    assert!(!db.has_unpublished_changes().unwrap());
    db.close().await.unwrap();
    assert_eq!(rows_in_remote(&backend, layout, 2).await, 1);
}

async fn a_try_that_never_lands_is_published_again_by_the_next_open(backend: Backend, layout: LayoutKind) {
    let (remote, faults) = faulty(&backend);
    let options = options(&backend, layout);
    let mut db = Session::open_remote(remote.clone(), &options).await.unwrap();
    add(&mut db, 1).await.unwrap();
    faults.always(Op::Put, commit_point, Fault::Status(503));
    assert!(matches!(add(&mut db, 2).await, Err(Error::OutcomeUnknown { .. })));
    drop(db);
    faults.clear();
    // No try landed, and the remote is still the version they were made
    // over: publishing again is safe, since at most one of them can land.
    let db = Session::open_remote(remote, &options).await.unwrap();
    assert!(!db.has_unpublished_changes().unwrap());
    db.close().await.unwrap();
    assert_eq!(rows_in_remote(&backend, layout, 2).await, 1);
}

async fn commits_made_after_an_unknown_outcome_are_published_after_it(backend: Backend, layout: LayoutKind) {
    let (remote, faults) = faulty(&backend);
    let options = options(&backend, layout);
    let mut db = Session::open_remote(remote.clone(), &options).await.unwrap();
    add(&mut db, 1).await.unwrap();
    db.connection().execute("INSERT INTO c VALUES (2)", []).unwrap();
    unknown_commit(&faults, Duration::from_millis(300));
    assert!(matches!(db.publish().await, Err(Error::OutcomeUnknown { .. })));
    // The application goes on committing, then the process dies.
    db.connection().execute("INSERT INTO c VALUES (3)", []).unwrap();
    drop(db);
    faults.clear();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let db = Session::open_remote(remote, &options).await.unwrap();
    assert!(!db.has_unpublished_changes().unwrap());
    db.close().await.unwrap();
    for n in 1..=3 {
        assert_eq!(rows_in_remote(&backend, layout, n).await, 1, "row {n}");
    }
}

async fn discarding_waits_for_no_one_and_never_sets_aside_a_landed_change(backend: Backend, layout: LayoutKind) {
    let (remote, faults) = faulty(&backend);
    let options = options(&backend, layout);
    let discard = options.clone().pending_changes(PendingChanges::Discard);

    // A try that may still land: the discard fences it off first, so it
    // never lands, and what was set aside is truly not in the remote.
    let mut db = Session::open_remote(remote.clone(), &options).await.unwrap();
    add(&mut db, 1).await.unwrap();
    unknown_commit(&faults, Duration::from_millis(400));
    assert!(matches!(add(&mut db, 2).await, Err(Error::OutcomeUnknown { .. })));
    drop(db);
    faults.clear();
    let db = Session::open_remote(remote.clone(), &discard).await.unwrap();
    db.close().await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        rows_in_remote(&backend, layout, 2).await,
        0,
        "the late try was fenced off"
    );

    // A try that landed before the discard: not set aside, the remote has it.
    let mut db = Session::open_remote(remote.clone(), &options).await.unwrap();
    unknown_commit(&faults, Duration::from_millis(400));
    assert!(matches!(add(&mut db, 3).await, Err(Error::OutcomeUnknown { .. })));
    drop(db);
    faults.clear();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let db = Session::open_remote(remote, &discard).await.unwrap();
    assert!(!db.has_unpublished_changes().unwrap());
    db.close().await.unwrap();
    assert_eq!(rows_in_remote(&backend, layout, 3).await, 1);
}

async fn a_flaky_store_is_absorbed(backend: Backend, layout: LayoutKind) {
    let (remote, faults) = faulty(&backend);
    let options = options(&backend, layout);
    let mut db = Session::open_remote(remote.clone(), &options).await.unwrap();
    add(&mut db, 0).await.unwrap();
    let seed = fastrand::u64(..);
    faults.random(seed, 0.25);
    for n in 1..=30 {
        add(&mut db, n)
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: transaction {n}: {e}"));
    }
    db.close().await.unwrap();
    // A cold open through the same faults.
    let cold = Session::open_remote(remote, &options.clone().cache_dir(backend.fresh_cache()))
        .await
        .unwrap_or_else(|e| panic!("seed {seed}: cold open: {e}"));
    cold.close().await.unwrap();
    assert!(faults.stats().faults > 0, "seed {seed}: no fault was injected");
    faults.clear();
    for n in 0..=30 {
        assert_eq!(rows_in_remote(&backend, layout, n).await, 1, "seed {seed}: row {n}");
    }
}

on_every_store!(the_lineage_proves_or_the_outcome_is_unknown);

/// A commit lands, its answer is lost, and before its retry other writers
/// commit `others` times: with those within the lineage the retry finds
/// its own write; beyond it, it cannot, and says the outcome is unknown
/// rather than run the change a second time.
async fn lost_answer_then(backend: &Backend, others: i64) -> sqlite_s3::Result<()> {
    let (remote, faults) = faulty(backend);
    let options = backend.options();
    let mut db = Session::open_remote(remote.clone(), &options).await.unwrap();
    add(&mut db, 1).await.unwrap();
    let (url, other_options) = (backend.url("app.db"), backend.options());
    let writers = move || {
        let (url, other_options) = (url.clone(), other_options.clone());
        std::thread::spawn(move || {
            let mut other = sqlite_s3::blocking::Session::open(&url, &other_options).unwrap();
            for n in 0..others {
                other
                    .transaction(|tx| Ok(tx.execute("INSERT INTO c VALUES (?1)", [1000 + n])?))
                    .unwrap();
            }
            other.close().unwrap();
        })
        .join()
        .unwrap();
    };
    faults.once(Op::Put, commit_point, Fault::LoseAnswer);
    faults.once(Op::Put, commit_point, Fault::Call(Arc::new(writers)));
    let result = add(&mut db, 2).await;
    drop(db);
    assert_eq!(
        count_rows(&backend.raw_get("app.db").await.unwrap(), "c WHERE n = 2"),
        1,
        "applied exactly once"
    );
    result
}

async fn the_lineage_proves_or_the_outcome_is_unknown(backend: Backend) {
    lost_answer_then(&backend, 20).await.expect("found within the lineage");
    let backend = Backend::new(backend.kind).unwrap();
    let err = lost_answer_then(&backend, 70).await.unwrap_err();
    assert!(matches!(err, Error::OutcomeUnknown { .. }), "{err}");
}

#[tokio::test]
async fn a_lost_answer_is_recognised_even_after_many_later_commits() {
    let backend = Backend::new(Kind::Memory).unwrap();
    let (remote, faults) = faulty(&backend);
    let options = options(&backend, LayoutKind::Versioned);
    let mut db = Session::open_remote(remote.clone(), &options).await.unwrap();
    add(&mut db, 1).await.unwrap();
    unknown_commit(&faults, Duration::from_millis(100));
    assert!(matches!(add(&mut db, 2).await, Err(Error::OutcomeUnknown { .. })));
    drop(db); // the process gives up here
    faults.clear();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut other = Session::open(&backend.url("app.db"), &backend.options()).await.unwrap();
    for n in 100..180 {
        add(&mut other, n).await.unwrap();
    }
    other.close().await.unwrap();

    // Eighty versions later, the next open still finds that the commit
    // landed: version N+1 says who wrote it.
    let db = Session::open_remote(remote, &options).await.unwrap();
    assert!(!db.has_unpublished_changes().unwrap());
    assert_eq!(rows_in_remote(&backend, LayoutKind::Versioned, 2).await, 1);
}

#[tokio::test]
async fn a_transaction_refused_outright_leaves_nothing_behind() {
    let backend = Backend::new(Kind::Memory).unwrap();
    let (remote, faults) = faulty(&backend);
    let options = backend.options();
    let mut db = Session::open_remote(remote.clone(), &options).await.unwrap();
    add(&mut db, 1).await.unwrap();

    faults.always(Op::Put, |_| true, Fault::Deny);
    let err = add(&mut db, 2).await.unwrap_err();
    assert!(matches!(err, Error::AccessDenied { .. }), "{err}");
    assert!(!db.has_unpublished_changes().unwrap(), "reverted at once");
    faults.clear();
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
async fn a_store_down_before_anything_is_sent_is_unavailable_and_safe_to_retry() {
    let backend = Backend::new(Kind::Memory).unwrap();
    let (remote, faults) = faulty(&backend);
    faults.always(Op::Any, |_| true, Fault::Reset);
    let err = Session::open_remote(remote, &backend.options()).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    assert!(err.to_string().contains("no answer from the store"), "{err}");
}

#[tokio::test]
async fn a_server_error_is_reported_in_its_own_words() {
    let backend = Backend::new(Kind::Memory).unwrap();
    let (remote, faults) = faulty(&backend);
    faults.always(Op::Any, |_| true, Fault::Status(500));
    let err = Session::open_remote(remote, &backend.options()).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    let shown = err.to_string();
    assert!(shown.contains("500 Internal Server Error"), "{shown}");
    assert!(
        shown.contains("InternalError: We encountered an internal error."),
        "{shown}"
    );
    assert!(!shown.contains("network"), "not blamed on the network: {shown}");
}

#[tokio::test]
async fn access_denied_is_reported_with_the_database_named() {
    let backend = Backend::new(Kind::Memory).unwrap();
    let (remote, faults) = faulty(&backend);
    faults.always(Op::Any, |_| true, Fault::Deny);
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
        .credentials("AKIDEXAMPLE", SECRET_KEY)
        .request_retry(test_support::stores::fast_retries());
    let cache = tempfile::tempdir().unwrap();
    let options = Options::new().store(store).cache_dir(cache.path());
    let err = Session::open("s3://some-bucket/app.db", &options).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err}");
    let shown = format!("{err} {err:?}");
    assert!(shown.contains("s3://some-bucket/app.db"), "{shown}");
    assert!(shown.contains("no answer from the store"), "{shown}");
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

on_every_store!(a_download_that_breaks_off_while_the_object_changes_starts_over);

/// A download breaks off, and before it is resumed another writer replaces
/// the object: the resumed read (conditional on the first version) is
/// refused, and the download starts over on the newest version, never
/// mixing the two.
async fn a_download_that_breaks_off_while_the_object_changes_starts_over(backend: Backend) {
    let url = backend.url("app.db");
    let mut writer = Session::open(&url, &backend.options()).await.unwrap();
    writer
        .transaction(|tx| {
            tx.execute_batch("CREATE TABLE c(n INTEGER, pad BLOB)")?;
            tx.execute_batch(
                "INSERT INTO c SELECT 1, randomblob(2000) FROM \
                 (WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 50) SELECT i FROM r)",
            )?;
            Ok(())
        })
        .await
        .unwrap();
    writer.close().await.unwrap();

    let (remote, faults) = faulty(&backend);
    let commit_meanwhile = commit_elsewhere(url.clone(), backend.options(), "INSERT INTO c VALUES (2, NULL)");
    faults.once(Op::Get, |key| key == "app.db", Fault::ShortBody);
    faults.once(Op::Get, |key| key == "app.db", Fault::Call(commit_meanwhile));
    let db = Session::open_remote(remote, &backend.options()).await.unwrap();
    let twos: i64 = db
        .connection()
        .query_row("SELECT count(*) FROM c WHERE n = 2", [], |r| r.get(0))
        .unwrap();
    assert_eq!(twos, 1, "the newest version, whole");
    assert_eq!(faults.stats().short_bodies, 1);
}

on_stores_and_layouts!([memory, file] a_conflict_reports_every_try_of_the_change);

/// A change sent twice (the first try's outcome was unknown, the second
/// lost to another writer) reports both tries in its conflict, and neither
/// landed.
async fn a_conflict_reports_every_try_of_the_change(backend: Backend, layout: LayoutKind) {
    let (remote, faults) = faulty(&backend);
    let mut db = Session::open_remote(remote, &options(&backend, layout)).await.unwrap();
    add(&mut db, 1).await.unwrap();
    db.connection().execute("INSERT INTO c VALUES (2)", []).unwrap();
    faults.always(Op::Put, commit_point, Fault::Status(503));
    assert!(matches!(db.publish().await, Err(Error::OutcomeUnknown { .. })));
    faults.clear();
    let other_writer = commit_elsewhere(backend.url("app.db"), backend.options(), "INSERT INTO c VALUES (3)");
    faults.once(Op::Put, commit_point, Fault::Call(other_writer));
    let err = db.publish().await.unwrap_err();
    assert!(
        matches!(err, Error::Conflict { attempts: 2, .. }),
        "{:?} {layout:?}: {err}",
        backend.kind
    );
    assert!(err.to_string().contains("(2 attempt(s))"), "{err}");
    assert_eq!(err.kind(), sqlite_s3::ErrorKind::Conflict);
    db.discard().await.unwrap();
    assert_eq!(
        rows_in_remote(&backend, layout, 2).await,
        0,
        "{:?} {layout:?}",
        backend.kind
    );
    assert_eq!(
        rows_in_remote(&backend, layout, 3).await,
        1,
        "{:?} {layout:?}",
        backend.kind
    );
}

/// A hook that commits `sql` to `url` through a session of its own (another
/// writer, on another thread), and returns once that commit is published.
fn commit_elsewhere(url: String, options: Options, sql: &'static str) -> Arc<dyn Fn() + Send + Sync> {
    Arc::new(move || {
        let (url, options) = (url.clone(), options.clone());
        std::thread::spawn(move || {
            let mut other = sqlite_s3::blocking::Session::open(&url, &options).unwrap();
            other.transaction(|tx| Ok(tx.execute(sql, [])?)).unwrap();
            other.close().unwrap();
        })
        .join()
        .unwrap();
    })
}
