#!/bin/sh
# server.sh - end-to-end tests of `lode serve`: the pytest suite in
# tests/server/ starts the real binary ($LODE) on free ports with temporary
# databases and drives it over real sockets with requests, httpx, raw
# sockets and the OpenAI Python SDK.  Creates or reuses the virtualenv
# .venv-test (git-ignored) through scripts/test_venv.sh.  Run by `make test`.
set -u
cd "$(dirname "$0")/.."
LODE=${LODE:-$PWD/lode}
export LODE
if [ ! -f models/all-MiniLM-L6-v2-q8_0.gguf ]; then
    echo "server.sh: models/all-MiniLM-L6-v2-q8_0.gguf is missing (make model)" >&2
    exit 1
fi
PY=$(scripts/test_venv.sh) || {
    echo "server.sh: could not set up the test virtualenv" >&2
    exit 1
}
exec "$PY" -m pytest -q -p no:cacheprovider tests/server "$@"
