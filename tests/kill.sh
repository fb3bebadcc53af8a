#!/bin/sh
# kill.sh - crash safety of ingestion: kill -9 `lode ingest` at random
# moments, 50 times, while it (re)writes a few hundred generated documents,
# and after every kill require an intact database: PRAGMA integrity_check
# is ok, no foreign key is dangling, every document has chunks 0..n-1 each
# with one vector of the right size, and the keyword index passes FTS5's
# integrity-check and equals an index rebuilt from the chunks.  Then a final run must finish the job
# and leave exactly what a clean single run over the same files leaves
# (same documents, chunks and search results).
#
# The tiny test model (tests/ref/tiny-uncased-max) keeps each run short:
# the point is the store's atomicity, not embedding quality.  Checks use
# Python's sqlite3 module (python3 is already a test dependency).
# Run by `make test` with LODE set to the binary; KILL_ITERATIONS overrides
# the 50 iterations.
set -u
LODE=${LODE:-./lode}
MODEL=tests/ref/tiny-uncased-max
ITER=${KILL_ITERATIONS:-50}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
DB=$TMP/kill.db
CORPUS=$TMP/corpus
passed=0 failed=0

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL kill.sh: $*" >&2; }

# A deterministic corpus: 200 Markdown and text files of generated prose,
# a few KB each, and one of 250 sections, longer than an embedding batch
# (so it is written in pieces inside its transaction, see ingest.c).
mkdir "$CORPUS"
awk -v dir="$CORPUS" 'BEGIN {
    srand(7)
    n = split("leave annual policy employee days salary office remote work " \
              "manager request approve travel expense receipt laptop security " \
              "password data holiday sick parental pension health insurance " \
              "training budget review goal team meeting contract notice period " \
              "overtime weekend shift canteen parking bicycle locker visitor " \
              "badge network printer backup incident report customer invoice", w, " ")
    for (f = 0; f <= 200; f++) {
        ext = f % 3 ? "md" : "txt"
        file = sprintf("%s/doc%03d.%s", dir, f, ext)
        for (s = 0; s < (f == 200 ? 250 : 6); s++) {
            if (ext == "md") printf "## Section %d of document %d\n\n", s, f > file
            for (p = 0; p < 2; p++) {
                line = ""
                for (k = 0; k < 40 + int(rand() * 30); k++) {
                    word = w[1 + int(rand() * n)]
                    line = line (k ? " " : "") word
                    if (rand() < 0.1) line = line "."
                }
                print line ".\n" > file
            }
        }
        close(file)
    }
}'

# check_db LABEL: the database is intact and every document complete.
check_db() {
    if python3 - "$DB" >"$TMP/check" 2>&1 <<'PY'; then ok; else bad "$1: $(tail -n 3 "$TMP/check")"; fi
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
assert db.execute("PRAGMA foreign_key_check").fetchall() == []
# The keyword index: FTS5's own check, and the index equals one built
# afresh from its content view (every term, chunk, column and position).
db.execute("INSERT INTO chunks_fts (chunks_fts) VALUES ('integrity-check')")
db.execute("CREATE VIRTUAL TABLE temp.fresh USING fts5(text, title, heading, "
           "collection, tokenize = 'unicode61 remove_diacritics 2')")
db.execute("INSERT INTO temp.fresh (rowid, text, title, heading, collection) "
           "SELECT id, text, title, heading, collection FROM chunks_fts_content")
db.execute("CREATE VIRTUAL TABLE temp.v_index USING fts5vocab(main, chunks_fts, instance)")
db.execute("CREATE VIRTUAL TABLE temp.v_fresh USING fts5vocab(temp, fresh, instance)")
stale, missing = db.execute(
    "SELECT (SELECT count(*) FROM (SELECT * FROM v_index EXCEPT SELECT * FROM v_fresh)), "
    "(SELECT count(*) FROM (SELECT * FROM v_fresh EXCEPT SELECT * FROM v_index))").fetchone()
assert stale == 0 and missing == 0, ("keyword index", stale, missing)
dims = dict(db.execute("SELECT id, dimension FROM collections"))
for doc, coll, n, lo, hi in db.execute(
        "SELECT d.id, d.collection_id, count(c.id), min(c.ordinal), max(c.ordinal) "
        "FROM documents d LEFT JOIN chunks c ON c.document_id = d.id GROUP BY d.id"):
    assert n > 0 and lo == 0 and hi == n - 1, ("document", doc, n, lo, hi)
bad = db.execute(
    "SELECT count(*) FROM chunks c LEFT JOIN vectors v ON v.chunk_id = c.id "
    "WHERE v.chunk_id IS NULL").fetchone()[0]
assert bad == 0, ("chunks without a vector", bad)
for coll, dim in dims.items():
    wrong = db.execute(
        "SELECT count(*) FROM vectors v JOIN chunks c ON c.id = v.chunk_id "
        "WHERE v.collection_id = ? AND (length(v.vector) != ? OR v.document_id != c.document_id)",
        (coll, dim * 4)).fetchone()[0]
    assert wrong == 0, ("bad vectors", wrong)
orphans = db.execute(
    "SELECT count(*) FROM vectors v LEFT JOIN chunks c ON c.id = v.chunk_id "
    "WHERE c.id IS NULL").fetchone()[0]
assert orphans == 0, ("orphan vectors", orphans)
PY
}

