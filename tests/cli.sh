#!/bin/sh
# cli.sh - end-to-end tests of the lode command line (embed, tokenize):
# output shape and agreement with the reference, the three input modes, and
# a clear error with a non-zero exit (never a crash) for each kind of bad
# model or bad text.  Run by `make test` with LODE set to the binary.
set -u
LODE=${LODE:-./lode}
MODEL=models/all-MiniLM-L6-v2
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
passed=0 failed=0

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL cli.sh: $*" >&2; }

# expect_error WHAT PATTERN CMD...: CMD exits 1 (2 for usage errors, with
# EXPECT_RC=2) and stderr matches PATTERN.
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

# --- embeddings ------------------------------------------------------------
if "$LODE" embed -m "$MODEL" "hello world" >"$TMP/hw" 2>"$TMP/err"; then
    ok
else
    bad "embed hello world: $(cat "$TMP/err")"
fi
python3 - "$TMP/hw" tests/ref/minilm.json <<'PY' && ok || bad "hello world vector"
import json, math, sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 1, lines
v = json.loads(lines[0])
assert len(v) == 384, len(v)
norm = math.sqrt(sum(x * x for x in v))
assert abs(norm - 1) < 1e-5, norm
ref = {it["text"]: it["embedding"] for it in json.load(open(sys.argv[2]))["items"]}
r = ref["hello world"]
cos = sum(a * b for a, b in zip(v, r)) / math.sqrt(sum(b * b for b in r))
assert cos >= 0.99999, cos
assert max(abs(a - b) for a, b in zip(v, r)) <= 1e-4
PY

# Three input modes give the same vectors: arguments, stdin lines, JSON.
"$LODE" embed -m "$MODEL" "first text" "second, with café" >"$TMP/args"
printf 'first text\nsecond, with café\n' | "$LODE" embed -m "$MODEL" >"$TMP/lines"
printf '"first text"\n"second, with caf\\u00e9"\n' |
    "$LODE" embed -m "$MODEL" --json >"$TMP/json"
if cmp -s "$TMP/args" "$TMP/lines" && cmp -s "$TMP/args" "$TMP/json" &&
    [ "$(wc -l <"$TMP/args")" -eq 2 ]; then ok; else bad "input modes differ"; fi

# LODE_MODEL selects the model.
LODE_MODEL=$MODEL "$LODE" embed "first text" "second, with café" >"$TMP/env" &&
    cmp -s "$TMP/args" "$TMP/env" && ok || bad "LODE_MODEL not honoured"

# The default model is the q8_0 GGUF that `make model` writes; it agrees
# with the reference within q8_0's tolerance.
"$LODE" embed "hello world" >"$TMP/q8" 2>"$TMP/err" || bad "default model: $(cat "$TMP/err")"
python3 - "$TMP/q8" tests/ref/minilm.json <<'PY' && ok || bad "default q8_0 vector"
import json, math, sys
v = json.loads(open(sys.argv[1]).read())
ref = {it["text"]: it["embedding"] for it in json.load(open(sys.argv[2]))["items"]}
r = ref["hello world"]
cos = sum(a * b for a, b in zip(v, r)) / math.sqrt(sum(a * a for a in v) * sum(b * b for b in r))
assert len(v) == 384 and cos >= 0.995, cos
PY

# Floats round-trip: every printed value parses back to the same float32.
python3 - "$TMP/args" <<'PY' && ok || bad "floats do not round-trip"
import json, struct, sys
for line in open(sys.argv[1]):
    for x in json.loads(line):
        f = struct.unpack("f", struct.pack("f", x))[0]
        assert repr(f) == repr(x) or float("%.9g" % f) == x, x
PY

# JSON input can carry newlines and NUL, which lines cannot: the newline
# separates "a" from "b", the NUL is dropped by cleaning, joining "bc".
printf '"a\\nb\\u0000c"\n' | "$LODE" tokenize -m "$MODEL" --json >"$TMP/tok" &&
    [ "$(cat "$TMP/tok")" = "[101,1037,4647,102]" ] && ok ||
    bad "tokenize --json: $(cat "$TMP/tok")"

