//! Real stores through the binary: `doctor` on every server the tests run,
//! a store that ignores conditional requests refused for writing (`rclone
//! serve s3`) unless the user accepts last-writer-wins, the store check
//! remembered between runs, and credentials never shown.

use test_support::cli::*;
use test_support::on_places;

fn doctor(place: &Place, url: &str, format: &str) -> std::process::Output {
    place.run("doctor", &["doctor", url, "--format", format])
}

on_places!([s3, seaweed, azure] doctor_finds_a_tested_server_fit_for_writing);

fn doctor_finds_a_tested_server_fit_for_writing(place: &Place) {
    let url = place.url("app.db");
    let out = doctor(place, &url, "text");
    assert_ok(&out);
    let text = stdout(&out);
    assert!(
        text.contains("verdict:") && text.contains("fit for writing"),
        "{url}: {text}"
    );
    let report: serde_json::Value = serde_json::from_str(&stdout(&doctor(place, &url, "json"))).unwrap();
    for check in ["conditional_get", "ranged_get", "user_metadata", "listing"] {
        assert_eq!(report[check], true, "{url}: {check}: {report}");
    }
    assert_eq!(report["conditions"]["update_refused_when_stale"], true, "{url}");
    // The probes are removed.
    let out = place.run("after", &["query", &url, "SELECT 1"]);
    assert_exit(&out, 7, "does not exist");
}

#[test]
fn a_store_that_ignores_conditions_is_refused_for_writing_unless_accepted() {
    let Some(rclone) = test_support::Rclone::start() else {
        return;
    };
    let place = Place {
        dir: tempfile::tempdir().unwrap(),
        bucket_url: format!("s3://{}", rclone.bucket("ignored")),
        endpoint: Some(rclone.endpoint()),
    };
    let url = place.url("app.db");
    let out = place.run("a", &["exec", &url, "CREATE TABLE t(x); INSERT INTO t VALUES (1)"]);
    assert_exit(&out, 11, "does not honour conditional writes");
    let err = stderr(&out);
    assert!(err.contains(&rclone.endpoint()), "names the store: {err}");
    assert!(err.contains("stale ETag"), "says what it failed: {err}");
    assert!(err.contains("--unsafe-store"), "says what to do: {err}");
    let out = place.run("a", &["query", &url, "SELECT 1"]);
    assert_exit(&out, 7, "does not exist");

    // Accepted: last writer wins.
    assert_ok(&place.run(
        "a",
        &[
            "--unsafe-store",
            "exec",
            &url,
            "CREATE TABLE t(x); INSERT INTO t VALUES (1)",
        ],
    ));
    let out = place.run("b", &["query", &url, "SELECT x FROM t", "--format", "json"]);
    assert_eq!(json_rows(&out), serde_json::json!([{"x": 1}]));

    let out = doctor(&place, &url, "text");
    assert_eq!(out.status.code(), Some(11), "{}", stderr(&out));
    assert!(stdout(&out).contains("refused for writing"), "{}", stdout(&out));
}

#[test]
fn the_store_check_is_remembered_between_runs() {
    let Some(place) = Place::seaweed() else { return };
    let url = place.url("app.db");
    let probes = |out: &std::process::Output| stderr(out).matches("sqlite-s3-probe").count();
    let first = place.run("c", &["-v", "exec", &url, "CREATE TABLE t(x)"]);
    assert_ok(&first);
    assert!(probes(&first) >= 4, "the first write probes: {}", stderr(&first));
    let second = place.run("c", &["-v", "exec", &url, "INSERT INTO t VALUES (1)"]);
    assert_ok(&second);
    assert_eq!(probes(&second), 0, "remembered in the cache: {}", stderr(&second));
    // Reads never probe.
    let read = place.run("d", &["-v", "query", &url, "SELECT count(*) FROM t"]);
    assert_ok(&read);
    assert_eq!(probes(&read), 0, "{}", stderr(&read));
}

#[test]
fn a_wrong_azure_key_is_refused_without_showing_it() {
    let Some(place) = Place::azure() else { return };
    let wrong = "d3Jvbmcta2V5LW5ldmVyLXByaW50ZWQtYW55d2hlcmUtYXQtYWxsLXNlY3JldA==";
    let out = sqlite_s3(place.endpoint.as_deref())
        .env("AZURE_STORAGE_ACCOUNT_KEY", wrong)
        .arg("--cache-dir")
        .arg(place.cache("w"))
        .args(["query", &place.url("app.db"), "SELECT 1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    let shown = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        shown.contains("AZURE_STORAGE_ACCOUNT_KEY"),
        "says where the key comes from: {shown}"
    );
    assert!(!shown.contains(wrong) && !shown.contains(AZURITE_KEY), "{shown}");
}

#[test]
fn an_azure_database_round_trips_in_both_layouts() {
    let Some(place) = Place::azure() else { return };
    for layout in ["single", "versioned"] {
        let url = place.url(&format!("{layout}.db"));
        assert_ok(&place.run(
            "w",
            &[
                "--layout",
                layout,
                "exec",
                &url,
                "CREATE TABLE t(x); INSERT INTO t VALUES (7)",
            ],
        ));
        let out = place.run("r", &["query", &url, "SELECT x FROM t", "--format", "json"]);
        assert_eq!(json_rows(&out), serde_json::json!([{"x": 7}]), "{layout}");
        let out = place.run("r", &["info", &url, "--format", "json"]);
        assert_ok(&out);
        assert!(stdout(&out).contains(layout), "{}", stdout(&out));
    }
    let out = place.run("r", &["query", "az://no-such-container/app.db", "SELECT 1"]);
    assert_exit(&out, 7, "az storage container create");
}

/// Google Cloud Storage is built but has no emulator here: a broken service
/// account is reported naming the store's settings, never its key.
#[test]
fn a_broken_google_service_account_is_reported_without_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let account = dir.path().join("account.json");
    let key = "SECRETKEYMATERIALNEVERSHOWN";
    std::fs::write(
        &account,
        serde_json::json!({
            "type": "service_account",
            "private_key_id": "id",
            "private_key": format!("-----BEGIN PRIVATE KEY-----\n{key}\n-----END PRIVATE KEY-----\n"),
            "client_email": "someone@project.iam.gserviceaccount.com",
        })
        .to_string(),
    )
    .unwrap();
    let out = sqlite_s3(None)
        .env("GOOGLE_SERVICE_ACCOUNT", &account)
        .args(["--no-cache", "--endpoint", &test_support::closed_endpoint()])
        .args(["query", "gs://some-bucket/app.db", "SELECT 1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let shown = format!("{}{}", stdout(&out), stderr(&out));
    assert!(shown.contains("gs://some-bucket/app.db"), "{shown}");
    assert!(shown.contains("GOOGLE_SERVICE_ACCOUNT"), "{shown}");
    assert!(!shown.contains(key), "{shown}");
}
