#!/bin/sh
# docs.sh - end-to-end tests of PDF, DOCX and ODT ingestion and of
# `lode ingest --watch`: fixtures written at test time by
# tests/make_fixtures.py (and an encrypted PDF by `mutool clean -E`); page
# numbers reach `lode search`; the title from the PDF's Info dictionary,
# headings from the PDF outline and the
# office paragraph styles, lists and tables become text; a scan, a
# password-protected PDF, a zip bomb, a zip of too many entries and a
# truncated file of each kind are refused by name with the reason and
# counted as failed while the rest of the run goes on; a watched folder
# picks up a file added, changed and removed while it runs.
# Run by `make test` with LODE set to the binary.
set -u
LODE=${LODE:-./lode}
TMP=$(mktemp -d)
WATCH_PID=""
trap '[ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null; rm -rf "$TMP"' EXIT
DB=$TMP/t.db
passed=0 failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL docs.sh: $*" >&2; }
py() {
    what=$1
    shift
    if python3 - "$@" >"$TMP/pyerr" 2>&1; then ok; else
        bad "$what: $(tail -n 3 "$TMP/pyerr")"
    fi
}
# wait_until WHAT CMD...: poll CMD (every 0.1 s, 60 s at most) until it
# succeeds.
wait_until() {
    what=$1
    shift
    i=0
    while ! "$@" >/dev/null 2>&1; do
        i=$((i + 1))
        if [ "$i" -ge 600 ]; then bad "timed out waiting for $what"; return 1; fi
        sleep 0.1
    done
    ok
}

FX=$TMP/fx
python3 tests/make_fixtures.py "$FX" || bad "make_fixtures.py failed"
mutool clean -E aes-128 -U secret -O owner "$FX/paged.pdf" "$FX/locked.pdf" \
    2>/dev/null || bad "mutool clean -E"

# --- one run over every kind: 3 read, 8 refused by name ----------------------
"$LODE" ingest --db "$DB" "$FX" >"$TMP/sum" 2>"$TMP/err"
rc=$?
[ "$rc" -eq 1 ] && ok || bad "exit $rc with failed files (want 1)"
grep -q "11 files into 'default': 3 added, 0 updated, 0 unchanged, 0 removed, 8 failed" \
    "$TMP/sum" && ok || bad "summary: $(cat "$TMP/sum") $(cat "$TMP/err")"
expect_refused() {   # FILE PATTERN
    if grep -q "failed $FX/$1: .*$2" "$TMP/err"; then ok; else
        bad "$1 not refused with '$2': $(grep "$1" "$TMP/err")"
    fi
}
expect_refused scan.pdf "no text layer"
expect_refused locked.pdf "encrypted with a password"
expect_refused broken.pdf "not a readable PDF"
expect_refused bomb.docx "zip bomb.*inflates"
expect_refused many.docx "zip bomb.*entries"
expect_refused broken.docx "not a readable zip file"
expect_refused broken.odt "not a readable zip file"
expect_refused truncated.odt "not well-formed XML"

# --- page numbers and headings reach search ------------------------------------
"$LODE" search --db "$DB" -k 10 "zebra firmware before the first start" \
    >"$TMP/s1" 2>"$TMP/err" || bad "search: $(cat "$TMP/err")"
py "pdf pages, headings, office text" "$TMP/s1" "$FX" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
fx = sys.argv[2]
by = {}
for r in res:
    by.setdefault(r["source"], r)
pdf = by[fx + "/paged.pdf"]
assert (pdf["page_start"], pdf["page_end"]) == (2, 2), pdf
assert pdf["heading"] == "Install > Linux", pdf
# the Info title, its escapes and PDFDocEncoding decoded, spaces collapsed
assert pdf["title"] == "Fernhill gateway guide (2nd ed.) \u2013 \u00e9t\u00e9", pdf
for kind in ("docx", "odt"):
    d = by[fx + "/handbook." + kind]
    assert "page_start" not in d and "page_end" not in d, d
    assert d["heading"] == "Install > Linux", d
    assert d["title"] == "Fernhill handbook", d
    assert "- Download the package\n- Run the installer as root" in d["text"], d
PY
"$LODE" search --db "$DB" -k 20 "which port does the dashboard use" >"$TMP/s2" 2>&1
py "tables as rows, pages of the last page" "$TMP/s2" "$FX" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
fx = sys.argv[2]
rows = [r for r in res if r["source"].endswith(".docx") and "8443 | dashboard" in r["text"]]
assert rows and "Port | Service\n8443 | dashboard" in rows[0]["text"], res
usage = [r for r in res if r["source"] == fx + "/paged.pdf" and r["heading"] == "Usage"]
assert usage and (usage[0]["page_start"], usage[0]["page_end"]) == (3, 3), usage
PY

# --- a watched folder ------------------------------------------------------------
W=$TMP/watched WDB=$TMP/w.db
mkdir "$W"
cp "$FX/paged.pdf" "$W/"
"$LODE" ingest --watch --debounce-ms 100 --db "$WDB" "$W" >"$TMP/wout" 2>"$TMP/werr" &
WATCH_PID=$!
docs_are() { "$LODE" stats --db "$WDB" 2>/dev/null | grep -q "\"documents\": $1,"; }
wait_until "the first run" docs_are 1
cp "$FX/handbook.odt" "$W/new.odt"
wait_until "a file added" docs_are 2
found() { "$LODE" search --db "$WDB" -k 1 "$1" 2>/dev/null | grep -q "$2"; }
wait_until "the added file searchable" found "zebra firmware package" "new.odt\|paged.pdf"
python3 - "$W/next.odt" <<'PY'
import sys
sys.path.insert(0, "tests")
import make_fixtures
files = [(n, d.replace("zebra firmware", "quokka driver")) for n, d in make_fixtures.odt_files()]
make_fixtures.write_zip(sys.argv[1], files)
PY
mv "$W/next.odt" "$W/new.odt"
wait_until "a changed file re-indexed" found "quokka driver" "quokka driver"
wait_until "the run that updated it reported" grep -q "1 updated" "$TMP/wout"
rm "$W/new.odt"
wait_until "a removed file deleted" docs_are 1
kill -TERM "$WATCH_PID"
wait "$WATCH_PID"
rc=$?
WATCH_PID=""
[ "$rc" -eq 0 ] && ok || bad "--watch exit $rc after SIGTERM: $(cat "$TMP/werr")"
grep -q "stopped watching" "$TMP/werr" && ok || bad "no stop message: $(cat "$TMP/werr")"

echo "docs.sh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
