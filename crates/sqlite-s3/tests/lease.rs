//! Leases: one holder at a time, expiry after a crash, and a stale holder
//! (frozen, then thawed) that publishes nothing.

use std::time::Duration;

use sqlite_s3::lease::{CLOCK_SKEW, Lease};
use sqlite_s3::{Database, Error, Remote, Session};
use test_support::stores::Backend;
use test_support::{on_every_store, on_stores};

on_every_store!(
    racing_acquirers_never_both_hold_it,
    a_crashed_holders_lease_expires,
    a_released_lease_is_taken_at_once_with_a_higher_fence,
    renewals_keep_it_held,
    a_thawed_holder_whose_lease_was_taken_over_publishes_nothing,
    a_holder_past_its_time_publishes_nothing_even_if_nobody_took_over,
    a_holder_whose_lease_was_taken_over_early_is_fenced_off,
    a_lease_write_whose_answer_was_lost_is_ours,
);

const TTL: Duration = Duration::from_millis(800);

fn remote(backend: &Backend, name: &str) -> Remote {
    Remote::connect(&backend.url(name), &backend.store_options()).unwrap()
}

/// Waits until a lease of `TTL` taken now has expired for everyone.
async fn outlive_the_lease() {
    tokio::time::sleep(TTL + CLOCK_SKEW + Duration::from_millis(300)).await;
}

