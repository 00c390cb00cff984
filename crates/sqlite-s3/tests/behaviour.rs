//! Behaviour of sessions, the same on every store (memory, a local
//! directory, moto, SeaweedFS, Azurite) and, but for the few that are about
//! the object being the SQLite file, in both layouts. What only the
//! versioned layout does (chunks, manifests, its costs) is in
//! `versioned.rs`.

use bytes::Bytes;
use sqlite_s3::{Error, LayoutKind, Options, PendingChanges, PublishOutcome, RefreshOutcome, Session, WriteMode};
use test_support::stores::{Backend, Kind, count_rows, sqlite_bytes};
use test_support::{on_every_store, on_every_store_and_layout, on_stores_and_layouts};

on_every_store_and_layout!(
    a_new_database_round_trips_and_its_layout_is_detected,
    a_stale_writer_gets_a_conflict_and_the_remote_is_untouched,
    last_writer_wins_only_when_asked,
    a_warm_read_only_session_sends_one_request_and_downloads_nothing,
    a_read_only_session_never_puts,
    ddl_counts_as_a_change,
    wal_mode_changes_are_published_complete,
    a_sql_error_publishes_nothing,
    a_missing_bucket_is_reported,
    changes_of_a_dropped_session_are_published_by_the_next_open,
    changes_that_can_no_longer_be_published_are_reported_and_kept,
    discarding_pending_changes_moves_them_aside,
    two_sessions_sharing_a_cache_directory_use_separate_copies,
    refresh_downloads_only_when_the_remote_changed,
    sync_publishes_then_pulls,
);

// Forty commits by four racing writers take 5 to 10 s on SeaweedFS and
// Azurite, in each layout: there, processes race through the program
// instead, in both layouts (sqlite-s3-cli's tests/cli.rs).
on_stores_and_layouts!([memory, file, s3] concurrent_commits_each_land_exactly_once);

// The single-object layout only: the object at the key is the SQLite file.
// Their versioned counterparts (a damaged chunk or manifest, what a change
// costs there) are in versioned.rs.
on_every_store!(
    a_database_written_by_another_tool_is_read_as_is,
    a_change_costs_one_conditional_get_and_one_put,
    an_object_that_is_not_sqlite_is_reported,
    a_truncated_download_never_replaces_a_good_copy,
    a_corrupted_page_is_caught_before_use,
);

fn options(backend: &Backend, layout: LayoutKind) -> Options {
    backend.options().layout(layout)
}

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

/// SQL that fills table `t` with `rows` rows of 1000 random bytes (about
/// 1 MiB per 1000 rows: several chunks in the versioned layout).
fn fill(rows: u32) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v BLOB);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
         INSERT INTO t(v) SELECT randomblob(1000) FROM n;"
    )
}

fn count(session: &Session) -> i64 {
    session
        .connection()
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap()
}

