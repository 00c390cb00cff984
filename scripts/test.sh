#!/usr/bin/env bash
# Runs every test of the workspace, installing what the tests need first:
# a Python virtual environment (.venv at the workspace root) with the moto S3
# server. Tests start and stop their own moto servers on 127.0.0.1.
#
# Usage: scripts/test.sh [ARGS...]   (from any directory; ARGS go to both
# cargo test runs, e.g. a test name filter, or `-- --nocapture`)
#
# Needs only the Rust toolchain and Python 3 with pip (python3, or $PYTHON).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/moto-env.sh
source scripts/moto-env.sh

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0 doc_status=0
cargo test --workspace --all-targets "$@" 2>&1 | tee "$log" || status=$?
cargo test --workspace --doc "$@" 2>&1 | tee -a "$log" || doc_status=$?
# Each optional feature on its own (driver adapters, the Lambda layer), as an
# application that uses only that one builds it:
# its tests, and the documentation examples.
for adapter in sqlx:sqlx sea-orm:sea_orm diesel:diesel lambda:lambda; do
    feature=${adapter%%:*} test=${adapter##*:}
    cargo test -p sqlite-s3 --features "$feature" --test "$test" "$@" 2>&1 | tee -a "$log" || status=$?
    cargo test -p sqlite-s3 --features "$feature" --doc "$@" 2>&1 | tee -a "$log" || doc_status=$?
done
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
if [ "$status" -ne 0 ]; then exit "$status"; fi
exit "$doc_status"
