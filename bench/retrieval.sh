#!/bin/sh
# retrieval.sh [OUT_DIR] - retrieval quality of every search mode on two
# labelled corpora, q8_0 against f32, and search latency per mode: the
# numbers of README.md's "Retrieval quality" section.
#
#   1. data/sample with the lead's question set (bench/qa/sample.jsonl),
#      indexed with the q8_0 model and with the f32 one;
#   2. Debian's man pages (sections 1 2 3 5 7 8 by bench/corpus.sh, Google
#      Cloud SDK pages left out, pages over 64 KiB too), turned into a
#      question set by bench/manqa.py: each page's NAME description is a
#      query, the page (without its NAME section) the relevant document;
#      all pages with both models (F32_PAGES=N: the first N pages, in
#      name order, for the comparison, since the f32 model indexes about
#      four times slower than q8_0);
#   3. `lode eval` on each: vector, keyword, hybrid RRF and hybrid convex
#      at ALPHAS, and the q8_0 vector top 10 against f32's exact top 10;
#   4. build/bench/hybrid_latency at 10k and 100k chunks.
# JSON results and a summary go to OUT_DIR (default
# bench/results/retrieval-DATE); stores and corpora to build/.  Slow: the
# f32 indexing dominates (about an hour on a busy 2-CPU machine).
set -eu
cd "$(dirname "$0")/.."
OUT=${1:-bench/results/retrieval-$(date +%Y-%m-%d)}
F32_PAGES=${F32_PAGES:-0}
ALPHAS=${ALPHAS:-0.2,0.3,0.4,0.5,0.6,0.7,0.8}
Q8=models/all-MiniLM-L6-v2-q8_0.gguf
F32=models/all-MiniLM-L6-v2
B=build/manqa
mkdir -p "$OUT" build
make -s lode build/bench/hybrid_latency model

# ---- corpora and stores
if [ ! -d build/mancorpus ]; then
    bench/corpus.sh --no-doc --sections "1 2 3 5 7 8" --exclude '^man1-gcloud' \
        --max-kb 64 -o build/mancorpus
fi
[ -f "$B/queries.jsonl" ] || python3 bench/manqa.py build/mancorpus "$B"
ingest() {  # DB MODEL PATH...
    db=$1 model=$2
    shift 2
    ./lode ingest --db "$db" -m "$model" "$@" | tail -n 1
}
[ -f build/sample-q8.db ] || ingest build/sample-q8.db "$Q8" data/sample
[ -f build/sample-f32.db ] || ingest build/sample-f32.db "$F32" data/sample
[ -f "$B/q8.db" ] || ingest "$B/q8.db" "$Q8" "$B/pages"
if [ "$F32_PAGES" -eq 0 ]; then
    # both models over every page
    [ -f "$B/f32.db" ] || ingest "$B/f32.db" "$F32" "$B/pages"
    SUB_Q8=$B/q8.db SUB_F32=$B/f32.db SUB_Q=$B/queries.jsonl
else
    # the first F32_PAGES pages, in name order, with both models
    ls "$B/pages" | LC_ALL=C sort | head -n "$F32_PAGES" | sed "s|^|$B/pages/|" >"$B/f32-pages"
    # shellcheck disable=SC2046 # one argument per file name (no spaces in them)
    [ -f "$B/sub-q8.db" ] || ingest "$B/sub-q8.db" "$Q8" $(cat "$B/f32-pages")
    # shellcheck disable=SC2046
    [ -f "$B/sub-f32.db" ] || ingest "$B/sub-f32.db" "$F32" $(cat "$B/f32-pages")
    python3 - "$B" <<'PY'
import json, sys
b = sys.argv[1]
pages = set(open(b + "/f32-pages").read().split())
with open(b + "/sub-queries.jsonl", "w") as out:
    for line in open(b + "/queries.jsonl"):
        if json.loads(line)["relevant"][0] in pages:
            out.write(line)
PY
    SUB_Q8=$B/sub-q8.db SUB_F32=$B/sub-f32.db SUB_Q=$B/sub-queries.jsonl
fi
# rankings compare by chunk id: both stores must hold the same chunks
python3 - build/sample-q8.db build/sample-f32.db "$SUB_Q8" "$SUB_F32" <<'PY'
import sqlite3, sys
rows = lambda p: sqlite3.connect(p).execute(
    "SELECT c.id, d.source, c.ordinal, c.char_start, c.char_end FROM chunks c "
    "JOIN documents d ON d.id = c.document_id ORDER BY c.id").fetchall()
