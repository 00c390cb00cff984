//! A fault-injecting HTTP proxy on 127.0.0.1, to put between an S3 client and
//! an S3 server on this machine (such as [`Moto`](crate::Moto)): it forwards
//! each request, and makes some of them fail, following a seeded [`Plan`], in
//! the ways a network and S3 itself fail.
//!
//! ```no_run
//! use std::time::Duration;
//! use test_support::fault_proxy::{FaultProxy, Plan};
//!
//! let Some(moto) = test_support::Moto::shared() else { return };
//! let proxy = FaultProxy::start(&moto.endpoint(), Plan::random(42, 0.2)).unwrap();
//! // Point the S3 client at `proxy.endpoint()` instead of `moto.endpoint()`
//! // and run the workload; then turn the faults off and let delayed writes
//! // land before checking the outcome.
//! proxy.set_plan(Plan::none());
//! assert!(proxy.settle(Duration::from_secs(10)));
//! println!("{:?}", proxy.stats());
//! ```
//!
//! The faults ([`Fault`]) and what each simulates:
//!
//! - [`Fault::ResetBeforeForward`]: the connection breaks before the request
//!   reaches S3. The client sees a connection reset; the request had no
//!   effect.
//! - [`Fault::Status`]: S3 refuses the request with a 500 `InternalError` or
//!   503 `SlowDown`; the request had no effect.
//! - [`Fault::LoseAnswer`]: the request took effect, but the connection
//!   broke before the answer came back. The client sees the connection close
//!   without an answer.
//! - [`Fault::ShortBody`]: the connection breaks while the answer's body is
//!   on its way. The client sees fewer bytes than `Content-Length` promised.
//! - [`Fault::Delay`]: a slow network or a slow server; the request goes
//!   through after a wait.
//! - [`Fault::LandLater`]: a write that lands after its answer. The client
//!   gets a 503 `SlowDown` at once, yet the request reaches S3 (and takes
//!   effect) a little later, as a request that timed out on the client's
//!   side but was still in flight can.
//!
//! Each client connection carries one request: the proxy reads the whole
//! request, decides its fate, answers (or not) with `Connection: close` and
//! closes the connection. A client that sends a second request on the same
//! connection finds it closed and connects again, as HTTP/1.1 clients do.
//! Requests are forwarded unchanged on a new upstream connection each, except
//! that their `Connection` header becomes `Connection: close`; the `Host`
//! header and the body stay as the client sent them, so signed requests stay
//! valid. Answers come back unchanged except for the `Connection` header (and
//! a `Content-Length` added to an answer that the upstream ended by closing
//! the connection). When the upstream cannot be reached, or its answer
//! cannot be read, the client gets a `502 Bad Gateway`.
//!
//! Request number `i` (counted from 0 over the life of the proxy, in the
//! order in which the proxy finished reading them) gets the fault
//! [`Plan::decide`]`(i, method)`, a pure function of the plan's seed and `i`:
//! the same seed and the same order of requests give the same faults. The
//! proxy prints the seed to standard error when it starts, so that a failing
//! test can be replayed.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a read or a write on any socket may block.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting to the upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the accept loop looks at the stop flag.
const ACCEPT_POLL: Duration = Duration::from_millis(5);
/// How long a client may take to close its side after its answer.
const LINGER: Duration = Duration::from_secs(2);
/// The largest request or response head (request or status line and headers).
const HEAD_LIMIT: u64 = 1024 * 1024;

/// A kind of fault, injected into one request. See the [module
/// documentation](self) for what each simulates.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    /// Reads the request, then closes the client connection with a reset
    /// (`SO_LINGER` 0; on systems other than Linux and macOS, a plain close)
    /// without forwarding the request.
    ResetBeforeForward,
    /// Answers with this status without forwarding the request, with an S3
    /// XML error body: `SlowDown` for 503, `InternalError` for any other
    /// status (meant for 500). Counted in [`Stats::statuses`].
    Status(u16),
    /// Forwards the request, waits for the whole upstream answer, then closes
    /// the client connection without answering.
    LoseAnswer,
    /// Forwards the request and sends back the upstream status line and
    /// headers unchanged (`Content-Length` included), but only the first
    /// half of the body (at least one byte short), then closes the
    /// connection. An answer without a body (to `HEAD`, a 1xx, 204 or 304,
    /// or with an empty body) is passed on whole, and not counted in
    /// [`Stats::short_bodies`].
    ShortBody,
    /// Waits this long, then forwards the request normally.
    Delay(Duration),
    /// Answers 503 `SlowDown` at once without forwarding, closes the client
    /// connection, and forwards the very same request after this delay, in
    /// the background; its upstream answer is thrown away.
    /// [`FaultProxy::settle`] waits for such requests.
    LandLater(Duration),
}

/// Which requests get which faults.
///
/// A request gets a fault with probability `rate`, unless `methods` is
/// non-empty and does not list its method; the fault is then drawn from
/// `faults` in proportion to the weights. Decisions are made by
/// [`Plan::decide`].
#[derive(Clone, Debug)]
pub struct Plan {
    /// The seed of every decision: the same seed gives the same faults for
    /// the same order of requests.
    pub seed: u64,
    /// The probability, from 0 to 1, that a request gets a fault.
    pub rate: f64,
    /// The faults to draw from, each with its weight.
    pub faults: Vec<(Fault, u32)>,
    /// The methods (`"PUT"`, `"GET"`, ...; case-insensitive) of the requests
    /// that may get a fault; empty means every method.
    pub methods: Vec<String>,
}

impl Plan {
    /// A plan that injects no fault: every request is forwarded as it is.
    pub fn none() -> Plan {
        Plan {
            seed: 0,
            rate: 0.0,
            faults: Vec::new(),
            methods: Vec::new(),
        }
    }

    /// A plan that gives a fault to a share `rate` of all requests, drawn
    /// from every kind of [`Fault`]: resets, 500 and 503 answers, lost
    /// answers, short bodies, delays of 300 ms and requests that land 300 ms
    /// after their answer.
    pub fn random(seed: u64, rate: f64) -> Plan {
        Plan {
            seed,
            rate,
            faults: vec![
                (Fault::ResetBeforeForward, 2),
                (Fault::Status(500), 1),
                (Fault::Status(503), 2),
                (Fault::LoseAnswer, 2),
                (Fault::ShortBody, 1),
                (Fault::Delay(Duration::from_millis(300)), 2),
                (Fault::LandLater(Duration::from_millis(300)), 2),
            ],
            methods: Vec::new(),
        }
    }

    /// A plan that gives `fault` to a share `rate` of all requests.
    pub fn only(fault: Fault, rate: f64, seed: u64) -> Plan {
        Plan {
            seed,
            rate,
            faults: vec![(fault, 1)],
            methods: Vec::new(),
        }
    }

    /// The fault for request number `index` (counted from 0) if its method
    /// is `method`: a pure function of the plan and its arguments. The seed
    /// and `index` are hashed with splitmix64; the hash picks whether the
    /// request gets a fault (with probability `rate`) and, hashed again,
    /// which one.
    pub fn decide(&self, index: u64, method: &str) -> Option<Fault> {
        if !self.methods.is_empty() && !self.methods.iter().any(|m| m.eq_ignore_ascii_case(method)) {
            return None;
        }
        let total: u64 = self.faults.iter().map(|&(_, weight)| u64::from(weight)).sum();
        if total == 0 {
            return None;
        }
        let hash = splitmix64(self.seed ^ splitmix64(index));
        // The top 53 bits, as a fraction in [0, 1).
        let draw = (hash >> 11) as f64 / (1u64 << 53) as f64;
        if draw >= self.rate {
            return None;
        }
        let mut pick = splitmix64(hash) % total;
        for &(fault, weight) in &self.faults {
            let weight = u64::from(weight);
            if pick < weight {
                return Some(fault);
            }
            pick -= weight;
        }
        None
    }
}

