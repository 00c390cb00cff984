//! Exclusive leases, for work that must not be re-run (side effects, long
//! batches): one process at a time holds a database's lease, and a holder
//! whose lease expired or was taken over publishes nothing.
//!
//! The lease is the object `KEY.sqlite-s3-lease`, a small JSON record:
//! owner, a random token, a fencing number, and the time it expires. Every
//! change to it is conditional, so it needs only what every supported store
//! offers:
//! - **acquire**: create it with `If-None-Match: *` (fencing number 1), or,
//!   when it is released or expired, overwrite it with `If-Match: <the ETag
//!   read>` and the fencing number plus one. Of racing processes exactly one
//!   write succeeds; the others read again and find it held.
//! - **renew**: overwrite it with `If-Match: <our last ETag>`. A failed
//!   condition means someone took it over: the lease is lost for good.
//! - **release**: the same, marking it released. Nothing is ever deleted.
//!
//! The holder's own view of expiry runs on its monotonic clock from the
//! moment it sent its last successful renewal, so a process that was frozen
//! (a Lambda sandbox between invocations, a stopped process) finds on
//! waking that its lease has run out, without asking anyone. Other
//! processes judge expiry by wall clock, and wait [`CLOCK_SKEW`] longer, so
//! clocks may disagree by that much. The monotonic clock does not run while
//! a whole machine is suspended or restored from a snapshot (Lambda
//! SnapStart): there the renewal before each publish is what catches a
//! takeover.
//!
//! A lease binds those who take it: a writer that does not ask for it is not
//! stopped, and the fencing number is not checked by the database's own
//! writes, which stay conditional on the version read (so a stale holder's
//! late upload can make a successor's publish conflict, never overwrite
//! it).
//!
//! Before every publish of a [`Database`](crate::Database) holding a lease
//! ([`Database::acquire_lease`](crate::Database::acquire_lease)), the lease
//! is confirmed: the holder's clock must leave it time, and a renewal (one
//! conditional PUT) must succeed. A holder that lost it gets
//! [`Error::LeaseLost`] and publishes nothing; the fencing number of a
//! later holder is named in the error.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use object_store::path::Path;
use object_store::{Attributes, GetOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::Remote;
use crate::store::cas::{self, Condition, Landed};
use crate::store::keys::Keys;
use crate::token::CommitToken;

/// How much later than its holder said other processes take a lease for
/// expired: the clock difference between machines the protocol tolerates.
pub const CLOCK_SKEW: Duration = Duration::from_secs(2);

/// The pauses between reads of a lease someone else holds (full jitter, see
/// `backoff.rs`): up to 100 ms, doubling to up to 500 ms.
const WAIT_BASE: Duration = Duration::from_millis(100);
const WAIT_CAP: Duration = Duration::from_millis(500);

/// The lease record, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    owner: String,
    token: String,
    fence: u64,
    /// Milliseconds since the Unix epoch, by the holder's clock.
    expires_at_ms: u64,
    released: bool,
}

/// What we know of a lease we hold.
#[derive(Debug)]
struct Held {
    etag: UpdateVersion,
    record: Record,
    /// By our monotonic clock: when it runs out.
    valid_until: Instant,
    /// Why it is lost, once it is.
    lost: Option<String>,
    released: bool,
}

impl Held {
    /// A lease just written as `record`, whose ETag is now `etag`.
    fn fresh(etag: UpdateVersion, record: Record, valid_until: Instant) -> Self {
        Self {
            etag,
            record,
            valid_until,
            lost: None,
            released: false,
        }
    }
}

/// A lease held on a database. Renew it ([`Lease::renew`]) more often than
/// its time to live, or let [`Lease::keep_renewed`] do it; release it when
/// done. Dropping it without releasing leaves it to expire.
#[derive(Debug, Clone)]
pub struct Lease {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    remote: Remote,
    key: Path,
    ttl: Duration,
    held: Mutex<Held>,
    /// One write of the lease at a time: two renewals from the same ETag
    /// would see each other as a takeover.
    writing: tokio::sync::Mutex<()>,
}

