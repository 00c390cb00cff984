//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::exit;
use crate::output::Format;

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
    /// AWS profile from ~/.aws/config: its credentials (keys, SSO, assumed role, credential process), and its
    /// region and endpoint_url unless given (default: AWS_PROFILE, unless AWS_ACCESS_KEY_ID is set).
    #[cfg(feature = "aws-config")]
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// Where working copies are kept (default: SQLITE_S3_CACHE_DIR, then the platform cache directory).
    #[arg(long, global = true, value_name = "DIR", conflicts_with = "no_cache")]
    pub cache_dir: Option<PathBuf>,
    /// Use a throwaway working copy, removed at exit (every run downloads the database).
    #[arg(long, global = true)]
    pub no_cache: bool,
    /// Move unpublished changes left by an earlier session aside (into the cache's rescued folder) instead of
    /// publishing them. Changes whose publish landed after all are not moved: a notice says so.
    #[arg(long, global = true)]
    pub discard_pending: bool,
    /// Log every request to the store (method, key, status, bytes, milliseconds) and what the run cost; -vv for
    /// more.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print no progress bars and no notices.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// The layout of a database this run creates; an existing one keeps its own. `versioned` stores chunks and
    /// numbered versions, so a write uploads what changed.
    #[arg(long, global = true, value_enum, default_value_t = Layout::Single)]
    pub layout: Layout,
    /// Write even to a store that ignores conditional requests (it accepts a stale If-Match): concurrent
    /// writers then overwrite each other, last writer wins. Without it such a store is refused for writing.
    #[arg(long, global = true)]
    pub unsafe_store: bool,
}

