//! A database any SQLite driver can open: [`Database`] pulls the newest
//! version into a working copy, gives its path to the driver (an sqlx pool,
//! a Diesel connection, rusqlite), and publishes what the driver committed
//! when asked, while the driver's connections stay open. For a plain local
//! file ([`Target::Local`]) it is only the path: publishing and refreshing
//! do nothing, so an application moves between a file and a bucket by
//! changing one setting.
//!
//! Underneath is a [`Session`] with a shared working copy
//! ([`Options::shared_working_copy`]): publishes upload a consistent
//! snapshot of what is committed, refreshes write the new version in with
//! one transaction.

mod target;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use tokio::sync::Mutex;

pub use target::Target;

use crate::error::{Error, ErrorKind, Result};
use crate::lease::Lease;
use crate::location::DatabaseUrl;
use crate::options::{Options, RetryPolicy};
use crate::session::{PublishOutcome, RefreshOutcome, Session};

/// A database whose working copy any driver may open. See the module docs.
///
/// Methods take `&self` and may be called from several tasks: each waits
/// for the one before it (share it in an `Arc`).
#[derive(Debug)]
pub struct Database {
    target: Target,
    path: PathBuf,
    /// `None` for a local file.
    session: Option<Mutex<Session>>,
    retry: RetryPolicy,
    /// A lease every publish must confirm first.
    lease: std::sync::Mutex<Option<Lease>>,
    /// Set while the work of a `write` runs: still set at the next `write`
    /// means that work never finished (it panicked), and what it committed
    /// is dropped.
    work_running: std::sync::atomic::AtomicBool,
}

impl Database {
    /// Opens what `value` names: a file path or a store URL (see
    /// [`Target::parse`]).
    ///
    /// # Failure
    /// The errors of [`Target::parse`] and [`Session::open`].
    pub async fn open(value: &str, options: &Options) -> Result<Self> {
        Self::open_target(Target::parse(value)?, options).await
    }

    /// Opens what the environment variable `variable` names
    /// (`DATABASE_URL` by convention).
    ///
    /// # Failure
    /// The errors of [`Target::from_env`] and [`Session::open`].
    pub async fn from_env(variable: &str, options: &Options) -> Result<Self> {
        Self::open_target(Target::from_env(variable)?, options).await
    }

    /// Opens a target. A remote database is pulled now (one conditional GET
    /// when the cache is warm).
    ///
    /// # Failure
    /// The errors of [`Session::open`].
    pub async fn open_target(target: Target, options: &Options) -> Result<Self> {
        match &target {
            Target::Local(path) => Ok(Self {
                path: path.clone(),
                target,
                session: None,
                retry: options.retry,
                lease: std::sync::Mutex::default(),
                work_running: Default::default(),
            }),
            Target::Remote(url) => {
                let options = options.clone().shared_working_copy(true);
                let session = Session::open(&url.to_string(), &options).await?;
                Ok(Self {
                    path: session.working_copy(),
                    target,
                    session: Some(Mutex::new(session)),
                    retry: options.retry,
                    lease: std::sync::Mutex::default(),
                    work_running: Default::default(),
                })
            }
        }
    }

    /// The file to open with a driver: the working copy, or the local file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the database is.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The store URL, for a remote database.
    pub fn url(&self) -> Option<&DatabaseUrl> {
        match &self.target {
            Target::Remote(url) => Some(url),
            Target::Local(_) => None,
        }
    }

    /// Publishes what the driver's connections committed since the last
    /// publish or refresh, as one consistent snapshot, with a conditional
    /// write. Sends nothing when nothing was committed.
    ///
    /// # Failure
    /// See [`Session::publish`]; on [`crate::Error::Conflict`] the changes
    /// stay in the working copy: [`Database::discard`] drops them.
    pub async fn publish(&self) -> Result<PublishOutcome> {
        match &self.session {
            Some(session) => self.publish_locked(&mut *session.lock().await).await,
            None => Ok(PublishOutcome::Unchanged),
        }
    }

