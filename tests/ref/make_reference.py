"""Generate the reference data that lode's C tests compare against.

How to run (from the repository root; no network access to the Hugging Face hub is needed):

    python3 -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install torch transformers tokenizers sentence-transformers
    /tmp/refvenv/bin/python tests/ref/make_reference.py

Inputs:
  tests/ref/texts.json          the committed list of test texts (JSON array of strings)
  models/all-MiniLM-L6-v2/      the real model (scripts/fetch_model.sh downloads it)

Outputs (all under tests/ref/):
  minilm.json                   reference for models/all-MiniLM-L6-v2
  tiny-cased-cls/               tiny random cased BERT, CLS pooling, no Normalize, F16 weights,
                                vocab.txt + tokenizer_config.json (no tokenizer.json), tensor names without "bert."
  tiny-cased-cls.json           its reference
  tiny-uncased-max/             tiny random uncased BERT, MAX pooling + Normalize, BF16 weights,
                                vocab only in tokenizer.json, tensor names with "bert." plus unused pooler weights
  tiny-uncased-max.json         its reference

The two tiny model directories are committed. They are only (re)built when missing or when
--rebuild-tiny is given, so that the references always correspond to the committed weights.
Building is deterministic (fixed seeds, vocab assembled by counting, no trainer).

Each reference file has the shape
  {"model": name, "versions": {...}, "max_seq_length": N, "dim": D,
   "items": [{"text": str, "n_full": int, "ids": [int, ...], "embedding": [float, ...]}, ...]}
where ids are the token ids sentence-transformers feeds the model (after truncation to max_seq_length,
with [CLS]/[SEP], no padding), n_full is the token count without truncation (special tokens included),
and embedding is SentenceTransformer.encode([text]) in float32, written with 9 significant digits
(enough to round-trip float32).
"""

import argparse
import collections
import json
import os
import platform
import random
import shutil
import sys
import unicodedata
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import safetensors  # noqa: E402
import safetensors.torch  # noqa: E402
import sentence_transformers  # noqa: E402
import tokenizers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

transformers.logging.set_verbosity_error()

REF = Path(__file__).resolve().parent
REPO = REF.parent.parent
MINILM = REPO / "models" / "all-MiniLM-L6-v2"
SEED = 20240607
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


# --------------------------------------------------------------------------- helpers

def versions():
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "sentence_transformers": sentence_transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "safetensors": safetensors.__version__,
        "numpy": np.__version__,
    }


def json_str(t):
    """JSON string, readable UTF-8, but invisible/control/format/separator/unassigned/private-use
    characters, combining marks and U+FFFD are written as \\u escapes (surrogate pairs above U+FFFF)."""
    out = []
    for ch in json.dumps(t, ensure_ascii=False)[1:-1]:
        cat = unicodedata.category(ch)
        if ch != " " and (cat[0] in "CZ" or cat in ("Mn", "Me") or ch == "\ufffd"):
            cp = ord(ch)
            if cp > 0xFFFF:
                cp -= 0x10000
                out.append("\\u%04x\\u%04x" % (0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF)))
            else:
                out.append("\\u%04x" % cp)
        else:
            out.append(ch)
    s = '"' + "".join(out) + '"'
    assert json.loads(s) == t
    return s


def fmt_float(x):
    s = "%.9g" % float(x)
    assert np.float32(float(s)) == np.float32(x), (s, x)
    return s


def load_st(path):
    try:
        return SentenceTransformer(str(path), device="cpu", model_kwargs={"dtype": torch.float32})
    except TypeError:  # older transformers: torch_dtype
        return SentenceTransformer(str(path), device="cpu", model_kwargs={"torch_dtype": torch.float32})


def st_features(model, texts):
    if hasattr(model, "preprocess"):  # sentence-transformers >= 6 (tokenize is deprecated)
        return model.preprocess(texts)
    return model.tokenize(texts)


def st_ids(model, text):
    f = st_features(model, [text])
    ids = f["input_ids"][0]
    mask = f["attention_mask"][0]
    assert int(mask.sum()) == len(ids)  # a single text is never padded
    return [int(i) for i in ids]