/// Layouts of a new database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Layout {
    /// The object is the SQLite file (readable by `aws s3 cp` and `sqlite3`).
    Single,
    /// Chunks and numbered manifests: costs what changed, keeps history.
    Versioned,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run SQL (one or several statements) in one transaction and publish it; on conflict, re-run it on the
    /// newest version.
    #[command(after_help = "Examples:\n  \
        sqlite-s3 exec file:///tmp/demo/app.db \"CREATE TABLE IF NOT EXISTS t(x); INSERT INTO t VALUES (1)\"\n  \
        sqlite-s3 exec s3://my-bucket/app.db -f seed.sql\n  \
        cat migration.sql | sqlite-s3 exec s3://my-bucket/app.db -f -")]
    Exec {
        /// The database: s3://bucket/key, file:///path/to/file or memory://name/key.
        url: String,
        /// The SQL to run (or use -f).
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        sql: Option<String>,
        /// Read the SQL from a file, or from standard input with `-f -`.
        #[arg(short, long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// Re-runs after a conflict before giving up.
        #[arg(long, default_value_t = 10)]
        retries: u32,
        /// Overwrite the remote even if someone else published since it was read (loses their changes).
        #[arg(long)]
        last_writer_wins: bool,
    },
    /// Run one read-only statement and print its rows; never uploads.
    #[command(after_help = "Examples:\n  \
        sqlite-s3 query s3://my-bucket/app.db \"SELECT * FROM users LIMIT 10\"\n  \
        sqlite-s3 query s3://my-bucket/app.db \"SELECT id, email FROM users\" --format jsonl")]
    Query {
        /// The database: s3://bucket/key, file:///path/to/file or memory://name/key.
        url: String,
        /// The statement.
        sql: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// An interactive SQL shell, like sqlite3; reads SQL from standard input when it is not a terminal.
    #[command(after_help = "Examples:\n  \
        sqlite-s3 shell s3://my-bucket/app.db\n  \
        sqlite-s3 shell s3://my-bucket/app.db < script.sql\n\n\
        Each committed statement is published at once (with --batch: on .sync and at exit). Type .help inside.")]
    Shell {
        /// The database: s3://bucket/key, file:///path/to/file or memory://name/key.
        url: String,
        /// Publish only on .sync and at exit, not after each statement.
        #[arg(long)]
        batch: bool,
    },
    /// Publish what earlier runs left unpublished in the cache (a killed process, a lost connection), then
    /// bring the working copy up to date. Read-only commands never publish; they name this one instead.
    #[command(after_help = "Examples:\n  \
        sqlite-s3 sync s3://my-bucket/app.db\n  \
        sqlite-s3 sync s3://my-bucket/app.db --discard-pending     # set the changes aside instead")]
    Sync {
        /// The database: s3://bucket/key, file:///path/to/file or memory://name/key.
        url: String,
    },
    /// Check what the store supports: conditional create and update (what every commit relies on),
    /// conditional GET, ranged GET, user metadata, listing, and the round-trip time.
    #[command(after_help = "Examples:\n  \
        sqlite-s3 doctor s3://my-bucket/app.db\n  \
        sqlite-s3 doctor az://my-container/app.db --format json\n\n\
        It writes small probe objects beside the database and removes them. Exit code 11 when the store does \
        not honour conditional writes.")]
    Doctor {
        /// The database: s3://bucket/key, az://container/key, gs://bucket/key, file:///path/to/file.
        url: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = InfoFormat::Text)]
        format: InfoFormat,
    },
    /// Download the database into a plain SQLite file.
    #[command(after_help = "Example:\n  sqlite-s3 pull s3://my-bucket/app.db app.db && sqlite3 app.db .tables")]
    Pull {
        /// The database: s3://bucket/key, file:///path/to/file or memory://name/key.
        url: String,
        /// The file to write (replaced whole, never left half-written).
        file: PathBuf,
    },
    /// Upload a SQLite file as the database, if the remote has not changed since the file was pulled.
    #[command(after_help = "Examples:\n  \
        sqlite-s3 pull s3://my-bucket/app.db app.db && sqlite3 app.db \"UPDATE ...\" \
        && sqlite-s3 push app.db s3://my-bucket/app.db\n  \
        sqlite-s3 push fixture.db s3://my-bucket/test-42.db      # creates it\n\n\
        Without --force, a file that was not pulled from the URL can only create a database that does not exist.")]
    Push {
        /// The SQLite file (checked with PRAGMA quick_check before anything is sent).
        file: PathBuf,
        /// The database: s3://bucket/key, file:///path/to/file or memory://name/key.
        url: String,
        /// Overwrite the remote whatever it holds (another writer's changes are lost).
        #[arg(long)]
        force: bool,
    },
    /// Describe the database: size, pages, remote version, local copy, tables and row counts.
    #[command(after_help = "Example:\n  sqlite-s3 info s3://my-bucket/app.db --format json")]
    Info {
        /// The database: s3://bucket/key, file:///path/to/file or memory://name/key.
        url: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = InfoFormat::Text)]
        format: InfoFormat,
    },
    /// List the versions of a versioned database.
    #[command(after_help = "Example:\n  sqlite-s3 log s3://my-bucket/app.db --format json")]
    Log {
        /// The database: s3://bucket/key, file:///path/to/file or memory://name/key.
        url: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = InfoFormat::Text)]
        format: InfoFormat,
    },
    /// Make an earlier version the newest, as a new commit (nothing is deleted).
    #[command(after_help = "Examples:\n  \
        sqlite-s3 restore s3://my-bucket/app.db --version 12\n  \
        sqlite-s3 restore s3://my-bucket/app.db --at 2026-01-02T03:04:05Z")]
    Restore {
        /// The database: s3://bucket/key, file:///path/to/file or memory://name/key.
        url: String,
        /// The version number to bring back (see `sqlite-s3 log`).
        #[arg(long, conflicts_with = "at", required_unless_present = "at")]
        version: Option<u64>,
        /// Bring back the newest version committed at or before this time (RFC 3339).
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
    /// Move a database to the other layout, keeping its data and history; sessions using it follow the move.
    #[command(after_help = "Examples:\n  \
        sqlite-s3 convert s3://my-bucket/app.db --to versioned\n  \
        sqlite-s3 convert s3://my-bucket/app.db --to single\n\n\
        Safe while others use the database: their next commit in the old layout fails as a conflict and is \
        re-run in the new one. Moving back and forth keeps the version history.")]
    Convert {
        /// The database.
        url: String,
        /// The layout to move to.
        #[arg(long, value_enum)]
        to: Layout,
    },
    /// Create a new database that starts as a copy of this one, sharing its chunks: instant at any size.
    #[command(after_help = "Example:\n  sqlite-s3 branch s3://my-bucket/app.db s3://my-bucket/test-42.db --version 7")]
    Branch {
        /// The database to branch from (versioned layout).
        url: String,
        /// The new database, in the same bucket.
        new_url: String,
        /// The version to start from (default: the newest).
        #[arg(long)]
        version: Option<u64>,
    },
    /// Delete old versions and the chunks nothing uses any more.
    #[command(after_help = "Examples:\n  \
        sqlite-s3 gc s3://my-bucket/app.db --keep 10\n  \
        sqlite-s3 gc s3://my-bucket/app.db --keep-for 7d\n\n\
        The newest version is always kept. Chunks younger than --grace (default 1h) are kept too: a commit \
        in flight may be about to use them.")]
    Gc {
        /// The database (versioned layout).
        url: String,
        /// Keep the newest N versions.
        #[arg(long, conflicts_with = "keep_for", required_unless_present = "keep_for")]
        keep: Option<u64>,
        /// Keep the versions committed within this long (e.g. 12h, 7d).
        #[arg(long, value_name = "DURATION")]
        keep_for: Option<humantime::Duration>,
        /// Keep unused chunks younger than this: at least 1h, and longer than your longest commit.
        #[arg(long, value_name = "DURATION", default_value = "1h")]
        grace: humantime::Duration,
    },
    /// Print a shell completion script.
    #[command(
        after_help = "Example:\n  sqlite-s3 completions bash > ~/.local/share/bash-completion/completions/sqlite-s3"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Output formats of `info` and `log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InfoFormat {
    /// Aligned `name: value` lines.
    Text,
    /// One JSON object.
    Json,
}
