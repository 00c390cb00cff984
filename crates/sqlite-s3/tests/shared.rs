//! A working copy shared with other connections
//! (`Options::shared_working_copy`), as an sqlx pool or a Diesel connection
//! uses it: plain rusqlite connections stand in for them here.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use rusqlite::Connection;
use sqlite_s3::{Error, LayoutKind, PublishOutcome, RefreshOutcome, Session};
use test_support::stores::Backend;
use test_support::{on_every_store, on_every_store_and_layout};

on_every_store_and_layout!(
    other_connections_write_and_the_session_publishes,
    publishing_while_others_write_holds_exactly_what_was_committed,
    a_refresh_shows_in_other_connections,
    a_conflict_is_reported_and_discard_shows_the_newest_version_everywhere,
    a_shared_copy_dropped_without_closing_is_settled_by_content,
    a_new_database_only_opened_by_a_driver_is_not_created,
    the_commits_of_work_that_panicked_are_dropped,
);

// The versioned layout only: a refresh there starts from the working copy.
on_every_store!(a_versioned_refresh_builds_on_what_sits_in_the_wal);

fn shared(backend: &Backend, layout: LayoutKind) -> sqlite_s3::Options {
    backend.options().layout(layout).shared_working_copy(true)
}

/// Another connection on the working copy, in WAL mode as sqlx opens it.
fn other(session: &Session) -> Connection {
    let conn = Connection::open(session.working_copy()).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn
}

fn count(conn: &Connection) -> i64 {
    conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap()
}

async fn read_elsewhere(backend: &Backend, url: &str) -> (i64, String) {
    let db = Session::open(url, &backend.options()).await.unwrap();
    let check: String = db
        .connection()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    let n = count(db.connection());
    db.close().await.unwrap();
    (n, check)
}

async fn other_connections_write_and_the_session_publishes(backend: Backend, layout: LayoutKind) {
    let url = backend.url("app.db");
    let (remote, counter) = backend.counted("app.db");
    let mut db = Session::open_remote(remote, &shared(&backend, layout)).await.unwrap();
    // Nothing committed: nothing copied, nothing sent.
    counter.reset();
    assert_eq!(db.publish().await.unwrap(), PublishOutcome::Unchanged);
    assert_eq!(counter.counts().requests, 0);
    assert!(!db.has_unpublished_changes().unwrap());

    let conn = other(&db);
    conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2)")
        .unwrap();
    assert!(db.has_unpublished_changes().unwrap());
    assert!(matches!(db.publish().await.unwrap(), PublishOutcome::Published { .. }));
    assert!(!db.has_unpublished_changes().unwrap());
    counter.reset();
    assert_eq!(db.publish().await.unwrap(), PublishOutcome::Unchanged);
    assert_eq!(counter.counts().requests, 0, "{:?}", counter.counts());
    assert!(!db.working_copy().with_file_name("snapshot.sqlite").exists());

    assert_eq!(read_elsewhere(&backend, &url).await, (2, "ok".into()));
    if layout == LayoutKind::Single {
        // The object is a plain rollback-journal database.
        let bytes = backend.raw_get("app.db").await.unwrap();
        assert_eq!(&bytes[18..20], &[1, 1]);
    }

    // The next commit of another connection is the next version.
    conn.execute("INSERT INTO t VALUES (3)", []).unwrap();
    assert!(matches!(db.publish().await.unwrap(), PublishOutcome::Published { .. }));
    if layout == LayoutKind::Versioned {
        assert_eq!(db.version(), Some(sqlite_s3::Version::Numbered(2)));
    }
    assert_eq!(read_elsewhere(&backend, &url).await, (3, "ok".into()));
    drop(conn);
    db.close().await.unwrap();
}

