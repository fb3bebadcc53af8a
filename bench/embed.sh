#!/bin/sh
# embed.sh [ARGS...] - run the embedding benchmark (bench/embed.py): build
# lode and the default model, create or update the git-ignored virtualenv
# .venv-bench with the peers from PyPI (PyTorch's PyPI wheel is the large
# CUDA build; only its CPU side is used), then run embed.py with ARGS
# (see `bench/embed.sh --help`).  BUILD=DIR builds into DIR (default
# build), as `make BUILD=DIR` does; the converted models (GGUF, ONNX,
# OpenVINO IR and its NNCF int8, CTranslate2), the texts and the reference
# vectors are kept in DIR/embed (a later --work overrides it).  Idempotent:
# packages are installed only when the list below changed since the last
# run.  Nothing is fetched at run time but these PyPI packages: every model
# is converted from the local directory models/all-MiniLM-L6-v2 with the
# Hugging Face hub off.
set -eu
cd "$(dirname "$0")/.."
VENV=.venv-bench
PACKAGES="numpy torch sentence-transformers onnxruntime onnx onnxscript llama-cpp-python openvino nncf ctranslate2"
BUILD=${BUILD:-build}
make BUILD="$BUILD" "$BUILD/lode" "$BUILD/bench/latency" model >&2
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        --upgrade pip
fi
if [ "$(cat "$VENV/.installed" 2>/dev/null)" != "$PACKAGES" ]; then
    # shellcheck disable=SC2086 # the list is meant to split
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        $PACKAGES
    echo "$PACKAGES" >"$VENV/.installed"
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec "$VENV/bin/python" bench/embed.py --lode "$BUILD/lode" \
    --latency-bin "$BUILD/bench/latency" --work "$BUILD/embed" "$@"
