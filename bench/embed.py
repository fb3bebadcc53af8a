#!/usr/bin/env python3
"""embed.py - sentence embedding speed, lode against its peers, in one run.

Run it through bench/embed.sh, which builds lode and sets up .venv-bench.
Peers, all on all-MiniLM-L6-v2, the same texts and the same thread count:

  lode f32 (the Hugging Face directory), lode f16 and q8_0 (GGUF files
  made by `lode convert`); sentence-transformers fp32 (PyTorch,
  torch.set_num_threads); ONNX Runtime fp32 (torch.onnx.export of BERT +
  mean pooling + normalisation) and int8 (onnxruntime's quantize_dynamic
  of that file), intra_op_num_threads set; llama.cpp through
  llama-cpp-python on the same q8_0 and f16 GGUF files lode reads
  (n_threads and n_threads_batch set, n_batch = n_ubatch = 512, its
  default: see load_llama).

What is measured, and how it is kept fair:

  throughput  sentences/s for short (12 tokens with [CLS]/[SEP]), medium
              (60) and long (256, the model's max_seq_length) texts, at
              each thread count.  Texts are generated English sentences
              of single-token words, so every peer sees exactly that many
              tokens and batches carry no padding.  Python peers are timed
              in process after one warm-up batch, in batches of --batch
              texts (tokenisation included).  lode is timed as a process:
              `lode embed -m MODEL -t T --json` with all texts on stdin,
              minus the median time of the same command with empty stdin
              (start, load, exit): what is left is tokenising, embedding
              and printing JSON vectors (printing is lode's handicap: the
              peers hand back arrays).  lode has no padded batch: its CLI
              embeds up to 256 texts per call, each at its own length.
  latency     one short text per call, median over --latency-reps calls
              after a warm-up, in process: bench/latency.c for lode (the
              CLI cannot answer one stdin line at a time).
  cold start  from spawning a process to reading its first embedding:
              `lode embed -m MODEL -t 1 TEXT`, and for each Python peer a
              fresh interpreter that imports, loads, embeds and prints.
  peak RSS    of that same cold-start process (GNU time's %M).

Every number is the median of --reps repetitions.  The machine's load
average is printed before and after: numbers taken while it is above the
CPU count say more about the scheduler than about the code.
"""
import argparse
import datetime
import json
import os
import platform
import random
import shlex
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LENGTHS = {"short": 12, "medium": 60, "long": 256}
N_TEXTS = {"short": 512, "medium": 128, "long": 32}
PY_PEERS = ["st-fp32", "ort-fp32", "ort-int8", "llama-q8_0", "llama-f16"]
LODE_PEERS = ["lode-f32", "lode-f16", "lode-q8_0"]
LABELS = {
    "lode-f32": "lode f32", "lode-f16": "lode f16", "lode-q8_0": "lode q8_0",
    "st-fp32": "sentence-transformers fp32", "ort-fp32": "ONNX Runtime fp32",
    "ort-int8": "ONNX Runtime int8", "llama-q8_0": "llama.cpp q8_0",
    "llama-f16": "llama.cpp f16",
}

# ---- texts -----------------------------------------------------------------

ADJECTIVES = """old small young red green blue black white big little long
short new good bad hot cold quiet dark bright happy sad tall soft hard
warm kind brave quick slow strong""".split()
NOUNS = """dog cat man woman child bird horse river city house tree car
boat book door table road field garden school teacher doctor friend king
farmer window letter song story stone hill lake""".split()
VERBS = """saw found took gave made left kept held sent met heard told
knew moved carried watched helped followed opened closed""".split()
PREPOSITIONS = """near under behind beside across into over from with""".split()


def single_token_words(lode, model):
    """The word lists, minus any word the model's vocabulary splits."""
    words = sorted(set(ADJECTIVES + NOUNS + VERBS + PREPOSITIONS +
                       ["the", "a"]))
    out = subprocess.run([lode, "tokenize", "-m", model, *words],
                         capture_output=True, text=True, check=True).stdout
    return {w for w, ids in zip(words, out.splitlines())
            if len(json.loads(ids)) == 3}


