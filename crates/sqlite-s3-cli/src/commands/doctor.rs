//! `sqlite-s3 doctor URL`.

use std::io::Write;

use sqlite_s3::admin;
use sqlite_s3::{Error, Result};

use super::ignore_broken_pipe;
use crate::cli::InfoFormat;
use crate::context::Context;

/// Prints what the store supports. Fails with [`Error::UnsafeStore`] (exit
/// code 11) when it does not honour conditional writes.
pub async fn run(ctx: &mut Context, url: &str, format: InfoFormat) -> Result<()> {
    let remote = ctx.remote(url)?;
    let report = admin::check_store(&remote).await?;
    let mut out = std::io::stdout().lock();
    let text = match format {
        InfoFormat::Json => serde_json::to_string_pretty(&report).expect("a report serializes") + "\n",
        InfoFormat::Text => {
            let yes = |ok: bool| if ok { "yes" } else { "NO" };
            let c = &report.conditions;
            let lines = [
                ("store", report.store.clone()),
                (
                    "create refused over an existing object",
                    yes(c.create_refused_over_existing).into(),
                ),
                (
                    "update accepted on the current ETag",
                    yes(c.update_accepted_when_current).into(),
                ),
                (
                    "update refused on a stale ETag",
                    yes(c.update_refused_when_stale).into(),
                ),
                ("conditional GET answers 304", yes(report.conditional_get).into()),
                ("ranged GET", yes(report.ranged_get).into()),
                ("user metadata", yes(report.user_metadata).into()),
                ("listing under a prefix", yes(report.listing).into()),
                ("round trip", format!("{:.1} ms", report.round_trip_ms)),
                (
                    "tested in this project's CI",
                    if report.tested_in_ci {
                        "yes"
                    } else {
                        "no (built, not tested on an emulator)"
                    }
                    .into(),
                ),
                (
                    "verdict",
                    match &report.unfit {
                        None => "fit for writing".into(),
                        Some(why) => format!("refused for writing: {why}"),
                    },
                ),
            ];
            let width = lines.iter().map(|(name, _)| name.len()).max().unwrap_or(0) + 1;
            lines
                .iter()
                .map(|(name, value)| format!("{:width$} {value}\n", format!("{name}:")))
                .collect()
        }
    };
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .or_else(ignore_broken_pipe)?;
    match report.unfit {
        None => Ok(()),
        Some(failed) => Err(Error::UnsafeStore {
            url: url.to_string(),
            store: report.store,
            failed,
        }),
    }
}
