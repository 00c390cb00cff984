//! Moving a database between layouts: data and history kept, sessions
//! that opened it before the move follow it without losing a commit, and a
//! move cut short is finished by whoever comes next.

use sqlite_s3::LayoutKind;
use sqlite_s3::admin::{ConvertReport, convert, detect_layout};
use sqlite_s3::{Error, Remote, Session, WriteMode, history};
use test_support::fault_store::{Fault, Faults, Op};
use test_support::on_every_store;
use test_support::stores::{Backend, Kind};

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

/// The notes, as a session on a fresh machine reads them.
async fn notes_of(backend: &Backend, remote: &Remote) -> Vec<String> {
    let session = Session::open_remote(remote.clone(), &backend.options()).await.unwrap();
    let notes = {
        let mut stmt = session
            .connection()
            .prepare("SELECT v FROM notes ORDER BY rowid")
            .unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
    };
    session.close().await.unwrap();
    notes
}

async fn write(backend: &Backend, remote: &Remote, values: &[&str]) {
    let mut session = Session::open_remote(remote.clone(), &backend.options()).await.unwrap();
    for v in values {
        insert(&mut session, v).await;
    }
    session.close().await.unwrap();
}

fn remote(backend: &Backend) -> Remote {
    Remote::connect(&backend.url("app.db"), &backend.store_options()).unwrap()
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|s| s.to_string()).collect()
}

on_every_store!(
    moving_back_and_forth_keeps_the_data_and_the_history,
    sessions_opened_before_a_move_follow_it,
    a_move_to_versioned_cut_short_is_finished_by_the_next_reader,
    a_move_to_single_cut_short_is_finished_by_the_next_reader,
    a_versioned_database_made_before_markers_moves_to_single,
);

/// Versioned databases made before markers have no object at their key:
/// the move to single creates it, although versions exist.
async fn a_versioned_database_made_before_markers_moves_to_single(backend: Backend) {
    use object_store::ObjectStoreExt;
    let remote = remote(&backend);
    let mut db = Session::open_remote(remote.clone(), &backend.options().layout(LayoutKind::Versioned))
        .await
        .unwrap();
    insert(&mut db, "a").await;
    db.close().await.unwrap();
    remote.store().delete(remote.key()).await.unwrap();
    assert_eq!(detect_layout(&remote).await.unwrap(), Some(LayoutKind::Versioned));

    convert(&remote, LayoutKind::Single, None).await.unwrap();
    assert_eq!(detect_layout(&remote).await.unwrap(), Some(LayoutKind::Single));
    write(&backend, &remote, &["b"]).await;
    assert_eq!(notes_of(&backend, &remote).await, strings(&["a", "b"]));
}

