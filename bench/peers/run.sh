#!/bin/sh
# run.sh [ARGS...] - lode and the Python stack it replaces, side by side
# (bench/peers/run.py: cold start, memory, wrk on /search and
# /webhook/tally, as they are and under 512 MB and 10% of one CPU).
#
# Builds ./lode, the q8_0 model and data/lode.db (make lode model db);
# installs wrk and curl from Debian (scripts/deps.sh); creates or updates
# the git-ignored virtualenv .venv-peers from bench/peers/requirements.txt
# (PyPI; a few GB: PyTorch's CUDA build); builds the Python stack's
# ChromaDB from data/sample/ into build/peers/ (again only when the corpus
# or the chunker changed); then runs run.py with ARGS (--duration S,
# --mixed-cap S, --limited-deadline S, --out DIR).  Needs root for the
# cgroup (v2 memory.max and cpu.max, else v1 memory.limit_in_bytes and
# cpu.cfs_quota_us).  Writes bench/results/peers-DATE.{md,png,json}.
set -eu
cd "$(dirname "$0")/../.."
if [ "$(id -u)" != 0 ]; then
    echo "run.sh: must run as root (it creates a cgroup with limits)" >&2
    exit 1
fi
LODE_EXTRA_DEPS="wrk curl" scripts/deps.sh
make lode model db >&2

VENV=.venv-peers
REQ=bench/peers/requirements.txt
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        --upgrade pip
fi
if ! cmp -s "$REQ" "$VENV/.installed" 2>/dev/null; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r "$REQ"
    cp "$REQ" "$VENV/.installed"
fi

# The prebuilt ChromaDB, keyed by the corpus, the chunker and the packages.
key=$(cat data/sample/* bench/peers/build_db.py "$REQ" | sha256sum | cut -c1-16)
CHROMA=build/peers/chroma-$key
if [ ! -d "$CHROMA" ]; then
    echo "run.sh: building the Python stack's ChromaDB" >&2
    rm -rf build/peers/chroma-* "$CHROMA.tmp"
    mkdir -p build/peers
    HF_HUB_OFFLINE=1 "$VENV/bin/python" bench/peers/build_db.py \
        "$CHROMA.tmp" data/sample
    mv "$CHROMA.tmp" "$CHROMA"
fi

exec "$VENV/bin/python" bench/peers/run.py --lode "$PWD/lode" \
    --db data/lode.db --chroma "$CHROMA" --python "$PWD/$VENV/bin/python" \
    --command "bench/peers/run.sh${*:+ $*}" "$@"
