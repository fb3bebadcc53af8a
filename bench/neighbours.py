#!/usr/bin/env python3
"""neighbours.py - how well q8_0 keeps the order of nearest neighbours.

For the first 50 reference texts of at least four words in ASCII (the
queries tests/test_model.c uses), the top-10 neighbours among all 529 texts
of tests/ref/minilm.json by sentence-transformers' vectors (the reference)
against those by lode's default q8_0 model (`./lode embed --json`) and by
llama.cpp on the same GGUF file (llama-cpp-python, from .venv-bench, which
bench/embed.sh creates).  Prints the share of the 500 ranks holding the
same text (positional) and of lode's / llama.cpp's top-10 entries that are
in the reference top-10 (recall@10).

    make model lode && .venv-bench/bin/python bench/neighbours.py
"""
import json
import subprocess

import numpy as np

d = json.load(open('tests/ref/minilm.json')); items = d['items']
texts = [it['text'] for it in items]
ref = np.array([it['embedding'] for it in items], dtype=np.float32)
def agreement(v):
    agree = inset = total = q = 0
    for i, t in enumerate(texts):
        if q >= 50: break
        words = len([w for w in t.split(' ') if w])
        if words < 4 or not t.isascii(): continue
        q += 1
        def top(m):
            s = m @ m[i]; s[i] = -1e30
            return list(np.argsort(-s, kind='stable')[:10])
        a, b = top(v), top(ref)
        agree += sum(x == y for x, y in zip(a, b)); inset += len(set(a) & set(b)); total += 10
    return agree / total, inset / total
out = subprocess.run(['./lode', 'embed', '--json'], input=''.join(json.dumps(t) + '\n' for t in texts), capture_output=True, text=True).stdout
lode = np.array([json.loads(l) for l in out.splitlines()], dtype=np.float32)
print('lode q8_0: positional %.3f recall %.3f' % agreement(lode))
from llama_cpp import Llama
llm = Llama(model_path='models/all-MiniLM-L6-v2-q8_0.gguf', embedding=True, verbose=False, n_ctx=512, n_threads=1)
vs = []
for t in texts:
    e = np.array(llm.embed(t if t else ' ', normalize=True) if t.strip() else llm.embed(' ', normalize=True), dtype=np.float32)
    if e.ndim > 1: e = e.mean(0)
    vs.append(e / (np.linalg.norm(e) or 1))
print('llama.cpp q8_0: positional %.3f recall %.3f' % agreement(np.array(vs)))
