//! Test helpers shared by the workspace's integration tests: a moto S3
//! server on 127.0.0.1, started on demand and stopped with the test process,
//! a fake AWS Lambda Runtime API ([`runtime_api`]), and a proxy that injects
//! network and S3 faults into the requests of an S3 client
//! ([`fault_proxy`]). [`servers`] runs more stores on 127.0.0.1 the same
//! way: SeaweedFS ([`Seaweed`]), Azurite ([`Azurite`]) and `rclone serve s3`
//! ([`Rclone`]), a store that ignores conditional requests.
//!
//! moto is found through `SQLITE_S3_MOTO_PYTHON` (a Python interpreter with
//! `moto[server]` installed), else the workspace's `.venv/bin/python`, which
//! `scripts/test.sh` creates. Without it, tests that need S3 are skipped,
//! unless `SQLITE_S3_REQUIRE_MOTO=1` (set by `scripts/test.sh` and CI), which
//! turns a missing moto into a failure.
//!
//! ```no_run
//! let Some(moto) = test_support::Moto::shared() else { return };
//! let bucket = moto.unique_bucket("my-test");
//! // Point an S3 client at `moto.endpoint()`, with any credentials and region.
//! # let _ = bucket;
//! ```
//!
//! The server is `moto_runner.py` beside this crate's manifest. It runs until
//! its standard input closes; the test process holds that pipe open, so the
//! server goes away with the test process however that ends.
//!
//! Two features add what the tests of the workspace's own crates share:
//!
//! - `stores` (the tests of sqlite-s3): `stores`, a place for databases on
//!   every kind of store (memory, a local directory, moto, SeaweedFS,
//!   Azurite) and the macros that run a behaviour on each of them
//!   (`on_every_store!`) and in both layouts (`on_every_store_and_layout!`);
//!   `fault_store`, an `ObjectStore` that injects faults under the
//!   library's retries.
//! - `cli` (the tests of sqlite-s3-cli): `cli`, places for databases and
//!   ways to run the `sqlite-s3` program.
//!
//! Without them the crate is std only.

#[cfg(feature = "cli")]
pub mod cli;
pub mod fault_proxy;
#[cfg(feature = "stores")]
pub mod fault_store;
pub mod runtime_api;
pub mod servers;
#[cfg(feature = "stores")]
pub mod stores;

pub use servers::{Azurite, Rclone, Seaweed};

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a server may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of the runner's output is kept for error messages.
const LOG_LIMIT: usize = 16 * 1024;
/// The runner's exit status when moto is not importable.
const EXIT_MOTO_MISSING: i32 = 3;

/// A moto S3 server listening on 127.0.0.1.
///
/// Any credentials and any region are accepted (unless the server was
/// started with [`Moto::start_with_auth`]), and requests may use path-style
/// addressing over plain HTTP.
#[derive(Debug)]
pub struct Moto {
    port: u16,
    child: Child,
    /// Held open for the life of the server: closing it stops the server.
    _stdin: ChildStdin,
    /// The tail of the runner's standard output and error.
    log: Arc<Mutex<String>>,
}

static SHARED: OnceLock<Option<Moto>> = OnceLock::new();
static BUCKETS: AtomicU64 = AtomicU64::new(0);

/// Why no server was started.
enum NotStarted {
    /// No interpreter, or one without moto.
    MotoMissing(String),
}

fn moto_required() -> bool {
    std::env::var("SQLITE_S3_REQUIRE_MOTO").as_deref() == Ok("1")
}

/// Skips (`None`) or, when moto is required, panics.
fn missing<T>(why: &str) -> Option<T> {
    if moto_required() {
        panic!(
            "SQLITE_S3_REQUIRE_MOTO=1 but moto was not found ({why}): run scripts/test.sh, \
             or set SQLITE_S3_MOTO_PYTHON to a python with moto[server] installed"
        );
    }
    eprintln!("skipping: moto not installed ({why}; scripts/test.sh installs it)");
    None
}

