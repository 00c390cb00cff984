//! A fake AWS Lambda Runtime API on 127.0.0.1, enough to run a real
//! `lambda_runtime` function offline: it hands out the events queued with
//! [`RuntimeApi::invoke`] on `GET /2018-06-01/runtime/invocation/next` and
//! collects what the function posts to `.../response` and `.../error`.
//!
//! Point a function at it with `AWS_LAMBDA_RUNTIME_API=`[`RuntimeApi::address`]
//! (and the other variables of [`RuntimeApi::function_env`]).

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What a function answered to one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The body posted to `/response`.
    Response(String),
    /// The body posted to `/error` (`{"errorType": ..., "errorMessage": ...}`).
    Error(String),
}

#[derive(Default)]
struct State {
    queue: VecDeque<(String, String)>,
    outcomes: HashMap<String, Outcome>,
    next_id: u64,
}

/// The fake Runtime API. It stops listening when dropped.
pub struct RuntimeApi {
    address: String,
    shared: Arc<(Mutex<State>, Condvar)>,
}

impl RuntimeApi {
    /// Starts listening on a free port of 127.0.0.1.
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1");
        let address = listener.local_addr().unwrap().to_string();
        let shared: Arc<(Mutex<State>, Condvar)> = Arc::default();
        let for_thread = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = for_thread.clone();
                std::thread::spawn(move || serve(stream, &shared));
            }
        });
        Self { address, shared }
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The environment a function needs to run against this API.
    pub fn function_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_LAMBDA_RUNTIME_API", self.address.clone()),
            ("AWS_LAMBDA_FUNCTION_NAME", "test-function".into()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "test-stream".into()),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "test-group".into()),
        ]
    }

    /// Queues an event (a JSON document); returns its request id.
    pub fn invoke(&self, event: &str) -> String {
        let (lock, wake) = &*self.shared;
        let mut state = lock.lock().unwrap();
        state.next_id += 1;
        let id = format!("request-{}", state.next_id);
        state.queue.push_back((id.clone(), event.to_string()));
        wake.notify_all();
        id
    }

    /// Waits for the outcome of invocation `id`.
    ///
    /// # Panics
    /// After `timeout` without one.
    pub fn outcome(&self, id: &str, timeout: Duration) -> Outcome {
        let (lock, wake) = &*self.shared;
        let deadline = Instant::now() + timeout;
        let mut state = lock.lock().unwrap();
        loop {
            if let Some(outcome) = state.outcomes.get(id) {
                return outcome.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no answer to {id} within {timeout:?}");
            state = wake.wait_timeout(state, left).unwrap().0;
        }
    }
}

/// Serves the requests of one connection until it closes.
fn serve(stream: TcpStream, shared: &(Mutex<State>, Condvar)) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let body = String::from_utf8_lossy(&body).into_owned();
        let path = request_line.split_whitespace().nth(1).unwrap_or("").to_string();
        let answer = if path.ends_with("/invocation/next") {
            let (id, event) = next_event(shared);
            let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() + 60_000;
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: {id}\r\n\
                 Lambda-Runtime-Deadline-Ms: {deadline}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:test-function\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\n\
                 Content-Length: {}\r\n\r\n{event}",
                event.len()
            )
        } else {
            let mut parts = path.trim_start_matches('/').split('/');
            // 2018-06-01/runtime/invocation/{id}/{response|error}
            let (id, kind) = (parts.nth(3).unwrap_or("").to_string(), parts.next().unwrap_or(""));
            let outcome = match kind {
                "response" => Some(Outcome::Response(body)),
                "error" => Some(Outcome::Error(body)),
                _ => None,
            };
            if let Some(outcome) = outcome {
                let (lock, wake) = shared;
                lock.lock().unwrap().outcomes.insert(id, outcome);
                wake.notify_all();
            }
            "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n".to_string()
        };
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// Blocks until an event is queued, and takes it.
fn next_event(shared: &(Mutex<State>, Condvar)) -> (String, String) {
    let (lock, wake) = shared;
    let mut state = lock.lock().unwrap();
    loop {
        if let Some(event) = state.queue.pop_front() {
            return event;
        }
        state = wake.wait(state).unwrap();
    }
}
