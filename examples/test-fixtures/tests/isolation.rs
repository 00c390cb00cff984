//! Tests written with the pattern: each starts from the seed, whatever the
//! others do, even running in parallel.

use test_fixtures::fresh_database;

fn names(db: &sqlite_s3::Session) -> Vec<String> {
    let mut stmt = db.connection().prepare("SELECT name FROM users ORDER BY id").unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect()
}

#[tokio::test]
async fn a_test_that_adds_a_user() {
    let mut db = fresh_database("adds").await.unwrap();
    assert_eq!(names(&db), ["ada", "grace", "barbara"]);
    db.transaction(|tx| Ok(tx.execute("INSERT INTO users(name) VALUES ('eve')", []).map(|_| ())?))
        .await
        .unwrap();
    assert_eq!(names(&db).len(), 4);
    db.close().await.unwrap();
}

#[tokio::test]
async fn a_test_that_deletes_every_user() {
    let mut db = fresh_database("deletes").await.unwrap();
    assert_eq!(names(&db), ["ada", "grace", "barbara"]);
    db.transaction(|tx| Ok(tx.execute("DELETE FROM users", []).map(|_| ())?))
        .await
        .unwrap();
    assert!(names(&db).is_empty());
    db.close().await.unwrap();
}

#[tokio::test]
async fn many_tests_each_see_only_the_seed() {
    let mut handles = Vec::new();
    for i in 0..8 {
        handles.push(tokio::spawn(async move {
            let mut db = fresh_database(&format!("parallel-{i}")).await.unwrap();
            assert_eq!(names(&db).len(), 3, "test {i} saw another test's writes");
            db.transaction(move |tx| {
                Ok(tx
                    .execute("INSERT INTO users(name) VALUES (?1)", [format!("u{i}")])
                    .map(|_| ())?)
            })
            .await
            .unwrap();
            assert_eq!(names(&db).len(), 4);
            db.close().await.unwrap();
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
}
