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
    /// on [`Error::Conflict`] pulls the newest version and runs `f` again,
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
    /// [`Error::Conflict`] after the last try; any error of `f`; the errors of
    /// [`Session::publish`]. On any failure the working copy is put back to
    /// the remote version: nothing of `f` is left behind to be published later.
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
            // Put the working copy back to the remote's newest version.
            let reverted = self.discard().await;
            match error {
                Error::Conflict { url, .. } if attempt >= policy.max_attempts => {
                    return Err(Error::Conflict { url, attempts: attempt });
                }
                Error::Conflict { .. } => {
                    reverted?;
                    let delay = policy.backoff(attempt);
                    tracing::debug!("conflict on try {attempt} of {}; retrying in {delay:?}", self.url());
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                other => return Err(other),
            }
        }
    }
}