impl Lease {
    /// Acquires the lease of the database `remote` names, for `ttl`, as
    /// `owner` (a name for error messages: host, function, job). Waits up to
    /// `wait` for a holder to release it or for it to expire.
    ///
    /// # Failure
    /// [`Error::LeaseHeld`] when someone else still holds it after `wait`;
    /// store errors.
    pub async fn acquire(remote: &Remote, owner: &str, ttl: Duration, wait: Duration) -> Result<Self> {
        let key = Keys::new(remote).lease();
        let deadline = Instant::now() + wait;
        let mut waits = 0;
        loop {
            let current = read(remote, &key).await?;
            let fence = match &current {
                None => 1,
                Some((record, _)) if record.released || expired(record) => {
                    record.fence.checked_add(1).ok_or_else(|| Error::Corrupt {
                        url: remote.url().to_string(),
                        reason: format!(
                            "the lease object {key} holds fencing number {}, which has no successor; delete it to \
                             reset the lease",
                            record.fence
                        ),
                    })?
                }
                Some((record, _)) => {
                    let left = record.expires_at_ms.saturating_sub(now_ms()) / 1000;
                    if Instant::now() >= deadline {
                        return Err(Error::LeaseHeld {
                            url: remote.url().to_string(),
                            owner: record.owner.clone(),
                            expires_in_secs: left + CLOCK_SKEW.as_secs(),
                        });
                    }
                    waits += 1;
                    let pause = crate::backoff::full_jitter(WAIT_BASE, WAIT_CAP, waits);
                    tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
                    continue;
                }
            };
            let record = Record {
                owner: owner.to_string(),
                token: CommitToken::new().to_string(),
                fence,
                expires_at_ms: 0,
                released: false,
            };
            let mode = match &current {
                None => Condition::Absent,
                Some((_, etag)) => update(etag),
            };
            if let Some(held) = write(remote, &key, record, ttl, mode).await? {
                tracing::debug!("lease on {} acquired by {owner}, fence {fence}", remote.url());
                return Ok(Self {
                    shared: Arc::new(Shared {
                        remote: remote.clone(),
                        key,
                        ttl,
                        held: Mutex::new(held),
                        writing: tokio::sync::Mutex::new(()),
                    }),
                });
            }
            // Someone else wrote it first: read it again.
        }
    }

    /// The fencing number: higher for every new holder.
    pub fn fence(&self) -> u64 {
        self.shared.held.lock().expect("lease state").record.fence
    }

    /// The database URL.
    pub fn url(&self) -> String {
        self.shared.remote.url().to_string()
    }

    /// Extends the lease by its time to live, with a conditional write.
    ///
    /// # Failure
    /// [`Error::LeaseLost`] when it expired by our clock, was taken over or
    /// was released; store errors (the lease then stays valid until its
    /// time runs out, and a later renewal may still succeed).
    pub async fn renew(&self) -> Result<()> {
        let _writing = self.shared.writing.lock().await;
        let (etag, record) = {
            let held = self.shared.held.lock().expect("lease state");
            self.usable(&held)?;
            (held.etag.clone(), held.record.clone())
        };
        let shared = &self.shared;
        match write(&shared.remote, &shared.key, record, shared.ttl, update(&etag)).await? {
            Some(renewed) => {
                *shared.held.lock().expect("lease state") = renewed;
                Ok(())
            }
            None => {
                let reason = match read(&shared.remote, &shared.key).await {
                    Ok(Some((now, _))) => format!("taken over by {} with fence {}", now.owner, now.fence),
                    _ => "taken over".to_string(),
                };
                self.shared.held.lock().expect("lease state").lost = Some(reason.clone());
                Err(self.lost(reason))
            }
        }
    }

