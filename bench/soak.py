"""Soak benchmark: `lode serve` under a steady mixed load for an hour,
watching its memory and file descriptors for leaks.

    .venv-test/bin/python bench/soak.py [--minutes 60] [--clients 3]
        [--pause-ms 100] [--warmup-minutes 5] [--out bench/results]

It starts the real binary (a copy of build/lode, so a rebuild meanwhile
does not touch the running one) on a loopback port with a temporary
database holding data/sample/, an API key, a generic webhook and the test
LLM (tests/llm_server.py, in this process) for chat.  A few client
threads then loop over a weighted mix of search, /v1/embeddings, document
writes and deletes, generic webhook deliveries (each stored document is
deleted again) and chat, with a pause between requests: a moderate load
for a small shared machine, not a throughput test.

Why the database stays the same size: documents are written under ids
drawn from a fixed pool and deleted again, so the index neither grows nor
shrinks over the run; RSS growth then means memory that is not given back,
not more data.

Before the load, one embeddings request of 40 texts of about 256 tokens
(10,240 tokens, more than a forward pass takes) grows the encoder's
scratch memory to its full token budget, as bench/http.sh does: the
scratch grows to the largest batch seen and is kept, so without it a
step whenever a bigger batch happens to form would look like a leak
(--no-prime to see that).

Every --sample-seconds (60) the clients are paused until no request is in
flight, and the server's VmRSS, VmHWM, thread count and open descriptors
(/proc/PID/status, /proc/PID/fd) are read: a quiet moment, so an
in-flight request's buffers or sockets do not blur the reading.  The
verdict compares the readings after the warm-up with the one that ends
it: RSS must grow by less than --max-growth-mb (2) and the descriptor
count must stay within --fd-tolerance (0) of it.  Results go to
OUT/soak-DATE.json and .md; the exit status is 0 on pass, 1 on fail.
"""
import argparse
import datetime
import json
import os
import random
import re
import shutil
import signal
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

KEY = "soak-key"
AUTH = {"Authorization": "Bearer " + KEY}
WORDS = ("leave vacation holiday salary payroll laptop password reset "
         "expense travel office remote policy security badge parking "
         "training review manager contract benefit insurance pension "
         "meeting report budget invoice customer support ticket release "
         "deploy server backup network printer onboarding").split()
QUESTIONS = ["How many vacation days do I get per year?",
             "How do I reset my password?",
             "Can I work remotely?",
             "How are travel expenses reimbursed?",
             "What is the parental leave policy?"]
# (kind, weight)
MIX = [("search", 30), ("embeddings", 20), ("write", 15), ("delete", 10),
       ("webhook", 10), ("chat", 10), ("status", 5)]


