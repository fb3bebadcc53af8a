#!/bin/sh
# docs.sh - document ingest benchmark: speed (pages/s, chunks/s) and peak
# RSS of `lode ingest` on real PDF, DOCX and ODT files made from the
# machine's man pages by bench/docs_corpus.sh, and how peak RSS depends on
# the size of one PDF (100, 400 and 1200 pages).
#
#   bench/docs.sh [CORPUS_DIR] > bench/results/docs-DATE.md
#
# Every run is a fresh database, the default model (q8_0), -t 2, peak RSS
# from /usr/bin/time -v (package time).  "extract only" times mutool alone
# over the same PDFs, to separate text extraction from embedding.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
C=${1:-$ROOT/build/docs-corpus}
LODE=${LODE:-$ROOT/lode}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
[ -d "$C/pdf" ] || sh "$ROOT/bench/docs_corpus.sh" -o "$C"

pages_of() {   # total pages of the PDFs given
    t=0
    for f in "$@"; do
        p=$(mutool show "$f" trailer/Root/Pages/Count 2>/dev/null || echo 0)
        t=$((t + p))
    done
    echo "$t"
}

# run NAME PAGES PATH...: one ingest, a table row
run() {
    name=$1 pages=$2
    shift 2
    rm -f "$TMP/db"*
    /usr/bin/time -v "$LODE" ingest -t 2 --db "$TMP/db" "$@" \
        >"$TMP/out" 2>"$TMP/time" || true
    sum=$(grep '^ingest:' "$TMP/out")
    files=$(echo "$sum" | sed -n 's/^ingest: \([0-9]*\) files.*/\1/p')
    failed=$(echo "$sum" | sed -n 's/.* \([0-9]*\) failed;.*/\1/p')
    chunks=$(echo "$sum" | sed -n 's/.*; \([0-9]*\) chunks in.*/\1/p')
    secs=$(echo "$sum" | sed -n 's/.* chunks in \([0-9.]*\) s.*/\1/p')
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$TMP/time")
    mb=$(du -k "$C" >/dev/null; du -ck "$@" | tail -1 | cut -f1)
    awk -v n="$name" -v f="$files" -v fl="$failed" -v p="$pages" -v c="$chunks" \
        -v s="$secs" -v r="$rss" -v kb="$mb" 'BEGIN {
        pr = (p > 0 && s > 0) ? sprintf("%.1f", p / s) : "-"
        printf "| %s | %d (%d failed) | %.1f | %s | %d | %.1f | %s | %.1f | %.0f |\n",
            n, f, fl, kb / 1024, (p > 0 ? p : "-"), c, s, pr, (s > 0 ? c / s : 0), r / 1024
    }'
}

echo "# Document ingest, $(date -u +%Y-%m-%d)"
echo
echo "\`bench/docs.sh\` on $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')),"
echo "lode $(git -C "$ROOT" rev-parse --short HEAD), model $(basename "$(ls "$ROOT"/models/*.gguf | head -1)"),"
echo "mutool $(mutool -v 2>&1 | sed -n 's/.*version //p' | head -1)."
echo
echo "| input | files | MB | pages | chunks | seconds | pages/s | chunks/s | peak RSS MB |"
echo "|---|---|---|---|---|---|---|---|---|"
printf 'a small text file.\n' > "$TMP/one.txt"
run "baseline: one small .txt" 0 "$TMP/one.txt"
run "300 man pages as PDF" "$(pages_of "$C"/pdf/*.pdf)" "$C/pdf"
run "100 man pages as DOCX/ODT" 0 "$C/office"
run "one PDF, $(pages_of "$C/big/big.pdf") pages" "$(pages_of "$C/big/big.pdf")" "$C/big/big.pdf"
for p in 100 400 1200; do
    run "one PDF, $p pages" "$p" "$C/scale/p$p.pdf"
done
echo
start=$(date +%s.%N)
for f in "$C"/pdf/*.pdf; do mutool draw -q -F txt "$f" >/dev/null 2>&1; done
end=$(date +%s.%N)
awk -v p="$(pages_of "$C"/pdf/*.pdf)" -v s="$(echo "$end - $start" | bc)" 'BEGIN {
    printf "Extract only (mutool draw -F txt over the 300 PDFs, one process each): %d pages in %.2f s, %.0f pages/s.\n", p, s, p / s }'
