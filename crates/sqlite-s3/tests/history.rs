//! log, restore, branch and gc of the versioned layout, on every store,
//! and gc racing a commit in flight.

use std::time::Duration;

use sqlite_s3::history::{self, Keep, RestorePoint};
use sqlite_s3::{Error, LayoutKind, Options, Session};
use test_support::fault_store::{Faults, Op};
use test_support::on_every_store;
use test_support::stores::{Backend, Kind};

fn versioned(backend: &Backend) -> Options {
    backend.options().layout(LayoutKind::Versioned)
}

async fn set(session: &mut Session, value: i64) {
    session
        .transaction(move |tx| {
            tx.execute_batch("CREATE TABLE IF NOT EXISTS kv(k TEXT PRIMARY KEY, v INTEGER)")?;
            tx.execute("INSERT OR REPLACE INTO kv VALUES ('x', ?1)", [value])?;
            Ok(())
        })
        .await
        .unwrap();
}

fn get(session: &Session) -> i64 {
    session
        .connection()
        .query_row("SELECT v FROM kv WHERE k = 'x'", [], |r| r.get(0))
        .unwrap()
}

async fn read(backend: &Backend, name: &str) -> i64 {
    get(&Session::open(&backend.url(name), &backend.options()).await.unwrap())
}

fn remote(backend: &Backend, name: &str) -> sqlite_s3::Remote {
    sqlite_s3::Remote::connect(&backend.url(name), &backend.store_options()).unwrap()
}

on_every_store!(
    log_lists_every_version,
    restore_makes_an_old_state_the_newest_version,
    a_branch_shares_the_past_but_not_the_future,
    gc_keeps_what_is_used_and_deletes_the_rest,
);

