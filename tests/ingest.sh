#!/bin/sh
# ingest.sh - end-to-end tests of ingest, search, collections, delete,
# stats and vacuum on a temporary database: the sample corpus answers a
# leave question with the leave policy; re-ingesting is incremental (only
# changed files are embedded, --sync removes deleted ones); HTML loses its
# script/style/nav; JSON and JSONL records keep their ids and fields; bad
# input gives a clear message and exit 1 (2 for usage), never a crash.
# Run by `make test` with LODE set to the binary.
set -u
LODE=${LODE:-./lode}
TMP=$(mktemp -d)
trap 'chmod -R u+rw "$TMP" 2>/dev/null; rm -rf "$TMP"' EXIT
DB=$TMP/t.db
passed=0 failed=0

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL ingest.sh: $*" >&2; }

# expect_error WHAT PATTERN CMD...: CMD exits 1 (EXPECT_RC to change) and
# stderr matches PATTERN.
expect_error() {
    what=$1 pattern=$2
    shift 2
    "$@" >"$TMP/out" 2>"$TMP/err" </dev/null
    rc=$?
    if [ "$rc" -ne "${EXPECT_RC:-1}" ]; then
        bad "$what: exit $rc (want ${EXPECT_RC:-1}): $(cat "$TMP/err")"
    elif ! grep -qi -- "$pattern" "$TMP/err"; then
        bad "$what: message '$(cat "$TMP/err")' lacks '$pattern'"
    else
        ok
    fi
}

# expect_summary WHAT PATTERN: the last ingest summary matches PATTERN.
expect_summary() {
    if grep -q -- "$2" "$TMP/sum"; then ok; else
        bad "$1: summary '$(cat "$TMP/sum")' lacks '$2'"
    fi
}

# py SCRIPT ARGS...: run a Python check, pass or fail with its message.
py() {
    what=$1
    shift
    if python3 - "$@" >"$TMP/pyerr" 2>&1; then ok; else
        bad "$what: $(tail -n 3 "$TMP/pyerr")"
    fi
}

cp -r data/sample "$TMP/docs"
N=$(find "$TMP/docs" -type f \( -name '*.md' -o -name '*.html' \) | wc -l)

# --- ingest the sample corpus and ask it a question --------------------------
if "$LODE" ingest --db "$DB" "$TMP/docs" >"$TMP/sum" 2>"$TMP/err"; then ok; else
    bad "ingest sample: $(cat "$TMP/err")"
fi
expect_summary "first ingest" "$N added, 0 updated, 0 unchanged, 0 removed, 0 failed"
[ -s "$TMP/err" ] && bad "ingest printed to stderr (not a terminal): $(cat "$TMP/err")" || ok

"$LODE" search --db "$DB" "how many vacation days do I get" >"$TMP/s1" 2>"$TMP/err" ||
    bad "search: $(cat "$TMP/err")"
py "leave question finds the leave policy" "$TMP/s1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
res = r["results"]
assert len(res) == 5, len(res)
top = res[0]
assert top["source"].endswith("annual-leave.md"), top["source"]
assert "25 days" in top["text"], top["text"]
assert top["heading"].startswith("Annual Leave"), top["heading"]
assert top["title"] == "Annual Leave (Vacation) Policy", top["title"]
scores = [x["score"] for x in res]
assert scores == sorted(scores, reverse=True), scores
PY

# Offsets cite the exact span of the source (code points).
py "offsets cite the source" "$TMP/s1" <<'PY'
import json, sys
for x in json.load(open(sys.argv[1]))["results"]:
    src = x["source"]
    if not src.endswith(".md"):
        continue
    text = open(src, encoding="utf-8").read()
    assert text[x["char_start"]:x["char_end"]] == x["text"], (src, x["char_start"])
PY

# -k, --min-score and --where.
"$LODE" search --db "$DB" -k 2 --min-score 0.3 \
    --where '{"source": {"$ne": "nothing"}}' "sick days" >"$TMP/s2" 2>"$TMP/err" ||
    bad "search with options: $(cat "$TMP/err")"
py "search options" "$TMP/s2" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
# --min-score is a floor on the similarity, whatever the mode
assert 1 <= len(res) <= 2 and all(x["similarity"] >= 0.3 for x in res), res
assert res[0]["source"].endswith("sick-leave.md"), res[0]["source"]
PY

# HTML: text without script, style or navigation; headings kept.
"$LODE" search --db "$DB" -k 100 --where "{\"source\": \"$TMP/docs/benefits.html\"}" \
    "benefits" >"$TMP/s3" 2>"$TMP/err" || bad "search html: $(cat "$TMP/err")"
