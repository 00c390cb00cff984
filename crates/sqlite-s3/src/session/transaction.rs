//! The retrying transaction: the way to write safely when several writers
//! share a database.

use std::time::Duration;

use rusqlite::Transaction;

use super::Session;
use crate::error::{Error, Result};

/// A working copy refreshed less than this long ago is taken as fresh by the
/// first try of a transaction. Only a matter of cost: a stale copy is caught
/// by the conditional publish anyway.
const FRESH_FOR: Duration = Duration::from_millis(500);

impl Session {
    /// Runs `f` in a SQLite transaction on a fresh copy, commits, publishes;
    /// re-runs it on the newest version when it is proven not to have
    /// landed (a conflict: another writer's version took its place),
    /// after a jittered backoff, up to the configured number of tries.
    ///
    /// `f` may run several times, so it must do nothing it cannot repeat
    /// outside the database. An error from `f` rolls back and is returned
    /// at once (use [`Error::abort`] for your own errors).
    ///
    /// Unpublished changes made in this session before the call are published
    /// first; a conflict there is returned as is, since they cannot be re-run.
    ///
    /// # Failure
    /// [`Error::Conflict`] after the last try; any error of `f`;
    /// [`Error::OutcomeUnknown`] when whether the change landed cannot be
    /// told (the store failed for the whole retry budget): the change is
    /// kept with its tries, the next publish or session settles it exactly
    /// once, and it must not be run again. Other errors of
    /// [`Session::publish`] mean it did not land: the working copy is put
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
            match error {
                // Proof that it did not land and never will.
                Error::Conflict { .. } => {
                    self.discard().await?;
                }
                // Nothing was sent: the damaged copy was set aside and the
                // remote version pulled in its place.
                Error::WorkingCopyDamaged { .. } if attempt < policy.max_attempts => {}
                // Kept, with its tries: never run again.
                e @ Error::OutcomeUnknown { .. } => return Err(e),
                e => {
                    let e = self.after_failed_publish(e).await?;
                    // The store stayed down for a whole request budget and
                    // nothing landed: a few more runs, then give up.
                    store_failures += 1;
                    if !matches!(e, Error::Unavailable { .. })
                        || store_failures >= STORE_FAILURE_RUNS
                        || attempt >= policy.max_attempts
                    {
                        return Err(e);
                    }
                }
            }
            if attempt >= policy.max_attempts {
                return Err(Error::Conflict {
                    url: self.url().to_string(),
                    attempts: attempt,
                });
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
