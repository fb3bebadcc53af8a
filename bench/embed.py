#!/usr/bin/env python3
"""embed.py - sentence embedding speed, lode against its peers, in one run.

Run it through bench/embed.sh, which builds lode and sets up .venv-bench.
Peers, all on all-MiniLM-L6-v2, the same texts and the same thread count:

  lode f32 (the Hugging Face directory), lode f16, q8_0 and q8_128
  (GGUF files made by `lode convert`; q8_128 is lode's format for AMX,
  on the scalar reference elsewhere), each measured twice (as a process
  and in process, see below); sentence-transformers fp32 (PyTorch,
  torch.set_num_threads); ONNX Runtime fp32 (torch.onnx.export of BERT +
  mean pooling + normalisation) and int8 (onnxruntime's quantize_dynamic
  of that file), intra_op_num_threads set; llama.cpp through
  llama-cpp-python on the same q8_0 and f16 GGUF files lode reads
  (n_threads and n_threads_batch set, n_batch = n_ubatch = 512, its
  default: see load_llama); OpenVINO f32 (that ONNX file converted to IR,
  inference precision pinned to f32) and int8 (NNCF post-training
  quantisation of the IR, model_type TRANSFORMER, calibrated on a fixed
  set of paragraphs from data/sample/), one stream of
  INFERENCE_NUM_THREADS threads (see load_ov); CTranslate2 int8 (its
  Transformers converter, int8 weights, compute_type int8, intra_threads
  set; mean pooling and normalisation in NumPy on its token outputs).

Every conversion (GGUF, ONNX, OpenVINO IR, NNCF calibration, CTranslate2)
happens before anything is timed, from the local model directory with the
Hugging Face hub switched off (HF_HUB_OFFLINE), into --work (default
build/embed, git-ignored), and is reused while its file is there: delete
a file to rebuild it.

What is measured, and how it is kept fair:

  throughput  sentences/s for short (12 tokens with [CLS]/[SEP]), medium
              (60) and long (256, the model's max_seq_length) texts, at
              each thread count.  Texts are generated English sentences
              of single-token words, so every peer sees exactly that many
              tokens and batches carry no padding.  Python peers are timed
              in process after one warm-up batch, in batches of --batch
              texts (tokenisation included).  lode is timed two ways,
              each its own row:
              - as a process (rows "lode f32", "lode f16", "lode q8_0"):
                `lode embed -m MODEL -t T --json` with all texts on
                stdin, minus the median time of the same command with
                empty stdin (start, load, exit).  What is left is
                tokenising, embedding and printing JSON vectors, plus
                one-time costs a long-running server does not pay:
                first-touch page faults of tens of MB of scratch memory,
                cold caches, and printing (the peers hand back arrays).
                The CLI embeds up to 256 texts per library call.
              - in process (rows "lode ... (in process, batches of B)",
                peers lode-f32-inproc, lode-f16-inproc,
                lode-q8_0-inproc, lode-q8_128-inproc), as the Python
                peers are timed:
                `bench/latency --throughput` loads the model, embeds all
                texts once to warm up (the Python peers warm up on one
                batch), then times each of --reps passes over all texts
                in model_embed calls of --batch texts (tokenisation
                included, no printing); its accuracy comes from the
                vectors of its last pass.
              lode has no padded batch: a model_embed call embeds each
              text at its own length.
  latency     one short text per call, median over --latency-reps calls
              after a warm-up, in process: bench/latency.c for lode (the
              CLI cannot answer one stdin line at a time); shown on the
              lode rows only, as the in-process rows would repeat it.
  cold start  from spawning a process to reading its first embedding:
              `lode embed -m MODEL -t 1 TEXT`, and for each Python peer a
              fresh interpreter that imports, loads, embeds and prints
              (not taken for the in-process lode rows: same process).
  peak RSS    of that same cold-start process (GNU time's %M).
  accuracy    min cosine, over every text of every set and thread count,
              between a peer's vector and sentence-transformers' (fp32,
              computed once per set of texts and kept in --work).

Every number is the median of --reps repetitions.  The machine's load
average is printed before and after: numbers taken while it is above the
CPU count say more about the scheduler than about the code.
"""
import argparse
import datetime
import hashlib
import json
import math
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
PY_PEERS = ["st-fp32", "ort-fp32", "ort-int8", "ov-fp32", "ov-int8",
            "ct2-int8", "llama-q8_0", "llama-f16"]
