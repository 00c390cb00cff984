//! `--profile` and `AWS_PROFILE`: credentials, region and endpoint from the
//! AWS configuration files, as `aws --profile` reads them.

#![cfg(feature = "aws-config")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;
use test_support::cli::{assert_exit, assert_ok, json_rows, stderr};

const PROFILE_SECRET: &str = "profile-secret-never-printed";

/// AWS configuration files in a directory of their own.
struct AwsFiles {
    dir: TempDir,
}

impl AwsFiles {
    /// `config` and `credentials` files holding the given text.
    fn new(config: &str, credentials: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config"), config).unwrap();
        std::fs::write(dir.path().join("credentials"), credentials).unwrap();
        Self { dir }
    }

    /// A script for `credential_process` that records each run in
    /// [`AwsFiles::process_runs`] and prints fixed keys.
    fn credential_process(&self) -> PathBuf {
        let script = self.dir.path().join("creds.sh");
        let runs = self.dir.path().join("runs");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho run >> '{}'\n\
                 echo '{{\"Version\": 1, \"AccessKeyId\": \"AKIDPROCESS\", \"SecretAccessKey\": \"{PROFILE_SECRET}\"}}'\n",
                runs.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        script
    }

    fn process_runs(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("runs"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// The program with no AWS settings but these files.
    fn command(&self, cache: &Path) -> Command {
        let mut cmd = test_support::cli::sqlite_s3(None);
        cmd.env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_REGION")
            .env("AWS_CONFIG_FILE", self.dir.path().join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", self.dir.path().join("credentials"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .arg("--cache-dir")
            .arg(cache);
        cmd
    }
}

fn run(mut cmd: Command, args: &[&str]) -> Output {
    cmd.args(args).output().unwrap()
}

#[test]
fn a_profile_gives_credentials_region_and_endpoint() {
    let Some(moto) = test_support::Moto::shared() else {
        return;
    };
    let bucket = moto.unique_bucket("profile");
    let url = format!("s3://{bucket}/app.db");
    let files = AwsFiles::new("", "");
    let script = files.credential_process();
    std::fs::write(
        files.dir.path().join("config"),
        format!(
            "[profile dev]\nregion = us-east-1\nendpoint_url = {}\ncredential_process = {}\n",
            moto.endpoint(),
            script.display()
        ),
    )
    .unwrap();
    let cache = files.dir.path().join("cache");

    let out = run(
        files.command(&cache),
        &[
            "--profile",
            "dev",
            "exec",
            &url,
            "CREATE TABLE t(x); INSERT INTO t VALUES (1)",
        ],
    );
    assert_ok(&out);
    assert!(files.process_runs() >= 1, "the profile's credential process ran");

    // AWS_PROFILE does the same as --profile.
    let mut cmd = files.command(&cache);
    cmd.env("AWS_PROFILE", "dev");
    let out = run(cmd, &["query", &url, "SELECT x FROM t", "--format", "json"]);
    assert_eq!(json_rows(&out), serde_json::json!([{"x": 1}]));
}

#[test]
fn flags_win_over_the_profile_and_the_profile_over_the_environment() {
    let Some(moto) = test_support::Moto::shared() else {
        return;
    };
    let bucket = moto.unique_bucket("profile");
    let url = format!("s3://{bucket}/app.db");
    let files = AwsFiles::new(
        &format!(
            "[profile stale]\nregion = us-east-1\nendpoint_url = {}\n",
            test_support::closed_endpoint()
        ),
        "[stale]\naws_access_key_id = AKIDSTALE\naws_secret_access_key = stale-secret\n",
    );
    let cache = files.dir.path().join("cache");

    // The profile's endpoint is used...
    let out = run(
        files.command(&cache),
        &["--profile", "stale", "exec", &url, "CREATE TABLE t(x)"],
    );
    assert_exit(&out, 5, "no answer from the store");
    // ...unless --endpoint names another.
    let out = run(
        files.command(&cache),
        &[
            "--profile",
            "stale",
            "--endpoint",
            &moto.endpoint(),
            "exec",
            &url,
            "CREATE TABLE t(x)",
        ],
    );
    assert_ok(&out);

    // AWS_PROFILE yields to keys in the environment, so a profile that does
    // not exist is never read.
    let mut cmd = test_support::cli::sqlite_s3(Some(&moto.endpoint()));
    cmd.env("AWS_PROFILE", "absent")
        .env("AWS_CONFIG_FILE", files.dir.path().join("config"))
        .env("AWS_SHARED_CREDENTIALS_FILE", files.dir.path().join("credentials"))
        .arg("--cache-dir")
        .arg(&cache);
    assert_ok(&run(cmd, &["query", &url, "SELECT count(*) FROM t"]));
}

#[test]
fn a_missing_profile_exits_6_naming_it() {
    let files = AwsFiles::new("[profile dev]\nregion = us-east-1\n", "");
    let cache = files.dir.path().join("cache");
    let out = run(
        files.command(&cache),
        &["--profile", "nope", "query", "s3://some-bucket/app.db", "SELECT 1"],
    );
    assert_exit(&out, 6, "AWS profile nope gives no credentials");
    assert!(
        stderr(&out).contains("aws sso login --profile nope"),
        "{}",
        stderr(&out)
    );

    // The same through AWS_PROFILE.
    let mut cmd = files.command(&cache);
    cmd.env("AWS_PROFILE", "nope");
    let out = run(cmd, &["query", "s3://some-bucket/app.db", "SELECT 1"]);
    assert_exit(&out, 6, "AWS profile nope gives no credentials");
}

#[test]
fn refused_profile_credentials_exit_6_without_the_secret() {
    let Some(moto) = test_support::Moto::start_with_auth("profile-guarded") else {
        return;
    };
    let files = AwsFiles::new(
        &format!(
            "[profile dev]\nregion = us-east-1\nendpoint_url = {}\n",
            moto.endpoint()
        ),
        &format!("[dev]\naws_access_key_id = AKIAUNKNOWNKEY000000\naws_secret_access_key = {PROFILE_SECRET}\n"),
    );
    let cache = files.dir.path().join("cache");
    let out = run(
        files.command(&cache),
        &[
            "-vv",
            "--profile",
            "dev",
            "query",
            "s3://profile-guarded/app.db",
            "SELECT 1",
        ],
    );
    assert_exit(&out, 6, "access denied to s3://profile-guarded/app.db");
    assert!(!stderr(&out).contains(PROFILE_SECRET), "{}", stderr(&out));
    assert!(!test_support::cli::stdout(&out).contains(PROFILE_SECRET));
}
