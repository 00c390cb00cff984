//! The `sqlite-s3` program, run as a user runs it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

const SECRET: &str = "cli-test-secret-never-printed";

/// Where databases go for one test: a local directory, or a moto bucket.
struct Place {
    dir: TempDir,
    bucket_url: String,
    endpoint: Option<String>,
}

impl Place {
    fn file() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bucket_url = format!("file://{}/bucket", dir.path().display());
        std::fs::create_dir(dir.path().join("bucket")).unwrap();
        Self {
            dir,
            bucket_url,
            endpoint: None,
        }
    }

    fn s3() -> Option<Self> {
        let moto = test_support::Moto::shared()?;
        Some(Self {
            dir: tempfile::tempdir().unwrap(),
            bucket_url: format!("s3://{}", moto.unique_bucket("cli")),
            endpoint: Some(moto.endpoint()),
        })
    }

    fn url(&self, name: &str) -> String {
        format!("{}/{name}", self.bucket_url)
    }

    fn cache(&self, name: &str) -> PathBuf {
        self.dir.path().join("caches").join(name)
    }

    /// `sqlite-s3 ARGS` with a cache directory of its own name.
    fn run(&self, cache: &str, args: &[&str]) -> Output {
        let mut cmd = sqlite_s3(self.endpoint.as_deref());
        cmd.arg("--cache-dir").arg(self.cache(cache)).args(args);
        cmd.output().unwrap()
    }
}

fn sqlite_s3(endpoint: Option<&str>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sqlite-s3"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AWS_") || key == "SQLITE_S3_CACHE_DIR" {
            cmd.env_remove(key);
        }
    }
    cmd.env("AWS_ACCESS_KEY_ID", "cli-test-key")
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1");
    if let Some(endpoint) = endpoint {
        cmd.env("AWS_ENDPOINT_URL", endpoint);
    }
    cmd
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
fn assert_ok(output: &Output) {
    assert!(output.status.success(), "{:?}\n{}", output.status, stderr(output));
}

#[track_caller]
fn assert_exit(output: &Output, code: i32, needle: &str) {
    assert_eq!(output.status.code(), Some(code), "{}", stderr(output));
    assert!(
        stderr(output).contains(needle),
        "expected {needle:?} in: {}",
        stderr(output)
    );
    assert!(
        !stderr(output).contains(SECRET),
        "the secret leaked: {}",
        stderr(output)
    );
}

fn json_rows(output: &Output) -> serde_json::Value {
    assert_ok(output);
    serde_json::from_str(&stdout(output)).unwrap_or_else(|e| panic!("{e}: {}", stdout(output)))
}

/// Four processes at once, each with its own cache directory (or all with
/// one), each adding 1 to one counter 25 times with `exec`: every increment
/// lands exactly once.
fn race(place: &Place, shared_cache: bool) {
    let url = place.url("race.db");
    assert_ok(&place.run(
        "setup",
        &[
            "exec",
            &url,
            "CREATE TABLE counter(n INTEGER); INSERT INTO counter VALUES (0)",
        ],
    ));
    std::thread::scope(|s| {
        for worker in 0..4 {
            let (url, place) = (&url, &place);
            s.spawn(move || {
                for _ in 0..25 {
                    let cache = if shared_cache {
                        "shared".to_string()
                    } else {
                        format!("worker-{worker}")
                    };
                    let out = place.run(
                        &cache,
                        &["exec", url, "UPDATE counter SET n = n + 1", "--retries", "200"],
                    );
                    assert_ok(&out);
                }
            });
        }
    });
    let out = place.run("check", &["query", &url, "SELECT n FROM counter", "--format", "json"]);
    assert_eq!(json_rows(&out), serde_json::json!([{"n": 100}]));
}

#[test]
fn racing_processes_lose_no_update_on_a_local_directory() {
    race(&Place::file(), false);
}

#[test]
fn racing_processes_sharing_a_cache_directory_lose_no_update() {
    race(&Place::file(), true);
}

#[test]
fn racing_processes_lose_no_update_on_s3() {
    if let Some(place) = Place::s3() {
        race(&place, false);
    }
}

