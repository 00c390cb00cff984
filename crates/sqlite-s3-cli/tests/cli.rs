//! The `sqlite-s3` program, run as a user runs it.

use test_support::cli::{
    Place, assert_exit, assert_ok, json_rows, leave_unpublished_change, sqlite_s3, stderr, stdout,
};
use test_support::{on_every_place, on_every_place_and_layout};

on_every_place_and_layout!(racing_processes_lose_no_update);

/// Four processes at once, each with its own cache directory, each adding 1
/// to one counter 25 times with `exec`: every increment lands exactly once.
fn racing_processes_lose_no_update(place: &Place, layout: &str) {
    race(place, false, layout);
}

#[test]
fn racing_processes_sharing_a_cache_directory_lose_no_update() {
    race(&Place::file(), true, "single");
}

/// The race, each process with its own cache directory (or all with one),
/// on a database created in `layout`.
fn race(place: &Place, shared_cache: bool, layout: &str) {
    let url = place.url("race.db");
    let create = "CREATE TABLE counter(n INTEGER); INSERT INTO counter VALUES (0)";
    assert_ok(&place.run("setup", &["--layout", layout, "exec", &url, create]));
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
    let out = place.run("check", &["info", &url, "--format", "json"]);
    let info: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(info["layout"], layout);
}

on_every_place!(exec_then_query);

fn exec_then_query(place: &Place) {
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
    if place.endpoint.is_none() {
        // The object is a plain SQLite file that sqlite3 (here rusqlite) opens.
        let conn = rusqlite::Connection::open(place.object("app.db")).unwrap();
        let n: i64 = conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 2);
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
        &[
            "-vv",
            "--endpoint",
            &endpoint,
            "query",
            "s3://some-bucket/app.db",
            "SELECT 1",
        ],
    );
    assert_exit(
        &out,
        5,
        "the store failed while downloading for s3://some-bucket/app.db: no answer",
    );
}

#[test]
fn verbose_logs_each_request_and_the_cost() {
    let place = Place::file();
    let url = place.url("app.db");
    assert_ok(&place.run("a", &["exec", &url, "CREATE TABLE t(x)"]));
    let out = place.run("a", &["-v", "exec", &url, "INSERT INTO t VALUES (1)"]);
    assert_ok(&out);
    let log = stderr(&out);
    assert!(log.contains("GET app.db -> not modified, 0 bytes"), "{log}");
    assert!(log.contains("PUT app.db -> ok, 8192 bytes"), "{log}");
    assert!(
        log.contains("2 request(s): 1 GET, 0 HEAD, 1 PUT, 0 LIST; 0 bytes down, 8192 bytes up"),
        "{log}"
    );
    let quiet = place.run("a", &["exec", &url, "INSERT INTO t VALUES (2)"]);
    assert_eq!(stderr(&quiet), "", "silent without -v");
}

#[test]
fn exec_reads_sql_from_a_file_or_standard_input() {
    let place = Place::file();
    let url = place.url("app.db");
    let script = place.dir.path().join("seed.sql");
    std::fs::write(&script, "CREATE TABLE t(x);\nINSERT INTO t VALUES (1);\n").unwrap();
    assert_ok(&place.run("a", &["exec", &url, "-f", script.to_str().unwrap()]));
    let mut child = place
        .command("a", &["exec", &url, "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"INSERT INTO t VALUES (2);")
        .unwrap();
    assert_ok(&child.wait_with_output().unwrap());
    let out = place.run("b", &["query", &url, "SELECT x FROM t", "--format", "jsonl"]);
    assert_ok(&out);
    assert_eq!(stdout(&out), "{\"x\":1}\n{\"x\":2}\n");
    let missing = place.run("a", &["exec", &url, "-f", "/no/such/file.sql"]);
    assert_exit(&missing, 1, "/no/such/file.sql");
}

#[test]
fn no_cache_leaves_nothing_behind() {
    let place = Place::file();
    let url = place.url("app.db");
    let tmp = place.dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let out = sqlite_s3(None)
        .env("TMPDIR", &tmp)
        .args([
            "--no-cache",
            "exec",
            &url,
            "CREATE TABLE t(x); INSERT INTO t VALUES (1)",
        ])
        .output()
        .unwrap();
    assert_ok(&out);
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "the throwaway cache is removed"
    );
    let out = sqlite_s3(None)
        .env("TMPDIR", &tmp)
        .args(["--no-cache", "query", &url, "SELECT x FROM t", "--format", "csv"])
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "x\r\n1\r\n");
}

