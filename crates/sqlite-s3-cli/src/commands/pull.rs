//! `sqlite-s3 pull URL FILE`.

use std::path::Path;

use sqlite_s3::Result;
use sqlite_s3::transfer;

use crate::context::Context;

pub async fn run(ctx: &mut Context, url: &str, file: &Path, quiet: bool) -> Result<()> {
    let remote = ctx.remote(url)?;
    let report = transfer::pull_to_file(remote, &ctx.options, file).await?;
    if !quiet {
        eprintln!("pulled {url} ({} bytes) into {}", report.bytes, file.display());
    }
    Ok(())
}