/// The interpreter to run moto with, if any.
fn python() -> Result<PathBuf, NotStarted> {
    if let Some(python) = std::env::var_os("SQLITE_S3_MOTO_PYTHON").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(python));
    }
    let venv = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python"));
    if venv.exists() {
        Ok(venv)
    } else {
        Err(NotStarted::MotoMissing(
            "SQLITE_S3_MOTO_PYTHON is not set and there is no .venv".into(),
        ))
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding 127.0.0.1:0")
        .port()
}

/// An `http://127.0.0.1:PORT` endpoint on which nothing listens, for tests of
/// unreachable stores (connections to it are refused).
pub fn closed_endpoint() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// Appends to a log, keeping its last [`LOG_LIMIT`] bytes or so.
fn append(log: &Mutex<String>, line: &str) {
    let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
    log.push_str(line);
    if log.len() > 2 * LOG_LIMIT {
        let mut cut = log.len() - LOG_LIMIT;
        while !log.is_char_boundary(cut) {
            cut += 1;
        }
        log.drain(..cut);
    }
}

/// Reads a pipe to its end on a thread of its own, so that the child can
/// never block on a full pipe, handing each line to `each`.
fn drain(pipe: impl Read + Send + 'static, mut each: impl FnMut(&str) + Send + 'static) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => each(&line),
            }
        }
    });
}

