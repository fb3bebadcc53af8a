"""Chat answers over data/sample, measured with the labelled question set
bench/qa/sample.jsonl (each line: query, relevant sources, the passage
that answers it, kind, and history for follow-ups).

    .venv-test/bin/python bench/chat_eval.py [--questions FILE] [--gemma]

0. Retrieval (POST /search, k=10, in each mode): recall@5, MRR and nDCG@10 over the
   ranked list of distinct documents (a document's rank is that of its
   best chunk), with the question's relevant documents as the labels;
   follow-ups searched as the chat searches them (question joined with the
   previous user turn) and, for reference, by their standalone version.
1. Extractive answers (no LLM, degraded mode): for each answerable
   question, does the answer contain the answering passage (exactly: the
   passage's text, markup aside, is in the answer, or an answer sentence
   of 6+ words is in the passage; by words: 60% of the passage's content
   words are in the answer), and does its first citation name a relevant
   document?
2. Relevance: the share of questions the documents do not cover that are
   answered "not covered", and of answerable ones wrongly so, at the
   default threshold and at others (from the best score each got).
3. With --gemma: the same questions through Gemma 3 270M under llama.cpp's
   server (scripts/fetch_llm.sh): the share answered by the LLM, the share
   whose citations all name given sources (after lode's check: by
   construction all), the share where lode had to remove citations, and
   the share with at least one supported citation.  Gemma 270M is a weak
   reader; this measures the protocol, not answer quality.
Prints Markdown.
"""
import argparse
import json
import math
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
LODE = os.environ.get("LODE", os.path.join(ROOT, "lode"))
EMBED = os.path.join(ROOT, "models", "all-MiniLM-L6-v2-q8_0.gguf")
GEMMA = os.path.join(ROOT, "models", "gemma-3-270m-q4_k_m.gguf")
STOP = set("the a an and or of to in on for is are be you your i my can do "
           "does how what when who which with at by from it this that as "
           "per if".split())


def norm(t):
    t = re.sub(r"[*_`|#>]", " ", t)
    return re.sub(r"\s+", " ", t).strip().lower()


def content_words(t):
    return {w for w in re.findall(r"[a-z0-9]+", t.lower()) if w not in STOP}


