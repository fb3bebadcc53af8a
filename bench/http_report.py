#!/usr/bin/env python3
"""http_report.py RAW METRICS_BEFORE METRICS_AFTER - the Markdown report of
bench/http.sh.

RAW holds one "key value" line per fact that http.sh collected; the lines
"bench ..." (one per route and connection count), "warmup ..." and
"soak ..." carry the key=value fields of the RESULT line that
bench/http/common.lua prints from wrk.  The two METRICS files are the
server's /metrics before and after the soak, from which the status codes of
the soak are counted per route.  Standard library only.
"""
import datetime
import re
import sys

GOAL_SEARCH_RPS = 500
GOAL_HEALTH_P99_MS = 1.0
GOAL_HEALTH_CONNS = 16
GOAL_RSS_GROWTH_MB = 2.0


def fields(text):
    out = {}
    for word in text.split():
        if "=" in word:
            k, v = word.split("=", 1)
            out[k] = float(v) if re.fullmatch(r"-?[0-9.]+", v) else v
    return out


def read_raw(path):
    facts, rows = {"stalls": [], "soak": [], "soak_rss_kb": []}, []
    with open(path) as f:
        for line in f:
            key, _, rest = line.rstrip("\n").partition(" ")
            if key == "bench":
                # route=GET /health conns=1 requests=...: the route has spaces
                m = re.match(r"route=(.*?) conns=(\d+) (.*)", rest)
                row = fields(m.group(3))
                row["route"], row["conns"] = m.group(1), int(m.group(2))
                rows.append(row)
            elif key == "stall":
                m = re.match(r"route=(.*?) conns=(\d+) seconds=(\d+)", rest)
                facts["stalls"].append(m.groups())
            elif key == "warmup":
                facts[key] = fields(rest)
            elif key == "soak":            # one line per tenth of the soak
                facts[key].append(fields(rest))
            elif key == "soak_rss_kb":
                facts[key].append(int(rest))
            else:
                facts[key] = rest
    return facts, rows


METRIC = re.compile(r'^lode_http_requests_total\{method="([^"]*)",'
                    r'route="([^"]*)",status="([^"]*)"\} (\d+)')


def read_counts(path):
    counts = {}
    with open(path) as f:
        for line in f:
            m = METRIC.match(line)
            if m:
                counts[(m.group(1) + " " + m.group(2), m.group(3))] = \
                    int(m.group(4))
    return counts


def socket_errors(r):
    return int(sum(r.get(k, 0) for k in ("connect", "read", "write",
                                          "timeout")))


def error_cell(r):
    detail = [f"{k} {int(r[k])}" for k in ("connect", "read", "write",
                                           "timeout") if r.get(k)]
    cell = f"{socket_errors(r)} / {int(r.get('status', 0))}"
    return cell + (f" ({', '.join(detail)})" if detail else "")


