//! `sqlite-s3 shell URL`: an interactive SQL shell in the manner of
//! `sqlite3`, on a remote database.
//!
//! Lines gather until they form complete SQL statements (SQLite's own
//! `sqlite3_complete` decides), which then run. After each statement that
//! leaves no transaction open, the change is published (with `--batch`, only
//! on `.sync` and at exit). A conflict is shown with what to do; the
//! statements that were not published are kept, and `.retry` runs them again
//! on the newest version. When standard input is not a terminal, the shell
//! reads it like a script and stops at the first error.

mod dot;

use std::ffi::CString;
use std::io::{BufRead, IsTerminal, Write};

use rusqlite::Batch;
use rusqlite::fallible_iterator::FallibleIterator;
use sqlite_s3::{Error, PendingChanges, PublishOutcome, Result, Session};

use super::query::collect;
use crate::context::Context;
use crate::output::{self, Format};

const PROMPT: &str = "sqlite-s3> ";
const CONTINUE: &str = "      ...> ";

/// The state of a shell.
struct Shell {
    session: Session,
    mode: Format,
    headers: bool,
    batch: bool,
    /// SQL text not yet complete.
    buffer: String,
    /// Statements that changed the database since the last publish.
    unpublished: Vec<String>,
}

/// What to do after a line.
enum Flow {
    Continue,
    Quit,
}

pub async fn run(ctx: &mut Context, url: &str, batch: bool) -> Result<()> {
    let remote = ctx.remote(url)?;
    // Changes left by earlier runs are not published by opening a shell
    // (it may only be used to read); they are named, and `sync` publishes them.
    let mut options = ctx.options.clone();
    if options.pending() == PendingChanges::Publish {
        options = options.pending_changes(PendingChanges::Keep);
    }
    let session = Session::open_remote(remote, &options).await?;
    let mut shell = Shell {
        session,
        mode: Format::Table,
        headers: true,
        batch,
        buffer: String::new(),
        unpublished: Vec::new(),
    };
    if std::io::stdin().is_terminal() {
        shell.interactive().await?;
    } else {
        shell.script(std::io::stdin().lock()).await?;
    }
    shell.finish().await
}

