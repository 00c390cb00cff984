//! A damaged cache never damages the remote and never blocks recovery: the
//! working copy is evidence, not truth. Every kind of damage, in both
//! layouts and on every store, at rest (the last session closed) and after
//! a crash (the session was dropped), with another cache writing in
//! between: the next run succeeds, the damaged copy is set aside where the
//! warning says, and the remote stays sound and exact.

use std::path::{Path, PathBuf};

use object_store::ObjectStoreExt;
use sqlite_s3::{Error, LayoutKind, Options, PendingChanges, Session};
use test_support::stores::{Backend, Kind};
use test_support::{on_every_store, on_every_store_and_layout};

/// What happens to the working copy (or its state file).
#[derive(Debug, Clone, Copy)]
enum Damage {
    Empty,
    HalfLength,
    /// One page of table data overwritten with garbage.
    GarbagePage,
    /// One bit of a record flipped.
    FlippedBit,
    GarbageHeader,
    /// A journal beside the copy that does not belong to it.
    LeftoverJournal,
    GarbageState,
    EmptyState,
    /// The state file of an older version of the copy.
    StaleState,
}

const AT_REST: [Damage; 9] = [
    Damage::Empty,
    Damage::HalfLength,
    Damage::GarbagePage,
    Damage::FlippedBit,
    Damage::GarbageHeader,
    Damage::LeftoverJournal,
    Damage::GarbageState,
    Damage::EmptyState,
    Damage::StaleState,
];

/// After a crash, any change to the copy may be a commit; only damage
/// SQLite can see is told from one.
const AFTER_A_CRASH: [Damage; 6] = [
    Damage::Empty,
    Damage::HalfLength,
    Damage::GarbagePage,
    Damage::GarbageHeader,
    Damage::GarbageState,
    Damage::EmptyState,
];

fn options(backend: &Backend, layout: LayoutKind, cache: &Path) -> Options {
    backend.options().layout(layout).cache_dir(cache)
}

async fn insert(db: &mut Session, who: &str, n: i64) {
    let who = who.to_string();
    db.transaction(move |tx| {
        tx.execute_batch("CREATE TABLE IF NOT EXISTS t(who TEXT, n INTEGER, pad BLOB)")?;
        tx.execute(
            "INSERT INTO t VALUES (?1, ?2, randomblob(3000))",
            rusqlite::params![who, n],
        )?;
        Ok(())
    })
    .await
    .unwrap();
}