    /// Confirms, just before a publish, that the lease is still ours: our
    /// clock must leave it at least a tenth of its time to live, and a
    /// renewal must succeed.
    ///
    /// # Failure
    /// As [`Lease::renew`].
    pub async fn confirm(&self) -> Result<()> {
        {
            let held = self.shared.held.lock().expect("lease state");
            self.usable(&held)?;
            if Instant::now() + self.shared.ttl / 10 >= held.valid_until {
                return Err(self.lost("it expired by this process's clock".into()));
            }
        }
        self.renew().await
    }

    /// Renews the lease every third of its time to live until it is
    /// released, lost, or every clone is dropped. Store errors are retried
    /// at the next turn.
    pub fn keep_renewed(&self) {
        let weak = Arc::downgrade(&self.shared);
        let every = self.shared.ttl / 3;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(shared) = weak.upgrade() else { return };
                let lease = Lease { shared };
                match lease.renew().await {
                    Ok(()) => {}
                    Err(Error::LeaseLost { reason, .. }) => {
                        tracing::debug!("stopped renewing the lease on {}: {reason}", lease.url());
                        return;
                    }
                    Err(e) => tracing::warn!("renewing the lease on {} failed, will retry: {e}", lease.url()),
                }
            }
        });
    }

    /// Releases the lease, so the next process need not wait for it to
    /// expire.
    ///
    /// # Failure
    /// [`Error::LeaseLost`] when it was no longer ours (nothing is changed
    /// then); store errors.
    pub async fn release(&self) -> Result<()> {
        let _writing = self.shared.writing.lock().await;
        let (etag, mut record) = {
            let held = self.shared.held.lock().expect("lease state");
            self.usable(&held)?;
            (held.etag.clone(), held.record.clone())
        };
        record.released = true;
        let shared = &self.shared;
        match write(&shared.remote, &shared.key, record, Duration::ZERO, update(&etag)).await? {
            Some(_) => {
                let mut held = shared.held.lock().expect("lease state");
                held.released = true;
                Ok(())
            }
            None => Err(self.lost("taken over before it was released".into())),
        }
    }

    /// Whether the lease was released.
    pub fn is_released(&self) -> bool {
        self.shared.held.lock().expect("lease state").released
    }

    fn usable(&self, held: &Held) -> Result<()> {
        if let Some(reason) = &held.lost {
            return Err(self.lost(reason.clone()));
        }
        if held.released {
            return Err(self.lost("it was released".into()));
        }
        if Instant::now() >= held.valid_until {
            return Err(self.lost("it expired by this process's clock".into()));
        }
        Ok(())
    }

    fn lost(&self, reason: String) -> Error {
        Error::LeaseLost {
            url: self.url(),
            reason,
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Whether others may take the lease: past its expiry by our clock, with
/// [`CLOCK_SKEW`] to spare. (An expiry too far off to add the skew to is
/// never reached.)
fn expired(record: &Record) -> bool {
    now_ms() >= record.expires_at_ms.saturating_add(CLOCK_SKEW.as_millis() as u64)
}

/// The error of a lease the store keeps without an ETag, which no
/// conditional write can name.
fn no_etag(url: &str, key: &Path) -> Error {
    Error::Corrupt {
        url: url.to_string(),
        reason: format!("the store keeps the lease object {key} without an ETag, so no write of it can be conditional"),
    }
}

fn update(version: &UpdateVersion) -> Condition {
    Condition::Matches(version.clone())
}

/// The lease record and its version (ETag, store version), if there is one.
async fn read(remote: &Remote, key: &Path) -> Result<Option<(Record, UpdateVersion)>> {
    let url = remote.url().to_string();
    match remote.store().get_opts(key, GetOptions::default()).await {
        Ok(result) => {
            let etag = result.meta.e_tag.clone().ok_or_else(|| no_etag(&url, key))?;
            let etag = UpdateVersion {
                e_tag: Some(etag),
                version: result.meta.version.clone(),
            };
            let bytes = result.bytes().await.map_err(|e| remote.error("reading the lease", e))?;
            let record = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
                url: url.clone(),
                reason: format!("the lease object {key} does not parse ({e}); delete it to reset the lease"),
            })?;
            Ok(Some((record, etag)))
        }
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(remote.error("reading the lease", e)),
    }
}

