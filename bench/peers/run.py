"""run.py - the side-by-side benchmark of lode and the Python stack it
replaces (bench/peers/app.py), driven by bench/peers/run.sh, which builds
and installs everything first.  One after the other in the same session,
each server is measured twice: as it is, and inside a cgroup of 512 MB and
10% of one CPU (Render's free plan):

- cold start: process start to the first /health 200 with the model loaded,
  and to the first successful /search after it.  /health is polled every
  10 ms at first, the gap growing by 20% a poll up to 5 s: the Python
  worker is recycled after 50 requests (max_requests), polls included, so
  a fixed fast poll would recycle it before its model is loaded;
- RSS of the whole process tree (from /proc, sampled every 100 ms): idle
  after the start, after the mixed requests, and the peak of the run;
- mixed requests (search, webhook, chat, health, model and memory status)
  from 8 client threads: 1,000 of them, or as many as fit in --mixed-cap
  seconds;
- once more for the Python stack as it is, without worker recycling
  (max_requests 0): cold start, idle RSS and the wrk runs, these taking
  turns row by row with a fresh lode's, both servers up, so that the
  load other work puts on the machine hits both alike (the throughput
  goal is judged on these pairs);
- wrk against /search and /webhook/tally at 1, 8 and 32 connections:
  requests/s, p50, p99 and errors (socket errors, timeouts, non-2xx).

Under the limit, "survived" means the server's process tree still runs at
the end and the memory cgroup recorded no OOM kill.  Prints one Markdown
table with both columns and the ratios, writes it to
bench/results/peers-DATE.md and a PNG chart (memory and latency side by
side) to bench/results/peers-DATE.png.
"""
import argparse
import concurrent.futures
import datetime
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
MB = 1024 * 1024
LIMIT_BYTES = 512 * MB
CPU_QUOTA_US, CPU_PERIOD_US = 10000, 100000
CONNS = (1, 8, 32)
MIXED = 1000
QUERIES = [
    "how many vacation days do I get", "Can I carry over unused leave?",
    "How much sick pay do I get?", "How long is maternity leave?",
    "How do I claim expenses?", "What is the hotel limit in London?",
    "Can I work from another country?", "What is the minimum password length?",
    "When is pay day?", "How much is the learning budget?",
    "How do I report a lost laptop?", "What is the pension match?",
]


def log(*a):
    print("peers:", *a, file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- memory of a process tree ---------------------------------------------

def tree_pids(root):
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def tree_rss(root):
    """VmRSS of root and all its descendants, bytes (0: all gone)."""
    total = 0
    for p in tree_pids(root):
        try:
            with open(f"/proc/{p}/status") as f:
                m = re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M)
            total += int(m.group(1)) * 1024 if m else 0
        except OSError:
            pass
    return total


class Sampler(threading.Thread):
    """Samples the tree's RSS every 100 ms; keeps the peak."""

    def __init__(self, root):
        super().__init__(daemon=True)
        self.root, self.peak, self.stop_flag = root, 0, threading.Event()

    def run(self):
        while not self.stop_flag.wait(0.1):
            self.peak = max(self.peak, tree_rss(self.root))


# ---- cgroups ----------------------------------------------------------------

def mounts():
    with open("/proc/mounts") as f:
        return [line.split() for line in f]