async fn moving_back_and_forth_keeps_the_data_and_the_history(backend: Backend) {
    let remote = remote(&backend);
    write(&backend, &remote, &["a", "b"]).await;

    let report = convert(&remote, LayoutKind::Versioned, None).await.unwrap();
    assert_eq!(
        report,
        ConvertReport {
            from: LayoutKind::Single,
            to: LayoutKind::Versioned,
            version: Some(1)
        }
    );
    let marker = backend.raw_get("app.db").await.unwrap();
    assert!(marker.starts_with(b"sqlite-s3: this database moved"), "{marker:?}");
    assert_eq!(detect_layout(&remote).await.unwrap(), Some(LayoutKind::Versioned));
    assert_eq!(notes_of(&backend, &remote).await, strings(&["a", "b"]));
    write(&backend, &remote, &["c"]).await;

    let report = convert(&remote, LayoutKind::Single, None).await.unwrap();
    assert_eq!((report.from, report.version), (LayoutKind::Versioned, Some(3)));
    let object = backend.raw_get("app.db").await.unwrap();
    assert_eq!(
        test_support::stores::count_rows(&object, "notes"),
        3,
        "a plain SQLite file again"
    );
    assert_eq!(detect_layout(&remote).await.unwrap(), Some(LayoutKind::Single));
    let log = history::log(&remote).await.unwrap();
    assert_eq!(log.len(), 3);
    assert!(log[2].moved_to_single && !log[1].moved_to_single);
    let refused = history::restore(&remote, history::RestorePoint::Version(1))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, Error::MovedToSingle { version: 3, .. })
            && refused.to_string().contains("moved to the single-object layout"),
        "{refused}"
    );
    write(&backend, &remote, &["d"]).await;

    // Back again: the history goes on from where it stopped.
    let report = convert(&remote, LayoutKind::Versioned, None).await.unwrap();
    assert_eq!(report.version, Some(4));
    assert_eq!(notes_of(&backend, &remote).await, strings(&["a", "b", "c", "d"]));
    let log = history::log(&remote).await.unwrap();
    assert_eq!(log.last().unwrap().parent, Some(3));

    let again = convert(&remote, LayoutKind::Versioned, None).await.unwrap();
    assert_eq!(again.version, None, "already there: nothing to do");
    history::restore(&remote, history::RestorePoint::Version(2))
        .await
        .unwrap();
    assert_eq!(notes_of(&backend, &remote).await, strings(&["a", "b", "c"]));

    let absent = Remote::connect(&backend.url("none.db"), &backend.store_options()).unwrap();
    let missing = convert(&absent, LayoutKind::Versioned, None).await.unwrap_err();
    assert!(matches!(missing, Error::DatabaseNotFound { .. }), "{missing}");
}

async fn sessions_opened_before_a_move_follow_it(backend: Backend) {
    let remote = remote(&backend);
    write(&backend, &remote, &["a"]).await;

    // Opened on the single object, committing after it moved.
    let mut stale = Session::open_remote(remote.clone(), &backend.options()).await.unwrap();
    let lww = backend.options().write_mode(WriteMode::LastWriterWins);
    let mut stale_lww = Session::open_remote(remote.clone(), &lww).await.unwrap();
    convert(&remote, LayoutKind::Versioned, None).await.unwrap();
    insert(&mut stale, "b").await;
    insert(&mut stale_lww, "c").await;
    assert_eq!(detect_layout(&remote).await.unwrap(), Some(LayoutKind::Versioned));
    assert_eq!(notes_of(&backend, &remote).await, strings(&["a", "b", "c"]));

    // And the other way.
    convert(&remote, LayoutKind::Single, None).await.unwrap();
    insert(&mut stale, "d").await;
    insert(&mut stale_lww, "e").await;
    stale.close().await.unwrap();
    stale_lww.close().await.unwrap();
    assert_eq!(detect_layout(&remote).await.unwrap(), Some(LayoutKind::Single));
    assert_eq!(notes_of(&backend, &remote).await, strings(&["a", "b", "c", "d", "e"]));
    let log = history::log(&remote).await.unwrap();
    assert!(log.last().unwrap().moved_to_single, "no version after the move");
}

async fn a_move_to_versioned_cut_short_is_finished_by_the_next_reader(backend: Backend) {
    let remote = remote(&backend);
    write(&backend, &remote, &["a", "b"]).await;
    let (faulty, fail) = Faults::wrap(&remote);
    // Stop after the marker is written, before the version is created.
    fail.once(Op::Put, |key| key.contains("/manifests/"), Fault::Stop);
    convert(&faulty, LayoutKind::Versioned, None).await.unwrap_err();
    let marker = backend.raw_get("app.db").await.unwrap();
    assert!(marker.starts_with(b"sqlite-s3: this database moved"));
    assert!(
        matches!(history::log(&remote).await, Err(Error::NotVersioned { .. })),
        "no version yet"
    );

    // Read-only work does not finish it: it says that a writer must.
    let (counted, counter) = backend.counted("app.db");
    let err = Session::open_remote(counted, &backend.options().read_only(true))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::TryAgain { .. }), "{err}");
    assert!(err.to_string().contains("sqlite-s3 sync"), "{err}");
    assert_eq!(counter.counts().puts, 0);
    assert!(history::log(&remote).await.is_err(), "still no version");

    assert_eq!(notes_of(&backend, &remote).await, strings(&["a", "b"]));
    assert_eq!(history::log(&remote).await.unwrap().len(), 1);
    write(&backend, &remote, &["c"]).await;
    assert_eq!(history::log(&remote).await.unwrap().len(), 2);
}