ingest() {
    "$LODE" ingest --db "$1" -m "$MODEL" -t 1 --sync "$CORPUS" >"$TMP/sum" 2>"$TMP/err"
}

# How long a full run takes, to aim the kills inside the runs below (each
# re-embeds about a third of the files).
start=$(date +%s%N)
ingest "$TMP/timing.db" || bad "timing run: $(cat "$TMP/err")"
full_ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$full_ms" -lt 100 ] && full_ms=100

kills=0 finished=0
i=0
while [ "$i" -lt "$ITER" ]; do
    i=$((i + 1))
    # Work for this run: rewrite a few files, delete one, bring one back.
    awk -v dir="$CORPUS" -v it="$i" 'BEGIN {
        srand(it)
        for (k = 0; k < 70; k++) {
            f = int(rand() * 200)
            file = sprintf("%s/doc%03d.%s", dir, f, f % 3 ? "md" : "txt")
            printf "Revision %d of this document adds a sentence about leave.\n\n", it >> file
            close(file)
        }
    }'
    victim=$(printf '%s/doc%03d.md' "$CORPUS" $(( (i * 37) % 200 / 3 * 3 + 1 )))
    [ $((i % 2)) -eq 0 ] && rm -f "$victim"
    [ $((i % 2)) -eq 1 ] && [ ! -e "$victim" ] && printf '# Back\n\nRestored %d.\n' "$i" >"$victim"

    delay=$(awk -v s="$i" -v ms="$full_ms" 'BEGIN { srand(s * 7919); printf "%.3f", rand() * ms / 1000 * 0.4 }')
    "$LODE" ingest --db "$DB" -m "$MODEL" -t 1 --sync "$CORPUS" >/dev/null 2>"$TMP/err" &
    pid=$!
    sleep "$delay"
    if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
    wait "$pid" 2>/dev/null
    rc=$?
    [ "$rc" -ne 137 ] && [ "$rc" -ne 0 ] && bad "iteration $i: ingest failed ($rc): $(cat "$TMP/err")"
    [ "$rc" -eq 0 ] && finished=$((finished + 1))
    check_db "after kill $i"
done
# Most runs must really have been killed, or the test tests nothing.
[ "$kills" -ge $((ITER / 2)) ] && ok || bad "only $kills of $ITER runs were killed"

# The final run completes; a clean run over the same files agrees.
ingest "$DB" || bad "final run: $(cat "$TMP/err")"
check_db "after the final run"
ingest "$DB" || bad "second final run: $(cat "$TMP/err")"
grep -q "0 added, 0 updated, [0-9]* unchanged, 0 removed, 0 failed" "$TMP/sum" && ok ||
    bad "final run left work: $(cat "$TMP/sum")"
ingest "$TMP/clean.db" || bad "clean run: $(cat "$TMP/err")"

if python3 - "$DB" "$TMP/clean.db" >"$TMP/check" 2>&1 <<'PY'; then ok; else bad "killed vs clean: $(tail -n 3 "$TMP/check")"; fi
import sqlite3, sys
def content(path):
    db = sqlite3.connect(path)
    return sorted(db.execute(
        "SELECT d.source, d.content_sha256, c.ordinal, c.text, c.char_start, "
        "c.char_end, c.token_count, c.heading, v.vector FROM documents d "
        "JOIN chunks c ON c.document_id = d.id JOIN vectors v ON v.chunk_id = c.id"))
a, b = content(sys.argv[1]), content(sys.argv[2])
assert len(a) == len(b), (len(a), len(b))
assert a == b, "contents differ"
PY

for q in "annual leave request" "password security incident" "parking bicycle"; do
    "$LODE" search --db "$DB" -m "$MODEL" -k 10 "$q" >"$TMP/a" 2>"$TMP/err" || bad "search: $(cat "$TMP/err")"
    "$LODE" search --db "$TMP/clean.db" -m "$MODEL" -k 10 "$q" >"$TMP/b" 2>&1
    if python3 - "$TMP/a" "$TMP/b" <<'PY'; then ok; else bad "search '$q' differs"; fi
import json, sys
def strip(path):
    res = json.load(open(path))["results"]
    return [(r["score"], r["source"], r["text"], r["char_start"]) for r in res]
a, b = strip(sys.argv[1]), strip(sys.argv[2])
assert len(a) == 10 and a == b
PY
done

echo "kill.sh: $passed passed, $failed failed ($kills kills, $finished runs finished, full run ${full_ms} ms)"
[ "$failed" -eq 0 ]
