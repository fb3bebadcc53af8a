#!/usr/bin/env python3
"""search.py - lode's store vs ChromaDB vs NumPy brute force (issue 4).

Run through bench/search.sh, which builds lode and the C driver
(bench/search_driver.c) and sets up .venv-bench.  One run:

  * the same random unit vectors (384 dims, seed 1) and the same queries
    for every system, written once to WORK/vecs.f32 and WORK/queries.f32;
  * per size N (default 10k and 100k; add 1000000 with --sizes): lode f32,
    lode int8 (build/bench/search_driver), NumPy (float32 matrix @ query,
    argpartition, k = 10) and ChromaDB (PersistentClient, default HNSW,
    cosine; approximate, so its recall@10 against the exact answer is
    reported), each in its own process, which reports its latencies
    (median, p99; one query at a time, one thread) and VmRSS/VmHWM from
    /proc/self/status;
  * ingest throughput on a real corpus: `lode ingest -t T` vs a Python
    pipeline (sentence-transformers all-MiniLM-L6-v2, 200-token chunks cut
    with the model's tokenizer, ChromaDB add), torch.set_num_threads(T).

Prints a Markdown table, the command and the load average.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

DIM = 384
K = 10


def mem_kb():
    rss = hwm = -1
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


def stats(lat):
    import numpy as np
    lat = np.sort(np.asarray(lat))
    return float(np.median(lat)), float(lat[int(round(0.99 * (len(lat) - 1)))])


def one_thread():
    for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[v] = "1"


# ---- workers (each runs in its own process) ------------------------------

def worker_numpy(a):
    one_thread()
    import numpy as np
    r0, _ = mem_kb()
    m = np.fromfile(a.vecs, dtype=np.float32, count=a.n * DIM).reshape(a.n, DIM)
    q = np.fromfile(a.queries, dtype=np.float32).reshape(-1, DIM)
    r1, _ = mem_kb()
    lat, ids = [], []
    for i in range(len(q)):
        t = time.perf_counter()
        s = m @ q[i]
        top = np.argpartition(-s, K)[:K]
        top = top[np.argsort(-s[top])]
        lat.append((time.perf_counter() - t) * 1e3)
        ids.append(top)
    np.save(a.ids_out, np.array(ids))
    r2, h2 = mem_kb()
    med, p99 = stats(lat)
    print(json.dumps(dict(median_ms=med, p99_ms=p99, rss0_kb=r0, rss_open_kb=r1,
                          rss_kb=r2, hwm_kb=h2)))


def worker_chroma_build(a):
    import numpy as np
    import chromadb
    m = np.fromfile(a.vecs, dtype=np.float32, count=a.n * DIM).reshape(a.n, DIM)
    shutil.rmtree(a.db, ignore_errors=True)
    client = chromadb.PersistentClient(path=a.db)
    col = client.create_collection("bench", metadata={"hnsw:space": "cosine"})
    bs = min(5000, client.get_max_batch_size())
    t = time.perf_counter()
    for i in range(0, a.n, bs):
        j = min(a.n, i + bs)
        col.add(ids=[str(x) for x in range(i, j)], embeddings=m[i:j],
                documents=["a chunk of text"] * (j - i))
    print(json.dumps(dict(build_s=time.perf_counter() - t)))


def worker_chroma_search(a):
    import numpy as np
    r0, _ = mem_kb()
    import chromadb
    q = np.fromfile(a.queries, dtype=np.float32).reshape(-1, DIM)
    client = chromadb.PersistentClient(path=a.db)
    col = client.get_collection("bench")
    t = time.perf_counter()
    col.query(query_embeddings=q[:1], n_results=K)  # loads the index
    open_ms = (time.perf_counter() - t) * 1e3
    r1, _ = mem_kb()
    lat, ids = [], []
    for i in range(len(q)):
        t = time.perf_counter()
        res = col.query(query_embeddings=q[i:i + 1], n_results=K,
                        include=["documents", "distances"])
        lat.append((time.perf_counter() - t) * 1e3)
        ids.append([int(x) for x in res["ids"][0]])
    np.save(a.ids_out, np.array(ids))
    r2, h2 = mem_kb()
    med, p99 = stats(lat)
    print(json.dumps(dict(median_ms=med, p99_ms=p99, open_ms=open_ms, rss0_kb=r0,
                          rss_open_kb=r1, rss_kb=r2, hwm_kb=h2)))


def chunk_ids(tok, text, n):
    ids = tok(text, add_special_tokens=False)["input_ids"]
    return [ids[i:i + n] for i in range(0, len(ids), n)] or [[]]


def worker_py_ingest(a):
    import torch
    torch.set_num_threads(a.threads)
    import chromadb
    from sentence_transformers import SentenceTransformer
    t_all = time.perf_counter()
    model = SentenceTransformer(a.model, device="cpu")
    tok = model.tokenizer
    shutil.rmtree(a.db, ignore_errors=True)
    client = chromadb.PersistentClient(path=a.db)
    col = client.create_collection("bench", metadata={"hnsw:space": "cosine"})
    t = time.perf_counter()
    n_chunks = 0
    for name in sorted(os.listdir(a.corpus)):
        with open(os.path.join(a.corpus, name), encoding="utf-8") as f:
            text = f.read()
        chunks = [tok.decode(c) for c in chunk_ids(tok, text, a.chunk_tokens)]
        emb = model.encode(chunks, batch_size=32, normalize_embeddings=True)
        col.add(ids=[f"{name}#{i}" for i in range(len(chunks))], embeddings=emb,
                documents=chunks, metadatas=[{"source": name}] * len(chunks))
        n_chunks += len(chunks)
    s = time.perf_counter() - t
    _, hwm = mem_kb()
    print(json.dumps(dict(chunks=n_chunks, seconds=s, chunks_per_s=n_chunks / s,
                          total_s=time.perf_counter() - t_all, hwm_kb=hwm)))


# ---- driver ----------------------------------------------------------------

def run(cmd, env=None):
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode:
        sys.stderr.write(p.stderr)
        raise SystemExit(f"failed: {' '.join(cmd)}")
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    out = json.loads(lines[-1]) if lines else {}
    out["_wall_s"] = time.perf_counter() - t
    out["_stdout"] = p.stdout
    out["_stderr"] = p.stderr
    return out


def me(*args):
    return [sys.executable, os.path.abspath(__file__), *args]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def recall(ids, exact):
    import numpy as np
    hit = sum(len(set(a.tolist()) & set(b.tolist())) for a, b in zip(ids, exact))
    return hit / exact.size


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--driver", default="build/bench/search_driver")
    ap.add_argument("--lode", default="build/lode")
    ap.add_argument("--work", default="build/bench-search")
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--chroma-max", type=int, default=100000,
                    help="largest N to run ChromaDB at (building is slow)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--corpus", default="build/corpus200",
                    help="ingest corpus (bench/corpus.sh --limit 200 -o DIR)")
    ap.add_argument("--model", default="models/all-MiniLM-L6-v2")
    ap.add_argument("--lode-model", default=None,
                    help="-m for lode ingest (default: lode's default model)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--chunk-tokens", type=int, default=200)
    ap.add_argument("--skip-ingest", action="store_true")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--vecs", help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    ap.add_argument("--ids-out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        a.queries = os.path.join(a.work, "queries.f32")
        return {"numpy": worker_numpy, "chroma-build": worker_chroma_build,
                "chroma-search": worker_chroma_search,
                "py-ingest": worker_py_ingest}[a.worker](a)

    import numpy as np
    sizes = [int(x) for x in a.sizes.split(",")]
    os.makedirs(a.work, exist_ok=True)
    vecs = os.path.join(a.work, "vecs.f32")
    qpath = os.path.join(a.work, "queries.f32")
    nmax = max(sizes)
    if not os.path.exists(vecs) or os.path.getsize(vecs) < nmax * DIM * 4:
        log(f"generating {nmax} unit vectors")
        rng = np.random.default_rng(1)
        with open(vecs, "wb") as f:
            for i in range(0, nmax, 100000):
                v = rng.standard_normal((min(100000, nmax - i), DIM), dtype=np.float32)
                v /= np.linalg.norm(v, axis=1, keepdims=True)
                v.tofile(f)
    rng = np.random.default_rng(2)
    q = rng.standard_normal((a.queries, DIM), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q.tofile(qpath)

    started = time.time()
    load0 = os.getloadavg()
    rows = []
    for n in sizes:
        raw = n * DIM * 4
        db = os.path.join(a.work, f"lode-{n}.db")
        if not os.path.exists(db):
            log(f"lode build {n}")
            b = run([a.driver, "build", db + ".tmp", vecs, str(n)])
            os.replace(db + ".tmp", db)
            rows.append(dict(n=n, system="lode build", build_s=b["build_s"]))
        log(f"numpy {n}")
        npy = os.path.join(a.work, f"numpy-{n}.npy")
        r = run(me("--worker", "numpy", "--work", a.work, "--vecs", vecs,
                   "--n", str(n), "--ids-out", npy))
        exact = np.load(npy)
        rows.append(dict(n=n, system="NumPy f32 brute force", raw=raw, recall=1.0, **r))
        for mode in ("f32", "int8"):
            log(f"lode {mode} {n}")
            idf = os.path.join(a.work, f"lode-{mode}-{n}.ids")
            r = run([a.driver, "search", db, qpath, str(a.queries), mode, idf])
            ids = np.fromfile(idf, dtype=np.int64).reshape(-1, K) - 1
            rows.append(dict(n=n, system=f"lode {mode} (exact)",
                             raw=raw if mode == "f32" else n * (DIM + 4),
                             recall=recall(ids, exact), **r))
        if n <= a.chroma_max:
            cdb = os.path.join(a.work, f"chroma-{n}")
            log(f"chroma build {n}")
            b = run(me("--worker", "chroma-build", "--work", a.work, "--vecs", vecs,
                       "--n", str(n), "--db", cdb))
            log(f"chroma search {n} (build {b['build_s']:.0f} s)")
            cid = os.path.join(a.work, f"chroma-{n}.npy")
            r = run(me("--worker", "chroma-search", "--work", a.work, "--db", cdb,
                       "--ids-out", cid))
            rows.append(dict(n=n, system="ChromaDB HNSW (approx.)", raw=raw,
                             recall=recall(np.load(cid), exact),
                             chroma_build_s=b["build_s"], **r))
            shutil.rmtree(cdb, ignore_errors=True)

    ingest = None
    if not a.skip_ingest:
        ldb = os.path.join(a.work, "ingest-lode.db")
        for p in (ldb, ldb + "-wal", ldb + "-shm"):
            if os.path.exists(p):
                os.remove(p)
        cmd = [a.lode, "ingest", "--db", ldb, "-t", str(a.threads),
               "--chunk-tokens", str(a.chunk_tokens)]
        if a.lode_model:
            cmd += ["-m", a.lode_model]
        log("lode ingest " + " ".join(cmd[2:]))
        t = time.perf_counter()
        p = subprocess.run(["/usr/bin/time", "-f", "MAXRSS %M"] + cmd + [a.corpus],
                           capture_output=True, text=True)
        lode_s = time.perf_counter() - t
        if p.returncode:
            sys.stderr.write(p.stderr)
            raise SystemExit("lode ingest failed")
        text = p.stdout + p.stderr
        m = re.findall(r"([\d,]+) chunks in ", text)
        lode_chunks = int(m[-1].replace(",", "")) if m else None
        mx = re.search(r"MAXRSS (\d+)", text)
        log("python ingest")
        py = run(me("--worker", "py-ingest", "--work", a.work, "--model", a.model,
                    "--db", os.path.join(a.work, "ingest-chroma"),
                    "--threads", str(a.threads), "--chunk-tokens",
                    str(a.chunk_tokens)) + ["--corpus", a.corpus])
        shutil.rmtree(os.path.join(a.work, "ingest-chroma"), ignore_errors=True)
        summary = [l for l in text.splitlines() if "chunks" in l]
        ingest = dict(lode_s=lode_s, lode_chunks=lode_chunks,
                      lode_hwm_kb=int(mx.group(1)) if mx else None,
                      lode_summary=summary[-1].strip() if summary else "", py=py)

    # ---- report ----
    print(f"\nCommand: {' '.join(sys.argv)}")
    print(f"Load average before / after: {load0[0]:.2f} / {os.getloadavg()[0]:.2f} "
          f"({os.cpu_count()} CPUs; run took {time.time() - started:.0f} s)\n")
    print("| N | system | median ms | p99 ms | vs lode int8 (median) | recall@10 | "
          "RSS MiB (search process) | RSS growth MiB (load + search) | "
          "raw vectors MiB (f32; int8: 388 B each) | growth / raw |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    by = {}
    for r in rows:
        if "median_ms" in r:
            by[(r["n"], r["system"])] = r
    for r in rows:
        if "median_ms" not in r:
            continue
        base = by.get((r["n"], "lode int8 (exact)"))
        ratio = r["median_ms"] / base["median_ms"] if base else float("nan")
        grow = (max(r["rss_kb"], r["hwm_kb"]) - r["rss0_kb"]) / 1024
        raw = r["raw"] / 2**20
        print(f"| {r['n']:,} | {r['system']} | {r['median_ms']:.3f} | {r['p99_ms']:.3f} | "
              f"{ratio:.2f}x | {r['recall']:.3f} | {r['hwm_kb'] / 1024:.0f} | "
              f"{grow:.0f} | {raw:.0f} | {grow / raw:.2f} |")
    builds = [r for r in rows if "chroma_build_s" in r]
    lb = [r for r in rows if r["system"] == "lode build"]
    if builds or lb:
        print("\nBuild times (not a goal; lode: one SQLite transaction per 100 "
              "chunks; ChromaDB: add() in batches of 5000):")
        for r in lb:
            print(f"- lode store, {r['n']:,} vectors: {r['build_s']:.1f} s")
        for r in builds:
            print(f"- ChromaDB, {r['n']:,} vectors: {r['chroma_build_s']:.1f} s")
    if ingest:
        py = ingest["py"]
        lc = ingest["lode_chunks"]
        lcs = lc / ingest["lode_s"] if lc else float("nan")
        print(f"\nIngest of {a.corpus} ({len(os.listdir(a.corpus))} files), "
              f"{a.threads} threads, {a.chunk_tokens}-token chunks:\n")
        print("| pipeline | chunks | seconds | chunks/s | peak RSS MiB | ratio |")
        print("|---|---|---|---|---|---|")
        print(f"| lode ingest (wall time of the whole command) | {lc} | "
              f"{ingest['lode_s']:.1f} | {lcs:.1f} | "
              f"{(ingest['lode_hwm_kb'] or 0) / 1024:.0f} | "
              f"{lcs / py['chunks_per_s']:.2f}x |")
        print(f"| Python: sentence-transformers + ChromaDB (excl. {py['total_s'] - py['seconds']:.1f} s "
              f"imports/model load) | {py['chunks']} | {py['seconds']:.1f} | "
              f"{py['chunks_per_s']:.1f} | {py['hwm_kb'] / 1024:.0f} | 1.00x |")
        print(f"\nlode's summary line: `{ingest['lode_summary']}`")
    with open(os.path.join(a.work, "results.json"), "w") as f:
        json.dump(dict(rows=[{k: v for k, v in r.items() if not k.startswith("_")}
                             for r in rows],
                       ingest=ingest and {k: v for k, v in ingest.items()}), f,
                  indent=1, default=str)


if __name__ == "__main__":
    main()