class Limit:
    """A cgroup with memory 512 MB and cpu 10%: v2 where a v2 hierarchy
    has the memory and cpu controllers, else v1 (memory and cpu)."""

    def __init__(self, name):
        self.dirs, self.mechanism = [], ""
        v2 = [m[1] for m in mounts() if m[2] == "cgroup2"]
        for mnt in v2:
            try:
                ctl = open(os.path.join(mnt, "cgroup.controllers")).read()
            except OSError:
                continue
            if {"memory", "cpu"} <= set(ctl.split()):
                self._v2(mnt, name)
                return
        self._v1(name)

    def _own(self, controller):
        """This process's cgroup path for a v1 controller (or v2: '')."""
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, ctrls, path = line.rstrip("\n").split(":", 2)
                if controller in ctrls.split(",") or (controller == "" and
                                                      ctrls == ""):
                    return path
        return "/"

    def _v2(self, mnt, name):
        parent = os.path.join(mnt, self._own("").lstrip("/"))
        for c in ("+memory", "+cpu"):
            try:
                with open(os.path.join(parent, "cgroup.subtree_control"),
                          "w") as f:
                    f.write(c)
            except OSError:
                pass
        d = os.path.join(parent, name)
        os.makedirs(d, exist_ok=True)
        self.write(d, "memory.max", str(LIMIT_BYTES))
        self.write(d, "memory.swap.max", "0", optional=True)
        self.write(d, "cpu.max", f"{CPU_QUOTA_US} {CPU_PERIOD_US}")
        self.dirs, self.kind = [d], "v2"
        self.mem = self.cpu = d
        self.mechanism = (f"cgroup v2: {d}/memory.max = {LIMIT_BYTES}, "
                          f"cpu.max = \"{CPU_QUOTA_US} {CPU_PERIOD_US}\"")

    def _v1(self, name):
        paths = {}
        for m in mounts():
            if m[2] != "cgroup":
                continue
            opts = m[3].split(",")
            for c in ("memory", "cpu"):
                if c in opts:
                    paths[c] = m[1]
        if set(paths) != {"memory", "cpu"}:
            raise SystemExit("peers: neither cgroup v2 with memory and cpu "
                             "nor cgroup v1 memory and cpu is mounted")
        self.mem = os.path.join(paths["memory"],
                                self._own("memory").lstrip("/"), name)
        self.cpu = os.path.join(paths["cpu"], self._own("cpu").lstrip("/"),
                                name)
        for d in (self.mem, self.cpu):
            os.makedirs(d, exist_ok=True)
        self.write(self.mem, "memory.limit_in_bytes", str(LIMIT_BYTES))
        self.write(self.mem, "memory.memsw.limit_in_bytes", str(LIMIT_BYTES),
                   optional=True)
        self.write(self.cpu, "cpu.cfs_period_us", str(CPU_PERIOD_US))
        self.write(self.cpu, "cpu.cfs_quota_us", str(CPU_QUOTA_US))
        self.dirs, self.kind = [self.mem, self.cpu], "v1"
        self.mechanism = (
            f"cgroup v1: {self.mem}/memory.limit_in_bytes = {LIMIT_BYTES}, "
            f"{self.cpu}/cpu.cfs_quota_us = {CPU_QUOTA_US} of "
            f"cpu.cfs_period_us = {CPU_PERIOD_US}")

    @staticmethod
    def write(d, name, value, optional=False):
        try:
            with open(os.path.join(d, name), "w") as f:
                f.write(value)
        except OSError:
            if not optional:
                raise

    def enter(self):
        """For preexec_fn: put the calling (child) process in the group."""
        for d in self.dirs:
            with open(os.path.join(d, "cgroup.procs"), "w") as f:
                f.write(str(os.getpid()))

    def oom_kills(self):
        try:
            if self.kind == "v2":
                text = open(os.path.join(self.mem, "memory.events")).read()
            else:
                text = open(os.path.join(self.mem, "memory.oom_control")).read()
            m = re.search(r"^oom_kill (\d+)", text, re.M)
            return int(m.group(1)) if m else 0
        except OSError:
            return 0

    def peak_bytes(self):
        name = "memory.peak" if self.kind == "v2" else \
            "memory.max_usage_in_bytes"
        try:
            return int(open(os.path.join(self.mem, name)).read())
        except (OSError, ValueError):
            return 0

    def reset_peak(self):
        if self.kind == "v1":
            self.write(self.mem, "memory.max_usage_in_bytes", "0",
                       optional=True)

    def throttle_check(self):
        """CPU time against wall time of a busy loop inside the group."""
        t0 = time.monotonic()
        p = subprocess.Popen([sys.executable, "-c",
                              "import time\nend = time.monotonic() + 2\n"
                              "while time.monotonic() < end: pass"],
                             preexec_fn=self.enter)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.monotonic() - t0
        cpu = ru.ru_utime + ru.ru_stime
        return cpu, wall

    def remove(self):
        for d in self.dirs:
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except OSError:
                    time.sleep(0.1)


# ---- servers ----------------------------------------------------------------