def contains_passage(answer, passage):
    a, p = norm(re.sub(r"\[\d+\]", " ", answer)), norm(passage)
    exact = p in a or any(
        len(s.split()) >= 6 and s in p
        for s in (x.strip() for x in re.split(r"\[\d+\]", norm(answer))))
    pw = content_words(passage)
    by_words = bool(pw) and len(pw & content_words(answer)) / len(pw) >= 0.6
    return exact, exact or by_words


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait(url, proc, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError("exited: " + url)
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("no answer from " + url)


def post(url, body, timeout=300):
    req = urllib.request.Request(url, json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def serve(db, env_extra, args=()):
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LODE_", "LLM_", "OPENROUTER_"))}
    env.update(env_extra)
    p = subprocess.Popen([LODE, "serve", "--db", db, "-m", EMBED, "--port",
                          str(port)] + list(args), cwd=ROOT, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = "http://127.0.0.1:%d" % port
    wait(url + "/health", p)
    return p, url


def ask(url, q):
    body = {"message": q["query"], "k": 5}
    if q.get("history"):
        body["history"] = q["history"]
    return post(url + "/chat", body)


def doc_ranking(url, query, mode, k=10):
    r = post(url + "/search", {"query": query, "k": k, "mode": mode})
    seen = []
    for x in r["results"]:
        if x["source"] not in seen:
            seen.append(x["source"])
    return seen


def metrics(ranked, relevant):
    """recall@5, reciprocal rank, nDCG@10 of one ranked document list."""
    rel = set(relevant)
    rec = len(rel & set(ranked[:5])) / len(rel)
    rr = next((1.0 / (i + 1) for i, d in enumerate(ranked) if d in rel), 0.0)
    dcg = sum(1.0 / math.log2(i + 2) for i, d in enumerate(ranked[:10])
              if d in rel)
    idcg = sum(1.0 / math.log2(i + 2) for i in range(min(len(rel), 10)))
    return rec, rr, dcg / idcg


def retrieval(url, qs):
    print("## 0. Retrieval (documents ranked by their best chunk)\n")
    print("| mode | questions | n | recall@5 | MRR | nDCG@10 |")
    print("|---|---|---|---|---|---|")
    for mode in ("vector", "keyword", "hybrid"):
        rows = {}
        for q in qs:
            if not q["relevant"]:
                continue
            query = q["query"]
            if q.get("history"):
                query = q["history"][0]["content"] + " " + query
            m = metrics(doc_ranking(url, query, mode), q["relevant"])
            for key in (q["kind"], "all"):
                rows.setdefault(key, []).append(m)
            if q.get("standalone"):
                rows.setdefault("followup (standalone)", []).append(
                    metrics(doc_ranking(url, q["standalone"], mode),
                            q["relevant"]))
        for key in sorted(rows, key=lambda k: (k == "all", k)):
            ms = rows[key]
            print("| %s | %s | %d | %.3f | %.3f | %.3f |" % (
                mode, key, len(ms),
                *(sum(m[i] for m in ms) / len(ms) for i in range(3))))
    print("\n(hybrid: the server's default fusion; chat retrieves the same "
          "way.)\n")


def pct(n, d):
    return "%.1f%% (%d/%d)" % (100.0 * n / d, n, d) if d else "-"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", default=os.path.join(ROOT, "bench", "qa",
                                                         "sample.jsonl"))
    ap.add_argument("--gemma", action="store_true")
    a = ap.parse_args()
    qs = [json.loads(l) for l in open(a.questions) if l.strip()]
    tmp = tempfile.mkdtemp(prefix="lode-chat-eval-")
    db = os.path.join(tmp, "lode.db")
    subprocess.run([LODE, "ingest", "--db", db, "-m", EMBED, "data/sample"],
                   cwd=ROOT, check=True, capture_output=True)
    print("# Chat over data/sample: %d questions (%s)\n" % (
        len(qs), os.path.relpath(a.questions, ROOT)))
    print("    .venv-test/bin/python bench/chat_eval.py%s\n" %
          (" --gemma" if a.gemma else ""))

    p, url = serve(db, {}, ["--chat-min-score", "-1"])
    answers = []
    try:
        retrieval(url, qs)
        for q in qs:
            answers.append(ask(url, q))
    finally:
        p.terminate()
        p.wait(30)
    answerable = [(q, r) for q, r in zip(qs, answers) if q["relevant"]]
    uncovered = [(q, r) for q, r in zip(qs, answers) if not q["relevant"]]
    exact = words = cited_rel = 0
    by_kind = {}
    for q, r in answerable:
        e, w = contains_passage(r["answer"], q.get("passage", ""))
        exact += e
        words += w
        first = r["citations"][0]["n"] if r["citations"] else None
        src = r["sources"][first - 1]["source"] if first else None
        hit = src in q["relevant"] or (r["sources"][first - 1].get("id")
                                       in q["relevant"] if first else False)
        cited_rel += bool(hit)
        k = by_kind.setdefault(q["kind"], [0, 0, 0])
        k[0] += 1
        k[1] += w
        k[2] += bool(hit)
    print("## 1. Extractive answers (no LLM)\n")
    print("| questions | contain the passage (exactly) | contain the passage "
          "(exactly or 60% of its words) | first citation is a relevant "
          "document |")
    print("|---|---|---|---|")
    n = len(answerable)
    print("| %d answerable | %s | %s | %s |" % (n, pct(exact, n), pct(words, n),
                                             pct(cited_rel, n)))
    print("\nBy kind (passage by words / relevant first citation):\n")
    for kind, (cnt, w, h) in sorted(by_kind.items()):
        print("- %s: %s / %s" % (kind, pct(w, cnt), pct(h, cnt)))

    print("\n## 2. Relevance threshold (best cosine of the retrieved "
          "chunks)\n")
    off = [x for x in uncovered if x[0].get("offtopic")]
    near = [x for x in uncovered if not x[0].get("offtopic")]
    print("| threshold | off-topic answered \"not covered\" | in-domain but "
          "uncovered answered \"not covered\" | answerable wrongly \"not "
          "covered\" |")
    print("|---|---|---|---|")

    def below(rows, t):
        return sum(1 for q, r in rows
                   if r["guardrails"]["relevance"]["best_score"] < t)
    for t in (0.15, 0.2, 0.25, 0.3, 0.35, 0.4):
        print("| %.2f%s | %s | %s | %s |" % (
            t, " (default)" if t == 0.25 else "", pct(below(off, t), len(off)),
            pct(below(near, t), len(near)),
            pct(below(answerable, t), len(answerable))))
    follow = [(q, r) for q, r in zip(qs, answers) if q.get("history")]
    if follow:
        hit = sum(1 for q, r in follow if r["sources"] and
                  r["sources"][0]["source"] in q["relevant"])
        print("\nFollow-ups without an LLM (question joined with the previous "
              "user turn): the first source is relevant for %s." %
              pct(hit, len(follow)))

    if not a.gemma:
        return
    subprocess.run([os.path.join(ROOT, "scripts", "fetch_llm.sh")], check=True)
    lport = free_port()
    llm = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", GEMMA, "--host",
         "127.0.0.1", "--port", str(lport), "--n_ctx", "4096",
         "--chat_format", "gemma"], cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        wait("http://127.0.0.1:%d/v1/models" % lport, llm)
        p, url = serve(db, {"LLM_BASE_URL": "http://127.0.0.1:%d/v1" % lport,
                            "LLM_MODEL": "gemma-3-270m", "MAX_TOKENS": "64",
                            "LLM_TIMEOUT": "300"})
        try:
            llm_ans = [ask(url, q) for q in qs]
        finally:
            p.terminate()
            p.wait(30)
    finally:
        llm.terminate()
        llm.wait(30)
    covered = [r for r in llm_ans if r["covered"]]
    by_llm = [r for r in covered if r["answer_kind"] == "llm"]
    valid = sum(1 for r in by_llm if all(
        1 <= int(x) <= len(r["sources"])
        for x in re.findall(r"\[(\d+)\]", r["answer"])))
    removed = sum(1 for r in by_llm
                  if r["guardrails"]["citations"]["removed"] > 0)
    supported = sum(1 for r in by_llm
                    if any(c["supported"] for c in r["citations"]))
    any_cite = sum(1 for r in by_llm if r["citations"])
    print("\n## 3. Gemma 3 270M (llama.cpp server, MAX_TOKENS=64)\n")
    print("| covered questions | answered by the LLM | citations all valid "
          "| lode removed citations | cites at all | one supported citation |")
    print("|---|---|---|---|---|---|")
    print("| %d | %s | %s | %s | %s | %s |" % (
        len(covered), pct(len(by_llm), len(covered)), pct(valid, len(by_llm)),
        pct(removed, len(by_llm)), pct(any_cite, len(by_llm)),
        pct(supported, len(by_llm))))


if __name__ == "__main__":
    main()
