# Sourced by scripts/test.sh and scripts/bench.sh, from the repository root:
# makes sure .venv holds the pinned moto S3 server (and any extra packages
# named in $EXTRA_PIP), then exports the variables the test support reads.
# Needs Python 3 with pip (python3, or $PYTHON).

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
for package in ${EXTRA_PIP:-}; do
    if ! "$VENV_PYTHON" -c "import ${package%%[=<>]*}" 2>/dev/null; then
        echo "installing $package into .venv"
        "$VENV_PYTHON" -m pip install --quiet --disable-pip-version-check --no-input "$package"
    fi
done

export SQLITE_S3_MOTO_PYTHON="$VENV_PYTHON"
export SQLITE_S3_REQUIRE_MOTO=1
