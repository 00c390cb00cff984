//! SeaORM through the sqlx pool on the working copy.

use sea_orm::{ConnectionTrait, Statement};
use sqlite_s3::Database;
use sqlite_s3::adapters::sea_orm::connect;
use test_support::on_every_store;
use test_support::stores::Backend;

on_every_store!(sea_orm_writes_and_another_machine_reads_it_back);

async fn sea_orm_writes_and_another_machine_reads_it_back(backend: Backend) {
    let url = backend.url("app.db");
    let db = Database::open(&url, &backend.options()).await.unwrap();
    let orm = connect(&db).await.unwrap();
    orm.execute_unprepared("CREATE TABLE cakes(id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
        .await
        .unwrap();
    orm.execute_raw(Statement::from_sql_and_values(
        orm.get_database_backend(),
        "INSERT INTO cakes(name) VALUES (?), (?)",
        ["lemon".into(), "cheese".into()],
    ))
    .await
    .unwrap();
    db.publish().await.unwrap();
    orm.close().await.unwrap();
    db.close().await.unwrap();

    let elsewhere = Database::open(&url, &backend.options()).await.unwrap();
    let orm = connect(&elsewhere).await.unwrap();
    let rows = orm
        .query_all_raw(Statement::from_string(
            orm.get_database_backend(),
            "SELECT name FROM cakes ORDER BY id",
        ))
        .await
        .unwrap();
    let names: Vec<String> = rows.iter().map(|r| r.try_get("", "name").unwrap()).collect();
    assert_eq!(names, ["lemon", "cheese"]);
    orm.close().await.unwrap();
    elsewhere.close().await.unwrap();
}
