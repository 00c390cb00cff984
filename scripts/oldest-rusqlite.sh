#!/usr/bin/env bash
# Runs the library's core tests with the oldest rusqlite the workspace
# accepts (0.34, which links libsqlite3-sys 0.32), in a copy of the tracked
# files whose lock file is moved down to it. The workspace's own lock file
# tests the newest. Called by scripts/test.sh, after moto is installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

copy=target/oldest-rusqlite/tree
rm -rf "$copy"
mkdir -p "$copy"
git ls-files -z | xargs -0 cp --parents -t "$copy"
cd "$copy"
cargo update -q -p rusqlite --precise 0.34.0
CARGO_TARGET_DIR=../target cargo test -p sqlite-s3 --lib --test behaviour --test shared "$@"
