//! What every command needs: options built from the global flags, a store
//! wrapped to count (and with `-v`, log) every request, progress bars.

use sqlite_s3::admin::{CountingStore, Counts};
use sqlite_s3::{LayoutKind, Options, PendingChanges, Remote, Result, StoreOptions};
use tempfile::TempDir;

use crate::cli::{Global, Layout};
use crate::progress;

/// The environment of one run of the program.
pub struct Context {
    /// Options for sessions.
    pub options: Options,
    /// Count every request of this run, one per database reached.
    counters: Vec<CountingStore>,
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
        #[cfg(feature = "aws-config")]
        if let Some(profile) = &global.profile {
            store = store.profile(profile);
        }
        store = store.unsafe_store(global.unsafe_store);
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
            counters: Vec::new(),
            verbose: global.verbose > 0,
            _scratch: scratch,
        })
    }

    /// The database at `url`, reached through a counting store.
    pub fn remote(&mut self, url: &str) -> Result<Remote> {
        // Every try of every request is counted.
        let (remote, counter) = Remote::connect(url, self.options.store_options())?.counted();
        self.counters.push(counter);
        Ok(remote)
    }

    /// What the run cost, so far.
    pub fn counts(&self) -> Counts {
        self.counters
            .iter()
            .map(CountingStore::counts)
            .fold(Counts::default(), |a, b| Counts {
                requests: a.requests + b.requests,
                gets: a.gets + b.gets,
                heads: a.heads + b.heads,
                puts: a.puts + b.puts,
                lists: a.lists + b.lists,
                others: a.others + b.others,
                bytes_down: a.bytes_down + b.bytes_down,
                bytes_up: a.bytes_up + b.bytes_up,
            })
    }

    /// With `-v`: prints what the run cost.
    pub fn report(&self) {
        if self.verbose && !self.counters.is_empty() {
            let c = self.counts();
            eprintln!(
                "{} request(s): {} GET, {} HEAD, {} PUT, {} LIST; {} bytes down, {} bytes up",
                c.requests, c.gets, c.heads, c.puts, c.lists, c.bytes_down, c.bytes_up
            );
        }
    }
}
