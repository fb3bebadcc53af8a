#!/bin/sh
# http.sh [OPTIONS] - HTTP benchmark of `lode serve` on loopback with wrk.
#
# Builds lode and the default model, indexes data/sample/ into a temporary
# database, starts `lode serve` on a free loopback port with its defaults
# (HTTP and encoder threads = the CPUs), waits for /health to say healthy,
# then:
#
#   1. for GET /health, POST /v1/embeddings (one short text; 32 texts) and
#      POST /search (a query embedded per request, k = 5), at each of
#      --conns connections: wrk for --duration seconds with
#      threads = min(conns, 2); requests/s, p50 and p99 latency, errors;
#   2. the RSS soak, on a freshly restarted server: one request that grows
#      the encoder's scratch to its full size, --warmup mixed
#      requests, VmRSS of the server, --soak mixed requests (health,
#      embeddings, search, document writes, replaces and deletes:
#      bench/http/soak.lua) at 16 connections, VmRSS again.
#
# The request bodies come from the Lua scripts in bench/http/.  Between
# runs the script waits until the server is idle, so work queued by one run
# (wrk stops sending, the scheduler still drains) does not slow the next,
# and until a new connection gets an answer (a wait of more than a second
# is reported as a stall).
# Prints a Markdown report and writes it to OUT/http-DATE.md.  Installs wrk
# and curl from Debian if missing (as root or through sudo, like
# scripts/deps.sh).  BUILD=DIR builds into DIR (default build).  Settings of
# the server can be changed through its environment variables (LODE_THREADS,
# LODE_HTTP_THREADS, ...: `lode serve --help`); LODE_API_KEY, LODE_READ_KEY
# and LODE_COLLECTION are cleared, as the writes rely on the loopback rule.
set -eu
cd "$(dirname "$0")/.."

usage() {
    cat <<'EOF'
usage: bench/http.sh [OPTIONS]
  --duration S    seconds per route and connection count (default 10)
  --conns LIST    connection counts, e.g. "1,16,256" (default)
  --warmup N      mixed requests before the first RSS reading (default 20000)
  --soak N        mixed requests between the RSS readings (default 100000)
  --out DIR       where http-DATE.md goes (default bench/results)
  --no-install    do not apt-get install wrk or curl
EOF
}

COMMAND="bench/http.sh${*:+ $*}"
DURATION=10
CONNS="1,16,256"
WARMUP=20000
SOAK=100000
OUT=bench/results
INSTALL=1
while [ $# -gt 0 ]; do
    case $1 in
    --duration) DURATION=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --warmup) WARMUP=$2; shift 2 ;;
    --soak) SOAK=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --no-install) INSTALL=0; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "http.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done
SOAK_CONNS=16
WRK_TIMEOUT=30s     # wrk's default 2 s would count slow 256-connection
                    # embedding batches as timeouts instead of timing them

# ---- wrk and curl from Debian (scripts/deps.sh installs them) -------------
if [ "$INSTALL" = 0 ]; then
    LODE_EXTRA_DEPS="wrk curl" scripts/deps.sh --check
else
    LODE_EXTRA_DEPS="wrk curl" scripts/deps.sh
fi