LODE_PEERS = ["lode-f32", "lode-f16", "lode-q8_0", "lode-q8_128"]
# The same models timed in process by bench/latency --throughput.
INPROC_PEERS = [p + "-inproc" for p in LODE_PEERS]
ALL_PEERS = LODE_PEERS + INPROC_PEERS + PY_PEERS
LABELS = {
    "lode-f32": "lode f32", "lode-f16": "lode f16", "lode-q8_0": "lode q8_0",
    "lode-q8_128": "lode q8_128",
    "st-fp32": "sentence-transformers fp32", "ort-fp32": "ONNX Runtime fp32",
    "ort-int8": "ONNX Runtime int8", "llama-q8_0": "llama.cpp q8_0",
    "llama-f16": "llama.cpp f16", "ov-fp32": "OpenVINO f32",
    "ov-int8": "OpenVINO int8 (NNCF)", "ct2-int8": "CTranslate2 int8",
}
for _p in LODE_PEERS:   # "{batch}" is filled in with --batch by main()
    LABELS[_p + "-inproc"] = LABELS[_p] + " (in process, batches of {batch})"
# Calibration set for NNCF: the first paragraphs of data/sample/.
CALIBRATION_TEXTS = 300

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


def make_texts(lode, model, counts, seed=1):
    ok = single_token_words(lode, model)
    rng = random.Random(seed)
    # The whole sets, then the first counts[name] of each: a short run
    # embeds the first texts of the full one.
    texts = {name: [make_text(rng, ok, n) for _ in range(N_TEXTS[name])]
             [:counts[name]] for name, n in LENGTHS.items()}
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
        self.settings = {}   # what the peer reports it was set to

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

    def tokenizer(self):
        """The tokenizers library alone, as an ONNX, OpenVINO or
        CTranslate2 deployment would use it (transformers would import
        PyTorch); truncation at the model's 256 tokens, padding to the
        longest text of a batch."""
        from tokenizers import Tokenizer
        tok = Tokenizer.from_file(os.path.join(self.files["hf"],
                                               "tokenizer.json"))
        tok.enable_truncation(256)
        tok.enable_padding()
        return tok

    def batched(self, run):
        """embed(texts): run(feeds) -> [batch][384] for each batch of
        self.batch texts, feeds as BERT's three int64 inputs."""
        import numpy as np
        tok = self.tokenizer()

        def embed(texts):
            out = []
            for i in range(0, len(texts), self.batch):
                enc = tok.encode_batch(texts[i:i + self.batch])
                feeds = {
                    "input_ids": np.array([e.ids for e in enc], np.int64),
                    "attention_mask": np.array([e.attention_mask
                                                for e in enc], np.int64),
                    "token_type_ids": np.array([e.type_ids for e in enc],
                                               np.int64)}
                out.extend(run(feeds))
            return out
        return embed

    def load_ort(self):
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        path = self.files["onnx-" + self.name.split("-")[1]]
        self.session = ort.InferenceSession(
            path, opts, providers=["CPUExecutionProvider"])
        self.embed = self.batched(lambda feeds:
                                  self.session.run(None, feeds)[0])

    def load_ov(self):
        import numpy as np
        import openvino as ov
        import openvino.properties as props
        import openvino.properties.hint as hints
        # Threads: one stream (one inference at a time, as every peer here
        # runs) of exactly self.threads threads.  INFERENCE_NUM_THREADS and
        # NUM_STREAMS set explicitly override what the LATENCY hint would
        # pick; the values the compiled model reports are kept in the
        # results ("settings").  f32 pins inference precision to f32: on
        # CPUs with AMX, OpenVINO would otherwise run f32 models in bf16.
        # int8 keeps OpenVINO's default for the layers NNCF left in float,
        # as its documented int8 path does.
        config = {props.inference_num_threads: self.threads,
                  props.num_streams: 1,
                  hints.performance_mode: hints.PerformanceMode.LATENCY}
        if self.name == "ov-fp32":
            config[hints.inference_precision] = ov.Type.f32
        core = ov.Core()
        self.compiled = core.compile_model(self.files[self.name], "CPU",
                                           config)
        self.settings = {}
        for key in (props.inference_num_threads, props.num_streams,
                    hints.inference_precision, hints.performance_mode,
                    hints.enable_cpu_pinning):
            value = self.compiled.get_property(key)
            self.settings[key] = (value.get_type_name()
                                  if isinstance(value, ov.Type) else
                                  str(value))
        request = self.compiled.create_infer_request()
        output = self.compiled.output(0)
        # The output tensor is reused by the next call: copy it out.
        self.embed = self.batched(
            lambda feeds: np.array(request.infer(feeds)[output]))

    def load_ct2(self):
        import ctranslate2
        import numpy as np
        # Threads: intra_threads is the OpenMP team of one batch (what the
        # other peers' thread count means); inter_threads = 1, as one batch
        # runs at a time.  OMP_NUM_THREADS is set to the same (thread_env).
        self.encoder = ctranslate2.Encoder(
            self.files[self.name], device="cpu", compute_type="int8",
            intra_threads=self.threads, inter_threads=1)
        self.settings = {"compute_type": self.encoder.compute_type,
                         "intra_threads": self.threads}

        def run(feeds):
            # CTranslate2's encoder gives token outputs: mean pooling over
            # the attention mask and L2 normalisation, as
            # sentence-transformers does.
            ids, mask = feeds["input_ids"], feeds["attention_mask"]
            lengths = mask.sum(1)
            out = self.encoder.forward_batch(
                [list(row[:n]) for row, n in zip(ids.tolist(), lengths)],
                token_type_ids=[list(row[:n]) for row, n in
                                zip(feeds["token_type_ids"].tolist(),
                                    lengths)])
            hidden = np.array(out.last_hidden_state)   # [batch][len][384]
            m = mask[:, :hidden.shape[1], None].astype(hidden.dtype)
            mean = (hidden * m).sum(1) / np.maximum(m.sum(1), 1e-9)
            norm = np.linalg.norm(mean, axis=1, keepdims=True)
            return mean / np.maximum(norm, 1e-12)
        self.embed = self.batched(run)

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
    texts = json.load(open(args.texts_file))
    reference = json.load(open(args.reference)) if args.reference else None
    peer = Peer(args.worker, args.threads, args.batch, files)
    peer.load()
    result = {"throughput": {}, "latency_ms": None, "min_cosine": {},
              "settings": peer.settings}
    for name, group in texts.items():
        peer.embed(group[:args.batch])  # warm-up
        rates = []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            vecs = peer.embed(group)
            rates.append(len(group) / (time.perf_counter() - t0))
            assert len(vecs) == len(group) and len(vecs[0]) == 384
        result["throughput"][name] = statistics.median(rates)
        if reference:
            result["min_cosine"][name] = min_cosine(vecs, reference[name])
    query = texts["short"][0]
    peer.embed([query])
    times = []
    for _ in range(args.latency_reps):
        t0 = time.perf_counter()
        peer.embed([query])
        times.append(time.perf_counter() - t0)
    result["latency_ms"] = statistics.median(times) * 1e3
    print(json.dumps(result))


