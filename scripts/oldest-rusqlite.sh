#!/usr/bin/env bash
# Runs the library's core tests with the oldest rusqlite the workspace
# accepts (0.34, which links libsqlite3-sys 0.32), in a copy of the sources
# whose lock file is moved down to it. The workspace's own lock file
# tests the newest. Called by scripts/test.sh, after moto is installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

copy=target/oldest-rusqlite/tree
rm -rf "$copy"
mkdir -p "$copy"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files -z | xargs -0 cp --parents -t "$copy"
else
    # Not a git checkout (an unpacked archive): everything but build output.
    tar --exclude=./target --exclude=./.venv -cf - . | tar -xf - -C "$copy"
fi
cd "$copy"
cargo update -q -p rusqlite --precise 0.34.0
CARGO_TARGET_DIR=../target cargo test -p sqlite-s3 --lib --test behaviour --test shared "$@"