class Server:
    def __init__(self, name, argv, env, cwd, limit, tmp):
        self.name, self.limit = name, limit
        self.port = int(env["PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(tmp, f"{name}.log")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
            stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=limit.enter if limit else None)
        self.sampler = Sampler(self.proc.pid)
        self.sampler.start()

    def alive(self):
        return self.proc.poll() is None

    def rss(self):
        return tree_rss(self.proc.pid)

    def wait_loaded(self, deadline_s):
        """Seconds from the start to /health 200 with the model loaded."""
        gap, end = 0.01, self.t0 + deadline_s
        while time.monotonic() < end and self.alive():
            try:
                r = requests.get(self.url + "/health", timeout=10)
                if r.status_code == 200 and r.json().get("model_loaded"):
                    return time.monotonic() - self.t0
            except (requests.RequestException, ValueError):
                pass
            time.sleep(gap)
            gap = min(gap * 1.2, 5.0)
        return None

    def first_search(self, deadline_s):
        end = self.t0 + deadline_s
        while time.monotonic() < end and self.alive():
            try:
                r = requests.post(self.url + "/search",
                                  json={"query": QUERIES[0], "k": 5},
                                  timeout=60)
                if r.status_code == 200 and r.json().get("results"):
                    return time.monotonic() - self.t0
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.1)
        return None

    def stop(self):
        self.sampler.stop_flag.set()
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        else:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def tail(self, chars=1500):
        with open(self.log_path, errors="replace") as f:
            text = f.read()
        return text[-chars:] if chars else text


def webhook_body(i, tag):
    return {"eventId": f"mixed-{tag}-{i}", "eventType": "FORM_RESPONSE",
            "createdAt": "2025-01-21T10:00:00Z",
            "data": {"responseId": f"r-{tag}-{i}", "formId": "bench",
                     "formName": "Support", "fields": [
                         {"key": "question_problem", "label": "Problem",
                          "type": "TEXTAREA",
                          "value": QUERIES[i % len(QUERIES)] + f" (case {i})"}]}}


# per 20 requests: 7 search, 4 webhook, 2 chat, 3 health, 2 model, 2 memory
MIX = (["search"] * 7 + ["webhook"] * 4 + ["chat"] * 2 + ["health"] * 3 +
       ["model"] * 2 + ["memory"] * 2)


def mixed(server, n, cap_s, tag):
    """n mixed requests from 8 threads, or what fits in cap_s seconds."""
    local = threading.local()
    deadline = time.monotonic() + cap_s

    def one(i):
        if time.monotonic() > deadline:
            return "skipped"
        s = getattr(local, "s", None) or requests.Session()
        local.s = s
        kind, url = MIX[i % len(MIX)], server.url
        left = max(1.0, deadline - time.monotonic())
        try:
            if kind == "search":
                r = s.post(url + "/search", json={
                    "query": QUERIES[i % len(QUERIES)], "k": 5}, timeout=left)
            elif kind == "webhook":
                r = s.post(url + "/webhook/tally", json=webhook_body(i, tag),
                           timeout=left)
            elif kind == "chat":
                r = s.post(url + "/chat", json={
                    "message": QUERIES[i % len(QUERIES)]}, timeout=left)
            else:
                path = {"health": "/health", "model": "/model-status",
                        "memory": "/memory-status"}[kind]
                r = s.get(url + path, timeout=left)
            return "ok" if r.status_code < 400 else f"http {r.status_code}"
        except requests.RequestException as e:
            return type(e).__name__

    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        outcomes = list(ex.map(one, range(n)))
    took = time.monotonic() - t0
    counts = {}
    for o in outcomes:
        counts[o] = counts.get(o, 0) + 1
    return {"seconds": took, "ok": counts.pop("ok", 0),
            "skipped": counts.pop("skipped", 0), "errors": counts}


def run_wrk(server, script, path, conns, duration, tag):
    threads = min(conns, 2)
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s",
           "--timeout", "10s", "--latency", "-s", script, server.url + path,
           "--", tag]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                         timeout=duration + 60).stdout
    m = re.search(r"^RESULT (.*)$", out, re.M)
    if not m:
        return {"requests": 0, "error": out[-500:]}
    r = {}
    for word in m.group(1).split():
        k, v = word.split("=")
        r[k] = float(v)
    r["errors"] = int(r["connect"] + r["read"] + r["write"] + r["timeout"] +
                      r["status"])
    return r


