#!/bin/sh
# chat_interop.sh - lode's chat against a real LLM: Gemma 3 270M under
# llama.cpp's OpenAI-compatible server (llama-cpp-python), offline.
# tests/chat_interop.py says what is checked.  Run by `make test` with LODE
# set to the binary.
set -u
cd "$(dirname "$0")/.."
LODE=${LODE:-./lode}
if ! scripts/fetch_llm.sh || ! PY=$(scripts/test_venv.sh); then
    echo "FAIL chat_interop.sh: could not fetch the model or set up the venv" >&2
    echo "chat_interop: 0 passed, 1 failed"
    exit 1
fi
LODE=$LODE exec "$PY" tests/chat_interop.py
