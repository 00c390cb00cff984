//! `sqlite-s3 exec URL SQL`.

use std::io::Read;
use std::path::Path;

use sqlite_s3::{Error, Result, Session, WriteMode};

use crate::context::Context;

pub async fn run(ctx: &mut Context, url: &str, sql: &str, last_writer_wins: bool) -> Result<()> {
    let remote = ctx.remote(url)?;
    let mut options = ctx.options.clone();
    if last_writer_wins {
        options = options.write_mode(WriteMode::LastWriterWins);
    }
    let mut session = Session::open_remote(remote, &options).await?;
    session.transaction(|tx| Ok(tx.execute_batch(sql)?)).await?;
    session.close().await
}

/// The SQL of `-f FILE`, or of standard input for `-f -`.
pub fn read_sql(file: &Path) -> Result<String> {
    if file == Path::new("-") {
        let mut sql = String::new();
        std::io::stdin().read_to_string(&mut sql).map_err(|source| Error::Io {
            operation: "reading",
            path: "standard input".into(),
            source,
        })?;
        Ok(sql)
    } else {
        std::fs::read_to_string(file).map_err(|source| Error::Io {
            operation: "reading",
            path: file.to_path_buf(),
            source,
        })
    }
}