py "html extracted" "$TMP/s3" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
assert len(res) >= 3, len(res)
text = "\n".join(x["text"] for x in res)
for junk in ("addEventListener", "font:", "<p", "&middot;", "Home \u00b7 People Team"):
    assert junk not in text, junk
assert "## Health insurance" in text
assert any(x["heading"] == "Benefits Overview > Pension" for x in res)
assert res[0]["title"].startswith("Benefits Overview"), res[0]["title"]
PY

# --- incremental re-ingest -------------------------------------------------------
"$LODE" ingest --db "$DB" "$TMP/docs" >"$TMP/sum" 2>"$TMP/err" || bad "re-ingest: $(cat "$TMP/err")"
expect_summary "re-ingest" "0 added, 0 updated, $N unchanged, 0 removed, 0 failed; 0 chunks"

printf '\n## Sabbatical\n\nAfter seven years you may take a sabbatical of three months.\n' \
    >>"$TMP/docs/annual-leave.md"
"$LODE" ingest --db "$DB" "$TMP/docs" >"$TMP/sum" 2>"$TMP/err" || bad "modified: $(cat "$TMP/err")"
expect_summary "one file modified" "0 added, 1 updated, $((N - 1)) unchanged, 0 removed"
"$LODE" search --db "$DB" -k 1 "sabbatical after seven years" >"$TMP/s4" 2>&1
py "modified file searchable" "$TMP/s4" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
assert res[0]["heading"].endswith("Sabbatical"), res[0]
PY

rm "$TMP/docs/sick-leave.md"
"$LODE" ingest --db "$DB" "$TMP/docs" >"$TMP/sum" 2>"$TMP/err" || bad "no sync: $(cat "$TMP/err")"
expect_summary "deleted file without --sync" "0 removed"
"$LODE" ingest --db "$DB" --sync "$TMP/docs" >"$TMP/sum" 2>"$TMP/err" || bad "sync: $(cat "$TMP/err")"
expect_summary "deleted file with --sync" "0 added, 0 updated, $((N - 1)) unchanged, 1 removed"
"$LODE" collections --db "$DB" >"$TMP/c1" 2>"$TMP/err" || bad "collections: $(cat "$TMP/err")"
py "collections" "$TMP/c1" "$((N - 1))" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
assert len(c) == 1 and c[0]["name"] == "default", c
assert c[0]["documents"] == int(sys.argv[2]), c
assert c[0]["model_id"] == "all-MiniLM-L6-v2-q8_0.gguf:q8_0", c
assert c[0]["dimension"] == 384 and c[0]["distance"] == "cosine", c
PY

# --- JSON and JSONL records --------------------------------------------------------
cat >"$TMP/recs.jsonl" <<'EOF'
{"id": "r1", "body": "The canteen serves vegetarian lunch every day.", "lang": "en", "floor": 2}
{"id": "r2", "body": "A cantina serve almoço vegetariano todos os dias.", "lang": "pt", "floor": 2}

{"id": "r3", "body": "Parking spaces are allocated by lottery each quarter.", "lang": "en", "floor": 0}
EOF
cat >"$TMP/recs.json" <<'EOF'
[{"id": 10, "body": "Bicycles may be stored in the basement.", "lang": "en"},
 {"body": "Record without an id about lockers.", "lang": "en"}]
EOF
"$LODE" ingest --db "$DB" --collection recs --text-field body --meta-fields lang \
    "$TMP/recs.jsonl" "$TMP/recs.json" >"$TMP/sum" 2>"$TMP/err" ||
    bad "ingest records: $(cat "$TMP/err")"
expect_summary "records" "2 files into 'recs': 5 added"
"$LODE" search --db "$DB" --collection recs --where '{"lang": "pt"}' -k 5 \
    "vegetarian food" >"$TMP/s5" 2>"$TMP/err" || bad "search records: $(cat "$TMP/err")"
