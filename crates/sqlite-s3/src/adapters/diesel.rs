//! A Diesel connection on the working copy (feature `diesel`).
//!
//! ```no_run
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use diesel::RunQueryDsl;
//! use sqlite_s3::{Options, blocking::Database};
//!
//! // A file path or a store URL: DATABASE_URL=s3://my-bucket/app.db
//! let db = Database::from_env("DATABASE_URL", &Options::new())?;
//! let mut conn = sqlite_s3::adapters::diesel::connect(db.path())?;
//! diesel::sql_query("CREATE TABLE IF NOT EXISTS hits(at TEXT)").execute(&mut conn)?;
//! db.publish()?; // a consistent snapshot, while the connection stays open
//! drop(conn);
//! db.close()?;
//! # Ok(()) }
//! ```

use std::path::Path;

use diesel::connection::SimpleConnection;
use diesel::{Connection, ConnectionError, ConnectionResult, SqliteConnection};

/// Opens `path` (a [`Database`](crate::Database)'s
/// [`path`](crate::Database::path)) with Diesel, in WAL mode (a publish's
/// snapshot never blocks its writes) with foreign keys on and a 30 s busy
/// timeout.
///
/// # Failure
/// Diesel's errors; [`ConnectionError::BadConnection`] for a path that is
/// not UTF-8.
pub fn connect(path: &Path) -> ConnectionResult<SqliteConnection> {
    let path = path.to_str().ok_or_else(|| {
        ConnectionError::BadConnection(format!("{} is not a UTF-8 path, which Diesel needs", path.display()))
    })?;
    let mut conn = SqliteConnection::establish(path)?;
    conn.batch_execute("PRAGMA busy_timeout = 30000; PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;")
        .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}
