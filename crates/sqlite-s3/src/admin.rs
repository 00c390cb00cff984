//! Operating on databases and stores rather than on their data: what the
//! `sqlite-s3` command line uses beside sessions and history, and what other
//! tools may use the same way.
//!
//! - [`convert`] moves a database between layouts while it is in use;
//!   [`detect_layout`] says which layout a database is in.
//! - [`check_store`] reports what a store supports (`sqlite-s3 doctor`).
//! - [`local_copy`] looks at the working copies of a database in a cache
//!   directory without changing anything (`sqlite-s3 info`).
//! - [`CountingStore`] counts the requests and bytes a session costs;
//!   [`LocalStore`] is the local-directory store with its compare-and-swap,
//!   usable as any `object_store::ObjectStore`.

use std::path::Path;

use crate::error::Result;
use crate::options::LayoutKind;
use crate::store::Remote;

pub use crate::cache::LocalCopy;
pub use crate::layout::convert::{ConvertReport, convert};
pub use crate::store::local::LocalStore;
pub use crate::store::probe::{Conditions, StoreReport, check as check_store};
pub use crate::store::{CountingStore, Counts};

/// The layout of the database at `remote`, or `None` when there is none. A
/// move between layouts that a process left half done is finished first.
pub async fn detect_layout(remote: &Remote) -> Result<Option<LayoutKind>> {
    crate::layout::detect(remote).await
}

/// The state of the working copies of the database at `remote` in the
/// cache directory `cache_dir`, found without changing anything: no lock is
/// kept, nothing is published or rolled back. Any copy with unpublished
/// changes makes the answer [`LocalCopy::Dirty`]; then any copy in use
/// makes it [`LocalCopy::InUse`]; otherwise the first copy decides.
pub fn local_copy(cache_dir: &Path, remote: &Remote) -> Result<LocalCopy> {
    crate::cache::inspect(cache_dir, remote)
}
