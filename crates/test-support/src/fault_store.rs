//! One fault-injecting store for every test: an `ObjectStore` wrapper
//! driven by rules ("the next PUT to a key under manifests/ loses its
//! answer") and by a seeded random plan ("3% of requests fail in a way
//! that may pass"). It sits under the library's retries
//! (`Remote::map_store`), so it sees every try of every request.
//!
//! What the faults simulate:
//! - `Reset`: the connection breaks before the request reaches the store.
//! - `Status(503)`: the store answers 503 SlowDown (or 500) without acting.
//! - `LoseAnswer`: the request is carried out, then the connection breaks.
//! - `ShortBody`: a GET whose body breaks off halfway.
//! - `LandLater`: the client gets a 503 at once, and the request reaches
//!   the store later (a proxy or a slow server): a write that lands after
//!   its answer.
//! - `Deny`: 403 Access Denied.
//! - `Stop`: the process stops before the request is sent (an error that
//!   says nothing about the store).
//! - `Hold`: the request waits until the test releases it.
//! - `Call`: a hook runs (another writer commits, say), then the request
//!   goes on.
//!
//! Every random decision is a function of the seed and the request's
//! number, and the seed is printed, so a failing run can be replayed.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::client::{HttpError, HttpErrorKind};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use sqlite_s3::Remote;
use tokio::sync::Notify;

/// Kinds of request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Get,
    Head,
    Put,
    List,
    Delete,
    Any,
}

impl Op {
    fn matches(self, op: Op) -> bool {
        self == Op::Any || self == op
    }
}

/// What happens to a request. See the module docs.
#[derive(Clone)]
pub enum Fault {
    Reset,
    Status(u16),
    LoseAnswer,
    ShortBody,
    LandLater(Duration),
    Deny,
    Stop,
    Hold(Arc<Hold>),
    Call(Arc<dyn Fn() + Send + Sync>),
}

impl fmt::Debug for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Fault::Reset => "Reset",
            Fault::Status(_) => "Status",
            Fault::LoseAnswer => "LoseAnswer",
            Fault::ShortBody => "ShortBody",
            Fault::LandLater(_) => "LandLater",
            Fault::Deny => "Deny",
            Fault::Stop => "Stop",
            Fault::Hold(_) => "Hold",
            Fault::Call(_) => "Call",
        };
        f.write_str(name)
    }
}

/// A request held until the test releases it.
#[derive(Debug, Default)]
pub struct Hold {
    /// Notified when a request arrives and waits.
    pub reached: Notify,
    /// Notify to let it go on.
    pub release: Notify,
}

type KeyRule = Box<dyn Fn(&str) -> bool + Send + Sync>;

struct Rule {
    op: Op,
    key: KeyRule,
    fault: Fault,
    /// How many more requests it applies to (`None`: every one).
    left: Option<u32>,
}

/// A seeded random plan of transient faults.
#[derive(Debug, Clone, Copy)]
pub struct Random {
    pub seed: u64,
    /// Probability that a request gets a fault.
    pub rate: f64,
}

/// What was injected.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub requests: u64,
    pub faults: u64,
    pub lost_answers: u64,
    pub landed_later: u64,
    pub short_bodies: u64,
}

/// The store. See the module docs.
pub struct Faults {
    inner: Arc<dyn ObjectStore>,
    rules: Mutex<Vec<Rule>>,
    random: Mutex<Option<Random>>,
    counter: AtomicU64,
    stats: Mutex<Stats>,
}

