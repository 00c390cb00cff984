//! Behaviour of sessions, the same on every store: memory, a local
//! directory, and S3 (a moto server on loopback).

use sqlite_s3::{Error, Options, PendingChanges, PublishOutcome, RefreshOutcome, Session, WriteMode};
use test_support::on_every_store;
use test_support::stores::{Backend, count_rows, sqlite_bytes};

async fn insert(session: &mut Session, value: &str) {
    let value = value.to_string();
    session
        .transaction(move |tx| {
            tx.execute_batch("CREATE TABLE IF NOT EXISTS notes(v TEXT)")?;
            tx.execute("INSERT INTO notes VALUES (?1)", [&value])?;
            Ok(())
        })
        .await
        .unwrap();
}

fn notes(session: &Session) -> Vec<String> {
    let mut stmt = session
        .connection()
        .prepare("SELECT v FROM notes ORDER BY rowid")
        .unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

on_every_store!(
    a_new_database_round_trips_as_a_plain_sqlite_file,
    a_database_written_by_another_tool_is_read_as_is,
    a_stale_writer_gets_a_conflict_and_the_remote_is_untouched,
    last_writer_wins_only_when_asked,
    a_warm_read_only_session_sends_one_request_and_downloads_nothing,
    a_read_only_session_never_puts,
    a_change_costs_one_conditional_get_and_one_put,
    ddl_counts_as_a_change,
    wal_mode_changes_are_published_complete,
    a_sql_error_publishes_nothing,
    a_missing_bucket_is_reported,
    an_object_that_is_not_sqlite_is_reported,
    a_truncated_download_never_replaces_a_good_copy,
    a_corrupted_page_is_caught_before_use,
    changes_of_a_dropped_session_are_published_by_the_next_open,
    changes_that_can_no_longer_be_published_are_reported_and_kept,
    discarding_pending_changes_moves_them_aside,
    two_sessions_sharing_a_cache_directory_use_separate_copies,
    refresh_downloads_only_when_the_remote_changed,
    sync_publishes_then_pulls,
);

async fn a_new_database_round_trips_as_a_plain_sqlite_file(backend: Backend) {
    let url = backend.url("app.db");
    let mut db = Session::open(&url, &backend.options()).await.unwrap();
    assert!(db.version().is_none(), "a new database has no remote version");
    assert_eq!(backend.raw_get("app.db").await, None, "nothing is uploaded at open");
    insert(&mut db, "hello").await;
    db.close().await.unwrap();

    let bytes = backend.raw_get("app.db").await.expect("published");
    assert!(bytes.starts_with(b"SQLite format 3\0"));
    assert_eq!(count_rows(&bytes, "notes"), 1);

    let elsewhere = Session::open(&url, &backend.options()).await.unwrap();
    assert_eq!(notes(&elsewhere), ["hello"]);
    // The version carries the writer's commit token, so that a retried
    // publish can recognise its own write.
    assert_eq!(elsewhere.version().unwrap().lineage.len(), 1);
}

async fn a_database_written_by_another_tool_is_read_as_is(backend: Backend) {
    backend.raw_put("legacy.sqlite", sqlite_bytes(3)).await;
    let mut db = Session::open(&backend.url("legacy.sqlite"), &backend.options())
        .await
        .unwrap();
    let n: i64 = db
        .connection()
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 3);
    db.transaction(|tx| Ok(tx.execute("DELETE FROM t WHERE id = 1", [])?))
        .await
        .unwrap();
    db.close().await.unwrap();
    assert_eq!(count_rows(&backend.raw_get("legacy.sqlite").await.unwrap(), "t"), 2);
}

async fn a_stale_writer_gets_a_conflict_and_the_remote_is_untouched(backend: Backend) {
    let url = backend.url("app.db");
    let mut first = Session::open(&url, &backend.options()).await.unwrap();
    insert(&mut first, "base").await;

    let mut stale = Session::open(&url, &backend.options()).await.unwrap();
    insert(&mut first, "newer").await;
    let remote_before = backend.raw_get("app.db").await.unwrap();

    stale
        .connection()
        .execute("INSERT INTO notes VALUES ('stale')", [])
        .unwrap();
    let err = stale.publish().await.unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    assert!(err.to_string().contains(&url), "{err}");
    assert_eq!(
        backend.raw_get("app.db").await.unwrap(),
        remote_before,
        "remote untouched"
    );

    // The stale writer's change is still in its working copy, not lost.
    assert!(stale.has_unpublished_changes().unwrap());
    assert_eq!(notes(&stale), ["base", "stale"]);
    // Discarding it brings the newest version.
    stale.discard().await.unwrap();
    assert_eq!(notes(&stale), ["base", "newer"]);
    stale.close().await.unwrap();
}

