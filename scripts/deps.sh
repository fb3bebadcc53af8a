#!/bin/sh
# deps.sh - install the Debian packages lode builds and tests with, if any
# are missing.  Idempotent; runs apt-get as root or through sudo.  With
# --check it only reports what is missing and exits 1 if anything is.
set -eu

PKGS="build-essential pkg-config libmicrohttpd-dev libjansson-dev libutf8proc-dev
libsqlite3-dev libcurl4-openssl-dev libssl-dev libxml2-dev libzip-dev libopenblas-dev
mupdf-tools
python3 python3-venv python3-pip python3-yaml unzip
chromium systemd"
[ -n "${LODE_EXTRA_DEPS:-}" ] && PKGS="$PKGS $LODE_EXTRA_DEPS"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

if [ "${1:-}" = "--check" ]; then
    echo "missing Debian packages:$missing" >&2
    echo "install them with: sudo apt-get install -y$missing" >&2
    exit 1
fi

if [ "$(id -u)" = 0 ]; then SUDO=""
elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"
else
    echo "deps.sh: missing packages:$missing" >&2
    echo "run as root: apt-get install -y$missing" >&2
    exit 1
fi
echo "deps.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || true
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq $missing >/dev/null