fn round_trip(place: &Place) {
    let url = place.url("app.db");
    assert_ok(&place.run(
        "a",
        &[
            "exec",
            &url,
            "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, score REAL, data BLOB);
             INSERT INTO t(name, score, data) VALUES ('ada', 1.5, x'cafe'), ('日本', NULL, NULL);",
        ],
    ));
    let out = place.run("b", &["query", &url, "SELECT * FROM t ORDER BY id", "--format", "json"]);
    assert_eq!(
        json_rows(&out),
        serde_json::json!([
            {"id": 1, "name": "ada", "score": 1.5, "data": "cafe"},
            {"id": 2, "name": "日本", "score": null, "data": null},
        ])
    );
    let out = place.run(
        "b",
        &["query", &url, "SELECT id, name FROM t ORDER BY id", "--format", "csv"],
    );
    assert_ok(&out);
    assert_eq!(stdout(&out), "id,name\r\n1,ada\r\n2,日本\r\n");
    let out = place.run("c", &["query", &url, "SELECT name, score FROM t ORDER BY id"]);
    assert_ok(&out);
    assert_eq!(stdout(&out), "name  score\n----  -----\nada     1.5\n日本  NULL\n");
}

#[test]
fn exec_then_query_on_a_local_directory() {
    let place = Place::file();
    round_trip(&place);
    // The object is a plain SQLite file that sqlite3 (here rusqlite) opens.
    let conn = rusqlite::Connection::open(place.dir.path().join("bucket/app.db")).unwrap();
    let n: i64 = conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 2);
}

#[test]
fn exec_then_query_on_s3() {
    if let Some(place) = Place::s3() {
        round_trip(&place);
    }
}

#[test]
fn exec_runs_several_statements_in_one_transaction() {
    let place = Place::file();
    let url = place.url("app.db");
    assert_ok(&place.run(
        "a",
        &["exec", &url, "CREATE TABLE t(x UNIQUE); INSERT INTO t VALUES (1)"],
    ));
    let out = place.run(
        "a",
        &["exec", &url, "INSERT INTO t VALUES (2); INSERT INTO t VALUES (1)"],
    );
    assert_exit(&out, 3, "UNIQUE constraint failed");
    let out = place.run("b", &["query", &url, "SELECT x FROM t", "--format", "json"]);
    assert_eq!(
        json_rows(&out),
        serde_json::json!([{"x": 1}]),
        "the failed exec left nothing"
    );
}

#[test]
fn query_never_uploads() {
    let place = Place::file();
    let url = place.url("app.db");
    assert_ok(&place.run("a", &["exec", &url, "CREATE TABLE t(x); INSERT INTO t VALUES (1)"]));
    let object = place.dir.path().join("bucket/app.db");
    let before = (
        std::fs::read(&object).unwrap(),
        std::fs::metadata(&object).unwrap().modified().unwrap(),
    );
    assert_ok(&place.run("a", &["query", &url, "SELECT * FROM t"]));
    let out = place.run("a", &["query", &url, "INSERT INTO t VALUES (2)"]);
    assert_exit(&out, 3, "readonly");
    let after = (
        std::fs::read(&object).unwrap(),
        std::fs::metadata(&object).unwrap().modified().unwrap(),
    );
    assert_eq!(before, after);
}

#[test]
fn each_failure_has_its_exit_code_and_message() {
    let place = Place::file();
    let url = place.url("app.db");
    assert_ok(&place.run("a", &["exec", &url, "CREATE TABLE t(x)"]));

    assert_exit(
        &place.run("a", &["exec", "s3://", "SELECT 1"]),
        2,
        "invalid database URL",
    );
    assert_exit(&place.run("a", &["exec", &url, "SELEC 1"]), 3, "syntax error");
    assert_exit(
        &place.run("a", &["query", &place.url("nothing-here.db"), "SELECT 1"]),
        7,
        "does not exist yet",
    );
    let missing_dir = format!("file://{}/no-such-dir/app.db", place.dir.path().display());
    assert_exit(
        &place.run("a", &["exec", &missing_dir, "SELECT 1"]),
        7,
        "does not exist",
    );
    std::fs::write(
        place.dir.path().join("bucket/notes.txt"),
        "just some text, not SQLite".repeat(20),
    )
    .unwrap();
    assert_exit(
        &place.run("a", &["query", &place.url("notes.txt"), "SELECT 1"]),
        8,
        "not a SQLite database",
    );
}

