"""report.py - the Markdown table and the PNG chart of bench/peers/run.py.

`results` maps (server, limited) to the figures measure() collected:
server "lode" or "python", limited False (as it is) or True (512 MB, 10%
of one CPU).  Ratios say how many times better lode is: the Python figure
over lode's for times and memory, lode's over the Python one for
throughput.
"""
import os
import platform

MB = 1024 * 1024
CONNS = (1, 8, 32)
GOALS = {"cold start": 50, "idle RSS": 5, "/search throughput": 10}


def secs(v):
    return "never" if v is None else (f"{v * 1000:.0f} ms" if v < 1
                                      else f"{v:.1f} s")


def mb(v):
    return "-" if not v else f"{v / MB:.0f} MB"


def ratio(py, lo, invert=False):
    """'Nx' (lode better by N), or '-' when a side has no figure."""
    if py is None or lo is None or not py or not lo:
        return "-"
    r = lo / py if invert else py / lo
    return f"{r:,.0f}x" if r >= 10 else f"{r:.1f}x"


def wrk_cell(r, key):
    if not r or not r.get("requests"):
        return "0 answered"
    if key == "rps":
        return f"{r['rps']:,.1f}"
    return f"{r[key]:,.1f}"


def err_cell(r):
    if not r:
        return "-"
    if not r.get("requests"):
        return "no answer"
    return f"{int(r['errors'])} / {int(r['requests'])}"


def mixed_cell(m):
    if not m:
        return "-"
    errs = sum(m["errors"].values())
    text = f"{m['ok']} ok in {m['seconds']:.1f} s"
    if errs:
        text += f", {errs} failed ({', '.join(f'{k} {v}' for k, v in sorted(m['errors'].items()))})"
    if m["skipped"]:
        text += f", {m['skipped']} not sent (time cap)"
    return text


def least(*values):
    """The smallest figure given, None when there is none."""
    return min((v for v in values if v), default=None)


def survived(r):
    return bool(r.get("alive_at_end")) and not r.get("oom_kills") and \
        r.get("cold_search_s") is not None


