#!/bin/sh
# run_tests.sh BUILD_DIR - run every test program in BUILD_DIR/tests, then
# every tests/*.sh script (end-to-end tests against the real binary, given
# the binary's path in LODE).  Runs from the repository root; fails if any
# test fails, after running them all.
set -u
cd "$(dirname "$0")/.."
BUILD=${1:-build}
export LODE="$PWD/$BUILD/lode"
fails=0
for t in "$BUILD"/tests/test_*; do
    case "$t" in *.d) continue ;; esac
    [ -x "$t" ] || continue
    if ! "$t"; then
        echo "FAILED: $t" >&2
        fails=$((fails + 1))
    fi
done
for t in tests/*.sh; do
    [ -f "$t" ] || continue
    if ! sh "$t"; then
        echo "FAILED: $t" >&2
        fails=$((fails + 1))
    fi
done
if [ "$fails" -ne 0 ]; then
    echo "$fails test program(s) failed" >&2
    exit 1
fi
echo "all tests passed"
