//! Stores: where the durable copy lives.
//!
//! Every store is an [`object_store::ObjectStore`], so there is one code path
//! for S3, S3-compatible servers, local directories and memory. A [`Remote`]
//! pairs a store with the key of one database and turns the store's errors
//! into this crate's [`Error`]s, naming the database.
//!
//! The guarantee rests on two store operations: a conditional GET (`If-None-Match`)
//! and a conditional PUT (`If-Match` / `If-None-Match: *`). S3 and memory have
//! both; for local directories [`local::LocalStore`] adds the missing one.

mod azure;
pub(crate) mod cas;
mod counting;
mod failure;
mod gcs;
mod identity;
pub(crate) mod keys;
pub(crate) mod local;
mod memory;
pub(crate) mod probe;
#[cfg(feature = "aws-config")]
mod profile;
mod remote;
mod retry;
mod s3;

pub use counting::{CountingStore, Counts};
pub use remote::Remote;
pub(crate) use remote::{LEGACY_LINEAGE_ATTRIBUTE, LINEAGE_ATTRIBUTE};