def sentence_stream(rng, ok):
    pick = lambda ws: rng.choice([w for w in ws if w in ok])  # noqa: E731
    while True:
        words = ["the", pick(ADJECTIVES), pick(NOUNS), pick(VERBS), "a",
                 pick(ADJECTIVES), pick(NOUNS), pick(PREPOSITIONS), "the",
                 pick(NOUNS)]
        yield words + ["."]


def make_text(rng, ok, n_tokens):
    """English-like text of exactly n_tokens ids with [CLS] and [SEP]:
    whole sentences, the last one cut short and closed with a period."""
    want = n_tokens - 2
    tokens = []
    for sentence in sentence_stream(rng, ok):
        if len(tokens) + len(sentence) <= want:
            tokens += sentence
        else:
            tokens += sentence[:want - len(tokens) - 1] + ["."]
        if len(tokens) >= want:
            break
    text = " ".join(tokens).replace(" .", ".")
    return ". ".join(s[:1].upper() + s[1:] for s in text.split(". "))


def make_texts(lode, model, seed=1):
    ok = single_token_words(lode, model)
    rng = random.Random(seed)
    texts = {name: [make_text(rng, ok, n) for _ in range(N_TEXTS[name])]
             for name, n in LENGTHS.items()}
    for name, group in texts.items():  # check the counts with lode itself
        stdin = "".join(json.dumps(t) + "\n" for t in group)
        out = subprocess.run([lode, "tokenize", "-m", model, "--json"],
                             input=stdin, capture_output=True, text=True,
                             check=True).stdout
        lens = {len(json.loads(line)) for line in out.splitlines()}
        if lens != {LENGTHS[name]}:
            sys.exit(f"embed.py: {name} texts have {sorted(lens)} tokens, "
                     f"want {LENGTHS[name]}")
    return texts


# ---- Python peers (run in their own processes) -----------------------------

class Peer:
    """load() then embed(list of texts) -> list of vectors."""

    def __init__(self, name, threads, batch, files):
        self.name, self.threads, self.batch, self.files = \
            name, threads, batch, files

    def load(self):
        kind = self.name.split("-")[0]
        getattr(self, "load_" + kind)()

    def load_st(self):
        import torch
        torch.set_num_threads(self.threads)
        torch.set_num_interop_threads(1)
        from sentence_transformers import SentenceTransformer
        self.st = SentenceTransformer(self.files["hf"], device="cpu")
        self.embed = lambda texts: self.st.encode(
            texts, batch_size=self.batch, convert_to_numpy=True)

    def load_ort(self):
        import numpy as np
        import onnxruntime as ort
        from tokenizers import Tokenizer
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        path = self.files["onnx-" + self.name.split("-")[1]]
        self.session = ort.InferenceSession(
            path, opts, providers=["CPUExecutionProvider"])
        # The tokenizers library alone, as an ONNX deployment would use it
        # (transformers would import PyTorch).
        self.tok = Tokenizer.from_file(os.path.join(self.files["hf"],
                                                    "tokenizer.json"))
        self.tok.enable_truncation(256)
        self.tok.enable_padding()

        def embed(texts):
            out = []
            for i in range(0, len(texts), self.batch):
                enc = self.tok.encode_batch(texts[i:i + self.batch])
                feeds = {
                    "input_ids": np.array([e.ids for e in enc], np.int64),
                    "attention_mask": np.array([e.attention_mask
                                                for e in enc], np.int64),
                    "token_type_ids": np.array([e.type_ids for e in enc],
                                               np.int64)}
                out.extend(self.session.run(None, feeds)[0])
            return out
        self.embed = embed

    def load_llama(self):
        from llama_cpp import Llama
        # llama.cpp runs a BERT ubatch as one attention over all its tokens
        # with a mask between sequences, so a big ubatch costs attention
        # quadratic in the whole batch: keep its default 512 (two long
        # texts, or forty short ones, per ubatch).
        n = 512
        self.llm = Llama(model_path=self.files["gguf-" +
                                               self.name.split("-")[1]],
                         embedding=True, n_ctx=n, n_batch=n, n_ubatch=n,
                         n_threads=self.threads, n_threads_batch=self.threads,
                         verbose=False)

        def embed(texts):
            out = []
            for i in range(0, len(texts), self.batch):
                out.extend(self.llm.embed(texts[i:i + self.batch],
                                          normalize=True))
            return out
        self.embed = embed


