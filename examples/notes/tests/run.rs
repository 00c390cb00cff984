//! The example run as a user would: the same commands on a plain file and
//! on a bucket (a local directory standing in for one).

use std::process::Command;

fn notes(database_url: &str, cache: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_notes"))
        .env("DATABASE_URL", database_url)
        .env("SQLITE_S3_CACHE_DIR", cache)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_same_commands_work_on_a_file_and_on_a_bucket() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("bucket")).unwrap();
    let plain = dir.path().join("notes.db").display().to_string();
    let bucket = format!("file://{}/bucket/notes.db", dir.path().display());
    for (url, cache) in [(&plain, "c1"), (&bucket, "c2")] {
        let cache = dir.path().join(cache);
        notes(url, &cache, &["add", "buy milk"]);
        assert_eq!(notes(url, &cache, &["add", "call mum"]), "1. buy milk\n2. call mum\n");
    }
    // Another machine (cache directory) sees the bucket's notes.
    assert_eq!(
        notes(&bucket, &dir.path().join("c3"), &["list"]),
        "1. buy milk\n2. call mum\n"
    );
    assert!(dir.path().join("bucket/notes.db").exists());
}
