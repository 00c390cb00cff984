//! `sqlite-s3 log`, `restore`, `branch` and `gc`: the history of a
//! versioned database.

use std::io::Write;
use std::time::Duration;

use sqlite_s3::history::{self, Keep, RestorePoint};
use sqlite_s3::{Error, Result};

use super::ignore_broken_pipe;
use crate::cli::InfoFormat;
use crate::context::Context;

pub async fn log(ctx: &mut Context, url: &str, format: InfoFormat) -> Result<()> {
    let remote = ctx.remote(url)?;
    let versions = history::log(&remote).await?;
    let mut out = std::io::stdout().lock();
    let written = match format {
        InfoFormat::Json => serde_json::to_writer_pretty(&mut out, &versions)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out)),
        InfoFormat::Text => (|| {
            writeln!(
                out,
                "{:>7}  {:<24}  {:>12}  {:>12}  writer",
                "version", "committed", "size", "uploaded"
            )?;
            for v in &versions {
                let moved = if v.moved_to_single {
                    "  (moved to the single-object layout)"
                } else {
                    ""
                };
                writeln!(
                    out,
                    "{:>7}  {:<24}  {:>12}  {:>12}  {}{moved}",
                    v.version,
                    crate::output::rfc3339(v.committed_at),
                    v.size,
                    v.uploaded_bytes,
                    v.writer
                )?;
            }
            Ok(())
        })(),
    };
    written.and_then(|()| out.flush()).or_else(ignore_broken_pipe)
}

pub async fn restore(ctx: &mut Context, url: &str, version: Option<u64>, at: Option<&str>) -> Result<()> {
    let target = match (version, at) {
        (Some(n), _) => RestorePoint::Version(n),
        (None, Some(at)) => {
            let time = chrono::DateTime::parse_from_rfc3339(at).map_err(|e| Error::Misuse {
                url: url.to_string(),
                reason: format!("--at {at:?} is not an RFC 3339 time such as 2026-01-02T03:04:05Z: {e}"),
            })?;
            RestorePoint::At(time.into())
        }
        (None, None) => unreachable!("clap requires --version or --at"),
    };
    let remote = ctx.remote(url)?;
    let number = history::restore(&remote, target).await?;
    eprintln!("restored {url}: version {number} is the restored state");
    Ok(())
}

pub async fn branch(ctx: &mut Context, url: &str, new_url: &str, version: Option<u64>) -> Result<()> {
    let source = ctx.remote(url)?;
    let target = ctx.remote(new_url)?;
    history::branch(&source, &target, version).await?;
    eprintln!("created {new_url} from {url}");
    Ok(())
}

pub async fn gc(
    ctx: &mut Context,
    url: &str,
    keep: Option<u64>,
    keep_for: Option<Duration>,
    grace: Duration,
) -> Result<()> {
    let keep = match (keep, keep_for) {
        (Some(n), _) => Keep::Last(n),
        (None, Some(age)) => Keep::For(age),
        (None, None) => unreachable!("clap requires --keep or --keep-for"),
    };
    if grace < history::DEFAULT_GRACE {
        return Err(Error::Misuse {
            url: url.to_string(),
            reason: format!(
                "--grace must be at least {}: a commit in flight may be about to use younger chunks",
                humantime::format_duration(history::DEFAULT_GRACE)
            ),
        });
    }
    let remote = ctx.remote(url)?;
    let report = history::gc(&remote, keep, grace).await?;
    eprintln!(
        "kept {} version(s); deleted {} version(s) and {} chunk(s); {} unused chunk(s) younger than the grace period kept",
        report.versions_kept, report.manifests_deleted, report.chunks_deleted, report.chunks_in_grace
    );
    Ok(())
}