/// The rows of the newest version, and whether it passes integrity_check.
async fn remote_rows(backend: &Backend) -> Vec<(String, i64)> {
    let db = Session::open(&backend.url("app.db"), &backend.options().read_only(true))
        .await
        .unwrap();
    let check: String = db
        .connection()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok", "the remote is sound");
    let mut stmt = db.connection().prepare("SELECT who, n FROM t ORDER BY who, n").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn rows(spec: &[(&str, std::ops::RangeInclusive<i64>)]) -> Vec<(String, i64)> {
    let mut all: Vec<_> = spec
        .iter()
        .flat_map(|(who, range)| range.clone().map(|n| (who.to_string(), n)))
        .collect();
    all.sort();
    all
}

fn damage(copy: &Path, damage: Damage, stale_state: &[u8]) {
    let state = copy.with_file_name("state.json");
    let mut bytes = std::fs::read(copy).unwrap();
    match damage {
        Damage::Empty => bytes.clear(),
        Damage::HalfLength => bytes.truncate(bytes.len() / 2),
        Damage::GarbagePage => {
            let page = 4096;
            let at = (bytes.len() / page / 2) * page;
            fastrand::fill(&mut bytes[at..at + page]);
        }
        Damage::FlippedBit => {
            let at = bytes.len() - 1000;
            bytes[at] ^= 0x10;
        }
        Damage::GarbageHeader => fastrand::fill(&mut bytes[..100]),
        Damage::LeftoverJournal => {
            let mut journal = copy.as_os_str().to_owned();
            journal.push("-journal");
            let mut garbage = vec![0u8; 8192];
            fastrand::fill(&mut garbage);
            std::fs::write(PathBuf::from(journal), garbage).unwrap();
        }
        Damage::GarbageState => std::fs::write(&state, b"{ not json").unwrap(),
        Damage::EmptyState => std::fs::write(&state, b"").unwrap(),
        Damage::StaleState => {
            // Restored from a backup, say: it claims an older version.
            let mut stale: serde_json::Value = serde_json::from_slice(stale_state).unwrap();
            stale["status"] = "clean".into();
            std::fs::write(&state, serde_json::to_vec(&stale).unwrap()).unwrap();
        }
    }
    std::fs::write(copy, bytes).unwrap();
}

/// Cache A writes, B writes, A's copy is damaged (at rest, or after A
/// crashed), then A reads and writes again.
async fn damage_then_use(backend: Backend, layout: LayoutKind, kind: Damage, crashed: bool) {
    let (cache_a, cache_b) = (backend.fresh_cache(), backend.fresh_cache());
    let mut a = Session::open(&backend.url("app.db"), &options(&backend, layout, &cache_a))
        .await
        .unwrap();
    for n in 1..=40 {
        insert(&mut a, "a", n).await;
    }
    let copy = a.working_copy();
    let stale = std::fs::read(copy.with_file_name("state.json")).unwrap();
    insert(&mut a, "a", 41).await;
    if crashed {
        drop(a);
    } else {
        a.close().await.unwrap();
    }
    let mut b = Session::open(&backend.url("app.db"), &options(&backend, layout, &cache_b))
        .await
        .unwrap();
    insert(&mut b, "b", 1).await;
    b.close().await.unwrap();
    let before = remote_rows(&backend).await;
    assert_eq!(before, rows(&[("a", 1..=41), ("b", 1..=1)]));

    damage(&copy, kind, &stale);
    let what = format!("{kind:?}, {}", if crashed { "after a crash" } else { "at rest" });

    // Reading never writes, and is not blocked.
    let (counted, counter) = backend.counted("app.db");
    let reader = Session::open_remote(counted, &options(&backend, layout, &cache_a).read_only(true))
        .await
        .unwrap_or_else(|e| panic!("{what}: a read-only open failed: {e}"));
    let n: i64 = reader
        .connection()
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{what}: reading failed: {e}"));
    assert_eq!(n, 42, "{what}: the reader sees the remote");
    reader.close().await.unwrap();
    let c = counter.counts();
    assert_eq!((c.puts, c.others), (0, 0), "{what}: reading wrote to the store: {c:?}");
    assert_eq!(
        remote_rows(&backend).await,
        before,
        "{what}: reading changed the remote"
    );

    // Writing goes on from the remote.
    let mut a = Session::open(&backend.url("app.db"), &options(&backend, layout, &cache_a))
        .await
        .unwrap_or_else(|e| panic!("{what}: a writing open failed: {e}"));
    insert(&mut a, "a", 42).await;
    a.close().await.unwrap();
    assert_eq!(
        remote_rows(&backend).await,
        rows(&[("a", 1..=42), ("b", 1..=1)]),
        "{what}: the remote is exact"
    );
    // What was damaged is kept for inspection. (A stray journal that
    // SQLite finds is not the copy's own is dropped by SQLite itself.)
    if matches!(kind, Damage::LeftoverJournal) {
        return;
    }
    let damaged = copy.parent().unwrap().parent().unwrap().join("damaged");
    let set_aside = std::fs::read_dir(&damaged).map(|d| d.count()).unwrap_or(0);
    assert!(set_aside >= 1, "{what}: nothing under {}", damaged.display());
}

async fn every_damage_at_rest(backend: Backend, layout: LayoutKind) {
    let kind = backend.kind;
    for damage in AT_REST {
        damage_then_use(Backend::new(kind).unwrap(), layout, damage, false).await;
    }
    drop(backend);
}

async fn every_damage_after_a_crash(backend: Backend, layout: LayoutKind) {
    let kind = backend.kind;
    for damage in AFTER_A_CRASH {
        damage_then_use(Backend::new(kind).unwrap(), layout, damage, true).await;
    }
    drop(backend);
}

on_every_store_and_layout!(
    every_damage_at_rest,
    every_damage_after_a_crash,
    an_empty_working_copy_never_reaches_the_remote,
    a_damaged_page_is_never_published,
);

/// Issue 9, first failure: an empty working copy wiped the remote, even
/// through a read.
async fn an_empty_working_copy_never_reaches_the_remote(backend: Backend, layout: LayoutKind) {
    let cache = backend.fresh_cache();
    let mut db = Session::open(&backend.url("app.db"), &options(&backend, layout, &cache))
        .await
        .unwrap();
    insert(&mut db, "a", 41).await;
    let copy = db.working_copy();
    db.close().await.unwrap();
    std::fs::write(&copy, b"").unwrap();

    // A writing session that changes nothing: it must not publish the empty file.
    let db = Session::open(&backend.url("app.db"), &options(&backend, layout, &cache))
        .await
        .unwrap();
    db.close().await.unwrap();
    assert_eq!(remote_rows(&backend).await, rows(&[("a", 41..=41)]));
}

/// Issue 9, second failure: a page overwritten with garbage while a
/// session is open is caught before anything is sent; the transaction is
/// run again on the remote version.
async fn a_damaged_page_is_never_published(backend: Backend, layout: LayoutKind) {
    let cache = backend.fresh_cache();
    let mut db = Session::open(&backend.url("app.db"), &options(&backend, layout, &cache))
        .await
        .unwrap();
    for n in 1..=40 {
        insert(&mut db, "a", n).await;
    }
    let copy = db.working_copy();
    let mut bytes = std::fs::read(&copy).unwrap();
    let at = (bytes.len() / 4096 / 2) * 4096;
    fastrand::fill(&mut bytes[at..at + 4096]);
    std::fs::write(&copy, bytes).unwrap();

    // A plain publish says what happened and where the copy went.
    db.connection()
        .execute("CREATE TABLE IF NOT EXISTS other(x)", [])
        .unwrap();
    let err = db.publish().await.unwrap_err();
    let Error::WorkingCopyDamaged { path, .. } = &err else {
        panic!("expected a damaged working copy, got {err}");
    };
    assert!(path.exists(), "{err}");
    assert_eq!(remote_rows(&backend).await, rows(&[("a", 1..=40)]));
    // The session goes on from the remote version.
    insert(&mut db, "a", 41).await;
    db.close().await.unwrap();
    assert_eq!(remote_rows(&backend).await, rows(&[("a", 1..=41)]));
}

on_every_store!(a_damaged_state_file_never_splits_a_versioned_database);

/// Issue 9, fourth failure: with the state file unreadable, the session
/// used to publish the copy as a single object beside the versioned root.
async fn a_damaged_state_file_never_splits_a_versioned_database(backend: Backend) {
    for old_style in [false, true] {
        let backend = Backend::new(backend.kind).unwrap();
        let cache = backend.fresh_cache();
        let versioned = options(&backend, LayoutKind::Versioned, &cache);
        let mut db = Session::open(&backend.url("app.db"), &versioned).await.unwrap();
        insert(&mut db, "a", 1).await;
        let copy = db.working_copy();
        db.close().await.unwrap();
        if old_style {
            // A versioned database made before markers had none.
            let remote = sqlite_s3::Remote::connect(&backend.url("app.db"), &backend.store_options()).unwrap();
            remote.store().delete(remote.key()).await.unwrap();
        }
        std::fs::write(copy.with_file_name("state.json"), b"garbage").unwrap();

        // Default options name the single-object layout: the bucket decides.
        let mut db = Session::open(&backend.url("app.db"), &backend.options().cache_dir(&cache))
            .await
            .unwrap();
        assert_eq!(db.layout(), LayoutKind::Versioned, "old style: {old_style}");
        insert(&mut db, "a", 2).await;
        db.close().await.unwrap();
        let object = backend.raw_get("app.db").await;
        assert!(
            object.is_none_or(|o| o.starts_with(b"sqlite-s3: this database moved")),
            "no single-object database beside the versioned one (old style: {old_style})"
        );
        assert_eq!(remote_rows(&backend).await, rows(&[("a", 1..=2)]));
    }
}

#[tokio::test]
async fn a_new_database_is_created_in_one_layout_only_by_racing_writers() {
    for round in 0..8 {
        let backend = Backend::new(Kind::Memory).unwrap();
        let url = backend.url("app.db");
        let racers = [LayoutKind::Single, LayoutKind::Versioned].map(|layout| {
            let (url, options) = (url.clone(), backend.options().layout(layout));
            tokio::spawn(async move {
                let mut db = Session::open(&url, &options).await.unwrap();
                let who = format!("{layout:?}");
                insert(&mut db, &who, round).await;
                db.close().await.unwrap();
            })
        });
        for racer in racers {
            racer.await.unwrap();
        }
        let layout =
            sqlite_s3::admin::detect_layout(&sqlite_s3::Remote::connect(&url, &backend.store_options()).unwrap())
                .await
                .unwrap();
        let found = remote_rows(&backend).await;
        assert_eq!(
            found.len(),
            2,
            "round {round}: both writes, in one database ({layout:?}): {found:?}"
        );
    }
}

on_every_store_and_layout!(a_stale_state_of_a_crashed_session_is_reported_not_published);

/// A state file older than the copy, from a session that did not close:
/// the copy differs from what it names, which cannot be told from changes
/// made on that version. Publishing them would conflict, so they are kept
/// and reported; discarding them sets them aside, and the remote is exact.
async fn a_stale_state_of_a_crashed_session_is_reported_not_published(backend: Backend, layout: LayoutKind) {
    let cache = backend.fresh_cache();
    let opts = options(&backend, layout, &cache);
    let mut a = Session::open(&backend.url("app.db"), &opts).await.unwrap();
    insert(&mut a, "a", 1).await;
    let copy = a.working_copy();
    let stale = std::fs::read(copy.with_file_name("state.json")).unwrap();
    insert(&mut a, "a", 2).await;
    a.close().await.unwrap();
    std::fs::write(copy.with_file_name("state.json"), &stale).unwrap();

    let err = Session::open(&backend.url("app.db"), &opts).await.unwrap_err();
    assert!(matches!(err, Error::UnpublishedChanges { .. }), "{err}");
    assert_eq!(remote_rows(&backend).await, rows(&[("a", 1..=2)]));
    let mut a = Session::open(
        &backend.url("app.db"),
        &opts.clone().pending_changes(PendingChanges::Discard),
    )
    .await
    .unwrap();
    insert(&mut a, "a", 3).await;
    a.close().await.unwrap();
    assert_eq!(remote_rows(&backend).await, rows(&[("a", 1..=3)]));
}

/// Working copies that an earlier version kept under the URL as spelled
/// (here through a linked directory) are adopted, and what they hold is
/// published.
#[tokio::test]
async fn copies_kept_under_an_earlier_name_are_adopted() {
    let real = tempfile::tempdir().unwrap();
    let links = tempfile::tempdir().unwrap();
    let link = links.path().join("bucket");
    std::os::unix::fs::symlink(real.path(), &link).unwrap();
    let url = format!("file://{}/app.db", link.display());
    let cache = tempfile::tempdir().unwrap();
    let opts = Options::new().cache_dir(cache.path());
    let mut db = Session::open(&url, &opts).await.unwrap();
    insert(&mut db, "a", 1).await;
    db.connection()
        .execute("INSERT INTO t VALUES ('a', 2, NULL)", [])
        .unwrap();
    let copy = db.working_copy();
    drop(db); // unpublished, left open

    // Where an earlier version kept it: keyed by the URL as given.
    let folder = copy.parent().unwrap().parent().unwrap().to_path_buf();
    let legacy = blake3::hash(format!("\n{url}").as_bytes()).to_hex();
    let old = cache.path().join(format!("app.db-{}", &legacy[..16]));
    assert_ne!(old, folder);
    std::fs::rename(&folder, &old).unwrap();

    let db = Session::open(&url, &opts).await.unwrap();
    db.close().await.unwrap();
    let reader = Session::open(
        &format!("file://{}/app.db", real.path().display()),
        &Options::new().cache_dir(cache.path().join("other")),
    )
    .await
    .unwrap();
    let n: i64 = reader
        .connection()
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2, "the change kept under the old name was published");
}
