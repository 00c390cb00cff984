//! The blocking API, for programs without an async runtime.
//!
//! Each [`Session`] owns a small single-threaded tokio runtime and drives the
//! async [`crate::Session`] on it. Do not use it from inside an async runtime
//! (tokio panics when one runtime blocks inside another): use the async API
//! there.

use std::path::PathBuf;

use rusqlite::{Connection, Transaction};

use crate::error::{Error, Result};
use crate::layout::RemoteVersion;
use crate::location::DatabaseUrl;
use crate::options::Options;
use crate::session::{PublishOutcome, RefreshOutcome};
use crate::store::Remote;

/// A blocking session. Its methods mirror [`crate::Session`]'s.
#[derive(Debug)]
pub struct Session {
    // Dropped before the runtime.
    inner: crate::Session,
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
        let inner = runtime.block_on(crate::Session::open(url, options))?;
        Ok(Self { inner, runtime })
    }

    /// See [`crate::Session::open_remote`].
    pub fn open_remote(remote: Remote, options: &Options) -> Result<Self> {
        let runtime = runtime()?;
        let inner = runtime.block_on(crate::Session::open_remote(remote, options))?;
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
    pub fn version(&self) -> Option<&RemoteVersion> {
        self.inner.version()
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
