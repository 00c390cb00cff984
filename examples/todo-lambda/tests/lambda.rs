//! The example run as two Lambda functions (two processes) on one database,
//! against the fake Runtime API: API Gateway HTTP events in, responses out,
//! nothing lost.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use test_support::runtime_api::{Outcome, RuntimeApi};

struct Function(Child);

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(api: &RuntimeApi, database_url: &str, cache: &std::path::Path) -> Function {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_todo-lambda"));
    cmd.env("DATABASE_URL", database_url)
        .env("SQLITE_S3_CACHE_DIR", cache)
        .stdout(Stdio::null());
    for (key, value) in api.function_env() {
        cmd.env(key, value);
    }
    Function(cmd.spawn().unwrap())
}

/// An API Gateway HTTP API (payload 2.0) event.
fn event(method: &str, body: Option<Value>) -> String {
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/todos",
        "rawQueryString": "",
        "headers": { "content-type": "application/json" },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "example.com",
            "domainPrefix": "example",
            "http": { "method": method, "path": "/todos", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "test" },
            "requestId": "id",
            "routeKey": "$default",
            "stage": "$default",
            "time": "28/Nov/2026:00:00:00 +0000",
            "timeEpoch": 0
        },
        "body": body.map(|b| b.to_string()),
        "isBase64Encoded": false
    })
    .to_string()
}

fn response(api: &RuntimeApi, id: &str) -> Value {
    match api.outcome(id, Duration::from_secs(60)) {
        Outcome::Response(body) => serde_json::from_str(&body).unwrap(),
        Outcome::Error(error) => panic!("the invocation failed: {error}"),
    }
}

#[test]
fn two_functions_share_one_database_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    std::fs::create_dir(&bucket).unwrap();
    let url = format!("file://{}/todos.db", bucket.display());
    let apis = [RuntimeApi::start(), RuntimeApi::start()];
    let _functions: Vec<Function> = apis
        .iter()
        .enumerate()
        .map(|(i, api)| start(api, &url, &dir.path().join(format!("cache-{i}"))))
        .collect();

    let mut ids = Vec::new();
    for n in 0..8 {
        for (f, api) in apis.iter().enumerate() {
            let title = format!("todo {f}-{n}");
            ids.push((f, api.invoke(&event("POST", Some(json!({ "title": title }))))));
        }
    }
    for (f, id) in &ids {
        assert_eq!(response(&apis[*f], id)["statusCode"], 201);
    }
    let list = apis[1].invoke(&event("GET", None));
    let answer = response(&apis[1], &list);
    assert_eq!(answer["statusCode"], 200);
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    let mut titles: Vec<String> = serde_json::from_value(body["todos"].clone()).unwrap();
    titles.sort();
    let mut expected: Vec<String> = (0..8)
        .flat_map(|n| (0..2).map(move |f| format!("todo {f}-{n}")))
        .collect();
    expected.sort();
    assert_eq!(titles, expected);
}