# ---- one server, both conditions --------------------------------------------

def warm_up(server):
    """20 searches: the first requests after a load are slower (the Python
    stack's first ones by up to a second), and the mixed requests, which
    warm the other runs up, are not sent before paired runs."""
    with requests.Session() as s:
        for i in range(20):
            try:
                s.post(server.url + "/search", json={
                    "query": QUERIES[i % len(QUERIES)], "k": 5}, timeout=60)
            except requests.RequestException:
                pass


def wrk_rows(runs, args, tag):
    """The wrk runs of every route and connection count; runs is a list of
    (label, server, figures): with several, they take turns row by row, so
    a change in the machine's load hits them alike."""
    for route, script, path in (
            ("search", "bench/http/search.lua", "/search"),
            ("webhook", "bench/peers/wrk/webhook.lua", "/webhook/tally")):
        for c in CONNS:
            for label, server, res in runs:
                if not server.alive():
                    continue
                r = run_wrk(server, script, path, c, args.duration,
                            f"{tag}-{server.name}-{c}")
                res[f"{route}_{c}"] = r
                log(f"{label}: {route} at {c}: {r.get('rps', 0):.1f} req/s, "
                    f"p50 {r.get('p50_ms', 0):.1f} ms, p99 "
                    f"{r.get('p99_ms', 0):.1f} ms, errors {r.get('errors')}")


