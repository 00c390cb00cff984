//! `sqlite-s3 query URL SQL`.

use std::io::Write;

use rusqlite::Connection;
use sqlite_s3::{Error, Result, Session};

use super::ignore_broken_pipe;
use crate::context::Context;
use crate::output::{self, Format, Table};

pub async fn run(ctx: &mut Context, url: &str, sql: &str, format: Format) -> Result<()> {
    let remote = ctx.remote(url)?;
    let session = Session::open_remote(remote, &ctx.options.clone().read_only(true)).await?;
    if session.version().is_none() {
        return Err(Error::DatabaseNotFound {
            url: session.url().to_string(),
        });
    }
    let table = read_only(session.connection(), sql)?;
    session.close().await?;
    let mut stdout = std::io::stdout().lock();
    output::write(format, &table, true, &mut stdout)
        .and_then(|()| stdout.flush())
        .or_else(ignore_broken_pipe)
}

/// Runs one statement with writes refused, and collects its rows.
pub fn read_only(conn: &Connection, sql: &str) -> Result<Table> {
    conn.execute_batch("PRAGMA query_only = ON")?;
    let table = read(conn, sql);
    conn.execute_batch("PRAGMA query_only = OFF")?;
    table
}

/// Runs one statement and collects its rows.
pub fn read(conn: &Connection, sql: &str) -> Result<Table> {
    let mut stmt = conn.prepare(sql)?;
    collect(&mut stmt)
}

/// Steps a prepared statement to the end, collecting its rows.
pub fn collect(stmt: &mut rusqlite::Statement<'_>) -> Result<Table> {
    let columns: Vec<String> = stmt.column_names().into_iter().map(str::to_string).collect();
    let mut rows = Vec::new();
    let mut cursor = stmt.raw_query();
    while let Some(row) = cursor.next()? {
        let values = (0..columns.len())
            .map(|i| row.get_ref(i).map(output::Value::from))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.push(values);
    }
    Ok(Table { columns, rows })
}
