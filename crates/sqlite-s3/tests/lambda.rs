//! The Lambda layer end to end, offline: real `lambda_runtime` functions,
//! each in a process of its own, run against a fake Runtime API and write
//! to one database.
//!
//! The functions are this test binary run again with
//! `SQLITE_S3_LAMBDA_CHILD` set: the test `function_process` then runs
//! the function instead of returning at once.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{LambdaEvent, service_fn, tower::ServiceBuilder};
use serde_json::{Value, json};
use sqlite_s3::lambda::SyncLayer;
use sqlite_s3::{Database, Options, Session};
use test_support::on_stores;
use test_support::runtime_api::{Outcome, RuntimeApi};
use test_support::stores::{Backend, Kind};

const CHILD: &str = "SQLITE_S3_LAMBDA_CHILD";
const ANSWER_WITHIN: Duration = Duration::from_secs(60);

/// One function process, killed when dropped.
struct Function {
    child: Child,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a function on `api`, on database `url`, with its own cache.
fn start(api: &RuntimeApi, backend: &Backend, url: &str, rerun: bool) -> Function {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "function_process", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("DATABASE_URL", url)
        .env("SQLITE_S3_CACHE_DIR", backend.fresh_cache())
        .env("RERUN", if rerun { "1" } else { "" })
        .stdout(Stdio::null());
    for (key, value) in api.function_env() {
        cmd.env(key, value);
    }
    cmd.envs(backend.child_env());
    Function {
        child: cmd.spawn().unwrap(),
    }
}

/// The function: `{"add": N}` inserts N; `{"add": N, "fail": true}`
/// inserts N and fails; `{"add": N, "race": true}` first has another writer
/// publish the row -1, unless the working copy already holds it, then
/// inserts N. Every answer holds the rows it saw.
#[test]
fn function_process() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime
        .block_on(async {
            let options = Options::new();
            let db = Arc::new(Database::from_env("DATABASE_URL", &options).await?);
            let handler_db = db.clone();
            let handler = service_fn(move |event: LambdaEvent<Value>| {
                let db = handler_db.clone();
                async move { handle(&db, event.payload).await }
            });
            let layer = SyncLayer::new(db);
            if std::env::var("RERUN").unwrap_or_default() == "1" {
                let service = ServiceBuilder::new()
                    .layer(layer.rerun_on_conflict(50))
                    .service(handler);
                lambda_runtime::run(service).await
            } else {
                lambda_runtime::run(ServiceBuilder::new().layer(layer).service(handler)).await
            }
        })
        .unwrap();
}

async fn handle(db: &Database, event: Value) -> Result<Value, lambda_runtime::Error> {
    let conn = rusqlite::Connection::open(db.path())?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch("CREATE TABLE IF NOT EXISTS hits(n INTEGER NOT NULL)")?;
    let raced: bool = conn.query_row("SELECT EXISTS (SELECT 1 FROM hits WHERE n = -1)", [], |r| r.get(0))?;
    if event["race"] == true && !raced {
        // Another writer, on a cache directory of its own, gets in first.
        let cache = tempfile::tempdir()?;
        let url = db.url().unwrap().to_string();
        let mut other = Session::open(&url, &Options::new().cache_dir(cache.path())).await?;
        other
            .transaction(|tx| Ok(tx.execute("INSERT INTO hits VALUES (-1)", []).map(|_| ())?))
            .await?;
        other.close().await?;
    }
    if let Some(n) = event["add"].as_i64() {
        conn.execute("INSERT INTO hits VALUES (?1)", [n])?;
    }
    if event["fail"] == true {
        return Err("the handler failed on purpose".into());
    }
    let mut stmt = conn.prepare("SELECT n FROM hits ORDER BY n")?;
    let rows: Vec<i64> = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(json!({ "rows": rows }))
}

fn rows(outcome: &Outcome) -> Vec<i64> {
    let Outcome::Response(body) = outcome else {
        panic!("expected a response, got {outcome:?}");
    };
    let value: Value = serde_json::from_str(body).unwrap();
    serde_json::from_value(value["rows"].clone()).unwrap()
}

// Memory is seen by one process only.
on_stores!(
    [file, s3, seaweed, azure]
    two_lambdas_writing_to_one_database_lose_nothing,
    a_conflict_fails_the_invocation_and_a_failure_leaves_no_trace,
    a_handler_declared_safe_is_rerun_on_conflict,
);

/// Runs `test` on a thread that may block, unless this process is a
/// function.
async fn in_parent(test: impl FnOnce() + Send + 'static) {
    if std::env::var_os(CHILD).is_none() {
        tokio::task::spawn_blocking(test).await.unwrap();
    }
}

