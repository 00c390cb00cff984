#!/usr/bin/env bash
# Runs every test of the workspace, installing what the tests need first
# (scripts/test-env.sh): a Python virtual environment (.venv at the workspace
# root) with the moto S3 server, SeaweedFS, rclone and Azurite. Tests start
# and stop their own servers on 127.0.0.1.
#
# Usage: scripts/test.sh [ARGS...]   (from any directory; ARGS go to both
# cargo test runs, e.g. a test name filter, or `-- --nocapture`)
#
# Needs only the Rust toolchain and Python 3 with pip (python3, or $PYTHON).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/test-env.sh
source scripts/test-env.sh

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0 doc_status=0
# --no-fail-fast: one failing test binary does not hide the others.
cargo test --workspace --all-targets --no-fail-fast "$@" 2>&1 | tee "$log" || status=$?
cargo test --workspace --doc "$@" 2>&1 | tee -a "$log" || doc_status=$?
# Each optional feature on its own (driver adapters, the Lambda layer), as an
# application that uses only that one builds it:
# its tests, and the documentation examples.
for adapter in sqlx:sqlx sea-orm:sea_orm diesel:diesel lambda:lambda; do
    feature=${adapter%%:*} test=${adapter##*:}
    cargo test -p sqlite-s3 --features "$feature" --test "$test" "$@" 2>&1 | tee -a "$log" || status=$?
    cargo test -p sqlite-s3 --features "$feature" --doc "$@" 2>&1 | tee -a "$log" || doc_status=$?
done
# The oldest rusqlite the library accepts.
bash scripts/oldest-rusqlite.sh 2>&1 | tee -a "$log" || status=$?
# The driver examples, run twice each on a local directory as the bucket:
# the second run must see the first run's visit.
examples_dir=$(mktemp -d)
trap 'rm -f "$log"; rm -rf "$examples_dir"' EXIT
for example in sqlx:sqlx_visits sea-orm:sea_orm_visits diesel:diesel_visits; do
    feature=${example%%:*} name=${example##*:}
    export DATABASE_URL="file://$examples_dir/$name.db" SQLITE_S3_CACHE_DIR="$examples_dir/cache"
    for expected in 1 2; do
        out=$(cargo run -q -p sqlite-s3 --features "$feature" --example "$name" 2>&1) || { echo "$out"; status=1; }
        if [ "$out" != "visits: $expected" ]; then
            echo "example $name: expected 'visits: $expected', got: $out"
            status=1
        else
            echo "example $name: $out"
        fi
    done
    unset DATABASE_URL SQLITE_S3_CACHE_DIR
done
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
if [ "$status" -ne 0 ]; then exit "$status"; fi
exit "$doc_status"
