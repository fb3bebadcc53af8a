#!/bin/sh
# run.sh - run the libFuzzer targets built by `make fuzz` (fuzz/README.md).
#
#   fuzz/run.sh BUILD SECONDS [TARGET...]  fuzz each target for SECONDS
#   fuzz/run.sh --smoke BUILD [TARGET...]  run each corpus file once
#
# TARGET is a name like gguf (for BUILD/fuzz_gguf); default: every
# fuzz/fuzz_*.c.  Fuzzing reads the committed corpus fuzz/corpus/TARGET/
# but writes what it finds to BUILD/corpus/TARGET/ (git-ignored), so a run
# never changes the tree; a crashing input lands in BUILD/artifacts/.  Runs
# every target, then fails if any of them crashed.  Logs: BUILD/logs/.
set -u
cd "$(dirname "$0")/.."

smoke=0
if [ "${1:-}" = "--smoke" ]; then
    smoke=1
    shift
fi
BUILD=${1:?usage: fuzz/run.sh [--smoke] BUILD [SECONDS] [TARGET...]}
shift
if [ "$smoke" = 0 ]; then
    SECONDS_EACH=${1:?usage: fuzz/run.sh BUILD SECONDS [TARGET...]}
    shift
fi
if [ "$#" -eq 0 ]; then
    for src in fuzz/fuzz_*.c; do
        t=${src#fuzz/fuzz_}
        set -- "$@" "${t%.c}"
    done
fi

mkdir -p "$BUILD/logs" "$BUILD/artifacts"
fails=0
for t in "$@"; do
    bin="$BUILD/fuzz_$t"
    log="$BUILD/logs/$t.log"
    if [ ! -x "$bin" ]; then
        echo "fuzz: $bin is not built" >&2
        fails=$((fails + 1))
        continue
    fi
    if [ "$smoke" = 1 ]; then
        # Each file once, no mutation: libFuzzer runs file arguments as
        # single inputs and exits non-zero on the first crash.
        n=$(ls "fuzz/corpus/$t" | wc -l)
        if "$bin" fuzz/corpus/"$t"/* >"$log" 2>&1; then
            echo "fuzz-smoke $t: $n inputs ok"
        else
            echo "FAILED: fuzz-smoke $t (log: $log)" >&2
            tail -n 30 "$log" >&2
            fails=$((fails + 1))
        fi
        continue
    fi
    mkdir -p "$BUILD/corpus/$t"
    dict=""
    [ -f "fuzz/$t.dict" ] && dict="-dict=fuzz/$t.dict"
    echo "fuzz $t: ${SECONDS_EACH}s (log: $log)"
    # shellcheck disable=SC2086
    if "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/$t-" $dict \
        "$BUILD/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1; then
        # The last status line: executions, coverage, features, corpus.
        grep -E '^#[0-9]+' "$log" | tail -n 1 | sed "s/^/fuzz $t: /"
        grep -E 'stat::(number_of_executed_units|average_exec_per_sec)' \
            "$log" | sed "s/^/fuzz $t: /"
    else
        echo "FAILED: fuzz $t found a crash (log: $log; input in" \
             "$BUILD/artifacts/)" >&2
        grep -E -A 25 '^==[0-9]+==ERROR|FUZZ_CHECK failed|runtime error' \
            "$log" | head -n 40 >&2
        fails=$((fails + 1))
    fi
done
if [ "$fails" -ne 0 ]; then
    echo "fuzz: $fails target(s) failed" >&2
    exit 1
fi
