//! An ordinary SQLite database whose durable copy lives in object storage:
//! an S3 bucket, any S3-compatible store (R2, MinIO), or a local directory.
//!
//! The application gets a plain [`rusqlite::Connection`] on a local working
//! copy. The working copy is pulled with a conditional GET (nothing is
//! downloaded when nothing changed) and published with a conditional PUT:
//! a writer whose copy is stale gets [`Error::Conflict`] instead of
//! overwriting someone else's update, and [`Session::transaction`] re-runs
//! the change on the newest version until it lands.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> sqlite_s3::Result<()> {
//! # let cache = tempfile::tempdir().unwrap();
//! use sqlite_s3::{Options, Session};
//!
//! // s3://bucket/app.db, file:///srv/data/app.db, or memory://name/app.db
//! let options = Options::new().cache_dir(cache.path());
//! let mut db = Session::open("memory://docs/app.db", &options).await?;
//! db.transaction(|tx| {
//!     tx.execute_batch(
//!         "CREATE TABLE IF NOT EXISTS hits(n INTEGER);
//!          INSERT INTO hits VALUES (1);",
//!     )?;
//!     Ok(())
//! })
//! .await?; // committed and published, re-run on conflict
//!
//! let n: i64 = db.connection().query_row("SELECT count(*) FROM hits", [], |r| r.get(0))?;
//! assert_eq!(n, 1);
//! db.close().await?; // publishes anything else that changed
//! # Ok(())
//! # }
//! ```
//!
//! The blocking API in [`blocking`] has the same methods for programs
//! without an async runtime. `ARCHITECTURE.md` in the repository explains
//! the layers and the guarantees.

#![warn(missing_docs)]

// Layers, each using only those above it in this list (ARCHITECTURE.md
// draws them): the ground; options; the store; SQLite; layouts; the local
// cache; the session; what is built on sessions; adapters on top.
mod atomic_file;
mod backoff;
mod error;
mod hash;
mod location;
pub mod progress;
mod timestamp;
mod token;

mod options;

mod store;

mod sqlite;

mod layout;

mod cache;

mod session;

pub mod admin;
mod database;
pub mod history;
pub mod lease;
pub mod transfer;

pub mod adapters;
pub mod blocking;
#[cfg(feature = "lambda")]
pub mod lambda;

pub use database::{Database, Target};
pub use error::{Error, ErrorKind, Result};
pub use layout::Version;
pub use location::{DatabaseUrl, Scheme};
pub use options::{LayoutKind, Options, PendingChanges, RequestRetry, RetryPolicy, StoreOptions, WriteMode};
pub use session::{PublishOutcome, RefreshOutcome, Session};
pub use store::Remote;

/// Re-exported so applications use the same version as this crate.
pub use rusqlite;