    /// Publishes, confirming the lease first, if one is attached and
    /// something is about to be uploaded.
    async fn publish_locked(&self, session: &mut Session) -> Result<PublishOutcome> {
        self.drop_unfinished_work(session).await?;
        let lease = self.lease.lock().expect("lease slot").clone();
        match lease {
            Some(lease) if lease.is_released() => {
                *self.lease.lock().expect("lease slot") = None;
                session.publish().await
            }
            Some(lease) => session.publish_guarded(|| async move { lease.confirm().await }).await,
            None => session.publish().await,
        }
    }

    /// Drops what the work of a `write` that never finished (it panicked)
    /// committed, before anything else is published.
    async fn drop_unfinished_work(&self, session: &mut Session) -> Result<()> {
        if self.work_running.swap(false, Ordering::SeqCst) {
            tracing::warn!(
                "the work of an earlier write to {} did not finish; what it committed is dropped",
                session.url()
            );
            session.discard().await?;
        }
        Ok(())
    }

    /// Acquires the database's exclusive lease ([`crate::lease`]) as `owner`
    /// for `ttl`, waiting up to `wait` for another holder; keeps it renewed
    /// in the background; and from now on confirms it before every publish,
    /// so that if it is lost nothing is published. [`Lease::release`] it
    /// when done; publishes are then unconditional on it again.
    ///
    /// # Failure
    /// [`Error::Misuse`] for a local file, which has no store to hold a
    /// lease; the errors of [`Lease::acquire`].
    pub async fn acquire_lease(
        &self,
        owner: &str,
        ttl: std::time::Duration,
        wait: std::time::Duration,
    ) -> Result<Lease> {
        let Some(session) = &self.session else {
            return Err(Error::Misuse {
                url: self.target.to_string(),
                reason: "it is a local file, and a lease needs a store to live in: use a store URL".into(),
            });
        };
        let remote = session.lock().await.remote().clone();
        let lease = Lease::acquire(&remote, owner, ttl, wait).await?;
        lease.keep_renewed();
        self.attach_lease(lease.clone());
        Ok(lease)
    }

    /// Makes every publish confirm `lease` first (acquired with
    /// [`Lease::acquire`], renewed by you).
    pub fn attach_lease(&self, lease: Lease) {
        *self.lease.lock().expect("lease slot") = Some(lease);
    }

    /// Brings the working copy up to date (one conditional GET); open
    /// connections see the new version from their next transaction on.
    ///
    /// # Failure
    /// See [`Session::refresh`]: refused while there are unpublished changes.
    pub async fn refresh(&self) -> Result<RefreshOutcome> {
        match &self.session {
            Some(session) => session.lock().await.refresh().await,
            None => Ok(RefreshOutcome::Unchanged),
        }
    }

    /// Throws away unpublished changes and writes the newest version into
    /// the working copy (a full download).
    ///
    /// # Failure
    /// See [`Session::discard`].
    pub async fn discard(&self) -> Result<RefreshOutcome> {
        match &self.session {
            Some(session) => session.lock().await.discard().await,
            None => Ok(RefreshOutcome::Unchanged),
        }
    }

    /// Runs `work`, which writes through your driver, on the newest version,
    /// and publishes what it committed; when that is proven not to have
    /// landed (a conflict, or contention of [`ErrorKind::TryAgain`] with no
    /// earlier try of it in flight) drops it, refreshes and runs it again,
    /// up to the retry policy's tries
    /// ([`Options::max_attempts`]). The database's retrying transaction, for
    /// drivers: `work` may run several times, so it must do nothing it
    /// cannot repeat outside the database. Map your own errors with
    /// [`Error::abort`].
    ///
    /// Calls wait for each other, but other tasks using the pool meanwhile
    /// are not stopped: what they commit is published with this, or, when
    /// the work fails, conflicts or panics, dropped with it. Put every
    /// write through `write` when that matters. For a local file
    /// ([`Target::Local`]) `work` just runs: what it commits stays, even if
    /// it fails.
    ///
    /// # Failure
    /// [`Error::Conflict`] after the last try, reporting how many; the last
    /// [`Error::TryAgain`] after the last try; `work`'s error (what it
    /// committed is dropped); the errors of [`Database::publish`].
    pub async fn write<T, F, Fut>(&self, work: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.write_with(self.retry, work).await
    }