async fn two_lambdas_writing_to_one_database_lose_nothing(backend: Backend) {
    in_parent(move || {
        let url = backend.url("lambda.db");
        let apis = [RuntimeApi::start(), RuntimeApi::start()];
        let _functions: Vec<Function> = apis.iter().map(|api| start(api, &backend, &url, true)).collect();
        let per_function = 12;
        let mut ids = Vec::new();
        for i in 0..per_function {
            for (f, api) in apis.iter().enumerate() {
                let n = (f * 1000 + i) as i64;
                ids.push((f, n, api.invoke(&json!({ "add": n }).to_string())));
            }
        }
        for (f, n, id) in &ids {
            let seen = rows(&apis[*f].outcome(id, ANSWER_WITHIN));
            assert!(seen.contains(n), "invocation {id} does not see its own row");
        }
        // A third reader sees every row exactly once.
        let expected: Vec<i64> = {
            let mut all: Vec<i64> = ids.iter().map(|(_, n, _)| *n).collect();
            all.sort();
            all
        };
        let last = apis[0].invoke("{}");
        assert_eq!(rows(&apis[0].outcome(&last, ANSWER_WITHIN)), expected);
    })
    .await
}

async fn a_conflict_fails_the_invocation_and_a_failure_leaves_no_trace(backend: Backend) {
    in_parent(move || {
        let url = backend.url("lambda.db");
        let api = RuntimeApi::start();
        let _function = start(&api, &backend, &url, false);
        let first = api.invoke(&json!({ "add": 1 }).to_string());
        assert_eq!(rows(&api.outcome(&first, ANSWER_WITHIN)), [1]);

        // Another writer publishes while the handler runs: the invocation
        // fails with the conflict, and its row is not kept.
        let raced = api.invoke(&json!({ "add": 2, "race": true }).to_string());
        let Outcome::Error(error) = api.outcome(&raced, ANSWER_WITHIN) else {
            panic!("a conflicting invocation must fail");
        };
        assert!(error.contains("conflict"), "{error}");
        assert!(error.contains(&url), "the error names the database: {error}");

        // A handler error: its row is not kept either.
        let failed = api.invoke(&json!({ "add": 3, "fail": true }).to_string());
        let Outcome::Error(error) = api.outcome(&failed, ANSWER_WITHIN) else {
            panic!("a failing handler fails the invocation");
        };
        assert!(error.contains("failed on purpose"), "{error}");

        let check = api.invoke("{}");
        assert_eq!(rows(&api.outcome(&check, ANSWER_WITHIN)), [-1, 1]);
    })
    .await
}

async fn a_handler_declared_safe_is_rerun_on_conflict(backend: Backend) {
    in_parent(move || {
        let url = backend.url("lambda.db");
        let api = RuntimeApi::start();
        let _function = start(&api, &backend, &url, true);
        let first = api.invoke(&json!({ "add": 1 }).to_string());
        assert_eq!(rows(&api.outcome(&first, ANSWER_WITHIN)), [1]);
        // The first run lets another writer in first and conflicts; the second
        // runs on the newest version and lands.
        let raced = api.invoke(&json!({ "add": 2, "race": true }).to_string());
        assert_eq!(rows(&api.outcome(&raced, ANSWER_WITHIN)), [-1, 1, 2]);
    })
    .await
}

/// Many invocations at once in one process (as under `run_concurrent`):
/// each reads a counter and writes it back plus one. Taking turns, none is
/// lost and none conflicts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invocations_in_one_process_take_turns() {
    use lambda_runtime::tower::ServiceExt;
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let backend = Backend::new(Kind::File).unwrap();
    let db = Arc::new(
        Database::open(&backend.url("turns.db"), &backend.options())
            .await
            .unwrap(),
    );
    let path = db.path().to_path_buf();
    let handler = service_fn(move |_: u32| {
        let path = path.clone();
        async move {
            let conn = rusqlite::Connection::open(&path)?;
            conn.busy_timeout(Duration::from_secs(10))?;
            conn.execute_batch("CREATE TABLE IF NOT EXISTS counter(n INTEGER); INSERT INTO counter SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM counter)")?;
            let n: i64 = conn.query_row("SELECT n FROM counter", [], |r| r.get(0))?;
            tokio::time::sleep(Duration::from_millis(2)).await; // let others in, if they could
            conn.execute("UPDATE counter SET n = ?1", [n + 1])?;
            Ok::<_, lambda_runtime::Error>(n + 1)
        }
    });
    let service = ServiceBuilder::new().layer(SyncLayer::new(db.clone())).service(handler);
    // Concurrent on one task: they interleave at every await.
    let calls = (0..24u32).map(|i| service.clone().oneshot(i));
    let mut seen: Vec<i64> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    seen.sort();
    assert_eq!(seen, (1..=24).collect::<Vec<i64>>());
}
