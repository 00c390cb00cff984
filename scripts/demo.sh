#!/usr/bin/env bash
# The main job on the embedded local-directory store, with no AWS account:
# create a table, insert a row, query it. The directory acts as the bucket.
set -euo pipefail
cd "$(dirname "$0")/.."

bucket="${SQLITE_S3_DEMO_DIR:-${TMPDIR:-/tmp}/sqlite-s3-demo}"
db="file://$bucket/app.db"
mkdir -p "$bucket"
cargo build --quiet -p sqlite-s3-cli
run() { echo "+ sqlite-s3 $*" >&2; target/debug/sqlite-s3 "$@"; }

run exec "$db" "CREATE TABLE IF NOT EXISTS notes(id INTEGER PRIMARY KEY, body TEXT NOT NULL, at TEXT DEFAULT CURRENT_TIMESTAMP)"
run exec "$db" "INSERT INTO notes(body) VALUES ('hello from sqlite-s3')"
run query "$db" "SELECT id, body FROM notes ORDER BY id"
run query "$db" "SELECT count(*) AS notes FROM notes" --format json
echo "The database is an ordinary SQLite file: $bucket/app.db" >&2
