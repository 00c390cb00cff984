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
    /// [`Session::publish`]. On failure the working copy is put back to the
    /// remote version, so nothing of `f` is published later, with one
    /// exception: when the store cannot be reached to learn whether the
    /// upload landed, the change is kept and the next session finishes it
    /// exactly once ([`Error::Unavailable`] says so; do not run it again).
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
            if !error.is_conflict() {
                return self.after_failed_publish(value, error).await;
            }
            // Put the working copy back to the remote's newest version.
            self.discard().await?;
            if attempt >= policy.max_attempts {
                return Err(Error::Conflict {
                    url: self.url().to_string(),
                    attempts: attempt,
                });
            }
            let delay = policy.backoff(attempt);
            tracing::debug!("conflict on try {attempt} of {}; retrying in {delay:?}", self.url());
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// A publish failed with something other than a conflict, so whether its
    /// upload landed may be unknown. Ask the remote: landed means the
    /// transaction succeeded; not landed means it did not, and the working
    /// copy goes back to the remote version. If the remote cannot tell
    /// either, the change and its token stay in the working copy, so that
    /// the next publish or open settles it exactly once, and the caller is
    /// told not to run it again.
    async fn after_failed_publish<T>(&mut self, value: T, error: Error) -> Result<T> {
        if self.resolve_in_flight().await.is_err() {
            return Err(match error {
                Error::Unavailable {
                    url, detail, source, ..
                } => Error::Unavailable {
                    url,
                    operation: "publishing a transaction: whether it landed is unknown; it is kept and the \
                                next session on this cache finishes it, so do not run it again",
                    detail,
                    source,
                },
                other => other,
            });
        }
        if !self.has_unpublished_changes()? {
            return Ok(value);
        }
        self.discard().await?;
        Err(error)
    }
}
