#!/bin/sh
# corpus.sh - build a real plain-text corpus for lode's ingestion and scale
# tests, from text that nobody in this project wrote: the machine's English
# manual pages (/usr/share/man/man1, man5, man8) rendered to UTF-8 text, plus
# the README*, NEWS* and copyright files of /usr/share/doc/*.
#
#   bench/corpus.sh [-o DIR] [--limit N] [options]
#
# One .txt file per page or document, flat, in DIR (default build/corpus/ in
# the repository), named after its source: man1-ls.1.txt, man5-crontab.5.txt,
# doc-bash-README.txt, doc-zlib1g-copyright.txt.  Sources are taken in a
# fixed order (man sections in the order given, each sorted by name in the C
# locale, then /usr/share/doc sorted), so on a given machine the result is
# deterministic and `--limit N` is always a prefix of the full corpus.
# Skipped: man pages that are only aliases (`.so`) or symlinks, outputs
# smaller than --min-bytes or larger than --max-kb, binary files, and exact
# duplicates (the first in order wins).  A summary goes to stderr.
#
# Man pages are rendered with groff (package groff-base, no man-db needed);
# if it is missing, the script installs it with apt-get as root or through
# sudo, unless --no-install is given, in which case (or if installing fails)
# a crude troff stripper in awk is used instead (--fallback forces it).
#
# The hand-written demo corpus is separate: data/sample/ holds 21 policy
# documents of the fictional company Fernhill Labs (17 Markdown, 4 HTML with
# nav/footer/script/style boilerplate); see bench/README.md.
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SELF="$ROOT/bench/corpus.sh"