async fn racing_acquirers_never_both_hold_it(backend: Backend) {
    let tries: Vec<_> = (0..6)
        .map(|i| {
            let remote = remote(&backend, "app.db");
            tokio::spawn(async move {
                Lease::acquire(&remote, &format!("worker-{i}"), Duration::from_secs(30), Duration::ZERO).await
            })
        })
        .collect();
    let mut held = Vec::new();
    for t in tries {
        match t.await.unwrap() {
            Ok(lease) => held.push(lease),
            Err(Error::LeaseHeld { owner, url, .. }) => {
                assert!(owner.starts_with("worker-"));
                assert_eq!(url, backend.url("app.db"));
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(held.len(), 1, "exactly one holder");
    assert_eq!(held[0].fence(), 1);
    let err = Lease::acquire(&remote(&backend, "app.db"), "late", TTL, Duration::ZERO)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is held by worker-"), "{err}");
}

async fn a_crashed_holders_lease_expires(backend: Backend) {
    let crashed = Lease::acquire(&remote(&backend, "app.db"), "crashed", TTL, Duration::ZERO)
        .await
        .unwrap();
    drop(crashed); // never renewed, never released
    let next = Lease::acquire(&remote(&backend, "app.db"), "next", TTL, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(next.fence(), 2);
}

async fn a_released_lease_is_taken_at_once_with_a_higher_fence(backend: Backend) {
    let first = Lease::acquire(
        &remote(&backend, "app.db"),
        "first",
        Duration::from_secs(30),
        Duration::ZERO,
    )
    .await
    .unwrap();
    first.release().await.unwrap();
    assert!(matches!(first.renew().await, Err(Error::LeaseLost { .. })));
    let second = Lease::acquire(
        &remote(&backend, "app.db"),
        "second",
        Duration::from_secs(30),
        Duration::ZERO,
    )
    .await
    .unwrap();
    assert_eq!(second.fence(), 2);
    // Releasing a lease that is no longer ours changes nothing.
    assert!(matches!(first.release().await, Err(Error::LeaseLost { .. })));
    second.renew().await.unwrap();
}

async fn renewals_keep_it_held(backend: Backend) {
    let db = Database::open(&backend.url("app.db"), &backend.options())
        .await
        .unwrap();
    let lease = db.acquire_lease("keeper", TTL, Duration::ZERO).await.unwrap();
    outlive_the_lease().await;
    outlive_the_lease().await;
    let err = Lease::acquire(&remote(&backend, "app.db"), "other", TTL, Duration::ZERO)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LeaseHeld { .. }), "{err}");
    lease.confirm().await.unwrap();
    lease.release().await.unwrap();
    db.close().await.unwrap();
}

fn insert(db: &Database, value: &str) {
    let conn = rusqlite::Connection::open(db.path()).unwrap();
    conn.execute_batch("CREATE TABLE IF NOT EXISTS t(x TEXT)").unwrap();
    conn.execute("INSERT INTO t VALUES (?1)", [value]).unwrap();
}

async fn rows(backend: &Backend) -> Vec<String> {
    let db = Session::open(&backend.url("app.db"), &backend.options()).await.unwrap();
    let mut stmt = db.connection().prepare("SELECT x FROM t ORDER BY rowid").unwrap();
    let rows = stmt.query_map([], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect();
    drop(stmt);
    db.close().await.unwrap();
    rows
}

async fn a_thawed_holder_whose_lease_was_taken_over_publishes_nothing(backend: Backend) {
    let url = backend.url("app.db");
    let stale = Database::open(&url, &backend.options()).await.unwrap();
    // Held without background renewal: the process is about to freeze.
    let lease = Lease::acquire(&remote(&backend, "app.db"), "frozen", TTL, Duration::ZERO)
        .await
        .unwrap();
    stale.attach_lease(lease.clone());
    insert(&stale, "stale");
    outlive_the_lease().await; // frozen

    let successor = Database::open(&url, &backend.options()).await.unwrap();
    let taken = successor.acquire_lease("successor", TTL, Duration::ZERO).await.unwrap();
    assert_eq!(taken.fence(), 2);
    insert(&successor, "successor");
    successor.publish().await.unwrap();

    // Thawed: its publish is refused, and names who took over.
    let err = stale.publish().await.unwrap_err();
    let Error::LeaseLost { reason, .. } = &err else {
        panic!("expected LeaseLost, got {err}");
    };
    assert!(reason.contains("expired") || reason.contains("successor"), "{reason}");
    assert!(matches!(lease.renew().await, Err(Error::LeaseLost { .. })));
    // A write under the lost lease is dropped, not re-run.
    let err = stale.write(|| async { Ok(()) }).await.unwrap_err();
    assert!(matches!(err, Error::LeaseLost { .. }), "{err}");

    assert_eq!(rows(&backend).await, ["successor"]);
    taken.release().await.unwrap();
    successor.close().await.unwrap();
}

async fn a_holder_past_its_time_publishes_nothing_even_if_nobody_took_over(backend: Backend) {
    let url = backend.url("app.db");
    let db = Database::open(&url, &backend.options()).await.unwrap();
    insert(&db, "before");
    db.publish().await.unwrap();
    let lease = Lease::acquire(&remote(&backend, "app.db"), "slow", TTL, Duration::ZERO)
        .await
        .unwrap();
    db.attach_lease(lease);
    insert(&db, "late");
    tokio::time::sleep(TTL).await;
    let err = db.publish().await.unwrap_err();
    assert!(err.to_string().contains("expired by this process's clock"), "{err}");
    assert_eq!(rows(&backend).await, ["before"]);
    // Nothing is lost locally: the change is still there to publish or drop.
    assert!(db.has_unpublished_changes().await.unwrap());
}

async fn a_holder_whose_lease_was_taken_over_early_is_fenced_off(backend: Backend) {
    let url = backend.url("app.db");
    let db = Database::open(&url, &backend.options()).await.unwrap();
    let lease = Lease::acquire(
        &remote(&backend, "app.db"),
        "holder",
        Duration::from_secs(60),
        Duration::ZERO,
    )
    .await
    .unwrap();
    db.attach_lease(lease.clone());
    insert(&db, "mine");
    // A successor whose clock ran far ahead takes the lease while this
    // holder's own clock still gives it most of a minute.
    let record = serde_json::json!({
        "owner": "intruder", "token": "t", "fence": 2, "expires_at_ms": u64::MAX / 2, "released": false
    });
    backend
        .raw_put("app.db.sqlite-s3-lease", serde_json::to_vec(&record).unwrap())
        .await;
    let err = db.publish().await.unwrap_err();
    assert!(err.to_string().contains("taken over by intruder with fence 2"), "{err}");
    assert!(backend.raw_get("app.db").await.is_none(), "nothing was published");
    // Lost for good, even for a renewal.
    assert!(matches!(lease.renew().await, Err(Error::LeaseLost { .. })));
}

async fn a_lease_write_whose_answer_was_lost_is_ours(backend: Backend) {
    use test_support::fault_store::{Fault, Faults, Op};
    let (remote, store) = Faults::wrap(&remote(&backend, "app.db"));
    let is_lease = |key: &str| key.ends_with(".sqlite-s3-lease");
    // The create lands; its answer is lost and the retry fails its condition.
    store.once(Op::Put, is_lease, Fault::LoseAnswer);
    let lease = Lease::acquire(&remote, "me", Duration::from_secs(30), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(lease.fence(), 1);
    // The same for a renewal: still ours, and renewable after.
    store.once(Op::Put, is_lease, Fault::LoseAnswer);
    lease.renew().await.unwrap();
    lease.renew().await.unwrap();
    lease.release().await.unwrap();
}

const CHILD: &str = "SQLITE_S3_LEASE_CHILD";

/// A racing process: this test binary run again with `SQLITE_S3_LEASE_CHILD`
/// set to the directory holding `go`. It waits for `go`, tries once to take
/// the lease of `LEASE_URL`, and exits 0 if it got it, 3 if it was held.
#[test]
fn lease_process() {
    let Some(dir) = std::env::var_os(CHILD) else { return };
    let go = std::path::Path::new(&dir).join("go");
    while !go.exists() {
        std::thread::sleep(Duration::from_millis(5));
    }
    let url = std::env::var("LEASE_URL").unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let result = runtime.block_on(async {
        let remote = Remote::connect(&url, &sqlite_s3::StoreOptions::new())?;
        Lease::acquire(
            &remote,
            &format!("pid-{}", std::process::id()),
            Duration::from_secs(30),
            Duration::ZERO,
        )
        .await
    });
    std::process::exit(match result {
        Ok(_) => 0,
        Err(Error::LeaseHeld { .. }) => 3,
        Err(e) => {
            eprintln!("{e}");
            1
        }
    });
}

// Memory is seen by one process only.
on_stores!([file, s3, seaweed, azure] racing_processes);

async fn racing_processes(backend: Backend) {
    if std::env::var_os(CHILD).is_none() {
        tokio::task::spawn_blocking(move || race_processes(&backend))
            .await
            .unwrap();
    }
}

fn race_processes(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..5)
        .map(|_| {
            let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
            cmd.args(["--exact", "lease_process", "--nocapture", "--test-threads=1"])
                .env(CHILD, dir.path())
                .env("LEASE_URL", backend.url("raced.db"))
                .stdout(std::process::Stdio::null());
            cmd.envs(backend.child_env());
            cmd.spawn().unwrap()
        })
        .collect();
    std::fs::write(dir.path().join("go"), b"").unwrap();
    let mut codes: Vec<i32> = children
        .into_iter()
        .map(|mut c| c.wait().unwrap().code().unwrap_or(-1))
        .collect();
    codes.sort();
    assert_eq!(codes, [0, 3, 3, 3, 3], "exactly one process holds the lease");
}

#[tokio::test]
async fn a_local_file_has_no_lease() {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::open(dir.path().join("x.db").to_str().unwrap(), &sqlite_s3::Options::new())
        .await
        .unwrap();
    let err = db.acquire_lease("me", TTL, Duration::ZERO).await.unwrap_err();
    assert!(matches!(err, sqlite_s3::Error::Misuse { .. }), "{err}");
    assert!(err.to_string().contains("needs a store"), "{err}");
}
