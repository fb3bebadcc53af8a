#!/usr/bin/env python3
"""Exhaustive comparison of lode's tokenizer with Hugging Face's.

Runs tests/tokenizer_driver.c (build it first, see its header) and the
`tokenizers` library over:
  1. every code point, alone and inside a word, through normaliser +
     pre-tokenizer, under several option sets (words compared);
  2. every code point inside "x<c>y" encoded with the MiniLM vocabulary
     (ids, n_full and byte offsets compared);
  3. many random strings built from tricky pools (combining sequences,
     scripts, emoji, controls, special tokens, long words) with each model
     of the repository: all-MiniLM-L6-v2 (uncased vocab.txt),
     tests/ref/tiny-cased-cls (cased vocab.txt), tests/ref/tiny-uncased-max
     (tokenizer.json), at several max_tokens.

Usage (repo root, reference venv):
    /tmp/refvenv/bin/python tests/tokenizer_compare.py [--random N] [--seed S]
Exits non-zero and prints the first differences when anything disagrees.
"""

import argparse
import os
import random
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

from tokenizers import Tokenizer, normalizers, pre_tokenizers  # noqa: E402
from tokenizers.models import WordPiece  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DRIVER = REPO / "build-tok" / "tokenizer_driver"
MINILM_VOCAB = REPO / "models" / "all-MiniLM-L6-v2" / "vocab.txt"
CASED_VOCAB = REPO / "tests" / "ref" / "tiny-cased-cls" / "vocab.txt"
UNCASED_JSON = REPO / "tests" / "ref" / "tiny-uncased-max" / "tokenizer.json"
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

failures = 0
kinds = {}


def fail(msg, kind="ids"):
    global failures
    failures += 1
    kinds[kind] = kinds.get(kind, 0) + 1
    if kinds[kind] <= 8:
        print("DIFF", kind, msg)


def run_driver(vocab, lower, strip, cjk, clean, max_tokens, mode, texts):
    """texts: str, or bytes (sent as they are, possibly invalid UTF-8)."""
    args = [str(DRIVER), str(vocab), str(lower), str(strip), str(cjk), str(clean),
            str(max_tokens), mode]
    data = "".join((t if isinstance(t, bytes) else t.encode("utf-8", "surrogatepass")).hex() + "\n"
                   for t in texts)
    out = subprocess.run(args, input=data.encode(), capture_output=True, check=True).stdout
    lines = out.decode().split("\n")
    assert len(lines) == len(texts) + 1, (len(lines), len(texts))
    return lines[:-1]


def hf_bert(vocab, lower, strip, cjk, clean):
    """A Tokenizer built the way transformers' BertTokenizer builds one."""
    if str(vocab).endswith(".json"):
        tok = Tokenizer.from_file(str(vocab))
    else:
        tok = Tokenizer(WordPiece.from_file(str(vocab), unk_token="[UNK]"))
        tok.add_special_tokens(SPECIALS)
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=bool(clean), handle_chinese_chars=bool(cjk),
        strip_accents=None if strip < 0 else bool(strip), lowercase=bool(lower))
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = None
    tok.no_truncation()
    tok.no_padding()
    return tok


def byte_offsets(text):
    """char index -> byte offset, for converting HF offsets."""
    out = [0]
    for ch in text:
        out.append(out[-1] + len(ch.encode("utf-8")))
    return out


def compare_ids(name, vocab, opts, max_tokens, texts):
    tok = hf_bert(vocab, *opts)
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    encs = tok.encode_batch(texts, add_special_tokens=False)
    ours = run_driver(vocab, *opts, max_tokens, "ids", texts)
    for text, enc, line in zip(texts, encs, ours):
        if line.startswith("ERR"):
            fail(f"{name} {text!r}: {line}")
            continue
        ids_s, offs_s, n_full_s = line.split(";")
        got_ids = [int(x) for x in ids_s.split()]
        got_offs = [tuple(int(v) for v in x.split(",")) for x in offs_s.split()]
        want_ids = [cls] + enc.ids[:max_tokens - 2] + [sep]
        bo = byte_offsets(text)
        want_offs = [(0, 0)] + [(bo[s], bo[e]) for s, e in enc.offsets[:max_tokens - 2]] + [(0, 0)]
        if got_ids != want_ids or int(n_full_s) != len(enc.ids) + 2:
            fail(f"{name} max={max_tokens} {text!r}\n  want {want_ids} n_full {len(enc.ids) + 2}"
                 f"\n  got  {got_ids} n_full {n_full_s}")
        elif got_offs != want_offs:
            fail(kind="offsets", msg=f"{name} {text!r}\n  want {want_offs}\n  got  {got_offs}"
                 f"\n  tokens {[tok.id_to_token(i) for i in want_ids]}")
    return len(texts)