fn integrity(session: &Session) -> String {
    session
        .connection()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

fn manifest_key(n: u64) -> String {
    format!("app.db.sqlite-s3/manifests/{n:020}")
}

/// `SELECT count(*) FROM {what}` in the newest version of `app.db`: read
/// past this crate where the object is the SQLite file (single layout),
/// else by a fresh read-only session.
async fn count_in_remote(backend: &Backend, layout: LayoutKind, what: &str) -> i64 {
    match layout {
        LayoutKind::Single => count_rows(&backend.raw_get("app.db").await.expect("published"), what),
        LayoutKind::Versioned => {
            let db = Session::open(&backend.url("app.db"), &backend.options().read_only(true))
                .await
                .unwrap();
            db.connection()
                .query_row(&format!("SELECT count(*) FROM {what}"), [], |r| r.get(0))
                .unwrap()
        }
    }
}

/// The objects that say what the versions of `app.db` are, with their
/// bytes, read past this crate: the object at the key (the database in the
/// single layout, the marker in the versioned layout) and, in the
/// versioned layout, every manifest and record beside them. Chunks are
/// left out: nothing names a chunk that no manifest does.
async fn versions_in_remote(backend: &Backend, layout: LayoutKind) -> Vec<(String, Option<Bytes>)> {
    let mut objects = vec![("app.db".to_string(), backend.raw_get("app.db").await)];
    for key in backend.raw_list("app.db.sqlite-s3").await {
        if !key.starts_with("app.db.sqlite-s3/chunks/") {
            let bytes = backend.raw_get(&key).await;
            objects.push((key, bytes));
        }
    }
    let manifests = objects.iter().filter(|(key, _)| key.contains("/manifests/")).count();
    assert_eq!(
        manifests > 0,
        layout == LayoutKind::Versioned,
        "manifests listed: {manifests}"
    );
    objects
}

async fn a_new_database_round_trips_and_its_layout_is_detected(backend: Backend, layout: LayoutKind) {
    let url = backend.url("app.db");
    let mut db = Session::open(&url, &options(&backend, layout)).await.unwrap();
    assert!(db.version().is_none(), "a new database has no remote version");
    assert_eq!(backend.raw_get("app.db").await, None, "nothing is uploaded at open");
    // One commit: a note, and 3 MiB of rows.
    db.transaction(|tx| {
        tx.execute_batch("CREATE TABLE notes(v TEXT); INSERT INTO notes VALUES ('hello');")?;
        tx.execute_batch(&fill(3000))?;
        Ok(())
    })
    .await
    .unwrap();
    db.close().await.unwrap();

    match layout {
        LayoutKind::Single => {
            let bytes = backend.raw_get("app.db").await.expect("published");
            assert!(bytes.starts_with(b"SQLite format 3\0"));
            assert_eq!(count_rows(&bytes, "notes"), 1);
            assert_eq!(count_rows(&bytes, "t"), 3000);
        }
        LayoutKind::Versioned => {
            let marker = backend.raw_get("app.db").await.expect("a marker at the key");
            assert!(
                marker.starts_with(b"sqlite-s3: this database moved to the versioned layout"),
                "the key holds only the marker that keeps a single-object database from being created there"
            );
            assert!(backend.raw_get(&manifest_key(1)).await.is_some());
            assert!(backend.raw_get(&manifest_key(2)).await.is_none(), "one version");
        }
    }

    // Opened elsewhere with default options: the layout is detected.
    let elsewhere = Session::open(&url, &backend.options()).await.unwrap();
    assert_eq!(elsewhere.layout(), layout);
    assert_eq!(notes(&elsewhere), ["hello"]);
    assert_eq!(count(&elsewhere), 3000);
    assert_eq!(integrity(&elsewhere), "ok");
    match layout {
        LayoutKind::Single => {
            assert!(matches!(elsewhere.version(), Some(sqlite_s3::Version::Object { .. })));
            // The version carries the writer's commit token, so that a
            // retried publish can recognise its own write.
            use object_store::ObjectStoreExt;
            let (store, key) = backend.raw("app.db");
            let got = store.get(&key).await.unwrap();
            let lineage = got
                .attributes
                .get(&object_store::Attribute::Metadata("sqlites3lineage".into()))
                .expect("a lineage");
            assert_eq!(lineage.split(',').count(), 1, "{lineage:?}");
        }
        // The manifest names its writer's token (versioned.rs reads it).
        LayoutKind::Versioned => assert_eq!(elsewhere.version(), Some(sqlite_s3::Version::Numbered(1))),
    }
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

async fn a_stale_writer_gets_a_conflict_and_the_remote_is_untouched(backend: Backend, layout: LayoutKind) {
    let url = backend.url("app.db");
    let mut first = Session::open(&url, &options(&backend, layout)).await.unwrap();
    insert(&mut first, "base").await;

    let mut stale = Session::open(&url, &options(&backend, layout)).await.unwrap();
    insert(&mut first, "newer").await;
    let remote_before = versions_in_remote(&backend, layout).await;

    stale
        .connection()
        .execute("INSERT INTO notes VALUES ('stale')", [])
        .unwrap();
    let err = stale.publish().await.unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err}");
    assert!(err.to_string().contains(&url), "{err}");
    assert_eq!(
        versions_in_remote(&backend, layout).await,
        remote_before,
        "remote untouched: no version was created"
    );

    // The stale writer's change is still in its working copy, not lost.
    assert!(stale.has_unpublished_changes().unwrap());
    assert_eq!(notes(&stale), ["base", "stale"]);
    // Discarding it brings the newest version.
    stale.discard().await.unwrap();
    assert_eq!(notes(&stale), ["base", "newer"]);
    stale.close().await.unwrap();
    let fresh = Session::open(&url, &backend.options()).await.unwrap();
    assert_eq!(notes(&fresh), ["base", "newer"]);
}

async fn last_writer_wins_only_when_asked(backend: Backend, layout: LayoutKind) {
    let url = backend.url("app.db");
    let mut first = Session::open(&url, &options(&backend, layout)).await.unwrap();
    insert(&mut first, "base").await;
    let lww = options(&backend, layout).write_mode(WriteMode::LastWriterWins);
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

async fn a_warm_read_only_session_sends_one_request_and_downloads_nothing(backend: Backend, layout: LayoutKind) {
    let mut seed = Session::open(&backend.url("app.db"), &options(&backend, layout))
        .await
        .unwrap();
    insert(&mut seed, "x").await;
    // About 2 MiB: the cost of a warm session does not grow with the size.
    seed.transaction(|tx| Ok(tx.execute_batch(&fill(2000))?)).await.unwrap();
    seed.close().await.unwrap();

    let options = options(&backend, layout);
    let (remote, counter) = backend.counted("app.db");
    // Cold: downloads the database.
    let cold = Session::open_remote(remote.clone(), &options).await.unwrap();
    assert_eq!(notes(&cold), ["x"]);
    cold.close().await.unwrap();
    let cold_counts = counter.counts();
    assert_eq!(cold_counts.puts, 0, "{cold_counts:?}");
    if layout == LayoutKind::Single {
        assert_eq!(cold_counts.requests, 1, "{cold_counts:?}");
    }
    assert!(cold_counts.bytes_down > 0);

    counter.reset();
    let warm = Session::open_remote(remote, &options).await.unwrap();
    assert_eq!(notes(&warm), ["x"]);
    assert_eq!(count(&warm), 2000);
    warm.close().await.unwrap();
    let counts = counter.counts();
    assert_eq!(counts.requests, 1, "{counts:?}");
    assert_eq!(counts.gets, 1, "{counts:?}");
    assert_eq!(counts.puts, 0, "{counts:?}");
    assert_eq!(counts.bytes_down, 0, "{counts:?}");
}

async fn a_read_only_session_never_puts(backend: Backend, layout: LayoutKind) {
    let mut seed = Session::open(&backend.url("app.db"), &options(&backend, layout))
        .await
        .unwrap();
    insert(&mut seed, "x").await;
    seed.close().await.unwrap();

    let (remote, counter) = backend.counted("app.db");
    let mut db = Session::open_remote(remote, &options(&backend, layout)).await.unwrap();
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

async fn ddl_counts_as_a_change(backend: Backend, layout: LayoutKind) {
    let url = backend.url("app.db");
    let mut db = Session::open(&url, &options(&backend, layout)).await.unwrap();
    db.connection().execute_batch("CREATE TABLE only_ddl(x)").unwrap();
    assert!(matches!(db.publish().await.unwrap(), PublishOutcome::Published { .. }));
    db.connection().execute_batch("CREATE INDEX i ON only_ddl(x)").unwrap();
    db.close().await.unwrap();
    assert_eq!(
        count_in_remote(&backend, layout, "sqlite_schema WHERE name = 'i'").await,
        1
    );
}

async fn wal_mode_changes_are_published_complete(backend: Backend, layout: LayoutKind) {
    let url = backend.url("app.db");
    let mut db = Session::open(&url, &options(&backend, layout)).await.unwrap();
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

async fn a_sql_error_publishes_nothing(backend: Backend, layout: LayoutKind) {
    let mut seed = Session::open(&backend.url("app.db"), &options(&backend, layout))
        .await
        .unwrap();
    insert(&mut seed, "x").await;
    seed.close().await.unwrap();

    let (remote, counter) = backend.counted("app.db");
    let mut db = Session::open_remote(remote, &options(&backend, layout)).await.unwrap();
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

async fn a_missing_bucket_is_reported(backend: Backend, layout: LayoutKind) {
    let Some(url) = backend.missing_bucket_url() else {
        return;
    };
    let err = Session::open(&url, &options(&backend, layout)).await.unwrap_err();
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

async fn changes_of_a_dropped_session_are_published_by_the_next_open(backend: Backend, layout: LayoutKind) {
    let url = backend.url("app.db");
    let options = options(&backend, layout);
    let mut db = Session::open(&url, &options).await.unwrap();
    insert(&mut db, "published").await;
    db.connection()
        .execute("INSERT INTO notes VALUES ('pending')", [])
        .unwrap();
    drop(db); // as if the process ended before publishing

    assert_eq!(
        count_in_remote(&backend, layout, "notes").await,
        1,
        "not published by the drop"
    );

    let db = Session::open(&url, &options).await.unwrap();
    assert_eq!(notes(&db), ["published", "pending"]);
    assert_eq!(count_in_remote(&backend, layout, "notes").await, 2);
    assert!(!db.has_unpublished_changes().unwrap());
}

async fn changes_that_can_no_longer_be_published_are_reported_and_kept(backend: Backend, layout: LayoutKind) {
    let url = backend.url("app.db");
    let options = options(&backend, layout);
    let mut db = Session::open(&url, &options).await.unwrap();
    insert(&mut db, "base").await;
    db.connection()
        .execute("INSERT INTO notes VALUES ('pending')", [])
        .unwrap();
    let working_copy = db.working_copy();
    drop(db);

    let mut other = Session::open(&url, &backend.options()).await.unwrap();
    insert(&mut other, "someone else").await;
    let remote = versions_in_remote(&backend, layout).await;

    for _ in 0..2 {
        let err = Session::open(&url, &options).await.unwrap_err();
        match &err {
            Error::UnpublishedChanges { path, .. } => assert_eq!(path, &working_copy),
            other => panic!("expected UnpublishedChanges, got {other}"),
        }
        assert!(err.to_string().contains("--discard-pending"), "{err}");
        assert_eq!(versions_in_remote(&backend, layout).await, remote, "remote untouched");
        let kept = rusqlite::Connection::open(&working_copy).unwrap();
        let n: i64 = kept
            .query_row("SELECT count(*) FROM notes WHERE v = 'pending'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1, "the pending change is kept");
    }
}

async fn discarding_pending_changes_moves_them_aside(backend: Backend, layout: LayoutKind) {
    let url = backend.url("app.db");
    let cache = backend.fresh_cache();
    let options = options(&backend, layout).cache_dir(&cache);
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

async fn two_sessions_sharing_a_cache_directory_use_separate_copies(backend: Backend, layout: LayoutKind) {
    let url = backend.url("app.db");
    let options = options(&backend, layout);
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

async fn refresh_downloads_only_when_the_remote_changed(backend: Backend, layout: LayoutKind) {
    let url = backend.url("app.db");
    let mut reader = Session::open(&url, &options(&backend, layout)).await.unwrap();
    assert_eq!(reader.refresh().await.unwrap(), RefreshOutcome::Absent);
    let mut writer = Session::open(&url, &options(&backend, layout)).await.unwrap();
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
    assert!(matches!(err, Error::Misuse { .. }), "{err}");
    assert_eq!(err.kind(), sqlite_s3::ErrorKind::Usage);
    assert!(err.to_string().contains("unpublished changes"), "{err}");
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

async fn sync_publishes_then_pulls(backend: Backend, layout: LayoutKind) {
    let url = backend.url("app.db");
    let mut a = Session::open(&url, &options(&backend, layout)).await.unwrap();
    insert(&mut a, "a1").await;
    let mut b = Session::open(&url, &options(&backend, layout)).await.unwrap();
    b.connection().execute("INSERT INTO notes VALUES ('b1')", []).unwrap();
    let (published, refreshed) = b.sync().await.unwrap();
    assert!(matches!(published, PublishOutcome::Published { .. }));
    assert_eq!(refreshed, RefreshOutcome::Unchanged);
    let (published, refreshed) = a.sync().await.unwrap();
    assert_eq!(published, PublishOutcome::Unchanged);
    assert!(matches!(refreshed, RefreshOutcome::Downloaded { .. }));
    assert_eq!(notes(&a), ["a1", "b1"]);
}

/// A read-only session whose connection committed refuses to publish:
/// misuse, and nothing is sent.
#[tokio::test]
async fn a_read_only_session_holding_changes_refuses_to_publish() {
    let backend = Backend::new(Kind::Memory).unwrap();
    let url = backend.url("app.db");
    let mut writer = Session::open(&url, &backend.options()).await.unwrap();
    insert(&mut writer, "v1").await;
    writer.close().await.unwrap();
    let mut reader = Session::open(&url, &backend.options().read_only(true)).await.unwrap();
    reader
        .connection()
        .execute("INSERT INTO notes VALUES ('local')", [])
        .unwrap();
    let err = reader.publish().await.unwrap_err();
    assert!(matches!(err, Error::Misuse { .. }), "{err}");
    assert!(err.to_string().contains("read-only"), "{err}");
    let fresh = Session::open(&url, &backend.options()).await.unwrap();
    assert_eq!(notes(&fresh), ["v1"], "nothing was sent");
}

async fn concurrent_commits_each_land_exactly_once(backend: Backend, layout: LayoutKind) {
    let url = backend.url("app.db");
    let mut seed = Session::open(&url, &options(&backend, layout)).await.unwrap();
    seed.transaction(|tx| Ok(tx.execute_batch("CREATE TABLE c(n INTEGER); INSERT INTO c VALUES (0)")?))
        .await
        .unwrap();
    seed.close().await.unwrap();
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (url, options) = (url.clone(), options(&backend, layout).max_attempts(100));
            std::thread::spawn(move || {
                for _ in 0..10 {
                    let mut db = sqlite_s3::blocking::Session::open(&url, &options).unwrap();
                    db.transaction(|tx| Ok(tx.execute("UPDATE c SET n = n + 1", [])?))
                        .unwrap();
                    db.close().unwrap();
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let db = Session::open(&url, &backend.options()).await.unwrap();
    let n: i64 = db.connection().query_row("SELECT n FROM c", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 40);
    if layout == LayoutKind::Versioned {
        assert!(
            backend.raw_get(&manifest_key(41)).await.is_some(),
            "one version per commit"
        );
        assert!(backend.raw_get(&manifest_key(42)).await.is_none());
    }
}