impl Shell {
    async fn interactive(&mut self) -> Result<()> {
        let mut editor = rustyline::DefaultEditor::new().map_err(terminal_error)?;
        let history = dirs::home_dir().map(|home| home.join(".sqlite_s3_history"));
        if let Some(path) = &history {
            let _ = editor.load_history(path);
        }
        println!(
            "sqlite-s3 {}: connected to {}. Enter SQL terminated with \";\", or .help",
            env!("CARGO_PKG_VERSION"),
            self.session.url()
        );
        loop {
            let prompt = if self.buffer.is_empty() { PROMPT } else { CONTINUE };
            match editor.readline(prompt) {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = editor.add_history_entry(line.as_str());
                    }
                    match self.line(&line).await {
                        Ok(Flow::Quit) => break,
                        Ok(Flow::Continue) => {}
                        // The working copy could not be reopened: nothing
                        // more can run in this session.
                        Err(e) if !self.session.is_connected() => return Err(e),
                        Err(e) => eprintln!("error: {e}"),
                    }
                }
                Err(rustyline::error::ReadlineError::Interrupted) => {
                    self.buffer.clear();
                    eprintln!("^C (type .quit to leave)");
                }
                Err(rustyline::error::ReadlineError::Eof) => break,
                Err(e) => return Err(terminal_error(e)),
            }
        }
        if let Some(path) = &history {
            let _ = editor.save_history(path);
        }
        Ok(())
    }

    /// Runs lines from a script or a pipe; the first error ends the run.
    async fn script(&mut self, input: impl BufRead) -> Result<()> {
        for line in input.lines() {
            let line = line.map_err(|source| Error::Io {
                operation: "reading",
                path: "standard input".into(),
                source,
            })?;
            if let Flow::Quit = self.line(&line).await? {
                return Ok(());
            }
        }
        if !self.buffer.trim().is_empty() {
            let sql = std::mem::take(&mut self.buffer);
            self.run_sql(&sql).await?;
        }
        Ok(())
    }

    /// Handles one line of input.
    async fn line(&mut self, line: &str) -> Result<Flow> {
        if self.buffer.is_empty() && line.trim_start().starts_with('.') {
            return self.dot(line.trim()).await;
        }
        self.buffer.push_str(line);
        self.buffer.push('\n');
        if is_complete(&self.buffer) {
            let sql = std::mem::take(&mut self.buffer);
            self.run_sql(&sql).await?;
        }
        Ok(Flow::Continue)
    }

    /// Runs complete SQL, printing rows, then publishes unless in batch mode
    /// or inside an explicit transaction.
    async fn run_sql(&mut self, sql: &str) -> Result<()> {
        let conn = self.session.connection();
        let mut batch = Batch::new(conn, sql);
        let mut stdout = std::io::stdout().lock();
        while let Some(mut stmt) = batch.next()? {
            if !stmt.readonly() {
                self.unpublished
                    .push(stmt.expanded_sql().unwrap_or_else(|| sql.trim().to_string()));
            }
            if stmt.column_count() > 0 {
                let table = collect(&mut stmt)?;
                output::write(self.mode, &table, self.headers, &mut stdout)
                    .and_then(|()| stdout.flush())
                    .or_else(super::ignore_broken_pipe)?;
            } else {
                stmt.raw_execute()?;
            }
        }
        drop(stdout);
        if !self.batch && self.session.connection().is_autocommit() {
            self.publish().await?;
        }
        Ok(())
    }

    /// Publishes; on conflict says what the user can do.
    async fn publish(&mut self) -> Result<()> {
        match self.session.publish().await {
            Ok(PublishOutcome::Published { .. }) | Ok(PublishOutcome::Unchanged) => {
                self.unpublished.clear();
                Ok(())
            }
            Err(e @ Error::Conflict { .. }) => {
                eprintln!(
                    "conflict: someone else published {} since your copy was read; your change was NOT \
                     published and is kept in your local copy.\n  \
                     .retry    run your {} unpublished statement(s) again on the newest version\n  \
                     .discard  drop them and load the newest version",
                    self.session.url(),
                    self.unpublished.len()
                );
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// At exit: publish what is left.
    async fn finish(mut self) -> Result<()> {
        if !self.session.is_connected() {
            return Ok(());
        }
        if !self.session.connection().is_autocommit() {
            eprintln!("note: the open transaction was rolled back (it was never committed)");
            self.session.connection().execute_batch("ROLLBACK")?;
        }
        if let Err(e) = self.publish().await {
            eprintln!(
                "your unpublished changes stay in {}; the next session reports them until you publish or \
                 discard them",
                self.session.working_copy().display()
            );
            return Err(e);
        }
        self.session.close().await
    }
}

/// A failure of the terminal (its line editor), as a failure to read it.
fn terminal_error(error: rustyline::error::ReadlineError) -> Error {
    let source = match error {
        rustyline::error::ReadlineError::Io(e) => e,
        other => std::io::Error::other(other.to_string()),
    };
    Error::Io {
        operation: "reading",
        path: "the terminal".into(),
        source,
    }
}

/// Whether `sql` ends with a complete statement, as SQLite sees it.
fn is_complete(sql: &str) -> bool {
    match CString::new(sql) {
        // SAFETY: a NUL-terminated string that lives across the call.
        Ok(c) => unsafe { rusqlite::ffi::sqlite3_complete(c.as_ptr()) != 0 },
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::is_complete;

    #[test]
    fn statements_end_where_sqlite_says() {
        assert!(is_complete("SELECT 1;"));
        assert!(!is_complete("SELECT 1"));
        assert!(!is_complete("INSERT INTO t\nVALUES (';'"));
        assert!(is_complete("INSERT INTO t\nVALUES (';');\n"));
        assert!(!is_complete("CREATE TRIGGER x AFTER INSERT ON t BEGIN SELECT 1;"));
    }
}
