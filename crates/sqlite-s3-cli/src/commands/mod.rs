//! One module per command.

mod exec;
mod query;

use sqlite_s3::{Options, PendingChanges, Result, StoreOptions};

use crate::cli::{Cli, Command, Global};

/// Runs the command.
pub async fn run(cli: Cli) -> Result<()> {
    let options = options(&cli.global);
    match cli.command {
        Command::Exec {
            url,
            sql,
            retries,
            last_writer_wins,
        } => {
            exec::run(
                &url,
                &sql,
                options.max_attempts(retries.saturating_add(1)),
                last_writer_wins,
            )
            .await
        }
        Command::Query { url, sql, format } => query::run(&url, &sql, &options, format).await,
    }
}

fn options(global: &Global) -> Options {
    let mut store = StoreOptions::new();
    if let Some(endpoint) = &global.endpoint {
        store = store.endpoint(endpoint);
    }
    if let Some(region) = &global.region {
        store = store.region(region);
    }
    let mut options = Options::new().store(store);
    if let Some(dir) = &global.cache_dir {
        options = options.cache_dir(dir);
    }
    if global.discard_pending {
        options = options.pending_changes(PendingChanges::Discard);
    }
    options
}