def worker(args):
    """Throughput for each length and one-text latency; JSON on stdout."""
    files = json.loads(args.files)
    texts = json.load(open(args.texts))
    peer = Peer(args.worker, args.threads, args.batch, files)
    peer.load()
    result = {"throughput": {}, "latency_ms": None}
    for name, group in texts.items():
        peer.embed(group[:args.batch])  # warm-up
        rates = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            vecs = peer.embed(group)
            rates.append(len(group) / (time.perf_counter() - t0))
            assert len(vecs) == len(group) and len(vecs[0]) == 384
        result["throughput"][name] = statistics.median(rates)
    query = texts["short"][0]
    peer.embed([query])
    times = []
    for _ in range(args.latency_reps):
        t0 = time.perf_counter()
        peer.embed([query])
        times.append(time.perf_counter() - t0)
    result["latency_ms"] = statistics.median(times) * 1e3
    print(json.dumps(result))


def cold(args):
    """A fresh process: import, load, embed one text, print it."""
    peer = Peer(args.cold, 1, 1, json.loads(args.files))
    peer.load()
    vec = peer.embed([args.text])[0]
    print(json.dumps([float(x) for x in vec]), flush=True)


# ---- the orchestrator ------------------------------------------------------

def spawn_timed(cmd, env=None, stdin_text=None):
    """Run cmd; return (seconds to the first stdout line, peak RSS in MB,
    all stdout).  The peak comes from GNU time (Debian package `time`):
    Linux carries a forked child's high-water mark through exec, so
    wait4() on a child of this (large) process would report our size."""
    import tempfile
    fd, rss_path = tempfile.mkstemp()
    os.close(fd)
    cmd = ["/usr/bin/time", "-f", "%M", "-o", rss_path] + cmd
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin_text else
                         subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, text=True)
    if stdin_text:
        p.stdin.write(stdin_text)
        p.stdin.close()
    first = p.stdout.readline()
    t_first = time.perf_counter() - t0
    rest = p.stdout.read()
    err = p.stderr.read()
    p.wait()
    with open(rss_path) as f:
        peak_kb = int(f.read().split()[-1])
    os.unlink(rss_path)
    if p.returncode != 0:
        raise RuntimeError(f"{shlex.join(cmd)} failed: {err.strip()}")
    return t_first, peak_kb / 1024, first + rest


def thread_env(threads):
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    env["TOKENIZERS_PARALLELISM"] = "false"
    return env


def lode_throughput(lode, model, threads, group, reps):
    cmd = [lode, "embed", "-m", model, "-t", str(threads), "--json"]
    stdin = "".join(json.dumps(t) + "\n" for t in group)
    empty = []
    for _ in range(reps):
        t0 = time.perf_counter()
        subprocess.run(cmd, stdin=subprocess.DEVNULL, check=True,
                       stdout=subprocess.DEVNULL)
        empty.append(time.perf_counter() - t0)
    base = statistics.median(empty)
    rates = []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = subprocess.run(cmd, input=stdin, capture_output=True, text=True,
                             check=True).stdout
        rates.append(len(group) / (time.perf_counter() - t0 - base))
        assert out.count("\n") == len(group)
    return statistics.median(rates)


