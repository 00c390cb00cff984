//! Three more stores on 127.0.0.1, for tests that run against real object
//! stores: SeaweedFS ([`Seaweed`], S3) and Azurite ([`Azurite`], Azure Blob
//! Storage), which honour conditional requests, and `rclone serve s3`
//! ([`Rclone`]), which ignores them, for negative tests.
//!
//! Each server runs under `guard_runner.py` (beside this crate's manifest),
//! run with the Python interpreter moto uses (`SQLITE_S3_MOTO_PYTHON`, else
//! the workspace's `.venv/bin/python`). The test process holds the runner's
//! standard input open; when that closes, however the test process ends, the
//! runner stops the server's whole process group (SIGTERM, then SIGKILL) and
//! removes the server's temporary directory.
//!
//! The programs are found through these variables, else in the workspace's
//! `.venv`, where `scripts/test.sh` (through `scripts/test-env.sh`) installs
//! them and sets the variables:
//!
//! | server    | variable                                   | else                                                         |
//! |-----------|--------------------------------------------|--------------------------------------------------------------|
//! | SeaweedFS | `SQLITE_S3_WEED`                           | `.venv/bin/weed`                                             |
//! | rclone    | `SQLITE_S3_RCLONE`                         | `.venv/bin/rclone`                                           |
//! | Azurite   | `SQLITE_S3_AZURITE` (`azurite-blob` entry) | `.venv/azurite/node_modules/azurite/dist/src/blob/main.js`  |
//! | Node.js   | `SQLITE_S3_NODE`                           | `.venv/bin/node` if it exists, else `node` on `PATH`         |
//!
//! When one is missing, [`Seaweed::shared`], [`Azurite::shared`] and
//! [`Rclone::start`] return `None` after printing a one-line "skipping" to
//! standard error, unless `SQLITE_S3_REQUIRE_SERVERS=1` (set by
//! `scripts/test-env.sh`), in which case they panic.
//!
//! ```no_run
//! if let Some(seaweed) = test_support::Seaweed::shared() {
//!     let bucket = seaweed.unique_bucket("my-test");
//!     // Point an S3 client at `seaweed.endpoint()`, with any credentials.
//!     # let _ = bucket;
//! }
//! if let Some(azurite) = test_support::Azurite::shared() {
//!     let container = azurite.unique_container("my-test");
//!     // Point an Azure client at `azurite.endpoint()`, signing with
//!     // `Azurite::ACCOUNT` and `Azurite::KEY`.
//!     # let _ = container;
//! }
//! ```

use std::fs;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::{NotStarted, START_TIMEOUT, append, bucket_name, drain, python};

/// How long SeaweedFS may take to accept a bucket and an object in it (a few
/// seconds usually: its volume server must first register with its master).
const SEAWEED_READY: Duration = Duration::from_secs(60);
/// How long Azurite and rclone may take to be ready.
const READY: Duration = Duration::from_secs(30);
/// The Azure Storage API version of the requests made here.
const AZURE_VERSION: &str = "2021-08-06";

/// The workspace's root.
const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

static SEAWEED: OnceLock<Result<Option<Seaweed>, String>> = OnceLock::new();
static AZURITE: OnceLock<Result<Option<Azurite>, String>> = OnceLock::new();
static NAMES: AtomicU64 = AtomicU64::new(0);
static TEMP_DIRS: AtomicU64 = AtomicU64::new(0);

/// Why a server did not start.
enum Failure {
    /// Its program (or the Python interpreter of its guard) is not there.
    Missing(String),
    /// It is there but did not start: the message, with its output.
    Broken(String),
}

fn servers_required() -> bool {
    std::env::var("SQLITE_S3_REQUIRE_SERVERS").as_deref() == Ok("1")
}

/// Skips (`None`) or, when the servers are required, panics.
fn missing<T>(server: &str, why: &str) -> Option<T> {
    if servers_required() {
        panic!(
            "SQLITE_S3_REQUIRE_SERVERS=1 but {server} was not found ({why}): run scripts/test.sh, \
             or source scripts/test-env.sh, which install it and set its SQLITE_S3_* variable"
        );
    }
    eprintln!("skipping: {server} not installed ({why}; scripts/test.sh installs it)");
    None
}

/// The outcome of starting a shared server, kept for every later caller: a
/// server that failed to start is not started again by every test.
fn shared<T>(server: &str, started: Result<T, Failure>) -> Result<Option<T>, String> {
    match started {
        Ok(server) => Ok(Some(server)),
        Err(Failure::Missing(why)) => Ok(missing(server, &why)),
        Err(Failure::Broken(message)) => Err(message),
    }
}

