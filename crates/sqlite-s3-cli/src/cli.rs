//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::exit;

/// Run SQL against a SQLite database kept in S3, an S3-compatible store or a
/// local directory. Writes are conditional: no update is ever lost.
#[derive(Debug, Parser)]
#[command(name = "sqlite-s3", version, after_help = exit::HELP)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args)]
pub struct Global {
    /// S3-compatible endpoint, e.g. http://127.0.0.1:9000 (default: AWS_ENDPOINT_URL, then AWS).
    #[arg(long, global = true, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Region (default: AWS_REGION, then us-east-1).
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// Where working copies are kept (default: SQLITE_S3_CACHE_DIR, then the platform cache directory).
    #[arg(long, global = true, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Move unpublished changes left by an earlier session aside (into the cache's rescued folder) instead of
    /// publishing them.
    #[arg(long, global = true)]
    pub discard_pending: bool,
    /// Log each request to the store (-v), or more (-vv).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run SQL (one or several statements) in one transaction and publish it; on conflict, re-run it on the
    /// newest version.
    #[command(after_help = "Example:\n  sqlite-s3 exec file:///tmp/demo/app.db \
        \"CREATE TABLE IF NOT EXISTS t(x); INSERT INTO t VALUES (1)\"")]
    Exec {
        /// The database: s3://bucket/key, file:///path/to/file or memory://name/key.
        url: String,
        /// The SQL to run.
        sql: String,
        /// Re-runs after a conflict before giving up.
        #[arg(long, default_value_t = 10)]
        retries: u32,
        /// Overwrite the remote even if someone else published since it was read (loses their changes).
        #[arg(long)]
        last_writer_wins: bool,
    },
    /// Run one read-only statement and print its rows; never uploads.
    #[command(after_help = "Example:\n  sqlite-s3 query file:///tmp/demo/app.db \"SELECT * FROM t\" --format json")]
    Query {
        /// The database: s3://bucket/key, file:///path/to/file or memory://name/key.
        url: String,
        /// The statement.
        sql: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

/// Output formats of `query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns with a header.
    Table,
    /// An array of objects keyed by column name.
    Json,
    /// Comma-separated values with a header row.
    Csv,
}
