//! A to-do list as an axum app on AWS Lambda, behind API Gateway or a
//! function URL, keeping its SQLite database in a bucket:
//!
//! ```sh
//! DATABASE_URL=s3://my-bucket/todos.db   # or a file path, to run it on a plain file
//! ```
//!
//! - `GET /todos`: the list, as JSON;
//! - `POST /todos` with `{"title": "..."}`: adds one (201).
//!
//! [`SyncLayer`] refreshes the database before each request (one
//! conditional GET) and publishes what the request wrote before the
//! response leaves. Adding a to-do may run again on a conflict, so it is
//! declared safe to re-run.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use lambda_http::tower::ServiceBuilder;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlite_s3::lambda::SyncLayer;
use sqlite_s3::{Database, Options};
use sqlx::SqlitePool;

#[derive(Deserialize)]
struct NewTodo {
    title: String,
}

async fn list(State(pool): State<SqlitePool>) -> Result<Json<Value>, (StatusCode, String)> {
    let titles: Vec<String> = sqlx::query_scalar("SELECT title FROM todos ORDER BY id")
        .fetch_all(&pool)
        .await
        .map_err(internal)?;
    Ok(Json(json!({ "todos": titles })))
}

async fn add(State(pool): State<SqlitePool>, Json(todo): Json<NewTodo>) -> Result<StatusCode, (StatusCode, String)> {
    sqlx::query("INSERT INTO todos(title) VALUES (?)")
        .bind(todo.title)
        .execute(&pool)
        .await
        .map_err(internal)?;
    Ok(StatusCode::CREATED)
}

fn internal(e: sqlx::Error) -> (StatusCode, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    let db = Arc::new(Database::from_env("DATABASE_URL", &Options::new()).await?);
    let pool = sqlite_s3::adapters::sqlx::pool(&db).await?;
    // Several functions may start at once: `write` re-runs this on the
    // newest version if another one created the table first.
    db.write(|| async {
        sqlx::query("CREATE TABLE IF NOT EXISTS todos(id INTEGER PRIMARY KEY, title TEXT NOT NULL)")
            .execute(&pool)
            .await
            .map_err(sqlite_s3::Error::abort)?;
        Ok(())
    })
    .await?;

    let app = Router::new().route("/todos", get(list).post(add)).with_state(pool);
    let synced = ServiceBuilder::new()
        .layer(SyncLayer::new(db).rerun_on_conflict(5))
        .service(app);
    lambda_http::run(synced).await
}
