//! `sqlite-s3 shell`: in a real pseudo-terminal, and reading standard input.

use std::io::Write;
use std::process::Stdio;

use rexpect::session::{Options, PtySession, spawn_with_options};
use test_support::cli::{Place, assert_exit, assert_ok, json_rows, stdout};

fn pty(place: &Place, cache: &str, args: &[&str]) -> PtySession {
    let options = Options::new().timeout_ms(Some(30_000)).strip_ansi_escape_codes(true);
    spawn_with_options(place.command(cache, args), options).unwrap()
}

fn rows(place: &Place, url: &str) -> serde_json::Value {
    json_rows(&place.run(
        "reader",
        &["query", url, "SELECT x FROM t ORDER BY x", "--format", "json"],
    ))
}

#[test]
fn typing_statements_and_dot_commands_in_a_terminal() {
    let place = Place::file();
    let url = place.url("app.db");
    let mut shell = pty(&place, "me", &["shell", &url]);
    shell.exp_string("Enter SQL terminated with").unwrap();
    shell.exp_string("sqlite-s3> ").unwrap();
    shell.send_line("CREATE TABLE t(x INTEGER);").unwrap();
    shell.exp_string("sqlite-s3> ").unwrap();
    // A statement over several lines.
    shell.send_line("INSERT INTO t").unwrap();
    shell.exp_string("...> ").unwrap();
    shell.send_line("  VALUES (42);").unwrap();
    shell.exp_string("sqlite-s3> ").unwrap();
    // Published at once: another process sees it while the shell runs.
    assert_eq!(rows(&place, &url), serde_json::json!([{"x": 42}]));

    // Each line waits for the prompt, as a person would: the line editor
    // drops input typed before it takes the terminal.
    for (line, expected) in [
        (".tables", "t\r\n"),
        (".mode line", ""),
        ("SELECT x * 2 AS doubled FROM t;", "doubled = 84"),
        (".schema t", "CREATE TABLE t(x INTEGER);"),
        (".nonsense", "unknown command .nonsense"),
    ] {
        shell.send_line(line).unwrap();
        shell.exp_string(expected).unwrap();
        shell.exp_string("sqlite-s3> ").unwrap();
    }
    shell.send_line(".quit").unwrap();
    shell.exp_eof().unwrap();
}

#[test]
fn a_conflict_is_shown_and_retry_runs_the_statements_again() {
    let place = Place::file();
    let url = place.url("app.db");
    assert_ok(&place.run("setup", &["exec", &url, "CREATE TABLE t(x INTEGER)"]));
    let mut shell = pty(&place, "me", &["shell", "--batch", &url]);
    shell.exp_string("sqlite-s3> ").unwrap();
    shell.send_line("INSERT INTO t VALUES (1);").unwrap();
    shell.exp_string("sqlite-s3> ").unwrap();
    shell.send_line(".status").unwrap();
    shell.exp_string("unpublished: yes (1 statement(s))").unwrap();
    shell.exp_string("sqlite-s3> ").unwrap();
    // Someone else publishes meanwhile.
    assert_ok(&place.run("other", &["exec", &url, "INSERT INTO t VALUES (2)"]));
    shell.send_line(".sync").unwrap();
    shell.exp_string("your change was NOT published").unwrap();
    shell.exp_string(".retry").unwrap();
    shell.exp_string("sqlite-s3> ").unwrap();
    assert_eq!(rows(&place, &url), serde_json::json!([{"x": 2}]), "nothing overwritten");
    shell.send_line(".retry").unwrap();
    shell.exp_string("published 1 statement(s)").unwrap();
    shell.exp_string("sqlite-s3> ").unwrap();
    assert_eq!(rows(&place, &url), serde_json::json!([{"x": 1}, {"x": 2}]));
    shell.send_line(".quit").unwrap();
    shell.exp_eof().unwrap();
}

#[test]
fn ctrl_c_drops_the_statement_being_typed() {
    let place = Place::file();
    let url = place.url("app.db");
    assert_ok(&place.run("setup", &["exec", &url, "CREATE TABLE t(x INTEGER)"]));
    let mut shell = pty(&place, "me", &["shell", &url]);
    shell.exp_string("sqlite-s3> ").unwrap();
    shell.send_line("INSERT INTO t").unwrap();
    shell.exp_string("...> ").unwrap();
    shell.send_control('c').unwrap();
    shell.exp_string("type .quit to leave").unwrap();
    shell.exp_string("sqlite-s3> ").unwrap();
    // The buffer was cleared: this line stands alone, and alone it is not SQL.
    shell.send_line("SELECT 1 WHERE (1);").unwrap();
    shell.exp_string("sqlite-s3> ").unwrap();
    shell.send_line("t VALUES (1);").unwrap();
    shell.exp_string("syntax error").unwrap();
    shell.exp_string("sqlite-s3> ").unwrap();
    shell.send_line(".quit").unwrap();
    shell.exp_eof().unwrap();
    assert_eq!(rows(&place, &url), serde_json::json!([]));
}

fn pipe(place: &Place, args: &[&str], input: &str) -> std::process::Output {
    let mut child = place
        .command("me", args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn a_script_on_standard_input_runs_like_sqlite3() {
    let place = Place::file();
    let url = place.url("app.db");
    let script = "CREATE TABLE t(x INTEGER, label TEXT);\n\
                  INSERT INTO t VALUES\n  (1, 'one'),\n  (2, 'two');\n\
                  .mode csv\n\
                  SELECT * FROM t ORDER BY x;\n\
                  .headers off\n\
                  SELECT count(*) FROM t;\n";
    let out = pipe(&place, &["shell", &url], script);
    assert_ok(&out);
    assert_eq!(stdout(&out), "x,label\r\n1,one\r\n2,two\r\n2\r\n");
    assert_eq!(rows(&place, &url), serde_json::json!([{"x": 1}, {"x": 2}]));
}

#[test]
fn a_script_stops_at_the_first_error() {
    let place = Place::file();
    let url = place.url("app.db");
    let out = pipe(
        &place,
        &["shell", &url],
        "CREATE TABLE t(x);\nINSERT INTO nope VALUES (1);\nINSERT INTO t VALUES (3);\n",
    );
    assert_exit(&out, 3, "no such table: nope");
    assert_eq!(
        rows(&place, &url),
        serde_json::json!([]),
        "the statement after the error did not run"
    );
}

#[test]
fn batch_mode_publishes_at_exit() {
    let place = Place::file();
    let url = place.url("app.db");
    let out = pipe(
        &place,
        &["shell", "--batch", &url],
        "CREATE TABLE t(x);\nINSERT INTO t VALUES (7);\n",
    );
    assert_ok(&out);
    assert_eq!(rows(&place, &url), serde_json::json!([{"x": 7}]));
}

#[test]
fn a_shell_on_s3() {
    let Some(place) = Place::s3() else { return };
    let url = place.url("app.db");
    let out = pipe(
        &place,
        &["shell", &url],
        "CREATE TABLE t(x);\nINSERT INTO t VALUES (5);\n.tables\n",
    );
    assert_ok(&out);
    assert_eq!(stdout(&out), "t\n");
    assert_eq!(rows(&place, &url), serde_json::json!([{"x": 5}]));
}