for a, b in ((sys.argv[1], sys.argv[2]), (sys.argv[3], sys.argv[4])):
    assert rows(a) == rows(b), "%s and %s hold different chunks" % (a, b)
PY

# ---- quality
ev() {  # NAME DB MODEL QUERIES [ARGS...]
    name=$1 db=$2 model=$3 q=$4
    shift 4
    ./lode eval --db "$db" -m "$model" --json "$@" "$q" >"$OUT/$name.json"
}
ev sample-q8 build/sample-q8.db "$Q8" bench/qa/sample.jsonl --alpha "$ALPHAS" --by-kind
ev sample-f32 build/sample-f32.db "$F32" bench/qa/sample.jsonl --alpha "$ALPHAS"
ev man-q8 "$B/q8.db" "$Q8" "$B/queries.jsonl" --alpha "$ALPHAS"
if [ "$F32_PAGES" -eq 0 ]; then
    cp "$OUT/man-q8.json" "$OUT/man-sub-q8.json"
else
    ev man-sub-q8 "$SUB_Q8" "$Q8" "$SUB_Q" --alpha "$ALPHAS"
fi
ev man-sub-f32 "$SUB_F32" "$F32" "$SUB_Q" --alpha "$ALPHAS"
for s in sample man-sub; do
    case $s in sample) q8db=build/sample-q8.db f32db=build/sample-f32.db q=bench/qa/sample.jsonl ;;
               *) q8db=$SUB_Q8 f32db=$SUB_F32 q=$SUB_Q ;; esac
    ev "$s-q8-top10" "$q8db" "$Q8" "$q" --mode vector -k 10 --rankings
    ev "$s-f32-top10" "$f32db" "$F32" "$q" --mode vector -k 10 --rankings
done

# ---- latency (random vectors, real text; CPU and wall time)
for n in 10000 100000; do
    build/bench/hybrid_latency "build/latency-$n.db" "$B/pages" "$B/queries.jsonl" "$n" 500 \
        >"$OUT/latency-$n.md"
done

# ---- summary
python3 - "$OUT" <<'PY' | tee "$OUT/summary.md"
import json, sys
out = sys.argv[1]
load = lambda n: json.load(open("%s/%s.json" % (out, n)))
def table(title, name):
    d = load(name)
    print("\n%s (%d queries judged, %d skipped)\n" % (title, d["queries"], d["skipped"]))
    print("| mode | recall@5 | MRR | nDCG@10 | search p50 ms |\n|---|---|---|---|---|")
    for r in d["results"]:
        print("| %s | %.3f | %.3f | %.3f | %.2f |" % (r["config"], r["recall@5"], r["mrr"],
                                                  r["ndcg@10"], r["search_ms"]["p50"]))
table("data/sample, q8_0", "sample-q8")
table("data/sample, f32", "sample-f32")
table("man pages, q8_0", "man-q8")
table("man pages, q8_0 (the pages both models indexed)", "man-sub-q8")
table("man pages, f32 (the pages both models indexed)", "man-sub-f32")
print("\nq8_0 against f32: largest relative gap of recall@5, MRR, nDCG@10 per mode\n")
print("| corpus | mode | recall@5 | MRR | nDCG@10 |\n|---|---|---|---|---|")
for corpus, a, b in (("data/sample", "sample-q8", "sample-f32"),
                     ("man pages", "man-sub-q8", "man-sub-f32")):
    for x, y in zip(load(a)["results"], load(b)["results"]):
        gaps = ["%+.2f%%" % (100 * (x[k] - y[k]) / y[k]) for k in ("recall@5", "mrr", "ndcg@10")]
        print("| %s | %s | %s |" % (corpus, x["config"], " | ".join(gaps)))
print("\nrecall@10 of q8_0's vector top 10 against f32's exact top 10\n")
for s in ("sample", "man-sub"):
    q8, f32 = (load("%s-%s-top10" % (s, m))["results"][0]["rankings"] for m in ("q8", "f32"))
    shares = [len(set(x) & set(y)) / len(y) for x, y in zip(q8, f32) if len(y) == 10]
    print("- %s: %.3f over %d queries" % (s, sum(shares) / len(shares), len(shares)))
for n in (10000, 100000):
    print("\nlatency, %d chunks\n" % n)
    print(open("%s/latency-%d.md" % (out, n)).read().strip())
PY
