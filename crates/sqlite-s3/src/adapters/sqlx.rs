//! An sqlx pool on the working copy (feature `sqlx`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use sqlite_s3::{Database, Options};
//!
//! // A file path or a store URL: DATABASE_URL=s3://my-bucket/app.db
//! let db = Database::from_env("DATABASE_URL", &Options::new()).await?;
//! let pool = sqlite_s3::adapters::sqlx::pool(&db).await?;
//! sqlx::query("CREATE TABLE IF NOT EXISTS hits(at TEXT)").execute(&pool).await?;
//! db.publish().await?; // a consistent snapshot, while the pool stays open
//! pool.close().await;
//! db.close().await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::database::Database;

/// How long a statement waits for another connection's lock (a publish
/// holds a read lock while it copies; a refresh a write lock).
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Connect options for the database's file: created if missing, WAL
/// journal (readers and the publish snapshot never block writers), foreign
/// keys on, a 30 s busy timeout. Adjust them and connect a pool of your own
/// if you need to.
pub fn connect_options(db: &Database) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(db.path())
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT)
}

/// A pool on the database's file with [`connect_options`].
///
/// # Failure
/// sqlx's errors, when the file cannot be opened.
pub async fn pool(db: &Database) -> Result<SqlitePool, sqlx::Error> {
    SqlitePoolOptions::new().connect_with(connect_options(db)).await
}