async fn a_move_to_single_cut_short_is_finished_by_the_next_reader(backend: Backend) {
    let remote = remote(&backend);
    write(&backend, &remote, &["a"]).await;
    convert(&remote, LayoutKind::Versioned, None).await.unwrap();
    write(&backend, &remote, &["b"]).await;
    let (faulty, fail) = Faults::wrap(&remote);
    // Stop after the moved version is created, before the object is written
    // over the marker of the first move.
    fail.once(Op::Put, |key| key == "app.db", Fault::Stop);
    convert(&faulty, LayoutKind::Single, None).await.unwrap_err();
    assert!(
        backend
            .raw_get("app.db")
            .await
            .unwrap()
            .starts_with(b"sqlite-s3: this database moved")
    );
    assert!(history::log(&remote).await.unwrap().last().unwrap().moved_to_single);

    // A writer that still thinks it is versioned, and a fresh reader.
    assert_eq!(notes_of(&backend, &remote).await, strings(&["a", "b"]));
    assert_eq!(detect_layout(&remote).await.unwrap(), Some(LayoutKind::Single));
    write(&backend, &remote, &["c"]).await;
    let object = backend.raw_get("app.db").await.unwrap();
    assert_eq!(test_support::stores::count_rows(&object, "notes"), 3);
}

#[tokio::test]
async fn a_move_to_versioned_does_not_replace_a_newer_single_object() {
    let backend = Backend::new(Kind::Memory).unwrap();
    let remote = remote(&backend);
    write(&backend, &remote, &["a"]).await;
    // Another writer commits after the conversion read the object, before it
    // writes the marker: the chunk uploads are where that can happen.
    let (faulty, fail) = Faults::wrap(&remote);
    let (b, r) = (backend.options(), remote.clone());
    let late_writer = move || {
        let (b, r) = (b.clone(), r.clone());
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new().unwrap().block_on(async {
                let mut s = Session::open_remote(r, &b).await.unwrap();
                insert(&mut s, "late").await;
                s.close().await.unwrap();
            })
        })
        .join()
        .unwrap();
    };
    fail.once(
        Op::Put,
        |key| key.contains("/chunks/"),
        Fault::Call(std::sync::Arc::new(late_writer)),
    );
    let report = convert(&faulty, LayoutKind::Versioned, None).await.unwrap();
    assert_eq!(report.version, Some(1), "the retry staged version 1 again");
    assert_eq!(notes_of(&backend, &remote).await, strings(&["a", "late"]));
}

/// A database object at the key and versions beside it that no move left
/// (another tool wrote the object over the marker): no conversion can tell
/// which is the database, so it refuses with `Corrupt`, naming both.
#[tokio::test]
async fn a_database_in_both_layouts_is_not_converted() {
    let backend = Backend::new(Kind::Memory).unwrap();
    let remote = remote(&backend);
    let mut db = Session::open_remote(remote.clone(), &backend.options().layout(LayoutKind::Versioned))
        .await
        .unwrap();
    insert(&mut db, "a").await;
    db.close().await.unwrap();
    backend.raw_put("app.db", test_support::stores::sqlite_bytes(3)).await;
    for to in [LayoutKind::Single, LayoutKind::Versioned] {
        let err = convert(&remote, to, None).await.unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        assert_eq!(err.kind(), sqlite_s3::ErrorKind::Damaged);
        assert!(
            err.to_string().contains("versions up to 1") && err.to_string().contains("Delete the one"),
            "{err}"
        );
    }
}
