//! `sqlite-s3 info`.

use test_support::cli::{Place, assert_exit, assert_ok, mark_open, stdout};
use test_support::on_every_place;

fn info_json(place: &Place, cache: &str, url: &str) -> serde_json::Value {
    let out = place.run(cache, &["info", url, "--format", "json"]);
    assert_ok(&out);
    serde_json::from_str(&stdout(&out)).unwrap()
}

on_every_place!(info_describes_the_database);

fn info_describes_the_database(place: &Place) {
    let url = place.url("app.db");
    assert_exit(&place.run("probe", &["info", &url]), 7, "does not exist yet");
    assert_ok(&place.run(
        "writer",
        &[
            "exec",
            &url,
            "CREATE TABLE a(x); CREATE TABLE \"b c\"(y); INSERT INTO a VALUES (1), (2), (3)",
        ],
    ));
    let v = info_json(place, "me", &url);
    assert_eq!(v["url"], url.as_str());
    assert_eq!(v["layout"], "single");
    assert_eq!(v["page_size"], 4096);
    assert_eq!(v["size"], v["page_count"].as_u64().unwrap() * 4096);
    assert_eq!(v["journal_mode"], "delete");
    assert!(v["etag"].is_string());
    assert!(v["last_modified"].as_str().unwrap().ends_with('Z'));
    assert_eq!(v["local_copy"], "absent");
    assert_eq!(
        v["tables"],
        serde_json::json!([{"name": "a", "rows": 3}, {"name": "b c", "rows": 0}])
    );
    assert_eq!(info_json(place, "me", &url)["local_copy"], "clean");

    let out = place.run("me", &["info", &url]);
    assert_ok(&out);
    let text = stdout(&out);
    assert!(text.contains("page size:     4096"), "{text}");
    assert!(text.contains("local copy:    clean"), "{text}");
    assert!(text.contains("  a    3 rows"), "{text}");
}

#[test]
fn info_reports_unpublished_changes_without_publishing_them() {
    let place = Place::file();
    let url = place.url("app.db");
    assert_ok(&place.run("me", &["exec", &url, "CREATE TABLE a(x)"]));
    // Commit to the working copy without publishing, and leave the slot
    // marked open, as a killed process would.
    let db_dir = std::fs::read_dir(place.cache("me"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let working_copy = db_dir.join("slot-0/db.sqlite");
    rusqlite::Connection::open(&working_copy)
        .unwrap()
        .execute("INSERT INTO a VALUES (1)", [])
        .unwrap();
    mark_open(&working_copy);
    let remote_before = std::fs::read(place.object("app.db")).unwrap();

    let v = info_json(&place, "me", &url);
    assert_eq!(v["local_copy"], "dirty");
    assert_eq!(v["local_changes"], working_copy.display().to_string());
    assert_eq!(
        v["tables"],
        serde_json::json!([{"name": "a", "rows": 0}]),
        "shows the remote"
    );
    assert_eq!(
        std::fs::read(place.object("app.db")).unwrap(),
        remote_before,
        "published nothing"
    );
}
