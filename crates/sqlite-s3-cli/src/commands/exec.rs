//! `sqlite-s3 exec URL SQL`.

use sqlite_s3::{Options, Result, Session, WriteMode};

pub async fn run(url: &str, sql: &str, options: Options, last_writer_wins: bool) -> Result<()> {
    let options = if last_writer_wins {
        options.write_mode(WriteMode::LastWriterWins)
    } else {
        options
    };
    let mut session = Session::open(url, &options).await?;
    session.transaction(|tx| Ok(tx.execute_batch(sql)?)).await?;
    session.close().await
}