impl fmt::Debug for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Faults({})", self.inner)
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Faults({})", self.inner)
    }
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Faults {
    /// `remote` behind a fault store with no faults yet.
    pub fn wrap(remote: &Remote) -> (Remote, Arc<Faults>) {
        let mut handle = None;
        let remote = remote.clone().map_store(|inner| {
            let faults = Arc::new(Faults {
                inner,
                rules: Mutex::default(),
                random: Mutex::default(),
                counter: AtomicU64::new(0),
                stats: Mutex::default(),
            });
            handle = Some(faults.clone());
            faults
        });
        (remote, handle.expect("map_store calls the closure"))
    }

    /// Applies `fault` to the next request of kind `op` whose key `key`
    /// accepts.
    pub fn once(&self, op: Op, key: impl Fn(&str) -> bool + Send + Sync + 'static, fault: Fault) {
        self.add(op, key, fault, Some(1));
    }

    /// Applies `fault` to every request of kind `op` whose key `key` accepts.
    pub fn always(&self, op: Op, key: impl Fn(&str) -> bool + Send + Sync + 'static, fault: Fault) {
        self.add(op, key, fault, None);
    }

    fn add(&self, op: Op, key: impl Fn(&str) -> bool + Send + Sync + 'static, fault: Fault, left: Option<u32>) {
        self.rules.lock().unwrap().push(Rule {
            op,
            key: Box::new(key),
            fault,
            left,
        });
    }

    /// Holds the next request of kind `op` whose key `key` accepts.
    pub fn hold(&self, op: Op, key: impl Fn(&str) -> bool + Send + Sync + 'static) -> Arc<Hold> {
        let hold = Arc::new(Hold::default());
        self.once(op, key, Fault::Hold(hold.clone()));
        hold
    }

    /// Injects random transient faults into `rate` of all requests.
    pub fn random(&self, seed: u64, rate: f64) {
        eprintln!("random store faults: seed {seed}, rate {rate}");
        *self.random.lock().unwrap() = Some(Random { seed, rate });
    }

    /// No more faults.
    pub fn clear(&self) {
        self.rules.lock().unwrap().clear();
        *self.random.lock().unwrap() = None;
    }

    /// What was injected so far.
    pub fn stats(&self) -> Stats {
        *self.stats.lock().unwrap()
    }

    fn decide(&self, op: Op, key: &Path) -> Option<Fault> {
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        self.stats.lock().unwrap().requests += 1;
        let mut rules = self.rules.lock().unwrap();
        if let Some(i) = rules.iter().position(|r| r.op.matches(op) && (r.key)(key.as_ref())) {
            let fault = rules[i].fault.clone();
            if let Some(left) = &mut rules[i].left {
                *left -= 1;
                if *left == 0 {
                    rules.remove(i);
                }
            }
            self.stats.lock().unwrap().faults += 1;
            return Some(fault);
        }
        drop(rules);
        let random = (*self.random.lock().unwrap())?;
        let roll = splitmix(random.seed ^ splitmix(n));
        if ((roll >> 11) as f64 / (1u64 << 53) as f64) >= random.rate {
            return None;
        }
        let choices: &[Fault] = match op {
            Op::Put => &[
                Fault::Reset,
                Fault::Status(503),
                Fault::Status(500),
                Fault::LoseAnswer,
                Fault::LandLater(Duration::from_millis(30)),
            ],
            Op::Get => &[Fault::Reset, Fault::Status(503), Fault::ShortBody],
            _ => &[Fault::Reset, Fault::Status(503)],
        };
        self.stats.lock().unwrap().faults += 1;
        Some(choices[(splitmix(roll) % choices.len() as u64) as usize].clone())
    }

    fn note(&self, what: impl FnOnce(&mut Stats)) {
        what(&mut self.stats.lock().unwrap());
    }
}

/// A broken connection: what object_store reports when a reset or a
/// timeout cuts a request short.
pub fn reset() -> object_store::Error {
    object_store::Error::Generic {
        store: "S3",
        source: Box::new(HttpError::new(
            HttpErrorKind::Interrupted,
            std::io::Error::from(std::io::ErrorKind::ConnectionReset),
        )),
    }
}

