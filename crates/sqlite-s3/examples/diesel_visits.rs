//! The same with Diesel, which is synchronous: so is
//! `sqlite_s3::blocking::Database`.
//!
//! ```sh
//! DATABASE_URL=s3://my-bucket/visits.db cargo run -p sqlite-s3 --features diesel --example diesel_visits
//! ```

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use sqlite_s3::Options;
use sqlite_s3::blocking::Database;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let db = Database::from_env("DATABASE_URL", &Options::new())?;
    let mut conn = sqlite_s3::adapters::diesel::connect(db.path())?;
    // Publish, and on a conflict drop the change, take the newest version
    // and do it again.
    loop {
        db.refresh()?;
        diesel::sql_query("CREATE TABLE IF NOT EXISTS visits(at TEXT NOT NULL DEFAULT (datetime('now')))")
            .execute(&mut conn)?;
        diesel::sql_query("INSERT INTO visits DEFAULT VALUES").execute(&mut conn)?;
        match db.publish() {
            Ok(_) => break,
            Err(e) if e.is_conflict() => {
                db.discard()?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let visits = diesel::sql_query("SELECT count(*) AS n FROM visits")
        .get_result::<Count>(&mut conn)?
        .n;
    println!("visits: {visits}");
    drop(conn);
    db.close()?;
    Ok(())
}