# ---------------------------------------------------------------- workers --
# Internal: `corpus.sh --render MODE STAGE NAME SRC [NAME SRC]...` renders
# each SRC to STAGE/NAME and prints "skip<TAB>reason<TAB>name" for the ones
# it drops.  Run in parallel by xargs.
troff_strip() {
    # A crude man(7)/mdoc(7) to text converter for machines without groff.
    awk '
    function unesc(s) {
        gsub(/\\f(\[[^]]*\]|\([A-Za-z0-9][A-Za-z0-9]|[A-Za-z0-9])/, "", s)
        gsub(/\\s[-+]?[0-9]+/, "", s)
        gsub(/\\\*(\[[^]]*\]|\(..|.)/, "", s)
        gsub(/\\\(em|\\\[em\]/, "—", s); gsub(/\\\(en|\\\[en\]/, "–", s)
        gsub(/\\\(aq|\\\[aq\]|\\\(cq|\\\(oq/, "'"'"'", s)
        gsub(/\\\(lq|\\\(rq|\\\(dq|\\\[lq\]|\\\[rq\]/, "\"", s)
        gsub(/\\\(bu|\\\[bu\]/, "•", s); gsub(/\\\(co|\\\[co\]/, "©", s)
        gsub(/\\\(hy|\\-|\\\(mi/, "-", s); gsub(/\\\(ga/, "`", s)
        gsub(/\\\(ti|\\\(ap/, "~", s); gsub(/\\\(ha/, "^", s)
        gsub(/\\\(..|\\\[[^]]*\]/, "", s)
        gsub(/\\[&|^\/,:%c]/, "", s); gsub(/\\ /, " ", s); gsub(/\\e/, "\\", s)
        gsub(/\\\{\\?|\\\}/, "", s); sub(/\\".*/, "", s)
        return s
    }
    function args(s, sep,   out, n, i, a) {
        sub(/^[.'"'"'][ \t]*[A-Za-z]+[ \t]*/, "", s)
        n = 0
        while (length(s) > 0) {
            if (s ~ /^"/) { match(s, /^"[^"]*"?/); a[++n] = substr(s, 2, RLENGTH - 1); sub(/"$/, "", a[n]) }
            else { match(s, /^[^ \t]+/); a[++n] = substr(s, 1, RLENGTH) }
            s = substr(s, RLENGTH + 1); sub(/^[ \t]+/, "", s)
        }
        out = ""
        for (i = 1; i <= n; i++) out = out (i > 1 ? sep : "") a[i]
        return out
    }
    skip && /^\.\.[ \t]*$/ { skip = 0; next }
    skip { next }
    /^[.'"'"'][ \t]*(de|de1|am|ig)([ \t]|$)/ { skip = 1; next }
    /^[.'"'"'][ \t]*\\"/ || /^'"'"''"'"''"'"'/ || /^[.'"'"'][ \t]*([^A-Za-z]|$)/ { next }
    /^[.'"'"'][ \t]*[A-Za-z]/ {
        m = $0; sub(/^[.'"'"'][ \t]*/, "", m); sub(/[ \t].*/, "", m)
        if (m == "TH" || m == "Dt") { split(args($0, " "), t, " "); print t[1] "(" t[2] ")"; print ""; next }
        if (m == "SH" || m == "SS" || m == "Sh" || m == "Ss") { print ""; print toupper(unesc(args($0, " "))); next }
        if (m == "PP" || m == "LP" || m == "P" || m == "sp" || m == "Pp" || m == "TP") { print ""; next }
        if (m ~ /^(B|I|SM|SB)$/) { print unesc(args($0, " ")); next }
        if (m ~ /^(BR|BI|IB|RB|RI|IR)$/) { print unesc(args($0, "")); next }
        if (m == "IP") { a = unesc(args($0, " ")); sub(/[ \t]+[0-9]+$/, "", a); print ""; if (a != "") print a; next }
        if (m ~ /^[A-Z][a-z]$/) { a = unesc(args($0, " ")); if (a != "") print a; next }
        next
    }
    { print unesc($0) }
    ' | cat -s
}

nobs() {  # drop backspace overstrikes
    if command -v col >/dev/null 2>&1; then col -bx; else sed 's/.\x08//g; s/\x08//g'; fi
}

render_man() {  # $1 src (gz or plain), $2 dest; returns 3 for alias
    tmp="$2.src"
    zcat -f -- "$1" > "$tmp" 2>/dev/null || { rm -f "$tmp"; return 4; }
    if grep -q '^\.so[ 	]' "$tmp" && [ "$(grep -c -v -e '^[.'"'"']\\"' -e '^[ 	]*$' "$tmp")" -le 1 ]; then
        rm -f "$tmp"; return 3
    fi
    if [ "$MODE" = groff ]; then
        # Preprocessors as man(1) picks them: the '\" line, tbl by default.
        pre="-t"
        first=$(head -n 1 "$tmp")
        case $first in
            "'\\\" "*)
                letters=${first#??? }
                case $letters in *[!egprtv]*|'') letters="" ;; esac
                case $letters in *e*) command -v eqn >/dev/null && pre="$pre -e" ;; esac
                case $letters in *p*) command -v pic >/dev/null && pre="$pre -p" ;; esac ;;
        esac
        # As man --nh --nj does: no hyphenation, no justification (the
        # requests redefined away, since mdoc turns them back on); -k:
        # preconv; -P-cbou: no overstrike, bold or underline; LL: 78
        # columns, like man with MANWIDTH=80; col -b removes the backspaces
        # grotty still emits for headers wider than the page.
        # shellcheck disable=SC2086
        { printf '.nh\n.hy 0\n.de hy\n..\n.na\n.de ad\n..\n'; cat "$tmp"; } |
            timeout 60 groff -k -mandoc $pre -Tutf8 -P-cbou -rLL=78n -rHY=0 2>/dev/null |
            nobs | sed '/./,$!d' | cat -s > "$2"
    else
        troff_strip < "$tmp" > "$2"
    fi
    rm -f "$tmp"
}

render_doc() {  # $1 src, $2 dest; returns 5 for binary
    tmp="$2.src"
    zcat -f -- "$1" > "$tmp" 2>/dev/null || { rm -f "$tmp"; return 4; }
    if tr -d '\000' < "$tmp" | cmp -s - "$tmp"; then :; else rm -f "$tmp"; return 5; fi
    if iconv -f UTF-8 -t UTF-8 < "$tmp" > /dev/null 2>&1; then
        tr '\f' '\n' < "$tmp" | tr -d '\r' > "$2"
    else
        iconv -f ISO-8859-1 -t UTF-8 < "$tmp" | tr '\f' '\n' | tr -d '\r' > "$2"
    fi
    rm -f "$tmp"
}

if [ "${1:-}" = "--render" ]; then
    MODE=$2 STAGE=$3; shift 3
    export LC_ALL=C.UTF-8
    while [ $# -ge 2 ]; do
        name=$1 src=$2; shift 2
        rc=0
        case $name in
            man*) render_man "$src" "$STAGE/$name" || rc=$? ;;
            *)    render_doc "$src" "$STAGE/$name" || rc=$? ;;
        esac
        case $rc in
            0) ;;
            3) printf 'skip\talias\t%s\n' "$name" ;;
            5) printf 'skip\tbinary\t%s\n' "$name" ;;
            *) printf 'skip\terror\t%s\n' "$name" ;;
        esac
    done
    exit 0
fi

# ------------------------------------------------------------------ main ---
usage() {
    cat <<EOF
usage: bench/corpus.sh [options]
  -o, --out DIR       output directory (default: $ROOT/build/corpus)
  -n, --limit N       stop after N files (0 = all; default 0)
  --sections LIST     man sections, in order (default: "1 5 8")
  --no-man            leave out manual pages
  --no-doc            leave out /usr/share/doc README*, NEWS*, copyright
  --changelogs        also take /usr/share/doc/*/changelog*
  --exclude ERE       leave out files whose output name matches ERE
                      (e.g. '^man1-gcloud_' for Google Cloud SDK pages)
  --min-bytes N       drop outputs smaller than N bytes (default 300)
  --max-kb N          drop outputs larger than N KiB (default 512)
  -j, --jobs N        parallel renderers (default: number of CPUs)
  --fallback          strip troff with awk instead of rendering with groff
  --no-install        never run apt-get (fall back to awk without groff)
  --force             replace DIR if it holds only .txt files from a past run
EOF
}

OUT="$ROOT/build/corpus" LIMIT=0 SECTIONS="1 5 8" MAN=1 DOC=1 CHANGELOGS=0
EXCLUDE="" MINB=300 MAXKB=512 JOBS=$(nproc 2>/dev/null || echo 2) MODE=groff INSTALL=1 FORCE=0
while [ $# -gt 0 ]; do
    case $1 in
        -o|--out) OUT=$2; shift ;;
        -n|--limit) LIMIT=$2; shift ;;
        --sections) SECTIONS=$2; shift ;;
        --no-man) MAN=0 ;;
        --no-doc) DOC=0 ;;
        --changelogs) CHANGELOGS=1 ;;
        --exclude) EXCLUDE=$2; shift ;;
        --min-bytes) MINB=$2; shift ;;
        --max-kb) MAXKB=$2; shift ;;
        -j|--jobs) JOBS=$2; shift ;;
        --fallback) MODE=awk ;;
        --no-install) INSTALL=0 ;;
        --force) FORCE=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "corpus.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
for v in "$LIMIT" "$MINB" "$MAXKB" "$JOBS"; do
    case $v in ''|*[!0-9]*) echo "corpus.sh: '$v' is not a number" >&2; exit 2 ;; esac
done
[ "$JOBS" -ge 1 ] || JOBS=1
case $OUT in /*) ;; *) OUT="$PWD/$OUT" ;; esac   # later steps run in other directories
export LC_ALL=C.UTF-8

have_pkg() {
    command -v dpkg-query >/dev/null 2>&1 &&
        dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"
}

# groff (groff-base) renders the man pages; install it if missing.
if [ "$MAN" = 1 ] && [ "$MODE" = groff ] && ! { have_pkg groff-base && command -v groff >/dev/null 2>&1; }; then
    if command -v groff >/dev/null 2>&1; then
        :   # not a Debian package, but present
    elif [ "$INSTALL" = 1 ] && command -v apt-get >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else SUDO=none; fi
        if [ "$SUDO" != none ]; then
            echo "corpus.sh: installing groff-base to render manual pages" >&2
            export DEBIAN_FRONTEND=noninteractive
            $SUDO apt-get install -y -qq --no-install-recommends groff-base >/dev/null 2>&1 ||
                { $SUDO apt-get update -qq >/dev/null 2>&1 || true
                  $SUDO apt-get install -y -qq --no-install-recommends groff-base >/dev/null 2>&1 || true; }
        fi
    fi
    if ! command -v groff >/dev/null 2>&1; then
        echo "corpus.sh: groff not available; stripping troff with awk (cruder text)" >&2
        MODE=awk
    fi
fi

# The output directory: new, empty, or (with --force) a past run's output.
if [ -d "$OUT" ] && [ -n "$(ls -A "$OUT")" ]; then
    if [ "$FORCE" = 1 ] && [ -z "$(find "$OUT" -mindepth 1 ! \( -type f -name '*.txt' \) -print -quit)" ]; then
        find "$OUT" -mindepth 1 -maxdepth 1 -type f -name '*.txt' -delete
    else
        echo "corpus.sh: $OUT is not empty (--force replaces a past run's .txt files)" >&2
        exit 1
    fi
fi
mkdir -p "$OUT"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lode-corpus.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM
mkdir "$WORK/stage"
START=$(date +%s)

# Candidate list: "group<TAB>name<TAB>source", in corpus order.
# name_list GROUP PREFIX [STRIP]: paths on stdin -> "GROUP<TAB>name<TAB>path",
# name = PREFIX + path (without STRIP, else its basename), / -> -, no .gz.
name_list() {
    awk -v g="$1" -v p="$2" -v strip="${3:-}" '{
        n = $0
        if (strip != "" && index(n, strip) == 1) n = substr(n, length(strip) + 1)
        else if (strip == "") sub(/.*\//, "", n)
        gsub(/\//, "-", n); sub(/\.gz$/, "", n); gsub(/[^A-Za-z0-9._+-]/, "_", n)
        printf "%s\t%s%s.txt\t%s\n", g, p, n, $0
    }'
}
: > "$WORK/cand"
g=0
if [ "$MAN" = 1 ]; then
    for s in $SECTIONS; do
        g=$((g + 1))
        d=/usr/share/man/man$s
        [ -d "$d" ] || continue
        find "$d" -maxdepth 1 -type f | grep -v '[	]' | sort |
            name_list "$g" "man$s-" >> "$WORK/cand"
    done
fi
if [ "$DOC" = 1 ] && [ -d /usr/share/doc ]; then
    g=$((g + 1))
    {
        find /usr/share/doc -mindepth 2 -maxdepth 2 \( -type f -o -type l \) \
            \( -name 'README*' -o -name 'NEWS*' -o -name copyright \)
        [ "$CHANGELOGS" = 1 ] && find /usr/share/doc -mindepth 2 -maxdepth 2 \
            \( -type f -o -type l \) -name 'changelog*'
        true
    } | grep -v -i -E '[	]|\.(html?|pdf|ps|dvi|png|jpe?g|gif|svg|xml|css|js)(\.gz)?$' | sort |
        name_list "$g" "doc-" /usr/share/doc/ >> "$WORK/cand"
fi
if [ -n "$EXCLUDE" ]; then
    awk -F '\t' -v re="$EXCLUDE" '$2 !~ re' "$WORK/cand" > "$WORK/cand.x"
    mv "$WORK/cand.x" "$WORK/cand"
fi
NCAND=$(wc -l < "$WORK/cand")
if [ "$MAN" = 1 ] && [ "$(grep -c '	man' "$WORK/cand" || true)" -lt 100 ]; then
    echo "corpus.sh: warning: few manual pages under /usr/share/man (a container" \
         "image that excludes them?)" >&2
fi

# Render in batches (one batch without --limit), then accept in order.
echo "corpus.sh: $NCAND candidates, rendering with $JOBS jobs ($MODE)..." >&2
: > "$WORK/seen"; : > "$WORK/skips"
ACCEPTED=0 POS=0
MAXB=$((MAXKB * 1024))
while [ "$POS" -lt "$NCAND" ]; do
    if [ "$LIMIT" -gt 0 ]; then
        NEED=$((LIMIT - ACCEPTED))
        [ "$NEED" -gt 0 ] || break
        BATCH=$((NEED + NEED / 4 + 4 * JOBS))
    else
        BATCH=$NCAND
    fi
    sed -n "$((POS + 1)),$((POS + BATCH))p" "$WORK/cand" > "$WORK/batch"
    POS=$((POS + BATCH))
    cut -f2,3 "$WORK/batch" | tr '\t\n' '\000\000' |
        xargs -0 -n 32 -P "$JOBS" sh "$SELF" --render "$MODE" "$WORK/stage" >> "$WORK/skips"
    # Size filter and duplicate check, in candidate order.
    cut -f2 "$WORK/batch" | while IFS= read -r n; do
        f="$WORK/stage/$n"
        [ -f "$f" ] || continue
        sz=$(wc -c < "$f")
        if [ "$sz" -lt "$MINB" ]; then printf 'skip\tsmall\t%s\n' "$n" >> "$WORK/skips"; rm -f "$f"
        elif [ "$sz" -gt "$MAXB" ]; then printf 'skip\thuge\t%s\n' "$n" >> "$WORK/skips"; rm -f "$f"
        else printf '%s\n' "$n"; fi
    done > "$WORK/ok"
    if [ -s "$WORK/ok" ]; then
        (cd "$WORK/stage" && tr '\n' '\000' < "$WORK/ok" | xargs -0 sha1sum) > "$WORK/sums"
    else
        : > "$WORK/sums"
    fi
    awk -v limit="$LIMIT" -v have="$ACCEPTED" -v skips="$WORK/skips" '
        FILENAME == ARGV[1] { seen[$1] = 1; next }
        { h = $1; n = substr($0, 43) }
        h in seen { print "skip\tduplicate\t" n >> skips; next }
        limit > 0 && have >= limit { next }
        { seen[h] = 1; have++; print n > "/dev/stderr"; print h }
    ' "$WORK/seen" "$WORK/sums" 2> "$WORK/take" >> "$WORK/seen"
    if [ -s "$WORK/take" ]; then
        (cd "$WORK/stage" && tr '\n' '\000' < "$WORK/take" | xargs -0 mv -t "$OUT" --)
    fi
    ACCEPTED=$((ACCEPTED + $(wc -l < "$WORK/take")))
    find "$WORK/stage" -mindepth 1 -delete
done

END=$(date +%s)
NMAN=$(find "$OUT" -maxdepth 1 -type f -name 'man*.txt' | wc -l)
NDOC=$(find "$OUT" -maxdepth 1 -type f -name 'doc-*.txt' | wc -l)
BYTES=$(find "$OUT" -maxdepth 1 -type f -name '*.txt' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
WORDS=$(find "$OUT" -maxdepth 1 -type f -name '*.txt' -print0 | xargs -0 -r cat | wc -w)
skips=$(cut -f2 "$WORK/skips" | sort | uniq -c | awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }')
awk -v f="$((NMAN + NDOC))" -v m="$NMAN" -v d="$NDOC" -v b="$BYTES" -v w="$WORDS" \
    -v t="$((END - START))" -v o="$OUT" -v mode="$MODE" -v c="$NCAND" -v s="${skips:-none}" 'BEGIN {
    printf "corpus: %d files (%d man pages, %d doc files), %.1f MB, %d words, in %d s -> %s\n", f, m, d, b / 1e6, w, t, o
    printf "corpus: %d candidates, renderer %s, skipped: %s\n", c, mode, s
}' >&2