#[test]
fn query_formats_show_null_and_blob_values() {
    let place = Place::file();
    let url = place.url("app.db");
    assert_ok(&place.run(
        "a",
        &[
            "exec",
            &url,
            "CREATE TABLE t(a, b); INSERT INTO t VALUES (NULL, x'00ff')",
        ],
    ));
    let run = |format: &str| {
        let out = place.run("a", &["query", &url, "SELECT a, b FROM t", "--format", format]);
        assert_ok(&out);
        stdout(&out)
    };
    assert_eq!(run("table"), "a     b\n----  -------\nNULL  x'00ff'\n");
    assert_eq!(run("line"), "a = NULL\nb = x'00ff'\n");
    assert_eq!(run("markdown"), "| a | b |\n| --- | --- |\n| NULL | x'00ff' |\n");
    assert_eq!(run("jsonl"), "{\"a\":null,\"b\":\"00ff\"}\n");
    assert_eq!(run("csv"), "a,b\r\n,x'00ff'\r\n");
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = sqlite_s3(None).args(["completions", shell]).output().unwrap();
        assert_ok(&out);
        assert!(stdout(&out).contains("sqlite-s3"), "{shell}");
        assert!(stdout(&out).contains("pull"), "{shell}: completes subcommands");
    }
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
fn unpublished_changes_are_kept_by_reads_and_exit_9_on_sync_until_discarded() {
    let place = Place::file();
    let url = place.url("app.db");
    leave_unpublished_change(&place, &url);
    // ...while someone else publishes.
    assert_ok(&place.run("theirs", &["exec", &url, "INSERT INTO t VALUES (3)"]));

    // A read never writes: it reads the remote and names the command that
    // publishes what is kept.
    let out = place.run(
        "mine",
        &["query", &url, "SELECT x FROM t ORDER BY x", "--format", "json"],
    );
    assert_eq!(json_rows(&out), serde_json::json!([{"x": 1}, {"x": 3}]));
    assert!(
        stderr(&out).contains(&format!("sqlite-s3 sync {url}")),
        "{}",
        stderr(&out)
    );
    let out = place.run("mine", &["sync", &url]);
    assert_exit(&out, 9, "--discard-pending");
    assert_ok(&place.run("mine", &["--discard-pending", "sync", &url]));
    let out = place.run(
        "mine",
        &["query", &url, "SELECT x FROM t ORDER BY x", "--format", "json"],
    );
    assert_eq!(json_rows(&out), serde_json::json!([{"x": 1}, {"x": 3}]));
    assert!(!stderr(&out).contains("unpublished"), "{}", stderr(&out));
}

#[test]
fn a_change_left_unpublished_is_published_by_sync_not_by_a_read() {
    let place = Place::file();
    let url = place.url("app.db");
    leave_unpublished_change(&place, &url);

    assert_ok(&place.run("mine", &["query", &url, "SELECT 1"]));
    let read = || {
        place.run(
            "other",
            &["query", &url, "SELECT x FROM t ORDER BY x", "--format", "json"],
        )
    };
    assert_eq!(
        json_rows(&read()),
        serde_json::json!([{"x": 1}]),
        "the read published nothing"
    );
    assert_ok(&place.run("mine", &["sync", &url]));
    assert_eq!(json_rows(&read()), serde_json::json!([{"x": 1}, {"x": 2}]));
}

#[test]
fn help_names_the_exit_codes_and_gives_examples() {
    let out = sqlite_s3(None).arg("--help").output().unwrap();
    assert_ok(&out);
    assert!(stdout(&out).contains("4  conflict"), "{}", stdout(&out));
    for command in ["exec", "query", "shell", "sync", "pull", "push", "info", "completions"] {
        let out = sqlite_s3(None).args([command, "--help"]).output().unwrap();
        assert!(stdout(&out).contains("Example"), "{command}: {}", stdout(&out));
    }
}
