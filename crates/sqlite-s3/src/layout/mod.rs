//! Layouts: how a database is laid out in the bucket.
//!
//! - [`single`]: the object at the key IS the SQLite file.
//! - [`versioned`]: immutable numbered manifests and content-addressed
//!   chunks; a commit costs what changed.
//! - [`convert`]: moving a database between the two while it is in use,
//!   behind the move [`marker`] at the key.
//!
//! The session reaches a layout only through the [`Layout`] trait
//! (`contract.rs`), so a third layout plugs in there. Layers inside: the
//! version and in-flight records and the contract at the bottom, then the
//! marker, then the two layouts, then conversion and detection.

mod contract;
pub(crate) mod convert;
mod detect;
mod in_flight;
pub(crate) mod manifest;
pub(crate) mod marker;
pub(crate) mod single;
mod version;
pub(crate) mod versioned;

pub(crate) use contract::{Base, Landed, Layout, Published, Pulled, conflict, publish_unknown};
pub(crate) use convert::detect;
pub(crate) use detect::{for_kind, pull_detecting};
pub(crate) use in_flight::InFlight;
pub(crate) use version::RemoteVersion;
pub use version::{Version, VersionInfo};