def min_cosine(vecs, refs):
    """The lowest cosine between vecs[i] and refs[i] (plain Python: the
    orchestrator does not import NumPy)."""
    worst = 1.0
    for a, b in zip(vecs, refs, strict=True):
        a = [float(x) for x in a]
        dot = sum(x * y for x, y in zip(a, b))
        na = math.sqrt(sum(x * x for x in a))
        nb = math.sqrt(sum(y * y for y in b))
        worst = min(worst, dot / (na * nb) if na and nb else 0.0)
    return worst


def reference_vectors(args):
    """sentence-transformers fp32 vectors of every text, the reference of
    the accuracy column; JSON {set: [[384 floats]...]} written to the
    --make-reference path."""
    texts = json.load(open(args.texts_file))
    peer = Peer("st-fp32", args.threads, args.batch, json.loads(args.files))
    peer.load()
    out = {name: [[float(x) for x in v] for v in peer.embed(group)]
           for name, group in texts.items()}
    tmp = args.make_reference + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f)
    os.replace(tmp, args.make_reference)


def reference(args, files, texts_path):
    """The path of sentence-transformers' vectors of these texts, made by a
    child when no earlier run left them (named by a hash of the texts)."""
    with open(texts_path, "rb") as f:
        digest = hashlib.sha256(f.read() + args.model.encode()).hexdigest()
    path = os.path.join(args.work, f"reference-{digest[:16]}.json")
    if not os.path.exists(path):
        threads = max(args.threads)
        print("reference vectors (sentence-transformers) ...",
              file=sys.stderr, flush=True)
        subprocess.run([sys.executable, __file__, "--make-reference", path,
                        "--threads", str(threads), "--batch",
                        str(args.batch), "--files", json.dumps(files),
                        "--texts-file", texts_path], check=True,
                       env=thread_env(threads))
    return path


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


