//! Everything that touches SQLite itself: opening the working copy, checking
//! a download, making the file complete before it is hashed or uploaded.
//!
//! This is the one module that uses the SQLite driver; the rest of the crate
//! works on files.

mod content;
mod file;
pub mod header;
mod snapshot;

pub use content::{ContentHasher, hash_file};
pub use file::{
    check_local, checkpoint, is_blank, is_damage, open, quick_check, read_head, remove_database, remove_file,
    side_files,
};
pub use snapshot::{restore_snapshot, snapshot};
