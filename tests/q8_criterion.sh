#!/bin/sh
# q8_criterion.sh - the q8_0 model is as good as f32 where it matters: on
# the labelled question set over data/sample (bench/qa/sample.jsonl),
# q8_0's recall@5, MRR and nDCG@10 are within 1% (relative) of the f32
# model's, in vector mode (the embeddings alone) and in the default hybrid
# mode; and its vector top 10 holds at least 95% of f32's exact top 10.
# Each model indexes data/sample into its own store with the same chunks
# (same tokenizer, same chunker), so chunk ids agree and rankings compare
# directly.  On 105 judged questions one question ranked differently moves
# recall@5 by about 0.95%: the criterion allows one such question, and
# measured there is one (hybrid recall@5 1.000 against 0.990).  The
# larger corpus and the other modes are measured in bench/
# (README.md, "Retrieval quality").  Run by `make test` with LODE set.
set -u
LODE=${LODE:-./lode}
Q8=models/all-MiniLM-L6-v2-q8_0.gguf
F32=models/all-MiniLM-L6-v2
QUERIES=bench/qa/sample.jsonl
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL q8_criterion.sh: $*" >&2; }

for m in q8 f32; do
    eval "model=\$$(echo "$m" | tr a-z A-Z)"
    "$LODE" ingest --db "$TMP/$m.db" -m "$model" data/sample >/dev/null 2>"$TMP/err" ||
        bad "ingest with $m: $(cat "$TMP/err")"
    "$LODE" eval --db "$TMP/$m.db" -m "$model" --mode vector,hybrid -k 5 --json \
        "$QUERIES" >"$TMP/$m.json" 2>"$TMP/err" || bad "eval with $m: $(cat "$TMP/err")"
    "$LODE" eval --db "$TMP/$m.db" -m "$model" --mode vector -k 10 --json --rankings \
        "$QUERIES" >"$TMP/$m-top10.json" 2>"$TMP/err" || bad "rankings with $m: $(cat "$TMP/err")"
done

if python3 - "$TMP" >"$TMP/out" 2>&1 <<'PY'; then ok; cat "$TMP/out"; else bad "$(cat "$TMP/out")"; fi
import json, sqlite3, sys
tmp = sys.argv[1]
# same chunks in both stores, so chunk ids mean the same thing
rows = lambda p: sqlite3.connect(p).execute(
    "SELECT c.id, d.source, c.ordinal, c.char_start, c.char_end FROM chunks c "
    "JOIN documents d ON d.id = c.document_id ORDER BY c.id").fetchall()
assert rows(tmp + "/q8.db") == rows(tmp + "/f32.db"), "the two stores' chunks differ"
q8, f32 = (json.load(open("%s/%s.json" % (tmp, m))) for m in ("q8", "f32"))
assert q8["queries"] == f32["queries"] and q8["queries"] >= 100, q8["queries"]
worst = 0.0
for a, b in zip(q8["results"], f32["results"]):
    assert a["config"] == b["config"]
    for key in ("recall@5", "mrr", "ndcg@10"):
        rel = abs(a[key] - b[key]) / b[key]
        worst = max(worst, rel)
        assert rel <= 0.01, "%s %s: q8_0 %.4f vs f32 %.4f (%.2f%%)" % (
            a["config"], key, a[key], b[key], 100 * rel)
top = [json.load(open("%s/%s-top10.json" % (tmp, m)))["results"][0]["rankings"]
       for m in ("q8", "f32")]
shares = [len(set(x) & set(y)) / len(y) for x, y in zip(*top) if len(y) == 10]
recall10 = sum(shares) / len(shares)
assert len(shares) >= 100 and recall10 >= 0.95, (len(shares), recall10)
print("q8_criterion.sh: worst relative gap %.2f%%, recall@10 of f32's exact top 10 "
      "%.3f over %d queries" % (100 * worst, recall10, len(shares)))
PY

echo "q8_criterion.sh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
