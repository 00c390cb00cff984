//! Unit tests of the versioned layout. A property test of the versioned layout's chunking: any sequence of page
//! writes, published and pulled (patched onto the previous copy), reproduces
//! the same bytes. Seeded, so a failure names the seed that replays it.

use std::path::Path;

use super::Versioned;
use crate::layout::{Base, InFlight, Layout, Published, Pulled, RemoteVersion};
use crate::options::WriteMode;
use crate::store::Remote;
use crate::token::CommitToken;

const PAGE: usize = 4096;

fn remote(name: &str) -> Remote {
    Remote::connect(&format!("memory://chunking-{name}/db"), &Default::default()).unwrap()
}

/// Publishes `file` (any bytes) as the version after `base`, as the only
/// writer.
pub(crate) async fn publish(remote: &Remote, file: &Path, base: Option<&RemoteVersion>) -> RemoteVersion {
    match Versioned::default()
        .publish(
            remote,
            file,
            base,
            WriteMode::Conditional,
            &InFlight::over(base, false).with_attempt(CommitToken::new(), None),
            None,
        )
        .await
        .unwrap()
        .published
    {
        Published::Current(version) => version,
        Published::Superseded => panic!("no one else writes"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_sequence_of_page_writes_round_trips() {
    for seed in 1..=12u64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let dir = tempfile::tempdir().unwrap();
        let (source, copy, scratch) = (
            dir.path().join("source"),
            dir.path().join("copy"),
            dir.path().join("next"),
        );
        let remote = remote(&seed.to_string());
        let mut bytes = vec![0u8; PAGE * rng.usize(1..200)];
        rng.fill(&mut bytes);
        let mut published: Option<RemoteVersion> = None;
        let mut pulled: Option<RemoteVersion> = None;
        for step in 0..8 {
            // Random page writes, and sometimes a grow or a shrink.
            for _ in 0..rng.usize(1..20) {
                let page = rng.usize(0..bytes.len() / PAGE);
                rng.fill(&mut bytes[page * PAGE..(page + 1) * PAGE]);
            }
            match rng.u8(0..4) {
                0 => bytes.extend((0..PAGE * rng.usize(1..100)).map(|_| rng.u8(..))),
                1 if bytes.len() > 2 * PAGE => bytes.truncate(PAGE * rng.usize(1..bytes.len() / PAGE)),
                _ => {}
            }
            std::fs::write(&source, &bytes).unwrap();
            published = Some(publish(&remote, &source, published.as_ref()).await);

            let base = pulled.as_ref().map(|_| Base::File(copy.as_path()));
            match Versioned::default()
                .pull(&remote, pulled.as_ref(), base, &scratch, None)
                .await
                .unwrap()
            {
                Pulled::Downloaded { version, .. } => {
                    std::fs::rename(&scratch, &copy).unwrap();
                    pulled = Some(version);
                }
                other => panic!("seed {seed} step {step}: expected a download, got {other:?}"),
            }
            assert!(
                std::fs::read(&copy).unwrap() == bytes,
                "seed {seed} step {step}: the pulled copy differs"
            );
        }
        // Nothing new: one probe, no download.
        let again = Versioned::default()
            .pull(&remote, pulled.as_ref(), Some(Base::File(&copy)), &scratch, None)
            .await
            .unwrap();
        assert!(matches!(again, Pulled::Unchanged), "seed {seed}");
    }
}

/// Writes `manifest` at the key of its version, past the layout, as a
/// damaged or hostile store would hold it.
async fn put_manifest(remote: &Remote, manifest: &crate::layout::manifest::Manifest) {
    use object_store::ObjectStoreExt;
    let key = crate::store::keys::Keys::new(remote).manifest(manifest.version);
    remote.store().put(&key, manifest.encode().into()).await.unwrap();
}

fn is_corrupt_naming(result: crate::Result<impl std::fmt::Debug>, key: &str) -> bool {
    match result {
        Err(e @ crate::Error::Corrupt { .. }) => e.to_string().contains(key),
        other => panic!("expected Corrupt naming {key}, got {other:?}"),
    }
}

/// A manifest whose chunk names a home it does not list stops a cold pull,
/// a warm pull and gc with `Corrupt` naming it, and nothing panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_in_an_unlisted_home_is_corrupt_in_pull_and_gc() {
    let remote = remote("unlisted-home");
    let dir = tempfile::tempdir().unwrap();
    let (file, dest) = (dir.path().join("f"), dir.path().join("dest"));
    std::fs::write(&file, vec![7u8; 3 * PAGE]).unwrap();
    let v1 = publish(&remote, &file, None).await;
    let mut bad = v1.as_manifest().unwrap().clone();
    bad.version = 2;
    bad.parent = Some(1);
    bad.chunks[0].home = 9;
    put_manifest(&remote, &bad).await;
    let key = "manifests/00000000000000000002";

    let layout = Versioned::default();
    assert!(is_corrupt_naming(
        layout.pull(&remote, None, None, &dest, None).await,
        key
    ));
    let warm = layout
        .pull(&remote, Some(&v1), Some(Base::File(&file)), &dest, None)
        .await;
    assert!(is_corrupt_naming(warm, key));
    let gc = crate::history::gc(&remote, crate::history::Keep::Last(1), std::time::Duration::ZERO).await;
    assert!(is_corrupt_naming(gc, key));
}

/// A manifest numbered beyond any history (the highest number a key can
/// spell) is `Corrupt`, found by the hint or by a listing: the number after
/// it is never computed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_number_beyond_any_history_is_corrupt() {
    use object_store::ObjectStoreExt;
    let remote = remote("version-max");
    let dir = tempfile::tempdir().unwrap();
    let (file, dest) = (dir.path().join("f"), dir.path().join("dest"));
    std::fs::write(&file, vec![7u8; PAGE]).unwrap();
    let v1 = publish(&remote, &file, None).await;
    let mut last = v1.as_manifest().unwrap().clone();
    last.version = u64::MAX;
    last.parent = Some(1);
    put_manifest(&remote, &last).await;
    let key = format!("manifests/{}", u64::MAX);
    let layout = Versioned::default();
    // Through a listing (the hint names version 1, which is followed by
    // nothing; a cold reader with no hint lists).
    let keys = crate::store::keys::Keys::new(&remote);
    remote.store().delete(&keys.latest()).await.unwrap();
    assert!(is_corrupt_naming(
        layout.pull(&remote, None, None, &dest, None).await,
        &key
    ));
    // Through the hint.
    remote
        .store()
        .put(&keys.latest(), u64::MAX.to_string().into())
        .await
        .unwrap();
    assert!(is_corrupt_naming(
        layout.pull(&remote, None, None, &dest, None).await,
        &key
    ));
}