impl Moto {
    /// The moto server shared by every test of this test process, started on
    /// first use and stopped when the process exits.
    ///
    /// Returns `None`, after printing a one-line "skipping: moto not
    /// installed" to standard error, when moto cannot be found, unless
    /// `SQLITE_S3_REQUIRE_MOTO=1`, in which case it panics. Panics when moto
    /// is found but fails to start.
    pub fn shared() -> Option<&'static Moto> {
        SHARED
            .get_or_init(|| match python().and_then(|python| Moto::spawn(python, &[])) {
                Ok(moto) => Some(moto),
                Err(NotStarted::MotoMissing(why)) => missing(&why),
            })
            .as_ref()
    }

    /// A separate server that enforces request authentication after its
    /// first request; `bucket` is created (unauthenticated) as that first
    /// request. Requests signed with unknown credentials then fail with 403
    /// (`InvalidAccessKeyId`); unsigned ones, including
    /// [`Moto::create_bucket`], fail too (moto 5.2 answers them with a 500).
    /// The server is stopped when the value is dropped.
    ///
    /// Returns `None` (or panics) when moto cannot be found, as
    /// [`Moto::shared`] does.
    pub fn start_with_auth(bucket: &str) -> Option<Moto> {
        // moto checks credentials once it has let this many actions through.
        let env = [("INITIAL_NO_AUTH_ACTION_COUNT", "1")];
        match python().and_then(|python| Moto::spawn(python, &env)) {
            Ok(moto) => {
                moto.create_bucket(bucket);
                Some(moto)
            }
            Err(NotStarted::MotoMissing(why)) => missing(&why),
        }
    }

    /// Starts `moto_runner.py` with `python` and waits until it listens.
    fn spawn(python: PathBuf, env: &[(&str, &str)]) -> Result<Moto, NotStarted> {
        let runner = concat!(env!("CARGO_MANIFEST_DIR"), "/moto_runner.py");
        let mut child = match Command::new(&python)
            .arg(runner)
            .envs(env.iter().copied())
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
        {
            Ok(child) => child,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(NotStarted::MotoMissing(format!("{} not found", python.display())));
            }
            Err(e) => panic!("starting moto with {}: {e}", python.display()),
        };
        let stdin = child.stdin.take().expect("piped stdin");
        let log = Arc::new(Mutex::new(String::new()));

        // The runner prints "ready PORT" once it listens.
        let (ready_tx, ready) = mpsc::channel();
        let stdout_log = Arc::clone(&log);
        drain(child.stdout.take().expect("piped stdout"), move |line| {
            if let Some(port) = line.trim().strip_prefix("ready ") {
                let _ = ready_tx.send(port.parse::<u16>().ok());
            }
            append(&stdout_log, line);
        });
        let stderr_log = Arc::clone(&log);
        drain(child.stderr.take().expect("piped stderr"), move |line| {
            append(&stderr_log, line)
        });

        let deadline = Instant::now() + START_TIMEOUT;
        let fail = |child: &mut Child, what: String| -> ! {
            let _ = child.kill();
            let _ = child.wait();
            // Let the drain threads catch the last words.
            std::thread::sleep(Duration::from_millis(100));
            let log = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
            panic!("moto ({} {runner}) {what}; its output:\n{log}", python.display());
        };
        let port = match ready.recv_timeout(START_TIMEOUT) {
            Ok(Some(port)) => port,
            Ok(None) => fail(&mut child, "printed an unreadable ready line".into()),
            Err(RecvTimeoutError::Timeout) => fail(&mut child, format!("was not ready within {START_TIMEOUT:?}")),
            Err(RecvTimeoutError::Disconnected) => {
                // Standard output closed: the runner is gone.
                let status = child.wait().expect("waiting for moto");
                if status.code() == Some(EXIT_MOTO_MISSING) {
                    return Err(NotStarted::MotoMissing(format!(
                        "{} cannot import moto",
                        python.display()
                    )));
                }
                fail(&mut child, format!("exited before it was ready ({status})"))
            }
        };

        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        while let Err(e) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            if Instant::now() >= deadline {
                fail(&mut child, format!("did not accept connections on {addr}: {e}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Moto {
            port,
            child,
            _stdin: stdin,
            log,
        })
    }

    /// The server's endpoint, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket with an unsigned `PUT /NAME`. Panics on failure (any
    /// answer but 200), e.g. on a server started with
    /// [`Moto::start_with_auth`], which accepts only the first request
    /// unsigned.
    pub fn create_bucket(&self, name: &str) {
        let (status, body) = self
            .request(&format!("PUT /{name}"))
            .unwrap_or_else(|e| panic!("creating bucket {name} on {}: {e}", self.endpoint()));
        assert!(
            status.split_whitespace().nth(1) == Some("200"),
            "creating bucket {name} on {}: {status}\n{body}\nmoto's output:\n{}",
            self.endpoint(),
            self.log.lock().unwrap_or_else(|e| e.into_inner())
        );
    }

    /// Creates a bucket whose name no other call in this process returned,
    /// made from `prefix` (lowercased; characters S3 does not allow become
    /// '-'), the process id and a counter, and returns its name. The name is
    /// a valid S3 bucket name of 3 to 63 characters.
    pub fn unique_bucket(&self, prefix: &str) -> String {
        let name = bucket_name(prefix, std::process::id(), BUCKETS.fetch_add(1, Ordering::Relaxed));
        self.create_bucket(&name);
        name
    }

    /// Sends one raw HTTP/1.1 request (`"METHOD /PATH"`, no body) and returns
    /// the status line and the body.
    fn request(&self, request_line: &str) -> std::io::Result<(String, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(START_TIMEOUT))?;
        stream.set_write_timeout(Some(START_TIMEOUT))?;
        write!(
            stream,
            "{request_line} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
        let status = head.lines().next().unwrap_or_default().to_string();
        Ok((status, body.to_string()))
    }
}

/// `PREFIX-PID-N`, with the prefix made into a valid S3 bucket name part.
fn bucket_name(prefix: &str, pid: u32, n: u64) -> String {
    let mut clean = String::new();
    for c in prefix.chars() {
        let c = if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '-'
        };
        // No "--" (which "xn--" names need), no leading '-'.
        if c != '-' || !(clean.is_empty() || clean.ends_with('-')) {
            clean.push(c);
        }
    }
    // 30 + "-" + 10 digits of a u32 + "-" + 20 digits of a u64 <= 63.
    clean.truncate(30);
    let mut clean = clean.trim_end_matches('-').to_string();
    if clean.is_empty() || clean.starts_with("sthree") || clean.starts_with("amzn-s3-demo") {
        clean.insert(0, 't');
    }
    format!("{clean}-{pid}-{n}")
}

