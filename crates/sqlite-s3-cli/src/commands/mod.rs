//! One module per command.

mod convert;
mod doctor;
mod exec;
mod history;
mod info;
mod pull;
mod push;
mod query;
mod shell;
mod sync;

use std::io::Write;

use clap::CommandFactory;
use sqlite_s3::{Error, Result};

use crate::cli::{Cli, Command};
use crate::context::Context;

/// Runs the command.
pub async fn run(cli: Cli) -> Result<()> {
    let mut ctx = Context::new(&cli.global)?;
    let quiet = cli.global.quiet;
    let result = match cli.command {
        Command::Exec {
            url,
            sql,
            file,
            retries,
            last_writer_wins,
        } => {
            let sql = match (sql, file) {
                (Some(sql), _) => sql,
                (None, Some(file)) => exec::read_sql(&file)?,
                (None, None) => unreachable!("clap requires SQL or --file"),
            };
            ctx.options = ctx.options.clone().max_attempts(retries.saturating_add(1));
            exec::run(&mut ctx, &url, &sql, last_writer_wins).await
        }
        Command::Query { url, sql, format } => query::run(&mut ctx, &url, &sql, format).await,
        Command::Shell { url, batch } => shell::run(&mut ctx, &url, batch).await,
        Command::Sync { url } => sync::run(&mut ctx, &url, quiet).await,
        Command::Doctor { url, format } => doctor::run(&mut ctx, &url, format).await,
        Command::Pull { url, file } => pull::run(&mut ctx, &url, &file, quiet).await,
        Command::Push { file, url, force } => push::run(&mut ctx, &file, &url, force, quiet).await,
        Command::Info { url, format } => info::run(&mut ctx, &url, format).await,
        Command::Log { url, format } => history::log(&mut ctx, &url, format).await,
        Command::Restore { url, version, at } => history::restore(&mut ctx, &url, version, at.as_deref()).await,
        Command::Convert { url, to } => convert::run(&mut ctx, &url, to, quiet).await,
        Command::Branch { url, new_url, version } => history::branch(&mut ctx, &url, &new_url, version).await,
        Command::Gc {
            url,
            keep,
            keep_for,
            grace,
        } => history::gc(&mut ctx, &url, keep, keep_for.map(Into::into), grace.into()).await,
        Command::Completions { shell } => {
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::command(), "sqlite-s3", &mut out);
            out.flush().or_else(ignore_broken_pipe)
        }
    };
    ctx.report();
    result
}

/// Output cut short by a closed pipe (`| head`) is not an error.
pub fn ignore_broken_pipe(e: std::io::Error) -> Result<()> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(Error::Io {
            operation: "writing",
            path: "standard output".into(),
            source: e,
        })
    }
}
