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

use std::path::{Path, PathBuf};

use tokio::sync::Mutex;

pub use target::Target;

use crate::error::Result;
use crate::location::DatabaseUrl;
use crate::options::Options;
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
            }),
            Target::Remote(url) => {
                let options = options.clone().shared_working_copy(true);
                let session = Session::open(&url.to_string(), &options).await?;
                Ok(Self {
                    path: session.working_copy(),
                    target,
                    session: Some(Mutex::new(session)),
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
            Some(session) => session.lock().await.publish().await,
            None => Ok(PublishOutcome::Unchanged),
        }
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
    /// published only by the next open.
    ///
    /// # Failure
    /// See [`Session::close`].
    pub async fn close(self) -> Result<()> {
        match self.session {
            Some(session) => session.into_inner().close().await,
            None => Ok(()),
        }
    }
}
