//! `sqlite-s3 log`, `restore`, `branch`, `gc`, and `--layout versioned`.

use test_support::cli::{Place, assert_exit, assert_ok, json_rows, stderr, stdout};
use test_support::on_every_place;

fn value(place: &Place, url: &str) -> serde_json::Value {
    json_rows(&place.run("reader", &["query", url, "SELECT v FROM kv", "--format", "json"]))
}

on_every_place!(history, convert);

fn history(place: &Place) {
    let url = place.url("app.db");
    assert_ok(&place.run(
        "me",
        &[
            "--layout",
            "versioned",
            "exec",
            &url,
            "CREATE TABLE kv(v); INSERT INTO kv VALUES (1)",
        ],
    ));
    assert_ok(&place.run("me", &["exec", &url, "UPDATE kv SET v = 2"]));
    assert_ok(&place.run("me", &["exec", &url, "UPDATE kv SET v = 3"]));

    let out = place.run("me", &["log", &url, "--format", "json"]);
    let versions: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(versions.as_array().unwrap().len(), 3);
    assert_eq!(versions[2]["version"], 3);
    let out = place.run("me", &["log", &url]);
    assert!(stdout(&out).lines().count() == 4, "{}", stdout(&out));

    assert_ok(&place.run("me", &["restore", &url, "--version", "1"]));
    assert_eq!(value(place, &url), serde_json::json!([{"v": 1}]));
    let at = versions[1]["committed_at"].as_str().unwrap();
    assert_ok(&place.run("me", &["restore", &url, "--at", at]));
    assert_eq!(value(place, &url), serde_json::json!([{"v": 2}]));
    assert_exit(&place.run("me", &["restore", &url, "--at", "yesterday"]), 2, "RFC 3339");
    assert_exit(
        &place.run("me", &["restore", &url, "--version", "99"]),
        7,
        "has no version 99",
    );

    let fork = place.url("fork.db");
    assert_ok(&place.run("me", &["branch", &url, &fork, "--version", "3"]));
    assert_ok(&place.run("me", &["exec", &fork, "UPDATE kv SET v = 30"]));
    assert_eq!(value(place, &fork), serde_json::json!([{"v": 30}]));
    assert_eq!(value(place, &url), serde_json::json!([{"v": 2}]));

    assert_exit(
        &place.run("me", &["gc", &url, "--keep", "1", "--grace", "5m"]),
        2,
        "at least 1h",
    );
    let out = place.run("me", &["gc", &url, "--keep", "1"]);
    assert_ok(&out);
    assert!(
        stderr(&out).contains("kept 1 version(s); deleted 4 version(s)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(value(place, &url), serde_json::json!([{"v": 2}]));
    assert_eq!(
        value(place, &fork),
        serde_json::json!([{"v": 30}]),
        "the branch keeps its chunks"
    );

    let info = place.run("fresh", &["info", &url, "--format", "json"]);
    let info: serde_json::Value = serde_json::from_str(&stdout(&info)).unwrap();
    assert_eq!(info["layout"], "versioned");
    assert_eq!(info["version"], 5);

    let file = place.dir.path().join("plain.db");
    assert_ok(&place.run("me", &["pull", &url, file.to_str().unwrap()]));
    let conn = rusqlite::Connection::open(&file).unwrap();
    let v: i64 = conn.query_row("SELECT v FROM kv", [], |r| r.get(0)).unwrap();
    assert_eq!(v, 2, "pull gives a plain SQLite file");
}

#[test]
fn history_of_a_single_object_database_says_what_to_do() {
    let place = Place::file();
    let url = place.url("app.db");
    assert_ok(&place.run("me", &["exec", &url, "CREATE TABLE kv(v)"]));
    assert_exit(&place.run("me", &["log", &url]), 7, "versioned layout");
}

fn convert(place: &Place) {
    let url = place.url("app.db");
    assert_ok(&place.run("me", &["exec", &url, "CREATE TABLE kv(v); INSERT INTO kv VALUES (1)"]));
    let file = place.dir.path().join("before.db");
    assert_ok(&place.run("me", &["pull", &url, file.to_str().unwrap()]));
    let out = place.run("me", &["convert", &url, "--to", "versioned"]);
    assert_ok(&out);
    assert!(
        stderr(&out).contains("from the single-object layout to the versioned layout (version 1)"),
        "{}",
        stderr(&out)
    );
    // A file pulled before the move is not pushed over it.
    assert_exit(
        &place.run("me", &["push", file.to_str().unwrap(), &url]),
        4,
        "push --force",
    );
    // A machine that knew it as a single object follows the move.
    assert_ok(&place.run("me", &["exec", &url, "UPDATE kv SET v = 2"]));
    let info = place.run("fresh", &["info", &url, "--format", "json"]);
    let info: serde_json::Value = serde_json::from_str(&stdout(&info)).unwrap();
    assert_eq!((&info["layout"], &info["version"]), (&"versioned".into(), &2.into()));

    let out = place.run("me", &["convert", &url, "--to", "versioned"]);
    assert_ok(&out);
    assert!(
        stderr(&out).contains("already in the versioned layout"),
        "{}",
        stderr(&out)
    );

    assert_ok(&place.run("other", &["convert", &url, "--to", "single"]));
    assert_ok(&place.run("me", &["exec", &url, "UPDATE kv SET v = 3"]));
    assert_eq!(value(place, &url), serde_json::json!([{"v": 3}]));
    let out = place.run("me", &["log", &url]);
    assert!(
        stdout(&out)
            .lines()
            .last()
            .unwrap()
            .ends_with("(moved to the single-object layout)"),
        "{}",
        stdout(&out)
    );
    assert_exit(
        &place.run("me", &["restore", &url, "--version", "1"]),
        7,
        "moved to the single-object layout",
    );
    assert_exit(
        &place.run("me", &["convert", &place.url("none.db"), "--to", "versioned"]),
        7,
        "does not exist",
    );
    assert_exit(
        &place.run("me", &["convert", &url, "--to", "sideways"]),
        2,
        "possible values",
    );
}