def measure(name, start, args, tmp, limited, wrk_only=False, partner=None):
    """start(limit) -> Server.  Returns the figures of one condition;
    wrk_only: cold start, idle RSS and the wrk runs, no mixed requests;
    partner: (name, start) of a second server started after the first is
    loaded, whose wrk runs alternate with its own (its figures go to
    res["partner"])."""
    label = f"{name}{' (512 MB, 10% CPU)' if limited else ''}"
    res = {"load_before": loadavg()}
    limit = None
    if limited:
        limit = Limit(f"lode-peers-{name}-{os.getpid()}")
        cpu, wall = limit.throttle_check()
        res["mechanism"] = limit.mechanism
        res["throttle"] = (cpu, wall)
        log(f"{label}: {limit.mechanism}; a busy loop got {cpu:.2f} s of "
            f"CPU in {wall:.2f} s ({100 * cpu / wall:.1f}%)")
        if cpu / wall > 0.2:
            raise SystemExit(f"peers: the CPU quota does not throttle "
                             f"({100 * cpu / wall:.0f}% of a CPU)")
        limit.reset_peak()
    deadline = args.limited_deadline if limited else 120
    server = start(limit)
    try:
        log(f"{label}: started (pid {server.proc.pid}), waiting for the model")
        res["cold_health_s"] = server.wait_loaded(deadline)
        res["cold_search_s"] = server.first_search(deadline) \
            if res["cold_health_s"] is not None else None
        log(f"{label}: model loaded after {res['cold_health_s']} s, first "
            f"search after {res['cold_search_s']} s")
        if res["cold_search_s"] is None:
            res["died"] = not server.alive()
            res["log"] = server.tail()
            return res
        time.sleep(1)
        res["rss_idle"] = server.rss()
        tag = f"{name}{int(time.time())}{'L' if limited else ''}"
        if not wrk_only:
            res["mixed"] = mixed(server, MIXED, args.mixed_cap, tag)
            log(f"{label}: mixed {res['mixed']}")
            res["rss_mixed"] = server.rss()
        runs = [(label, server, res)]
        other = None
        if partner:
            other = partner[1](None)
            res["partner"] = {"load_before": loadavg()}
            res["partner"]["cold_health_s"] = other.wait_loaded(deadline)
            res["partner"]["cold_search_s"] = other.first_search(deadline)
            res["partner"]["rss_idle"] = other.rss()
            runs.insert(0, (partner[0], other, res["partner"]))
        try:
            for _, srv, _ in runs:
                warm_up(srv)
            wrk_rows(runs, args, tag)
        finally:
            if other:
                res["partner"]["rss_peak"] = other.sampler.peak
                other.stop()
        res["alive_at_end"] = server.alive()
    finally:
        res["rss_peak"] = server.sampler.peak
        server.stop()
        # gunicorn logs each worker it starts (recycled or killed ones too)
        res["workers_booted"] = server.tail(None).count("Booting worker")
        if limit:
            res["oom_kills"] = limit.oom_kills()
            res["cgroup_peak"] = limit.peak_bytes()
            limit.remove()
        res["load_after"] = loadavg()
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lode", default=os.path.join(ROOT, "lode"))
    ap.add_argument("--db", required=True, help="lode's prebuilt database")
    ap.add_argument("--chroma", required=True, help="the prebuilt ChromaDB")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--duration", type=int, default=10,
                    help="seconds per wrk run")
    ap.add_argument("--mixed-cap", type=float, default=90,
                    help="seconds the mixed requests may take")
    ap.add_argument("--limited-deadline", type=float, default=180,
                    help="seconds a server under the limit gets to load")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    ap.add_argument("--command", default="bench/peers/run.sh")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="lode-peers.")
    llm_port = free_port()
    llm = subprocess.Popen([sys.executable,
                            os.path.join(ROOT, "tests", "llm_server.py"),
                            "--port", str(llm_port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    llm_url = f"http://127.0.0.1:{llm_port}/v1"
    for _ in range(100):
        try:
            requests.get(llm_url + "/models", timeout=1)
            break
        except requests.RequestException:
            time.sleep(0.05)

    def start_lode(limit):
        db = os.path.join(tmp, f"lode-{time.time_ns()}.db")
        shutil.copy(args.db, db)
        env = {"PATH": os.environ["PATH"], "PORT": str(free_port()),
               "LLM_BASE_URL": llm_url}
        return Server("lode", [args.lode, "serve", "--db", db, "--host",
                               "127.0.0.1"], env, ROOT, limit, tmp)

    def start_python(limit, max_requests=None):
        store = os.path.join(tmp, f"chroma-{time.time_ns()}")
        shutil.copytree(args.chroma, store)
        env = {"PATH": os.path.dirname(args.python) + ":" + os.environ["PATH"],
               "PORT": str(free_port()), "LLM_BASE_URL": llm_url,
               "VECTOR_STORE_PATH": store, "HF_HUB_OFFLINE": "1",
               "PYTHONUNBUFFERED": "1", "WEB_CONCURRENCY": "1",
               "HOME": tmp}
        if max_requests is not None:
            env["PEER_MAX_REQUESTS"] = str(max_requests)
        gunicorn = os.path.join(os.path.dirname(args.python), "gunicorn")
        return Server("python", [gunicorn, "-c", "gunicorn.conf.py",
                                 "app:app"], env,
                      os.path.join(ROOT, "bench", "peers"), limit, tmp)

    t_start = time.monotonic()
    results = {}
    try:
        for name, start in (("lode", start_lode), ("python", start_python)):
            for limited in (False, True):
                results[(name, limited)] = measure(name, start, args, tmp,
                                                   limited)
        # the Python stack without worker recycling: what gunicorn's
        # max_requests costs, and the best this stack does on this machine
        # ... with its wrk runs taking turns with a fresh lode's
        r = measure("python-norecycle", lambda limit: start_python(limit, 0),
                    args, tmp, False, wrk_only=True,
                    partner=("lode (paired)", start_lode))
        results[("lode-paired", False)] = r.pop("partner", {})
        results[("python-norecycle", False)] = r
    finally:
        llm.terminate()
        llm.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    total = time.monotonic() - t_start

    date = datetime.date.today().isoformat()
    os.makedirs(args.out, exist_ok=True)
    import report
    md = report.markdown(results, args, total, date)
    path = os.path.join(args.out, f"peers-{date}.md")
    png = os.path.join(args.out, f"peers-{date}.png")
    report.chart(results, png)
    with open(path, "w") as f:
        f.write(md)
    with open(os.path.join(args.out, f"peers-{date}.json"), "w") as f:
        json.dump({f"{n}{' limited' if l else ''}": r
                   for (n, l), r in results.items()}, f, indent=1,
                  default=str)
    print(md)
    log(f"written to {path} and {png} ({total:.0f} s)")


if __name__ == "__main__":
    main()
