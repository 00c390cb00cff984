//! Progress bars for large transfers: on a terminal only (indicatif draws
//! nothing when standard error is not one), and only past a size where the
//! wait is noticeable.

use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sqlite_s3::progress::{Direction, Progress, ProgressFn};

/// Transfers smaller than this show no bar.
pub const THRESHOLD: u64 = 1 << 20;

/// A progress callback that draws a bar with rate and ETA on standard error.
pub fn bar() -> ProgressFn {
    let current: Mutex<Option<ProgressBar>> = Mutex::new(None);
    Arc::new(move |p: Progress| {
        if p.total < THRESHOLD {
            return;
        }
        let mut current = current.lock().expect("the bar lock is never held across a panic");
        let bar = current.get_or_insert_with(|| new_bar(p));
        bar.set_position(p.done);
        if p.done >= p.total {
            bar.finish();
            *current = None;
        }
    })
}

fn new_bar(p: Progress) -> ProgressBar {
    let verb = match p.direction {
        Direction::Download => "downloading",
        Direction::Upload => "uploading",
    };
    let style = ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}")
        .expect("the template is valid")
        .progress_chars("=> ");
    ProgressBar::with_draw_target(Some(p.total), ProgressDrawTarget::stderr())
        .with_style(style)
        .with_message(verb)
}
