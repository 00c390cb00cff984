//! Test helpers shared by the workspace's integration tests: a moto S3
//! server on 127.0.0.1, started on demand and stopped with the test process.
//!
//! moto is found through `SQLITE_S3_MOTO_PYTHON` (a Python interpreter with
//! `moto[server]` installed), else the workspace's `.venv/bin/python`, which
//! `scripts/test.sh` creates. Without it, tests that need S3 are skipped,
//! unless `SQLITE_S3_REQUIRE_MOTO=1` (set by `scripts/test.sh` and CI), which
//! turns a missing moto into a failure.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A moto S3 server on loopback.
#[derive(Debug)]
pub struct Moto {
    port: u16,
    child: Mutex<Child>,
    /// Held open for the life of the server: closing it stops the server.
    _stdin: Mutex<ChildStdin>,
}

static SHARED: OnceLock<Option<Moto>> = OnceLock::new();
static BUCKETS: AtomicU64 = AtomicU64::new(0);

fn python() -> Option<PathBuf> {
    let from_env = std::env::var_os("SQLITE_S3_MOTO_PYTHON").map(PathBuf::from);
    let venv = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/bin/python"));
    let found = from_env.or_else(|| venv.exists().then_some(venv));
    if found.is_none() {
        if std::env::var("SQLITE_S3_REQUIRE_MOTO").as_deref() == Ok("1") {
            panic!(
                "SQLITE_S3_REQUIRE_MOTO=1 but moto was not found: run scripts/test.sh, \
                 or set SQLITE_S3_MOTO_PYTHON to a python with moto[server] installed"
            );
        }
        eprintln!("skipping: moto not installed (run scripts/test.sh to install it)");
    }
    found
}

/// A free port on 127.0.0.1.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("binding 127.0.0.1:0")
        .port()
}

/// An `http://127.0.0.1:PORT` endpoint on which nothing listens.
pub fn closed_endpoint() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

impl Moto {
    /// The server shared by every test of this process, started on first
    /// use. `None` when moto is not installed (see the crate docs).
    pub fn shared() -> Option<&'static Moto> {
        SHARED
            .get_or_init(|| python().map(|python| Moto::spawn(&python, &[])))
            .as_ref()
    }

    /// A server of its own that checks credentials after its first request,
    /// which creates `bucket`. Requests signed with unknown credentials then
    /// fail with 403. Stopped when dropped.
    pub fn start_with_auth(bucket: &str) -> Option<Moto> {
        let moto = Moto::spawn(&python()?, &[("INITIAL_NO_AUTH_ACTION_COUNT", "1")]);
        moto.create_bucket(bucket);
        Some(moto)
    }

    fn spawn(python: &PathBuf, env: &[(&str, &str)]) -> Moto {
        let port = free_port();
        let runner = concat!(env!("CARGO_MANIFEST_DIR"), "/moto_runner.py");
        let mut child = Command::new(python)
            .arg(runner)
            .arg(port.to_string())
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting moto with {}: {e}", python.display()));
        let stdin = child.stdin.take().expect("piped stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut line = String::new();
        let ready = stdout.read_line(&mut line).is_ok() && line.trim() == "ready";
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(30);
        while ready && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            assert!(Instant::now() < deadline, "moto did not listen on {addr} within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        if !ready {
            let _ = child.kill();
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut stderr);
            }
            panic!("moto did not start on {addr}: {stderr}");
        }
        Moto {
            port,
            child: Mutex::new(child),
            _stdin: Mutex::new(stdin),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket (an unsigned `PUT /BUCKET`). Panics on failure.
    pub fn create_bucket(&self, name: &str) {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connecting to moto");
        write!(
            stream,
            "PUT /{name} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .expect("sending CreateBucket");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .expect("reading CreateBucket's answer");
        let status = response.lines().next().unwrap_or_default();
        assert!(status.contains(" 200"), "creating bucket {name}: {status}");
    }

    /// Creates a bucket with a name no other test of this process uses.
    pub fn unique_bucket(&self, prefix: &str) -> String {
        let n = BUCKETS.fetch_add(1, Ordering::SeqCst);
        let prefix: String = prefix
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .take(40)
            .collect();
        let name = format!("{prefix}-{}-{n}", std::process::id());
        self.create_bucket(&name);
        name
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        if let Ok(mut child) = self.child.lock() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_server_creates_buckets() {
        let Some(moto) = Moto::shared() else { return };
        let bucket = moto.unique_bucket("Support Test");
        assert!(bucket.starts_with("supporttest-"));
        assert!(moto.endpoint().starts_with("http://127.0.0.1:"));
    }

    #[test]
    fn nothing_listens_on_a_closed_endpoint() {
        let endpoint = closed_endpoint();
        let addr = endpoint.trim_start_matches("http://");
        assert!(TcpStream::connect(addr).is_err());
    }
}
