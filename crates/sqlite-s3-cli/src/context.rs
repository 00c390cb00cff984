//! What every command needs: options built from the global flags, a store
//! wrapped to count (and with `-v`, log) every request, progress bars.

use std::sync::Arc;

use sqlite_s3::store::{CountingStore, Counts};
use sqlite_s3::{LayoutKind, Options, PendingChanges, Remote, Result, StoreOptions};
use tempfile::TempDir;

use crate::cli::{Global, Layout};
use crate::progress;

/// The environment of one run of the program.
pub struct Context {
    /// Options for sessions.
    pub options: Options,
    /// Counts every request of this run.
    counter: Option<CountingStore>,
    verbose: bool,
    /// With `--no-cache`: a throwaway cache directory, removed at exit.
    _scratch: Option<TempDir>,
}

impl Context {
    /// Builds the context from the global flags.
    pub fn new(global: &Global) -> Result<Self> {
        let mut store = StoreOptions::new();
        if let Some(endpoint) = &global.endpoint {
            store = store.endpoint(endpoint);
        }
        if let Some(region) = &global.region {
            store = store.region(region);
        }
        let layout = match global.layout {
            Layout::Single => LayoutKind::Single,
            Layout::Versioned => LayoutKind::Versioned,
        };
        let mut options = Options::new().store(store).layout(layout);
        let scratch = if global.no_cache {
            let dir = tempfile::Builder::new()
                .prefix("sqlite-s3-")
                .tempdir()
                .map_err(|source| sqlite_s3::Error::Io {
                    operation: "creating a temporary cache directory in",
                    path: std::env::temp_dir(),
                    source,
                })?;
            options = options.cache_dir(dir.path());
            Some(dir)
        } else {
            if let Some(dir) = &global.cache_dir {
                options = options.cache_dir(dir);
            }
            None
        };
        if global.discard_pending {
            options = options.pending_changes(PendingChanges::Discard);
        }
        if !global.quiet {
            options = options.progress(progress::bar());
        }
        Ok(Self {
            options,
            counter: None,
            verbose: global.verbose > 0,
            _scratch: scratch,
        })
    }

    /// The database at `url`, reached through a counting store.
    pub fn remote(&mut self, url: &str) -> Result<Remote> {
        let remote = Remote::connect(url, self.options.store_options())?;
        let counter = CountingStore::new(remote.store().clone());
        self.counter = Some(counter.clone());
        Ok(remote.map_store(move |_| Arc::new(counter)))
    }

    /// What the run cost, so far.
    pub fn counts(&self) -> Counts {
        self.counter.as_ref().map(CountingStore::counts).unwrap_or_default()
    }

    /// With `-v`: prints what the run cost.
    pub fn report(&self) {
        if self.verbose && self.counter.is_some() {
            let c = self.counts();
            eprintln!(
                "{} request(s): {} GET, {} HEAD, {} PUT, {} LIST; {} bytes down, {} bytes up",
                c.requests, c.gets, c.heads, c.puts, c.lists, c.bytes_down, c.bytes_up
            );
        }
    }
}
