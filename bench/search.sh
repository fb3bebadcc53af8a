#!/bin/sh
# search.sh [ARGS...] - run the search benchmark (bench/search.py): lode's
# store (f32 and int8) vs ChromaDB (HNSW, approximate) vs NumPy brute force
# on the same random vectors and queries, plus ingest throughput of
# `lode ingest` vs a sentence-transformers + ChromaDB pipeline.
# Builds lode and bench/search_driver.c, makes the 200-file corpus
# (build/corpus200) when missing, and creates or extends the git-ignored
# virtualenv .venv-bench (bench/embed.sh may have made it already; the
# extra packages are then just added).  BUILD=DIR as in `make BUILD=DIR`.
# Example: bench/search.sh --sizes 10000,100000,1000000 --chroma-max 100000
set -eu
cd "$(dirname "$0")/.."
VENV=.venv-bench
PACKAGES="chromadb numpy sentence-transformers"
BUILD=${BUILD:-build}
PKGS="libmicrohttpd jansson libutf8proc sqlite3 libcurl libcrypto libxml-2.0"
make BUILD="$BUILD" "$BUILD/lode" "$BUILD/liblode.a" model >&2
mkdir -p "$BUILD/bench"
# shellcheck disable=SC2046 # pkg-config output is meant to split
cc -O2 -std=c11 -D_GNU_SOURCE -Isrc $(pkg-config --cflags $PKGS) \
    -o "$BUILD/bench/search_driver" bench/search_driver.c "$BUILD/liblode.a" \
    $(pkg-config --libs $PKGS) -lm -pthread
if [ ! -d "$BUILD/corpus200" ] || [ -z "$(ls "$BUILD/corpus200")" ]; then
    bench/corpus.sh --limit 200 --force -o "$PWD/$BUILD/corpus200" >&2
fi
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        --upgrade pip
fi
if [ ! -f "$VENV/.installed-search" ] ||
    [ "$(cat "$VENV/.installed-search")" != "$PACKAGES" ]; then
    # shellcheck disable=SC2086 # the list is meant to split
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        $PACKAGES
    echo "$PACKAGES" >"$VENV/.installed-search"
fi
exec "$VENV/bin/python" bench/search.py --driver "$BUILD/bench/search_driver" \
    --lode "$BUILD/lode" --corpus "$BUILD/corpus200" "$@"
