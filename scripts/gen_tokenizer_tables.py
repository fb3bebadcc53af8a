#!/usr/bin/env python3
"""Generate src/tokenizer_tables.h: the Unicode character classes that
Hugging Face's `tokenizers` (the Rust library behind BertTokenizerFast) uses,
measured from the library itself.

Why measured rather than taken from a Unicode database: BertNormalizer and
BertPreTokenizer classify characters with the `unicode_categories` crate,
whose tables are frozen at an old Unicode version (roughly 8/9), while NFD
and lowercasing come from Rust's std / unicode-normalization at a much newer
version.  No single Unicode version reproduces that mix, so this script asks
the library about every code point and writes what it answers:

  TOK_TAB_DROP         removed by clean_text (old Cc/Cf/Co + NUL + U+FFFD;
                       note: unassigned code points are NOT removed)
  TOK_TAB_CLEAN_SPACE  turned into ' ' by clean_text
  TOK_TAB_CJK          padded with spaces by handle_chinese_chars (note:
                       0x2B920-0x2CEAF in Rust, not BERT's 0x2B820)
  TOK_TAB_SPLIT_SPACE  whitespace for BertPreTokenizer (Rust char::is_whitespace)
  TOK_TAB_PUNCT        isolated by BertPreTokenizer (ASCII punct + old P*)
  TOK_TAB_NONSPACING   removed by strip_accents after NFD (old Mn)

These five are small range tables written in full, so they do not depend on
the utf8proc the C code is built against.  NFD and lowercase come from
utf8proc at run time; where the installed utf8proc disagrees with Rust for a
single code point (new characters, U+0130's two-character lowercase), the
script writes an override entry:

  TOK_TAB_LOWER_OVERRIDE  code point -> Rust char::to_lowercase
  TOK_TAB_NFD_OVERRIDE    code point -> Rust NFD

Run with the reference venv (tokenizers installed) from the repo root:

    /tmp/refvenv/bin/python scripts/gen_tokenizer_tables.py

It needs libutf8proc.so (ctypes) to compute the overrides.  Re-run it when
the pinned tokenizers version or the system utf8proc changes;
tests/test_tokenizer.c runs every code point through the C tokenizer under
four option sets and compares a hash of the results with the hash this
script records (TOK_TAB_REFERENCE_HASH), so a utf8proc that drifts from
Rust is caught by `make test` even without the venv.
"""

import ctypes
import ctypes.util
import sys
from pathlib import Path

import tokenizers
from tokenizers import normalizers, pre_tokenizers

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "src" / "tokenizer_tables.h"

UTF8PROC_DECOMPOSE = 1 << 4