/// The splitmix64 mixing function: a bijection of `u64` whose outputs look
/// random for consecutive inputs.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What a proxy has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Requests read whole from clients, with or without a fault.
    pub requests: u64,
    /// [`Fault::ResetBeforeForward`] faults injected.
    pub resets: u64,
    /// [`Fault::Status`] faults injected.
    pub statuses: u64,
    /// [`Fault::LoseAnswer`] faults injected.
    pub lost_answers: u64,
    /// [`Fault::ShortBody`] faults injected: answers actually cut short.
    pub short_bodies: u64,
    /// [`Fault::Delay`] faults injected.
    pub delays: u64,
    /// [`Fault::LandLater`] faults injected (counted when the client gets its
    /// 503, before the request lands).
    pub landed_later: u64,
}

/// The state the proxy's threads share.
struct Shared {
    upstream: SocketAddr,
    state: Mutex<State>,
    /// Notified when `pending` drops or `stopped` is set.
    wake: Condvar,
}

struct State {
    plan: Plan,
    next_request: u64,
    stats: Stats,
    /// [`Fault::LandLater`] requests not yet forwarded (or given up).
    pending: usize,
    stopped: bool,
    /// A handle on every open socket, to shut them all down on drop.
    sockets: HashMap<u64, TcpStream>,
    next_socket: u64,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopped(&self) -> bool {
        self.state().stopped
    }

    /// Numbers a request whose method is `method`, decides its fault and
    /// counts it. A [`Fault::LandLater`] request counts as pending from here
    /// on, until the returned guard drops.
    fn decide(self: &Arc<Self>, method: &str) -> (Option<Fault>, Option<Pending>) {
        let mut state = self.state();
        let index = state.next_request;
        state.next_request += 1;
        state.stats.requests += 1;
        let fault = state.plan.decide(index, method);
        let stats = &mut state.stats;
        match fault {
            None | Some(Fault::ShortBody) => {}
            Some(Fault::ResetBeforeForward) => stats.resets += 1,
            Some(Fault::Status(_)) => stats.statuses += 1,
            Some(Fault::LoseAnswer) => stats.lost_answers += 1,
            Some(Fault::Delay(_)) => stats.delays += 1,
            Some(Fault::LandLater(_)) => stats.landed_later += 1,
        }
        let pending = if let Some(Fault::LandLater(_)) = fault {
            state.pending += 1;
            Some(Pending(Arc::clone(self)))
        } else {
            None
        };
        (fault, pending)
    }

    /// Records `stream` so that dropping the proxy shuts it down; `None`
    /// when the proxy is stopping (the stream is then shut down at once).
    fn register(self: &Arc<Self>, stream: &TcpStream) -> Option<Registered> {
        let clone = stream.try_clone().ok();
        let mut state = self.state();
        let Some(clone) = clone.filter(|_| !state.stopped) else {
            let _ = stream.shutdown(Shutdown::Both);
            return None;
        };
        let id = state.next_socket;
        state.next_socket += 1;
        state.sockets.insert(id, clone);
        Some(Registered {
            shared: Arc::clone(self),
            id,
        })
    }

    /// Waits `duration`; false if the proxy stopped meanwhile.
    fn sleep(&self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        let mut state = self.state();
        loop {
            if state.stopped {
                return false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            state = self.wake.wait_timeout(state, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }
}

/// A socket recorded by [`Shared::register`], forgotten on drop.
struct Registered {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.shared.state().sockets.remove(&self.id);
    }
}

/// A [`Fault::LandLater`] request not yet forwarded; no longer pending on
/// drop.
struct Pending(Arc<Shared>);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.state().pending -= 1;
        self.0.wake.notify_all();
    }
}

/// A fault-injecting HTTP proxy listening on 127.0.0.1 (see the [module
/// documentation](self)).
///
/// Dropping it stops it: the listener closes, connections in progress are
/// shut down, [`Fault::LandLater`] requests still waiting are dropped
/// without being forwarded (call [`FaultProxy::settle`] first to let them
/// land), and every thread of the proxy ends before `drop` returns.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultProxy")
            .field("endpoint", &self.endpoint())
            .field("upstream", &self.shared.upstream)
            .field("stats", &self.stats())
            .finish()
    }
}

impl FaultProxy {
    /// Starts a proxy on a free port of 127.0.0.1 that forwards to
    /// `upstream` (`http://127.0.0.1:PORT` or `http://localhost:PORT`),
    /// injecting faults as `plan` says, and prints its endpoint and the
    /// plan's seed to standard error.
    ///
    /// # Panics
    /// When `upstream` is not a plain `http://` URL without a path whose host
    /// is 127.0.0.1 or localhost: the proxy forwards only to this machine.
    ///
    /// # Errors
    /// When the listening socket cannot be set up.
    pub fn start(upstream: &str, plan: Plan) -> io::Result<FaultProxy> {
        let upstream = upstream_addr(upstream);
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let seed = plan.seed;
        let shared = Arc::new(Shared {
            upstream,
            state: Mutex::new(State {
                plan,
                next_request: 0,
                stats: Stats::default(),
                pending: 0,
                stopped: false,
                sockets: HashMap::new(),
                next_socket: 0,
            }),
            wake: Condvar::new(),
        });
        let for_thread = Arc::clone(&shared);
        let accept = std::thread::Builder::new()
            .name("fault-proxy-accept".into())
            .spawn(move || accept_loop(&listener, &for_thread))?;
        let proxy = FaultProxy {
            addr,
            shared,
            accept: Some(accept),
        };
        eprintln!("fault proxy on {}, seed {seed}", proxy.endpoint());
        Ok(proxy)
    }

    /// The proxy's endpoint, `http://127.0.0.1:PORT`, to give the client.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }

    /// Replaces the plan for the requests read from now on. The request
    /// counter goes on (it is not reset), so decisions of the new plan are
    /// [`Plan::decide`]`(i, method)` with `i` counting every request since
    /// the proxy started. Prints the new seed to standard error when it
    /// differs from the old one.
    pub fn set_plan(&self, plan: Plan) {
        let mut state = self.shared.state();
        if plan.seed != state.plan.seed {
            eprintln!(
                "fault proxy on {}: new plan from request {}, seed {}",
                self.endpoint(),
                state.next_request,
                plan.seed
            );
        }
        state.plan = plan;
    }

    /// What the proxy has done so far.
    pub fn stats(&self) -> Stats {
        self.shared.state().stats
    }

