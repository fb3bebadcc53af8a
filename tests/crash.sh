#!/bin/sh
# crash.sh - crash consistency of the server: tests/crash.py kills
# `lode serve` with SIGKILL at random moments (50 times by default) while
# clients add and delete documents and deliver webhooks, and after every
# restart checks that the database is intact and nothing acknowledged was
# lost.  LODE_CRASH_SEED and LODE_CRASH_KILLS override the seed and the
# number of kills.  Run by `make test` with LODE set to the binary; the
# Python client comes from .venv-test (scripts/test_venv.sh).
set -u
cd "$(dirname "$0")/.."
LODE=${LODE:-./lode}
if ! PY=$(scripts/test_venv.sh); then
    echo "FAIL crash.sh: could not set up the test virtualenv" >&2
    echo "crash.sh: 0 passed, 1 failed"
    exit 1
fi
LODE=$LODE exec "$PY" tests/crash.py