def compute_reference(model, name, texts, out_path):
    tok = model.tokenizer
    max_len = model.max_seq_length
    dim = model.get_sentence_embedding_dimension()
    cls_id, sep_id = tok.cls_token_id, tok.sep_token_id
    items = []
    for t in texts:
        ids = st_ids(model, t)
        full = tok(t, add_special_tokens=True, truncation=False)["input_ids"]
        # consistency: ids is the full sequence, truncated (longest_first) to max_len with [SEP] re-added
        assert ids[0] == cls_id and ids[-1] == sep_id
        if len(full) <= max_len:
            assert ids == full, (t, ids, full)
        else:
            assert len(ids) == max_len and ids[:-1] == full[: max_len - 1], t
        emb = model.encode([t], convert_to_numpy=True, batch_size=1)[0].astype(np.float32)
        assert emb.shape == (dim,) and np.all(np.isfinite(emb))
        items.append((t, len(full), ids, emb))
    lines = [
        "{",
        '"model": %s,' % json.dumps(name),
        '"versions": %s,' % json.dumps(versions(), sort_keys=True),
        '"max_seq_length": %d,' % max_len,
        '"dim": %d,' % dim,
        '"items": [',
    ]
    rows = []
    for t, n_full, ids, emb in items:
        rows.append(
            '{"text": %s, "n_full": %d, "ids": [%s], "embedding": [%s]}'
            % (json_str(t), n_full, ",".join(map(str, ids)), ",".join(fmt_float(v) for v in emb))
        )
    lines.append(",\n".join(rows))
    lines.append("]")
    lines.append("}")
    out_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # read back and verify
    back = json.loads(out_path.read_text(encoding="utf-8"))
    assert [it["text"] for it in back["items"]] == texts
    for it, (_, _, ids, emb) in zip(back["items"], items):
        assert it["ids"] == ids
        assert np.array_equal(np.asarray(it["embedding"], dtype=np.float32), emb)
    return items


# --------------------------------------------------------------------------- tiny vocabularies

# A little extra English so the vocab has ordinary words and subwords besides texts.json.
EXTRA_WORDS = """
the be to of and a in that have I it for not on with he as you do at this but his by from they we say her she
or an will my one all would there their what so up out if about who get which go me when make can like time no
just him know take people into year your good some could them see other than then now look only come its over
think also back after use two how our work first well way even new want because any these give day most us
is was are were been being has had does did said says saying made making went gone going took taken came coming
employee employees employer manager managers policy policies vacation holiday holidays leave travel expense
expenses reimbursement reimbursed receipt receipts approval approve approved benefit benefits insurance health
dental remote office security password compliance training request requests submit submitted payroll salary
bonus overtime contract department company team information question questions answer answers document documents
world hello sentence sentences embedding embeddings model models language languages search retrieval vector
The A An In On At It This That What How Why When Where Who Which Is Are Can Do Does Please Thank Hello Yes No
Company Employee Manager Policy Monday Tuesday Wednesday Thursday Friday Saturday Sunday January February March
April May June July August September October November December London Paris Berlin Tokyo New York USA UK EU
running played playing player players quickly quicker quickest happiness unhappy unhappiness international
internationalization nationality national nation nations information informative transformation transformer
""".split()


def corpus_words(texts, lowercase):
    norm = tokenizers.normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase
    )
    pre = tokenizers.pre_tokenizers.BertPreTokenizer()
    words = collections.Counter()
    for t in texts:
        for w, _ in pre.pre_tokenize_str(norm.normalize_str(t)):
            words[w] += 1
    for w in EXTRA_WORDS:
        words[norm.normalize_str(w)] += 3
    return words


def vocab_ok(tok):
    # keep the vocab file simple: no whitespace/control/format/unassigned/private-use characters
    return all(unicodedata.category(c)[0] not in "CZ" for c in tok) and "\n" not in tok


def build_vocab(texts, lowercase, size, max_chars):
    words = corpus_words(texts, lowercase)
    chars = collections.Counter()
    for w, n in words.items():
        for c in w:
            chars[c] += n
    # single characters seen at least twice (most frequent first, then by code point), capped
    cand = sorted((c for c, n in chars.items() if n >= 2 and vocab_ok(c)), key=lambda c: (-chars[c], ord(c)))
    single = sorted(cand[:max_chars], key=ord)
    vocab = list(SPECIALS) + single + ["##" + c for c in single]
    seen = set(vocab)
    # words, prefixes and ##suffixes scored by frequency * length
    score = collections.Counter()
    for w, n in words.items():
        if len(w) < 2 or len(w) > 24 or not vocab_ok(w):
            continue
        score[w] += n * len(w)
        for k in range(2, min(len(w), 6)):
            score[w[:k]] += n * k // 2
            score["##" + w[-k:]] += n * k // 2
            if len(w) > k + 2:
                score["##" + w[k : k + 3]] += n  # some inner pieces
    for tok, _ in sorted(score.items(), key=lambda kv: (-kv[1], kv[0])):
        if len(vocab) >= size:
            break
        if tok not in seen:
            seen.add(tok)
            vocab.append(tok)
    assert len(vocab) == len(set(vocab))
    return vocab


# --------------------------------------------------------------------------- tiny models