    /// Waits until every [`Fault::LandLater`] request injected so far has
    /// been forwarded and answered by the upstream (or failed to be), or
    /// `timeout` has passed. Returns true if none is pending any more.
    pub fn settle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.state();
        loop {
            if state.pending == 0 {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self
                .shared
                .wake
                .wait_timeout(state, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        {
            let mut state = self.shared.state();
            state.stopped = true;
            for stream in state.sockets.values() {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
        self.shared.wake.notify_all();
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// `http://127.0.0.1:PORT` or `http://localhost:PORT` (an optional `/` at
/// the end) as a socket address; panics on anything else.
fn upstream_addr(upstream: &str) -> SocketAddr {
    let refuse = |why: &str| -> ! {
        panic!(
            "fault proxy: refusing upstream {upstream:?}: {why}; the proxy forwards only to \
             http://127.0.0.1:PORT or http://localhost:PORT"
        )
    };
    let Some(rest) = upstream.strip_prefix("http://") else {
        refuse("not a plain http:// URL")
    };
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    if authority.contains('/') {
        refuse("it has a path");
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => match port.parse::<u16>() {
            Ok(port) => (host, port),
            Err(_) => refuse("its port is not a number"),
        },
        None => (authority, 80),
    };
    if !(host == "127.0.0.1" || host.eq_ignore_ascii_case("localhost")) {
        refuse("its host is not 127.0.0.1 or localhost");
    }
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// Accepts connections, each on a thread of its own, until the proxy stops;
/// then waits for those threads.
fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stopped() {
        match listener.accept() {
            Ok((stream, _)) => {
                workers.retain(|worker| !worker.is_finished());
                let shared = Arc::clone(shared);
                let spawned = std::thread::Builder::new()
                    .name("fault-proxy-conn".into())
                    .spawn(move || serve(stream, &shared));
                if let Ok(worker) = spawned {
                    workers.push(worker);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                std::thread::sleep(ACCEPT_POLL)
            }
            // Out of file descriptors and the like: wait a little.
            Err(_) => std::thread::sleep(ACCEPT_POLL * 4),
        }
    }
    for worker in workers {
        let _ = worker.join();
    }
}

/// The head of a request or response: its first line and its header lines,
/// as sent, without their line endings.
struct Head {
    first: Vec<u8>,
    headers: Vec<Vec<u8>>,
}

impl Head {
    /// The value of the first header named `name` (case-insensitive).
    fn header(&self, name: &str) -> Option<String> {
        self.headers.iter().find_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            line[..colon]
                .trim_ascii()
                .eq_ignore_ascii_case(name.as_bytes())
                .then(|| String::from_utf8_lossy(line[colon + 1..].trim_ascii()).into_owned())
        })
    }

    /// Whether the header named `name` lists `token` (case-insensitive).
    fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers.iter().any(|line| {
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                return false;
            };
            line[..colon].trim_ascii().eq_ignore_ascii_case(name.as_bytes())
                && String::from_utf8_lossy(&line[colon + 1..])
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case(token))
        })
    }

    /// The head as bytes, without the `Connection` headers, with
    /// `Connection: close` and `extra` headers added, ending with the empty
    /// line.
    fn to_bytes_closing(&self, extra: &[String]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.first);
        out.extend_from_slice(b"\r\n");
        for line in &self.headers {
            let name = line.split(|&b| b == b':').next().unwrap_or_default();
            if name.trim_ascii().eq_ignore_ascii_case(b"connection") {
                continue;
            }
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
        for line in extra.iter().map(String::as_str).chain(["Connection: close"]) {
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// How a message's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// No body.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the connection closes (responses only).
    UntilClose,
}

/// A request's body framing.
fn request_framing(head: &Head) -> io::Result<Framing> {
    if head.header("transfer-encoding").is_some() {
        return if head.has_token("transfer-encoding", "chunked") {
            Ok(Framing::Chunked)
        } else {
            Err(io::Error::new(
                ErrorKind::InvalidData,
                "a request Transfer-Encoding other than chunked",
            ))
        };
    }
    content_length(head).map(|length| match length {
        Some(0) | None => Framing::Empty,
        Some(length) => Framing::Length(length),
    })
}

/// A response's body framing, given its status and the request's method.
fn response_framing(head: &Head, status: u16, method: &str) -> io::Result<Framing> {
    if method.eq_ignore_ascii_case("HEAD") || (100..200).contains(&status) || status == 204 || status == 304 {
        return Ok(Framing::Empty);
    }
    if head.has_token("transfer-encoding", "chunked") {
        return Ok(Framing::Chunked);
    }
    content_length(head).map(|length| match length {
        Some(length) => Framing::Length(length),
        None => Framing::UntilClose,
    })
}

fn content_length(head: &Head) -> io::Result<Option<u64>> {
    head.header("content-length")
        .map(|value| {
            value
                .parse::<u64>()
                .map_err(|_| io::Error::new(ErrorKind::InvalidData, format!("bad Content-Length {value:?}")))
        })
        .transpose()
}

/// Reads one line, with its line ending, adding at most `limit` bytes.
fn read_raw_line(reader: &mut impl BufRead, limit: u64, line: &mut Vec<u8>) -> io::Result<usize> {
    if limit == 0 {
        return Err(io::Error::new(ErrorKind::InvalidData, "a message head too large"));
    }
    let read = reader.take(limit).read_until(b'\n', line)?;
    if read > 0 && line.last() != Some(&b'\n') {
        return Err(if read as u64 >= limit {
            io::Error::new(ErrorKind::InvalidData, "a line too long")
        } else {
            io::Error::new(ErrorKind::UnexpectedEof, "end of stream in a line")
        });
    }
    Ok(read)
}

fn trim_line_ending(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Reads a message head. `Ok(None)` when the stream ends before it starts.
fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut budget = HEAD_LIMIT;
    let mut line = Vec::new();
    // Empty lines before a request line are allowed (RFC 9112, 2.2).
    let first = loop {
        line.clear();
        let read = read_raw_line(reader, budget, &mut line)?;
        if read == 0 {
            return Ok(None);
        }
        budget = budget.saturating_sub(read as u64);
        let trimmed = trim_line_ending(&line);
        if !trimmed.is_empty() {
            break trimmed.to_vec();
        }
    };
    let mut headers = Vec::new();
    loop {
        line.clear();
        let read = read_raw_line(reader, budget, &mut line)?;
        if read == 0 {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                "end of stream in a message head",
            ));
        }
        budget = budget.saturating_sub(read as u64);
        let trimmed = trim_line_ending(&line);
        if trimmed.is_empty() {
            return Ok(Some(Head { first, headers }));
        }
        headers.push(trimmed.to_vec());
    }
}

/// Reads a body as framed, returning its bytes as they were sent (a chunked
/// body stays chunked, trailers and all).
fn read_body(reader: &mut impl BufRead, framing: Framing) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    match framing {
        Framing::Empty => {}
        Framing::Length(length) => {
            reader.take(length).read_to_end(&mut body)?;
            if (body.len() as u64) < length {
                return Err(io::Error::new(ErrorKind::UnexpectedEof, "end of stream in a body"));
            }
        }
        Framing::UntilClose => {
            reader.read_to_end(&mut body)?;
        }
        Framing::Chunked => loop {
            let start = body.len();
            if read_raw_line(reader, HEAD_LIMIT, &mut body)? == 0 {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "end of stream in a chunked body",
                ));
            }
            let size_line = String::from_utf8_lossy(trim_line_ending(&body[start..])).into_owned();
            let size = size_line.split(';').next().unwrap_or_default().trim();
            let size = u64::from_str_radix(size, 16)
                .map_err(|_| io::Error::new(ErrorKind::InvalidData, format!("bad chunk size line {size_line:?}")))?;
            if size == 0 {
                // Trailers, up to an empty line.
                loop {
                    let start = body.len();
                    if read_raw_line(reader, HEAD_LIMIT, &mut body)? == 0 {
                        return Err(io::Error::new(
                            ErrorKind::UnexpectedEof,
                            "end of stream in chunked trailers",
                        ));
                    }
                    if trim_line_ending(&body[start..]).is_empty() {
                        return Ok(body);
                    }
                }
            }
            let start = body.len();
            reader.take(size).read_to_end(&mut body)?;
            if ((body.len() - start) as u64) < size {
                return Err(io::Error::new(ErrorKind::UnexpectedEof, "end of stream in a chunk"));
            }
            let start = body.len();
            read_raw_line(reader, 2, &mut body)?;
            if !trim_line_ending(&body[start..]).is_empty() {
                return Err(io::Error::new(ErrorKind::InvalidData, "no line ending after a chunk"));
            }
        },
    }
    Ok(body)
}

/// A request read whole from a client.
struct Request {
    method: String,
    target: String,
    head: Head,
    body: Vec<u8>,
}

impl Request {
    /// The request as sent upstream: with `Connection: close`.
    fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.head.to_bytes_closing(&[]);
        out.extend_from_slice(&self.body);
        out
    }
}

