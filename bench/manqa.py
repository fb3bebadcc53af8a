#!/usr/bin/env python3
"""manqa.py - a labelled question set that nobody here wrote, from man pages.

    bench/manqa.py CORPUS_DIR OUT_DIR

CORPUS_DIR holds man pages rendered to text by bench/corpus.sh.  For each
page, the one-line description of its NAME section ("ls - list directory
contents" gives "list directory contents") becomes a query whose relevant
document is that page, and the page is written to OUT_DIR/pages/ without
its NAME section, so the answer is not the query itself.  A description
shared by several pages (aliases, alpha/beta twins) or shorter than three
words is no query, though its pages stay in the corpus.  Writes
OUT_DIR/queries.jsonl ({id, query, relevant, kind: the man section}) in
file-name order and prints a summary.  Deterministic: same corpus, same
output.
"""
import json
import os
import re
import sys

DASH = re.compile(r"\s+[-\u2010\u2011\u2012\u2013\u2014\u2212]+\s+")
HEADER = re.compile(r"^[A-Z][A-Z0-9 ,/&()-]*$")


def split_name(text):
    """(description, text without NAME section) or (None, text)."""
    lines = text.split("\n")
    start = next((i for i, l in enumerate(lines) if l.strip() == "NAME"
                  and not l.startswith(" ")), None)
    if start is None:
        return None, text
    end = start + 1
    while end < len(lines) and not (lines[end] and not lines[end][0].isspace()
                                    and HEADER.match(lines[end].strip())):
        end += 1
    name = " ".join(l.strip() for l in lines[start + 1:end] if l.strip())
    rest = "\n".join(lines[:start] + lines[end:])
    parts = DASH.split(name, maxsplit=1)
    if len(parts) != 2:
        return None, rest
    return parts[1].strip().rstrip("."), rest


def main():
    corpus, out = sys.argv[1], sys.argv[2]
    pages_dir = os.path.join(out, "pages")
    os.makedirs(pages_dir, exist_ok=True)
    found = {}
    names = sorted(n for n in os.listdir(corpus) if n.endswith(".txt"))
    for n in names:
        with open(os.path.join(corpus, n), encoding="utf-8") as f:
            text = f.read()
        desc, rest = split_name(text)
        with open(os.path.join(pages_dir, n), "w", encoding="utf-8") as f:
            f.write(rest)
        if desc and len(desc.split()) >= 3:
            found.setdefault(desc.lower(), []).append((n, desc))
    queries = []
    unique = sorted(v[0] for v in found.values() if len(v) == 1)
    with open(os.path.join(out, "queries.jsonl"), "w", encoding="utf-8") as f:
        for n, desc in unique:
            section = n.split("-", 1)[0]
            f.write(json.dumps({"id": n[:-4], "query": desc,
                                "relevant": [os.path.join(pages_dir, n)],
                                "kind": section}) + "\n")
            queries.append(n)
    shared = sum(len(v) for v in found.values() if len(v) > 1)
    print("manqa: %d pages, %d queries (%d pages share a description, %d "
          "have none usable)" % (len(names), len(queries), shared,
                                 len(names) - len(queries) - shared),
          file=sys.stderr)


if __name__ == "__main__":
    main()