impl Drop for Moto {
    /// Stops an owned server ([`Moto::start_with_auth`]). The shared one is
    /// never dropped; it stops when the test process exits and its standard
    /// input closes.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_bucket_name(name: &str) -> bool {
        (3..=63).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name.ends_with(|c: char| c.is_ascii_alphanumeric())
            && !name.contains("--")
    }

    #[test]
    fn bucket_names_are_valid() {
        for prefix in [
            "",
            "-",
            "Support Test",
            "xn--abc",
            "a_b.c",
            "sthree-x",
            &"Long".repeat(40),
            "é",
        ] {
            let name = bucket_name(prefix, u32::MAX, u64::MAX);
            assert!(valid_bucket_name(&name), "{prefix:?} gave {name:?}");
        }
        assert_eq!(bucket_name("Support Test", 7, 0), "support-test-7-0");
    }

    #[test]
    fn nothing_listens_on_a_closed_endpoint() {
        let endpoint = closed_endpoint();
        let addr = endpoint.strip_prefix("http://127.0.0.1:").expect("a loopback endpoint");
        assert!(TcpStream::connect(("127.0.0.1", addr.parse::<u16>().unwrap())).is_err());
    }

    #[test]
    fn the_shared_server_creates_buckets() {
        let Some(moto) = Moto::shared() else { return };
        assert!(moto.endpoint().starts_with("http://127.0.0.1:"));
        let bucket = moto.unique_bucket("Support Test");
        assert!(bucket.starts_with("support-test-"), "{bucket}");
        let (status, _) = moto.request(&format!("GET /{bucket}")).unwrap();
        assert!(status.contains(" 200"), "{status}");
        moto.create_bucket("support-fixed-name");
    }

    #[test]
    fn the_shared_server_is_the_same_server() {
        let (Some(a), Some(b)) = (Moto::shared(), Moto::shared()) else {
            return;
        };
        assert!(std::ptr::eq(a, b));
    }

    #[test]
    fn the_server_does_not_log_each_request() {
        // One line per request on a pipe nobody reads would fill it and
        // stall the server after a thousand requests or so.
        let Some(moto) = Moto::start_with_auth("quiet") else {
            return;
        };
        for _ in 0..5 {
            let _ = moto.request("GET /quiet").unwrap();
        }
        let _ = moto.request("PUT /quiet-two").unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let log = moto.log.lock().unwrap().clone();
        assert!(!log.contains("HTTP/1.1\" "), "{log}");
    }

    #[test]
    fn an_auth_server_refuses_unknown_credentials() {
        let Some(moto) = Moto::start_with_auth("guarded") else {
            return;
        };
        let port = moto.port;
        // A SigV4-shaped request from an access key moto does not know.
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            stream,
            "GET /guarded HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nx-amz-date: 20250101T000000Z\r\n\
             x-amz-content-sha256: UNSIGNED-PAYLOAD\r\nAuthorization: AWS4-HMAC-SHA256 \
             Credential=AKIAUNKNOWNUNKNOWN00/20250101/us-east-1/s3/aws4_request, \
             SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={}\r\n\
             Connection: close\r\n\r\n",
            "0".repeat(64)
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 403"), "{response}");
        assert!(response.contains("InvalidAccessKeyId"), "{response}");
        // Unsigned requests are refused too (moto 5.2 answers 500: it fails
        // on the missing Authorization header), so the bucket came first.
        let (status, _) = moto.request("PUT /another").unwrap();
        assert!(!status.contains(" 200"), "{status}");
        // And the shared server is not affected.
        if let Some(shared) = Moto::shared() {
            shared.unique_bucket("unguarded");
        }
    }

    #[test]
    fn owned_servers_stop_when_dropped() {
        let Some(moto) = Moto::start_with_auth("dropped") else {
            return;
        };
        let port = moto.port;
        drop(moto);
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    }
}
