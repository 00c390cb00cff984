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

MOTO_VERSION=5.2.5
VENV_PYTHON="$PWD/.venv/bin/python"

if [ ! -x "$VENV_PYTHON" ]; then
    echo "creating .venv"
    "${PYTHON:-python3}" -m venv .venv
fi
# Idempotent: install only when the pinned moto, with its server, is missing.
if ! "$VENV_PYTHON" -c "
import sys, moto
from moto.server import ThreadedMotoServer
sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
    echo "installing moto[server]==$MOTO_VERSION into .venv"
    "$VENV_PYTHON" -m pip install --quiet --disable-pip-version-check --no-input "moto[server]==$MOTO_VERSION"
fi

export SQLITE_S3_MOTO_PYTHON="$VENV_PYTHON"
export SQLITE_S3_REQUIRE_MOTO=1

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0 doc_status=0
cargo test --workspace --all-targets "$@" 2>&1 | tee "$log" || status=$?
cargo test --workspace --doc "$@" 2>&1 | tee -a "$log" || doc_status=$?
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
if [ "$status" -ne 0 ]; then exit "$status"; fi
exit "$doc_status"
