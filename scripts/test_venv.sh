#!/bin/sh
# test_venv.sh - create or update the git-ignored virtualenv .venv-test with
# the Python tools the end-to-end tests use (tests/requirements.txt, all
# from PyPI), and print its python's path.  Idempotent: packages are
# installed only when the requirements file changed since the last run.
set -eu
cd "$(dirname "$0")/.."
VENV=.venv-test
REQ=tests/requirements.txt
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        --upgrade pip >&2
fi
if ! cmp -s "$REQ" "$VENV/.installed" 2>/dev/null; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r "$REQ" >&2
    cp "$REQ" "$VENV/.installed"
fi
echo "$PWD/$VENV/bin/python"