# ---- build, index, serve ----------------------------------------------------
BUILD=${BUILD:-build}
make BUILD="$BUILD" "$BUILD/lode" model >&2
LODE=$BUILD/lode
unset LODE_API_KEY LODE_READ_KEY LODE_COLLECTION

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lode-http.XXXXXX")
SERVER_PID=""
WRK_PID=""
cleanup() {
    [ -n "$WRK_PID" ] && kill "$WRK_PID" 2>/dev/null
    if [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null; then
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$LODE" ingest --db "$TMP/db" data/sample >&2

# start_server: lode serve on a free loopback port, its log in
# $TMP/serve.log; sets SERVER_PID and URL once /health says healthy.
start_server() {
    "$LODE" serve --db "$TMP/db" --host 127.0.0.1 --port 0 \
        2>"$TMP/serve.log" &
    SERVER_PID=$!
    # The port is in the first line: "lode: listening on http://H:P ..."
    port=""
    i=0
    while [ -z "$port" ]; do
        port=$(sed -n \
            's|^lode: listening on http://[^ ]*:\([0-9][0-9]*\) .*|\1|p' \
            "$TMP/serve.log")
        i=$((i + 1))
        if [ "$i" -gt 100 ] || ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "http.sh: lode serve did not start:" >&2
            cat "$TMP/serve.log" >&2
            exit 1
        fi
        [ -n "$port" ] || sleep 0.1
    done
    URL=http://127.0.0.1:$port
    i=0
    until curl -s "$URL/health" | grep -q '"status":"healthy"'; do
        i=$((i + 1))
        if [ "$i" -gt 600 ] || ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "http.sh: /health never said healthy:" >&2
            curl -s "$URL/health" >&2 || true
            cat "$TMP/serve.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "http.sh: lode serve (pid $SERVER_PID) healthy on $URL" >&2
}
stop_server() {
    kill "$SERVER_PID"
    wait "$SERVER_PID" || true
    SERVER_PID=""
}
start_server

# ---- helpers ----------------------------------------------------------------
RAW=$TMP/raw    # key value lines for bench/http_report.py
cpu_ticks() {   # utime + stime of the server, in clock ticks
    awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"
}
# Wait until the server used under 5% of one CPU over half a second (up to
# 60 s): the scheduler may still be draining what the last run queued.
wait_idle() {
    i=0
    before=$(cpu_ticks)
    while [ "$i" -lt 120 ]; do
        sleep 0.5
        after=$(cpu_ticks)
        [ $((after - before)) -le 2 ] && return 0
        before=$after
        i=$((i + 1))
    done
    echo "http.sh: server still busy after 60 s" >&2
}
# Wait until a fresh connection gets an answer from /health (up to 60 s).
# If that took more than a second, the last run left the server unable to
# take connections (e.g. its slots held by dead ones until the idle
# timeout): record it as a "stall" line for the report.
wait_responsive() {
    start=$(date +%s)
    until curl -s -m 1 -o /dev/null "$URL/health"; do
        server_alive
        [ $(($(date +%s) - start)) -ge 60 ] && break
        sleep 0.1
    done
    took=$(($(date +%s) - start))
    if [ "$took" -gt 1 ]; then
        echo "http.sh: the server took ${took}s to answer a new connection" >&2
        echo "stall route=$1 conns=$2 seconds=$took" >>"$RAW"
    fi
}
server_alive() {
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "http.sh: lode serve died; its log:" >&2
        cat "$TMP/serve.log" >&2
        exit 1
    fi
}
proc_kb() {     # proc_kb VmRSS|VmHWM: from /proc/PID/status, in kB
    awk -v key="$1:" '$1 == key {print $2}' "/proc/$SERVER_PID/status"
}

# run_wrk LABEL CONNS SCRIPT PATH: one timed run, its RESULT line to $RAW.
run_wrk() {
    threads=$(($2 < 2 ? $2 : 2))
    echo "http.sh: $1, $2 connections, ${DURATION}s" >&2
    wrk -t"$threads" -c"$2" -d"${DURATION}s" --timeout "$WRK_TIMEOUT" \
        --latency -s "bench/http/$3" "$URL$4" >"$TMP/wrk.out"
    sed 's/^/    /' "$TMP/wrk.out" >&2
    echo "bench route=$1 conns=$2 $(grep '^RESULT ' "$TMP/wrk.out" |
        sed 's/^RESULT //')" >>"$RAW"
    server_alive
    wait_idle
    wait_responsive "$1" "$2"
}

# fill_scratch: one embeddings request of 40 texts of 256 tokens (the
# model's longest), 10240 tokens, more than the encoder's batch budget
# (MODEL_TOKEN_BUDGET in src/model.h), so its scratch (kept for the life
# of the process and grown to the largest batch seen, up to that budget:
# about 31 MB at 2048 tokens) is at full size before the first RSS
# reading; otherwise its growth, as rarer and larger batches come
# together, would look like a leak.
fill_scratch() {
    sentence="The quarterly report is due at the end of next week, and the"
    text=""
    i=0
    while [ "$i" -lt 30 ]; do text="$text $sentence"; i=$((i + 1)); done
    inputs="\"$text\""
    i=1
    while [ "$i" -lt 40 ]; do inputs="$inputs, \"$text\""; i=$((i + 1)); done
    printf '{"input": [%s]}' "$inputs" >"$TMP/fill.json"
    code=$(curl -s -o /dev/null -w '%{http_code}' -H \
        'Content-Type: application/json' --data-binary @"$TMP/fill.json" \
        "$URL/v1/embeddings")
    if [ "$code" != 200 ]; then
        echo "http.sh: the scratch-filling request got HTTP $code" >&2
        exit 1
    fi
}

# run_soak LABEL N: N mixed requests (soak.lua stops each wrk thread after
# its share; wrk itself only stops on SIGINT or its duration, so once its
# worker threads are gone, it gets SIGINT and prints its summary).
run_soak() {
    echo "http.sh: $1: $2 mixed requests, $SOAK_CONNS connections" >&2
    wrk -t2 -c"$SOAK_CONNS" -d3600s --timeout "$WRK_TIMEOUT" \
        -s bench/http/soak.lua "$URL/" -- $(($2 / 2)) >"$TMP/wrk.out" &
    WRK_PID=$!
    sleep 0.5
    # shellcheck disable=SC2012 # the entries are thread ids (numbers)
    while [ "$(ls "/proc/$WRK_PID/task" 2>/dev/null | wc -l)" -gt 1 ]; do
        server_alive
        sleep 0.2
    done
    kill -INT "$WRK_PID" 2>/dev/null || true
    wait "$WRK_PID" || true
    WRK_PID=""
    sed 's/^/    /' "$TMP/wrk.out" >&2
    echo "$1 $(grep '^RESULT ' "$TMP/wrk.out" | sed 's/^RESULT //')" >>"$RAW"
    server_alive
    wait_idle
    wait_responsive "$1" "$SOAK_CONNS"
}

# ---- the runs ---------------------------------------------------------------
{
    echo "command $COMMAND"
    echo "load_before $LOAD_BEFORE"
    echo "duration_s $DURATION"
    echo "wrk_timeout $WRK_TIMEOUT"
    echo "soak_conns $SOAK_CONNS"
    echo "warmup $WARMUP"
    echo "soak $SOAK"
    echo "cpus $(nproc)"
    echo "cpu $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
    echo "lode $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(
        git diff --quiet HEAD -- src 2>/dev/null ||
        echo ' with uncommitted changes in src/')"
    echo "wrk $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f2)"
    echo "server_env $(env | grep '^LODE_' | tr '\n' ' ')"
    echo "chunks $(curl -s "$URL/collections" | tr ',' '\n' |
        sed -n 's/.*"chunks":\([0-9]*\).*/\1/p' | head -n 1)"
} >"$RAW"

