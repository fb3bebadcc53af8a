#!/usr/bin/env python3
"""interop.py - lode's GGUF files against llama.cpp's own tools.

Run by tests/interop.sh (python from .venv-test, LODE set to the binary).
Three parts, each checked with real third-party code rather than with
lode's reader:

  (a) gguf.GGUFReader (llama.cpp's Python reader) opens every file
      `lode convert` writes (f32, f16, q8_0 of all-MiniLM-L6-v2 and of the
      tiny reference models) and finds the architecture, every bert.* key,
      the tokenizer in llama.cpp's spelling, each tensor's name, shape and
      type as src/gguf_model.h documents them, and tensor data equal to the
      safetensors weights (bit for bit in f32, as numpy rounds in f16,
      within q8_0's rounding bound after gguf.quants.dequantize).
  (b) gguf.GGUFWriter writes all-MiniLM-L6-v2 the way llama.cpp's
      convert_hf_to_gguf.py does (its tensor names, bert.* and
      tokenizer.ggml.* metadata, phantom-space tokens, pooling_type 1, no
      lode.* keys) straight from the safetensors with numpy, in F32, F16
      and F32 with a fused attn_qkv; `lode embed` on each must match
      sentence-transformers' reference vectors (tests/ref/minilm.json).
      llama-cpp-python must load the same files too, which shows they are
      what llama.cpp expects and not merely what lode accepts.
  (c) llama-cpp-python embeds with lode-written f32, f16 and q8_0 files and
      agrees with `lode embed` on the same file.  Only texts whose token
      ids agree are compared: llama.cpp's WPM tokenizer is not
      BertTokenizer (it differs on accents, some punctuation and CJK), and
      the count of texts that differ is printed.

Prints "N passed, N failed"; exits 1 on any failure.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

import logging

import gguf
import gguf.quants

LODE = os.environ.get("LODE", "./lode")
MINILM = "models/all-MiniLM-L6-v2"
TINY = ["tests/ref/tiny-cased-cls", "tests/ref/tiny-uncased-max"]
REF = "tests/ref/minilm.json"
PHANTOM = "\u2581"

passed = 0
failed = 0


def check(what, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL interop: {what}{': ' + str(detail) if detail else ''}",
              file=sys.stderr)
    return ok


# ---- Hugging Face side: weights, config, vocabulary ------------------------

def read_safetensors(path):
    """name -> float32 array (F32, F16 and BF16 tensors), "bert." prefix
    dropped as lode and llama.cpp drop it."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        buf = np.array(raw[base + start:base + end])
        dtype = info["dtype"]
        if dtype == "F32":
            arr = buf.view("<f4")
        elif dtype == "F16":
            arr = buf.view("<f2").astype(np.float32)
        elif dtype == "BF16":
            arr = (buf.view("<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            continue  # position_ids (I64) and such
        if name.startswith("bert."):
            name = name[len("bert."):]
        out[name] = arr.reshape(info["shape"])
    return out


def read_vocab(model_dir):
    """WordPiece tokens by id: vocab.txt, else tokenizer.json's vocab."""
    path = os.path.join(model_dir, "vocab.txt")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            return [line.rstrip("\n") for line in f]
    with open(os.path.join(model_dir, "tokenizer.json"),
              encoding="utf-8") as f:
        vocab = json.load(f)["model"]["vocab"]
    return sorted(vocab, key=vocab.get)


def phantom(token):
    """llama.cpp's spelling of a WordPiece token (convert_hf_to_gguf.py)."""
    if token.startswith("[") and token.endswith("]"):
        return token
    if token.startswith("##"):
        return token[2:]
    return PHANTOM + token


def hf_config(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        return json.load(f)


def hf_pooling(model_dir):
    with open(os.path.join(model_dir, "1_Pooling", "config.json")) as f:
        p = json.load(f)
    for key, name in (("pooling_mode_cls_token", "cls"),
                      ("pooling_mode_max_tokens", "max"),
                      ("pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len")):
        if p.get(key):
            return name
    return "mean"


LAYER_NAMES = {
    "attention.self.query": "attn_q",
    "attention.self.key": "attn_k",
    "attention.self.value": "attn_v",
    "attention.output.dense": "attn_output",
    "attention.output.LayerNorm": "attn_output_norm",
    "intermediate.dense": "ffn_up",
    "output.dense": "ffn_down",
    "output.LayerNorm": "layer_output_norm",
}
BIG = ("attn_q", "attn_k", "attn_v", "attn_qkv", "attn_output", "ffn_up",
       "ffn_down")


def gguf_tensors_from_hf(weights, n_layers):
    """llama.cpp tensor name -> float32 array in PyTorch's [out, in] order."""
    out = {
        "token_embd.weight": weights["embeddings.word_embeddings.weight"],
        "position_embd.weight":
            weights["embeddings.position_embeddings.weight"],
        "token_types.weight":
            weights["embeddings.token_type_embeddings.weight"],
        "token_embd_norm.weight": weights["embeddings.LayerNorm.weight"],
        "token_embd_norm.bias": weights["embeddings.LayerNorm.bias"],
    }
    for layer in range(n_layers):
        for hf, name in LAYER_NAMES.items():
            for part in ("weight", "bias"):
                out[f"blk.{layer}.{name}.{part}"] = \
                    weights[f"encoder.layer.{layer}.{hf}.{part}"]
    return out


def is_big(name):
    """Matrices that take the file's type (the rest stay F32)."""
    if name == "token_embd.weight":
        return True
    parts = name.split(".")
    return len(parts) == 4 and parts[2] in BIG and parts[3] == "weight"


# ---- running lode ----------------------------------------------------------

def lode(*args, stdin=None):
    r = subprocess.run([LODE, *args], input=stdin, capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"lode {' '.join(args)}: "
                           f"{r.stderr.decode(errors='replace').strip()}")
    return r.stdout


def lode_lines(cmd, model, texts):
    stdin = "".join(json.dumps(t) + "\n" for t in texts).encode()
    out = lode(cmd, "-m", model, "--json", stdin=stdin)
    return [json.loads(line) for line in out.decode().splitlines()]


def cosine(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ---- (a) GGUFReader reads what lode writes ---------------------------------

def field(reader, key):
    f = reader.fields.get(key)
    return None if f is None else f.contents()


def q8_0_bound(w):
    """Largest |dequantized - w| q8_0 allows per element: half a step of
    the block's scale d = amax/127, plus the scale's own f16 rounding
    (up to 2^-11 relative, times |q| <= 127)."""
    blocks = w.reshape(w.shape[0], -1, 32)
    d = np.abs(blocks).max(axis=2, keepdims=True) / 127.0
    bound = d * (0.5 + 127 * 2.0 ** -11) + 1e-12
    return np.broadcast_to(bound, blocks.shape).reshape(w.shape)


def check_lode_file(path, model_dir, type_name):
    tag = f"{os.path.basename(model_dir)} {type_name}"
    try:
        reader = gguf.GGUFReader(path)
    except Exception as e:  # the reader rejecting the file is the failure
        check(f"{tag}: GGUFReader opens the file", False, repr(e))
        return
    check(f"{tag}: GGUFReader opens the file", True)
    cfg = hf_config(model_dir)
    with open(os.path.join(model_dir, "sentence_bert_config.json")) as f:
        st = json.load(f)
    pooling = hf_pooling(model_dir)
    check(f"{tag}: general.architecture",
          field(reader, "general.architecture") == "bert",
          field(reader, "general.architecture"))
    want = {
        "bert.context_length": cfg["max_position_embeddings"],
        "bert.embedding_length": cfg["hidden_size"],
        "bert.feed_forward_length": cfg["intermediate_size"],
        "bert.block_count": cfg["num_hidden_layers"],
        "bert.attention.head_count": cfg["num_attention_heads"],
        "bert.attention.layer_norm_epsilon": cfg["layer_norm_eps"],
        "bert.attention.causal": False,
        # llama.cpp's PoolingType: MEAN 1, CLS 2; NONE 0 for pooling it
        # lacks (max), which lode keeps in lode.pooling
        "bert.pooling_type": {"mean": 1, "cls": 2}.get(pooling, 0),
    }
    got_keys = {k for k in reader.fields if k.startswith("bert.")}
    check(f"{tag}: the bert.* keys", got_keys == set(want),
          sorted(got_keys ^ set(want)))
    for key, value in want.items():
        got = field(reader, key)
        ok = (got is not None and abs(got - value) <= 1e-6 * abs(value)
              if isinstance(value, float) else got == value)
        check(f"{tag}: {key}", ok, f"{got!r}, want {value!r}")
    lode_want = {
        "lode.max_seq_length": st["max_seq_length"],
        "lode.do_lower_case": bool(st.get("do_lower_case", False)) or
        _tokenizer_lowercase(model_dir),
        "lode.pooling": pooling,
        "lode.normalize": _normalizes(model_dir),
    }
    for key, value in lode_want.items():
        got = field(reader, key)
        check(f"{tag}: {key}", got == value, f"{got!r}, want {value!r}")

    vocab = read_vocab(model_dir)
    tokens = field(reader, "tokenizer.ggml.tokens")
    check(f"{tag}: tokenizer.ggml.model",
          field(reader, "tokenizer.ggml.model") == "bert")
    check(f"{tag}: tokenizer token count", tokens is not None and
          len(tokens) == len(vocab), f"{len(tokens or [])} vs {len(vocab)}")
    check(f"{tag}: tokens in llama.cpp's phantom-space spelling",
          tokens == [phantom(t) for t in vocab],
          next((f"#{i}: {a!r} vs {phantom(b)!r}" for i, (a, b)
                in enumerate(zip(tokens or [], vocab)) if a != phantom(b)),
               ""))
    check(f"{tag}: token_type_count",
          field(reader, "tokenizer.ggml.token_type_count") ==
          cfg["type_vocab_size"])
    check(f"{tag}: cls/sep ids",
          field(reader, "tokenizer.ggml.cls_token_id") == vocab.index("[CLS]")
          and field(reader, "tokenizer.ggml.seperator_token_id") ==
          vocab.index("[SEP]"))

    expect = gguf_tensors_from_hf(
        read_safetensors(os.path.join(model_dir, "model.safetensors")),
        cfg["num_hidden_layers"])
    found = {t.name: t for t in reader.tensors}
    check(f"{tag}: tensor names", set(found) == set(expect),
          sorted(set(found) ^ set(expect))[:6])
    T = gguf.GGMLQuantizationType
    file_type = {"f32": T.F32, "f16": T.F16, "q8_0": T.Q8_0}[type_name]
    for name, w in expect.items():
        t = found.get(name)
        if t is None:
            continue
        # ggml lists dimensions innermost first: [cols, rows].
        shape_ok = list(t.shape) == list(reversed(w.shape))
        want_type = T.F32
        if is_big(name):
            want_type = file_type
            if file_type == T.Q8_0 and w.shape[-1] % 32:
                want_type = T.F16  # lode's fallback, as llama.cpp's
        type_ok = t.tensor_type == want_type
        data = gguf.quants.dequantize(t.data, t.tensor_type)
        data = np.asarray(data, dtype=np.float32).reshape(w.shape) \
            if data.size == w.size else None
        if data is None:
            data_ok = False
            detail = f"{t.data.shape} elements"
        elif t.tensor_type == T.F32:
            data_ok = np.array_equal(data, w)
            detail = f"max diff {np.abs(data - w).max():g}"
        elif t.tensor_type == T.F16:
            data_ok = np.array_equal(data, w.astype(np.float16)
                                     .astype(np.float32))
            detail = f"max diff {np.abs(data - w).max():g}"
        else:
            err = np.abs(data.astype(np.float64) - w)
            data_ok = bool(np.all(err <= q8_0_bound(w)))
            detail = f"max error {err.max():g}"
        check(f"{tag}: {name} shape {list(t.shape)}", shape_ok,
              f"want {list(reversed(w.shape))}")
        check(f"{tag}: {name} type {t.tensor_type.name}", type_ok,
              f"want {want_type.name}")
        check(f"{tag}: {name} data", data_ok, detail)


def _tokenizer_lowercase(model_dir):
    path = os.path.join(model_dir, "tokenizer_config.json")
    try:
        with open(path) as f:
            return bool(json.load(f).get("do_lower_case", False))
    except OSError:
        return False


def _normalizes(model_dir):
    with open(os.path.join(model_dir, "modules.json")) as f:
        return any(m["type"].endswith("Normalize") for m in json.load(f))


# ---- (b) GGUFWriter writes what llama.cpp's converter writes ---------------

def write_llama_cpp_bert(model_dir, path, dtype, fused_qkv=False):
    """all of convert_hf_to_gguf.py's BertModel that matters, with numpy:
    its names, metadata and vocabulary; 1-D tensors, position_embd and
    token_types stay F32, other matrices take `dtype`."""
    cfg = hf_config(model_dir)
    n_layers = cfg["num_hidden_layers"]
    tensors = gguf_tensors_from_hf(
        read_safetensors(os.path.join(model_dir, "model.safetensors")),
        n_layers)
    if fused_qkv:
        for layer in range(n_layers):
            for part in ("weight", "bias"):
                q, k, v = (tensors.pop(f"blk.{layer}.attn_{x}.{part}")
                           for x in "qkv")
                tensors[f"blk.{layer}.attn_qkv.{part}"] = \
                    np.concatenate([q, k, v], axis=0)
    w = gguf.GGUFWriter(path, "bert")
    w.add_name(os.path.basename(model_dir))
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_block_count(n_layers)
    w.add_head_count(cfg["num_attention_heads"])
    w.add_layer_norm_eps(cfg["layer_norm_eps"])
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType.MEAN)
    w.add_file_type(gguf.LlamaFileType.ALL_F32 if dtype == np.float32
                    else gguf.LlamaFileType.MOSTLY_F16)
    vocab = read_vocab(model_dir)
    specials = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
    w.add_token_type_count(cfg["type_vocab_size"])
    w.add_tokenizer_model("bert")
    w.add_tokenizer_pre("default")
    w.add_token_list([phantom(t) for t in vocab])
    w.add_token_types([gguf.TokenType.CONTROL if t in specials
                       else gguf.TokenType.NORMAL for t in vocab])
    # As the converter does; it logs that this gguf has no cls_token_id
    # setter, which is expected (llama.cpp takes [CLS] as BOS for BERT).
    logging.getLogger("gguf.vocab").setLevel(logging.ERROR)
    gguf.SpecialVocab(model_dir, n_vocab=len(vocab)).add_to_gguf(w,
                                                                 quiet=True)
    for name, arr in tensors.items():
        keep_f32 = (arr.ndim == 1 or not name.endswith(".weight") or
                    name in ("position_embd.weight", "token_types.weight"))
        w.add_tensor(name, np.ascontiguousarray(
            arr.astype(np.float32 if keep_f32 else dtype)))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def load_reference():
    with open(REF) as f:
        ref = json.load(f)
    return ref


# ---- (c) llama.cpp itself ---------------------------------------------------

def llama_open(path):
    """One thread: ggml's workers spin at barriers, and on a busy test
    machine two of them can take seconds per text."""
    from llama_cpp import Llama
    return Llama(model_path=path, embedding=True, n_ctx=512, n_batch=512,
                 n_ubatch=512, n_threads=1, n_threads_batch=1, verbose=False)


def agreeing_texts(llm, model_path, texts):
    """Texts whose llama.cpp token ids equal lode's, and the rest."""
    lode_ids = lode_lines("tokenize", model_path, texts)
    same, differ = [], []
    for text, ids in zip(texts, lode_ids):
        try:
            theirs = llm.tokenize(text.encode("utf-8"), add_bos=True,
                                  special=False)
        except Exception:
            theirs = None
        (same if theirs == ids else differ).append(text)
    return same, differ


def why_differ(text):
    """Why llama.cpp's WPM tokenizer and BertTokenizer part on a text."""
    import re
    import unicodedata
    if re.search(r"\[(CLS|SEP|MASK|UNK|PAD)\]", text):
        return ("special-token text: Hugging Face matches [MASK] etc. as "
                "special tokens, llama.cpp (special=False) spells them out")
    if any(len(w) > 100 for w in re.findall(r"\w+", text)):
        return ("a word over 100 characters: [UNK] for Hugging Face, "
                "split into pieces by llama.cpp")
    if any(0xac00 <= ord(c) <= 0xd7af for c in text):
        return ("Hangul: Hugging Face decomposes syllables (NFD) before "
                "WordPiece, llama.cpp does not")
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") and c not in "\t\n\r"
           for c in text):
        return ("control characters such as \\x0b, \\x85: whitespace to "
                "Hugging Face, not to llama.cpp")
    if any(unicodedata.category(c) in ("Mn", "Me") for c in
           unicodedata.normalize("NFD", text)):
        return ("combining marks (accents, Indic vowel signs, keycaps): "
                "stripped by Hugging Face's uncased normaliser, kept by "
                "llama.cpp")
    return "other"


def embed_llama(llm, texts):
    return [llm.embed(t, normalize=True) for t in texts]


def compare_llama(tag, llm, model_path, texts, min_cos):
    if not texts:
        check(f"{tag}: texts to compare", False, "none agree")
        return
    ours = lode_lines("embed", model_path, texts)
    theirs = embed_llama(llm, texts)
    coss = [cosine(a, b) for a, b in zip(ours, theirs)]
    worst = int(np.argmin(coss))
    check(f"{tag}: llama.cpp vs lode over {len(texts)} texts, "
          f"min cosine {coss[worst]:.6f} >= {min_cos}",
          coss[worst] >= min_cos, f"worst text {texts[worst]!r}")
    print(f"  {tag}: {len(texts)} texts, min cosine {coss[worst]:.7f}, "
          f"median {np.median(coss):.7f}")


def main():
    tmp = tempfile.mkdtemp(prefix="lode-interop-")
    try:
        run(tmp)
    finally:
        for name in os.listdir(tmp):
            os.unlink(os.path.join(tmp, name))
        os.rmdir(tmp)
    print(f"interop: {passed} passed, {failed} failed")
    return 1 if failed else 0


def run(tmp):
    ref = load_reference()
    # (a) lode convert -> GGUFReader
    lode_files = {}
    for model_dir in [MINILM] + TINY:
        for type_name in ("f32", "f16", "q8_0"):
            out = os.path.join(tmp, f"{os.path.basename(model_dir)}-"
                               f"{type_name}.gguf")
            lode("convert", model_dir, out, "--type", type_name)
            lode_files[(model_dir, type_name)] = out
            check_lode_file(out, model_dir, type_name)

    # (b) GGUFWriter as llama.cpp's converter -> lode embed
    sample = [it for it in ref["items"] if it["n_full"] <= 256][::4]
    sample_texts = [it["text"] for it in sample]
    written = {}
    for label, dtype, fused, min_cos in (
            ("f32", np.float32, False, 0.99999),
            ("f16", np.float16, False, 0.9999),
            ("f32 fused attn_qkv", np.float32, True, 0.99999)):
        path = os.path.join(tmp, f"writer-{label.replace(' ', '-')}.gguf")
        write_llama_cpp_bert(MINILM, path, dtype, fused)
        written[label] = path
        reader = gguf.GGUFReader(path)
        check(f"GGUFWriter {label}: no lode.* keys",
              not any(k.startswith("lode.") for k in reader.fields))
        try:
            vecs = lode_lines("embed", path, sample_texts)
        except RuntimeError as e:
            check(f"GGUFWriter {label}: lode loads it", False, e)
            continue
        check(f"GGUFWriter {label}: lode loads it", True)
        coss = [cosine(v, it["embedding"]) for v, it in zip(vecs, sample)]
        worst = int(np.argmin(coss))
        check(f"GGUFWriter {label}: lode vs sentence-transformers over "
              f"{len(sample)} texts, min cosine {coss[worst]:.7f} >= "
              f"{min_cos}", coss[worst] >= min_cos,
              f"worst text {sample_texts[worst]!r}")
        print(f"  GGUFWriter {label}: {len(sample)} texts, min cosine "
              f"{coss[worst]:.7f}")

    # (c) llama.cpp on lode's files (and on the GGUFWriter files).
    texts = [it["text"] for it in ref["items"] if it["n_full"] <= 256]
    llm = llama_open(lode_files[(MINILM, "f32")])
    same, differ = agreeing_texts(llm, lode_files[(MINILM, "f32")], texts)
    reasons = {}
    for t in differ:
        reasons.setdefault(why_differ(t), []).append(t)
    print(f"  tokenizer: llama.cpp's ids equal lode's for {len(same)} of "
          f"{len(texts)} reference texts; {len(differ)} differ:")
    for k, v in sorted(reasons.items(), key=lambda kv: -len(kv[1])):
        print(f"    {len(v):3d}  {k}; e.g. {v[0][:40]!r}")
    check("tokenizer: most texts tokenize alike in llama.cpp",
          len(same) >= len(texts) // 2, f"{len(same)} of {len(texts)}")
    compare_llama("lode f32 file", llm, lode_files[(MINILM, "f32")], same,
                  0.9999)
    del llm
    for type_name, min_cos in (("f16", 0.999), ("q8_0", 0.99)):
        path = lode_files[(MINILM, type_name)]
        llm = llama_open(path)
        compare_llama(f"lode {type_name} file", llm, path, same, min_cos)
        del llm
    # llama.cpp loads the GGUFWriter files, so they are in its format.
    ref_by_text = {it["text"]: it["embedding"] for it in ref["items"]}
    for label, min_cos in (("f32", 0.9999), ("f16", 0.999),
                           ("f32 fused attn_qkv", 0.9999)):
        try:
            llm = llama_open(written[label])
        except Exception as e:
            check(f"llama.cpp loads the GGUFWriter {label} file", False, e)
            continue
        check(f"llama.cpp loads the GGUFWriter {label} file", True)
        some = same[::4]
        theirs = embed_llama(llm, some)
        coss = [cosine(a, ref_by_text[t]) for a, t in zip(theirs, some)]
        check(f"llama.cpp on the GGUFWriter {label} file vs "
              f"sentence-transformers, min cosine {min(coss):.6f} >= "
              f"{min_cos}", min(coss) >= min_cos)
        del llm


if __name__ == "__main__":
    sys.exit(main())
