//! One conformance suite for every store: what the layouts rely on, asked
//! of each store directly, on memory, a local directory, moto, SeaweedFS
//! and Azurite. A store that fails one of these is not one the layouts can
//! promise anything on; `store/probe.rs` checks the first two at run time.

use bytes::Bytes;
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    UpdateVersion,
};
use sqlite_s3::Remote;
use test_support::on_every_store;
use test_support::stores::Backend;

/// The store of a backend, behind this crate's retries, and a fresh key.
fn store(backend: &Backend) -> (std::sync::Arc<dyn ObjectStore>, Path) {
    let remote = Remote::connect(&backend.url("conformance.db"), &backend.store_options()).unwrap();
    let key = Path::from(format!("conformance-{:x}", fastrand::u64(..)));
    (remote.store().clone(), key)
}

fn mode(mode: PutMode) -> PutOptions {
    PutOptions::from(mode)
}

fn version(put: &object_store::PutResult) -> PutMode {
    PutMode::Update(UpdateVersion {
        e_tag: put.e_tag.clone(),
        version: put.version.clone(),
    })
}

on_every_store!(
    creates_only_what_is_absent,
    updates_only_the_version_read,
    answers_a_matching_conditional_get_with_not_modified,
    keeps_user_metadata_with_an_object,
    serves_byte_ranges,
    lists_under_a_prefix_and_tells_a_missing_object,
    writers_racing_on_one_object_each_land_once,
    of_creates_racing_on_one_key_exactly_one_wins,
);

async fn creates_only_what_is_absent(backend: Backend) {
    let (store, key) = store(&backend);
    store.put_opts(&key, "a".into(), mode(PutMode::Create)).await.unwrap();
    let err = store
        .put_opts(&key, "b".into(), mode(PutMode::Create))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }
        ),
        "{:?}: {err}",
        backend.kind
    );
    let bytes = store.get(&key).await.unwrap().bytes().await.unwrap();
    assert_eq!(bytes.as_ref(), b"a", "the refused create changed nothing");
}

async fn updates_only_the_version_read(backend: Backend) {
    let (store, key) = store(&backend);
    let v1 = store.put_opts(&key, "1".into(), mode(PutMode::Create)).await.unwrap();
    assert!(v1.e_tag.is_some(), "{:?}: a write says its ETag", backend.kind);
    let v2 = store.put_opts(&key, "2".into(), mode(version(&v1))).await.unwrap();
    assert_ne!(v1.e_tag, v2.e_tag, "{:?}: every write changes the ETag", backend.kind);
    let err = store.put_opts(&key, "3".into(), mode(version(&v1))).await.unwrap_err();
    assert!(
        matches!(err, object_store::Error::Precondition { .. }),
        "{:?}: {err}",
        backend.kind
    );
    // S3's ETag is the MD5 of the bytes: the same bytes bring an ETag back
    // (which is why a fence moves the change counter, ARCHITECTURE.md).
    let v3 = store.put_opts(&key, "4".into(), mode(version(&v2))).await.unwrap();
    let missing = Path::from(format!("{key}-missing"));
    let err = store
        .put_opts(&missing, "x".into(), mode(version(&v3)))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. }
        ),
        "{:?}: an update of a missing object is refused: {err}",
        backend.kind
    );
    assert_eq!(store.get(&key).await.unwrap().bytes().await.unwrap().as_ref(), b"4");
}

async fn answers_a_matching_conditional_get_with_not_modified(backend: Backend) {
    let (store, key) = store(&backend);
    let put = store.put(&key, "body".into()).await.unwrap();
    let options = GetOptions {
        if_none_match: put.e_tag.clone(),
        ..Default::default()
    };
    let err = store.get_opts(&key, options).await.unwrap_err();
    assert!(
        matches!(err, object_store::Error::NotModified { .. }),
        "{:?}: {err}",
        backend.kind
    );
    let options = GetOptions {
        if_none_match: Some("\"not-it\"".into()),
        ..Default::default()
    };
    let got = store.get_opts(&key, options).await.unwrap();
    assert_eq!(
        got.meta.e_tag, put.e_tag,
        "{:?}: a GET names the ETag a PUT gave",
        backend.kind
    );
}

async fn keeps_user_metadata_with_an_object(backend: Backend) {
    let (store, key) = store(&backend);
    let mut attributes = Attributes::new();
    attributes.insert(Attribute::Metadata("sqlites3lineage".into()), "t2,t1".into());
    let options = PutOptions {
        mode: PutMode::Create,
        attributes,
        ..Default::default()
    };
    store.put_opts(&key, "x".into(), options).await.unwrap();
    let head = GetOptions {
        head: true,
        ..Default::default()
    };
    let got = store.get_opts(&key, head).await.unwrap();
    let lineage = got.attributes.get(&Attribute::Metadata("sqlites3lineage".into()));
    assert_eq!(lineage.map(|v| v.as_ref()), Some("t2,t1"), "{:?}", backend.kind);
}