/// Reads a request from `reader`, answering `Expect: 100-continue` on
/// `client`. `Ok(None)` when the client closed without sending one.
fn read_request(reader: &mut impl BufRead, mut client: &TcpStream) -> io::Result<Option<Request>> {
    let Some(head) = read_head(reader)? else {
        return Ok(None);
    };
    let first = String::from_utf8_lossy(&head.first).into_owned();
    let mut parts = first.split_ascii_whitespace();
    let (Some(method), Some(target), Some(_version)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(io::Error::new(
            ErrorKind::InvalidData,
            format!("bad request line {first:?}"),
        ));
    };
    let framing = request_framing(&head)?;
    if framing != Framing::Empty && head.has_token("expect", "100-continue") {
        client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let body = read_body(reader, framing)?;
    Ok(Some(Request {
        method: method.to_string(),
        target: target.to_string(),
        head,
        body,
    }))
}

/// A response read whole from the upstream.
struct Response {
    head: Head,
    /// A `Content-Length` to add, for a body delimited by the closing of the
    /// upstream connection.
    added_length: Option<String>,
    body: Vec<u8>,
}

impl Response {
    /// The head as sent back to the client: with `Connection: close`.
    fn head_bytes(&self) -> Vec<u8> {
        let extra: Vec<String> = self.added_length.iter().cloned().collect();
        self.head.to_bytes_closing(&extra)
    }
}

/// Sends `request` upstream on a new connection and reads the whole answer
/// (skipping interim 1xx answers).
fn forward(shared: &Arc<Shared>, request: &Request) -> io::Result<Response> {
    let upstream = TcpStream::connect_timeout(&shared.upstream, CONNECT_TIMEOUT)?;
    let Some(_registered) = shared.register(&upstream) else {
        return Err(io::Error::other("the proxy is stopping"));
    };
    upstream.set_read_timeout(Some(IO_TIMEOUT))?;
    upstream.set_write_timeout(Some(IO_TIMEOUT))?;
    upstream.set_nodelay(true)?;
    (&upstream).write_all(&request.to_bytes())?;
    let mut reader = BufReader::new(&upstream);
    loop {
        let Some(head) = read_head(&mut reader)? else {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                "the upstream closed without answering",
            ));
        };
        let first = String::from_utf8_lossy(&head.first).into_owned();
        let status = first
            .split_ascii_whitespace()
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| io::Error::new(ErrorKind::InvalidData, format!("bad status line {first:?}")))?;
        if (100..200).contains(&status) {
            continue;
        }
        let framing = response_framing(&head, status, &request.method)?;
        let body = read_body(&mut reader, framing)?;
        let added_length = (framing == Framing::UntilClose).then(|| format!("Content-Length: {}", body.len()));
        return Ok(Response {
            head,
            added_length,
            body,
        });
    }
}

/// An S3 error answer with `status`, without a body for a `HEAD` request.
fn error_answer(status: u16, method: &str, message: &str) -> Vec<u8> {
    let reason = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        412 => "Precondition Failed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Error",
    };
    let code = if status == 503 { "SlowDown" } else { "InternalError" };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>\
         <RequestId>fault-proxy</RequestId></Error>"
    );
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
         x-amz-request-id: fault-proxy\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !method.eq_ignore_ascii_case("HEAD") {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// The message of an injected error answer.
fn injected_message(status: u16) -> &'static str {
    if status == 503 {
        "Please reduce your request rate. (injected by the fault proxy)"
    } else {
        "We encountered an internal error. Please try again. (injected by the fault proxy)"
    }
}

/// Sends `response` to the client whole.
fn answer(mut client: &TcpStream, response: &Response) -> io::Result<()> {
    let mut out = response.head_bytes();
    out.extend_from_slice(&response.body);
    client.write_all(&out)?;
    client.flush()
}