wait_idle
for conns in $(echo "$CONNS" | tr ',' ' '); do
    run_wrk "GET /health" "$conns" health.lua /health
done
for conns in $(echo "$CONNS" | tr ',' ' '); do
    run_wrk "POST /v1/embeddings (1 text)" "$conns" embed1.lua /v1/embeddings
done
for conns in $(echo "$CONNS" | tr ',' ' '); do
    run_wrk "POST /v1/embeddings (32 texts)" "$conns" embed32.lua /v1/embeddings
done
for conns in $(echo "$CONNS" | tr ',' ' '); do
    run_wrk "POST /search" "$conns" search.lua /search
done

# The soak runs on a fresh server: after the 256-connection runs the heap
# has room to spare, which would hide a slow leak from VmRSS.
echo "routes_rss_kb $(proc_kb VmRSS)" >>"$RAW"
echo "routes_hwm_kb $(proc_kb VmHWM)" >>"$RAW"
stop_server
start_server
fill_scratch
run_soak warmup "$WARMUP"
echo "rss_before_kb $(proc_kb VmRSS)" >>"$RAW"
curl -s "$URL/metrics" >"$TMP/metrics-before"
# In tenths, with VmRSS after each: a leak grows steadily, a heap that is
# still settling grows early and then stays flat.
part=1
while [ "$part" -le 10 ]; do
    run_soak soak "$((SOAK * part / 10 - SOAK * (part - 1) / 10))"
    echo "soak_rss_kb $(proc_kb VmRSS)" >>"$RAW"
    part=$((part + 1))
done
echo "rss_after_kb $(proc_kb VmRSS)" >>"$RAW"
echo "soak_hwm_kb $(proc_kb VmHWM)" >>"$RAW"
curl -s "$URL/metrics" >"$TMP/metrics-after"
echo "load_after $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RAW"

mkdir -p "$OUT"
REPORT=$OUT/http-$(date +%Y-%m-%d).md
python3 bench/http_report.py "$RAW" "$TMP/metrics-before" \
    "$TMP/metrics-after" >"$REPORT"
cat "$REPORT"
echo "http.sh: written to $REPORT" >&2
