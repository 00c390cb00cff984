//! What the tests of the `sqlite-s3` program share: places to put
//! databases (a local directory, or a bucket on moto, SeaweedFS or Azurite)
//! and ways to run the program.
//!
//! The program is the one cargo built for the tests of sqlite-s3-cli:
//! [`program`] finds it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

pub const SECRET: &str = "cli-test-secret-never-printed";
/// The well-known key of Azurite's account.
pub const AZURITE_KEY: &str = crate::Azurite::KEY;

/// Where databases go for one test: a local directory, or a moto bucket.
pub struct Place {
    pub dir: TempDir,
    pub bucket_url: String,
    pub endpoint: Option<String>,
}

impl Place {
    pub fn file() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bucket_url = format!("file://{}/bucket", dir.path().display());
        std::fs::create_dir(dir.path().join("bucket")).unwrap();
        Self {
            dir,
            bucket_url,
            endpoint: None,
        }
    }

    pub fn s3() -> Option<Self> {
        let moto = crate::Moto::shared()?;
        Some(Self {
            dir: tempfile::tempdir().unwrap(),
            bucket_url: format!("s3://{}", moto.unique_bucket("cli")),
            endpoint: Some(moto.endpoint()),
        })
    }

    /// A bucket on a real SeaweedFS server.
    pub fn seaweed() -> Option<Self> {
        let seaweed = crate::Seaweed::shared()?;
        Some(Self {
            dir: tempfile::tempdir().unwrap(),
            bucket_url: format!("s3://{}", seaweed.unique_bucket("cli")),
            endpoint: Some(seaweed.endpoint()),
        })
    }

    /// A container on the Azurite emulator.
    pub fn azure() -> Option<Self> {
        let azurite = crate::Azurite::shared()?;
        Some(Self {
            dir: tempfile::tempdir().unwrap(),
            bucket_url: format!("az://{}", azurite.unique_container("cli")),
            endpoint: Some(azurite.endpoint()),
        })
    }

    pub fn url(&self, name: &str) -> String {
        format!("{}/{name}", self.bucket_url)
    }

    pub fn cache(&self, name: &str) -> PathBuf {
        self.dir.path().join("caches").join(name)
    }

    /// `sqlite-s3 ARGS` with a cache directory of its own name.
    pub fn run(&self, cache: &str, args: &[&str]) -> Output {
        let mut cmd = sqlite_s3(self.endpoint.as_deref());
        cmd.arg("--cache-dir").arg(self.cache(cache)).args(args);
        cmd.output().unwrap()
    }
}

/// The `sqlite-s3` program under test: `CARGO_BIN_EXE_sqlite-s3`, which
/// cargo sets when it runs the tests of sqlite-s3-cli, else the program
/// beside the directory of the running test (cargo puts
/// `target/debug/deps/cli-*` and `target/debug/sqlite-s3` there).
pub fn program() -> PathBuf {
    if let Some(path) = std::env::var_os("CARGO_BIN_EXE_sqlite-s3").filter(|p| !p.is_empty()) {
        return PathBuf::from(path);
    }
    let test = std::env::current_exe().expect("the path of the running test");
    let beside = test
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join(format!("sqlite-s3{}", std::env::consts::EXE_SUFFIX)));
    match beside {
        Some(path) if path.exists() => path,
        _ => panic!(
            "the sqlite-s3 program was not found: run the tests with `cargo test -p sqlite-s3-cli`, \
             or set CARGO_BIN_EXE_sqlite-s3 to its path"
        ),
    }
}

/// The program with a clean environment for stores: none of the caller's
/// AWS, Azure or Google settings, made-up AWS credentials, Azurite's
/// account, and `endpoint` for both.
pub fn sqlite_s3(endpoint: Option<&str>) -> Command {
    let mut cmd = Command::new(program());
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        if name.starts_with("AWS_")
            || name.starts_with("AZURE_")
            || name.starts_with("GOOGLE_")
            || key == "SQLITE_S3_CACHE_DIR"
        {
            cmd.env_remove(key);
        }
    }
    cmd.env("AWS_ACCESS_KEY_ID", "cli-test-key")
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1");
    if let Some(endpoint) = endpoint {
        cmd.env("AWS_ENDPOINT_URL", endpoint)
            .env("AZURE_STORAGE_ENDPOINT", endpoint);
    }
    cmd.env("AZURE_STORAGE_ACCOUNT_NAME", "devstoreaccount1")
        .env("AZURE_STORAGE_ACCOUNT_KEY", AZURITE_KEY);
    cmd
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
pub fn assert_ok(output: &Output) {
    assert!(output.status.success(), "{:?}\n{}", output.status, stderr(output));
}

