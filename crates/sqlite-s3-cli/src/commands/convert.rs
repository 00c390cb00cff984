//! `sqlite-s3 convert URL --to single|versioned`.

use sqlite_s3::admin;
use sqlite_s3::{LayoutKind, Result};

use crate::cli::Layout;
use crate::context::Context;
use crate::progress;

pub async fn run(ctx: &mut Context, url: &str, to: Layout, quiet: bool) -> Result<()> {
    let to = match to {
        Layout::Single => LayoutKind::Single,
        Layout::Versioned => LayoutKind::Versioned,
    };
    let remote = ctx.remote(url)?;
    let bar = (!quiet).then(progress::bar);
    let report = admin::convert(&remote, to, bar.as_ref()).await?;
    if !quiet {
        match report.version {
            None => eprintln!("{url} is already in the {} layout; nothing changed", name(to)),
            Some(n) => eprintln!(
                "moved {url} from the {} layout to the {} layout (version {n})",
                name(report.from),
                name(to)
            ),
        }
    }
    Ok(())
}

fn name(kind: LayoutKind) -> &'static str {
    match kind {
        LayoutKind::Single => "single-object",
        LayoutKind::Versioned => "versioned",
    }
}