/// An error answer, worded as object_store words it.
pub fn status(code: u16) -> object_store::Error {
    let (reason, body) = match code {
        503 => (
            "Service Unavailable",
            "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>",
        ),
        _ => (
            "Internal Server Error",
            "<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>",
        ),
    };
    object_store::Error::Generic {
        store: "S3",
        source: format!("Error performing request - Server returned non-2xx status code: {code} {reason}: {body}")
            .into(),
    }
}

fn deny(key: &Path) -> object_store::Error {
    object_store::Error::PermissionDenied {
        path: key.to_string(),
        source: "403 AccessDenied".into(),
    }
}

fn stop(key: &Path) -> object_store::Error {
    object_store::Error::Generic {
        store: "test",
        source: format!("the process stopped before writing {key}").into(),
    }
}

impl Faults {
    /// The fault before the request is carried out: an error to return at
    /// once, or nothing (go on).
    async fn before(&self, fault: &Option<Fault>, key: &Path) -> Option<object_store::Error> {
        match fault {
            Some(Fault::Reset) => Some(reset()),
            Some(Fault::Status(code)) => Some(status(*code)),
            Some(Fault::Deny) => Some(deny(key)),
            Some(Fault::Stop) => Some(stop(key)),
            Some(Fault::Hold(hold)) => {
                hold.reached.notify_one();
                hold.release.notified().await;
                None
            }
            Some(Fault::Call(call)) => {
                call();
                None
            }
            _ => None,
        }
    }
}

#[async_trait]
impl ObjectStore for Faults {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let fault = self.decide(Op::Put, location);
        if let Some(Fault::LandLater(delay)) = &fault {
            let (inner, location, delay) = (self.inner.clone(), location.clone(), *delay);
            self.note(|s| s.landed_later += 1);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = inner.put_opts(&location, payload, opts).await;
            });
            return Err(status(503));
        }
        if let Some(error) = self.before(&fault, location).await {
            return Err(error);
        }
        let result = self.inner.put_opts(location, payload, opts).await;
        if matches!(fault, Some(Fault::LoseAnswer)) {
            self.note(|s| s.lost_answers += 1);
            return Err(reset());
        }
        result
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> object_store::Result<GetResult> {
        let op = if options.head { Op::Head } else { Op::Get };
        let fault = self.decide(op, location);
        if let Some(error) = self.before(&fault, location).await {
            return Err(error);
        }
        let result = self.inner.get_opts(location, options).await?;
        match fault {
            Some(Fault::LoseAnswer) => Err(reset()),
            Some(Fault::ShortBody) if op == Op::Get && result.range.end - result.range.start > 1 => {
                self.note(|s| s.short_bodies += 1);
                let half = ((result.range.end - result.range.start) / 2) as usize;
                let (meta, range, attributes) = (result.meta.clone(), result.range.clone(), result.attributes.clone());
                let bytes = result.bytes().await?;
                let cut: BoxStream<'static, object_store::Result<Bytes>> =
                    futures::stream::iter([Ok(bytes.slice(..half)), Err(reset())]).boxed();
                Ok(GetResult {
                    payload: GetResultPayload::Stream(cut),
                    meta,
                    range,
                    attributes,
                    extensions: Default::default(),
                })
            }
            _ => Ok(result),
        }
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let fault = self.decide(Op::List, prefix.unwrap_or(&Path::from("")));
        match fault {
            Some(Fault::Reset | Fault::Status(_) | Fault::ShortBody) => {
                futures::stream::once(async { Err(reset()) }).boxed()
            }
            Some(Fault::Deny) => {
                let key = prefix.cloned().unwrap_or_default();
                futures::stream::once(async move { Err(deny(&key)) }).boxed()
            }
            _ => self.inner.list(prefix),
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let fault = self.decide(Op::List, prefix.unwrap_or(&Path::from("")));
        if let Some(error) = self.before(&fault, prefix.unwrap_or(&Path::from(""))).await {
            return Err(error);
        }
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
