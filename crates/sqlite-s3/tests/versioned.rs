//! What only the versioned layout does, on every store: corruption of
//! each kind of object (chunks, manifests), and the requests and bytes a
//! change, a cold open and the chunk cache cost. What it shares with the
//! single-object layout (round trips, detection, conflicts, racing
//! commits, warm sessions) runs in both layouts in `behaviour.rs`.

use sqlite_s3::{Error, LayoutKind, Options, RefreshOutcome, Session};
use test_support::on_every_store;
use test_support::stores::{Backend, Kind};

const MIB: u64 = 1 << 20;

fn versioned(backend: &Backend) -> Options {
    backend.options().layout(LayoutKind::Versioned)
}

/// Fills table `t` with `rows` rows of 1000 random bytes (about 1 MiB per
/// 1000 rows).
async fn fill(session: &mut Session, rows: u32) {
    session
        .transaction(move |tx| {
            tx.execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v BLOB);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {rows})
                 INSERT INTO t(v) SELECT randomblob(1000) FROM n;"
            ))?;
            Ok(())
        })
        .await
        .unwrap();
}

fn count(session: &Session) -> i64 {
    session
        .connection()
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap()
}

fn manifest_key(n: u64) -> String {
    format!("app.db.sqlite-s3/manifests/{n:020}")
}

on_every_store!(
    a_one_row_write_uploads_one_chunk_and_a_reader_downloads_one,
    a_corrupted_chunk_is_caught_and_never_installed,
    a_missing_chunk_or_a_bad_manifest_is_named,
    a_database_copied_to_another_key_takes_new_versions,
);

async fn a_one_row_write_uploads_one_chunk_and_a_reader_downloads_one(backend: Backend) {
    // About 8 MiB on memory and local directories, 4 MiB on S3.
    let rows = if backend.kind == Kind::S3 { 4000 } else { 8000 };
    let url = backend.url("app.db");
    let mut seed = Session::open(&url, &versioned(&backend)).await.unwrap();
    fill(&mut seed, rows).await;
    seed.close().await.unwrap();

    let reader_options = backend.options();
    let (reader_remote, reader_counter) = backend.counted("app.db");
    Session::open_remote(reader_remote.clone(), &reader_options)
        .await
        .unwrap()
        .close()
        .await
        .unwrap();

    let writer_options = backend.options();
    let (remote, counter) = backend.counted("app.db");
    Session::open_remote(remote.clone(), &writer_options)
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    counter.reset();
    let mut db = Session::open_remote(remote, &writer_options).await.unwrap();
    db.transaction(|tx| Ok(tx.execute("UPDATE t SET v = x'00' WHERE id = 1234", [])?))
        .await
        .unwrap();
    db.close().await.unwrap();
    let c = counter.counts();
    // GET of the next manifest (404); PUT of two chunks (the row's and the
    // header's) and of manifest 2.
    assert!(c.requests <= 4, "{c:?}");
    assert_eq!(c.puts, 3, "{c:?}");
    assert!(c.bytes_up < 2 * MIB, "{c:?}");

    reader_counter.reset();
    let mut reader = Session::open_remote(reader_remote, &reader_options).await.unwrap();
    let gone: i64 = reader
        .connection()
        .query_row("SELECT length(v) FROM t WHERE id = 1234", [], |r| r.get(0))
        .unwrap();
    assert_eq!(gone, 1);
    let c = reader_counter.counts();
    assert!(c.bytes_down < 2 * MIB, "{c:?}");
    // The next manifest, the one after (404), two chunks.
    assert!(c.requests <= 4, "{c:?}");
    assert_eq!(reader.refresh().await.unwrap(), RefreshOutcome::Unchanged);
}

async fn a_corrupted_chunk_is_caught_and_never_installed(backend: Backend) {
    let url = backend.url("app.db");
    let options = backend.options();
    let mut a = Session::open(&url, &versioned(&backend)).await.unwrap();
    fill(&mut a, 100).await;
    let mut reader = Session::open(&url, &options).await.unwrap();
    let working_copy = reader.working_copy();
    let before = std::fs::read(&working_copy).unwrap();
    fill(&mut a, 100).await;

    // Every chunk of the new version is replaced with another chunk's bytes.
    let junk = zstd::bulk::compress(b"not the bytes you hashed", 3).unwrap();
    for name in backend.raw_list("app.db.sqlite-s3/chunks").await {
        backend.raw_put(&name, junk.clone()).await;
    }
    let err = reader.refresh().await.unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(
        err.to_string().contains("app.db.sqlite-s3/chunks/"),
        "names the object: {err}"
    );
    assert_eq!(
        std::fs::read(&working_copy).unwrap(),
        before,
        "the working copy was kept"
    );
    assert_eq!(count(&reader), 100);
}