async fn publishing_while_others_write_holds_exactly_what_was_committed(backend: Backend, layout: LayoutKind) {
    let url = backend.url("app.db");
    let mut db = Session::open(&url, &shared(&backend, layout)).await.unwrap();
    other(&db).execute_batch("CREATE TABLE t(x)").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicI64::new(0));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (path, stop, committed) = (db.working_copy(), stop.clone(), committed.clone());
            std::thread::spawn(move || {
                let conn = Connection::open(path).unwrap();
                conn.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
                let mut i = 0;
                while !stop.load(Ordering::SeqCst) {
                    // Several statements per transaction: a torn copy would
                    // show a row without its twin.
                    conn.execute_batch(&format!(
                        "BEGIN IMMEDIATE; INSERT INTO t VALUES ({w}{i:06}); INSERT INTO t VALUES (-{w}{i:06}); COMMIT"
                    ))
                    .unwrap();
                    committed.fetch_add(2, Ordering::SeqCst);
                    i += 1;
                }
            })
        })
        .collect();
    let mut published = 0;
    while published < 5 {
        if let PublishOutcome::Published { .. } = db.publish().await.unwrap() {
            published += 1;
            let (n, check) = read_elsewhere(&backend, &url).await;
            assert_eq!(check, "ok");
            assert_eq!(n % 2, 0, "a transaction was torn");
        }
    }
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    db.publish().await.unwrap();
    let (n, check) = read_elsewhere(&backend, &url).await;
    assert_eq!((n, check.as_str()), (committed.load(Ordering::SeqCst), "ok"));
    db.close().await.unwrap();
}

async fn a_refresh_shows_in_other_connections(backend: Backend, layout: LayoutKind) {
    let url = backend.url("app.db");
    let mut writer = Session::open(&url, &backend.options().layout(layout)).await.unwrap();
    writer
        .transaction(|tx| Ok(tx.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1)")?))
        .await
        .unwrap();

    let mut db = Session::open(&url, &shared(&backend, layout)).await.unwrap();
    let conn = other(&db);
    assert_eq!(count(&conn), 1);
    writer
        .transaction(|tx| Ok(tx.execute("INSERT INTO t VALUES (2)", []).map(|_| ())?))
        .await
        .unwrap();
    assert!(matches!(db.refresh().await.unwrap(), RefreshOutcome::Downloaded { .. }));
    assert_eq!(count(&conn), 2, "the open connection sees the new version");
    // The refresh is not taken for a local change.
    assert!(!db.has_unpublished_changes().unwrap());
    assert_eq!(db.publish().await.unwrap(), PublishOutcome::Unchanged);

    // A refresh with unpublished changes is refused, and loses nothing.
    conn.execute("INSERT INTO t VALUES (3)", []).unwrap();
    assert!(matches!(db.refresh().await, Err(Error::Misuse { .. })));
    assert_eq!(count(&conn), 3);
    db.publish().await.unwrap();
    assert_eq!(read_elsewhere(&backend, &url).await.0, 3);
    drop(conn);
    db.close().await.unwrap();
    writer.close().await.unwrap();
}

async fn a_conflict_is_reported_and_discard_shows_the_newest_version_everywhere(backend: Backend, layout: LayoutKind) {
    let url = backend.url("app.db");
    let mut db = Session::open(&url, &shared(&backend, layout)).await.unwrap();
    let conn = other(&db);
    conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1)")
        .unwrap();
    db.publish().await.unwrap();

    let mut theirs = Session::open(&url, &backend.options().layout(layout)).await.unwrap();
    theirs
        .transaction(|tx| Ok(tx.execute("INSERT INTO t VALUES (10)", []).map(|_| ())?))
        .await
        .unwrap();
    theirs.close().await.unwrap();

    conn.execute("INSERT INTO t VALUES (2)", []).unwrap();
    assert!(db.publish().await.unwrap_err().is_conflict());
    // Nothing was lost: theirs is on the remote, ours still local.
    assert_eq!(count(&conn), 2);
    db.discard().await.unwrap();
    let rows: Vec<i64> = conn
        .prepare("SELECT x FROM t ORDER BY x")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(rows, [1, 10]);
    assert!(!db.has_unpublished_changes().unwrap());
    drop(conn);
    db.close().await.unwrap();
}

async fn a_shared_copy_dropped_without_closing_is_settled_by_content(backend: Backend, layout: LayoutKind) {
    let url = backend.url("app.db");
    let options = shared(&backend, layout);
    let mut db = Session::open(&url, &options).await.unwrap();
    let conn = other(&db);
    conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1)")
        .unwrap();
    db.publish().await.unwrap();
    // Dropped, not closed, as when the process dies: the slot stays marked
    // open, and the working copy's bytes differ from the snapshot's.
    drop(conn);
    drop(db);

    let (remote, counter) = backend.counted("app.db");
    let mut db = Session::open_remote(remote.clone(), &options).await.unwrap();
    let counts = counter.counts();
    assert_eq!(
        (counts.puts, counts.requests),
        (0, 1),
        "nothing left to publish: {counts:?}"
    );
    assert_eq!(count(db.connection()), 1);

    // A commit after the last publish is found and published by the next open.
    let conn = other(&db);
    conn.execute("INSERT INTO t VALUES (2)", []).unwrap();
    db.publish().await.unwrap();
    conn.execute("INSERT INTO t VALUES (3)", []).unwrap();
    drop(conn);
    drop(db);
    let db = Session::open_remote(remote, &options).await.unwrap();
    db.close().await.unwrap();
    assert_eq!(read_elsewhere(&backend, &url).await, (3, "ok".into()));
}