py "records with fields" "$TMP/s5" "$TMP" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
assert len(res) == 1, res
r = res[0]
assert r["external_id"] == "r2" and r["source"] == sys.argv[2] + "/recs.jsonl#r2", r
assert r["text"].startswith("A cantina"), r
PY
"$LODE" search --db "$DB" --collection recs --where '{"floor": 0}' "parking" >"$TMP/s6" 2>&1
py "unchosen fields are not metadata" "$TMP/s6" <<'PY'
import json, sys
assert json.load(open(sys.argv[1]))["results"] == []
PY
"$LODE" search --db "$DB" --collection recs -k 5 "where can I put my bike" >"$TMP/s7" 2>&1
py "json array records" "$TMP/s7" "$TMP" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
assert res[0]["external_id"] == "10", res[0]
srcs = {x["source"] for x in res}
assert sys.argv[2] + "/recs.json#2" in srcs, srcs
PY
# A record removed from its file goes with --sync; unchanged ones stay.
grep -v '"r3"' "$TMP/recs.jsonl" >"$TMP/recs2" && mv "$TMP/recs2" "$TMP/recs.jsonl"
"$LODE" ingest --db "$DB" --collection recs --text-field body --meta-fields lang --sync \
    "$TMP/recs.jsonl" "$TMP/recs.json" >"$TMP/sum" 2>"$TMP/err" ||
    bad "sync records: $(cat "$TMP/err")"
expect_summary "record removed" "0 added, 0 updated, 4 unchanged, 1 removed"

# --- delete, stats, vacuum --------------------------------------------------------
"$LODE" delete --db "$DB" --collection recs --where '{"lang": "pt"}' >"$TMP/d1" 2>"$TMP/err" ||
    bad "delete where: $(cat "$TMP/err")"
grep -q '"deleted": 1' "$TMP/d1" && ok || bad "delete where: $(cat "$TMP/d1")"
id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["results"][0]["document_id"])' "$TMP/s7")
"$LODE" delete --db "$DB" --collection recs --id "$id" >"$TMP/d2" 2>"$TMP/err" &&
    grep -q '"deleted": 1' "$TMP/d2" && ok || bad "delete id: $(cat "$TMP/err")"
expect_error "delete id again" "no document with id" "$LODE" delete --db "$DB" --collection recs --id "$id"
expect_error "delete id of another collection" "collection 'default'" \
    "$LODE" delete --db "$DB" --collection recs --id 1
"$LODE" stats --db "$DB" >"$TMP/st" 2>"$TMP/err" || bad "stats: $(cat "$TMP/err")"
py "stats" "$TMP/st" "$((N - 1 + 2))" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["collections"] == 2 and s["documents"] == int(sys.argv[2]), s
assert s["chunks"] > s["documents"] and s["bytes_on_disk"] > 0, s
assert s["bytes_in_memory"] >= s["chunks"] * 384 * 4, s
PY
"$LODE" delete --db "$DB" --collection recs --all >"$TMP/d3" 2>"$TMP/err" &&
    grep -q '"deleted": 2' "$TMP/d3" && ok || bad "delete all: $(cat "$TMP/err") $(cat "$TMP/d3")"
"$LODE" vacuum --db "$DB" >"$TMP/v" 2>"$TMP/err" && grep -q bytes_after "$TMP/v" && ok ||
    bad "vacuum: $(cat "$TMP/err")"
"$LODE" stats --db "$DB" --collection default >"$TMP/st" 2>"$TMP/err" &&
    grep -q "\"documents\": $((N - 1))" "$TMP/st" && ok || bad "stats after: $(cat "$TMP/st")"

# --- a document longer than one embedding batch ----------------------------------------
# Written INGEST_BATCH (256) chunks at a time inside its one transaction:
# every chunk's vector is its own text's (a chunk's text as the query finds
# that chunk first, on both sides of each piece's edge), and re-ingesting
# a changed version replaces it whole.
mkdir "$TMP/long"
python3 - "$TMP/long/long.txt" 700 <<'PY'
import sys
words = ["harbour", "lantern", "orchard", "granite", "meadow", "copper", "falcon", "willow"]
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write("Sentence %d tells of the %s and the %s near marker%d.\n"
                % (i, words[i % 8], words[(i * 3 + 1) % 8], i))
PY
LDB=$TMP/long.db
"$LODE" ingest --db "$LDB" --chunk-tokens 32 --overlap 8 "$TMP/long" >"$TMP/out" 2>"$TMP/err" ||
    bad "long ingest: $(cat "$TMP/err")"
long_check() {  # WHAT: one document, its ordinals 0..n-1, one vector per chunk, n > 512
    py "$1" "$LDB" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
(docs,), = db.execute("SELECT count(*) FROM documents")
ords = [r[0] for r in db.execute("SELECT ordinal FROM chunks ORDER BY ordinal")]
(vecs,), = db.execute("SELECT count(*) FROM vectors")
assert docs == 1 and ords == list(range(len(ords))) and vecs == len(ords), (docs, len(ords), vecs)
assert len(ords) > 512, len(ords)
assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
db.execute("INSERT INTO chunks_fts(chunks_fts) VALUES('integrity-check')")
PY
}
long_check "long document stored whole"
for ord in 0 255 256 257 511 512 last; do
    if [ "$ord" = last ]; then
        q=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT text FROM chunks ORDER BY ordinal DESC LIMIT 1").fetchone()[0])' "$LDB")
    else
        q=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT text FROM chunks WHERE ordinal = ?", (int(sys.argv[2]),)).fetchone()[0])' "$LDB" "$ord")
    fi
    "$LODE" search --db "$LDB" --mode vector -k 1 "$q" >"$TMP/s" 2>"$TMP/err" || bad "long search $ord: $(cat "$TMP/err")"
    py "chunk $ord's vector is its text's" "$TMP/s" "$q" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"][0]
