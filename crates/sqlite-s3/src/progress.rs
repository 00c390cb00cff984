//! Progress of large transfers, for progress bars.

use std::sync::Arc;

/// Which way bytes move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the store to the working copy.
    Download,
    /// From the working copy to the store.
    Upload,
}

/// One progress report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Which way.
    pub direction: Direction,
    /// Bytes moved so far.
    pub done: u64,
    /// Bytes to move in all.
    pub total: u64,
}

/// A callback that receives progress reports. Uploads are one request, so
/// they report once at the start (`done == 0`) and once at the end.
pub type ProgressFn = Arc<dyn Fn(Progress) + Send + Sync>;

pub(crate) fn report(progress: Option<&ProgressFn>, direction: Direction, done: u64, total: u64) {
    if let Some(f) = progress {
        f(Progress { direction, done, total });
    }
}