def offline_env():
    """The environment of every child: the Hugging Face hub is never asked
    (models load from the local directory; nothing downloads at run time)."""
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               HF_DATASETS_OFFLINE="1")
    return env


def thread_env(threads):
    env = offline_env()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(threads)
    env["TOKENIZERS_PARALLELISM"] = "false"
    return env


def lode_throughput(lode, model, threads, group, reps):
    """(texts/s, the vectors of the last run)."""
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
    return statistics.median(rates), [json.loads(v) for v in
                                      out.splitlines()]


def lode_inproc_throughput(latency_bin, model, threads, group, reps, batch,
                           work):
    """(texts/s, the vectors of the last pass) from bench/latency
    --throughput: warm-up, then reps passes over the texts in model_embed
    calls of batch texts, in one process, nothing printed while timed.
    The texts go in a plain file, one a line; the vectors come back as
    raw float32."""
    import array
    import tempfile
    assert all(t and "\n" not in t for t in group)
    fd, texts_path = tempfile.mkstemp(dir=work, suffix=".txt")
    vectors_path = texts_path[:-4] + ".f32"
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write("".join(t + "\n" for t in group))
        out = subprocess.run(
            [latency_bin, "--throughput", model, str(threads), str(reps),
             str(batch), texts_path, vectors_path],
            capture_output=True, text=True, check=True).stdout
        r = json.loads(out)
        assert r["texts"] == len(group)
        flat = array.array("f")
        with open(vectors_path, "rb") as f:
            flat.frombytes(f.read())
    finally:
        for path in (texts_path, vectors_path):
            if os.path.exists(path):
                os.unlink(path)
    dim = len(flat) // len(group)
    assert dim * len(group) == len(flat)
    return r["per_s"], [flat[i * dim:(i + 1) * dim]
                        for i in range(len(group))]


def prepare(args, work, peers):
    """The files the peers read, made once and reused while present: GGUF
    files from lode convert, the ONNX export, the OpenVINO IRs (f32 and
    NNCF int8) and the CTranslate2 model, each only when one of the
    peers asked for needs it.  Conversions run in children, offline."""
    files = {"hf": args.model,
             "gguf-f16": os.path.join(work, "minilm-f16.gguf"),
             "gguf-q8_0": os.path.join(work, "minilm-q8_0.gguf"),
             "gguf-q8_128": os.path.join(work, "minilm-q8_128.gguf"),
             "onnx-fp32": os.path.join(work, "minilm-fp32.onnx"),
             "onnx-int8": os.path.join(work, "minilm-int8.onnx"),
             "ov-fp32": os.path.join(work, "minilm-ov-fp32.xml"),
             "ov-int8": os.path.join(work, "minilm-ov-int8.xml"),
             "ct2-int8": os.path.join(work, "minilm-ct2-int8")}
    os.makedirs(work, exist_ok=True)
    kinds = {p.split("-")[0] for p in peers}
    for t in ("f16", "q8_0", "q8_128"):
        if (t == "q8_0" or "lode-f16" in peers or "llama-f16" in peers
                or "lode-f16-inproc" in peers
                or (t == "q8_128" and any("q8_128" in p for p in peers))) \
                and not os.path.exists(files["gguf-" + t]):
            subprocess.run([args.lode, "convert", args.model,
                            files["gguf-" + t], "--type", t], check=True)
    steps = [("ort" in kinds or "ov" in kinds, "onnx-int8", "--export-onnx"),
             ("ov" in kinds, "ov-int8", "--export-openvino"),
             ("ct2" in kinds, "ct2-int8", "--export-ct2")]
    for wanted, last_file, mode in steps:
        if wanted and not os.path.exists(files[last_file]):
            subprocess.run([sys.executable, __file__, mode,
                            "--files", json.dumps(files)], check=True,
                           env=offline_env())
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


