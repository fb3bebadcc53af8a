#!/bin/sh
# browser.sh - browser tests of the web page (tests/browser/test.mjs):
# Playwright (playwright-core from npm, no browser download) drives
# Debian's chromium (/usr/bin/chromium, from scripts/deps.sh) against the
# real binary ($LODE) and the test LLM server, and runs axe-core in the
# page.  npm packages come from the committed package-lock.json into the
# git-ignored tests/browser/node_modules, installed again only when the
# lock file changes (so once cached, runs need no network).  Run by
# `make test`.
set -u
cd "$(dirname "$0")/.."
LODE=${LODE:-$PWD/lode}
export LODE
if [ ! -x /usr/bin/chromium ]; then
    echo "browser.sh: /usr/bin/chromium is missing (make deps installs Debian's chromium)" >&2
    exit 1
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "browser.sh: node and npm are needed" >&2
    exit 1
fi
if [ ! -f models/all-MiniLM-L6-v2-q8_0.gguf ]; then
    echo "browser.sh: models/all-MiniLM-L6-v2-q8_0.gguf is missing (make model)" >&2
    exit 1
fi
PY=$(scripts/test_venv.sh) || {
    echo "browser.sh: could not set up the test virtualenv" >&2
    exit 1
}
export PY
stamp=tests/browser/node_modules/.lode-lock
if ! cmp -s tests/browser/package-lock.json "$stamp" 2>/dev/null; then
    (cd tests/browser && npm ci --prefer-offline --no-audit --no-fund \
        --loglevel=error >&2) || {
        echo "browser.sh: npm ci failed" >&2
        exit 1
    }
    cp tests/browser/package-lock.json "$stamp"
fi
exec node tests/browser/test.mjs "$@"
