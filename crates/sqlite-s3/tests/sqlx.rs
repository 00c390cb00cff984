//! The sqlx adapter: a pool on the working copy, published while its
//! connections are open and busy.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use sqlite_s3::adapters::sqlx::pool;
use sqlite_s3::{Database, PublishOutcome, RefreshOutcome, Session, Target};
use sqlx::{Row, SqlitePool};
use test_support::on_every_store;
use test_support::stores::{Backend, Kind};

on_every_store!(
    a_pool_writes_and_another_machine_reads_it_back,
    publishing_while_the_pool_is_busy_holds_exactly_the_committed_rows,
    a_refresh_shows_in_the_pool,
    a_conflict_leaves_the_pool_usable_after_discard,
    writes_from_two_machines_each_land_exactly_once,
    changes_outside_write_that_conflict_are_reported_and_dropped,
);

async fn count(pool: &SqlitePool) -> i64 {
    sqlx::query("SELECT count(*) FROM t")
        .fetch_one(pool)
        .await
        .unwrap()
        .get(0)
}

/// Opens the database on a fresh cache directory with plain rusqlite and
/// returns its row count and integrity check.
async fn read_elsewhere(backend: &Backend, url: &str) -> (i64, String) {
    let db = Session::open(url, &backend.options()).await.unwrap();
    let conn = db.connection();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    let n = conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
    db.close().await.unwrap();
    (n, check)
}

async fn a_pool_writes_and_another_machine_reads_it_back(backend: Backend) {
    let url = backend.url("app.db");
    let db = Database::open(&url, &backend.options()).await.unwrap();
    let pool = pool(&db).await.unwrap();
    sqlx::query("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    for name in ["ada", "grace"] {
        sqlx::query("INSERT INTO t(name) VALUES (?)")
            .bind(name)
            .execute(&pool)
            .await
            .unwrap();
    }
    assert!(matches!(db.publish().await.unwrap(), PublishOutcome::Published { .. }));
    assert_eq!(db.publish().await.unwrap(), PublishOutcome::Unchanged);
    pool.close().await;
    db.close().await.unwrap();

    // Another machine (cache directory), through sqlx again.
    let elsewhere = Database::open(&url, &backend.options()).await.unwrap();
    let pool = pool_of(&elsewhere).await;
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM t ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(names, ["ada", "grace"]);
    pool.close().await;
    elsewhere.close().await.unwrap();
}

/// A database with table `t` open on a pool, and then, published by
/// another writer, the row 'theirs', which the pool's copy lacks.
async fn stale_after_their_insert(backend: &Backend) -> (String, Database, SqlitePool) {
    let url = backend.url("app.db");
    let db = Database::open(&url, &backend.options()).await.unwrap();
    let pool = pool_of(&db).await;
    sqlx::query("CREATE TABLE t(x)").execute(&pool).await.unwrap();
    db.publish().await.unwrap();
    let mut other = Session::open(&url, &backend.options()).await.unwrap();
    other
        .transaction(|tx| Ok(tx.execute("INSERT INTO t VALUES ('theirs')", []).map(|_| ())?))
        .await
        .unwrap();
    other.close().await.unwrap();
    (url, db, pool)
}

async fn pool_of(db: &Database) -> SqlitePool {
    pool(db).await.unwrap()
}