def load_utf8proc():
    name = ctypes.util.find_library("utf8proc") or "libutf8proc.so.2"
    lib = ctypes.CDLL(name)
    lib.utf8proc_tolower.argtypes = [ctypes.c_int32]
    lib.utf8proc_tolower.restype = ctypes.c_int32
    lib.utf8proc_decompose_char.argtypes = [
        ctypes.c_int32, ctypes.POINTER(ctypes.c_int32), ctypes.c_ssize_t,
        ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    lib.utf8proc_decompose_char.restype = ctypes.c_ssize_t
    lib.utf8proc_version.restype = ctypes.c_char_p
    lib.utf8proc_unicode_version.restype = ctypes.c_char_p
    return lib


FNV_OFFSET = 0xCBF29CE484222325


def fnv1a64(h, data):
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def code_points():
    for c in range(0x110000):
        if not 0xD800 <= c <= 0xDFFF:
            yield c


def ranges(cps):
    out = []
    for c in sorted(cps):
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


def main():
    u8 = load_utf8proc()
    buf = (ctypes.c_int32 * 16)()
    bound = ctypes.c_int(0)

    def u8_nfd(c):
        n = u8.utf8proc_decompose_char(c, buf, 16, UTF8PROC_DECOMPOSE,
                                       ctypes.byref(bound))
        if n < 0:
            return [c]
        return list(buf[:n])

    def u8_lower(c):
        # Mirrors tokenizer.c's lowercase before overrides: simple mapping.
        return [u8.utf8proc_tolower(c)]

    def bert(clean=False, chinese=False, strip=False, lower=False):
        return normalizers.BertNormalizer(clean_text=clean, handle_chinese_chars=chinese,
                                          strip_accents=strip, lowercase=lower)

    clean = bert(clean=True)
    chinese = bert(chinese=True)
    strip = bert(strip=True)
    nfd = normalizers.NFD()
    lower = normalizers.Lowercase()
    # The four option sets whose per-code-point results the C test hashes:
    # uncased BERT, cased BERT, lowercase alone, strip_accents alone.
    ref_configs = [bert(clean=True, chinese=True, strip=True, lower=True),
                   bert(clean=True, chinese=True),
                   bert(lower=True),
                   bert(strip=True)]
    ref_hash = [FNV_OFFSET] * len(ref_configs)
    pretok = pre_tokenizers.BertPreTokenizer()

    drop, clean_space, cjk, split_space, punct, nonspacing = [], [], [], [], [], []
    lower_over, nfd_over = [], []
    for c in code_points():
        ch = chr(c)
        o = clean.normalize_str(ch)
        if o == "":
            drop.append(c)
        elif o == " ":
            clean_space.append(c)
        elif o != ch:
            sys.exit(f"clean_text maps U+{c:04X} to {o!r}: not modelled")

        o = chinese.normalize_str(ch)
        if o == " " + ch + " ":
            cjk.append(c)
        elif o != ch:
            sys.exit(f"handle_chinese_chars maps U+{c:04X} to {o!r}: not modelled")

        words = pretok.pre_tokenize_str("a" + ch + "a")
        if len(words) == 3 and words[1][0] == ch:
            punct.append(c)
        elif len(words) == 2 and [w for w, _ in words] == ["a", "a"]:
            split_space.append(c)
        elif len(words) != 1:
            sys.exit(f"pre-tokenizer does something new with U+{c:04X}: {words}")

        if strip.normalize_str(ch) == "":
            nonspacing.append(c)

        rust_nfd = [ord(x) for x in nfd.normalize_str(ch)]
        if rust_nfd != u8_nfd(c):
            nfd_over.append((c, rust_nfd))
        rust_lower = [ord(x) for x in lower.normalize_str(ch)]
        if rust_lower != u8_lower(c):
            lower_over.append((c, rust_lower))

        for i, norm in enumerate(ref_configs):
            words = pretok.pre_tokenize_str(norm.normalize_str(ch))
            line = "%X:%s\n" % (c, "|".join(",".join("%X" % ord(x) for x in w) for w, _ in words))
            ref_hash[i] = fnv1a64(ref_hash[i], line.encode())

    for c, seq in nfd_over + lower_over:
        if len(seq) > 4:
            sys.exit(f"override for U+{c:04X} longer than 4")

    def table(name, cps, comment):
        rs = ranges(cps)
        lines = [f"/* {comment}: {len(cps)} code points in {len(rs)} ranges. */",
                 f"static const uint32_t {name}[][2] = {{"]
        row = []
        for lo, hi in rs:
            row.append(f"{{0x{lo:X},0x{hi:X}}}")
            if len(row) == 4:
                lines.append("    " + ", ".join(row) + ",")
                row = []
        if row:
            lines.append("    " + ", ".join(row) + ",")
        lines.append("};")
        return "\n".join(lines) + "\n"

    def overrides(name, items, comment):
        lines = [f"/* {comment}: {len(items)} entries, sorted by code point. */",
                 f"static const struct tok_cp_override {name}[] = {{"]
        for c, seq in items:
            padded = seq + [0] * (4 - len(seq))
            lines.append("    {0x%X, %d, {%s}}," % (c, len(seq), ", ".join("0x%X" % x for x in padded)))
        if not items:
            lines.append("    {0x110000, 0, {0, 0, 0, 0}},  /* sentinel: C forbids empty arrays */")
        lines.append("};")
        return "\n".join(lines) + "\n"

    hdr = [
        "/* tokenizer_tables.h - GENERATED by scripts/gen_tokenizer_tables.py; do not edit.",
        " *",
        " * Character classes of Hugging Face tokenizers %s, measured from the" % tokenizers.__version__,
        " * library for every code point, and overrides where utf8proc %s (Unicode %s)" % (
            u8.utf8proc_version().decode(), u8.utf8proc_unicode_version().decode()),
        " * disagrees with Rust's NFD / lowercase.  See the script for why.",
        " * Included by tokenizer.c, and by test_tokenizer.c for the hash. */",
        "#ifndef LODE_TOKENIZER_TABLES_H",
        "#define LODE_TOKENIZER_TABLES_H",
        "",
        "#include <stdint.h>",
        "",
        "struct tok_cp_override {",
        "    uint32_t cp;",
        "    uint8_t n;          /* length of out */",
        "    uint32_t out[4];",
        "};",
        "",
        table("TOK_TAB_DROP", drop, "clean_text removes these"),
        table("TOK_TAB_CLEAN_SPACE", clean_space, "clean_text maps these to ' '"),
        table("TOK_TAB_CJK", cjk, "handle_chinese_chars pads these with spaces"),
        table("TOK_TAB_SPLIT_SPACE", split_space, "BertPreTokenizer splits on and drops these"),
        table("TOK_TAB_PUNCT", punct, "BertPreTokenizer isolates these"),
        table("TOK_TAB_NONSPACING", nonspacing,
              "strip_accents removes these (old Mn; decomposable ones are harmless extras)"),
        overrides("TOK_TAB_NFD_OVERRIDE", nfd_over, "Rust NFD where utf8proc differs"),
        overrides("TOK_TAB_LOWER_OVERRIDE", lower_over,
                  "Rust char::to_lowercase where utf8proc_tolower differs"),
        "/* FNV-1a 64 over, for every code point c in order (surrogates skipped),",
        " * the line \"<c>:<words>\\n\", words = the pre-tokenized normalisation of",
        " * chr(c), each word its code points in hex joined by ',', words joined",
        " * by '|' (upper-case hex, no padding).  One hash per option set:",
        " * {clean,cjk,strip,lower}, {clean,cjk}, {lower}, {strip}. */",
        "static const uint64_t TOK_TAB_REFERENCE_HASH[4] = {",
        "    " + ", ".join("0x%016XULL" % h for h in ref_hash),
        "};",
        "",
        "#endif",
        "",
    ]
    OUT.write_text("\n".join(hdr))
    print(f"wrote {OUT}; "
          f"{len(nfd_over)} NFD and {len(lower_over)} lowercase overrides")


if __name__ == "__main__":
    main()