/// A path in the workspace, made absolute for messages.
fn in_workspace(relative: &str) -> PathBuf {
    let root = Path::new(WORKSPACE);
    root.canonicalize()
        .unwrap_or_else(|_| root.to_path_buf())
        .join(relative)
}

/// The value of an environment variable, unless unset or empty.
fn env_path(var: &str) -> Option<PathBuf> {
    std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// A program named by `var`, else `.venv/<default>` in the workspace, if it
/// exists.
fn program(var: &str, default: &str) -> Result<PathBuf, Failure> {
    let (path, from) = match env_path(var) {
        Some(path) => (path, format!("{var}=")),
        None => (in_workspace(default), format!("{var} is not set and ")),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(Failure::Missing(format!("{from}{} does not exist", path.display())))
    }
}

/// The Node.js to run Azurite with.
fn node() -> Result<PathBuf, Failure> {
    if let Some(node) = env_path("SQLITE_S3_NODE") {
        return match node.is_file() {
            true => Ok(node),
            false => Err(Failure::Missing(format!(
                "SQLITE_S3_NODE={} does not exist",
                node.display()
            ))),
        };
    }
    let venv = in_workspace(".venv/bin/node");
    if venv.is_file() {
        return Ok(venv);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("node"))
        .find(|node| node.is_file())
        .ok_or_else(|| Failure::Missing("no node: SQLITE_S3_NODE is not set, no .venv/bin/node, none on PATH".into()))
}

/// `N` different ports on 127.0.0.1 that were free a moment ago.
fn free_ports<const N: usize>() -> [u16; N] {
    // All bound at once, so that no two are the same.
    let listeners: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("a bound address").port())
}

/// A new empty directory under the system's temporary directory.
fn temp_dir(what: &str) -> PathBuf {
    loop {
        let n = TEMP_DIRS.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("sqlite-s3-{what}-{}-{n}", std::process::id()));
        match fs::create_dir(&dir) {
            Ok(()) => return dir,
            // Left by an earlier process with the same id.
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("creating {}: {e}", dir.display()),
        }
    }
}

/// Whether something accepts connections on a port of 127.0.0.1.
fn listening(port: u16) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(500))
        .map(drop)
        .map_err(|e| format!("connecting to {addr}: {e}"))
}

/// A server process run by `guard_runner.py`.
#[derive(Debug)]
struct Guarded {
    /// What runs, for messages.
    what: &'static str,
    /// The runner.
    runner: Child,
    /// The runner's standard input, held open for the life of the server:
    /// closing it stops the server.
    stdin: Option<ChildStdin>,
    /// The tail of the runner's and the server's output.
    log: Arc<Mutex<String>>,
}

impl Guarded {
    /// Starts `program args` in `dir` (with `HOME` there too, so that no
    /// user configuration is read) under the guard, which removes `dir` and
    /// the `cleanup` paths once the server is stopped. Returns once the
    /// program is started, not yet ready.
    fn spawn(
        what: &'static str,
        program: &Path,
        args: &[String],
        dir: &Path,
        cleanup: &[PathBuf],
        env: &[(&str, &str)],
    ) -> Result<Guarded, Failure> {
        let python = python().map_err(|NotStarted::MotoMissing(why)| {
            let _ = fs::remove_dir_all(dir);
            Failure::Missing(format!("no Python to run its guard: {why}"))
        })?;
        let runner = concat!(env!("CARGO_MANIFEST_DIR"), "/guard_runner.py");
        let mut command = Command::new(&python);
        command.arg(runner).arg("--cleanup").arg(dir);
        for path in cleanup {
            command.arg("--cleanup").arg(path);
        }
        command
            .arg("--")
            .arg(program)
            .args(args)
            .current_dir(dir)
            .env("HOME", dir)
            .envs(env.iter().copied())
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut runner = match command.spawn() {
            Ok(runner) => runner,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                let _ = fs::remove_dir_all(dir);
                return Err(Failure::Missing(format!(
                    "no Python to run its guard: {} not found",
                    python.display()
                )));
            }
            Err(e) => panic!("starting {} {runner}: {e}", python.display()),
        };
        let stdin = runner.stdin.take();
        let log = Arc::new(Mutex::new(String::new()));

        // The runner prints "started" once the program runs.
        let (started_tx, started) = mpsc::channel();
        let stdout_log = Arc::clone(&log);
        drain(runner.stdout.take().expect("piped stdout"), move |line| {
            if line.trim() == "started" {
                let _ = started_tx.send(());
            }
            append(&stdout_log, line);
        });
        let stderr_log = Arc::clone(&log);
        drain(runner.stderr.take().expect("piped stderr"), move |line| {
            append(&stderr_log, line)
        });

