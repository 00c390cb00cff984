//! `sqlite-s3 push FILE URL`.

use std::path::Path;

use sqlite_s3::{Error, Result, transfer};

use crate::context::Context;

pub async fn run(ctx: &mut Context, file: &Path, url: &str, force: bool, quiet: bool) -> Result<()> {
    let remote = ctx.remote(url)?;
    match transfer::push_file(remote, &ctx.options, file, force).await {
        Ok(report) => {
            if !quiet {
                let verb = if report.created { "created" } else { "published" };
                eprintln!("{verb} {url} from {} ({} bytes)", file.display(), report.bytes);
            }
            Ok(())
        }
        Err(e @ Error::Conflict { .. }) => {
            eprintln!(
                "hint: {url} is not the version {} was pulled from (or it exists and the file was never \
                 pulled from it). Pull it again and redo the change, or push --force to overwrite it.",
                file.display()
            );
            Err(e)
        }
        Err(e) => Err(e),
    }
}