def calibration_texts(n=CALIBRATION_TEXTS):
    """A fixed calibration set: the paragraphs of data/sample/ (files in
    name order, HTML tags dropped), those of 8 words or more, the first n.
    Real prose, as a user would calibrate on, and not the texts timed."""
    import html
    import re
    sample = os.path.join(ROOT, "data", "sample")
    out = []
    for name in sorted(os.listdir(sample)):
        with open(os.path.join(sample, name), encoding="utf-8") as f:
            text = f.read()
        if name.endswith(".html"):
            text = html.unescape(re.sub(r"<[^>]*>", "\n", text))
        for para in re.split(r"\n\s*\n", text):
            para = " ".join(para.split())
            if len(para.split()) >= 8:
                out.append(para)
    return out[:n]


def save_ov(model, path):
    """ov.save_model to a temporary name, then renamed: the .xml appears
    last, so a file that is there is whole.  compress_to_fp16=False keeps
    the weights f32 (save_model's default would store them as f16)."""
    import openvino as ov
    tmp = path[:-len(".xml")] + ".tmp.xml"
    ov.save_model(model, tmp, compress_to_fp16=False)
    os.replace(tmp[:-len(".xml")] + ".bin", path[:-len(".xml")] + ".bin")
    os.replace(tmp, path)


def export_openvino(args):
    """The ONNX export (BERT + mean pooling + normalisation) as OpenVINO
    IR, f32; then NNCF post-training quantisation of it, the documented
    int8 path for a transformer (model_type TRANSFORMER, default preset),
    calibrated one text at a time on calibration_texts()."""
    import nncf
    import numpy as np
    import openvino as ov
    files = json.loads(args.files)
    model = ov.convert_model(files["onnx-fp32"])
    save_ov(model, files["ov-fp32"])
    tok = Peer("ov-int8", 1, 1, files).tokenizer()
    samples = []
    for text in calibration_texts():
        e = tok.encode(text)
        samples.append({
            "input_ids": np.array([e.ids], np.int64),
            "attention_mask": np.array([e.attention_mask], np.int64),
            "token_type_ids": np.array([e.type_ids], np.int64)})
    quantized = nncf.quantize(ov.convert_model(files["onnx-fp32"]),
                              nncf.Dataset(samples),
                              model_type=nncf.ModelType.TRANSFORMER,
                              subset_size=len(samples))
    save_ov(quantized, files["ov-int8"])


def export_ct2(args):
    """CTranslate2's Transformers converter on the local model directory
    (it loads the model with transformers), int8 weights, into a
    temporary directory then renamed."""
    import shutil
    from ctranslate2.converters import TransformersConverter
    files = json.loads(args.files)
    out = files["ct2-int8"]
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    TransformersConverter(files["hf"]).convert(tmp, quantization="int8")
    os.replace(tmp, out)


