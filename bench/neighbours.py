#!/usr/bin/env python3
"""neighbours.py - how well each weight type keeps the order of nearest
neighbours, and how much order there is to keep.

Two corpora:
  reference   the 529 texts of tests/ref/minilm.json; queries: the first 50
              of at least four words in ASCII (the queries tests/test_model.c
              uses).  Reference vectors: the committed sentence-transformers
              ones.
  sample      the paragraphs of data/sample/ (company policies, HTML tags
              stripped, duplicates dropped); queries: 50 paragraphs evenly
              spaced.  Reference vectors: sentence-transformers, computed
              here one text at a time, as tests/ref/make_reference.py does.
For each query, the top-10 neighbours (the query itself excluded) by the
reference vectors against those by:
  - lode's default q8_0 model and an f16 GGUF converted here (`./lode embed`);
  - llama.cpp on the same q8_0 file (llama-cpp-python);
  - sentence-transformers itself in batches of 64 instead of one text at a
    time: the same fp32 model, rounding changed by the padded batch - how
    much "same rank" moves on this corpus for reasons other than weights.
Prints the share of the 500 ranks holding the same text (positional), the
share of top-10 entries found in the reference top-10 (recall@10), and the
share of adjacent reference similarities among ranks 1-11 closer than
0.001 (near-ties, where rounding of that size reorders).

    make model lode && .venv-bench/bin/python bench/neighbours.py

.venv-bench is what bench/embed.sh creates (torch, sentence-transformers,
llama-cpp-python).  Takes about a minute.
"""
import glob
import json
import os
import re
import subprocess

import numpy as np

F16 = "build/bench-neighbours/all-MiniLM-L6-v2-f16.gguf"
Q8 = "models/all-MiniLM-L6-v2-q8_0.gguf"


def reference_corpus():
    items = json.load(open("tests/ref/minilm.json"))["items"]
    texts = [it["text"] for it in items]
    queries = []
    for i, t in enumerate(texts):
        if len(queries) == 50:
            break
        if len([w for w in t.split(" ") if w]) >= 4 and t.isascii():
            queries.append(i)
    ref = np.array([it["embedding"] for it in items], dtype=np.float32)
    return texts, queries, ref


def sample_corpus():
    paras = []
    for path in sorted(glob.glob("data/sample/*")):
        t = re.sub(r"<[^>]+>", " ", open(path, errors="ignore").read())
        paras += [re.sub(r"\s+", " ", p).strip()
                  for p in re.split(r"\n\s*\n", t) if len(p.strip()) > 20]
    texts = list(dict.fromkeys(paras))
    step = max(1, len(texts) // 50)
    return texts, list(range(0, len(texts), step))[:50], None


def top10(v, i):
    s = v @ v[i]
    s[i] = -1e30
    return np.argsort(-s, kind="stable")[:10]


def agreement(v, ref, queries):
    same = found = 0
    for i in queries:
        a, b = top10(v, i), top10(ref, i)
        same += int((a == b).sum())
        found += len(set(a) & set(b))
    return same / (10 * len(queries)), found / (10 * len(queries))


def near_ties(ref, queries):
    close = total = 0
    for i in queries:
        s = ref @ ref[i]
        s[i] = -1e30
        top = np.sort(s)[::-1][:11]
        gaps = top[:-1] - top[1:]
        close += int((gaps < 1e-3).sum())
        total += len(gaps)
    return close / total


def lode(model, texts):
    out = subprocess.run(["./lode", "embed", "-m", model, "--json"],
                         input="".join(json.dumps(t) + "\n" for t in texts),
                         capture_output=True, text=True, check=True).stdout
    return np.array([json.loads(l) for l in out.splitlines()],
                    dtype=np.float32)


def main():
    os.makedirs(os.path.dirname(F16), exist_ok=True)
    if not os.path.exists(F16):
        subprocess.run(["./lode", "convert", "models/all-MiniLM-L6-v2", F16,
                        "--type", "f16"], check=True, capture_output=True)
    from sentence_transformers import SentenceTransformer
    from llama_cpp import Llama
    st = SentenceTransformer("models/all-MiniLM-L6-v2", device="cpu")
    llm = Llama(model_path=Q8, embedding=True, verbose=False, n_ctx=512,
                n_threads=1)

    def llama(texts):
        vs = []
        for t in texts:
            e = np.array(llm.embed(t if t.strip() else " ", normalize=True),
                         dtype=np.float32)
            if e.ndim > 1:
                e = e.mean(0)
            vs.append(e / (np.linalg.norm(e) or 1))
        return np.array(vs)

    def st_embed(texts, batch):
        return st.encode(texts, batch_size=batch, normalize_embeddings=True,
                         convert_to_numpy=True).astype(np.float32)

    for name, (texts, queries, ref) in (("reference", reference_corpus()),
                                        ("sample", sample_corpus())):
        if ref is None:
            ref = st_embed(texts, 1)
        print(f"{name}: {len(texts)} texts, {len(queries)} queries, "
              f"near-ties (adjacent gap < 0.001) in the reference top-11: "
              f"{100 * near_ties(ref, queries):.1f}%")
        rows = (("lode q8_0", lambda: lode(Q8, texts)),
                ("lode f16", lambda: lode(F16, texts)),
                ("llama.cpp q8_0", lambda: llama(texts)),
                ("sentence-transformers, batch 64",
                 lambda: st_embed(texts, 64)))
        for label, fn in rows:
            pos, rec = agreement(fn(), ref, queries)
            print(f"  {label:32s} same rank {100 * pos:5.1f}%   "
                  f"recall@10 {100 * rec:5.1f}%")


if __name__ == "__main__":
    main()