/// Answers with the upstream's response, or a 502 when there is none.
fn answer_forwarded(client: &TcpStream, request: &Request, forwarded: io::Result<Response>) -> io::Result<()> {
    match forwarded {
        Ok(response) => answer(client, &response),
        Err(e) => {
            let message = format!("fault proxy: forwarding {} {}: {e}", request.method, request.target);
            eprintln!("{message}");
            let mut client = client;
            client.write_all(&error_answer(502, &request.method, &xml_escape(&message)))
        }
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Closes the client connection after an answer: ends the sending side,
/// then reads until the client closes its side (or [`LINGER`] passes), so
/// that nothing unread makes the close a reset that could destroy the
/// answer before the client reads it.
fn close_gracefully(mut client: &TcpStream) {
    let _ = client.shutdown(Shutdown::Write);
    let _ = client.set_read_timeout(Some(LINGER));
    let deadline = Instant::now() + LINGER;
    let mut buffer = [0u8; 4096];
    while Instant::now() < deadline {
        match client.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// Sets `SO_LINGER` to 0, so that closing the socket sends a reset. False
/// where this is not supported.
#[cfg(any(target_os = "linux", target_os = "macos"))]
fn set_linger_zero(stream: &TcpStream) -> bool {
    use std::ffi::{c_int, c_void};
    use std::os::fd::AsRawFd;

    #[cfg(target_os = "linux")]
    const SOL_SOCKET: c_int = 1;
    #[cfg(target_os = "linux")]
    const SO_LINGER: c_int = 13;
    #[cfg(target_os = "macos")]
    const SOL_SOCKET: c_int = 0xffff;
    #[cfg(target_os = "macos")]
    const SO_LINGER: c_int = 0x0080;

    #[repr(C)]
    struct Linger {
        l_onoff: c_int,
        l_linger: c_int,
    }
    unsafe extern "C" {
        fn setsockopt(fd: c_int, level: c_int, name: c_int, value: *const c_void, len: u32) -> c_int;
    }
    let linger = Linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the descriptor is open (borrowed from `stream`), and the value
    // is a `struct linger` of the size given.
    let result = unsafe {
        setsockopt(
            stream.as_raw_fd(),
            SOL_SOCKET,
            SO_LINGER,
            (&raw const linger).cast(),
            std::mem::size_of::<Linger>() as u32,
        )
    };
    result == 0
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn set_linger_zero(_stream: &TcpStream) -> bool {
    false
}

/// Serves one client connection: one request, then the connection closes.
fn serve(client: TcpStream, shared: &Arc<Shared>) {
    let _ = client.set_nonblocking(false);
    let _ = client.set_read_timeout(Some(IO_TIMEOUT));
    let _ = client.set_write_timeout(Some(IO_TIMEOUT));
    let _ = client.set_nodelay(true);
    let Some(registered) = shared.register(&client) else {
        return;
    };
    let request = match read_request(&mut BufReader::new(&client), &client) {
        Ok(Some(request)) => request,
        Ok(None) => return,
        Err(e) => {
            // Not a request this proxy understands: say so and close.
            if !shared.stopped() {
                eprintln!("fault proxy: reading a request: {e}");
                let message = xml_escape(&format!("fault proxy: reading the request: {e}"));
                let _ = (&client).write_all(&error_answer(400, "GET", &message));
                close_gracefully(&client);
            }
            return;
        }
    };
    let (fault, pending) = shared.decide(&request.method);
    match fault {
        None => {
            let forwarded = forward(shared, &request);
            if answer_forwarded(&client, &request, forwarded).is_ok() {
                close_gracefully(&client);
            }
        }
        Some(Fault::ResetBeforeForward) => {
            let reset = set_linger_zero(&client);
            if !reset {
                let _ = client.shutdown(Shutdown::Both);
            }
            // Closing the last handle on the socket sends the reset.
            drop(registered);
            drop(client);
        }
        Some(Fault::Status(status)) => {
            let out = error_answer(status, &request.method, injected_message(status));
            if (&client).write_all(&out).is_ok() {
                close_gracefully(&client);
            }
        }
        Some(Fault::LoseAnswer) => {
            if let Err(e) = forward(shared, &request) {
                eprintln!(
                    "fault proxy: forwarding {} {} (answer to lose): {e}",
                    request.method, request.target
                );
            }
            let _ = client.shutdown(Shutdown::Both);
        }
        Some(Fault::ShortBody) => match forward(shared, &request) {
            Ok(response) if !response.body.is_empty() => {
                shared.state().stats.short_bodies += 1;
                let mut out = response.head_bytes();
                out.extend_from_slice(&response.body[..response.body.len() / 2]);
                let _ = (&client).write_all(&out);
                let _ = client.shutdown(Shutdown::Both);
            }
            forwarded => {
                if answer_forwarded(&client, &request, forwarded).is_ok() {
                    close_gracefully(&client);
                }
            }
        },
        Some(Fault::Delay(delay)) => {
            if shared.sleep(delay) {
                let forwarded = forward(shared, &request);
                if answer_forwarded(&client, &request, forwarded).is_ok() {
                    close_gracefully(&client);
                }
            }
        }
        Some(Fault::LandLater(delay)) => {
            let out = error_answer(503, &request.method, injected_message(503));
            if (&client).write_all(&out).is_ok() {
                let _ = client.shutdown(Shutdown::Write);
            }
            drop(registered);
            drop(client);
            if shared.sleep(delay)
                && let Err(e) = forward(shared, &request)
            {
                eprintln!(
                    "fault proxy: forwarding {} {} (landing late): {e}",
                    request.method, request.target
                );
            }
            drop(pending);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the origin server saw of one request.
    #[derive(Clone, Debug)]
    struct Seen {
        method: String,
        path: String,
        headers: Vec<(String, String)>,
    }

    impl Seen {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }
    }

    /// A tiny S3-like origin server on 127.0.0.1: `PUT /PATH` stores the
    /// body, `GET` and `HEAD` answer from what was stored (404 otherwise).
    /// `GET /chunked/PATH` answers with a chunked body, `GET /eof/PATH`
    /// with a body ended by closing the connection. One request per
    /// connection. Its threads live as long as the test process.
    struct Origin {
        port: u16,
        objects: Arc<Mutex<HashMap<String, Vec<u8>>>>,
        seen: Arc<Mutex<Vec<Seen>>>,
    }

    impl Origin {
        fn start() -> Origin {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let objects: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
            let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
            let (o, s) = (Arc::clone(&objects), Arc::clone(&seen));
            std::thread::spawn(move || {
                for stream in listener.incoming().flatten() {
                    let (o, s) = (Arc::clone(&o), Arc::clone(&s));
                    std::thread::spawn(move || origin_serve(&stream, &o, &s));
                }
            });
            Origin { port, objects, seen }
        }

        fn endpoint(&self) -> String {
            format!("http://127.0.0.1:{}", self.port)
        }

        fn object(&self, path: &str) -> Option<Vec<u8>> {
            self.objects.lock().unwrap().get(path).cloned()
        }

        fn insert(&self, path: &str, data: &[u8]) {
            self.objects.lock().unwrap().insert(path.to_string(), data.to_vec());
        }

        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    fn origin_serve(stream: &TcpStream, objects: &Mutex<HashMap<String, Vec<u8>>>, seen: &Mutex<Vec<Seen>>) {
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut reader = BufReader::new(stream);
        let Ok(Some(head)) = read_head(&mut reader) else {
            return;
        };
        let framing = request_framing(&head).unwrap();
        let raw = read_body(&mut reader, framing).unwrap();
        let body = if framing == Framing::Chunked {
            decode_chunked(&raw)
        } else {
            raw
        };
        let first = String::from_utf8(head.first.clone()).unwrap();
        let mut parts = first.split(' ');
        let (method, path) = (parts.next().unwrap().to_string(), parts.next().unwrap().to_string());
        let headers = head
            .headers
            .iter()
            .map(|line| {
                let (name, value) = std::str::from_utf8(line).unwrap().split_once(':').unwrap();
                (name.trim().to_string(), value.trim().to_string())
            })
            .collect();
        seen.lock().unwrap().push(Seen {
            method: method.clone(),
            path: path.clone(),
            headers,
        });
        let key = ["/chunked", "/eof"]
            .iter()
            .find_map(|prefix| path.strip_prefix(prefix))
            .unwrap_or(&path);
        let head_only = method == "HEAD";
        let mut out: Vec<u8> = Vec::new();
        match method.as_str() {
            "PUT" => {
                let etag = format!("\"{}\"", body.len());
                objects.lock().unwrap().insert(key.to_string(), body);
                write!(
                    out,
                    "HTTP/1.1 200 OK\r\nETag: {etag}\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
                )
                .unwrap();
            }
            "GET" | "HEAD" => match objects.lock().unwrap().get(key) {
                Some(data) => {
                    write!(
                        out,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nETag: \"{}\"\r\n\
                         x-amz-meta-origin: test\r\n",
                        data.len()
                    )
                    .unwrap();
                    if path.starts_with("/chunked/") {
                        out.extend_from_slice(b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n");
                        if !head_only {
                            for chunk in data.chunks(100) {
                                write!(out, "{:x}\r\n", chunk.len()).unwrap();
                                out.extend_from_slice(chunk);
                                out.extend_from_slice(b"\r\n");
                            }
                            out.extend_from_slice(b"0\r\n\r\n");
                        }
                    } else if path.starts_with("/eof/") {
                        out.extend_from_slice(b"\r\n");
                        if !head_only {
                            out.extend_from_slice(data);
                        }
                    } else {
                        write!(out, "Content-Length: {}\r\nConnection: keep-alive\r\n\r\n", data.len()).unwrap();
                        if !head_only {
                            out.extend_from_slice(data);
                        }
                    }
                }
                None => {
                    let body = "<Error><Code>NoSuchKey</Code><Message>no such key</Message></Error>";
                    write!(
                        out,
                        "HTTP/1.1 404 Not Found\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    )
                    .unwrap();
                    if !head_only {
                        out.extend_from_slice(body.as_bytes());
                    }
                }
            },
            _ => out.extend_from_slice(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n"),
        }
        let mut stream = stream;
        stream.write_all(&out).unwrap();
        let _ = stream.shutdown(Shutdown::Write);
    }

    fn decode_chunked(mut raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let end = raw.windows(2).position(|w| w == b"\r\n").expect("a chunk size line");
            let size_line = std::str::from_utf8(&raw[..end]).unwrap();
            let size = usize::from_str_radix(size_line.split(';').next().unwrap().trim(), 16).unwrap();
            raw = &raw[end + 2..];
            if size == 0 {
                return out;
            }
            out.extend_from_slice(&raw[..size]);
            assert_eq!(&raw[size..size + 2], b"\r\n");
            raw = &raw[size + 2..];
        }
    }

    /// Test data: `len` bytes of every value.
    fn data(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 256) as u8).collect()
    }

    /// A request to the proxy, with `Host` set to the proxy's address.
    fn request_bytes(proxy: &FaultProxy, method: &str, path: &str, extra: &str, body: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nx-amz-date: 20250101T000000Z\r\n{extra}\
             Content-Length: {}\r\n\r\n",
            proxy.addr.port(),
            body.len()
        )
        .into_bytes();
        out.extend_from_slice(body);
        out
    }

    /// Sends raw bytes to the proxy and reads until it closes.
    fn exchange(proxy: &FaultProxy, request: &[u8]) -> io::Result<Vec<u8>> {
        let mut stream = TcpStream::connect(proxy.addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(request)?;
        let mut out = Vec::new();
        stream.read_to_end(&mut out)?;
        Ok(out)
    }

    /// A response as the test client read it.
    #[derive(Debug)]
    struct Reply {
        status: u16,
        headers: Vec<(String, String)>,
        /// Everything after the head, as received.
        body: Vec<u8>,
    }

    impl Reply {
        fn parse(raw: &[u8]) -> Reply {
            let end = raw
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(raw)));
            let head = std::str::from_utf8(&raw[..end]).unwrap();
            let mut lines = head.split("\r\n");
            let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
            let headers = lines
                .map(|line| {
                    let (name, value) = line.split_once(':').unwrap();
                    (name.trim().to_string(), value.trim().to_string())
                })
                .collect();
            Reply {
                status,
                headers,
                body: raw[end + 4..].to_vec(),
            }
        }

        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        }

        fn headers_named(&self, name: &str) -> usize {
            self.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .count()
        }
    }

    fn call(proxy: &FaultProxy, method: &str, path: &str, body: &[u8]) -> Reply {
        let raw = exchange(proxy, &request_bytes(proxy, method, path, "", body))
            .unwrap_or_else(|e| panic!("{method} {path} through {}: {e}", proxy.endpoint()));
        Reply::parse(&raw)
    }

    fn start(origin: &Origin, plan: Plan) -> FaultProxy {
        FaultProxy::start(&origin.endpoint(), plan).unwrap()
    }

    #[test]
    fn requests_and_answers_pass_through_unchanged() {
        let origin = Origin::start();
        let proxy = start(&origin, Plan::none());
        assert!(proxy.endpoint().starts_with("http://127.0.0.1:"));
        let data = data(3000);
        let put = call(&proxy, "PUT", "/bucket/key", &data);
        assert_eq!(put.status, 200);
        assert_eq!(put.header("etag"), Some("\"3000\""));
        assert_eq!(put.header("connection"), Some("close"));
        assert_eq!(put.headers_named("connection"), 1);
        assert_eq!(origin.object("/bucket/key").as_deref(), Some(&data[..]));

        let get = call(&proxy, "GET", "/bucket/key", b"");
        assert_eq!(get.status, 200);
        assert_eq!(get.body, data);
        assert_eq!(get.header("content-length"), Some("3000"));
        assert_eq!(get.header("content-type"), Some("application/octet-stream"));
        assert_eq!(get.header("etag"), Some("\"3000\""));
        assert_eq!(get.header("x-amz-meta-origin"), Some("test"));
        // The origin's keep-alive became close.
        assert_eq!(get.header("connection"), Some("close"));
        assert_eq!(get.headers_named("connection"), 1);

        // The origin got the requests as sent, Host included, but with
        // `Connection: close`.
        let seen = origin.seen();
        assert_eq!(seen.len(), 2);
        assert_eq!((seen[0].method.as_str(), seen[0].path.as_str()), ("PUT", "/bucket/key"));
        let host = format!("127.0.0.1:{}", proxy.addr.port());
        for request in &seen {
            assert_eq!(request.header("host"), Some(host.as_str()));
            assert_eq!(request.header("x-amz-date"), Some("20250101T000000Z"));
            assert_eq!(request.header("connection"), Some("close"));
        }
        assert_eq!(
            proxy.stats(),
            Stats {
                requests: 2,
                ..Stats::default()
            }
        );
    }

    #[test]
    fn head_answers_have_no_body() {
        let origin = Origin::start();
        origin.insert("/bucket/key", &data(1234));
        let proxy = start(&origin, Plan::none());
        let head = call(&proxy, "HEAD", "/bucket/key", b"");
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-length"), Some("1234"));
        assert!(head.body.is_empty(), "{} bytes of body", head.body.len());
        // Also through a chunked answer's head.
        let head = call(&proxy, "HEAD", "/chunked/bucket/key", b"");
        assert_eq!(head.header("transfer-encoding"), Some("chunked"));
        assert!(head.body.is_empty());
    }

    #[test]
    fn chunked_bodies_and_bodies_ended_by_a_close_pass_through() {
        let origin = Origin::start();
        let proxy = start(&origin, Plan::none());
        let data = data(1000);
        let mut chunked = Vec::new();
        for chunk in data.chunks(300) {
            write!(chunked, "{:x};ext=1\r\n", chunk.len()).unwrap();
            chunked.extend_from_slice(chunk);
            chunked.extend_from_slice(b"\r\n");
        }
        chunked.extend_from_slice(b"0\r\nx-trailer: yes\r\n\r\n");
        let mut request = format!(
            "PUT /bucket/chunked HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nTransfer-Encoding: chunked\r\n\r\n",
            proxy.addr.port()
        )
        .into_bytes();
        request.extend_from_slice(&chunked);
        let put = Reply::parse(&exchange(&proxy, &request).unwrap());
        assert_eq!(put.status, 200);
        assert_eq!(origin.object("/bucket/chunked").as_deref(), Some(&data[..]));

        let get = call(&proxy, "GET", "/chunked/bucket/chunked", b"");
        assert_eq!(get.header("transfer-encoding"), Some("chunked"));
        assert_eq!(get.header("content-length"), None);
        assert_eq!(decode_chunked(&get.body), data);

        // A body ended by the origin closing gets a Content-Length.
        let get = call(&proxy, "GET", "/eof/bucket/chunked", b"");
        assert_eq!(get.header("content-length"), Some("1000"));
        assert_eq!(get.body, data);
    }

    #[test]
    fn expect_continue_is_answered() {
        let origin = Origin::start();
        let proxy = start(&origin, Plan::none());
        let request = request_bytes(&proxy, "PUT", "/bucket/key", "Expect: 100-continue\r\n", b"hello");
        let raw = exchange(&proxy, &request).unwrap();
        let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
        assert!(raw.starts_with(interim), "{}", String::from_utf8_lossy(&raw));
        assert_eq!(Reply::parse(&raw[interim.len()..]).status, 200);
        assert_eq!(origin.object("/bucket/key").as_deref(), Some(&b"hello"[..]));
    }

    #[test]
    fn only_the_first_request_of_a_connection_is_answered() {
        let origin = Origin::start();
        let proxy = start(&origin, Plan::none());
        let mut two = request_bytes(&proxy, "PUT", "/bucket/one", "", b"1");
        two.extend_from_slice(&request_bytes(&proxy, "PUT", "/bucket/two", "", b"2"));
        let raw = exchange(&proxy, &two).unwrap();
        let reply = Reply::parse(&raw);
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("connection"), Some("close"));
        assert!(reply.body.is_empty(), "{}", String::from_utf8_lossy(&raw));
        assert_eq!(origin.seen().len(), 1);
        assert!(origin.object("/bucket/two").is_none());
        assert_eq!(proxy.stats().requests, 1);
    }

    #[test]
    fn an_unreachable_upstream_gives_bad_gateway() {
        let proxy = FaultProxy::start(&crate::closed_endpoint(), Plan::none()).unwrap();
        let reply = call(&proxy, "GET", "/bucket/key", b"");
        assert_eq!(reply.status, 502);
        assert!(String::from_utf8_lossy(&reply.body).contains("fault proxy: forwarding GET /bucket/key"));
    }

    #[test]
    fn a_reset_breaks_the_connection_before_forwarding() {
        let origin = Origin::start();
        let proxy = start(&origin, Plan::only(Fault::ResetBeforeForward, 1.0, 1));
        let result = exchange(&proxy, &request_bytes(&proxy, "PUT", "/bucket/key", "", b"data"));
        match result {
            Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
            // Where SO_LINGER cannot be set, the client sees the connection
            // close instead.
            Ok(raw) => {
                assert!(raw.is_empty(), "{}", String::from_utf8_lossy(&raw));
                if cfg!(any(target_os = "linux", target_os = "macos")) {
                    panic!("the connection was closed, not reset");
                }
            }
        }
        assert!(origin.seen().is_empty());
        assert_eq!(
            proxy.stats(),
            Stats {
                requests: 1,
                resets: 1,
                ..Stats::default()
            }
        );
    }

    #[test]
    fn status_faults_answer_s3_errors_without_forwarding() {
        let origin = Origin::start();
        for (status, code) in [(500, "InternalError"), (503, "SlowDown")] {
            let proxy = start(&origin, Plan::only(Fault::Status(status), 1.0, 1));
            let reply = call(&proxy, "PUT", "/bucket/key", b"data");
            assert_eq!(reply.status, status);
            assert_eq!(reply.header("content-type"), Some("application/xml"));
            assert_eq!(
                reply.header("content-length"),
                Some(reply.body.len().to_string().as_str())
            );
            assert_eq!(reply.header("connection"), Some("close"));
            let body = String::from_utf8(reply.body).unwrap();
            assert!(body.contains(&format!("<Error><Code>{code}</Code><Message>")), "{body}");
            let head = call(&proxy, "HEAD", "/bucket/key", b"");
            assert_eq!(head.status, status);
            assert!(head.body.is_empty());
            assert_eq!(
                proxy.stats(),
                Stats {
                    requests: 2,
                    statuses: 2,
                    ..Stats::default()
                }
            );
        }
        assert!(origin.seen().is_empty());
    }

    #[test]
    fn a_lost_answer_lands_but_is_not_answered() {
        let origin = Origin::start();
        let proxy = start(&origin, Plan::only(Fault::LoseAnswer, 1.0, 1));
        let data = data(500);
        let raw = exchange(&proxy, &request_bytes(&proxy, "PUT", "/bucket/key", "", &data)).unwrap();
        assert!(raw.is_empty(), "{}", String::from_utf8_lossy(&raw));
        assert_eq!(origin.object("/bucket/key").as_deref(), Some(&data[..]));
        assert_eq!(proxy.stats().lost_answers, 1);
    }

    #[test]
    fn a_short_body_stops_before_content_length() {
        let origin = Origin::start();
        origin.insert("/bucket/key", &data(1000));
        origin.insert("/bucket/one", b"1");
        let proxy = start(&origin, Plan::only(Fault::ShortBody, 1.0, 1));
        let get = call(&proxy, "GET", "/bucket/key", b"");
        assert_eq!(get.status, 200);
        assert_eq!(get.header("content-length"), Some("1000"));
        assert_eq!(get.header("etag"), Some("\"1000\""));
        assert_eq!(get.body, data(1000)[..500]);
        let get = call(&proxy, "GET", "/bucket/one", b"");
        assert_eq!(get.header("content-length"), Some("1"));
        assert!(get.body.is_empty());
        // A chunked body is cut too: its end is missing.
        let get = call(&proxy, "GET", "/chunked/bucket/key", b"");
        assert!(!get.body.ends_with(b"0\r\n\r\n"));
        assert_eq!(proxy.stats().short_bodies, 3);

        // Answers without a body are passed on whole, and not counted.
        let head = call(&proxy, "HEAD", "/bucket/key", b"");
        assert_eq!(head.header("content-length"), Some("1000"));
        assert!(head.body.is_empty());
        let put = call(&proxy, "PUT", "/bucket/new", b"new");
        assert_eq!(put.status, 200);
        assert_eq!(origin.object("/bucket/new").as_deref(), Some(&b"new"[..]));
        assert_eq!(
            proxy.stats(),
            Stats {
                requests: 5,
                short_bodies: 3,
                ..Stats::default()
            }
        );
    }

    #[test]
    fn a_delay_forwards_after_waiting() {
        let origin = Origin::start();
        origin.insert("/bucket/key", b"value");
        let proxy = start(&origin, Plan::only(Fault::Delay(Duration::from_millis(300)), 1.0, 1));
        let started = Instant::now();
        let get = call(&proxy, "GET", "/bucket/key", b"");
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(get.status, 200);
        assert_eq!(get.body, b"value");
        assert_eq!(proxy.stats().delays, 1);
    }

    #[test]
    fn a_late_write_lands_after_its_503() {
        let origin = Origin::start();
        let delay = Duration::from_millis(500);
        let proxy = start(&origin, Plan::only(Fault::LandLater(delay), 1.0, 1));
        let data = data(700);
        let started = Instant::now();
        let reply = call(&proxy, "PUT", "/bucket/key", &data);
        assert!(started.elapsed() < delay, "{:?}", started.elapsed());
        assert_eq!(reply.status, 503);
        assert!(String::from_utf8_lossy(&reply.body).contains("<Code>SlowDown</Code>"));
        assert!(origin.object("/bucket/key").is_none(), "landed before its delay");
        assert_eq!(proxy.stats().landed_later, 1);

        assert!(proxy.settle(Duration::from_secs(10)));
        assert!(started.elapsed() >= delay);
        assert_eq!(origin.object("/bucket/key").as_deref(), Some(&data[..]));
        // The very same request.
        let seen = origin.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].header("x-amz-date"), Some("20250101T000000Z"));
        assert_eq!(
            seen[0].header("host"),
            Some(format!("127.0.0.1:{}", proxy.addr.port()).as_str())
        );
        assert!(proxy.settle(Duration::ZERO));
    }

    #[test]
    fn settle_times_out_while_a_write_is_pending() {
        let origin = Origin::start();
        let proxy = start(&origin, Plan::only(Fault::LandLater(Duration::from_secs(2)), 1.0, 1));
        assert_eq!(call(&proxy, "PUT", "/bucket/key", b"x").status, 503);
        assert!(!proxy.settle(Duration::from_millis(50)));
        assert!(proxy.settle(Duration::from_secs(10)));
        assert!(origin.object("/bucket/key").is_some());
    }

    #[test]
    fn decisions_depend_on_the_seed_and_the_index_alone() {
        let plan = Plan::random(7, 0.3);
        let decisions: Vec<_> = (0..5000).map(|i| plan.decide(i, "PUT")).collect();
        let again: Vec<_> = (0..5000).map(|i| plan.clone().decide(i, "PUT")).collect();
        assert_eq!(decisions, again);
        let other: Vec<_> = (0..5000).map(|i| Plan::random(8, 0.3).decide(i, "PUT")).collect();
        assert_ne!(decisions, other);

        let faulted = decisions.iter().flatten().count();
        assert!((1300..1700).contains(&faulted), "{faulted} faults in 5000 at rate 0.3");
        for (fault, _) in &plan.faults {
            assert!(decisions.contains(&Some(*fault)), "{fault:?} never drawn");
        }
        assert!((0..1000).all(|i| Plan::none().decide(i, "PUT").is_none()));
        assert!((0..1000).all(|i| Plan::only(Fault::LoseAnswer, 1.0, 3).decide(i, "PUT") == Some(Fault::LoseAnswer)));
        assert!((0..1000).all(|i| Plan::only(Fault::LoseAnswer, 0.0, 3).decide(i, "PUT").is_none()));
        let no_weight = Plan {
            faults: vec![(Fault::LoseAnswer, 0)],
            ..Plan::only(Fault::LoseAnswer, 1.0, 3)
        };
        assert!((0..1000).all(|i| no_weight.decide(i, "PUT").is_none()));
    }

    #[test]
    fn the_same_seed_replays_the_same_faults() {
        let origin = Origin::start();
        let plan = Plan {
            seed: 1234,
            rate: 0.5,
            faults: vec![(Fault::Status(500), 1), (Fault::Status(503), 1)],
            methods: Vec::new(),
        };
        let statuses = |proxy: &FaultProxy| -> Vec<u16> {
            (0..40)
                .map(|_| call(proxy, "GET", "/bucket/missing", b"").status)
                .collect()
        };
        let first = statuses(&start(&origin, plan.clone()));
        let second = statuses(&start(&origin, plan.clone()));
        assert_eq!(first, second);
        let predicted: Vec<u16> = (0..40)
            .map(|i| match plan.decide(i, "GET") {
                None => 404,
                Some(Fault::Status(status)) => status,
                Some(other) => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(first, predicted);
        assert!(
            first.contains(&404) && first.contains(&500) && first.contains(&503),
            "{first:?}"
        );
    }

    #[test]
    fn a_method_filter_spares_other_methods() {
        let origin = Origin::start();
        let plan = Plan {
            methods: vec!["put".into()],
            ..Plan::only(Fault::Status(503), 1.0, 3)
        };
        let proxy = start(&origin, plan);
        assert_eq!(call(&proxy, "GET", "/bucket/key", b"").status, 404);
        assert_eq!(call(&proxy, "HEAD", "/bucket/key", b"").status, 404);
        assert_eq!(call(&proxy, "PUT", "/bucket/key", b"x").status, 503);
        let methods: Vec<String> = origin.seen().into_iter().map(|s| s.method).collect();
        assert_eq!(methods, ["GET", "HEAD"]);
        assert_eq!(
            proxy.stats(),
            Stats {
                requests: 3,
                statuses: 1,
                ..Stats::default()
            }
        );
    }

    #[test]
    fn a_new_plan_applies_to_later_requests() {
        let origin = Origin::start();
        let proxy = start(&origin, Plan::only(Fault::Status(500), 1.0, 1));
        for _ in 0..2 {
            assert_eq!(call(&proxy, "GET", "/bucket/key", b"").status, 500);
        }
        proxy.set_plan(Plan::none());
        for _ in 0..3 {
            assert_eq!(call(&proxy, "GET", "/bucket/key", b"").status, 404);
        }
        proxy.set_plan(Plan::only(Fault::LoseAnswer, 1.0, 2));
        assert!(
            exchange(&proxy, &request_bytes(&proxy, "GET", "/bucket/key", "", b""))
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            proxy.stats(),
            Stats {
                requests: 6,
                statuses: 2,
                lost_answers: 1,
                ..Stats::default()
            }
        );
    }

    #[test]
    fn dropping_the_proxy_stops_it() {
        let origin = Origin::start();
        let proxy = start(&origin, Plan::only(Fault::LandLater(Duration::from_secs(60)), 1.0, 1));
        let addr = proxy.addr;
        assert_eq!(call(&proxy, "PUT", "/bucket/late", b"x").status, 503);
        // A client that sent nothing, and one whose request waits on a delay.
        let mut idle = TcpStream::connect(addr).unwrap();
        proxy.set_plan(Plan::only(Fault::Delay(Duration::from_secs(60)), 1.0, 1));
        let mut delayed = TcpStream::connect(addr).unwrap();
        delayed
            .write_all(&request_bytes(&proxy, "GET", "/bucket/key", "", b""))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while proxy.stats().delays == 0 {
            assert!(Instant::now() < deadline, "the delayed request never arrived");
            std::thread::sleep(Duration::from_millis(10));
        }

        let started = Instant::now();
        drop(proxy);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "drop took {:?}",
            started.elapsed()
        );
        assert!(TcpStream::connect(addr).is_err(), "the proxy still listens");
        for stream in [&mut idle, &mut delayed] {
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut rest = Vec::new();
            match stream.read_to_end(&mut rest) {
                Ok(_) => assert!(rest.is_empty()),
                Err(e) => assert_ne!(e.kind(), ErrorKind::WouldBlock, "the connection is still open"),
            }
        }
        // The late write was dropped with the proxy.
        assert!(origin.object("/bucket/late").is_none());
    }

    #[test]
    fn only_loopback_upstreams_are_accepted() {
        for upstream in [
            "http://example.com:9000",
            "http://10.1.2.3:9000",
            "https://127.0.0.1:9000",
            "http://user@127.0.0.1:9000",
            "http://127.0.0.1:9000/prefix",
            "http://127.0.0.1:port",
            "127.0.0.1:9000",
        ] {
            let result = std::panic::catch_unwind(|| FaultProxy::start(upstream, Plan::none()));
            assert!(result.is_err(), "{upstream} was accepted");
        }
        for upstream in ["http://127.0.0.1:9", "http://localhost:9/", "http://LOCALHOST:9"] {
            assert!(
                FaultProxy::start(upstream, Plan::none()).is_ok(),
                "{upstream} was refused"
            );
        }
    }

    /// A SigV4 `Authorization` header that moto (without authentication)
    /// does not check. moto answers unsigned object reads, and unsigned
    /// conditional writes, with an empty 403.
    const FAKE_SIGNATURE: &str = concat!(
        "x-amz-content-sha256: UNSIGNED-PAYLOAD\r\n",
        "Authorization: AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/s3/aws4_request, ",
        "SignedHeaders=host;x-amz-content-sha256;x-amz-date, ",
        "Signature=0000000000000000000000000000000000000000000000000000000000000000\r\n",
    );

    /// A request with [`FAKE_SIGNATURE`] and `extra` headers.
    fn call_signed(proxy: &FaultProxy, method: &str, path: &str, extra: &str, body: &[u8]) -> Reply {
        let headers = format!("{FAKE_SIGNATURE}{extra}");
        let raw = exchange(proxy, &request_bytes(proxy, method, path, &headers, body))
            .unwrap_or_else(|e| panic!("{method} {path} through {}: {e}", proxy.endpoint()));
        Reply::parse(&raw)
    }

    #[test]
    fn moto_answers_pass_through() {
        let Some(moto) = crate::Moto::shared() else {
            return;
        };
        let proxy = FaultProxy::start(&moto.endpoint(), Plan::none()).unwrap();
        let bucket = crate::bucket_name(
            "fault proxy",
            std::process::id(),
            crate::BUCKETS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        );
        let created = call(&proxy, "PUT", &format!("/{bucket}"), b"");
        assert_eq!(created.status, 200, "{created:?}");

        let key = format!("/{bucket}/dir/object.bin");
        let data = data(5000);
        let put = call_signed(&proxy, "PUT", &key, "", &data);
        assert_eq!(put.status, 200, "{put:?}");
        let etag = put.header("etag").expect("an ETag").to_string();

        let get = call_signed(&proxy, "GET", &key, "", b"");
        assert_eq!(get.status, 200, "{get:?}");
        assert_eq!(get.body, data);
        assert_eq!(get.header("etag"), Some(etag.as_str()));
        assert_eq!(get.header("content-length"), Some("5000"));
        assert_eq!(get.header("connection"), Some("close"));
        assert_eq!(get.headers_named("connection"), 1);

        let head = call_signed(&proxy, "HEAD", &key, "", b"");
        assert_eq!(head.status, 200, "{head:?}");
        assert_eq!(head.header("content-length"), Some("5000"));
        assert!(head.body.is_empty());

        let missing = call_signed(&proxy, "GET", &format!("/{bucket}/missing"), "", b"");
        assert_eq!(missing.status, 404, "{missing:?}");
        assert!(String::from_utf8_lossy(&missing.body).contains("<Code>NoSuchKey</Code>"));

        // Conditional writes: a create of an existing key fails its
        // condition, a replace of the current version succeeds.
        let refused = call_signed(&proxy, "PUT", &key, "If-None-Match: *\r\n", b"other");
        assert_eq!(refused.status, 412, "{refused:?}");
        assert!(String::from_utf8_lossy(&refused.body).contains("PreconditionFailed"));
        let replaced = call_signed(&proxy, "PUT", &key, &format!("If-Match: {etag}\r\n"), b"new");
        assert_eq!(replaced.status, 200, "{replaced:?}");
        assert_eq!(call_signed(&proxy, "GET", &key, "", b"").body, b"new");
        assert_eq!(proxy.stats().requests, 8);
    }
}
