//! SeaORM on the working copy (feature `sea-orm`), through the sqlx pool of
//! [`super::sqlx`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use sea_orm::ConnectionTrait;
//! use sqlite_s3::{Database, Options};
//!
//! let db = Database::from_env("DATABASE_URL", &Options::new()).await?;
//! let orm = sqlite_s3::adapters::sea_orm::connect(&db).await?;
//! orm.execute_unprepared("CREATE TABLE IF NOT EXISTS hits(at TEXT)").await?;
//! db.publish().await?;
//! orm.close().await?;
//! db.close().await?;
//! # Ok(()) }
//! ```

use sea_orm::{DatabaseConnection, SqlxSqliteConnector};

use crate::database::Database;

/// A SeaORM connection over [`super::sqlx::pool`].
///
/// # Failure
/// sqlx's errors, when the file cannot be opened.
pub async fn connect(db: &Database) -> Result<DatabaseConnection, sqlx::Error> {
    Ok(SqlxSqliteConnector::from_sqlx_sqlite_pool(super::sqlx::pool(db).await?))
}
