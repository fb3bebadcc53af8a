#!/bin/sh
# interop.sh - lode's GGUF files against llama.cpp's own tools: the gguf
# package's reader and writer and llama-cpp-python (tests/interop.py says
# what is checked).  Run by `make test` with LODE set to the binary; the
# Python tools come from .venv-test (scripts/test_venv.sh).
set -u
cd "$(dirname "$0")/.."
LODE=${LODE:-./lode}
if ! PY=$(scripts/test_venv.sh); then
    echo "FAIL interop.sh: could not set up the test virtualenv" >&2
    echo "interop.sh: 0 passed, 1 failed"
    exit 1
fi
LODE=$LODE exec "$PY" tests/interop.py