def versions():
    """Peer versions, from a child: importing the peers here would grow
    this process by hundreds of MB."""
    code = ("import json\nout = {}\n"
            "for mod in ('torch', 'sentence_transformers', 'transformers',"
            " 'tokenizers', 'onnxruntime', 'openvino', 'nncf',"
            " 'ctranslate2', 'llama_cpp', 'numpy'):\n"
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
        ", ".join(f"{args.counts[n]} {n} ({LENGTHS[n]} tokens)"
                  for n in LENGTHS) + ".")
    add("")
    add("Versions: " + ", ".join(f"{k} {v}" for k, v in
                                 results["versions"].items()))
    add("")
    add("## Throughput (sentences/s)")
    add("")
    add("| peer | " + " | ".join(f"{n} {t}T" for n, t in cols) +
        " | min cosine vs sentence-transformers |")
    add("|---|" + "---|" * (len(cols) + 1))
    ran = [p for p in ALL_PEERS if p in results["throughput"]]
    for peer in ran:
        row = [fmt(results["throughput"].get(peer, {}).get(f"{n}/{t}"))
               for n, t in cols]
        row.append(fmt(results["min_cosine"].get(peer), 5))
        add(f"| {LABELS[peer]} | " + " | ".join(row) + " |")
    if any(p in ran for p in LODE_PEERS + INPROC_PEERS):
        add("")
        add("lode is timed two ways.  Rows \"lode f32/f16/q8_0\": `lode "
            "embed -m MODEL -t T --json` as a process, all texts on stdin, "
            "minus the same command with empty stdin; that keeps one-time "
            "costs a server does not pay (first-touch page faults of its "
            "scratch memory, cold caches) and the printing of every vector "
            "as JSON.  Rows \"(in process, batches of "
            f"{args.batch})\": `bench/latency --throughput`, timed as the "
            "Python peers are: in process after a warm-up, in library calls "
            f"of {args.batch} texts, tokenising included, nothing printed; "
            "min cosine from the vectors of its last pass.")
    settings = [(p, t, s) for p in ran
                for t, s in results["settings"].get(p, {}).items()]
    if settings:
        add("")
        add("Settings as the peers report them: " + "; ".join(
            f"{LABELS[p]} {t}T: " + ", ".join(f"{k} {v}"
                                               for k, v in s.items())
            for p, t, s in settings) + ".")
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
    for peer in (p for p in ran if p not in INPROC_PEERS):
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
          ("lode-q8_0", "ov-int8"), ("lode-q8_0", "ct2-int8"),
          ("lode-q8_0", "llama-q8_0"), ("lode-q8_0", "ort-fp32"),
          ("lode-f32", "st-fp32"), ("lode-f32", "ort-fp32"),
          ("lode-f32", "ov-fp32"), ("lode-f16", "llama-f16"),
          ("lode-q8_0-inproc", "ov-int8"), ("lode-f32-inproc", "ov-fp32"),
          ("lode-q8_128", "ov-int8"), ("lode-q8_128-inproc", "ov-int8")]


