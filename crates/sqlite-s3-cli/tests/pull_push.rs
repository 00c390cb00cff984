//! `sqlite-s3 pull` and `sqlite-s3 push`, and their progress bars.

use rexpect::session::{Options, spawn_with_options};
use test_support::cli::{Place, assert_exit, assert_ok, json_rows, stderr};
use test_support::on_every_place_and_layout;

fn count(file: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(file).unwrap();
    conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap()
}

on_every_place_and_layout!(pull_then_push);

fn pull_then_push(place: &Place, layout: &str) {
    let url = place.url("app.db");
    let file = place.dir.path().join("local.db");
    let missing = place.run("me", &["pull", &url, file.to_str().unwrap()]);
    assert_exit(&missing, 7, "does not exist yet");
    assert!(!file.exists());

    assert_ok(&place.run(
        "me",
        &[
            "--layout",
            layout,
            "exec",
            &url,
            "CREATE TABLE t(x); INSERT INTO t VALUES (1)",
        ],
    ));
    assert_ok(&place.run("me", &["pull", &url, file.to_str().unwrap()]));
    assert_eq!(count(&file), 1, "a plain SQLite file");

    rusqlite::Connection::open(&file)
        .unwrap()
        .execute("INSERT INTO t VALUES (2)", [])
        .unwrap();
    assert_ok(&place.run("me", &["push", file.to_str().unwrap(), &url]));
    let out = place.run(
        "other",
        &["query", &url, "SELECT count(*) AS n FROM t", "--format", "json"],
    );
    assert_eq!(json_rows(&out), serde_json::json!([{"n": 2}]));

    // Someone changes the remote: pushing the old file would lose that.
    assert_ok(&place.run("other", &["exec", &url, "INSERT INTO t VALUES (3)"]));
    let out = place.run("me", &["push", file.to_str().unwrap(), &url]);
    assert_exit(&out, 4, "push --force");
    let out = place.run(
        "other",
        &["query", &url, "SELECT count(*) AS n FROM t", "--format", "json"],
    );
    assert_eq!(json_rows(&out), serde_json::json!([{"n": 3}]), "untouched");

    // Unless asked to.
    assert_ok(&place.run("me", &["push", "--force", file.to_str().unwrap(), &url]));
    let out = place.run(
        "other",
        &["query", &url, "SELECT count(*) AS n FROM t", "--format", "json"],
    );
    assert_eq!(json_rows(&out), serde_json::json!([{"n": 2}]));
    // Pushes keep the layout the database has.
    let info = json_rows(&place.run("other", &["info", &url, "--format", "json"]));
    assert_eq!(info["layout"], layout);
}

#[test]
fn pull_never_puts_a_file_beside_a_stale_journal() {
    let place = Place::file();
    let url = place.url("app.db");
    assert_ok(&place.run("me", &["exec", &url, "CREATE TABLE t(x); INSERT INTO t VALUES (1)"]));
    let file = place.dir.path().join("local.db");
    std::fs::write(&file, "old contents").unwrap();
    let wal = place.dir.path().join("local.db-wal");
    std::fs::write(&wal, "frames of the old file").unwrap();
    let out = place.run("me", &["pull", &url, file.to_str().unwrap()]);
    assert_exit(&out, 9, "local.db-wal exists");
    assert_eq!(std::fs::read(&file).unwrap(), b"old contents", "left as it was");
    std::fs::remove_file(&wal).unwrap();
    assert_ok(&place.run("me", &["pull", &url, file.to_str().unwrap()]));
    assert_eq!(count(&file), 1);
}

#[test]
fn push_creates_a_database_but_never_overwrites_one_it_did_not_pull() {
    let place = Place::file();
    let fixture = place.dir.path().join("fixture.db");
    let conn = rusqlite::Connection::open(&fixture).unwrap();
    conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);")
        .unwrap();
    // The file is still open in WAL mode: its rows are in the -wal file.
    let url = place.url("test-1.db");
    let out = place.run("me", &["push", fixture.to_str().unwrap(), &url]);
    assert_ok(&out);
    assert!(stderr(&out).contains("created"), "{}", stderr(&out));
    drop(conn);
    assert_eq!(count(&place.object("test-1.db")), 2, "the pushed copy is complete");

    let other = place.dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t(x)")
        .unwrap();
    let out = place.run("me", &["push", other.to_str().unwrap(), &url]);
    assert_exit(&out, 4, "conflict");
    assert_eq!(count(&place.object("test-1.db")), 2);
}

#[test]
fn push_refuses_a_file_that_is_not_a_sound_database() {
    let place = Place::file();
    let url = place.url("app.db");
    let junk = place.dir.path().join("junk.db");
    std::fs::write(&junk, "definitely not sqlite".repeat(100)).unwrap();
    assert_exit(
        &place.run("me", &["push", junk.to_str().unwrap(), &url]),
        8,
        "not a sound SQLite database",
    );

    let good = place.dir.path().join("good.db");
    let conn = rusqlite::Connection::open(&good).unwrap();
    conn.execute_batch(
        "CREATE TABLE t(x);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
         INSERT INTO t SELECT printf('%0100d', i) FROM n;",
    )
    .unwrap();
    drop(conn);
    let mut bytes = std::fs::read(&good).unwrap();
    let truncated = place.dir.path().join("truncated.db");
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&truncated, &bytes).unwrap();
    assert_exit(
        &place.run("me", &["push", truncated.to_str().unwrap(), &url]),
        8,
        "truncated.db",
    );
    assert!(!place.object("app.db").exists(), "nothing was published");
}

/// A database of about 3 MiB, past the progress bar's threshold.
fn large_database(place: &Place, url: &str) {
    assert_ok(&place.run(
        "seed",
        &[
            "exec",
            url,
            "CREATE TABLE t(x, pad);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
             INSERT INTO t SELECT i, randomblob(1000) FROM n;",
        ],
    ));
}

#[test]
fn a_large_pull_shows_a_progress_bar_on_a_terminal_only() {
    let place = Place::file();
    let url = place.url("big.db");
    large_database(&place, &url);
    let file = place.dir.path().join("big-copy.db");

    let options = Options::new().timeout_ms(Some(30_000)).strip_ansi_escape_codes(true);
    let mut session =
        spawn_with_options(place.command("tty", &["pull", &url, file.to_str().unwrap()]), options).unwrap();
    session.exp_string("downloading").unwrap();
    session.exp_string("MiB").unwrap();
    session.exp_eof().unwrap();
    assert_eq!(count(&file), 3000);

    std::fs::remove_file(&file).unwrap();
    let out = place.run("pipe", &["pull", &url, file.to_str().unwrap()]);
    assert_ok(&out);
    assert!(
        !stderr(&out).contains("downloading"),
        "no bar in a pipe: {}",
        stderr(&out)
    );
    let out = place.run(
        "quiet",
        &["--quiet", "pull", &url, place.dir.path().join("q.db").to_str().unwrap()],
    );
    assert_eq!(stderr(&out), "");
}