async fn last_writer_wins_only_when_asked(backend: Backend) {
    let url = backend.url("app.db");
    let mut first = Session::open(&url, &backend.options()).await.unwrap();
    insert(&mut first, "base").await;
    let lww = backend.options().write_mode(WriteMode::LastWriterWins);
    let mut stale = Session::open(&url, &lww).await.unwrap();
    insert(&mut first, "lost").await;
    stale
        .connection()
        .execute("INSERT INTO notes VALUES ('wins')", [])
        .unwrap();
    assert!(matches!(
        stale.publish().await.unwrap(),
        PublishOutcome::Published { .. }
    ));
    let fresh = Session::open(&url, &backend.options()).await.unwrap();
    assert_eq!(notes(&fresh), ["base", "wins"]);
}

async fn a_warm_read_only_session_sends_one_request_and_downloads_nothing(backend: Backend) {
    let mut seed = Session::open(&backend.url("app.db"), &backend.options()).await.unwrap();
    insert(&mut seed, "x").await;
    seed.close().await.unwrap();

    let options = backend.options();
    let (remote, counter) = backend.counted("app.db");
    // Cold: downloads the database.
    let cold = Session::open_remote(remote.clone(), &options).await.unwrap();
    assert_eq!(notes(&cold), ["x"]);
    cold.close().await.unwrap();
    let cold_counts = counter.counts();
    assert_eq!((cold_counts.requests, cold_counts.puts), (1, 0), "{cold_counts:?}");
    assert!(cold_counts.bytes_down > 0);

    counter.reset();
    let warm = Session::open_remote(remote, &options).await.unwrap();
    assert_eq!(notes(&warm), ["x"]);
    warm.close().await.unwrap();
    let counts = counter.counts();
    assert_eq!(counts.requests, 1, "{counts:?}");
    assert_eq!(counts.gets, 1, "{counts:?}");
    assert_eq!(counts.bytes_down, 0, "{counts:?}");
}

async fn a_read_only_session_never_puts(backend: Backend) {
    let mut seed = Session::open(&backend.url("app.db"), &backend.options()).await.unwrap();
    insert(&mut seed, "x").await;
    seed.close().await.unwrap();

    let (remote, counter) = backend.counted("app.db");
    let mut db = Session::open_remote(remote, &backend.options()).await.unwrap();
    db.connection()
        .query_row("SELECT count(*) FROM notes", [], |r| r.get::<_, i64>(0))
        .unwrap();
    // A transaction that reads only publishes nothing either.
    db.transaction(|tx| Ok(tx.query_row("SELECT count(*) FROM notes", [], |r| r.get::<_, i64>(0))?))
        .await
        .unwrap();
    assert_eq!(db.publish().await.unwrap(), PublishOutcome::Unchanged);
    db.close().await.unwrap();
    assert_eq!(counter.counts().puts, 0, "{:?}", counter.counts());
    assert_eq!(counter.counts().bytes_up, 0);
}

async fn a_change_costs_one_conditional_get_and_one_put(backend: Backend) {
    let mut seed = Session::open(&backend.url("app.db"), &backend.options()).await.unwrap();
    insert(&mut seed, "x").await;
    seed.close().await.unwrap();

    let options = backend.options();
    let (remote, counter) = backend.counted("app.db");
    Session::open_remote(remote.clone(), &options)
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    counter.reset();
    let mut db = Session::open_remote(remote, &options).await.unwrap();
    insert(&mut db, "y").await;
    db.close().await.unwrap();
    let counts = counter.counts();
    assert_eq!((counts.gets, counts.puts, counts.requests), (1, 1, 2), "{counts:?}");
    assert_eq!(counts.bytes_down, 0);
    let size = backend.raw_get("app.db").await.unwrap().len() as u64;
    assert_eq!(counts.bytes_up, size);
}

async fn ddl_counts_as_a_change(backend: Backend) {
    let url = backend.url("app.db");
    let mut db = Session::open(&url, &backend.options()).await.unwrap();
    db.connection().execute_batch("CREATE TABLE only_ddl(x)").unwrap();
    assert!(matches!(db.publish().await.unwrap(), PublishOutcome::Published { .. }));
    db.connection().execute_batch("CREATE INDEX i ON only_ddl(x)").unwrap();
    db.close().await.unwrap();
    let bytes = backend.raw_get("app.db").await.unwrap();
    assert_eq!(count_rows(&bytes, "sqlite_schema WHERE name = 'i'"), 1);
}

