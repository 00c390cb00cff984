//! Notes kept in SQLite with plain rusqlite. Where the database is comes from
//! `DATABASE_URL`: a file path, or a store URL.
//!
//! ```sh
//! DATABASE_URL=notes.db cargo run -p notes -- add "buy milk"        # a local file
//! DATABASE_URL=s3://my-bucket/notes.db cargo run -p notes -- list    # a bucket
//! ```
//!
//! With a bucket, each `add` is a transaction that is published with a
//! conditional write and re-run on the newest version if another writer
//! got in first.

use sqlite_s3::blocking::Session;
use sqlite_s3::rusqlite::{self, Connection};
use sqlite_s3::{Options, Target};

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS notes(id INTEGER PRIMARY KEY, text TEXT NOT NULL)";

fn main() {
    if let Err(e) = run() {
        eprintln!("notes: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let text = match args.as_slice() {
        [] => None,
        [list] if list == "list" => None,
        [add, text] if add == "add" => Some(text.clone()),
        _ => return Err("usage: notes [list | add TEXT]".into()),
    };
    match Target::from_env("DATABASE_URL")? {
        Target::Local(path) => {
            let mut conn = Connection::open(path)?;
            let tx = conn.transaction()?;
            let notes = apply(&tx, text.as_deref())?;
            tx.commit()?;
            print(&notes);
        }
        Target::Remote(url) => {
            let mut db = Session::open(&url.to_string(), &Options::new())?;
            let notes = db.transaction(|tx| Ok(apply(tx, text.as_deref())?))?;
            db.close()?;
            print(&notes);
        }
    }
    Ok(())
}

/// Adds the note, if any, in the transaction; returns every note.
fn apply(tx: &rusqlite::Transaction<'_>, text: Option<&str>) -> rusqlite::Result<Vec<String>> {
    tx.execute_batch(SCHEMA)?;
    if let Some(text) = text {
        tx.execute("INSERT INTO notes(text) VALUES (?1)", [text])?;
    }
    let mut stmt = tx.prepare("SELECT text FROM notes ORDER BY id")?;
    stmt.query_map([], |r| r.get(0))?.collect()
}

fn print(notes: &[String]) {
    for (i, note) in notes.iter().enumerate() {
        println!("{}. {note}", i + 1);
    }
}
