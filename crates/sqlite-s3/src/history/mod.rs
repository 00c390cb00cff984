//! History, restore, branches and garbage collection of a database in the
//! versioned layout. `gc.rs` explains how gc stays safe while commits are
//! in flight.

mod branch;
mod gc;
mod log;
mod restore;

pub use self::branch::branch;
pub use self::gc::{GcReport, Keep, gc};
pub use self::log::log;
pub use self::restore::{RestorePoint, restore};
pub use crate::layout::VersionInfo;
pub use crate::layout::versioned::DEFAULT_GRACE;
