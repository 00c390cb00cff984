//! `sqlite-s3-bench`: what a session costs, for each layout and database
//! size, against a moto S3 server on loopback. Run it with
//! `bash scripts/bench.sh` (see BENCHMARKS.md).
//!
//! Layouts: `baseline` does what the original PHP library did (download the
//! whole object, upload it whole, every session, no cache, no condition);
//! `single` and `versioned` are this project's. Sessions, each measured
//! alone through a counting store:
//! - cold open: an empty cache, one read query;
//! - warm read: the same again, with the cache warm;
//! - one-row write: a warm cache, one row updated, published;
//! - open after a change: another writer changed one row; a warm reader opens
//!   and reads.
//!
//! Output: a Markdown table on standard output, and `results.json` in the
//! output directory for the chart (`scripts/bench_chart.py`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use object_store::{ObjectStoreExt, PutPayload};
use serde::Serialize;
use sqlite_s3::admin::{CountingStore, Counts};
use sqlite_s3::{LayoutKind, Options, Remote, Session, StoreOptions};

const MIB: u64 = 1 << 20;
const ROW_BYTES: u64 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Layout {
    Baseline,
    Single,
    Versioned,
}

#[derive(Debug, Serialize)]
struct Measure {
    layout: Layout,
    size_mib: u64,
    session: &'static str,
    requests: u64,
    bytes_down: u64,
    bytes_up: u64,
    millis: u128,
}

struct Bench {
    store: StoreOptions,
    moto: &'static test_support::Moto,
    scratch: tempfile::TempDir,
    results: Vec<Measure>,
}

fn rows_for(size_mib: u64) -> u64 {
    size_mib * MIB / (ROW_BYTES + 60)
}

/// A local SQLite file of about `size_mib` MiB: `t(id, v)` with 1000-byte blobs.
fn make_database(path: &Path, size_mib: u64) {
    let conn = rusqlite::Connection::open(path).expect("creating the database");
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = DELETE;
         CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {})
         INSERT INTO t(v) SELECT randomblob({ROW_BYTES}) FROM n;",
        rows_for(size_mib)
    ))
    .expect("filling the database");
}

impl Bench {
    fn counted(&self, url: &str) -> (Remote, CountingStore) {
        Remote::connect(url, &self.store).expect("connecting").counted()
    }

    fn options(&self, cache: &str, layout: LayoutKind) -> Options {
        Options::new()
            .store(self.store.clone())
            .cache_dir(self.scratch.path().join(cache))
            .layout(layout)
            .max_attempts(20)
    }

    fn record(&mut self, layout: Layout, size_mib: u64, session: &'static str, counts: Counts, started: Instant) {
        let m = Measure {
            layout,
            size_mib,
            session,
            requests: counts.requests,
            bytes_down: counts.bytes_down,
            bytes_up: counts.bytes_up,
            millis: started.elapsed().as_millis(),
        };
        eprintln!("{m:?}");
        self.results.push(m);
    }

    async fn run(&mut self, size_mib: u64) {
        let seed = self.scratch.path().join(format!("seed-{size_mib}.db"));
        if !seed.exists() {
            eprintln!("making a {size_mib} MiB database");
            make_database(&seed, size_mib);
        }
        for layout in [Layout::Baseline, Layout::Single, Layout::Versioned] {
            let bucket = self.moto.unique_bucket(&format!("bench-{size_mib}"));
            let url = format!("s3://{bucket}/bench.db");
            self.seed(layout, &url, &seed).await;
            match layout {
                Layout::Baseline => self.baseline(&url, size_mib).await,
                _ => self.ours(layout, &url, size_mib).await,
            }
        }
    }

    async fn seed(&self, layout: Layout, url: &str, file: &Path) {
        let remote = Remote::connect(url, &self.store).expect("connecting");
        match layout {
            Layout::Baseline | Layout::Single => {
                let bytes = std::fs::read(file).expect("reading the seed");
                remote
                    .store()
                    .put(remote.key(), PutPayload::from(bytes))
                    .await
                    .expect("uploading the seed");
            }
            Layout::Versioned => {
                let options = self.options("seeder", LayoutKind::Versioned);
                sqlite_s3::transfer::push_file(remote, &options, file, false)
                    .await
                    .expect("pushing the seed");
            }
        }
    }

    /// One session of the original PHP library: GET whole, work, PUT whole.
    async fn baseline_session(&self, remote: &Remote, write: bool) {
        let work = tempfile::tempdir_in(self.scratch.path()).expect("scratch");
        let path = work.path().join("db.sqlite");
        let bytes = remote
            .store()
            .get(remote.key())
            .await
            .expect("GET")
            .bytes()
            .await
            .expect("body");
        std::fs::write(&path, &bytes).expect("writing");
        let conn = rusqlite::Connection::open(&path).expect("opening");
        let _: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .expect("reading");
        if write {
            conn.execute("UPDATE t SET v = randomblob(1000) WHERE id = 1", [])
                .expect("writing");
        }
        drop(conn);
        if write {
            let bytes = std::fs::read(&path).expect("reading");
            remote
                .store()
                .put(remote.key(), PutPayload::from(bytes))
                .await
                .expect("PUT");
        }
    }