async fn log_lists_every_version(backend: Backend) {
    let mut db = Session::open(&backend.url("app.db"), &versioned(&backend))
        .await
        .unwrap();
    for v in 1..=3 {
        set(&mut db, v).await;
    }
    let versions = history::log(&remote(&backend, "app.db")).await.unwrap();
    assert_eq!(versions.iter().map(|v| v.version).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(versions[2].parent, Some(2));
    assert!(versions.iter().all(|v| v.size > 0 && !v.writer.is_empty()));

    let single = Session::open(&backend.url("plain.db"), &backend.options())
        .await
        .unwrap();
    drop(single);
    let mut plain = Session::open(&backend.url("plain.db"), &backend.options())
        .await
        .unwrap();
    set(&mut plain, 1).await;
    let err = history::log(&remote(&backend, "plain.db")).await.unwrap_err();
    assert!(matches!(err, Error::NotVersioned { .. }), "{err}");
    assert_eq!(err.kind(), sqlite_s3::ErrorKind::NotFound);
    assert!(err.to_string().contains("versioned layout"), "{err}");
}

async fn restore_makes_an_old_state_the_newest_version(backend: Backend) {
    let mut db = Session::open(&backend.url("app.db"), &versioned(&backend))
        .await
        .unwrap();
    set(&mut db, 10).await;
    let after_first = std::time::SystemTime::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    set(&mut db, 20).await;
    set(&mut db, 30).await;
    let r = remote(&backend, "app.db");

    assert_eq!(history::restore(&r, RestorePoint::Version(1)).await.unwrap(), 4);
    assert_eq!(read(&backend, "app.db").await, 10);
    assert_eq!(history::log(&r).await.unwrap().len(), 4, "nothing deleted");

    assert_eq!(history::restore(&r, RestorePoint::At(after_first)).await.unwrap(), 5);
    assert_eq!(read(&backend, "app.db").await, 10);
    assert_eq!(history::restore(&r, RestorePoint::Version(3)).await.unwrap(), 6);
    assert_eq!(read(&backend, "app.db").await, 30);

    let err = history::restore(&r, RestorePoint::Version(99)).await.unwrap_err();
    assert!(matches!(err, Error::VersionNotFound { .. }), "{err}");
    assert!(err.to_string().contains("no version 99"), "{err}");
    let long_ago = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let err = history::restore(&r, RestorePoint::At(long_ago)).await.unwrap_err();
    assert!(matches!(err, Error::VersionNotFound { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("no version committed at or before 2001-09-09T01:46:40Z"),
        "{err}"
    );
    // The writer that was open sees a conflict, not a silent overwrite.
    db.connection().execute("UPDATE kv SET v = 0", []).unwrap();
    assert!(matches!(db.publish().await.unwrap_err(), Error::Conflict { .. }));
}

async fn a_branch_shares_the_past_but_not_the_future(backend: Backend) {
    let mut db = Session::open(&backend.url("app.db"), &versioned(&backend))
        .await
        .unwrap();
    set(&mut db, 1).await;
    set(&mut db, 2).await;
    let (source, source_counter) = backend.counted("app.db");
    let (target, target_counter) = backend.counted("fork.db");
    history::branch(&source, &target, Some(1)).await.unwrap();
    let (s, t) = (source_counter.counts(), target_counter.counts());
    // Read version 1, look at the target's key, record the branch; stage
    // the branch's version 1, create the marker at its key, create the
    // version, drop the staging.
    assert_eq!(s.requests + t.requests, 7, "{s:?} {t:?}");
    assert!(s.bytes_up + t.bytes_up < 64 << 10, "no chunk is copied: {s:?} {t:?}");

    let mut fork = Session::open(&backend.url("fork.db"), &backend.options())
        .await
        .unwrap();
    assert_eq!(get(&fork), 1, "starts from version 1");
    set(&mut fork, 100).await;
    set(&mut db, 3).await;
    assert_eq!(read(&backend, "app.db").await, 3);
    assert_eq!(read(&backend, "fork.db").await, 100);

    let err = history::branch(&remote(&backend, "app.db"), &remote(&backend, "fork.db"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Conflict { .. }),
        "never over an existing database: {err}"
    );
    // Nor beside a database of the other layout.
    let mut single = Session::open(&backend.url("plain.db"), &backend.options())
        .await
        .unwrap();
    set(&mut single, 7).await;
    single.close().await.unwrap();
    let err = history::branch(&remote(&backend, "app.db"), &remote(&backend, "plain.db"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    assert_eq!(read(&backend, "plain.db").await, 7);
    // Nor into another store, whose chunks it could not share.
    let elsewhere = sqlite_s3::Remote::connect(
        &format!("memory://elsewhere-{:08x}/fork.db", fastrand::u32(..)),
        &sqlite_s3::StoreOptions::new(),
    )
    .unwrap();
    let err = history::branch(&remote(&backend, "app.db"), &elsewhere, None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Misuse { .. }), "{err}");
    assert!(err.to_string().contains("same bucket"), "{err}");
    assert!(
        history::log(&remote(&backend, "plain.db")).await.is_err(),
        "no versions beside it"
    );
}

async fn gc_keeps_what_is_used_and_deletes_the_rest(backend: Backend) {
    let mut db = Session::open(&backend.url("app.db"), &versioned(&backend))
        .await
        .unwrap();
    set(&mut db, 1).await;
    let (stale_reader_cache, stale_writer_cache) = (backend.fresh_cache(), backend.fresh_cache());
    let stale_options = |cache: &std::path::PathBuf| backend.options().cache_dir(cache);
    for cache in [&stale_reader_cache, &stale_writer_cache] {
        let session = Session::open(&backend.url("app.db"), &stale_options(cache))
            .await
            .unwrap();
        session.close().await.unwrap();
    }
    for v in 2..=5 {
        set(&mut db, v).await;
    }
    let r = remote(&backend, "app.db");
    history::branch(&r, &remote(&backend, "fork.db"), Some(1))
        .await
        .unwrap();

    // With the default grace, young unused chunks stay.
    let report = history::gc(&r, Keep::Last(2), history::DEFAULT_GRACE).await.unwrap();
    assert_eq!(
        (report.versions_kept, report.manifests_deleted, report.chunks_deleted),
        (2, 3, 0)
    );
    assert!(report.chunks_in_grace > 0, "{report:?}");

    let report = history::gc(&r, Keep::Last(2), Duration::ZERO).await.unwrap();
    assert!(report.chunks_deleted > 0, "{report:?}");
    assert_eq!(
        history::log(&r)
            .await
            .unwrap()
            .iter()
            .map(|v| v.version)
            .collect::<Vec<_>>(),
        [4, 5]
    );
    let fresh = Session::open(&backend.url("app.db"), &backend.options()).await.unwrap();
    assert_eq!(get(&fresh), 5);
    let check: String = fresh
        .connection()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    // The branch still has every chunk of version 1 it shares.
    assert_eq!(read(&backend, "fork.db").await, 1);
    // Copies older than anything kept: a reader finds the newest version, a
    // writer gets a conflict, never a version that hides the newer ones.
    let stale = Session::open(&backend.url("app.db"), &stale_options(&stale_reader_cache))
        .await
        .unwrap();
    assert_eq!(get(&stale), 5);
    let mut writer = Session::open(&backend.url("app.db"), &stale_options(&stale_writer_cache))
        .await
        .unwrap();
    writer
        .transaction(|tx| Ok(tx.execute("UPDATE kv SET v = 6", [])?))
        .await
        .unwrap();
    assert_eq!(read(&backend, "app.db").await, 6);
    assert_eq!(history::log(&r).await.unwrap().last().unwrap().version, 6);
    // Restoring a deleted version is refused, not half-done.
    assert!(history::restore(&r, RestorePoint::Version(1)).await.is_err());
}

/// A commit uploads its chunks, then gc runs before the commit creates its
/// manifest. Returns what a fresh reader then finds.
async fn gc_during_a_commit(backend: &Backend, grace: Duration) -> sqlite_s3::Result<i64> {
    let mut seed = Session::open(&backend.url("app.db"), &versioned(backend))
        .await
        .unwrap();
    set(&mut seed, 1).await;
    seed.close().await.unwrap();

    let (slow, faults) = Faults::wrap(&remote(backend, "app.db"));
    let held = faults.hold(Op::Put, |key| key.contains("/manifests/"));
    let options = backend.options();
    let commit = tokio::spawn(async move {
        let mut db = Session::open_remote(slow, &options).await.unwrap();
        db.transaction(|tx| {
            // New content, so new chunks.
            tx.execute_batch(
                "UPDATE kv SET v = 2;
                 CREATE TABLE pad(b BLOB);
                 INSERT INTO pad SELECT randomblob(100000) FROM (SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3);",
            )?;
            Ok(())
        })
        .await
        .unwrap();
        db.close().await.unwrap();
    });
    held.reached.notified().await;
    history::gc(&remote(backend, "app.db"), Keep::Last(1), grace)
        .await
        .unwrap();
    held.release.notify_one();
    commit.await.unwrap();
    let db = Session::open(&backend.url("app.db"), &backend.options()).await?;
    Ok(get(&db))
}

on_every_store!(gc_never_deletes_the_chunks_of_a_commit_in_flight);

async fn gc_never_deletes_the_chunks_of_a_commit_in_flight(backend: Backend) {
    assert_eq!(gc_during_a_commit(&backend, history::DEFAULT_GRACE).await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_grace_period_gc_would_break_that_commit() {
    // The control for gc_never_deletes_the_chunks_of_a_commit_in_flight:
    // it is the grace period that protects.
    let backend = Backend::new(Kind::Memory).unwrap();
    let err = gc_during_a_commit(&backend, Duration::ZERO).await.unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("missing"), "{err}");
}

#[tokio::test]
async fn gc_keeps_the_chunks_of_a_branch_being_created_and_skips_one_that_never_was() {
    use test_support::fault_store::Fault;
    let backend = Backend::new(Kind::Memory).unwrap();
    let mut db = Session::open(&backend.url("app.db"), &versioned(&backend))
        .await
        .unwrap();
    set(&mut db, 1).await;
    set(&mut db, 2).await;
    db.close().await.unwrap();
    let source = remote(&backend, "app.db");

    // The brancher stops after its marker, before the branch's version 1.
    let (target, faults) = Faults::wrap(&remote(&backend, "fork.db"));
    faults.always(Op::Put, |key| key.contains("/manifests/"), Fault::Stop);
    let err = history::branch(&source, &target, Some(1)).await.unwrap_err();
    assert!(matches!(err, Error::OutcomeUnknown { .. }), "{err}");
    // Without a grace period, only the staged version keeps version 1's chunks.
    history::gc(&source, Keep::Last(1), Duration::ZERO).await.unwrap();
    assert_eq!(
        read(&backend, "fork.db").await,
        1,
        "the branch is finished by its first reader"
    );

    // A brancher that stopped before its marker: nothing at the key.
    let (target, faults) = Faults::wrap(&remote(&backend, "never.db"));
    faults.always(Op::Put, |key| key == "never.db", Fault::Stop);
    assert!(history::branch(&source, &target, Some(2)).await.is_err());
    let err = history::gc(&source, Keep::Last(1), Duration::from_secs(3600))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TryAgain { .. }), "{err}");
    assert!(
        err.to_string().contains("being created"),
        "young: it may yet come: {err}"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    history::gc(&source, Keep::Last(1), Duration::from_millis(10))
        .await
        .unwrap();
}