#[test]
fn an_unreachable_endpoint_exits_5_without_the_secret() {
    let place = Place::file();
    let endpoint = test_support::closed_endpoint();
    let out = place.run(
        "a",
        &["--endpoint", &endpoint, "query", "s3://some-bucket/app.db", "SELECT 1"],
    );
    assert_exit(&out, 5, "could not reach the store for s3://some-bucket/app.db");
}

#[test]
fn refused_credentials_exit_6_without_the_secret() {
    let Some(moto) = test_support::Moto::start_with_auth("cli-guarded") else {
        return;
    };
    let place = Place::file();
    let out = place.run(
        "a",
        &[
            "--endpoint",
            &moto.endpoint(),
            "query",
            "s3://cli-guarded/app.db",
            "SELECT 1",
        ],
    );
    assert_exit(&out, 6, "access denied to s3://cli-guarded/app.db");
}

#[test]
fn a_missing_bucket_exits_7() {
    let Some(place) = Place::s3() else { return };
    let out = place.run("a", &["exec", "s3://no-such-bucket-cli/app.db", "CREATE TABLE t(x)"]);
    assert_exit(&out, 7, "no-such-bucket-cli");
}

#[test]
fn unpublished_changes_exit_9_until_discarded() {
    let place = Place::file();
    let url = place.url("app.db");
    leave_unpublished_change(&place, &url);
    // ...while someone else publishes.
    assert_ok(&place.run("theirs", &["exec", &url, "INSERT INTO t VALUES (3)"]));

    let out = place.run("mine", &["query", &url, "SELECT count(*) AS n FROM t"]);
    assert_exit(&out, 9, "--discard-pending");
    let out = place.run(
        "mine",
        &[
            "--discard-pending",
            "query",
            &url,
            "SELECT x FROM t ORDER BY x",
            "--format",
            "json",
        ],
    );
    assert_eq!(json_rows(&out), serde_json::json!([{"x": 1}, {"x": 3}]));
}

#[test]
fn a_change_left_unpublished_is_published_by_the_next_run() {
    let place = Place::file();
    let url = place.url("app.db");
    leave_unpublished_change(&place, &url);

    assert_ok(&place.run("mine", &["query", &url, "SELECT 1"]));
    let out = place.run(
        "other",
        &["query", &url, "SELECT x FROM t ORDER BY x", "--format", "json"],
    );
    assert_eq!(json_rows(&out), serde_json::json!([{"x": 1}, {"x": 2}]));
}

#[test]
fn help_names_the_exit_codes_and_gives_examples() {
    let out = sqlite_s3(None).arg("--help").output().unwrap();
    assert_ok(&out);
    assert!(stdout(&out).contains("4  conflict"), "{}", stdout(&out));
    for command in ["exec", "query"] {
        let out = sqlite_s3(None).args([command, "--help"]).output().unwrap();
        assert!(stdout(&out).contains("Example:"), "{command}: {}", stdout(&out));
    }
}

/// Creates `t` holding 1 with the cache "mine", then commits 2 to that
/// working copy without publishing, as a process killed between its commit
/// and its publish would leave it.
fn leave_unpublished_change(place: &Place, url: &str) {
    assert_ok(&place.run("mine", &["exec", url, "CREATE TABLE t(x); INSERT INTO t VALUES (1)"]));
    let db_dir = std::fs::read_dir(place.cache("mine"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let working_copy = db_dir.join("slot-0/db.sqlite");
    let conn = rusqlite::Connection::open(&working_copy).unwrap();
    conn.execute("INSERT INTO t VALUES (2)", []).unwrap();
    drop(conn);
    mark_open(&working_copy);
}

/// Marks a slot as left open by a session that never closed.
fn mark_open(working_copy: &Path) {
    let state_path = working_copy.with_file_name("state.json");
    let mut state: serde_json::Value = serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    state["status"] = "open".into();
    std::fs::write(state_path, serde_json::to_vec(&state).unwrap()).unwrap();
}
