//! A pattern for test suites: seed one fixture database, then give every
//! test a database of its own, branched from the fixture. A branch costs a
//! few requests whatever the fixture's size, shares its chunks, and never
//! sees another test's writes.
//!
//! The store is `TEST_DATABASE_BUCKET` (for example `s3://my-test-bucket` or
//! `s3://my-bucket/tests`), or a new local directory in the system's
//! temporary directory when it is not set (left there after the run, for a
//! look at what the tests wrote). The fixture and the branches sit side by
//! side, since a branch shares its source's chunks and so must live in the
//! same bucket.
//!
//! ```no_run
//! # async fn demo() -> sqlite_s3::Result<()> {
//! let db = test_fixtures::fresh_database("my_test").await?;
//! db.connection().execute("INSERT INTO users(name) VALUES ('eve')", [])?;
//! # Ok(()) }
//! ```

use std::sync::OnceLock;

use sqlite_s3::{LayoutKind, Options, Remote, Session};
use tokio::sync::OnceCell;

/// The fixture: schema and seed data every test starts from.
const SEED: &str = "
    CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
    INSERT INTO users(name) VALUES ('ada'), ('grace'), ('barbara');
";

/// Where the suite's databases go, and a local directory that lives as long
/// as the process when none is configured.
fn bucket() -> &'static str {
    static BUCKET: OnceLock<String> = OnceLock::new();
    BUCKET.get_or_init(|| match std::env::var("TEST_DATABASE_BUCKET") {
        Ok(bucket) => bucket.trim_end_matches('/').to_string(),
        Err(_) => {
            let dir = tempfile::tempdir().expect("a temporary directory").keep();
            format!("file://{}", dir.display())
        }
    })
}

/// Options for the suite: the versioned layout (which branches need), and
/// a cache directory of the process's own.
pub fn options() -> Options {
    static CACHE: OnceLock<std::path::PathBuf> = OnceLock::new();
    let cache = CACHE.get_or_init(|| tempfile::tempdir().expect("a temporary directory").keep());
    Options::new().layout(LayoutKind::Versioned).cache_dir(cache)
}

/// The fixture's URL, seeded once per process (a run per process, so each
/// run of the suite starts from the seed as written here).
async fn fixture() -> sqlite_s3::Result<&'static str> {
    static FIXTURE: OnceCell<String> = OnceCell::const_new();
    FIXTURE
        .get_or_try_init(|| async {
            let url = format!("{}/fixture-{}.db", bucket(), std::process::id());
            let mut db = Session::open(&url, &options()).await?;
            db.transaction(|tx| Ok(tx.execute_batch(SEED)?)).await?;
            db.close().await?;
            Ok(url)
        })
        .await
        .map(String::as_str)
}

/// A database of the test's own, branched from the fixture, opened.
///
/// # Failure
/// The errors of seeding the fixture, [`sqlite_s3::history::branch`] and
/// [`Session::open`].
pub async fn fresh_database(test: &str) -> sqlite_s3::Result<Session> {
    let fixture = fixture().await?;
    let url = format!("{}/test-{}-{test}-{:x}.db", bucket(), std::process::id(), rand_suffix());
    let store = options();
    let source = Remote::connect(fixture, store.store_options())?;
    let target = Remote::connect(&url, store.store_options())?;
    sqlite_s3::history::branch(&source, &target, None).await?;
    Session::open(&url, &store).await
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}