    /// [`Database::write`] with a retry policy of its own.
    pub(crate) async fn write_with<T, F, Fut>(&self, policy: RetryPolicy, mut work: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let Some(session) = &self.session else {
            return work().await;
        };
        let mut session = session.lock().await;
        // What was committed outside `write` goes first. If it conflicts,
        // it cannot land: it is dropped so the database stays usable, and
        // this call says so instead of running `work`.
        if let Err(e) = self.publish_locked(&mut session).await {
            if e.is_conflict() {
                tracing::warn!(
                    "changes to {} committed outside a write conflict and are dropped",
                    session.url()
                );
                session.discard().await?;
            }
            return Err(e);
        }
        let mut attempt = 1;
        loop {
            session.refresh().await?;
            self.work_running.store(true, Ordering::SeqCst);
            let value = work().await;
            self.work_running.store(false, Ordering::SeqCst);
            let value = match value {
                Ok(value) => value,
                Err(e) => {
                    if session.has_unpublished_changes()? {
                        session.discard().await?;
                    }
                    return Err(e);
                }
            };
            let e = match self.publish_locked(&mut session).await {
                Ok(_) => return Ok(value),
                Err(e) => e,
            };
            match e.kind() {
                // Not ours to publish any more, and not to be re-run.
                ErrorKind::Refused if matches!(e, Error::LeaseLost { .. }) => {
                    session.discard().await?;
                    return Err(e);
                }
                // Proof that it did not land and never will.
                ErrorKind::Conflict => {
                    session.discard().await?;
                    if attempt >= policy.max_attempts {
                        return Err(e.with_attempts(attempt));
                    }
                }
                // Nothing was sent: the damaged copy was set aside and the
                // newest version written in.
                ErrorKind::Damaged
                    if matches!(e, Error::WorkingCopyDamaged { .. }) && attempt < policy.max_attempts => {}
                // Kept with its tries, to be settled exactly once later.
                ErrorKind::OutcomeUnknown => return Err(e),
                _ if session.has_publish_in_flight() => {
                    return Err(crate::layout::publish_unknown(session.remote(), e));
                }
                // This try did not land (a layout's publish fails with
                // anything but a conflict or an unknown outcome only then)
                // and no earlier one is in flight: nothing of the work can
                // land any more, and contention passes. Run it again.
                ErrorKind::TryAgain if attempt < policy.max_attempts => {
                    session.discard().await?;
                }
                // It did not land: drop it, so that it is not published later.
                _ => {
                    session.discard().await?;
                    return Err(e);
                }
            }
            tracing::debug!("try {attempt} of {} did not land ({e}); running again", session.url());
            tokio::time::sleep(policy.backoff(attempt)).await;
            attempt += 1;
        }
    }

    /// Whether something committed is not published yet.
    ///
    /// # Failure
    /// See [`Session::has_unpublished_changes`].
    pub async fn has_unpublished_changes(&self) -> Result<bool> {
        match &self.session {
            Some(session) => session.lock().await.has_unpublished_changes(),
            None => Ok(false),
        }
    }

    /// Publishes what changed and releases the working copy. Close the
    /// driver's connections (the pool) first: what they commit afterwards is
    /// not published, and the next open may overwrite it with a newer
    /// version.
    ///
    /// # Failure
    /// See [`Session::close`].
    pub async fn close(self) -> Result<()> {
        // Through `publish_locked` first: the lease, and work that panicked.
        self.publish().await?;
        match self.session {
            Some(session) => session.into_inner().close().await,
            None => Ok(()),
        }
    }
}