async fn a_missing_chunk_or_a_bad_manifest_is_named(backend: Backend) {
    // A chunk deleted by hand: a cold open says which.
    let gone = backend.url("gone.db");
    let mut db = Session::open(&gone, &versioned(&backend)).await.unwrap();
    fill(&mut db, 100).await;
    db.close().await.unwrap();
    let chunks = backend.raw_list("gone.db.sqlite-s3/chunks").await;
    backend.raw_delete(&chunks[0]).await;
    let err = Session::open(&gone, &backend.options()).await.unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains(&chunks[0]), "{err}");

    let url = backend.url("app.db");
    let mut a = Session::open(&url, &versioned(&backend)).await.unwrap();
    fill(&mut a, 100).await;
    a.close().await.unwrap();
    backend.raw_put(&manifest_key(2), b"not a manifest".to_vec()).await;
    let err = Session::open(&url, &backend.options()).await.unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains(&manifest_key(2)), "{err}");
}

#[tokio::test]
async fn a_cold_open_finds_the_newest_of_many_versions_in_few_requests() {
    let backend = Backend::new(Kind::Memory).unwrap();
    let url = backend.url("app.db");
    let mut db = Session::open(&url, &versioned(&backend)).await.unwrap();
    for _ in 0..30 {
        fill(&mut db, 1).await;
    }
    db.close().await.unwrap();
    let (remote, counter) = backend.counted("app.db");
    let cold = Session::open_remote(remote, &backend.options()).await.unwrap();
    assert_eq!(count(&cold), 30);
    assert_eq!(cold.version(), Some(sqlite_s3::Version::Numbered(30)));
    // The single-object probe and the bucket check, the hint (24), manifests
    // 24 to 31, one chunk.
    let c = counter.counts();
    assert!(c.requests <= 2 + 1 + 8 + 1 + 1, "{c:?}");
}

#[tokio::test]
async fn a_64_mib_database_costs_what_changed() {
    let backend = Backend::new(Kind::Memory).unwrap();
    let url = backend.url("app.db");
    let mut seed = Session::open(&url, &versioned(&backend)).await.unwrap();
    fill(&mut seed, 70_000).await;
    seed.close().await.unwrap();

    let options = backend.options();
    let (remote, counter) = backend.counted("app.db");
    let cold = Session::open_remote(remote.clone(), &options).await.unwrap();
    assert!(std::fs::metadata(cold.working_copy()).unwrap().len() > 64 * MIB);
    cold.close().await.unwrap();

    counter.reset();
    let warm = Session::open_remote(remote.clone(), &options).await.unwrap();
    warm.close().await.unwrap();
    let c = counter.counts();
    assert_eq!((c.requests, c.bytes_down), (1, 0), "warm read-only: {c:?}");

    counter.reset();
    let mut db = Session::open_remote(remote, &options).await.unwrap();
    db.transaction(|tx| Ok(tx.execute("UPDATE t SET v = x'01' WHERE id = 33333", [])?))
        .await
        .unwrap();
    db.close().await.unwrap();
    let c = counter.counts();
    assert!(c.requests <= 4 && c.bytes_up < 2 * MIB, "one-row write: {c:?}");
}

