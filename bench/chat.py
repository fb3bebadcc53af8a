"""Chat overhead and streaming concurrency of `lode serve`.

    .venv-test/bin/python bench/chat.py [--requests 300] [--rounds 10]

1. Overhead: sequential POST /chat (not streamed, then streamed) against
   tests/llm_server.py answering at once; lode's own time per chat is
   latency_ms.total - latency_ms.llm (what lode measured around the LLM
   call), and the client's wall time minus the LLM's is also shown.
   Median, p90, p99 in milliseconds.
2. Streams: rounds of 32 concurrent streamed chats against a slow test LLM
   (--piece-ms between streamed words, so each answer takes about a
   second); the server runs with 2 HTTP threads.  After each round: the
   server's VmRSS and thread count from /proc, and whether every stream
   was well-formed.  RSS should stay flat after the first round and the
   thread count should not grow with the streams.

Uses data/sample indexed into a temporary database and the default model.
Prints a Markdown report (bench/results/chat-DATE.md keeps one).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from llm_server import LLMServer  # noqa: E402

LODE = os.environ.get("LODE", os.path.join(ROOT, "lode"))
MODEL = os.path.join(ROOT, "models", "all-MiniLM-L6-v2-q8_0.gguf")
QUESTIONS = [
    "How many vacation days do I get per year?",
    "Can I carry unused leave over to next year?",
    "How do I report that I am sick?",
    "Can I work from home?",
    "What equipment does the company provide?",
    "How are expenses reimbursed?",
    "How long is parental leave?",
    "How often do I need to change my password?",
    "What happens in a performance review?",
    "How do I report misconduct anonymously?",
]


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return int(out["VmRSS"].split()[0]) / 1024.0, int(out["Threads"])


def start_lode(db, llm_url, *args):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LODE_", "LLM_", "OPENROUTER_"))}
    p = subprocess.Popen([LODE, "serve", "--db", db, "-m", MODEL, "--port",
                          "0", "--llm-base-url", llm_url] + list(args),
                         cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    for line in p.stderr:
        m = re.search(r"listening on http://\S+:(\d+)", line)
        if m:
            url = "http://127.0.0.1:%s" % m.group(1)
            break
    threading.Thread(target=lambda: [None for _ in p.stderr],
                     daemon=True).start()
    end = time.time() + 30
    while time.time() < end:
        try:
            if requests.get(url + "/health", timeout=2).status_code == 200:
                return p, url
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    raise RuntimeError("lode did not become healthy")


def overhead(url, n, stream):
    own, wall = [], []
    s = requests.Session()
    for i in range(n):
        q = QUESTIONS[i % len(QUESTIONS)]
        t0 = time.perf_counter()
        r = s.post(url + "/chat", json={"message": q, "stream": stream},
                   stream=stream, timeout=60)
        if stream:
            done = None
            for line in r.iter_lines(decode_unicode=True):
                if line.startswith("data: "):
                    done = json.loads(line[6:])
            a = done
        else:
            a = r.json()
        t = (time.perf_counter() - t0) * 1000
        assert a["answer_kind"] == "llm", a
        lat = a["latency_ms"]
        own.append(lat["total"] - lat["llm"])
        wall.append(t - lat["llm"])
    return own, wall


def stream_round(url, n, errors):
    def one(i):
        try:
            r = requests.post(url + "/chat", json={
                "message": QUESTIONS[i % len(QUESTIONS)], "stream": True},
                stream=True, timeout=120)
            names = [line[7:] for line in r.iter_lines(decode_unicode=True)
                     if line.startswith("event: ")]
            if names[0] != "sources" or names[-1] != "done":
                errors.append(names)
        except Exception as e:  # noqa: BLE001 - counted
            errors.append(repr(e))
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    return threads


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--streams", type=int, default=32)
    ap.add_argument("--piece-ms", type=int, default=40)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="lode-bench-chat-")
    db = os.path.join(tmp, "lode.db")
    subprocess.run([LODE, "ingest", "--db", db, "-m", MODEL, "data/sample"],
                   cwd=ROOT, check=True, capture_output=True)
    print("# Chat: overhead and concurrent streams\n")
    print("    .venv-test/bin/python bench/chat.py --requests %d --rounds %d "
          "--streams %d --piece-ms %d\n" % (a.requests, a.rounds, a.streams,
                                            a.piece_ms))
    print("%s, %d CPUs\n" % (time.strftime("%Y-%m-%d %H:%M"), os.cpu_count()))

    llm = LLMServer()
    p, url = start_lode(db, llm.url, "-t", "1")
    try:
        overhead(url, 20, False)   # warm-up
        print("## /chat overhead (LLM answering at once)\n")
        print("| mode | lode's own time p50 | p90 | p99 | client wall minus "
              "LLM p50 | p99 |")
        print("|---|---|---|---|---|---|")
        for stream in (False, True):
            own, wall = overhead(url, a.requests, stream)
            print("| %s | %.2f ms | %.2f ms | %.2f ms | %.2f ms | %.2f ms |" % (
                "streamed" if stream else "not streamed", pct(own, 50),
                pct(own, 90), pct(own, 99), pct(wall, 50), pct(wall, 99)))
    finally:
        p.terminate()
        p.wait(30)

    llm.default = {"mode": "answer", "delay_ms": a.piece_ms}
    p, url = start_lode(db, llm.url, "--http-threads", "2")
    try:
        rss0, thr0 = proc_status(p.pid)
        print("\n## %d concurrent streams, %d rounds (2 HTTP threads, the "
              "LLM waits %d ms per word)\n" % (a.streams, a.rounds,
                                                 a.piece_ms))
        print("| round | seconds | streams in flight (max) | server threads "
              "(max during the round) | VmRSS after | errors |")
        print("|---|---|---|---|---|---|")
        print("| before | | | %d | %.1f MB | |" % (thr0, rss0))
        rss = []
        for rnd in range(1, a.rounds + 1):
            errors = []
            t0 = time.time()
            threads = stream_round(url, a.streams, errors)
            max_active = max_thr = 0
            while any(t.is_alive() for t in threads):
                with llm.lock:
                    max_active = max(max_active, llm.active)
                max_thr = max(max_thr, proc_status(p.pid)[1])
                time.sleep(0.05)
            for t in threads:
                t.join()
            r, _ = proc_status(p.pid)
            rss.append(r)
            print("| %d | %.1f | %d | %d | %.1f MB | %d |" % (
                rnd, time.time() - t0, max_active, max_thr, r, len(errors)))
        print("\nVmRSS from round 2 to round %d: %+.1f MB." % (
            a.rounds, rss[-1] - rss[min(1, len(rss) - 1)]))
    finally:
        p.terminate()
        p.wait(30)
        llm.close()


if __name__ == "__main__":
    main()
