//! The Diesel adapter: a connection on the working copy of a blocking
//! `Database`, published while it is open.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use sqlite_s3::adapters::diesel::connect;
use sqlite_s3::blocking::Database;
use sqlite_s3::{PublishOutcome, RefreshOutcome};
use test_support::on_every_store;
use test_support::stores::Backend;

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn names(conn: &mut SqliteConnection) -> Vec<String> {
    diesel::sql_query("SELECT name FROM people ORDER BY name")
        .load::<Name>(conn)
        .unwrap()
        .into_iter()
        .map(|n| n.name)
        .collect()
}

fn round_trip(backend: Backend) {
    let url = backend.url("app.db");
    let db = Database::open(&url, &backend.options()).unwrap();
    let mut conn = connect(db.path()).unwrap();
    diesel::sql_query("CREATE TABLE people(name TEXT NOT NULL)")
        .execute(&mut conn)
        .unwrap();
    conn.transaction(|conn| {
        for name in ["ada", "grace"] {
            diesel::sql_query("INSERT INTO people VALUES (?)")
                .bind::<Text, _>(name)
                .execute(conn)?;
        }
        diesel::QueryResult::Ok(())
    })
    .unwrap();
    assert!(matches!(db.publish().unwrap(), PublishOutcome::Published { .. }));
    assert_eq!(db.publish().unwrap(), PublishOutcome::Unchanged);

    // Another machine writes; a refresh shows it in the open connection.
    let other = Database::open(&url, &backend.options()).unwrap();
    let mut other_conn = connect(other.path()).unwrap();
    assert_eq!(names(&mut other_conn), ["ada", "grace"]);
    diesel::sql_query("INSERT INTO people VALUES ('edsger')")
        .execute(&mut other_conn)
        .unwrap();
    other.publish().unwrap();
    drop(other_conn);
    other.close().unwrap();

    assert!(matches!(db.refresh().unwrap(), RefreshOutcome::Downloaded { .. }));
    assert_eq!(names(&mut conn), ["ada", "edsger", "grace"]);

    // A conflicting write is refused, and discarded on request.
    let racer = Database::open(&url, &backend.options()).unwrap();
    let mut racer_conn = connect(racer.path()).unwrap();
    diesel::sql_query("INSERT INTO people VALUES ('barbara')")
        .execute(&mut racer_conn)
        .unwrap();
    racer.publish().unwrap();
    diesel::sql_query("INSERT INTO people VALUES ('niklaus')")
        .execute(&mut conn)
        .unwrap();
    assert!(db.publish().unwrap_err().is_conflict());
    db.discard().unwrap();
    let n = diesel::sql_query("SELECT count(*) AS n FROM people")
        .get_result::<Count>(&mut conn)
        .unwrap()
        .n;
    assert_eq!(n, 4);
    drop((conn, racer_conn));
    racer.close().unwrap();
    db.close().unwrap();
}

on_every_store!(diesel_round_trip);

/// The round trip on a thread of its own: the blocking `Database` runs a
/// runtime of its own.
async fn diesel_round_trip(backend: Backend) {
    tokio::task::spawn_blocking(move || round_trip(backend)).await.unwrap();
}

#[test]
fn diesel_on_a_plain_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.db");
    let db = Database::open(path.to_str().unwrap(), &sqlite_s3::Options::new()).unwrap();
    let mut conn = connect(db.path()).unwrap();
    diesel::sql_query("CREATE TABLE people(name TEXT); INSERT INTO people VALUES ('ada')")
        .execute(&mut conn)
        .unwrap();
    assert_eq!(db.publish().unwrap(), PublishOutcome::Unchanged);
    drop(conn);
    db.close().unwrap();
    assert!(path.exists());
}