async fn serves_byte_ranges(backend: Backend) {
    let (store, key) = store(&backend);
    let body: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    let put = store.put(&key, PutPayload::from(body.clone())).await.unwrap();
    let options = GetOptions {
        range: Some(GetRange::Bounded(100_000..200_000)),
        if_match: put.e_tag.clone(),
        ..Default::default()
    };
    let got = store.get_opts(&key, options).await.unwrap().bytes().await.unwrap();
    assert_eq!(got, Bytes::from(body[100_000..200_000].to_vec()), "{:?}", backend.kind);
}

async fn lists_under_a_prefix_and_tells_a_missing_object(backend: Backend) {
    use futures::TryStreamExt;
    let (store, key) = store(&backend);
    for name in ["a", "b", "c"] {
        store
            .put(&Path::from(format!("{key}/manifests/{name}")), "m".into())
            .await
            .unwrap();
    }
    store
        .put(&Path::from(format!("{key}/other")), "o".into())
        .await
        .unwrap();
    let listed: Vec<_> = store
        .list(Some(&Path::from(format!("{key}/manifests"))))
        .try_collect()
        .await
        .unwrap();
    let mut names: Vec<_> = listed.iter().filter_map(|m| m.location.filename()).collect();
    names.sort();
    assert_eq!(
        names,
        ["a", "b", "c"],
        "{:?}: only what is under the prefix",
        backend.kind
    );
    let err = store.get(&Path::from(format!("{key}/none"))).await.unwrap_err();
    assert!(
        matches!(err, object_store::Error::NotFound { .. }),
        "{:?}: {err}",
        backend.kind
    );
}

/// Five writers increment one counter ten times each with
/// read-then-conditional-write: the count is exact (object_store's own
/// conformance race).
async fn writers_racing_on_one_object_each_land_once(backend: Backend) {
    let (store, key) = store(&backend);
    let writers = (0..5).map(|_| {
        let (store, key) = (store.clone(), key.clone());
        tokio::spawn(async move {
            for _ in 0..10 {
                loop {
                    let result = match store.get(&key).await {
                        Ok(current) => {
                            let update = PutMode::Update(UpdateVersion {
                                e_tag: current.meta.e_tag.clone(),
                                version: current.meta.version.clone(),
                            });
                            let n: u64 = std::str::from_utf8(&current.bytes().await.unwrap())
                                .unwrap()
                                .parse()
                                .unwrap();
                            store.put_opts(&key, (n + 1).to_string().into(), mode(update)).await
                        }
                        Err(object_store::Error::NotFound { .. }) => {
                            store.put_opts(&key, "1".into(), mode(PutMode::Create)).await
                        }
                        Err(e) => panic!("{e}"),
                    };
                    match result {
                        Ok(_) => break,
                        Err(object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. }) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        })
    });
    for writer in writers.collect::<Vec<_>>() {
        writer.await.unwrap();
    }
    let n = store.get(&key).await.unwrap().bytes().await.unwrap();
    assert_eq!(n.as_ref(), b"50", "{:?}", backend.kind);
}

/// object_store's own conformance checks, run on this crate's
/// compare-and-swap for local directories.
#[tokio::test]
async fn the_local_directory_store_passes_object_stores_own_checks() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite_s3::admin::LocalStore::new(dir.path().to_path_buf()).unwrap();
    object_store::integration::put_opts(&store, true).await;
    object_store::integration::get_opts(&store).await;
    object_store::integration::put_get_delete_list(&store).await;
    object_store::integration::list_uses_directories_correctly(&store).await;
    object_store::integration::list_with_delimiter(&store).await;
    object_store::integration::stream_get(&store).await;
}

/// Twelve creates (`If-None-Match: *`) race on each of four fresh keys:
/// exactly one of each lands, and the object is the winner's. A store (or
/// a mock: moto checks and stores in two steps, so the test server makes
/// its PUTs one at a time) that lets two win loses a version commit.
async fn of_creates_racing_on_one_key_exactly_one_wins(backend: Backend) {
    let (store, key) = store(&backend);
    for round in 0..4 {
        let key = Path::from(format!("{key}-{round}"));
        let racers = (0..12).map(|n| {
            let (store, key) = (store.clone(), key.clone());
            tokio::spawn(async move {
                let body = format!("writer {n}");
                let won = store
                    .put_opts(&key, body.clone().into(), mode(PutMode::Create))
                    .await
                    .is_ok();
                (won, body)
            })
        });
        let results: Vec<_> = futures::future::join_all(racers)
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let winners: Vec<_> = results
            .iter()
            .filter(|(won, _)| *won)
            .map(|(_, body)| body.clone())
            .collect();
        assert_eq!(winners.len(), 1, "{:?} round {round}: {winners:?}", backend.kind);
        let bytes = store.get(&key).await.unwrap().bytes().await.unwrap();
        assert_eq!(bytes.as_ref(), winners[0].as_bytes(), "{:?}", backend.kind);
    }
}