def text(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def read_proc(pid):
    """VmRSS, VmHWM, RssAnon (heap), RssFile (the mmap'd model and
    database pages touched) in kB, Threads and the open descriptors."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "Threads"):
                out[k] = int(v.split()[0])
    out["fds"] = len(os.listdir("/proc/%d/fd" % pid))
    return out


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.count = {}        # kind -> requests
        self.status = {}       # "kind status" -> count
        self.latency = {}      # kind -> [ms]
        self.failures = []     # first failures, for the report
        self.exceptions = 0

    def add(self, kind, status, ms, body=""):
        with self.lock:
            self.count[kind] = self.count.get(kind, 0) + 1
            key = "%s %s" % (kind, status)
            self.status[key] = self.status.get(key, 0) + 1
            lat = self.latency.setdefault(kind, [])
            if len(lat) < 200000:
                lat.append(ms)
            if not (200 <= status < 300) and len(self.failures) < 20:
                self.failures.append({"kind": kind, "status": status,
                                      "body": body[:300]})

    def total(self):
        with self.lock:
            return sum(self.count.values())


class Load:
    """The clients: each loops over the mix until stop is set, and waits
    at the gate while the sampler reads the server."""

    def __init__(self, url, args, stats):
        self.url = url
        self.args = args
        self.stats = stats
        self.stop = threading.Event()
        self.cond = threading.Condition()
        self.paused = False
        self.in_flight = 0
        self.kinds = [k for k, w in MIX for _ in range(w)]

    def quiesce(self):
        with self.cond:
            self.paused = True
            self.cond.wait_for(lambda: self.in_flight == 0, 120)

    def resume(self):
        with self.cond:
            self.paused = False
            self.cond.notify_all()

    def _enter(self):
        with self.cond:
            self.cond.wait_for(lambda: not self.paused or self.stop.is_set())
            self.in_flight += 1

    def _leave(self):
        with self.cond:
            self.in_flight -= 1
            self.cond.notify_all()

    def client(self, n):
        rng = random.Random(1000 + n)
        http = requests.Session()
        ids = ["c%d-%d" % (n, i) for i in range(self.args.doc_pool)]
        stored = set()
        webhook_seq = 0
        while not self.stop.is_set():
            kind = rng.choice(self.kinds)
            if kind == "delete" and not stored:
                kind = "write"
            self._enter()
            try:
                if kind == "webhook":
                    webhook_seq += 1
                    self.webhook(http, rng, n, webhook_seq)
                else:
                    self.one(http, rng, kind, ids, stored)
            except requests.RequestException as e:
                with self.stats.lock:
                    self.stats.exceptions += 1
                    if len(self.stats.failures) < 20:
                        self.stats.failures.append({"kind": kind,
                                                    "error": repr(e)})
            finally:
                self._leave()
            self.stop.wait(self.args.pause_ms / 1000.0 *
                           rng.uniform(0.5, 1.5))

    def call(self, http, kind, method, path, body=None, headers=None):
        t = time.perf_counter()
        r = http.request(method, self.url + path, json=body,
                         headers=headers, timeout=120)
        ms = (time.perf_counter() - t) * 1000
        self.stats.add(kind, r.status_code, ms,
                       "" if r.ok else r.text)
        return r

    def one(self, http, rng, kind, ids, stored):
        if kind == "search":
            body = {"query": text(rng, rng.randint(2, 8)), "k": 5}
            if rng.random() < 0.3:
                body["collection"] = "soak"
            if rng.random() < 0.3:
                body["mode"] = rng.choice(["vector", "keyword", "hybrid"])
            self.call(http, kind, "POST", "/search", body)
        elif kind == "embeddings":
            inputs = [text(rng, rng.randint(3, 40))
                      for _ in range(rng.randint(1, 8))]
            self.call(http, kind, "POST", "/v1/embeddings",
                      {"input": inputs, "model": "all-MiniLM-L6-v2"})
        elif kind == "write":
            doc_id = rng.choice(ids)
            paras = "\n\n".join(text(rng, rng.randint(20, 120))
                                for _ in range(rng.randint(1, 4)))
            body = {"documents": [{
                "id": doc_id, "title": "Soak " + doc_id,
                "source": "soak/%s.md" % doc_id,
                "text": "# " + text(rng, 3) + "\n\n" + paras,
                "metadata": {"client": doc_id.split("-")[0],
                             "n": rng.randint(0, 9)}}]}
            r = self.call(http, kind, "POST", "/collections/soak/documents",
                          body, AUTH)
            if r.ok:
                stored.add(doc_id)
        elif kind == "delete":
            doc_id = rng.choice(sorted(stored))
            r = self.call(http, kind, "DELETE",
                          "/collections/soak/documents/" + doc_id,
                          headers=AUTH)
            if r.ok:
                stored.discard(doc_id)
        elif kind == "chat":
            if rng.random() < 0.7:
                self.call(http, kind, "POST", "/chat",
                          {"message": rng.choice(QUESTIONS), "k": 3})
            else:
                self.call(http, kind, "POST", "/v1/chat/completions",
                          {"model": "lode", "messages": [
                              {"role": "user",
                               "content": rng.choice(QUESTIONS)}]})
        elif kind == "status":
            path = rng.choice(["/health", "/metrics", "/memory-status",
                               "/collections", "/v1/models"])
            self.call(http, kind, "GET", path)

    def webhook(self, http, rng, n, seq):
        """A new event each time; the stored document is deleted again so
        the collection stays small (the event id is remembered)."""
        body = {"delivery": "soak-%d-%d" % (n, seq),
                "message": text(rng, rng.randint(10, 60)),
                "author": "client%d" % n}
        r = self.call(http, "webhook", "POST", "/webhook/notes", body, AUTH)
        if r.ok and rng.random() < 0.2:
            # a redelivery: must be a duplicate
            r2 = self.call(http, "webhook", "POST", "/webhook/notes", body,
                           AUTH)
            if r2.ok and not r2.json().get("duplicate"):
                self.stats.add("webhook-not-duplicate", 599, 0, r2.text)
        if r.ok and r.json().get("document_id"):
            self.call(http, "webhook-delete", "DELETE",
                      "/collections/webhook-notes/documents/%d" %
                      r.json()["document_id"], headers=AUTH)


def start_server(args, tmp, llm):
    lode = os.path.join(tmp, "lode")
    shutil.copy(args.lode, lode)
    db = os.path.join(tmp, "soak.db")
    subprocess.run([lode, "ingest", "--db", db, "-m", args.model,
                    os.path.join(ROOT, "data", "sample")],
                   check=True, capture_output=True, timeout=600)
    hooks = os.path.join(tmp, "webhooks.json")
    with open(hooks, "w") as f:
        json.dump({"generic": {"notes": {
            "text": ["/message"], "id": "/delivery",
            "metadata": {"author": "/author"}}}}, f)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LODE_", "LLM_", "OPENROUTER_"))}
    log = open(os.path.join(tmp, "server.log"), "w")
    proc = subprocess.Popen(
        [lode, "serve", "--host", "127.0.0.1", "--port", "0", "--db", db,
         "-m", args.model, "-t", str(args.threads), "--api-key", KEY,
         "--webhooks", hooks, "--llm-base-url", llm.url],
        env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    end = time.time() + 60
    port = None
    while time.time() < end and port is None:
        with open(log.name) as f:
            m = re.search(r"listening on http://\S+:(\d+)", f.read())
        if m:
            port = int(m.group(1))
        elif proc.poll() is not None:
            break
        else:
            time.sleep(0.1)
    if port is None:
        proc.kill()
        raise SystemExit("server did not start:\n" + open(log.name).read())
    url = "http://127.0.0.1:%d" % port
    while time.time() < end:
        try:
            if requests.get(url + "/health", timeout=5).status_code == 200:
                return proc, url, log
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("server not healthy:\n" + open(log.name).read())


def percentile(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))]


def verdict(samples, warmup_min, max_growth_mb, fd_tolerance):
    after = [s for s in samples if s["minute"] >= warmup_min]
    if len(after) < 2:
        return {"pass": False, "reason": "fewer than two readings after "
                "the warm-up (run longer than --warmup-minutes)"}
    base = after[0]
    rss_growth_kb = after[-1]["VmRSS"] - base["VmRSS"]
    rss_max_growth_kb = max(s["VmRSS"] for s in after) - base["VmRSS"]
    fd_dev = max(abs(s["fds"] - base["fds"]) for s in after)
    xs = [s["minute"] for s in after]
    ys = [s["VmRSS"] for s in after]
    slope = 0.0
    if len(after) >= 3:
        mx, my = statistics.mean(xs), statistics.mean(ys)
        den = sum((x - mx) ** 2 for x in xs)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den
    rss_ok = rss_growth_kb < max_growth_mb * 1024
    fd_ok = fd_dev <= fd_tolerance
    return {"pass": rss_ok and fd_ok, "rss_ok": rss_ok, "fd_ok": fd_ok,
            "baseline_minute": base["minute"],
            "rss_baseline_kb": base["VmRSS"],
            "rss_final_kb": after[-1]["VmRSS"],
            "rss_growth_kb": rss_growth_kb,
            "rss_max_growth_kb": rss_max_growth_kb,
            "rss_slope_kb_per_min": round(slope, 2),
            "fd_baseline": base["fds"], "fd_max_deviation": fd_dev,
            "max_growth_mb": max_growth_mb, "fd_tolerance": fd_tolerance}


def write_report(args, result):
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, "soak-%s%s" % (result["date"],
                                                 args.suffix))
    with open(stem + ".json", "w") as f:
        json.dump(result, f, indent=1)
    v = result["verdict"]
    lines = ["# Soak: %d minutes of mixed load on `lode serve`" %
             result["minutes"], "",
             "%s, %s; %d clients, %d ms pause, `-t %d`, warm-up %g min; "
             "`bench/soak.py` (%s)." %
             (result["date"], result["host"], args.clients, args.pause_ms,
              args.threads, args.warmup_minutes,
              " ".join(result["command"])), "",
             "**%s**: RSS %+.0f kB from minute %.1f to the end (limit %d MB; "
             "largest %+.0f kB; slope %.1f kB/min), open descriptors within "
             "%d of %d (tolerance %d)." %
             ("PASS" if v.get("pass") else "FAIL",
              v.get("rss_growth_kb", 0), v.get("baseline_minute", 0),
              args.max_growth_mb, v.get("rss_max_growth_kb", 0),
              v.get("rss_slope_kb_per_min", 0), v.get("fd_max_deviation", 0),
              v.get("fd_baseline", 0), args.fd_tolerance)
             if "rss_growth_kb" in v else "**FAIL**: " + v["reason"], "",
             "Server exit status on SIGTERM: %s. Requests: %d "
             "(%.1f/s), non-2xx: %d, 5xx: %d, client errors "
             "(connection/timeout): %d." %
             (result["exit_status"], result["requests"],
              result["requests_per_s"], result["non_2xx"], result["5xx"],
              result["exceptions"]), "",
             "| route | requests | p50 ms | p99 ms |", "| --- | ---: | ---: | ---: |"]
    for kind, r in sorted(result["routes"].items()):
        lines.append("| %s | %d | %.1f | %.1f |" %
                     (kind, r["requests"], r["p50_ms"], r["p99_ms"]))
    if result.get("prime"):
        p = result["prime"]
        lines += ["", "Primed with one embeddings request of %d tokens: RSS "
                  "%.2f -> %.2f MB." % (p["tokens"], p["rss_before_kb"] / 1024,
                                        p["rss_after_kb"] / 1024)]
    else:
        lines += ["", "Not primed (--no-prime): the encoder scratch grows "
                  "whenever a larger batch than before forms."]
    lines += ["", "Status codes: " + ", ".join(
        "%s: %d" % kv for kv in sorted(result["status"].items())), "",
        "| minute | RSS MB | anon MB | file MB | peak RSS MB | threads "
        "| fds | requests |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for s in result["samples"]:
        lines.append("| %.1f | %.2f | %.2f | %.2f | %.2f | %d | %d | %d |" %
                     (s["minute"], s["VmRSS"] / 1024,
                      s.get("RssAnon", 0) / 1024, s.get("RssFile", 0) / 1024,
                      s["VmHWM"] / 1024, s["Threads"], s["fds"],
                      s["requests"]))
    if result["failures"]:
        lines += ["", "First failures:", ""]
        lines += ["- `%s`" % json.dumps(f)[:300] for f in result["failures"]]
    with open(stem + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    return stem


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--warmup-minutes", type=float, default=5)
    ap.add_argument("--clients", type=int, default=3)
    ap.add_argument("--pause-ms", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2,
                    help="lode serve -t")
    ap.add_argument("--doc-pool", type=int, default=20,
                    help="document ids per client")
    ap.add_argument("--sample-seconds", type=float, default=60)
    ap.add_argument("--max-growth-mb", type=float, default=2)
    ap.add_argument("--fd-tolerance", type=int, default=0)
    ap.add_argument("--lode", default=os.path.join(ROOT, "build", "lode"))
    ap.add_argument("--model", default=os.path.join(
        ROOT, "models", "all-MiniLM-L6-v2-q8_0.gguf"))
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--no-prime", action="store_true",
                    help="skip the request that grows the encoder scratch")
    ap.add_argument("--suffix", default="",
                    help="appended to the result files' names")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="lode-soak-")
    llm = LLMServer()
    proc, url, log = start_server(args, tmp, llm)
    stats = Stats()
    load = Load(url, args, stats)
    samples = []
    print("soak: server pid %d at %s, %s minutes" %
          (proc.pid, url, args.minutes), flush=True)
    prime = None
    if not args.no_prime:
        rng = random.Random(7)
        before = read_proc(proc.pid)["VmRSS"]
        r = requests.post(url + "/v1/embeddings", timeout=300, json={
            "input": [text(rng, 300) for _ in range(40)]})
        r.raise_for_status()
        prime = {"rss_before_kb": before,
                 "rss_after_kb": read_proc(proc.pid)["VmRSS"],
                 "tokens": r.json()["usage"]["prompt_tokens"]}
        print("soak: primed with %d tokens: rss %.2f -> %.2f MB" %
              (prime["tokens"], before / 1024,
               prime["rss_after_kb"] / 1024), flush=True)
    threads = [threading.Thread(target=load.client, args=(i,), daemon=True)
               for i in range(args.clients)]
    t0 = time.time()
    for t in threads:
        t.start()
    end = t0 + args.minutes * 60
    next_sample = t0
    died = False
    while True:
        now = time.time()
        if now >= next_sample:
            load.quiesce()
            with llm.lock:        # the test LLM keeps every request
                llm.requests.clear()
            if proc.poll() is not None:
                died = True
                load.resume()
                break
            s = read_proc(proc.pid)
            s["minute"] = round((time.time() - t0) / 60, 2)
            s["requests"] = stats.total()
            samples.append(s)
            load.resume()
            print("soak: min %5.1f rss %.2f MB fds %d threads %d "
                  "requests %d" % (s["minute"], s["VmRSS"] / 1024, s["fds"],
                                   s["Threads"], s["requests"]), flush=True)
            next_sample += args.sample_seconds
            if next_sample > end + 1:
                break
        time.sleep(min(1.0, max(0.0, next_sample - time.time())))
    load.stop.set()
    load.resume()
    for t in threads:
        t.join(150)
    elapsed = time.time() - t0
    if not died:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = "killed after 60 s"
    else:
        rc = proc.returncode
    llm.close()
    log.close()

    routes = {k: {"requests": n,
                  "p50_ms": round(percentile(stats.latency[k], 50), 2),
                  "p99_ms": round(percentile(stats.latency[k], 99), 2)}
              for k, n in stats.count.items()}
    non2xx = sum(n for k, n in stats.status.items()
                 if not 200 <= int(k.split()[1]) < 300)
    n5xx = sum(n for k, n in stats.status.items()
               if int(k.split()[1]) >= 500)
    v = verdict(samples, args.warmup_minutes, args.max_growth_mb,
                args.fd_tolerance)
    if died or rc != 0 or n5xx or stats.exceptions:
        v["pass"] = False
    result = {
        "date": datetime.date.today().isoformat(),
        "host": "%s, %d CPUs" % (os.uname().nodename, os.cpu_count()),
        "command": sys.argv[1:] or ["(defaults)"],
        "minutes": args.minutes, "elapsed_s": round(elapsed, 1),
        "args": vars(args), "exit_status": rc, "server_died": died,
        "requests": stats.total(),
        "requests_per_s": round(stats.total() / max(elapsed, 1), 2),
        "non_2xx": non2xx, "5xx": n5xx, "exceptions": stats.exceptions,
        "routes": routes, "status": stats.status,
        "failures": stats.failures, "samples": samples, "verdict": v,
        "prime": prime,
        "server_log_tail": open(log.name).read()[-2000:]}
    stem = write_report(args, result)
    shutil.rmtree(tmp, ignore_errors=True)
    print("soak: %s (%s.md)" % ("PASS" if v["pass"] else "FAIL", stem))
    print(json.dumps(v))
    return 0 if v["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