async fn publishing_while_the_pool_is_busy_holds_exactly_the_committed_rows(backend: Backend) {
    let url = backend.url("app.db");
    let db = Arc::new(Database::open(&url, &backend.options()).await.unwrap());
    let pool = pool_of(&db).await;
    sqlx::query("CREATE TABLE t(x INTEGER NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();

    // A write transaction left open on one connection is not published
    // (SQLite lets it hold off other writers, so it goes first).
    let mut open_tx = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO t VALUES (-1)")
        .execute(&mut *open_tx)
        .await
        .unwrap();
    db.publish().await.unwrap();
    assert_eq!(read_elsewhere(&backend, &url).await, (0, "ok".into()));
    open_tx.commit().await.unwrap();
    let committed_first = 1;

    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicI64::new(0));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (pool, stop, committed) = (pool.clone(), stop.clone(), committed.clone());
            tokio::spawn(async move {
                let mut i = 0i64;
                while !stop.load(Ordering::SeqCst) {
                    // Two rows per transaction: a torn snapshot would show
                    // an odd count.
                    let mut tx = pool.begin().await.unwrap();
                    for sign in [1, -1] {
                        sqlx::query("INSERT INTO t VALUES (?)")
                            .bind(sign * (w * 1_000_000 + i + 2))
                            .execute(&mut *tx)
                            .await
                            .unwrap();
                    }
                    tx.commit().await.unwrap();
                    committed.fetch_add(2, Ordering::SeqCst);
                    i += 1;
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    let mut published = 0;
    for _ in 0..100_000 {
        if published == 4 {
            break;
        }
        if let PublishOutcome::Published { .. } = db.publish().await.unwrap() {
            published += 1;
            let (n, check) = read_elsewhere(&backend, &url).await;
            assert_eq!(check, "ok");
            assert_eq!((n - committed_first) % 2, 0, "a transaction was torn");
        } else {
            tokio::task::yield_now().await;
        }
    }
    assert_eq!(published, 4, "the writers made no progress");
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.await.unwrap();
    }
    db.publish().await.unwrap();
    let (n, check) = read_elsewhere(&backend, &url).await;
    let expected = committed_first + committed.load(Ordering::SeqCst);
    assert_eq!((n, check.as_str()), (expected, "ok"));
    pool.close().await;
    Arc::into_inner(db).unwrap().close().await.unwrap();
}

async fn a_refresh_shows_in_the_pool(backend: Backend) {
    let url = backend.url("app.db");
    let db = Database::open(&url, &backend.options()).await.unwrap();
    let pool = pool_of(&db).await;
    sqlx::query("CREATE TABLE t(x)").execute(&pool).await.unwrap();
    db.publish().await.unwrap();
    // Keep every connection of the pool busy reading while the refresh
    // writes the new version in.
    assert_eq!(count(&pool).await, 0);

    let mut other = Session::open(&url, &backend.options()).await.unwrap();
    other
        .transaction(|tx| Ok(tx.execute("INSERT INTO t VALUES (1)", []).map(|_| ())?))
        .await
        .unwrap();
    other.close().await.unwrap();

    assert!(matches!(db.refresh().await.unwrap(), RefreshOutcome::Downloaded { .. }));
    assert_eq!(count(&pool).await, 1);
    assert_eq!(db.refresh().await.unwrap(), RefreshOutcome::Unchanged);
    assert_eq!(db.publish().await.unwrap(), PublishOutcome::Unchanged);
    pool.close().await;
    db.close().await.unwrap();
}

async fn a_conflict_leaves_the_pool_usable_after_discard(backend: Backend) {
    let (url, db, pool) = stale_after_their_insert(&backend).await;

    sqlx::query("INSERT INTO t VALUES ('mine')")
        .execute(&pool)
        .await
        .unwrap();
    let err = db.publish().await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert!(db.has_unpublished_changes().await.unwrap());
    db.discard().await.unwrap();
    let rows: Vec<String> = sqlx::query_scalar("SELECT x FROM t").fetch_all(&pool).await.unwrap();
    assert_eq!(rows, ["theirs"]);
    sqlx::query("INSERT INTO t VALUES ('mine again')")
        .execute(&pool)
        .await
        .unwrap();
    db.publish().await.unwrap();
    assert_eq!(read_elsewhere(&backend, &url).await.0, 2);
    pool.close().await;
    db.close().await.unwrap();
}

#[tokio::test]
async fn a_plain_path_is_an_ordinary_file_with_no_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("local.db");
    let value = format!("sqlite://{}?mode=rwc", path.display());
    let db = Database::open(&value, &sqlite_s3::Options::new()).await.unwrap();
    assert_eq!(db.target(), &Target::Local(path.clone()));
    assert_eq!(db.path(), path);
    let pool = pool_of(&db).await;
    sqlx::query("CREATE TABLE t(x); INSERT INTO t VALUES (1)")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(db.publish().await.unwrap(), PublishOutcome::Unchanged);
    assert_eq!(db.refresh().await.unwrap(), RefreshOutcome::Unchanged);
    pool.close().await;
    db.close().await.unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    assert_eq!(
        conn.query_row("SELECT x FROM t", [], |r| r.get::<_, i64>(0)).unwrap(),
        1
    );
}

#[tokio::test]
async fn database_url_from_the_environment_picks_file_or_bucket() {
    let backend = Backend::new(Kind::File).unwrap();
    let url = backend.url("env.db");
    // A variable of this test's own: tests run in parallel.
    // SAFETY: no other thread reads or writes this variable.
    unsafe { std::env::set_var("SQLITE_S3_TEST_SQLX_URL", &url) };
    let db = Database::from_env("SQLITE_S3_TEST_SQLX_URL", &backend.options())
        .await
        .unwrap();
    assert_eq!(db.url().map(|u| u.to_string()), Some(url));
    db.close().await.unwrap();
    let err = Database::from_env("SQLITE_S3_TEST_SQLX_UNSET", &backend.options())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("SQLITE_S3_TEST_SQLX_UNSET is not set"),
        "{err}"
    );
}

