//! The same with SeaORM, over the sqlx pool.
//!
//! ```sh
//! DATABASE_URL=s3://my-bucket/visits.db cargo run -p sqlite-s3 --features sea-orm --example sea_orm_visits
//! ```

use sea_orm::{ConnectionTrait, Statement};
use sqlite_s3::{Database, Error, Options};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let db = Database::from_env("DATABASE_URL", &Options::new()).await?;
    let orm = sqlite_s3::adapters::sea_orm::connect(&db).await?;
    db.write(|| async {
        orm.execute_unprepared(
            "CREATE TABLE IF NOT EXISTS visits(at TEXT NOT NULL DEFAULT (datetime('now')));
             INSERT INTO visits DEFAULT VALUES;",
        )
        .await
        .map_err(Error::abort)?;
        Ok(())
    })
    .await?;
    let row = orm
        .query_one_raw(Statement::from_string(
            orm.get_database_backend(),
            "SELECT count(*) AS n FROM visits",
        ))
        .await?
        .ok_or("no row")?;
    let visits: i64 = row.try_get("", "n")?;
    println!("visits: {visits}");
    orm.close().await?;
    db.close().await?;
    Ok(())
}