def prepare(args, work):
    """GGUF files from lode convert and the ONNX files; reused if present."""
    files = {"hf": args.model,
             "gguf-f16": os.path.join(work, "minilm-f16.gguf"),
             "gguf-q8_0": os.path.join(work, "minilm-q8_0.gguf"),
             "onnx-fp32": os.path.join(work, "minilm-fp32.onnx"),
             "onnx-int8": os.path.join(work, "minilm-int8.onnx")}
    os.makedirs(work, exist_ok=True)
    for t in ("f16", "q8_0"):
        if not os.path.exists(files["gguf-" + t]):
            subprocess.run([args.lode, "convert", args.model,
                            files["gguf-" + t], "--type", t], check=True)
    if not os.path.exists(files["onnx-int8"]):
        subprocess.run([sys.executable, __file__, "--export-onnx",
                        "--files", json.dumps(files)], check=True)
    return files


def export_onnx(args):
    """BERT + mean pooling + L2 normalisation as one ONNX graph (fp32),
    then onnxruntime's dynamic int8 quantisation of it."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel, AutoTokenizer
    files = json.loads(args.files)
    bert = AutoModel.from_pretrained(files["hf"], attn_implementation="eager")
    bert.eval()

    class Embedder(torch.nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.bert(input_ids=input_ids,
                               attention_mask=attention_mask,
                               token_type_ids=token_type_ids)[0]
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2, dim=1)

    tok = AutoTokenizer.from_pretrained(files["hf"])
    enc = tok(["a sample text", "and a second, longer sample text"],
              padding=True, return_tensors="pt")
    dynamic = {"input_ids": {0: "batch", 1: "seq"},
               "attention_mask": {0: "batch", 1: "seq"},
               "token_type_ids": {0: "batch", 1: "seq"},
               "embedding": {0: "batch"}}
    with torch.no_grad():
        torch.onnx.export(
            Embedder(bert), (enc["input_ids"], enc["attention_mask"],
                             enc["token_type_ids"]),
            files["onnx-fp32"], dynamo=False, opset_version=17,
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["embedding"], dynamic_axes=dynamic)
    quantize_dynamic(files["onnx-fp32"], files["onnx-int8"],
                     weight_type=QuantType.QInt8)


def versions():
    """Peer versions, from a child: importing the peers here would grow
    this process by hundreds of MB."""
    code = ("import json\nout = {}\n"
            "for mod in ('torch', 'sentence_transformers', 'onnxruntime',"
            " 'llama_cpp', 'numpy'):\n"
            "    try:\n        out[mod] = __import__(mod).__version__\n"
            "    except Exception:\n        out[mod] = '?'\n"
            "print(json.dumps(out))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True)
    return json.loads(out.stdout) if out.returncode == 0 else {}


def fmt(x, digits=0):
    if x is None:
        return "-"
    return f"{x:,.{digits}f}"


def report(args, results, load_before, load_after, command):
    thr = args.threads
    cols = [(n, t) for t in thr for n in LENGTHS]
    lines = []
    add = lines.append
    add(f"# Embedding benchmark, {datetime.date.today().isoformat()}")
    add("")
    add(f"Command: `{command}`")
    add("")
    add(f"Machine: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs ({_cpu_model()}); load average before "
        f"{load_before[0]:.2f}, after {load_after[0]:.2f}.  Medians of "
        f"{args.reps} runs; batch {args.batch}; texts per run: " +
        ", ".join(f"{N_TEXTS[n]} {n} ({LENGTHS[n]} tokens)" for n in LENGTHS)
        + ".")
    add("")
    add("Versions: " + ", ".join(f"{k} {v}" for k, v in
                                 results["versions"].items()))
    add("")
    add("## Throughput (sentences/s)")
    add("")
    add("| peer | " + " | ".join(f"{n} {t}T" for n, t in cols) + " |")
    add("|---|" + "---|" * len(cols))
    ran = [p for p in LODE_PEERS + PY_PEERS if p in results["throughput"]]
    for peer in ran:
        row = [fmt(results["throughput"].get(peer, {}).get(f"{n}/{t}"))
               for n, t in cols]
        add(f"| {LABELS[peer]} | " + " | ".join(row) + " |")
    add("")
    add("## Ratios lode / peer (throughput)")
    add("")
    add("| ratio | " + " | ".join(f"{n} {t}T" for n, t in cols) + " |")
    add("|---|" + "---|" * len(cols))
    for ours, theirs in RATIOS:
        if ours not in ran or theirs not in ran:
            continue
        row = []
        for n, t in cols:
            a = results["throughput"].get(ours, {}).get(f"{n}/{t}")
            b = results["throughput"].get(theirs, {}).get(f"{n}/{t}")
            row.append(f"{a / b:.2f}" if a and b else "-")
        add(f"| {LABELS[ours]} / {LABELS[theirs]} | " + " | ".join(row) +
            " |")
    add("")
    add("## One short query, cold start, memory")
    add("")
    add("| peer | " + " | ".join(f"latency {t}T (ms)" for t in thr) +
        " | cold start (ms) | peak RSS (MB) |")
    add("|---|" + "---|" * (len(thr) + 2))
    for peer in ran:
        lat = [fmt(results["latency_ms"].get(peer, {}).get(str(t)), 2)
               for t in thr]
        c = results["cold"].get(peer, {})
        add(f"| {LABELS[peer]} | " + " | ".join(lat) +
            f" | {fmt(c.get('start_ms'), 1)} | {fmt(c.get('rss_mb'), 1)} |")
    add("")
    add("## Goals")
    add("")
    for line in goals(args, results):
        add(f"- {line}")
    add("")
    return "\n".join(lines)


RATIOS = [("lode-q8_0", "st-fp32"), ("lode-q8_0", "ort-int8"),
          ("lode-q8_0", "llama-q8_0"), ("lode-q8_0", "ort-fp32"),
          ("lode-f32", "st-fp32"), ("lode-f32", "ort-fp32"),
          ("lode-f16", "llama-f16")]


def goals(args, results):
    out = []
    thr = results["throughput"]
    for ours, theirs, want in (("lode-q8_0", "st-fp32", 4.0),
                               ("lode-q8_0", "ort-int8", 1.5),
                               ("lode-q8_0", "llama-q8_0", 1.2),
                               ("lode-f32", "st-fp32", 1.5)):
        ratios = {k: thr[ours][k] / thr[theirs][k] for k in thr.get(ours, {})
                  if thr.get(theirs, {}).get(k)}
        if not ratios:
            continue
        worst = min(ratios, key=ratios.get)
        ok = ratios[worst] >= want
        out.append(f"{'MET' if ok else 'MISSED'}: {LABELS[ours]} >= {want}x "
                   f"{LABELS[theirs]} everywhere (lowest {ratios[worst]:.2f}x"
                   f" at {worst.replace('/', ' ')}T)")
    lat = results["latency_ms"].get("lode-q8_0", {}).get("1")
    if lat is not None:
        out.append(f"{'MET' if lat < 2 else 'MISSED'}: one short query, "
                   f"q8_0, 1 thread < 2 ms ({lat:.2f} ms)")
    c = results["cold"].get("lode-q8_0", {})
    if c:
        out.append(f"{'MET' if c['start_ms'] < 50 else 'MISSED'}: cold "
                   f"start q8_0 < 50 ms ({c['start_ms']:.1f} ms)")
        out.append(f"{'MET' if c['rss_mb'] < 40 else 'MISSED'}: peak RSS "
                   f"of lode embed, one short text < 40 MB "
                   f"({c['rss_mb']:.1f} MB)")
    return out


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lode", default=os.path.join(ROOT, "lode"))
    ap.add_argument("--latency-bin",
                    default=os.path.join(ROOT, "build", "bench", "latency"))
    ap.add_argument("--model", default=os.path.join(ROOT, "models",
                                                    "all-MiniLM-L6-v2"))
    ap.add_argument("--work", default=os.path.join(ROOT, "models", "bench"),
                    help="where the GGUF and ONNX files go")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--latency-reps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--peers", default=",".join(LODE_PEERS + PY_PEERS))
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    # internal modes
    ap.add_argument("--worker")
    ap.add_argument("--cold")
    ap.add_argument("--export-onnx", action="store_true")
    ap.add_argument("--files")
    ap.add_argument("--texts")
    ap.add_argument("--text")
    args = ap.parse_args()
    if args.export_onnx:
        return export_onnx(args)
    if args.worker:
        args.threads = int(args.threads)
        return worker(args)
    if args.cold:
        return cold(args)

    command = shlex.join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:])
    args.threads = [int(t) for t in args.threads.split(",")]
    peers = args.peers.split(",")
    load_before = os.getloadavg()
    print(f"load average {load_before[0]:.2f} on {os.cpu_count()} CPUs",
          file=sys.stderr)
    files = prepare(args, args.work)
    texts = make_texts(args.lode, files["gguf-q8_0"])
    texts_path = os.path.join(args.work, "texts.json")
    with open(texts_path, "w") as f:
        json.dump(texts, f)
    lode_models = {"lode-f32": files["hf"], "lode-f16": files["gguf-f16"],
                   "lode-q8_0": files["gguf-q8_0"]}
    results = {"throughput": {}, "latency_ms": {}, "cold": {},
               "versions": versions()}
    query = texts["short"][0]
    for peer in peers:
        print(f"{peer} ...", file=sys.stderr, flush=True)
        thr = results["throughput"].setdefault(peer, {})
        lat = results["latency_ms"].setdefault(peer, {})
        for t in args.threads:
            if peer in lode_models:
                for name, group in texts.items():
                    thr[f"{name}/{t}"] = lode_throughput(
                        args.lode, lode_models[peer], t, group, args.reps)
                out = subprocess.run(
                    [args.latency_bin, lode_models[peer], str(t),
                     str(args.latency_reps), query],
                    capture_output=True, text=True, check=True).stdout
                lat[str(t)] = json.loads(out)["median_us"] / 1e3
            else:
                out = subprocess.run(
                    [sys.executable, __file__, "--worker", peer,
                     "--threads", str(t), "--batch", str(args.batch),
                     "--reps", str(args.reps), "--latency-reps",
                     str(args.latency_reps), "--files", json.dumps(files),
                     "--texts", texts_path],
                    capture_output=True, text=True, env=thread_env(t))
                if out.returncode != 0:
                    print(out.stderr, file=sys.stderr)
                    continue
                r = json.loads(out.stdout.splitlines()[-1])
                for name, v in r["throughput"].items():
                    thr[f"{name}/{t}"] = v
                lat[str(t)] = r["latency_ms"]
            print(f"  {t}T: " + ", ".join(f"{k} {v:.0f}/s" for k, v in
                                          thr.items() if k.endswith(f"/{t}"))
                  + f"; latency {lat.get(str(t), 0):.2f} ms", file=sys.stderr,
                  flush=True)
        starts, rss = [], []
        for _ in range(args.reps):
            if peer in lode_models:
                cmd = [args.lode, "embed", "-m", lode_models[peer], "-t", "1",
                       query]
            else:
                cmd = [sys.executable, __file__, "--cold", peer, "--files",
                       json.dumps(files), "--text", query]
            t_first, peak, _ = spawn_timed(cmd, env=thread_env(1))
            starts.append(t_first * 1e3)
            rss.append(peak)
        results["cold"][peer] = {"start_ms": statistics.median(starts),
                                 "rss_mb": statistics.median(rss)}
        print(f"  cold start {results['cold'][peer]['start_ms']:.1f} ms, "
              f"peak RSS {results['cold'][peer]['rss_mb']:.1f} MB",
              file=sys.stderr, flush=True)
    load_after = os.getloadavg()
    md = report(args, results, load_before, load_after, command)
    print(md)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"embed-{datetime.date.today()}.md")
    with open(path, "w") as f:
        f.write(md)
    with open(path[:-3] + ".json", "w") as f:
        json.dump(results, f, indent=1)
    print(f"written to {os.path.relpath(path, ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