async fn a_new_database_only_opened_by_a_driver_is_not_created(backend: Backend, layout: LayoutKind) {
    let (remote, counter) = backend.counted("app.db");
    let mut db = Session::open_remote(remote, &shared(&backend, layout)).await.unwrap();
    let conn = other(&db); // switches the new file to WAL mode, as sqlx does
    counter.reset();
    assert_eq!(db.publish().await.unwrap(), PublishOutcome::Unchanged);
    assert!(!db.has_unpublished_changes().unwrap());
    assert_eq!(counter.counts().requests, 0, "{:?}", counter.counts());
    // The first table makes it a database worth creating.
    conn.execute_batch("CREATE TABLE t(x)").unwrap();
    assert!(db.has_unpublished_changes().unwrap());
    assert!(matches!(db.publish().await.unwrap(), PublishOutcome::Published { .. }));
    drop(conn);
    db.close().await.unwrap();
    assert!(backend.raw_get("app.db").await.is_some());
}

async fn a_versioned_refresh_builds_on_what_sits_in_the_wal(backend: Backend) {
    let url = backend.url("app.db");
    let options = shared(&backend, LayoutKind::Versioned);
    let mut db = Session::open(&url, &options).await.unwrap();
    let conn = other(&db);
    // Enough rows for several chunks, all of them in the WAL of an open
    // connection: the main file does not hold them.
    conn.execute_batch("PRAGMA wal_autocheckpoint = 0; CREATE TABLE t(x)")
        .unwrap();
    for i in 0..3000 {
        conn.execute("INSERT INTO t VALUES (?1)", [format!("{i:0>200}")])
            .unwrap();
    }
    db.publish().await.unwrap();

    let mut writer = Session::open(&url, &backend.options()).await.unwrap();
    writer
        .transaction(|tx| Ok(tx.execute("INSERT INTO t VALUES ('theirs')", []).map(|_| ())?))
        .await
        .unwrap();
    writer.close().await.unwrap();

    assert!(matches!(db.refresh().await.unwrap(), RefreshOutcome::Downloaded { .. }));
    assert_eq!(count(&conn), 3001);
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    drop(conn);
    db.close().await.unwrap();
}

async fn the_commits_of_work_that_panicked_are_dropped(backend: Backend, layout: LayoutKind) {
    use futures::FutureExt;
    let url = backend.url("app.db");
    let db = sqlite_s3::Database::open(&url, &backend.options().layout(layout))
        .await
        .unwrap();
    let path = db.path().to_path_buf();
    let insert = |value: &'static str| {
        let path = path.clone();
        move || {
            let path = path.clone();
            async move {
                let conn = Connection::open(&path)?;
                conn.execute_batch("CREATE TABLE IF NOT EXISTS t(x)")?;
                conn.execute("INSERT INTO t VALUES (?1)", [value])?;
                Ok(())
            }
        }
    };
    db.write(insert("kept")).await.unwrap();
    let panicked = std::panic::AssertUnwindSafe(db.write(|| {
        let commit = insert("panicked");
        async move {
            commit().await?;
            panic!("the handler panicked after committing");
            #[allow(unreachable_code)]
            Ok(())
        }
    }))
    .catch_unwind()
    .await;
    assert!(panicked.is_err());
    // Neither a plain publish nor the next write lets it through.
    db.publish().await.unwrap();
    db.write(insert("after")).await.unwrap();
    db.close().await.unwrap();

    let check = Session::open(&url, &backend.options().layout(layout)).await.unwrap();
    let rows: Vec<String> = check
        .connection()
        .prepare("SELECT x FROM t ORDER BY rowid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(rows, ["kept", "after"]);
    check.close().await.unwrap();
}