        let mut guarded = Guarded {
            what,
            runner,
            stdin,
            log,
        };
        match started.recv_timeout(START_TIMEOUT) {
            Ok(()) => Ok(guarded),
            Err(RecvTimeoutError::Timeout) => Err(Failure::Broken(
                guarded.failure(&format!("was not started within {START_TIMEOUT:?}")),
            )),
            Err(RecvTimeoutError::Disconnected) => Err(Failure::Broken(guarded.failure("could not be started"))),
        }
    }

    /// Calls `ready` every 100 ms until it succeeds; fails when the server
    /// exits first or `timeout` passes.
    fn wait_ready(&mut self, timeout: Duration, mut ready: impl FnMut() -> Result<(), String>) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let why = match ready() {
                Ok(()) => return Ok(()),
                Err(why) => why,
            };
            if let Ok(Some(status)) = self.runner.try_wait() {
                return Err(self.failure(&format!("exited before it was ready ({status}); last try: {why}")));
            }
            if Instant::now() >= deadline {
                return Err(self.failure(&format!("was not ready within {timeout:?}; last try: {why}")));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The tail of the output.
    fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops the server and returns a message saying `what` went wrong, with
    /// the output.
    fn failure(&mut self, what: &str) -> String {
        self.stop();
        // Let the drain threads catch the last words.
        std::thread::sleep(Duration::from_millis(100));
        format!("{} {what}; its output:\n{}", self.what, self.log())
    }

    /// Stops the server and waits until it is gone and its files removed
    /// (up to 5 s for a server that ignores SIGTERM).
    fn stop(&mut self) {
        drop(self.stdin.take());
        let _ = self.runner.wait();
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An HTTP response.
#[derive(Debug)]
struct Reply {
    status: u16,
    /// The status line and the headers.
    head: String,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first value of a header.
    #[cfg(test)]
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\n{}", self.head.lines().next().unwrap_or_default(), self.text())
    }
}

/// Creates bucket `name` with a PUT on the S3 server `server` (at `port`,
/// reached as `endpoint`); panics with the server's output when it refuses.
fn create_bucket(server: &str, guard: &Guarded, port: u16, endpoint: &str, name: &str) {
    let reply = http(port, "PUT", &format!("/{name}"), &[], b"")
        .unwrap_or_else(|e| panic!("creating bucket {name} on {server} at {endpoint}: {e}"));
    assert!(
        reply.status == 200,
        "creating bucket {name} on {server} at {endpoint}: {reply}\nits output:\n{}",
        guard.log()
    );
}

/// Sends one HTTP/1.1 request to 127.0.0.1:`port` and reads the response
/// to its end. `Content-Length` is added unless in `headers`.
fn http(port: u16, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> io::Result<Reply> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(START_TIMEOUT))?;
    stream.set_write_timeout(Some(START_TIMEOUT))?;
    let mut request = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("content-length"))
    {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(body)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;

    let split = find(&response, b"\r\n\r\n")
        .ok_or_else(|| io::Error::new(ErrorKind::InvalidData, "a response without a blank line"))?;
    let head = String::from_utf8_lossy(&response[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::new(ErrorKind::InvalidData, format!("no status in {head:?}")))?;
    let chunked = head.lines().any(|line| {
        line.split_once(':').is_some_and(|(n, v)| {
            n.trim().eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
        })
    });
    let body = &response[split + 4..];
    let body = if chunked { dechunk(body) } else { body.to_vec() };
    Ok(Reply { status, head, body })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The payload of a chunked body.
fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = find(data, b"\r\n") {
        let size = std::str::from_utf8(&data[..eol])
            .ok()
            .and_then(|line| usize::from_str_radix(line.split(';').next().unwrap_or_default().trim(), 16).ok())
            .unwrap_or(0);
        data = &data[eol + 2..];
        if size == 0 || size > data.len() {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}

/// A SeaweedFS server (`weed server` with its master, a volume server, a
/// filer and the S3 gateway) on 127.0.0.1, one per test process.
///
/// Requests are not authenticated (no S3 identities are configured):
/// unsigned requests work, and signed ones from any credentials and region
/// are accepted too. Use path-style addressing. Each bucket gets a volume of
/// its own on first write, out of 1000: about a thousand buckets with data
/// per test process.
#[derive(Debug)]
pub struct Seaweed {
    /// The S3 gateway's port.
    port: u16,
    guard: Guarded,
}

impl Seaweed {
    /// The server shared by every test of this test process, started on
    /// first use and stopped when the process exits. Starting takes 3.5 s
    /// or so, 6 to 8 s when the volume server's first heartbeat comes before
    /// the master has elected itself leader (it then retries 5 s later).
    ///
    /// Returns `None`, after printing a one-line "skipping: SeaweedFS not
    /// installed" to standard error, when `weed` cannot be found, unless
    /// `SQLITE_S3_REQUIRE_SERVERS=1`, in which case it panics. Panics when
    /// it is found but fails to start (in every test that calls this).
    pub fn shared() -> Option<&'static Seaweed> {
        match SEAWEED.get_or_init(|| shared("SeaweedFS", Seaweed::start())) {
            Ok(seaweed) => seaweed.as_ref(),
            Err(message) => panic!("{message}"),
        }
    }

    fn start() -> Result<Seaweed, Failure> {
        let weed = program("SQLITE_S3_WEED", ".venv/bin/weed")?;
        let dir = temp_dir("seaweed");
        let [master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc] = free_ports();
        let d = dir.display();
        let args = [
            // Logs to standard error only: else they go to files in /tmp.
            "-logtostderr".to_string(),
            "server".into(),
            format!("-dir={d}"),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            "-master.telemetry=false".into(),
            "-master.volumeSizeLimitMB=1024".into(),
            // One volume per bucket (see WEED_MASTER_VOLUME_GROWTH_COPY_1).
            "-volume.max=1000".into(),
            format!("-master.port={master}"),
            format!("-master.port.grpc={master_grpc}"),
            format!("-volume.port={volume}"),
            format!("-volume.port.grpc={volume_grpc}"),
            "-filer".into(),
            format!("-filer.port={filer}"),
            format!("-filer.port.grpc={filer_grpc}"),
            format!("-filer.localSocket={d}/filer.sock"),
            "-s3".into(),
            format!("-s3.port={s3}"),
            format!("-s3.port.grpc={s3_grpc}"),
            format!("-s3.localSocket={d}/s3.sock"),
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
        ];
        // The gRPC servers also listen on Unix sockets in /tmp, named after
        // their ports, with no flag to move them: the guard removes them.
        let sockets = [
            format!("master-grpc-{master_grpc}"),
            format!("volume-grpc-{volume_grpc}"),
            format!("filer-grpc-{filer_grpc}"),
            format!("s3-grpc-{s3_grpc}"),
        ]
        .map(|name| PathBuf::from(format!("/tmp/seaweedfs-{name}.sock")));
        // A new bucket (a collection) gets 7 volumes by default, which with
        // -volume.max makes "No writable volumes" after a dozen buckets.
        let env = [("WEED_MASTER_VOLUME_GROWTH_COPY_1", "1")];
        let mut guard = Guarded::spawn("SeaweedFS", &weed, &args, &dir, &sockets, &env)?;

        // Ready when a bucket, then an object in it, can be created: an
        // early object PUT fails with 500 "No writable volumes".
        let probe = "sqlite-s3-ready";
        guard
            .wait_ready(SEAWEED_READY, || {
                for (target, body) in [(format!("/{probe}"), &b""[..]), (format!("/{probe}/probe"), b"ready")] {
                    match http(s3, "PUT", &target, &[], body) {
                        Ok(reply) if reply.status == 200 => {}
                        Ok(reply) => return Err(format!("PUT {target}: {reply}")),
                        Err(e) => return Err(format!("PUT {target}: {e}")),
                    }
                }
                Ok(())
            })
            .map_err(Failure::Broken)?;
        let _ = http(s3, "DELETE", &format!("/{probe}/probe"), &[], b"");
        let _ = http(s3, "DELETE", &format!("/{probe}"), &[], b"");
        Ok(Seaweed { port: s3, guard })
    }

    /// The S3 endpoint, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket whose name no other call in this process returned,
    /// made from `prefix` (lowercased; characters S3 does not allow become
    /// '-'), the process id and a counter, and returns its name, a valid S3
    /// bucket name of 3 to 63 characters. Panics when the server refuses it.
    pub fn unique_bucket(&self, prefix: &str) -> String {
        let name = bucket_name(prefix, std::process::id(), NAMES.fetch_add(1, Ordering::Relaxed));
        create_bucket("SeaweedFS", &self.guard, self.port, &self.endpoint(), &name);
        name
    }
}

/// An Azurite server (Microsoft's Azure Storage emulator; its Blob service
/// only) on 127.0.0.1, one per test process, with the emulator's well-known
/// account [`Azurite::ACCOUNT`] and key [`Azurite::KEY`].
///
/// Requests must be signed with that key (SharedKey), and name the account
/// as the first segment of their path, as [`Azurite::endpoint`] does. Any
/// API version is accepted.
#[derive(Debug)]
pub struct Azurite {
    port: u16,
    guard: Guarded,
}

impl Azurite {
    /// The emulator's storage account.
    pub const ACCOUNT: &'static str = "devstoreaccount1";
    /// The account's key (base64), the emulator's public well-known one.
    pub const KEY: &'static str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    /// The server shared by every test of this test process, started on
    /// first use (in about 1 s) and stopped when the process exits.
    ///
    /// Returns `None`, after printing a one-line "skipping: Azurite not
    /// installed" to standard error, when Azurite or Node.js cannot be
    /// found, unless `SQLITE_S3_REQUIRE_SERVERS=1`, in which case it panics.
    /// Panics when they are found but Azurite fails to start (in every test
    /// that calls this).
    pub fn shared() -> Option<&'static Azurite> {
        match AZURITE.get_or_init(|| shared("Azurite", Azurite::start())) {
            Ok(azurite) => azurite.as_ref(),
            Err(message) => panic!("{message}"),
        }
    }

    fn start() -> Result<Azurite, Failure> {
        let script = program(
            "SQLITE_S3_AZURITE",
            ".venv/azurite/node_modules/azurite/dist/src/blob/main.js",
        )?;
        let node = node()?;
        let dir = temp_dir("azurite");
        let [port] = free_ports();
        let args = [
            script.display().to_string(),
            "--blobHost".into(),
            "127.0.0.1".into(),
            "--blobPort".into(),
            port.to_string(),
            "--location".into(),
            dir.display().to_string(),
            "--skipApiVersionCheck".into(),
            "--silent".into(),
            // Else it reports usage to Microsoft, and leaves files in /tmp.
            "--disableTelemetry".into(),
        ];
        let mut guard = Guarded::spawn("Azurite", &node, &args, &dir, &[], &[])?;
        let probe = "sqlite-s3-ready";
        guard
            .wait_ready(READY, || {
                listening(port)?;
                match create_container(port, probe) {
                    Ok(reply) if reply.status == 201 || reply.status == 409 => Ok(()),
                    Ok(reply) => Err(format!("creating container {probe}: {reply}")),
                    Err(e) => Err(format!("creating container {probe}: {e}")),
                }
            })
            .map_err(Failure::Broken)?;
        let _ = azure_request(
            port,
            "DELETE",
            &format!("/{probe}"),
            &[("restype", "container")],
            &[],
            b"",
        );
        Ok(Azurite { port, guard })
    }

    /// The Blob service endpoint, `http://127.0.0.1:PORT/devstoreaccount1`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{}", self.port, Self::ACCOUNT)
    }

    /// Creates a container whose name no other call in this process
    /// returned, made from `prefix` (lowercased; characters Azure does not
    /// allow become '-'), the process id and a counter, and returns its name:
    /// 3 to 63 lowercase letters, digits and single '-', starting and ending
    /// with a letter or digit. Panics when the server refuses it.
    pub fn unique_container(&self, prefix: &str) -> String {
        let name = bucket_name(prefix, std::process::id(), NAMES.fetch_add(1, Ordering::Relaxed));
        let reply = create_container(self.port, &name)
            .unwrap_or_else(|e| panic!("creating container {name} on Azurite at {}: {e}", self.endpoint()));
        assert!(
            reply.status == 201,
            "creating container {name} on Azurite at {}: {reply}\nits output:\n{}",
            self.endpoint(),
            self.guard.log()
        );
        name
    }

    /// Sends a request signed with the account's key: see [`azure_request`].
    #[cfg(test)]
    fn signed(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Reply> {
        azure_request(self.port, method, path, query, headers, body)
    }
}

/// `PUT /devstoreaccount1/NAME?restype=container`: 201 when created, 409
/// when it exists.
fn create_container(port: u16, name: &str) -> io::Result<Reply> {
    azure_request(port, "PUT", &format!("/{name}"), &[("restype", "container")], &[], b"")
}

/// Sends a request to Azurite on `port`, signed with the account's key.
/// `path` is under the account (`/CONTAINER` or `/CONTAINER/BLOB`, no
/// characters to escape), `query` has no characters to escape either, and
/// `headers` holds no standard header but `Content-Type`. `x-ms-date` and
/// `x-ms-version` are added.
fn azure_request(
    port: u16,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Reply> {
    let date = http_date(SystemTime::now());
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    all.push(("x-ms-date", &date));
    all.push(("x-ms-version", AZURE_VERSION));
    let account = Azurite::ACCOUNT;
    let signature = shared_key_signature(Azurite::KEY, method, &all, body.len(), path, query);
    let authorization = format!("SharedKey {account}:{signature}");
    all.push(("Authorization", &authorization));
    let mut target = format!("/{account}{path}");
    for (i, (name, value)) in query.iter().enumerate() {
        target.push(if i == 0 { '?' } else { '&' });
        target.push_str(&format!("{name}={value}"));
    }
    http(port, method, &target, &all, body)
}

/// The SharedKey signature of a Blob service request of the emulator's
/// account (whose path-style resources name the account twice): base64 of
/// the HMAC-SHA256, keyed with the decoded `key`, of the string to sign.
fn shared_key_signature(
    key: &str,
    method: &str,
    headers: &[(&str, &str)],
    content_length: usize,
    path: &str,
    query: &[(&str, &str)],
) -> String {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or("", |(_, v)| *v)
    };
    let length = if content_length == 0 {
        String::new()
    } else {
        content_length.to_string()
    };
    // VERB, then Content-Encoding, Content-Language, Content-Length,
    // Content-MD5, Content-Type, Date, If-Modified-Since, If-Match,
    // If-None-Match, If-Unmodified-Since and Range, each on a line.
    let mut to_sign = format!("{method}\n\n\n{length}\n\n{}\n\n\n\n\n\n\n", header("content-type"));
    let mut ms: Vec<(String, &str)> = headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim()))
        .filter(|(n, _)| n.starts_with("x-ms-"))
        .collect();
    ms.sort();
    for (name, value) in ms {
        to_sign.push_str(&format!("{name}:{value}\n"));
    }
    let account = Azurite::ACCOUNT;
    to_sign.push_str(&format!("/{account}/{account}{path}"));
    let mut query = query.to_vec();
    query.sort();
    for (name, value) in query {
        to_sign.push_str(&format!("\n{}:{value}", name.to_ascii_lowercase()));
    }
    let key = base64_decode(key).expect("a base64 key");
    base64_encode(&hmac_sha256(&key, to_sign.as_bytes()))
}

