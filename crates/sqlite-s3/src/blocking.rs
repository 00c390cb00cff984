//! The blocking API, for programs without an async runtime.
//!
//! Each [`Session`] owns a small single-threaded tokio runtime and drives the
//! async [`crate::Session`] on it. Do not use it from inside an async runtime
//! (tokio panics when one runtime blocks inside another): use the async API
//! there.

use std::path::PathBuf;

use rusqlite::{Connection, Transaction};

use crate::error::{Error, Result};
use crate::layout::Version;
use crate::location::DatabaseUrl;
use crate::options::Options;
use crate::session::{PublishOutcome, RefreshOutcome};
use crate::store::Remote;

/// A blocking session. Its methods mirror [`crate::Session`]'s.
#[derive(Debug)]
pub struct Session {
    // Dropped before the runtime.
    inner: crate::session::Session,
    runtime: tokio::runtime::Runtime,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| Error::Io {
            operation: "starting the I/O runtime",
            path: PathBuf::new(),
            source,
        })
}

impl Session {
    /// See [`crate::Session::open`].
    pub fn open(url: &str, options: &Options) -> Result<Self> {
        let runtime = runtime()?;
        let inner = runtime.block_on(crate::session::Session::open(url, options))?;
        Ok(Self { inner, runtime })
    }

    /// See [`crate::Session::open_remote`].
    pub fn open_remote(remote: Remote, options: &Options) -> Result<Self> {
        let runtime = runtime()?;
        let inner = runtime.block_on(crate::session::Session::open_remote(remote, options))?;
        Ok(Self { inner, runtime })
    }

    /// The SQLite connection on the working copy.
    pub fn connection(&self) -> &Connection {
        self.inner.connection()
    }

    /// The SQLite connection, for transactions.
    pub fn connection_mut(&mut self) -> &mut Connection {
        self.inner.connection_mut()
    }

    /// The database URL.
    pub fn url(&self) -> &DatabaseUrl {
        self.inner.url()
    }

    /// The working copy.
    pub fn working_copy(&self) -> PathBuf {
        self.inner.working_copy()
    }

    /// See [`crate::Session::version`].
    pub fn version(&self) -> Option<Version> {
        self.inner.version()
    }

    /// See [`crate::Session::version_info`].
    pub fn version_info(&self) -> Option<crate::history::VersionInfo> {
        self.inner.version_info()
    }

    /// See [`crate::Session::has_unpublished_changes`].
    pub fn has_unpublished_changes(&self) -> Result<bool> {
        self.inner.has_unpublished_changes()
    }

    /// See [`crate::Session::refresh`].
    pub fn refresh(&mut self) -> Result<RefreshOutcome> {
        self.runtime.block_on(self.inner.refresh())
    }

    /// See [`crate::Session::publish`].
    pub fn publish(&mut self) -> Result<PublishOutcome> {
        self.runtime.block_on(self.inner.publish())
    }

    /// See [`crate::Session::sync`].
    pub fn sync(&mut self) -> Result<(PublishOutcome, RefreshOutcome)> {
        self.runtime.block_on(self.inner.sync())
    }

    /// See [`crate::Session::discard`].
    pub fn discard(&mut self) -> Result<RefreshOutcome> {
        self.runtime.block_on(self.inner.discard())
    }

    /// See [`crate::Session::transaction`].
    pub fn transaction<T, F>(&mut self, f: F) -> Result<T>
    where
        F: FnMut(&Transaction<'_>) -> Result<T>,
    {
        self.runtime.block_on(self.inner.transaction(f))
    }

    /// See [`crate::Session::close`].
    pub fn close(self) -> Result<()> {
        let Session { inner, runtime } = self;
        runtime.block_on(inner.close())
    }
}

/// A blocking [`crate::Database`], for synchronous drivers such as Diesel.
/// Its methods mirror the async one's.
#[derive(Debug)]
pub struct Database {
    // Dropped before the runtime.
    inner: crate::database::Database,
    runtime: tokio::runtime::Runtime,
}

impl Database {
    /// See [`crate::Database::open`].
    pub fn open(value: &str, options: &Options) -> Result<Self> {
        let runtime = runtime()?;
        let inner = runtime.block_on(crate::database::Database::open(value, options))?;
        Ok(Self { inner, runtime })
    }

    /// See [`crate::Database::from_env`].
    pub fn from_env(variable: &str, options: &Options) -> Result<Self> {
        let runtime = runtime()?;
        let inner = runtime.block_on(crate::database::Database::from_env(variable, options))?;
        Ok(Self { inner, runtime })
    }

    /// See [`crate::Database::path`].
    pub fn path(&self) -> &std::path::Path {
        self.inner.path()
    }

    /// See [`crate::Database::target`].
    pub fn target(&self) -> &crate::database::Target {
        self.inner.target()
    }

    /// See [`crate::Database::publish`].
    pub fn publish(&self) -> Result<PublishOutcome> {
        self.runtime.block_on(self.inner.publish())
    }

    /// See [`crate::Database::refresh`].
    pub fn refresh(&self) -> Result<RefreshOutcome> {
        self.runtime.block_on(self.inner.refresh())
    }

    /// See [`crate::Database::discard`].
    pub fn discard(&self) -> Result<RefreshOutcome> {
        self.runtime.block_on(self.inner.discard())
    }

    /// See [`crate::Database::has_unpublished_changes`].
    pub fn has_unpublished_changes(&self) -> Result<bool> {
        self.runtime.block_on(self.inner.has_unpublished_changes())
    }

    /// See [`crate::Database::close`].
    pub fn close(self) -> Result<()> {
        self.runtime.block_on(self.inner.close())
    }
}
