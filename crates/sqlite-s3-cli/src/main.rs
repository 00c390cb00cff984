//! `sqlite-s3`: run SQL against a SQLite database kept in S3, an
//! S3-compatible store or a local directory.

mod cli;
mod commands;
mod context;
mod exit;
mod output;
mod progress;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging(cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("sqlite-s3: cannot start: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            result = commands::run(cli) => Some(result),
            // Dropping the command's future drops what it holds: temporary
            // files are removed, a destination file is never half-written,
            // and an upload is one request that lands whole or not at all.
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    match outcome {
        Some(Ok(())) => ExitCode::SUCCESS,
        Some(Err(error)) => {
            eprintln!("sqlite-s3: {error}");
            ExitCode::from(exit::code(&error))
        }
        None => {
            eprintln!("sqlite-s3: interrupted");
            ExitCode::from(exit::INTERRUPTED)
        }
    }
}

/// Warnings by default; `-v` adds every request to the store, `-vv` more.
fn init_logging(verbose: u8) {
    let filter = match verbose {
        0 => "warn",
        1 => "warn,sqlite_s3=info,sqlite_s3::requests=debug",
        _ => "info,sqlite_s3=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SQLITE_S3_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .without_time()
        .init();
}