/// Writes `record`, expiring `ttl` from now, if `condition` holds. `None`
/// when another write holds the lease's place. A try whose answer was lost
/// is recognised by the record holding exactly what we wrote.
async fn write(
    remote: &Remote,
    key: &Path,
    mut record: Record,
    ttl: Duration,
    condition: Condition,
) -> Result<Option<Held>> {
    // Our clock starts before the request: the lease runs out for us no
    // later than for anyone else.
    let sent = Instant::now();
    record.expires_at_ms = now_ms() + ttl.as_millis() as u64;
    let body = serde_json::to_vec(&record).expect("a lease record serializes");
    let outcome = cas::put(
        remote,
        key,
        PutPayload::from(body),
        Attributes::new(),
        &condition,
        "writing the lease",
        |_| check(remote, key, &record, &condition),
    )
    .await?;
    let etag = match outcome {
        cas::Outcome::Written(result) => UpdateVersion {
            e_tag: Some(result.e_tag.ok_or_else(|| no_etag(&remote.url().to_string(), key))?),
            version: result.version,
        },
        cas::Outcome::Found(etag) => etag,
        cas::Outcome::Taken => return Ok(None),
        cas::Outcome::Unknown(error) => return Err(error),
    };
    Ok(Some(Held::fresh(etag, record, sent + ttl)))
}

/// Whether the lease holds exactly `record` (then its ETag), or still
/// allows a write under `condition`.
async fn check(remote: &Remote, key: &Path, record: &Record, condition: &Condition) -> Result<Landed<UpdateVersion>> {
    Ok(match read(remote, key).await? {
        Some((now, etag))
            if now.token == record.token
                && now.fence == record.fence
                && now.expires_at_ms == record.expires_at_ms
                && now.released == record.released =>
        {
            Landed::Yes(etag)
        }
        Some((_, etag)) if condition.holds_for(etag.e_tag.as_deref()) => Landed::NotYet,
        None if condition.holds_for(None) => Landed::NotYet,
        _ => Landed::Never,
    })
}

#[cfg(test)]
mod tests {
    use object_store::ObjectStoreExt;

    use super::*;

    async fn with_record(name: &str, fence: u64, expires_at_ms: u64, released: bool) -> Remote {
        let remote = Remote::connect(
            &format!("memory://lease-{name}-{:08x}/app.db", fastrand::u32(..)),
            &crate::StoreOptions::new(),
        )
        .unwrap();
        let record = Record {
            owner: "someone".into(),
            token: "t".into(),
            fence,
            expires_at_ms,
            released,
        };
        let key = Path::from("app.db.sqlite-s3-lease");
        remote
            .store()
            .put(&key, serde_json::to_vec(&record).unwrap().into())
            .await
            .unwrap();
        remote
    }

    /// A released lease whose fencing number has no successor is `Corrupt`,
    /// naming the object, rather than an overflow.
    #[tokio::test]
    async fn a_fencing_number_with_no_successor_is_corrupt() {
        let remote = with_record("fence", u64::MAX, 0, true).await;
        let err = Lease::acquire(&remote, "me", Duration::from_secs(10), Duration::ZERO)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("app.db.sqlite-s3-lease"), "{err}");
    }

    /// A lease that expires at the end of time is held, not an overflow.
    #[tokio::test]
    async fn an_expiry_at_the_end_of_time_is_held() {
        let remote = with_record("expiry", 1, u64::MAX, false).await;
        let err = Lease::acquire(&remote, "me", Duration::from_secs(10), Duration::ZERO)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::LeaseHeld { .. }), "{err}");
        assert_eq!(err.kind(), crate::ErrorKind::TryAgain);
    }
}