def random_state_dict(model, seed, initializer_range):
    """Deterministic, non-degenerate random weights (independent of transformers' init code):
    embeddings N(0, initializer_range), linear weights N(0, 1/fan_in), biases N(0, 0.1^2),
    LayerNorm gamma 1 + N(0, 0.15^2), beta N(0, 0.1^2)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for name, p in sorted(model.state_dict().items()):
        if not p.is_floating_point() or name.endswith("position_ids"):
            continue
        shape = tuple(p.shape)
        r = torch.randn(shape, generator=g, dtype=torch.float32)
        if "LayerNorm.weight" in name:
            v = 1.0 + 0.15 * r
        elif name.endswith(".bias"):
            v = 0.1 * r
        elif "embeddings" in name:
            v = initializer_range * r
        else:
            v = r / (shape[1] ** 0.5)
        sd[name] = v
    return sd


def write_json(path, obj):
    path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


def build_tiny(spec, texts):
    d = REF / spec["name"]
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    vocab = build_vocab(texts, spec["lowercase"], spec["vocab_size"], spec["max_chars"])
    cfg = transformers.BertConfig(
        vocab_size=len(vocab),
        hidden_size=spec["hidden"],
        num_hidden_layers=spec["layers"],
        num_attention_heads=spec["heads"],
        intermediate_size=spec["intermediate"],
        max_position_embeddings=spec["max_pos"],
        type_vocab_size=2,
        layer_norm_eps=spec["eps"],
        hidden_act="gelu",
        initializer_range=0.5,
        pad_token_id=0,
        architectures=["BertModel"],
    )
    torch.manual_seed(SEED)
    model = transformers.BertModel(cfg, add_pooling_layer=spec["pooler"])
    sd = random_state_dict(model, spec["seed"], cfg.initializer_range)
    dtype = {"F16": torch.float16, "BF16": torch.bfloat16}[spec["dtype"]]
    stored = {spec["prefix"] + k: v.to(dtype).contiguous() for k, v in sd.items()}
    safetensors.torch.save_file(stored, str(d / "model.safetensors"), metadata={"format": "pt"})
    os.chmod(d / "model.safetensors", 0o644)

    c = {  # minimal config.json in the style of real BERT checkpoints
        "architectures": ["BertModel"],
        "attention_probs_dropout_prob": 0.1,
        "hidden_act": cfg.hidden_act,
        "hidden_dropout_prob": 0.1,
        "hidden_size": cfg.hidden_size,
        "initializer_range": cfg.initializer_range,
        "intermediate_size": cfg.intermediate_size,
        "layer_norm_eps": cfg.layer_norm_eps,
        "max_position_embeddings": cfg.max_position_embeddings,
        "model_type": "bert",
        "num_attention_heads": cfg.num_attention_heads,
        "num_hidden_layers": cfg.num_hidden_layers,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "torch_dtype": {"F16": "float16", "BF16": "bfloat16"}[spec["dtype"]],
        "type_vocab_size": cfg.type_vocab_size,
        "vocab_size": cfg.vocab_size,
    }
    write_json(d / "config.json", c)

    tok_cfg = {
        "do_lower_case": spec["lowercase"],
        "strip_accents": spec["strip_accents"],
        "tokenize_chinese_chars": True,
        "do_basic_tokenize": True,
        "never_split": None,
        "unk_token": "[UNK]",
        "sep_token": "[SEP]",
        "pad_token": "[PAD]",
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
        "tokenizer_class": "BertTokenizer",
        "model_max_length": spec["max_pos"],
    }
    write_json(d / "tokenizer_config.json", tok_cfg)
    write_json(d / "special_tokens_map.json",
               {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
                "mask_token": "[MASK]"})
    if spec["vocab_in"] == "vocab.txt":
        (d / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    else:
        tk = tokenizers.implementations.BertWordPieceTokenizer(
            {t: i for i, t in enumerate(vocab)},
            unk_token="[UNK]", sep_token="[SEP]", cls_token="[CLS]", pad_token="[PAD]", mask_token="[MASK]",
            clean_text=True, handle_chinese_chars=True, strip_accents=spec["strip_accents"],
            lowercase=spec["lowercase"], wordpieces_prefix="##",
        )
        tk.save(str(d / "tokenizer.json"), pretty=True)

    write_json(d / "sentence_bert_config.json", {"max_seq_length": spec["max_seq_length"], "do_lower_case": False})
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if spec["normalize"]:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    write_json(d / "modules.json", modules)
    (d / "1_Pooling").mkdir()
    pool = {
        "word_embedding_dimension": spec["hidden"],
        "pooling_mode_cls_token": spec["pooling"] == "cls",
        "pooling_mode_mean_tokens": spec["pooling"] == "mean",
        "pooling_mode_max_tokens": spec["pooling"] == "max",
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": False,
        "include_prompt": True,
    }
    write_json(d / "1_Pooling" / "config.json", pool)
    print("built %s: vocab %d, %d tensors" % (d, len(vocab), len(stored)))


def verify_tiny(spec, model):
    """Check that sentence-transformers loaded exactly the stored (upcast) weights and the intended tokenizer."""
    d = REF / spec["name"]
    stored = safetensors.torch.load_file(str(d / "model.safetensors"))
    params = dict(model[0].auto_model.state_dict())
    n = 0
    for k, v in stored.items():
        kk = k[len(spec["prefix"]):]
        if kk.startswith("pooler.") and kk not in params:
            continue
        p = params[kk]
        assert p.dtype == torch.float32, (k, p.dtype)
        assert torch.equal(p, v.float()), "weight %s not loaded exactly" % k
        n += 1
    expect = [k for k, p in params.items() if p.is_floating_point() and not k.endswith("position_ids")]
    if not spec["pooler"]:
        expect = [k for k in expect if not k.startswith("pooler.")]
    assert n == len(expect), (n, len(expect))
    norm = model.tokenizer.backend_tokenizer.normalizer
    assert model.tokenizer.is_fast
    assert norm.lowercase == spec["lowercase"], norm
    assert model.max_seq_length == spec["max_seq_length"], model.max_seq_length
    return n


TINY = [
    dict(name="tiny-cased-cls", lowercase=False, strip_accents=False, vocab_size=2500, max_chars=800,
         hidden=48, layers=3, heads=4, intermediate=96, max_pos=128, eps=1e-7, max_seq_length=64,
         pooling="cls", normalize=False, dtype="F16", prefix="", pooler=False, vocab_in="vocab.txt", seed=SEED + 1),
    dict(name="tiny-uncased-max", lowercase=True, strip_accents=None, vocab_size=1500, max_chars=500,
         hidden=32, layers=2, heads=2, intermediate=64, max_pos=96, eps=1e-12, max_seq_length=40,
         pooling="max", normalize=True, dtype="BF16", prefix="bert.", pooler=True, vocab_in="tokenizer.json",
         seed=SEED + 2),
]


# --------------------------------------------------------------------------- main

def sanity(model, name, texts, items):
    embs = np.stack([e for _, _, _, e in items])
    norms = np.linalg.norm(embs.astype(np.float64), axis=1)
    batched = model.encode(texts, convert_to_numpy=True, batch_size=32)
    diff = float(np.max(np.abs(batched - embs)))
    empty = [t for t, _, ids, _ in items if len(ids) == 2]
    trunc = sum(1 for _, n, ids, _ in items if n > len(ids))
    unk = model.tokenizer.unk_token_id
    n_unk = sum(1 for _, _, ids, _ in items if unk in ids)
    print("[%s] tokenizer=%s fast=%s normalizer=%s" % (
        name, type(model.tokenizer).__name__, model.tokenizer.is_fast, model.tokenizer.backend_tokenizer.normalizer))
    print("[%s] items=%d max_seq_length=%d dim=%d truncated=%d with_unk=%d" % (
        name, len(items), model.max_seq_length, embs.shape[1], trunc, n_unk))
    print("[%s] norms min=%.7f max=%.7f mean=%.7f" % (name, norms.min(), norms.max(), norms.mean()))
    print("[%s] batch(32) vs single max|diff|=%.3g" % (name, diff))
    print("[%s] [CLS][SEP]-only texts (%d): %s" % (name, len(empty), ", ".join(json_str(t) for t in empty)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rebuild-tiny", action="store_true", help="rebuild the tiny model directories")
    ap.add_argument("--only", choices=["minilm"] + [s["name"] for s in TINY], action="append")
    args = ap.parse_args()

    torch.manual_seed(SEED)
    random.seed(SEED)
    np.random.seed(SEED)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))

    texts = json.loads((REF / "texts.json").read_text(encoding="utf-8"))
    assert isinstance(texts, list) and all(isinstance(t, str) and t for t in texts)
    assert len(set(texts)) == len(texts)
    print("versions:", json.dumps(versions()))
    print("texts:", len(texts))

    if not args.only or "minilm" in args.only:
        if not (MINILM / "model.safetensors").exists():
            sys.exit("missing %s: run scripts/fetch_model.sh" % MINILM)
        m = load_st(MINILM)
        items = compute_reference(m, "all-MiniLM-L6-v2", texts, REF / "minilm.json")
        sanity(m, "all-MiniLM-L6-v2", texts, items)

    for spec in TINY:
        if args.only and spec["name"] not in args.only:
            continue
        d = REF / spec["name"]
        if args.rebuild_tiny or not (d / "model.safetensors").exists():
            build_tiny(spec, texts)
        m = load_st(d)
        n = verify_tiny(spec, m)
        print("[%s] verified %d weight tensors loaded exactly" % (spec["name"], n))
        items = compute_reference(m, spec["name"], texts, REF / (spec["name"] + ".json"))
        sanity(m, spec["name"], texts, items)


if __name__ == "__main__":
    main()