async fn wal_mode_changes_are_published_complete(backend: Backend) {
    let url = backend.url("app.db");
    let mut db = Session::open(&url, &backend.options()).await.unwrap();
    let mode: String = db
        .connection()
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    insert(&mut db, "in the log").await;
    insert(&mut db, "also in the log").await;
    db.close().await.unwrap();
    let other = Session::open(&url, &backend.options()).await.unwrap();
    assert_eq!(notes(&other), ["in the log", "also in the log"]);
}

async fn a_sql_error_publishes_nothing(backend: Backend) {
    let mut seed = Session::open(&backend.url("app.db"), &backend.options()).await.unwrap();
    insert(&mut seed, "x").await;
    seed.close().await.unwrap();

    let (remote, counter) = backend.counted("app.db");
    let mut db = Session::open_remote(remote, &backend.options()).await.unwrap();
    let err = db
        .transaction(|tx| {
            tx.execute("INSERT INTO notes VALUES ('half')", [])?;
            tx.execute("INSERT INTO no_such_table VALUES (1)", [])?;
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Sql(_)), "{err}");
    assert!(err.to_string().contains("no_such_table"), "{err}");
    db.close().await.unwrap();
    assert_eq!(counter.counts().puts, 0);
    assert_eq!(
        notes(&Session::open(&backend.url("app.db"), &backend.options()).await.unwrap()),
        ["x"]
    );
}

async fn a_missing_bucket_is_reported(backend: Backend) {
    let Some(url) = backend.missing_bucket_url() else {
        return;
    };
    let err = Session::open(&url, &backend.options()).await.unwrap_err();
    assert!(matches!(err, Error::BucketNotFound { .. }), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
}

async fn an_object_that_is_not_sqlite_is_reported(backend: Backend) {
    backend
        .raw_put("page.html", "<html>not a database</html>".repeat(10))
        .await;
    let err = Session::open(&backend.url("page.html"), &backend.options())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotADatabase { .. }), "{err}");
    assert!(err.to_string().contains("page.html"), "{err}");
}

async fn a_truncated_download_never_replaces_a_good_copy(backend: Backend) {
    let url = backend.url("app.db");
    let options = backend.options();
    let mut db = Session::open(&url, &options).await.unwrap();
    insert(&mut db, "good").await;
    let working_copy = db.working_copy();
    db.close().await.unwrap();
    let good = std::fs::read(&working_copy).unwrap();

    let bytes = sqlite_bytes(200);
    backend.raw_put("app.db", bytes[..bytes.len() / 2].to_vec()).await;
    let err = Session::open(&url, &options).await.unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("app.db"), "{err}");
    assert_eq!(std::fs::read(&working_copy).unwrap(), good, "the good copy was kept");

    backend.raw_put("app.db", bytes).await;
    let db = Session::open(&url, &options).await.unwrap();
    let n: i64 = db
        .connection()
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 200);
}

async fn a_corrupted_page_is_caught_before_use(backend: Backend) {
    let mut bytes = sqlite_bytes(200);
    // Scribble over the second page (the table's b-tree root); the header
    // stays intact, so only SQLite's own check can tell.
    let page = u16::from_be_bytes([bytes[16], bytes[17]]) as usize;
    bytes[page..page + 64].fill(0xAB);
    backend.raw_put("app.db", bytes).await;
    let err = Session::open(&backend.url("app.db"), &backend.options())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
}

async fn changes_of_a_dropped_session_are_published_by_the_next_open(backend: Backend) {
    let url = backend.url("app.db");
    let options = backend.options();
    let mut db = Session::open(&url, &options).await.unwrap();
    insert(&mut db, "published").await;
    db.connection()
        .execute("INSERT INTO notes VALUES ('pending')", [])
        .unwrap();
    drop(db); // as if the process ended before publishing

    let before = backend.raw_get("app.db").await.unwrap();
    assert_eq!(count_rows(&before, "notes"), 1, "not published by the drop");

    let db = Session::open(&url, &options).await.unwrap();
    assert_eq!(notes(&db), ["published", "pending"]);
    assert_eq!(count_rows(&backend.raw_get("app.db").await.unwrap(), "notes"), 2);
    assert!(!db.has_unpublished_changes().unwrap());
}