/// An `rclone serve s3` server on 127.0.0.1, serving a temporary directory:
/// an S3 store that ignores conditional requests (`If-None-Match: *` and
/// `If-Match` on PUT), for tests that must see such a store refused.
///
/// Requests are not authenticated: unsigned ones work, and signed ones from
/// any credentials are accepted too. Use path-style addressing.
#[derive(Debug)]
pub struct Rclone {
    port: u16,
    guard: Guarded,
}

impl Rclone {
    /// Starts a new server (in about 0.1 s), stopped when the value is
    /// dropped or the process exits, whichever comes first.
    ///
    /// Returns `None`, after printing a one-line "skipping: rclone not
    /// installed" to standard error, when `rclone` cannot be found, unless
    /// `SQLITE_S3_REQUIRE_SERVERS=1`, in which case it panics. Panics when
    /// it is found but fails to start.
    pub fn start() -> Option<Rclone> {
        match Rclone::spawn() {
            Ok(rclone) => Some(rclone),
            Err(Failure::Missing(why)) => missing("rclone", &why),
            Err(Failure::Broken(message)) => panic!("{message}"),
        }
    }

    fn spawn() -> Result<Rclone, Failure> {
        let rclone = program("SQLITE_S3_RCLONE", ".venv/bin/rclone")?;
        let dir = temp_dir("rclone");
        let root = dir.join("root");
        fs::create_dir(&root).unwrap_or_else(|e| panic!("creating {}: {e}", root.display()));
        let [port] = free_ports();
        let args = [
            "serve".to_string(),
            "s3".into(),
            "--addr".into(),
            format!("127.0.0.1:{port}"),
            root.display().to_string(),
        ];
        // No configuration file (else a notice that there is none).
        let env = [("RCLONE_CONFIG", "/dev/null")];
        let mut guard = Guarded::spawn("rclone serve s3", &rclone, &args, &dir, &[], &env)?;
        guard.wait_ready(READY, || listening(port)).map_err(Failure::Broken)?;
        Ok(Rclone { port, guard })
    }

