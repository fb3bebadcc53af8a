#!/bin/sh
# keyword.sh - the keyword index and `lode eval` from the command line:
# a store written before the keyword index (tests/ref/schema1.db, see
# test_store.c, which also covers opening it read-only) is upgraded by the
# first `lode search` that may write it and then answers keyword and
# hybrid searches; `lode eval` prints its table and JSON and refuses bad
# files.
# Run by `make test` with LODE set to the binary.
set -u
LODE=${LODE:-./lode}
MODEL=tests/ref/tiny-uncased-max
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL keyword.sh: $*" >&2; }
py() {  # py LABEL FILE... < script
    label=$1
    shift
    if python3 - "$@" >"$TMP/py" 2>&1; then ok; else bad "$label: $(tail -n 3 "$TMP/py")"; fi
}

# Writable: the first search upgrades it; keyword needs no model.
cp tests/ref/schema1.db "$TMP/old.db"
"$LODE" search --db "$TMP/old.db" --mode keyword -k 3 cafe >"$TMP/out" 2>"$TMP/err" ||
    bad "keyword search of schema 1: $(cat "$TMP/err")"
py "keyword search after the upgrade" "$TMP/out" "$TMP/old.db" <<'PY'
import json, sqlite3, sys
out = json.load(open(sys.argv[1]))
assert out["mode"] == "keyword", out
res = out["results"]
assert res and {r["source"] for r in res} == {"docs/cafe.md"}, res
assert res[0]["retrievers"]["keyword"]["rank"] == 1 and "similarity" not in res[0]
db = sqlite3.connect(sys.argv[2])
assert db.execute("PRAGMA user_version").fetchone()[0] == 3
db.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('integrity-check')")
assert db.execute("SELECT count(*) FROM chunks_fts_docsize").fetchone()[0] == 7
PY
"$LODE" search --db "$TMP/old.db" -m "$MODEL" -k 2 "form HR-2024-07" >"$TMP/out" 2>"$TMP/err" ||
    bad "hybrid search: $(cat "$TMP/err")"
py "hybrid finds the identifier" "$TMP/out" <<'PY'
import json, sys
out = json.load(open(sys.argv[1]))
assert out["mode"] == "hybrid" and out["fusion"] == "convex" and out["alpha"] == 0.5, out
top = out["results"][0]
assert "HR-2024-07" in top["text"] and top["retrievers"]["keyword"]["rank"] == 1, top
PY
# another collection's chunks never come back
"$LODE" search --db "$TMP/old.db" --collection other --mode keyword leave bicycles >"$TMP/out" 2>"$TMP/err" ||
    bad "keyword search of 'other': $(cat "$TMP/err")"
py "one collection only" "$TMP/out" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
assert [r["source"] for r in res] == ["other/parking.txt"], res
PY

# lode eval: the table, JSON, and refusals.
cat >"$TMP/q.jsonl" <<'Q'
{"query": "annual leave days", "relevant": ["docs/leave.md"], "passage": "25 days of annual leave", "kind": "a"}
{"query": "refund of travel receipts TRV_991", "relevant": ["docs/travel.txt"], "kind": "b"}

{"query": "a question nobody labelled", "relevant": []}
Q
"$LODE" eval --db "$TMP/old.db" -m "$MODEL" -k 2 --by-kind "$TMP/q.jsonl" >"$TMP/out" 2>"$TMP/err" ||
    bad "eval: $(cat "$TMP/err")"
grep -q '2 queries judged, 1 without relevant items skipped; k = 2' "$TMP/out" &&
    grep -q '^hybrid convex a=0.50' "$TMP/out" && grep -q '^keyword ' "$TMP/out" &&
    grep -q 'recall@2' "$TMP/out" && grep -q '^  b ' "$TMP/out" && ok ||
    bad "eval table: $(cat "$TMP/out")"
"$LODE" eval --db "$TMP/old.db" --mode keyword -k 2 --json "$TMP/q.jsonl" >"$TMP/out" 2>"$TMP/err" ||
    bad "eval --json: $(cat "$TMP/err")"
py "eval json" "$TMP/out" <<'PY'
import json, sys
out = json.load(open(sys.argv[1]))
assert out["queries"] == 2 and out["skipped"] == 1 and out["missing_relevant"] == 0
(r,) = out["results"]
assert r["config"] == "keyword" and r["recall@2"] == 1.0 and r["mrr"] == 1.0, r
assert r["passage@2"] == 1.0, r
PY
printf '{"query": "x", "relevant": ["docs/leave.md"]}\n{"query": ' >"$TMP/bad.jsonl"
"$LODE" eval --db "$TMP/old.db" --mode keyword "$TMP/bad.jsonl" >/dev/null 2>"$TMP/err"
[ $? -eq 1 ] && grep -q "line 2" "$TMP/err" && ok || bad "bad queries file: $(cat "$TMP/err")"
"$LODE" eval --db "$TMP/old.db" --mode fastest "$TMP/q.jsonl" >/dev/null 2>&1
[ $? -eq 2 ] && ok || bad "bad --mode is a usage error"
"$LODE" eval --db "$TMP/old.db" --alpha 3 "$TMP/q.jsonl" >/dev/null 2>&1
[ $? -eq 2 ] && ok || bad "bad --alpha is a usage error"
printf '{"query": "leave", "relevant": ["docs/nothing.md"]}\n' >"$TMP/miss.jsonl"
"$LODE" eval --db "$TMP/old.db" --mode keyword "$TMP/miss.jsonl" >/dev/null 2>"$TMP/err" &&
    grep -q "1 relevant items name no document" "$TMP/err" && ok ||
    bad "labels that name nothing: $(cat "$TMP/err")"

echo "keyword.sh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