def compare_words(opts, texts):
    lower, strip, cjk, clean = opts
    norm = normalizers.BertNormalizer(
        clean_text=bool(clean), handle_chinese_chars=bool(cjk),
        strip_accents=None if strip < 0 else bool(strip), lowercase=bool(lower))
    pre = pre_tokenizers.BertPreTokenizer()
    # HF's normalizer alone knows nothing of special tokens.
    texts = [t for t in texts if not any(sp in t for sp in SPECIALS)]
    ours = run_driver(MINILM_VOCAB, *opts, 8, "words", texts)
    for text, line in zip(texts, ours):
        want = [w for w, _ in pre.pre_tokenize_str(norm.normalize_str(text))]
        got = []
        for item in line.split():
            h = item.split("@")[0]
            got.append("<LONG>" if h == "LONG" else bytes.fromhex(h).decode("utf-8"))
        want = ["<LONG>" if len(w) > 100 else w for w in want]
        if got != want:
            fail(kind="words", msg=f"{opts} {text!r} (U+{ord(text[len(text) // 2]):04X})\n  want {want}\n  got  {got}")
    return len(texts)


def random_bytes(rng):
    """Mostly-valid UTF-8 with damage: cut sequences, stray and bad bytes."""
    text = random_text(rng).encode("utf-8")
    b = bytearray(text)
    for _ in range(rng.randint(0, 3)):
        kind = rng.random()
        pos = rng.randint(0, len(b))
        if kind < 0.3:
            b[pos:pos] = bytes([rng.randrange(256)])
        elif kind < 0.5 and b:
            del b[min(pos, len(b) - 1)]
        elif kind < 0.7:
            b[pos:pos] = rng.choice([b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
                                     b"\xf8\x88\x80\x80\x80", b"\xc2", b"\xe2\x82", b"\xf0\x9f\x98", b"\x80", b"\xff"])
        else:
            b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
    return bytes(b)


def compare_bytes(texts):
    """Invalid UTF-8 must fail at the byte Python's strict decoder names;
    valid input must match HF."""
    ours = run_driver(MINILM_VOCAB, 1, -1, 1, 1, 16, "ids", texts)
    valid = []
    for raw, line in zip(texts, ours):
        try:
            raw.decode("utf-8")
            valid.append(raw.decode("utf-8"))
            if line.startswith("ERR"):
                fail(kind="bytes", msg=f"{raw!r} is valid but: {line}")
        except UnicodeDecodeError as e:
            if not line.startswith(f"ERR -7 invalid UTF-8 at byte {e.start}:"):
                fail(kind="bytes", msg=f"{raw!r} fails at {e.start} ({e.reason}) but: {line}")
    compare_ids("bytes-valid", MINILM_VOCAB, (1, -1, 1, 1), 16, valid)
    return len(texts)


def all_code_points():
    return [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]


# Pools of characters that exercise the tricky paths.
POOLS = [
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
    " \t\n\r\x0b\x0c\x85\xa0\u1680\u2000\u2007\u200a\u2028\u2029\u202f\u205f\u3000\x1c\x1f",
    "\x00\x01\x07\x1b\x7f\x9f\xad\u200b\u200c\u200d\u200e\u2060\ufeff\ufffd\ue000\U000f0000\ufffe\uffff",
    "àáâãäåçèéêëìíîïñòóôõöùúûüýÿÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝßæøœđłŁĐ",
    "\u0300\u0301\u0302\u0303\u0308\u0323\u0327\u0328\u031b\u0345\u0344\u0340\u0343\u034f\u0360\u0489\u05b0\u0591\u064b\u0670\u093c\u0e31\u0f71\u0f72\u0f74\u0f80\u1ab0\u20d0\u302a\u3099",
    "ΑΒΓΔΣσςΩάέήίόύώΐΰϊϋᾀᾳῼΆΈΉΊΌΎΏ",
    "АБВГДЕЁЖЗИЙабвгдеёжзийЇїЎў",
    "İıIiŞşĞğ\u0130\u0131\u1e9e\u2126\u212a\u212b\u0149\u01c5\u01c4\u01c6\u1f88\u1fbc",
    "中文字漢字日本語한국어가힣각\uf900\uf9ff\ufa0e\ufa6a\U00020000\U0002a6d6\U0002a6df\U0002b739\U0002f800\U00030000\u3400\u4dbf\u9fff\u9fef",
    "ひらがなカタカナｶﾀｶﾅ\uff01\uff1f\u3001\u3002\u300c\u300d",
    "अआइक्षत्रज्ञ\u0958\u0929\u0931\u0934\u09cb\u09dc\u0b48\u0bca\u0d4a",
    "ไทยภาษา\u0e33\u0e4d",
    "العربيةعربى\u0622\u0623\u06c0",
    "עִבְרִית\ufb1d\ufb2a\ufb4e",
    "😀🫠👍🏽👨\u200d👩\u200d👧❤\ufe0f🇫🇷\U0001f9d1\u200d\U0001f4bb\U0001fae8\U0001fa89",
    "\U0001d15e\U0001d15f\U0001d160\U0001d165\U0001d166\U0001d16d\U0001d16e\U0001d172\U0001d1bb\U0001d1c0",
    "\u0f73\u0f75\u0f81\u0f77\u0f79\u0fb2\u0fb3\u1e9b\u1e0a\u1e63\u01d5\u0386\u1f00\u1f0a",
    "\u166d\U000111c9\u061d\u2e52\u2e5d\u0890\u08e2\U00013430\U00011938\ua7cb\U00010d50\u2c2f\u1c89",
    "€£¥©®°±²³µ¶·¹º»¼½¾¿×÷",
]


