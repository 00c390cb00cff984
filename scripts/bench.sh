#!/usr/bin/env bash
# Runs the benchmark (see BENCHMARKS.md): every layout at 1 MiB, 64 MiB and
# 1 GiB against a moto S3 server on loopback, then draws the chart.
# Arguments go to the benchmark, e.g. `--sizes 1,64` for a quick run.
# Writes target/bench/results.md, results.json and chart.png.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

EXTRA_PIP="matplotlib"
# shellcheck source=scripts/test-env.sh
source scripts/test-env.sh

cargo run --release -p sqlite-s3-bench -- "$@"
"$VENV_PYTHON" scripts/bench_chart.py target/bench/results.json target/bench/chart.png
echo "chart: target/bench/chart.png"