def markdown(results, args, total_s, date):
    L, P = results[("lode", False)], results[("python", False)]
    LL, PL = results[("lode", True)], results[("python", True)]
    rows = []
    add = rows.append

    def row(what, lo, py, rat):
        add(f"| {what} | {lo} | {py} | {rat} |")

    PN = results.get(("python-norecycle", False), {})
    LP = results.get(("lode-paired", False), {})
    blocks = (("as they are", L, P, False),
              ("under 512 MB and 10% of one CPU", LL, PL, True),
              ("the Python stack without worker recycling (max_requests 0) "
               "and a fresh lode, their wrk runs taking turns", LP, PN,
               False))
    for title, lo, py, limited in blocks:
        add(f"| **{title}** | | | |")
        if limited:
            why = "yes" if survived(py) else "no"
            if py.get("oom_kills"):
                why += (f": workers OOM-killed {py['oom_kills']} times "
                        f"({py.get('workers_booted', '?')} booted)")
            if py.get("cold_search_s") is None:
                why += f", no answer in {args.limited_deadline:.0f} s"
            row("survived (still running, no OOM kill)",
                "yes" if survived(lo) else "no", why, "")
        row("cold start: process start to /health 200, model loaded",
            secs(lo.get("cold_health_s")), secs(py.get("cold_health_s")),
            ratio(py.get("cold_health_s"), lo.get("cold_health_s")))
        row("cold start: to the first /search answer",
            secs(lo.get("cold_search_s")), secs(py.get("cold_search_s")),
            ratio(py.get("cold_search_s"), lo.get("cold_search_s")))
        row("RSS idle (process tree)", mb(lo.get("rss_idle")),
            mb(py.get("rss_idle")), ratio(py.get("rss_idle"),
                                          lo.get("rss_idle")))
        if py is not PN:
            row("RSS after the mixed requests", mb(lo.get("rss_mixed")),
                mb(py.get("rss_mixed")), ratio(py.get("rss_mixed"),
                                               lo.get("rss_mixed")))
            row("RSS peak", mb(lo.get("rss_peak")), mb(py.get("rss_peak")),
                ratio(py.get("rss_peak"), lo.get("rss_peak")))
        if limited:
            row("cgroup memory peak (page cache included)",
                mb(lo.get("cgroup_peak")), mb(py.get("cgroup_peak")), "")
        if py is not PN:
            row(f"{1000} mixed requests, 8 clients",
                mixed_cell(lo.get("mixed")), mixed_cell(py.get("mixed")), "")
        for route, name in (("search", "/search"),
                            ("webhook", "/webhook/tally")):
            for c in CONNS:
                a, b = lo.get(f"{route}_{c}"), py.get(f"{route}_{c}")
                row(f"{name} at {c} conn.: req/s", wrk_cell(a, "rps"),
                    wrk_cell(b, "rps"),
                    ratio(b and b.get("rps"), a and a.get("rps"), True))
                row(f"{name} at {c} conn.: p50 / p99 ms",
                    f"{wrk_cell(a, 'p50_ms')} / {wrk_cell(a, 'p99_ms')}",
                    f"{wrk_cell(b, 'p50_ms')} / {wrk_cell(b, 'p99_ms')}",
                    ratio(b and b.get("requests") and b.get("p50_ms"),
                          a and a.get("requests") and a.get("p50_ms")))
                row(f"{name} at {c} conn.: errors / answered", err_cell(a),
                    err_cell(b), "")

    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    # judged on the paired runs (the same moments of the machine's load),
    # against the Python stack at its best, without worker recycling
    best_search = max((LP.get(f"search_{c}") or {}).get("rps", 0)
                      for c in CONNS)
    best_search_py = max((PN.get(f"search_{c}") or {}).get("rps", 0)
                         for c in CONNS)
    goals = [
        ("cold start >= 50x faster (to /health with the model)",
         least(P.get("cold_health_s"), PN.get("cold_health_s")),
         L.get("cold_health_s"), 50, False),
        ("idle RSS <= 1/5", least(P.get("rss_idle"), PN.get("rss_idle")),
         L.get("rss_idle"), 5, False),
        ("/search throughput >= 10x (best of 1, 8, 32 connections, paired "
         "runs, Python without worker recycling)",
         best_search_py, best_search, 10, True),
    ]
    goal_lines = []
    for what, py, lo, want, inv in goals:
        if py and lo:
            r = lo / py if inv else py / lo
            goal_lines.append(f"- {what}: {'met' if r >= want else 'missed'} "
                              f"({r:,.1f}x)")
        else:
            goal_lines.append(f"- {what}: no figure")
    lode_all = survived(LL) and all(
        (LL.get(f"{r}_{c}") or {}).get("requests") and
        not (LL.get(f"{r}_{c}") or {}).get("errors")
        for r in ("search", "webhook") for c in CONNS) and \
        LL.get("mixed") and not sum(LL["mixed"]["errors"].values()) and \
        not LL["mixed"]["skipped"]
    goal_lines.append("- lode alone serves every request under 512 MB / 10%: "
                      f"{'met' if lode_all else 'missed'}")

    th = LL.get("throttle") or (0, 1)
    thp = PL.get("throttle") or (0, 1)
    out = [
        f"# lode and the Python stack it replaces, side by side ({date})",
        "",
        f"Command: `{args.command}` (took {total_s / 60:.1f} min).",
        "",
        f"Machine: {os.cpu_count()} CPUs ({cpu}), {platform.system()} "
        f"{platform.release()}, shared with other work: load average (1, 5, "
        f"15 min) {L['load_before']} before lode, {P['load_before']} before "
        f"the Python stack, {PL['load_after']} at the end.",
        "",
        "lode: `lode serve` with its defaults, the prebuilt data/lode.db "
        "(`make db`: data/sample/, 240 chunks), q8_0 model.  Python: "
        "bench/peers/app.py under gunicorn (1 worker, 2 threads, "
        "max_requests 50, timeout 30: shared/reference/), "
        "sentence-transformers all-MiniLM-L6-v2 (fp32, PyTorch from PyPI) "
        "preloaded on a background thread, a prebuilt ChromaDB "
        "(bench/peers/build_db.py: data/sample/, 241 chunks).  /chat of both "
        "asks tests/llm_server.py.  RSS: VmRSS of the whole process tree "
        "(gunicorn's master and worker; lode is one process), peak sampled "
        "every 100 ms.  wrk: "
        f"{args.duration} s per row, threads = min(connections, 2), "
        "--timeout 10 s, on the same 2 CPUs as the servers; p50/p99 as wrk "
        "reports them, of the requests answered; errors are socket errors, "
        "timeouts and statuses >= 400.  Mixed: per 20 requests 7 /search, "
        "4 /webhook/tally, 2 /chat, 3 /health, 2 /model-status, 2 "
        f"/memory-status, 8 client threads, {args.mixed_cap:.0f} s at most.",
        "",
        f"Limit: {LL.get('mechanism', '?')}.  The quota throttles: a busy "
        f"loop in the group got {th[0]:.2f} s of CPU in {th[1]:.2f} s "
        f"({100 * th[0] / th[1]:.1f}%; before the Python run "
        f"{100 * thp[0] / thp[1]:.1f}%).",
        "",
        "Ratios: how many times better lode is (Python over lode for times "
        "and memory, lode over Python for requests/s).",
        "",
        "| | lode | Python stack | ratio |",
        "|---|---|---|---|",
    ] + rows + ["", "Goals:", ""] + goal_lines + [""]
    notes = []
    for name, r in (("lode", LL), ("Python stack", PL)):
        if r.get("log") and not survived(r):
            notes.append(f"{name} under the limit, last output:\n\n```\n"
                         f"{r['log'].strip()[-800:]}\n```\n")
    if notes:
        out += notes
    out.append("The Python worker is recycled after 50 requests "
               "(max_requests, as the reference deployment had it to contain "
               "leaks), polls and health checks included; each new worker "
               "loads the model again while the requests wait, which is part "
               "of its throughput and latency here.")
    out.append("")
    return "\n".join(out)