    async fn baseline(&mut self, url: &str, size_mib: u64) {
        let (remote, counter) = self.counted(url);
        for (name, write) in [("cold open", false), ("warm read", false), ("one-row write", true)] {
            counter.reset();
            let started = Instant::now();
            self.baseline_session(&remote, write).await;
            self.record(Layout::Baseline, size_mib, name, counter.counts(), started);
        }
        // Another writer changes a row; this reader pays a full download again.
        let (other, _) = self.counted(url);
        self.baseline_session(&other, true).await;
        counter.reset();
        let started = Instant::now();
        self.baseline_session(&remote, false).await;
        self.record(
            Layout::Baseline,
            size_mib,
            "open after a change",
            counter.counts(),
            started,
        );
    }

    async fn ours(&mut self, layout: Layout, url: &str, size_mib: u64) {
        let kind = match layout {
            Layout::Versioned => LayoutKind::Versioned,
            _ => LayoutKind::Single,
        };
        let reader = self.options(&format!("reader-{size_mib}-{layout:?}"), kind);
        let (remote, counter) = self.counted(url);
        let read = |session: &Session| {
            let _: i64 = session
                .connection()
                .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                .expect("reading");
        };
        for name in ["cold open", "warm read"] {
            counter.reset();
            let started = Instant::now();
            let session = Session::open_remote(remote.clone(), &reader).await.expect("opening");
            read(&session);
            session.close().await.expect("closing");
            self.record(layout, size_mib, name, counter.counts(), started);
        }
        let rows = rows_for(size_mib);
        let update = move |tx: &rusqlite::Transaction<'_>| -> sqlite_s3::Result<()> {
            let id = fastrand::u64(1..=rows);
            tx.execute("UPDATE t SET v = randomblob(1000) WHERE id = ?1", [id])?;
            Ok(())
        };
        counter.reset();
        let started = Instant::now();
        let mut session = Session::open_remote(remote.clone(), &reader).await.expect("opening");
        session.transaction(update).await.expect("writing");
        session.close().await.expect("closing");
        self.record(layout, size_mib, "one-row write", counter.counts(), started);

        let writer = self.options(&format!("writer-{size_mib}-{layout:?}"), kind);
        let mut other = Session::open(url, &writer).await.expect("opening");
        other.transaction(update).await.expect("writing");
        other.close().await.expect("closing");
        counter.reset();
        let started = Instant::now();
        let session = Session::open_remote(remote.clone(), &reader).await.expect("opening");
        read(&session);
        session.close().await.expect("closing");
        self.record(layout, size_mib, "open after a change", counter.counts(), started);

        if layout == Layout::Versioned {
            // Branching a known version (as a test suite forking a fixture
            // does): read it, record the branch, create the branch.
            let version = session_version(url, &reader).await;
            let (source, source_counter) = self.counted(url);
            let (target, target_counter) = self.counted(&url.replace("bench.db", "branch.db"));
            let started = Instant::now();
            sqlite_s3::history::branch(&source, &target, Some(version))
                .await
                .expect("branching");
            let (s, t) = (source_counter.counts(), target_counter.counts());
            let counts = Counts {
                requests: s.requests + t.requests,
                bytes_down: s.bytes_down + t.bytes_down,
                bytes_up: s.bytes_up + t.bytes_up,
                ..Counts::default()
            };
            self.record(layout, size_mib, "branch", counts, started);
        }
    }
}

/// The newest version number of a versioned database.
async fn session_version(url: &str, options: &Options) -> u64 {
    let session = Session::open(url, options).await.expect("opening");
    let version = match session.version().expect("a version") {
        sqlite_s3::Version::Numbered(n) => n,
        other => panic!("not a versioned database: version {other}"),
    };
    session.close().await.expect("closing");
    version
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= MIB => format!("{:.1} MiB", b as f64 / MIB as f64),
        b if b >= 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

fn table(results: &[Measure]) -> String {
    let mut out =
        String::from("| size | layout | session | requests | down | up | time |\n|---:|---|---|---:|---:|---:|---:|\n");
    for m in results {
        out.push_str(&format!(
            "| {} MiB | {} | {} | {} | {} | {} | {} ms |\n",
            m.size_mib,
            serde_json::to_value(m.layout)
                .expect("serializes")
                .as_str()
                .unwrap_or_default(),
            m.session,
            m.requests,
            human(m.bytes_down),
            human(m.bytes_up),
            m.millis
        ));
    }
    out
}

#[tokio::main]
async fn main() {
    let mut sizes = vec![1, 64, 1024];
    let mut out = PathBuf::from("target/bench");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--sizes" => {
                sizes = args
                    .next()
                    .expect("--sizes takes a list such as 1,64")
                    .split(',')
                    .map(|s| s.parse().expect("sizes are whole MiB"))
                    .collect();
            }
            "--out" => out = PathBuf::from(args.next().expect("--out takes a directory")),
            other => panic!("unknown argument {other}: use --sizes 1,64,1024 --out DIR"),
        }
    }
    let moto = test_support::Moto::shared().expect("moto is not installed: run scripts/bench.sh");
    let store = StoreOptions::new()
        .endpoint(moto.endpoint())
        .region("us-east-1")
        .credentials("bench", "bench");
    std::fs::create_dir_all(&out).expect("creating the output directory");
    let scratch = tempfile::tempdir_in(&out).expect("scratch directory");
    let mut bench = Bench {
        store,
        moto,
        scratch,
        results: Vec::new(),
    };
    for size in sizes {
        bench.run(size).await;
    }
    let json = serde_json::to_vec_pretty(&bench.results).expect("serializes");
    std::fs::write(out.join("results.json"), json).expect("writing results.json");
    let table = table(&bench.results);
    std::fs::write(out.join("results.md"), &table).expect("writing results.md");
    println!("{table}");
}