def goals(args, results):
    out = []
    thr = results["throughput"]
    for ours, theirs, want in (("lode-q8_0", "st-fp32", 4.0),
                               ("lode-q8_0", "ort-int8", 1.5),
                               ("lode-q8_0", "llama-q8_0", 1.2),
                               ("lode-f32", "st-fp32", 1.5),
                               ("lode-q8_0", "ov-int8", 1.2),    # issue 15
                               ("lode-q8_128", "ov-int8", 1.2),
                               ("lode-q8_128-inproc", "ov-int8", 1.2),
                               ("lode-f32", "ov-fp32", 1.0)):
        ratios = {k: thr[ours][k] / thr[theirs][k] for k in thr.get(ours, {})
                  if thr.get(theirs, {}).get(k)}
        if not ratios:
            continue
        worst = min(ratios, key=ratios.get)
        ok = ratios[worst] >= want
        out.append(f"{'MET' if ok else 'MISSED'}: {LABELS[ours]} >= {want}x "
                   f"{LABELS[theirs]} everywhere (lowest {ratios[worst]:.2f}x"
                   f" at {worst.replace('/', ' ')}T)")
    for peer in ("lode-q8_0", "lode-q8_128"):
        cos = results["min_cosine"].get(peer)
        if cos is not None:
            out.append(f"{'MET' if cos >= 0.997 else 'MISSED'}: {LABELS[peer]}"
                       f" min cosine vs sentence-transformers >= 0.997 "
                       f"({cos:.5f})")
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
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "embed"),
                    help="where the converted models, the texts and the "
                    "reference vectors go (reused while present)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--latency-reps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--peers", default=",".join(ALL_PEERS))
    ap.add_argument("--texts", type=int,
                    help="texts per set (default: " + ", ".join(
                        f"{v} {k}" for k, v in N_TEXTS.items()) +
                    "); a small number makes a quick check")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    # internal modes
    ap.add_argument("--worker")
    ap.add_argument("--cold")
    ap.add_argument("--export-onnx", action="store_true")
    ap.add_argument("--export-openvino", action="store_true")
    ap.add_argument("--export-ct2", action="store_true")
    ap.add_argument("--make-reference")
    ap.add_argument("--reference")
    ap.add_argument("--files")
    ap.add_argument("--texts-file")
    ap.add_argument("--text")
    args = ap.parse_args()
    if args.export_onnx:
        return export_onnx(args)
    if args.export_openvino:
        return export_openvino(args)
    if args.export_ct2:
        return export_ct2(args)
    if args.make_reference:
        args.threads = int(args.threads)
        return reference_vectors(args)
    if args.worker:
        args.threads = int(args.threads)
        return worker(args)
    if args.cold:
        return cold(args)

    command = shlex.join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:])
    args.threads = [int(t) for t in args.threads.split(",")]
    peers = args.peers.split(",")
    unknown = [p for p in peers if p not in LABELS]
    if unknown:
        sys.exit(f"embed.py: unknown peers {unknown}; known: "
                 f"{','.join(ALL_PEERS)}")
    for p in INPROC_PEERS:
        LABELS[p] = LABELS[p].format(batch=args.batch)
    args.counts = {k: min(v, args.texts) if args.texts else v
                   for k, v in N_TEXTS.items()}
    load_before = os.getloadavg()
    print(f"load average {load_before[0]:.2f} on {os.cpu_count()} CPUs",
          file=sys.stderr)
    files = prepare(args, args.work, peers)
    texts = make_texts(args.lode, files["gguf-q8_0"], args.counts)
    texts_path = os.path.join(args.work, "texts.json")
    with open(texts_path, "w") as f:
        json.dump(texts, f)
    reference_path = reference(args, files, texts_path)
    with open(reference_path) as f:
        ref = json.load(f)
    lode_models = {"lode-f32": files["hf"], "lode-f16": files["gguf-f16"],
                   "lode-q8_0": files["gguf-q8_0"],
                   "lode-q8_128": files["gguf-q8_128"]}
    inproc_models = {p + "-inproc": m for p, m in lode_models.items()}
    results = {"throughput": {}, "latency_ms": {}, "cold": {},
               "min_cosine": {}, "min_cosine_by_set": {}, "settings": {},
               "texts_per_set": args.counts, "versions": versions()}
    query = texts["short"][0]
    for peer in peers:
        print(f"{peer} ...", file=sys.stderr, flush=True)
        thr = results["throughput"].setdefault(peer, {})
        lat = results["latency_ms"].setdefault(peer, {})
        cos = results["min_cosine_by_set"].setdefault(peer, {})
        for t in args.threads:
            if peer in inproc_models:
                for name, group in texts.items():
                    thr[f"{name}/{t}"], vecs = lode_inproc_throughput(
                        args.latency_bin, inproc_models[peer], t, group,
                        args.reps, args.batch, args.work)
                    cos[f"{name}/{t}"] = min_cosine(vecs, ref[name])
            elif peer in lode_models:
                for name, group in texts.items():
                    thr[f"{name}/{t}"], vecs = lode_throughput(
                        args.lode, lode_models[peer], t, group, args.reps)
                    cos[f"{name}/{t}"] = min_cosine(vecs, ref[name])
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
                     "--texts-file", texts_path, "--reference",
                     reference_path],
                    capture_output=True, text=True, env=thread_env(t))
                if out.returncode != 0:
                    print(out.stderr, file=sys.stderr)
                    continue
                r = json.loads(out.stdout.splitlines()[-1])
                for name, v in r["throughput"].items():
                    thr[f"{name}/{t}"] = v
                for name, v in r["min_cosine"].items():
                    cos[f"{name}/{t}"] = v
                lat[str(t)] = r["latency_ms"]
                if r["settings"]:
                    results["settings"].setdefault(peer, {})[str(t)] = \
                        r["settings"]
            if cos:
                results["min_cosine"][peer] = min(cos.values())
            print(f"  {t}T: " + ", ".join(f"{k} {v:.0f}/s" for k, v in
                                          thr.items() if k.endswith(f"/{t}"))
                  + (f"; latency {lat.get(str(t), 0):.2f} ms" if str(t) in lat
                     else "") + "; min cosine "
                  + ", ".join(f"{k} {v:.5f}" for k, v in cos.items()
                              if k.endswith(f"/{t}")),
                  file=sys.stderr, flush=True)
        if peer in inproc_models:
            continue   # no process of its own: no cold start, no RSS
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
