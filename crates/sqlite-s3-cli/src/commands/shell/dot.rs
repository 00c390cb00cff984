//! The dot-commands of the shell.

use std::io::BufRead;

use sqlite_s3::{Error, Result};

use super::{Flow, Shell};
use crate::output::Format;

const HELP: &str = "\
.tables              list tables and views
.schema [TABLE]      show CREATE statements (of TABLE only)
.mode MODE           output: table, csv, json, jsonl, line, markdown
.headers on|off      column names in table, csv and markdown output
.read FILE           run SQL (and dot-commands) from FILE
.sync                publish local changes, then load the newest version
.refresh             load the newest version (no local changes allowed)
.retry               after a conflict: run unpublished statements again on the newest version
.discard             drop unpublished changes and load the newest version
.status              the database, its remote version and what is unpublished
.help                this text
.quit / .exit        publish what is left and leave";

impl Shell {
    pub(super) async fn dot(&mut self, line: &str) -> Result<Flow> {
        let mut words = line.split_whitespace();
        let command = words.next().unwrap_or_default();
        let arg = words.next();
        match command {
            ".quit" | ".exit" | ".q" => return Ok(Flow::Quit),
            ".help" => println!("{HELP}"),
            ".tables" => {
                let names = self.strings(
                    "SELECT name FROM sqlite_schema WHERE type IN ('table', 'view') \
                     AND name NOT LIKE 'sqlite_%' ORDER BY name",
                    arg,
                )?;
                println!("{}", names.join("  "));
            }
            ".schema" => {
                let sql = match arg {
                    Some(_) => {
                        "SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL AND tbl_name LIKE ?1 ORDER BY rowid"
                    }
                    None => "SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL ORDER BY rowid",
                };
                for statement in self.strings(sql, arg)? {
                    println!("{statement};");
                }
            }
            ".mode" => match arg.and_then(Format::parse) {
                Some(mode) => self.mode = mode,
                None => eprintln!("usage: .mode table|csv|json|jsonl|line|markdown"),
            },
            ".headers" => match arg {
                Some("on") => self.headers = true,
                Some("off") => self.headers = false,
                _ => eprintln!("usage: .headers on|off"),
            },
            ".read" => {
                let Some(path) = arg else {
                    eprintln!("usage: .read FILE");
                    return Ok(Flow::Continue);
                };
                let file = std::fs::File::open(path).map_err(|source| Error::Io {
                    operation: "reading",
                    path: path.into(),
                    source,
                })?;
                for line in std::io::BufReader::new(file).lines() {
                    let line = line.map_err(|source| Error::Io {
                        operation: "reading",
                        path: path.into(),
                        source,
                    })?;
                    if let Flow::Quit = Box::pin(self.line(&line)).await? {
                        return Ok(Flow::Quit);
                    }
                }
            }
            ".sync" => {
                self.publish().await?;
                self.session.sync().await?;
                println!("in sync with {}", self.session.url());
            }
            ".refresh" => {
                let outcome = self.session.refresh().await?;
                println!("{outcome:?}");
            }
            ".retry" => {
                // The statements are kept until they are published: a failed
                // retry can be retried.
                let sql = self.unpublished.join(";\n");
                self.session.discard().await?;
                self.session.transaction(|tx| Ok(tx.execute_batch(&sql)?)).await?;
                println!("published {} statement(s)", self.unpublished.len());
                self.unpublished.clear();
            }
            ".discard" => {
                self.unpublished.clear();
                self.session.discard().await?;
                println!("local changes dropped; loaded the newest version");
            }
            ".status" => {
                let changed = self.session.has_unpublished_changes()?;
                println!("database:    {}", self.session.url());
                match self.session.version() {
                    Some(version) => println!("remote:      {version}"),
                    None => println!("remote:      (not created yet)"),
                }
                println!("local copy:  {}", self.session.working_copy().display());
                println!(
                    "unpublished: {}",
                    if changed {
                        format!("yes ({} statement(s))", self.unpublished.len())
                    } else {
                        "none".into()
                    }
                );
                println!(
                    "publishing:  {}",
                    if self.batch {
                        "on .sync and at exit"
                    } else {
                        "after each statement"
                    }
                );
            }
            other => eprintln!("unknown command {other}: try .help"),
        }
        Ok(Flow::Continue)
    }

    /// The first column of every row of `sql`, with `arg` bound if given.
    fn strings(&self, sql: &str, arg: Option<&str>) -> Result<Vec<String>> {
        let conn = self.session.connection();
        let mut stmt = conn.prepare(sql)?;
        let rows: rusqlite::Result<Vec<String>> = match arg {
            Some(a) if stmt.parameter_count() == 1 => stmt.query_map([a], |r| r.get(0))?.collect(),
            _ => stmt.query_map([], |r| r.get(0))?.collect(),
        };
        rows.map_err(Error::Sql)
    }
}