def chart(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig, (m, l) = plt.subplots(1, 2, figsize=(12, 4.8))
    labels = ["idle", "after mixed", "peak", "idle\n512MB/10%",
              "peak\n512MB/10%"]
    keys = [(False, "rss_idle"), (False, "rss_mixed"), (False, "rss_peak"),
            (True, "rss_idle"), (True, "rss_peak")]
    x = range(len(labels))
    w = 0.38
    for i, (name, color) in enumerate((("lode", "#2a7ab0"),
                                       ("python", "#d9822b"))):
        vals = [(results[(name, lim)].get(k) or 0) / MB for lim, k in keys]
        bars = m.bar([xi + (i - 0.5) * w for xi in x], vals, w,
                     label="lode" if name == "lode" else "Python stack",
                     color=color)
        m.bar_label(bars, labels=[
            f"{v:.0f}" if v else ("never\nloaded" if lim else "-")
            for v, (lim, _) in zip(vals, keys)], fontsize=8)
    m.axhline(512, color="#999", ls="--", lw=1)
    m.text(len(labels) - 0.5, 520, "512 MB", ha="right", fontsize=8,
           color="#666")
    m.set_xticks(list(x), labels, fontsize=8)
    m.set_ylabel("RSS of the process tree, MB")
    m.set_title("Memory")
    m.legend()

    llabels, lkeys = [], []
    for lim in (False, True):
        for route in ("search", "webhook"):
            llabels.append(f"/{route}\n8 conn.{' 512MB/10%' if lim else ''}")
            lkeys.append((lim, f"{route}_8"))
    series = (("lode", "lode", "#2a7ab0"), ("python", "Python", "#d9822b"),
              ("python-norecycle", "Python, no recycling", "#8c5a2b"))
    width = 0.8 / (2 * len(series))
    handles = []
    for i, (name, title, color) in enumerate(series):
        for j, (pct, alpha) in enumerate((("p50_ms", 1.0), ("p99_ms", 0.45))):
            pos, vals = [], []
            for xi, (lim, k) in enumerate(lkeys):
                r = results.get((name, lim), {}).get(k) or {}
                x = xi + (i * 2 + j + 0.5) * width - 0.4
                if r.get("requests"):
                    pos.append(x)
                    vals.append(r[pct])
                elif (name, lim) in results and j == 0:
                    l.text(x + width / 2, 1.2, "no answer", rotation=90,
                           fontsize=7, ha="center", va="bottom", color=color)
            l.bar(pos, vals, width, color=color, alpha=alpha)
            handles.append(Patch(color=color, alpha=alpha,
                                 label=f"{title} {pct[:3]}"))
    l.set_yscale("log")
    l.set_ylim(1, l.get_ylim()[1] * 6)
    l.set_xticks(range(len(lkeys)), llabels, fontsize=8)
    l.set_ylabel("latency, ms (log scale; no bar: nothing answered)")
    l.set_title("Latency (wrk, 8 connections)")
    l.legend(handles=handles, fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