def random_text(rng):
    kind = rng.random()
    if kind < 0.05:
        w = rng.choice(POOLS[0])
        n = rng.choice([98, 99, 100, 101, 102, 150])
        s = "".join(rng.choice(POOLS[0]) for _ in range(n))
        if rng.random() < 0.5:  # combining marks change the count after stripping
            s = s[:50] + rng.choice("\u0301\u0308\u0130") + s[50:]
        return rng.choice(["", "x ", "a-"]) + s + rng.choice(["", " y", "."]) + w
    if kind < 0.12:
        parts = []
        for _ in range(rng.randint(1, 6)):
            parts.append(rng.choice(SPECIALS + ["[mask]", "[SEP", "SEP]", "[[SEP]]", "[MASK]]", "[MASK][SEP]"]))
            parts.append(rng.choice(["", " ", "a", "é", "\u0301", "中", "x y"]))
        return "".join(parts)
    if kind < 0.2:
        n = rng.randint(1, 40)
        return "".join(chr(rng.randrange(0x110000)) for _ in range(n)
                       ).encode("utf-8", "replace").decode("utf-8", "replace").replace("?", "z")
    n = rng.choice([rng.randint(0, 12), rng.randint(0, 60), rng.randint(0, 400)])
    pools = rng.sample(POOLS, rng.randint(1, 4))
    out = []
    for _ in range(n):
        p = rng.choice(pools)
        out.append(rng.choice(p))
        if rng.random() < 0.15:
            out.append(" ")
    return "".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--random", type=int, default=200000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip-sweep", action="store_true")
    ap.add_argument("--driver", help="driver binary (e.g. an ASan build)")
    a = ap.parse_args()
    global DRIVER
    if a.driver:
        DRIVER = Path(a.driver)
    if not DRIVER.exists():
        sys.exit(f"build {DRIVER} first (see tests/tokenizer_driver.c)")
    n = 0
    uncased = (1, -1, 1, 1)
    cased = (0, 0, 1, 1)
    if not a.skip_sweep:
        cps = all_code_points()
        for opts in [uncased, cased, (1, 0, 1, 1), (0, 1, 0, 1), (1, -1, 0, 0), (0, 0, 0, 0), (0, 1, 1, 0)]:
            n += compare_words(opts, cps)
            n += compare_words(opts, ["Ab" + c + "Cd" for c in cps])
            n += compare_words(opts, ["a\u0301" + c + "\u0316\u0300b" for c in cps[::7]])
            print(f"sweep words {opts}: {failures} differences so far", flush=True)
        n += compare_ids("minilm", MINILM_VOCAB, uncased, 512, ["x" + c + "y" for c in cps])
        n += compare_ids("cased", CASED_VOCAB, cased, 512, ["x" + c + "y" for c in cps])
        print(f"sweep ids: {failures} differences so far", flush=True)
    rng = random.Random(a.seed)
    texts = [random_text(rng) for _ in range(a.random)]
    for name, vocab, opts in [("minilm", MINILM_VOCAB, uncased), ("cased", CASED_VOCAB, cased),
                              ("uncased-json", UNCASED_JSON, uncased),
                              ("minilm-nostrip", MINILM_VOCAB, (1, 0, 1, 1)),
                              ("minilm-noclean", MINILM_VOCAB, (1, -1, 0, 0))]:
        for max_tokens in [512, 40, 2, 3]:
            n += compare_ids(name, vocab, opts, max_tokens, texts if max_tokens == 512 else texts[:20000])
        n += compare_words(opts, texts[:50000])
        print(f"random {name}: {failures} differences so far", flush=True)
    n += compare_bytes([random_bytes(rng) for _ in range(a.random)])
    print(f"random bytes: {failures} differences so far", flush=True)
    print(f"{n} comparisons, {failures} differences {kinds}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