# tokenize: ids with [CLS]/[SEP], truncated to 256.
"$LODE" tokenize -m "$MODEL" "Hello, world!" >"$TMP/tok"
[ "$(cat "$TMP/tok")" = "[101,7592,1010,2088,999,102]" ] && ok ||
    bad "tokenize: $(cat "$TMP/tok")"
python3 -c 'print("word " * 400)' | "$LODE" tokenize -m "$MODEL" >"$TMP/long"
python3 - "$TMP/long" <<'PY' && ok || bad "long text not truncated to 256"
import json, sys
ids = json.loads(open(sys.argv[1]).read())
assert len(ids) == 256 and ids[0] == 101 and ids[-1] == 102, len(ids)
PY

# --- bad text --------------------------------------------------------------
expect_error "invalid UTF-8" "UTF-8" "$LODE" embed -m "$MODEL" "$(printf 'ab\377c')"
expect_error "empty text" "empty" "$LODE" embed -m "$MODEL" ""
printf 'fine\n\nalso fine\n' >"$TMP/blank"
expect_error "empty stdin line" "empty" sh -c "\"$LODE\" embed -m $MODEL <\"$TMP/blank\""
expect_error "non-JSON line" "JSON string" sh -c \
    "echo 'not json' | \"$LODE\" embed -m $MODEL --json"
EXPECT_RC=2 expect_error "unknown option" "unknown option" "$LODE" embed --frobnicate x
EXPECT_RC=2 expect_error "bad thread count" "thread" "$LODE" embed -t zero x

# --- bad models --------------------------------------------------------------
mkmodel() { # copy the small files, link the weights
    mkdir -p "$TMP/$1/1_Pooling"
    for f in config.json modules.json sentence_bert_config.json vocab.txt \
        tokenizer_config.json special_tokens_map.json 1_Pooling/config.json; do
        cp "$MODEL/$f" "$TMP/$1/$f"
    done
    ln -s "$PWD/$MODEL/model.safetensors" "$TMP/$1/model.safetensors"
}
expect_error "missing model" "config.json" "$LODE" embed -m "$TMP/nothing" x

mkmodel trunc
rm "$TMP/trunc/model.safetensors"
head -c 50000000 "$MODEL/model.safetensors" >"$TMP/trunc/model.safetensors"
expect_error "truncated weights" "truncated" "$LODE" embed -m "$TMP/trunc" x

mkmodel garbage
rm "$TMP/garbage/model.safetensors"
head -c 4096 /dev/urandom >"$TMP/garbage/model.safetensors"
expect_error "corrupted weights" "safetensors" "$LODE" embed -m "$TMP/garbage" x

mkmodel noweights
rm "$TMP/noweights/model.safetensors"
expect_error "missing weights" "model.safetensors" "$LODE" embed -m "$TMP/noweights" x

mkmodel shape
sed 's/"intermediate_size": 1536/"intermediate_size": 1024/' \
    "$MODEL/config.json" >"$TMP/shape/config.json"
expect_error "wrong tensor shape" "shape" "$LODE" embed -m "$TMP/shape" x

mkmodel arch
sed 's/"model_type": "bert"/"model_type": "roberta"/' \
    "$MODEL/config.json" >"$TMP/arch/config.json"
expect_error "unknown architecture" "roberta" "$LODE" embed -m "$TMP/arch" x

mkmodel badjson
echo '{"hidden_size": 384,' >"$TMP/badjson/config.json"
expect_error "broken config.json" "config.json" "$LODE" embed -m "$TMP/badjson" x

mkmodel novocab
rm "$TMP/novocab/vocab.txt"
expect_error "missing vocabulary" "vocab" "$LODE" embed -m "$TMP/novocab" x

echo "cli.sh: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
