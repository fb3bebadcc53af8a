#!/bin/sh
# docs_corpus.sh - a corpus of real PDF, DOCX and ODT files for the
# document-ingest benchmark (bench/docs.sh), made from the machine's
# manual pages with Debian tools only:
#
#   bench/docs_corpus.sh [-o DIR] [--pdfs N] [--office N] [--big-pages N]
#
#   DIR/pdf/man1-NAME.pdf     N man pages of section 1 (sorted by name in
#                             the C locale, aliases and tiny pages skipped),
#                             each rendered by `groff -man -Tpdf` (gropdf)
#   DIR/office/NAME.docx|odt  N more pages rendered to text by groff
#                             -Tutf8 and written as Word and OpenDocument
#                             files (alternately) by bench/office_from_text.py
#                             (paragraphs, and the man page sections as
#                             Heading 1)
#   DIR/big/big.pdf           one PDF of at least --big-pages pages (default
#                             400): long man pages concatenated into one
#                             groff run
#   DIR/scale/pN.pdf          PDFs of 100, 400 and 1200 pages: big.pdf
#                             merged with itself and cut, to see how ingest
#                             memory depends on one file's size
#
# Deterministic on a given machine (the same pages in the same order).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/build/docs-corpus" NPDF=300 NOFFICE=100 BIG=400
while [ $# -gt 0 ]; do
    case $1 in
        -o) OUT=$2; shift ;;
        --pdfs) NPDF=$2; shift ;;
        --office) NOFFICE=$2; shift ;;
        --big-pages) BIG=$2; shift ;;
        *) echo "docs_corpus.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
export LC_ALL=C.UTF-8
command -v groff >/dev/null && [ -f /usr/share/groff/current/font/devpdf/DESC ] || {
    echo "docs_corpus.sh: needs groff with the pdf device (apt-get install groff)" >&2
    exit 1
}
rm -rf "$OUT"
mkdir -p "$OUT/pdf" "$OUT/office" "$OUT/big" "$OUT/scale" "$OUT/txt"

# Candidates: real pages (not .so aliases) of 2..200 KB of source.
find /usr/share/man/man1 -maxdepth 1 -type f -name '*.gz' | sort |
while read -r f; do
    sz=$(stat -c %s "$f")
    [ "$sz" -ge 1500 ] && [ "$sz" -le 200000 ] || continue
    case $(basename "$f") in gcloud*|bq.*|gsutil*) continue ;; esac  # not Debian's
    zcat "$f" | head -c 4096 | grep -q '^\.so ' && continue
    echo "$f"
done > "$OUT/candidates"

n=0
while read -r f && [ "$n" -lt "$NPDF" ]; do
    name=$(basename "$f" .gz)
    if zcat "$f" | timeout 60 groff -t -man -Tpdf > "$OUT/pdf/man1-$name.pdf" 2>/dev/null &&
        [ -s "$OUT/pdf/man1-$name.pdf" ]; then
        n=$((n + 1))
    else
        rm -f "$OUT/pdf/man1-$name.pdf"
    fi
done < "$OUT/candidates"

n=0
tail -n +"$((NPDF + 1))" "$OUT/candidates" | while read -r f && [ "$n" -lt "$NOFFICE" ]; do
    name=$(basename "$f" .gz)
    if zcat "$f" | timeout 60 groff -t -man -Tutf8 -P-cbou 2>/dev/null | col -bx > "$OUT/txt/$name.txt" &&
        [ -s "$OUT/txt/$name.txt" ]; then
        n=$((n + 1))
    fi
done
python3 "$ROOT/bench/office_from_text.py" "$OUT/txt" "$OUT/office"
rm -rf "$OUT/txt"

# One big PDF: the longest pages, concatenated, until BIG pages.
ls -S $(cat "$OUT/candidates") 2>/dev/null | head -n 40 > "$OUT/longest"
: > "$OUT/big.man"
while read -r f; do
    zcat "$f" >> "$OUT/big.man"
    groff -t -man -Tpdf "$OUT/big.man" > "$OUT/big/big.pdf" 2>/dev/null || true
    pages=$(mutool show "$OUT/big/big.pdf" trailer/Root/Pages/Count 2>/dev/null || echo 0)
    if [ "$pages" -ge "$BIG" ]; then break; fi
done < "$OUT/longest"
BIGPAGES=$(mutool show "$OUT/big/big.pdf" trailer/Root/Pages/Count)

# Scale: big.pdf merged with itself (mutool merge) and cut to 100, 400
# and 1200 pages.
for target in 100 400 1200; do
    k=$(( (target + BIGPAGES - 1) / BIGPAGES ))
    set --
    i=0
    while [ "$i" -lt "$k" ]; do set -- "$@" "$OUT/big/big.pdf"; i=$((i + 1)); done
    mutool merge -o "$OUT/scale/full.pdf" "$@"
    mutool clean "$OUT/scale/full.pdf" "$OUT/scale/p$target.pdf" "1-$target"
    rm -f "$OUT/scale/full.pdf"
done
rm -f "$OUT/big.man" "$OUT/longest" "$OUT/candidates"
echo "docs_corpus.sh: $(ls "$OUT/pdf" | wc -l) PDFs, $(ls "$OUT/office" | wc -l) office files," \
     "big.pdf of $(mutool show "$OUT/big/big.pdf" trailer/Root/Pages/Count) pages -> $OUT" >&2