def main():
    facts, rows = read_raw(sys.argv[1])
    before, after = read_counts(sys.argv[2]), read_counts(sys.argv[3])
    lines = []
    add = lines.append
    add(f"# HTTP benchmark, {datetime.date.today().isoformat()}")
    add("")
    add(f"Command: `{facts['command']}`")
    add("")
    lb, la = facts["load_before"].split(), facts["load_after"].split()
    add(f"Machine: {facts['cpus']} CPUs ({facts['cpu']}); load average "
        f"(1, 5, 15 min) before {' '.join(lb)}, after {' '.join(la)}.  "
        f"lode {facts['lode']}, wrk {facts['wrk']}.")
    add("")
    env = facts.get("server_env", "").strip()
    add(f"Server: `lode serve` on 127.0.0.1 with its defaults "
        f"({'environment: ' + env if env else 'no LODE_* variables set'}), "
        f"database: data/sample ({facts.get('chunks') or '?'} chunks).  "
        f"wrk: {facts['duration_s']} s per row, threads = min(conns, 2), "
        f"--timeout {facts['wrk_timeout']}; p50/p99 as wrk --latency "
        f"reports them.  Errors: socket errors (connect, read, write, "
        f"timeout) / responses with status >= 400.")
    add("")
    add("## Routes")
    add("")
    add("| route | conns | req/s | p50 ms | p99 ms | errors / non-2xx |")
    add("|---|---|---|---|---|---|")
    for r in rows:
        if r.get("requests"):
            add(f"| {r['route']} | {r['conns']} | {r['rps']:,.0f} | "
                f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {error_cell(r)} |")
        else:
            add(f"| {r['route']} | {r['conns']} | 0 | - | - | "
                f"{error_cell(r)}: no response in the run |")
    add("")
    if facts["stalls"]:
        add("After these runs a new connection waited for an answer from "
            "/health (the next run started only once it got one):")
        add("")
        for route, conns, seconds in facts["stalls"]:
            add(f"- {route} at {conns} connections: {seconds} s")
        add("")

    add("## Memory: RSS soak")
    add("")
    w = facts["warmup"]
    s = {k: sum(part.get(k, 0) for part in facts["soak"])
         for k in ("requests", "duration_s", "connect", "read", "write",
                   "timeout", "status")}
    s["rps"] = s["requests"] / s["duration_s"] if s["duration_s"] else 0
    rss0 = int(facts["rss_before_kb"]) / 1024
    rss1 = int(facts["rss_after_kb"]) / 1024
    growth = rss1 - rss0
    add(f"After the runs above the server's VmRSS was "
        f"{int(facts['routes_rss_kb']) / 1024:.1f} MB (peak VmHWM "
        f"{int(facts['routes_hwm_kb']) / 1024:.1f} MB).  The soak restarts it, "
        f"sends one embeddings request of 40 texts of 256 tokens (so the "
        f"encoder's scratch, grown to the largest batch seen up to its "
        f"token budget and then kept, is at full size before the first "
        f"reading), then mixed requests (bench/http/soak.lua: per 100, 30 "
        f"health, 35 search, 20 embeddings of 1 text, 5 of 32 texts, 3 new "
        f"documents, 3 deletes, 4 replacing writes) at {facts['soak_conns']} "
        f"connections.  Warm-up: {int(w['requests']):,} requests in "
        f"{w['duration_s']:.1f} s, errors {error_cell(w)}.  Soak: "
        f"{int(s['requests']):,} requests in {s['duration_s']:.1f} s "
        f"({s['rps']:,.0f} req/s), errors {error_cell(s)}.")
    add("")
    add(f"- VmRSS after the warm-up: {rss0:.1f} MB")
    add(f"- VmRSS after the soak: {rss1:.1f} MB (peak VmHWM "
        f"{int(facts['soak_hwm_kb']) / 1024:.1f} MB)")
    add(f"- Growth: {growth:+.2f} MB over {int(s['requests']):,} requests")
    add("- VmRSS after each tenth of the soak (MB): " +
        ", ".join(f"{kb / 1024:.1f}" for kb in facts["soak_rss_kb"]))
    add("")
    add("Responses during the soak, from the server's /metrics:")
    add("")
    add("| route | status | count |")
    add("|---|---|---|")
    non_2xx = abandoned = 0
    for key in sorted(after):
        n = after[key] - before.get(key, 0)
        if n and not key[0].endswith("/metrics"):
            add(f"| {key[0]} | {key[1]} | {n:,} |")
            if key[1] == "499":
                abandoned += n
            elif not key[1].startswith("2"):
                non_2xx += n
    add("")
    if abandoned:
        # lode counts a request that ended without a response as 499.
        add(f"499: {abandoned} requests were in flight on other connections "
            f"when a wrk thread reached its share of a tenth and wrk "
            f"stopped; the server saw the client go away.  Not errors.")
        add("")

    add("## Goals")
    add("")
    search = {r["conns"]: r["rps"] for r in rows if r["route"] == "POST /search"}
    if search:
        best = max(search, key=search.get)
        ok = search[best] >= GOAL_SEARCH_RPS
        others = ", ".join(f"{search[c]:,.0f} at {c}" for c in sorted(search))
        add(f"- {'MET' if ok else 'MISSED'}: /search end to end >= "
            f"{GOAL_SEARCH_RPS} req/s ({search[best]:,.0f} req/s at {best} "
            f"connections; all: {others})")
    health = [r for r in rows if r["route"] == "GET /health"
              and r["conns"] == GOAL_HEALTH_CONNS]
    if health:
        p99 = health[0]["p99_ms"]
        add(f"- {'MET' if p99 < GOAL_HEALTH_P99_MS else 'MISSED'}: /health "
            f"p99 < {GOAL_HEALTH_P99_MS:g} ms at {GOAL_HEALTH_CONNS} "
            f"connections ({p99:.3f} ms)")
    add(f"- {'MET' if growth < GOAL_RSS_GROWTH_MB else 'MISSED'}: RSS growth "
        f"< {GOAL_RSS_GROWTH_MB:g} MB over the soak ({growth:+.2f} MB, "
        f"{rss0:.1f} -> {rss1:.1f} MB, {int(s['requests']):,} requests)")
    errors = sum(socket_errors(r) + int(r.get("status", 0))
                 for r in rows + [w, s])
    silent = sum(1 for r in rows if not r.get("requests"))
    ok = errors == 0 and non_2xx == 0 and silent == 0 and not facts["stalls"]
    add(f"- {'MET' if ok else 'MISSED'}: no errors or stalls under load "
        f"(socket errors and non-2xx over all runs: {errors:,}; non-2xx "
        f"other than 499 during the soak by /metrics: {non_2xx:,}; runs "
        f"without a single "
        f"response: {silent}; stalls after a run: {len(facts['stalls'])})")
    add("")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