assert r["text"] == sys.argv[2] and r["score"] > 0.999, (r["ordinal"], r["score"])
PY
done
python3 - "$TMP/long/long.txt" 1300 <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        f.write("Line %d: a changed version about marker%d.\n" % (i, i))
PY
"$LODE" ingest --db "$LDB" --chunk-tokens 32 --overlap 8 "$TMP/long" >"$TMP/out" 2>"$TMP/err" ||
    bad "long re-ingest: $(cat "$TMP/err")"
grep -q "0 added, 1 updated" "$TMP/out" && ok || bad "long re-ingest summary: $(cat "$TMP/out")"
long_check "changed long document replaced whole"
py "no chunk of the old version left" "$LDB" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
assert db.execute("SELECT count(*) FROM chunks WHERE text LIKE '%Sentence%'").fetchone()[0] == 0
PY

# --- bad input ------------------------------------------------------------------------
mkdir "$TMP/mixed"
printf '# Good\n\nA fine file.\n' >"$TMP/mixed/good.md"
printf 'bad \377 byte\n' >"$TMP/mixed/bad.txt"
printf '[{"text": 1}]' >"$TMP/mixed/bad.json"
printf 'ignored' >"$TMP/mixed/image.png"
printf 'hidden' >"$TMP/mixed/.hidden.md"
expect_error "invalid UTF-8 file" "bad.txt: invalid UTF-8 at byte offset 4" \
    "$LODE" ingest --db "$DB" --collection mixed "$TMP/mixed"
grep -q "bad.json: record 1: field \"text\" is not a string" "$TMP/err" && ok ||
    bad "bad json message: $(cat "$TMP/err")"
grep -q "skipping .*image.png: unknown extension" "$TMP/err" && ok ||
    bad "unknown extension note: $(cat "$TMP/err")"
grep -q "hidden" "$TMP/err" && bad "hidden file not skipped" || ok
grep -q "1 added, 0 updated, 0 unchanged, 0 removed, 2 failed" "$TMP/out" && ok ||
    bad "good file ingested despite bad ones: $(cat "$TMP/out")"

expect_error "missing path" "No such file" "$LODE" ingest --db "$DB" "$TMP/nope"
if [ "$(id -u)" -ne 0 ]; then
    printf 'secret\n' >"$TMP/mixed/locked.md"
    chmod 000 "$TMP/mixed/locked.md"
    expect_error "unreadable file" "locked.md: Permission denied" \
        "$LODE" ingest --db "$DB" --collection mixed "$TMP/mixed"
fi
expect_error "bad --where JSON" "filter is not valid JSON" \
    "$LODE" search --db "$DB" --where '{"lang": ' "question"
expect_error "bad --where operator" "\$bogus" \
    "$LODE" search --db "$DB" --where '{"lang": {"$bogus": 1}}' "question"
expect_error "chunks over max_seq_length" "at most 254" \
    "$LODE" ingest --db "$DB" --chunk-tokens 1000 "$TMP/mixed/good.md"
expect_error "missing database" "does not exist" "$LODE" search --db "$TMP/none.db" "q"
expect_error "unknown collection" "recs" "$LODE" search --db "$DB" --collection recs "q"
expect_error "another model" "all-MiniLM-L6-v2:f32" \
    "$LODE" ingest --db "$DB" -m models/all-MiniLM-L6-v2 "$TMP/mixed/good.md"
EXPECT_RC=2 expect_error "ingest without paths" "at least one" "$LODE" ingest --db "$DB"
EXPECT_RC=2 expect_error "search without query" "QUERY" "$LODE" search --db "$DB"
EXPECT_RC=2 expect_error "delete without mode" "exactly one" "$LODE" delete --db "$DB"
EXPECT_RC=2 expect_error "unknown option" "unknown option" "$LODE" ingest --bogus x
EXPECT_RC=2 expect_error "bad -k" "-k" "$LODE" search -k 0 q

echo "ingest.sh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