async fn counter(pool: &SqlitePool) -> i64 {
    sqlx::query_scalar("SELECT n FROM counter")
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn writes_from_two_machines_each_land_exactly_once(backend: Backend) {
    let url = backend.url("app.db");
    let options = backend.options().max_attempts(50);
    let seed = Database::open(&url, &options).await.unwrap();
    let pool = pool_of(&seed).await;
    seed.write(|| async {
        sqlx::query("CREATE TABLE counter(n INTEGER NOT NULL); INSERT INTO counter VALUES (0)")
            .execute(&pool)
            .await
            .map_err(sqlite_s3::Error::abort)?;
        Ok(())
    })
    .await
    .unwrap();
    pool.close().await;
    seed.close().await.unwrap();

    let machine = |options: sqlite_s3::Options| {
        let url = url.clone();
        tokio::spawn(async move {
            let db = Database::open(&url, &options).await.unwrap();
            let pool = pool_of(&db).await;
            let mut runs = 0;
            for _ in 0..10 {
                db.write(|| {
                    runs += 1;
                    let pool = pool.clone();
                    async move {
                        let n = counter(&pool).await;
                        tokio::task::yield_now().await;
                        sqlx::query("UPDATE counter SET n = ?")
                            .bind(n + 1)
                            .execute(&pool)
                            .await
                            .map_err(sqlite_s3::Error::abort)?;
                        Ok(())
                    }
                })
                .await
                .unwrap();
            }
            pool.close().await;
            db.close().await.unwrap();
            runs
        })
    };
    let a = machine(backend.options().max_attempts(50));
    let b = machine(backend.options().max_attempts(50));
    let runs = a.await.unwrap() + b.await.unwrap();
    assert!(runs >= 20);

    let db = Database::open(&url, &backend.options()).await.unwrap();
    let pool = pool_of(&db).await;
    assert_eq!(counter(&pool).await, 20, "after {runs} runs");
    pool.close().await;
    db.close().await.unwrap();
}

async fn changes_outside_write_that_conflict_are_reported_and_dropped(backend: Backend) {
    let (_, db, pool) = stale_after_their_insert(&backend).await;

    // Committed through the pool, outside any write, on a stale copy.
    sqlx::query("INSERT INTO t VALUES ('stray')")
        .execute(&pool)
        .await
        .unwrap();
    let ran = std::sync::atomic::AtomicBool::new(false);
    let err = db
        .write(|| async {
            ran.store(true, Ordering::SeqCst);
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert!(
        !ran.load(Ordering::SeqCst),
        "the work does not run on top of a conflict"
    );
    assert!(!db.has_unpublished_changes().await.unwrap());
    // The next write runs on the newest version.
    db.write(|| async {
        sqlx::query("INSERT INTO t VALUES ('mine')")
            .execute(&pool)
            .await
            .map_err(sqlite_s3::Error::abort)?;
        Ok(())
    })
    .await
    .unwrap();
    let rows: Vec<String> = sqlx::query_scalar("SELECT x FROM t ORDER BY rowid")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(rows, ["theirs", "mine"]);
    pool.close().await;
    db.close().await.unwrap();
}