async fn changes_that_can_no_longer_be_published_are_reported_and_kept(backend: Backend) {
    let url = backend.url("app.db");
    let options = backend.options();
    let mut db = Session::open(&url, &options).await.unwrap();
    insert(&mut db, "base").await;
    db.connection()
        .execute("INSERT INTO notes VALUES ('pending')", [])
        .unwrap();
    let working_copy = db.working_copy();
    drop(db);

    let mut other = Session::open(&url, &backend.options()).await.unwrap();
    insert(&mut other, "someone else").await;
    let remote = backend.raw_get("app.db").await.unwrap();

    for _ in 0..2 {
        let err = Session::open(&url, &options).await.unwrap_err();
        match &err {
            Error::UnpublishedChanges { path, .. } => assert_eq!(path, &working_copy),
            other => panic!("expected UnpublishedChanges, got {other}"),
        }
        assert!(err.to_string().contains("--discard-pending"), "{err}");
        assert_eq!(backend.raw_get("app.db").await.unwrap(), remote, "remote untouched");
        let kept = rusqlite::Connection::open(&working_copy).unwrap();
        let n: i64 = kept
            .query_row("SELECT count(*) FROM notes WHERE v = 'pending'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1, "the pending change is kept");
    }
}

async fn discarding_pending_changes_moves_them_aside(backend: Backend) {
    let url = backend.url("app.db");
    let cache = backend.fresh_cache();
    let options = backend.options().cache_dir(&cache);
    let mut db = Session::open(&url, &options).await.unwrap();
    insert(&mut db, "base").await;
    db.connection()
        .execute("INSERT INTO notes VALUES ('pending')", [])
        .unwrap();
    drop(db);
    let mut other = Session::open(&url, &backend.options()).await.unwrap();
    insert(&mut other, "someone else").await;

    let discard = options.clone().pending_changes(PendingChanges::Discard);
    let db = Session::open(&url, &discard).await.unwrap();
    assert_eq!(notes(&db), ["base", "someone else"]);
    let rescued: Vec<_> = std::fs::read_dir(db.working_copy().parent().unwrap().parent().unwrap().join("rescued"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(rescued.len(), 1);
    let kept = rusqlite::Connection::open(&rescued[0]).unwrap();
    let n: i64 = kept
        .query_row("SELECT count(*) FROM notes WHERE v = 'pending'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

async fn two_sessions_sharing_a_cache_directory_use_separate_copies(backend: Backend) {
    let url = backend.url("app.db");
    let options = backend.options();
    let mut a = Session::open(&url, &options).await.unwrap();
    let mut b = Session::open(&url, &options).await.unwrap();
    assert_ne!(a.working_copy(), b.working_copy());
    insert(&mut a, "from a").await;
    insert(&mut b, "from b").await; // conflicts once, re-runs on the newest version
    a.close().await.unwrap();
    b.close().await.unwrap();
    let fresh = Session::open(&url, &backend.options()).await.unwrap();
    assert_eq!(notes(&fresh), ["from a", "from b"]);
}

async fn refresh_downloads_only_when_the_remote_changed(backend: Backend) {
    let url = backend.url("app.db");
    let mut reader = Session::open(&url, &backend.options()).await.unwrap();
    assert_eq!(reader.refresh().await.unwrap(), RefreshOutcome::Absent);
    let mut writer = Session::open(&url, &backend.options()).await.unwrap();
    insert(&mut writer, "v1").await;
    assert!(matches!(
        reader.refresh().await.unwrap(),
        RefreshOutcome::Downloaded { .. }
    ));
    assert_eq!(reader.refresh().await.unwrap(), RefreshOutcome::Unchanged);
    assert_eq!(notes(&reader), ["v1"]);

    reader
        .connection()
        .execute("INSERT INTO notes VALUES ('local')", [])
        .unwrap();
    let err = reader.refresh().await.unwrap_err();
    assert!(matches!(err, Error::InvalidState(_)), "{err}");
    assert_eq!(notes(&reader), ["v1", "local"], "refresh never drops local changes");
}

#[tokio::test]
async fn a_malformed_url_is_reported() {
    let err = Session::open("s3://Not_A_Bucket/app.db", &Options::new())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err}");
    let err = Session::open("postgres://x/y", &Options::new()).await.unwrap_err();
    assert!(matches!(err, Error::InvalidUrl { .. }), "{err}");
}

async fn sync_publishes_then_pulls(backend: Backend) {
    let url = backend.url("app.db");
    let mut a = Session::open(&url, &backend.options()).await.unwrap();
    insert(&mut a, "a1").await;
    let mut b = Session::open(&url, &backend.options()).await.unwrap();
    b.connection().execute("INSERT INTO notes VALUES ('b1')", []).unwrap();
    let (published, refreshed) = b.sync().await.unwrap();
    assert!(matches!(published, PublishOutcome::Published { .. }));
    assert_eq!(refreshed, RefreshOutcome::Unchanged);
    let (published, refreshed) = a.sync().await.unwrap();
    assert_eq!(published, PublishOutcome::Unchanged);
    assert!(matches!(refreshed, RefreshOutcome::Downloaded { .. }));
    assert_eq!(notes(&a), ["a1", "b1"]);
}
