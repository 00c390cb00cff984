//! An sqlx program whose database is a file or lives in a bucket:
//! it records a visit and prints how many there have been.
//!
//! ```sh
//! DATABASE_URL=visits.db cargo run -p sqlite-s3 --features sqlx --example sqlx_visits
//! DATABASE_URL=s3://my-bucket/visits.db cargo run -p sqlite-s3 --features sqlx --example sqlx_visits
//! ```

use sqlite_s3::{Database, Error, Options};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let db = Database::from_env("DATABASE_URL", &Options::new()).await?;
    let pool = sqlite_s3::adapters::sqlx::pool(&db).await?;
    // Runs on the newest version, publishes, runs again if another writer
    // got in first.
    db.write(|| async {
        sqlx::query("CREATE TABLE IF NOT EXISTS visits(at TEXT NOT NULL DEFAULT (datetime('now')))")
            .execute(&pool)
            .await
            .map_err(Error::abort)?;
        sqlx::query("INSERT INTO visits DEFAULT VALUES")
            .execute(&pool)
            .await
            .map_err(Error::abort)?;
        Ok(())
    })
    .await?;
    let visits: i64 = sqlx::query_scalar("SELECT count(*) FROM visits")
        .fetch_one(&pool)
        .await?;
    println!("visits: {visits}");
    pool.close().await;
    db.close().await?;
    Ok(())
}
