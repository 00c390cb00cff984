//! The retrying transaction: the way to write safely when several writers
//! share a database.

use std::time::Duration;

use rusqlite::Transaction;

use super::Session;
use crate::error::{Error, ErrorKind, Result};

/// A working copy refreshed less than this long ago is taken as fresh by the
/// first try of a transaction. Only a matter of cost: a stale copy is caught
/// by the conditional publish anyway.
const FRESH_FOR: Duration = Duration::from_millis(500);

impl Session {
    /// Runs `f` in a SQLite transaction on a fresh copy, commits, publishes;
    /// re-runs it on the newest version when it is proven not to have
    /// landed, after a jittered backoff, up to the configured number of
    /// tries: on a conflict (another writer's version took its place), and
    /// on passing contention ([`ErrorKind::TryAgain`]) or a store that
    /// stayed down, once no try of it is left in flight.
    ///
    /// `f` may run several times, so it must do nothing it cannot repeat
    /// outside the database. An error from `f` rolls back and is returned
    /// at once (use [`Error::abort`] for your own errors).
    ///
    /// Unpublished changes made in this session before the call are published
    /// first; a conflict there is returned as is, since they cannot be re-run.
    ///
    /// # Failure
    /// [`Error::Conflict`] after the last try, reporting how many runs were
    /// made; the last error of [`ErrorKind::TryAgain`] after the last try;
    /// any error of `f`; [`Error::OutcomeUnknown`] when whether the change
    /// landed cannot be told (the store failed for the whole retry budget):
    /// the change is kept with its tries, the next publish or session
    /// settles it exactly once, and it must not be run again. Other errors
    /// of [`Session::publish`] mean it did not land: the working copy is put
    /// back to the remote version, so nothing of `f` is published later.
    pub async fn transaction<T, F>(&mut self, mut f: F) -> Result<T>
    where
        F: FnMut(&Transaction<'_>) -> Result<T>,
    {
        self.publish().await?;
        if self.last_sync.elapsed() > FRESH_FOR {
            self.pull().await?;
        }
        let policy = self.options.retry;
        let mut attempt = 1;
        let mut store_failures = 0;
        loop {
            let value = {
                let tx = self.connection_mut().transaction()?;
                let value = f(&tx)?;
                tx.commit()?;
                value
            };
            let error = match self.publish().await {
                Ok(_) => return Ok(value),
                Err(error) => error,
            };
            let last = attempt >= policy.max_attempts;
            match error.kind() {
                // Proof that it did not land and never will.
                ErrorKind::Conflict => {
                    self.discard().await?;
                    if last {
                        return Err(error.with_attempts(attempt));
                    }
                }
                // Nothing was sent: the damaged copy was set aside and the
                // remote version pulled in its place.
                ErrorKind::Damaged if matches!(error, Error::WorkingCopyDamaged { .. }) && !last => {}
                // Kept, with its tries: never run again.
                ErrorKind::OutcomeUnknown => return Err(error),
                // This try did not land: a layout's publish fails with
                // anything but a conflict or an unknown outcome only then
                // (contention passes before the commit point: a file that
                // changed while its chunks were sent, a lock on the copy).
                // `after_failed_publish` makes sure no earlier try is in
                // flight, or gives up with an unknown outcome.
                ErrorKind::TryAgain => {
                    let e = self.after_failed_publish(error).await?;
                    if last {
                        return Err(e);
                    }
                }
                _ => {
                    let e = self.after_failed_publish(error).await?;
                    // The store stayed down for a whole request budget and
                    // nothing landed: a few more runs, then give up.
                    store_failures += 1;
                    if e.kind() != ErrorKind::Unavailable || store_failures >= STORE_FAILURE_RUNS || last {
                        return Err(e);
                    }
                }
            }
            let delay = policy.backoff(attempt);
            tracing::debug!("try {attempt} of {} did not land; again in {delay:?}", self.url());
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// A publish failed with `error`, which is not a conflict, and this try
    /// did not land. If an earlier try of the same change may still land,
    /// the outcome is unknown: the change stays. Otherwise the working copy
    /// goes back to the remote version and `error` is handed back.
    async fn after_failed_publish(&mut self, error: Error) -> Result<Error> {
        if self.slot.state.publishing.is_some() {
            return Err(crate::layout::publish_unknown(&self.remote, error));
        }
        self.discard().await?;
        Ok(error)
    }
}

/// How many times a transaction is run again after the store failed for a
/// whole request budget (and nothing landed).
const STORE_FAILURE_RUNS: u32 = 3;