#[track_caller]
pub fn assert_exit(output: &Output, code: i32, needle: &str) {
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

pub fn json_rows(output: &Output) -> serde_json::Value {
    assert_ok(output);
    serde_json::from_str(&stdout(output)).unwrap_or_else(|e| panic!("{e}: {}", stdout(output)))
}

impl Place {
    /// The object of database `name` as a file (local directories only).
    pub fn object(&self, name: &str) -> PathBuf {
        self.dir.path().join("bucket").join(name)
    }

    /// `sqlite-s3 ARGS` ready to run in a pseudo-terminal.
    pub fn command(&self, cache: &str, args: &[&str]) -> Command {
        let mut cmd = sqlite_s3(self.endpoint.as_deref());
        cmd.env("HOME", self.dir.path())
            .arg("--cache-dir")
            .arg(self.cache(cache))
            .args(args);
        cmd
    }
}

/// Creates `t` holding 1 with the cache "mine", then commits 2 to that
/// working copy without publishing, as a process killed between its commit
/// and its publish would leave it.
pub fn leave_unpublished_change(place: &Place, url: &str) {
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
pub fn mark_open(working_copy: &Path) {
    let state_path = working_copy.with_file_name("state.json");
    let mut state: serde_json::Value = serde_json::from_slice(&std::fs::read(&state_path).unwrap()).unwrap();
    state["status"] = "open".into();
    std::fs::write(state_path, serde_json::to_vec(&state).unwrap()).unwrap();
}

/// Runs each named behaviour `fn NAME(place: &Place)` on every store a
/// process of its own can reach (a local directory, moto, SeaweedFS,
/// Azurite), as tests `NAME::file`, `NAME::s3`, `NAME::seaweed` and
/// `NAME::azure`. A store whose server is not installed skips (unless the
/// servers are required, as in CI).
#[macro_export]
macro_rules! on_every_place {
    ($($name:ident),* $(,)?) => {
        $crate::on_places!([file, s3, seaweed, azure] $($name),*);
    };
}

/// [`on_every_place!`](crate::on_every_place) on the stores listed:
/// `on_places!([s3, seaweed, azure] NAME, ...)`.
#[macro_export]
macro_rules! on_places {
    ($places:tt $($name:ident),* $(,)?) => {$(
        mod $name {
            fn run(place: Option<$crate::cli::Place>) {
                if let Some(place) = place {
                    super::$name(&place)
                }
            }
            $crate::__place_tests!(@each $places);
        }
    )*};
}

/// Runs each named behaviour `fn NAME(place: &Place, layout: &str)` on
/// every store a process of its own can reach and with a database created
/// in each layout (`layout` is what `--layout` takes: "single" or
/// "versioned"), as tests `NAME::file_single`, `NAME::azure_versioned` and
/// so on.
#[macro_export]
macro_rules! on_every_place_and_layout {
    ($($name:ident),* $(,)?) => {
        $crate::on_places_and_layouts!([file, s3, seaweed, azure] $($name),*);
    };
}

/// [`on_every_place_and_layout!`](crate::on_every_place_and_layout) on the
/// stores listed: `on_places_and_layouts!([s3, seaweed, azure] NAME, ...)`.
#[macro_export]
macro_rules! on_places_and_layouts {
    ($places:tt $($name:ident),* $(,)?) => {$(
        mod $name {
            fn run(place: Option<$crate::cli::Place>, layout: &str) {
                if let Some(place) = place {
                    super::$name(&place, layout)
                }
            }
            $crate::__place_and_layout_tests!(@each $places);
        }
    )*};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __place {
    (file) => {
        Some($crate::cli::Place::file())
    };
    (s3) => {
        $crate::cli::Place::s3()
    };
    (seaweed) => {
        $crate::cli::Place::seaweed()
    };
    (azure) => {
        $crate::cli::Place::azure()
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __place_tests {
    (@each [$($place:ident),* $(,)?]) => {$(
        #[test]
        fn $place() {
            run($crate::__place!($place))
        }
    )*};
}

#[doc(hidden)]
#[macro_export]
macro_rules! __place_and_layout_tests {
    (@each [$($place:ident),* $(,)?]) => {$(
        $crate::__place_and_layout_tests!($place);
    )*};
    (file) => {
        $crate::__place_and_layout_tests!(@pair file, file_single, file_versioned);
    };
    (s3) => {
        $crate::__place_and_layout_tests!(@pair s3, s3_single, s3_versioned);
    };
    (seaweed) => {
        $crate::__place_and_layout_tests!(@pair seaweed, seaweed_single, seaweed_versioned);
    };
    (azure) => {
        $crate::__place_and_layout_tests!(@pair azure, azure_single, azure_versioned);
    };
    (@pair $place:ident, $single:ident, $versioned:ident) => {
        #[test]
        fn $single() {
            run($crate::__place!($place), "single")
        }
        #[test]
        fn $versioned() {
            run($crate::__place!($place), "versioned")
        }
    };
}