    /// The S3 endpoint, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket (a directory under the served one), with `PUT
    /// /NAME`, and returns `name`. The name must be a valid bucket name (3 to
    /// 63 characters). Panics when the server refuses it, as it does a
    /// bucket that exists (409).
    ///
    /// The bucket is made through the server, not by making the directory
    /// beside it: rclone caches the directory's listing, and would not see
    /// a bucket made once it has listed the buckets.
    pub fn bucket(&self, name: &str) -> String {
        create_bucket("rclone", &self.guard, self.port, &self.endpoint(), name);
        name.to_string()
    }
}

/// The round constants of SHA-256.
const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
    0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
    0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
    0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
];

/// SHA-256 (FIPS 180-4).
fn sha256(data: &[u8]) -> [u8; 32] {
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ];
    let mut message = data.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_be_bytes());
    for block in message.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (word, bytes) in w.iter_mut().zip(block.chunks_exact(4)) {
            *word = u32::from_be_bytes(bytes.try_into().expect("4 bytes"));
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for (k, w) in K.iter().zip(w) {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh.wrapping_add(s1).wrapping_add(ch).wrapping_add(*k).wrapping_add(w);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (state, v) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *state = state.wrapping_add(v);
        }
    }
    let mut out = [0u8; 32];
    for (bytes, word) in out.chunks_exact_mut(4).zip(h) {
        bytes.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&sha256(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = block.map(|b| b ^ 0x36).to_vec();
    inner.extend_from_slice(data);
    let mut outer = block.map(|b| b ^ 0x5c).to_vec();
    outer.extend_from_slice(&sha256(&inner));
    sha256(&outer)
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64, padded.
fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, byte)| n | u32::from(*byte) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(BASE64[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64, padded or not; `None` on a character out of the
/// alphabet.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut n, mut bits) = (0u32, 0);
    for c in text.trim_end_matches('=').bytes() {
        n = n << 6 | BASE64.iter().position(|b| *b == c)? as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((n >> bits) as u8);
            n &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// An HTTP date (RFC 9110's IMF-fixdate): `Tue, 14 Nov 2023 22:13:20 GMT`.
fn http_date(time: SystemTime) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = time.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // The civil date of a day count (Howard Hinnant's days_from_civil,
    // reversed), for days since 1970-01-01, a Thursday.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn sha256_matches_known_digests() {
        let cases: [(&[u8], &str); 3] = [
            (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            (
                b"abc",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
                "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
            ),
        ];
        for (data, digest) in cases {
            assert_eq!(hex(&sha256(data)), digest, "{:?}", String::from_utf8_lossy(data));
        }
        assert_eq!(
            hex(&sha256(&[b'a'; 1_000_000])),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        let cases: [(&[u8], &[u8], &str); 3] = [
            (
                &[0x0b; 20],
                b"Hi There",
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe",
                b"what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            // A key longer than a block is hashed first.
            (
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
        ];
        for (key, data, mac) in cases {
            assert_eq!(hex(&hmac_sha256(key, data)), mac);
        }
    }

    #[test]
    fn base64_matches_rfc_4648() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (data, text) in cases {
            assert_eq!(base64_encode(data.as_bytes()), text);
            assert_eq!(base64_decode(text).as_deref(), Some(data.as_bytes()));
        }
        let key = base64_decode(Azurite::KEY).unwrap();
        assert_eq!(key.len(), 64);
        assert_eq!(base64_encode(&key), Azurite::KEY);
        assert_eq!(base64_decode("Zm9v!"), None);
    }

    #[test]
    fn http_dates() {
        let at = |secs| http_date(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(at(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(at(1_700_000_000), "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(at(4_107_542_400), "Mon, 01 Mar 2100 00:00:00 GMT");
    }

    #[test]
    fn container_creation_is_signed_as_azure_expects() {
        // Computed independently with Python's hmac, hashlib and base64.
        let headers = [
            ("x-ms-version", AZURE_VERSION),
            ("x-ms-date", "Tue, 14 Nov 2023 22:13:20 GMT"),
        ];
        let signature = shared_key_signature(Azurite::KEY, "PUT", &headers, 0, "/probe", &[("restype", "container")]);
        assert_eq!(signature, "pzZNYVaLo4jMqvk8Rvv9CiYJF1YqC6t6ojvbc/J8jzU=");
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        assert_eq!(dechunk(b"5\r\nhello\r\n7;x=y\r\n, world\r\n0\r\n\r\n"), b"hello, world");
        assert_eq!(dechunk(b""), b"");
    }

    /// An object PUT then GET through plain HTTP returns what was put.
    fn round_trip(port: u16, bucket: &str) {
        let target = format!("/{bucket}/dir/key.bin");
        let put = http(port, "PUT", &target, &[], b"some bytes").unwrap();
        assert_eq!(put.status, 200, "{put}");
        let get = http(port, "GET", &target, &[], b"").unwrap();
        assert_eq!(get.status, 200, "{get}");
        assert_eq!(get.body, b"some bytes");
    }

    #[test]
    fn seaweed_stores_objects() {
        let started = Instant::now();
        let Some(seaweed) = Seaweed::shared() else { return };
        eprintln!("SeaweedFS ready after {:?}", started.elapsed());
        assert!(seaweed.endpoint().starts_with("http://127.0.0.1:"));
        let bucket = seaweed.unique_bucket("Support Seaweed");
        assert!(bucket.starts_with("support-seaweed-"), "{bucket}");
        round_trip(seaweed.port, &bucket);
        assert_ne!(seaweed.unique_bucket("Support Seaweed"), bucket);
        assert!(std::ptr::eq(seaweed, Seaweed::shared().unwrap()));
    }

    #[test]
    fn seaweed_honours_if_none_match() {
        let Some(seaweed) = Seaweed::shared() else { return };
        let bucket = seaweed.unique_bucket("conditional");
        let target = format!("/{bucket}/key");
        let first = http(seaweed.port, "PUT", &target, &[("If-None-Match", "*")], b"one").unwrap();
        assert_eq!(first.status, 200, "{first}");
        let second = http(seaweed.port, "PUT", &target, &[("If-None-Match", "*")], b"two").unwrap();
        assert_eq!(second.status, 412, "{second}");
    }

    #[test]
    fn azurite_creates_containers_and_stores_blobs() {
        let started = Instant::now();
        let Some(azurite) = Azurite::shared() else { return };
        eprintln!("Azurite ready after {:?}", started.elapsed());
        assert_eq!(
            azurite.endpoint(),
            format!("http://127.0.0.1:{}/devstoreaccount1", azurite.port)
        );
        let container = azurite.unique_container("Support Azurite");
        assert!(container.starts_with("support-azurite-"), "{container}");
        let again = create_container(azurite.port, &container).unwrap();
        assert_eq!(again.status, 409, "{again}");

        let blob = format!("/{container}/dir/key.bin");
        let put = azurite
            .signed("PUT", &blob, &[], &[("x-ms-blob-type", "BlockBlob")], b"some bytes")
            .unwrap();
        assert_eq!(put.status, 201, "{put}");
        let get = azurite.signed("GET", &blob, &[], &[], b"").unwrap();
        assert_eq!(get.status, 200, "{get}");
        assert_eq!(get.body, b"some bytes");
        // Unsigned, it is refused.
        let unsigned = http(azurite.port, "GET", &format!("/{}{blob}", Azurite::ACCOUNT), &[], b"").unwrap();
        assert_eq!(unsigned.status, 403, "{unsigned}");
        assert!(std::ptr::eq(azurite, Azurite::shared().unwrap()));
    }

    #[test]
    fn rclone_ignores_conditional_puts() {
        let started = Instant::now();
        let Some(rclone) = Rclone::start() else { return };
        eprintln!("rclone ready after {:?}", started.elapsed());
        assert!(rclone.endpoint().starts_with("http://127.0.0.1:"));
        assert_eq!(rclone.bucket("ignored"), "ignored");
        round_trip(rclone.port, "ignored");

        // A store that honoured If-None-Match would answer 412 to the second.
        let target = "/ignored/once";
        let first = http(rclone.port, "PUT", target, &[("If-None-Match", "*")], b"one").unwrap();
        assert_eq!(first.status, 200, "{first}");
        let second = http(rclone.port, "PUT", target, &[("If-None-Match", "*")], b"two").unwrap();
        assert_eq!(second.status, 200, "rclone now honours If-None-Match: {second}");
        let get = http(rclone.port, "GET", target, &[], b"").unwrap();
        assert_eq!(get.body, b"two");
        let etag = get.header("etag").unwrap_or_default().to_string();
        assert!(!etag.is_empty(), "{}", get.head);

        // A server of its own each time.
        let other = Rclone::start().unwrap();
        assert_ne!(other.port, rclone.port);
        let missing = http(other.port, "GET", target, &[], b"").unwrap();
        assert_eq!(missing.status, 404, "{missing}");
    }

    #[test]
    fn rclone_stops_when_dropped_and_removes_its_directory() {
        let Some(rclone) = Rclone::start() else { return };
        let port = rclone.port;
        rclone.bucket("dropped");
        let dir = temp_dirs_of(rclone.guard.runner.id());
        let started = Instant::now();
        drop(rclone);
        eprintln!("rclone stopped after {:?}", started.elapsed());
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
        if let Some(dir) = dir {
            assert!(!dir.exists(), "{} is left", dir.display());
        }
    }

    /// The directory the guard with process id `pid` is to remove, read
    /// from its command line.
    fn temp_dirs_of(pid: u32) -> Option<PathBuf> {
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let at = args.iter().position(|a| *a == b"--cleanup")?;
        let dir = PathBuf::from(String::from_utf8_lossy(args.get(at + 1)?).into_owned());
        assert!(dir.is_dir(), "{}", dir.display());
        Some(dir)
    }
}