#[tokio::test]
async fn chunks_seen_before_are_not_downloaded_again_and_the_cache_is_capped() {
    use sqlite_s3::history::{self, RestorePoint};
    let backend = Backend::new(Kind::Memory).unwrap();
    let url = backend.url("app.db");
    let mut writer = Session::open(&url, &versioned(&backend)).await.unwrap();
    fill(&mut writer, 2000).await;

    let cache_dir = backend.fresh_cache();
    let reader = backend.options().cache_dir(cache_dir.clone());
    let (remote, counter) = backend.counted("app.db");
    Session::open_remote(remote.clone(), &reader)
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    writer
        .transaction(|tx| Ok(tx.execute("UPDATE t SET v = x'00' WHERE id = 1500", [])?))
        .await
        .unwrap();
    Session::open_remote(remote.clone(), &reader)
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    history::restore(&remote, RestorePoint::Version(1)).await.unwrap();

    // Back to version 1: the chunk it needs was downloaded before.
    counter.reset();
    let session = Session::open_remote(remote.clone(), &reader).await.unwrap();
    assert_eq!(count(&session), 2000);
    let restored: i64 = session
        .connection()
        .query_row("SELECT length(v) FROM t WHERE id = 1500", [], |r| r.get(0))
        .unwrap();
    assert_eq!(restored, 1000, "back to version 1");
    session.close().await.unwrap();
    let c = counter.counts();
    // The new manifest and the probe after it; every chunk came from the cache.
    assert_eq!((c.gets, c.bytes_down < 64 << 10), (2, true), "{c:?}");

    // A branch opened in the same cache directory shares its chunks.
    let (branch, branch_counter) = backend.counted("branch.db");
    history::branch(&remote, &branch, Some(2)).await.unwrap();
    branch_counter.reset();
    let session = Session::open_remote(branch, &reader).await.unwrap();
    assert_eq!(count(&session), 2000);
    session.close().await.unwrap();
    let c = branch_counter.counts();
    assert!(c.bytes_down < 64 << 10, "branch opened from the cache: {c:?}");

    // The cap holds: a cold open of a 2 MiB database keeps at most 300 KiB.
    let small_dir = backend.fresh_cache();
    let capped = backend
        .options()
        .cache_dir(small_dir.clone())
        .chunk_cache_bytes(300 << 10);
    Session::open(&url, &capped).await.unwrap().close().await.unwrap();
    let held = dir_size(&small_dir.join("chunks"));
    assert!(held > 0 && held <= 300 << 10, "{held}");
    let full = dir_size(&cache_dir.join("chunks"));
    assert!(full > 2 << 20, "uncapped cache holds the database: {full}");
}

/// The bytes of the files in `dir`.
fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

/// Every object of a versioned database copied to another key (by a tool,
/// not by `branch`): its manifests name the old key's chunk home only. The
/// copy reads its chunks there, and its commits put new chunks in its own
/// home, which the manifest then lists too; the original is untouched.
async fn a_database_copied_to_another_key_takes_new_versions(backend: Backend) {
    use futures::TryStreamExt;
    let url = backend.url("a.db");
    let mut a = Session::open(&url, &versioned(&backend)).await.unwrap();
    fill(&mut a, 300).await;
    a.close().await.unwrap();
    let (store, _) = backend.raw("a.db");
    let listed: Vec<_> = store
        .list(Some(&object_store::path::Path::from("a.db.sqlite-s3")))
        .try_collect()
        .await
        .unwrap();
    assert!(listed.len() > 2, "{listed:?}");
    for meta in listed {
        use object_store::ObjectStoreExt;
        let bytes = store.get(&meta.location).await.unwrap().bytes().await.unwrap();
        let copied = meta
            .location
            .to_string()
            .replacen("a.db.sqlite-s3/", "b.db.sqlite-s3/", 1);
        store.put(&copied.as_str().into(), bytes.into()).await.unwrap();
    }

    let copy_url = backend.url("b.db");
    let mut b = Session::open(&copy_url, &backend.options()).await.unwrap();
    assert_eq!(b.layout(), LayoutKind::Versioned);
    assert_eq!(count(&b), 300);
    fill(&mut b, 300).await;
    b.close().await.unwrap();

    let newest = {
        use object_store::ObjectStoreExt;
        let key = object_store::path::Path::from("b.db.sqlite-s3/manifests/00000000000000000002");
        store.get(&key).await.unwrap().bytes().await.unwrap()
    };
    let manifest: serde_json::Value = serde_json::from_slice(&zstd::stream::decode_all(&newest[..]).unwrap()).unwrap();
    assert_eq!(
        manifest["homes"],
        serde_json::json!(["a.db.sqlite-s3/chunks", "b.db.sqlite-s3/chunks"]),
        "reads the old home, writes its own"
    );
    let fresh = Session::open(&copy_url, &backend.options()).await.unwrap();
    assert_eq!(count(&fresh), 600);
    let check: String = fresh
        .connection()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let original = Session::open(&url, &backend.options()).await.unwrap();
    assert_eq!(count(&original), 300, "the original is untouched");
}
