//! `sqlite-s3 sync URL`.

use sqlite_s3::{Result, Session};

use crate::context::Context;

/// Opens the database for writing, which publishes (or, with
/// `--discard-pending`, sets aside) what earlier runs left in the cache,
/// and brings the working copy up to date.
pub async fn run(ctx: &mut Context, url: &str, quiet: bool) -> Result<()> {
    let remote = ctx.remote(url)?;
    let session = Session::open_remote(remote, &ctx.options).await?;
    let version = session.version();
    session.close().await?;
    if !quiet {
        match version {
            Some(version) => eprintln!("{url} is in sync (version {version})"),
            None => eprintln!("{url} does not exist yet; nothing was left to publish"),
        }
    }
    Ok(())
}
