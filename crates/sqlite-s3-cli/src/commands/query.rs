//! `sqlite-s3 query URL SQL`.

use std::io::Write;

use sqlite_s3::{Error, Options, Result, Session};

use crate::cli::Format;
use crate::output::{self, Table};

pub async fn run(url: &str, sql: &str, options: &Options, format: Format) -> Result<()> {
    let session = Session::open(url, options).await?;
    if session.version().is_none() {
        return Err(Error::DatabaseNotFound {
            url: session.url().to_string(),
        });
    }
    let table = read(&session, sql)?;
    session.close().await?;
    let mut stdout = std::io::stdout().lock();
    let written = match format {
        Format::Table => output::table(&table, &mut stdout),
        Format::Json => output::json(&table, &mut stdout),
        Format::Csv => output::csv(&table, &mut stdout),
    };
    written.and_then(|()| stdout.flush()).or_else(ignore_broken_pipe)
}

fn read(session: &Session, sql: &str) -> Result<Table> {
    let conn = session.connection();
    conn.execute_batch("PRAGMA query_only = ON")?;
    let mut stmt = conn.prepare(sql)?;
    let columns: Vec<String> = stmt.column_names().into_iter().map(str::to_string).collect();
    let mut rows = Vec::new();
    let mut cursor = stmt.query([])?;
    while let Some(row) = cursor.next()? {
        let values = (0..columns.len())
            .map(|i| row.get_ref(i).map(output::Value::from))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.push(values);
    }
    drop(cursor);
    drop(stmt);
    conn.execute_batch("PRAGMA query_only = OFF")?;
    Ok(Table { columns, rows })
}

fn ignore_broken_pipe(e: std::io::Error) -> Result<()> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(Error::Io {
            operation: "writing",
            path: "standard output".into(),
            source: e,
        })
    }
}
