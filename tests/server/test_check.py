"""`lode check URL`: the deployment smoke test, run as the real binary
against real servers (healthy, signed webhook, keys, memory pressure),
against a port where nothing listens or nothing answers, and with bad
usage.  Checks the lines it prints, its exit status (0 all passed, 1 a
failure, 2 usage) and that it writes nothing on stderr when it runs, so
that under the sanitizer build it is also leak- and error-free."""
import json
import os
import re
import socket
import subprocess
import time

import pytest

from conftest import LODE, ROOT, TIMEOUT

SECRET = "s3cret"
NAMES = ["health", "model", "memory", "embed", "search", "webhook"]
LINE = re.compile(r"^(PASS|FAIL|SKIP) (\w+) +(\d{3}|---) (.*?)"
                  r"(?: \((\d+\.\d) ms\))?$")


def run_check(*args, env=None, timeout=None):
    """Run `lode check ARGS` with none of the caller's LODE_* variables
    (nor proxies); returns the CompletedProcess."""
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith("LODE_") and
                k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    full_env.update(env or {})
    return subprocess.run([LODE, "check"] + list(args), cwd=ROOT,
                          env=full_env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL,
                          timeout=timeout or TIMEOUT * 3)


def parse(p):
    """{name: (outcome, status, message)} from the check lines, and the
    summary line.  Asserts the shape: one line per check in order, the
    status column aligned, a time on every line that made a request."""
    lines = p.stdout.splitlines()
    assert lines, (p.stdout, p.stderr)
    results, columns = {}, set()
    for line in lines[:-1]:
        m = LINE.match(line)
        assert m, "bad line %r in:\n%s" % (line, p.stdout)
        outcome, name, status, message, ms = m.groups()
        assert name not in results, p.stdout
        assert (ms is None) == (outcome == "SKIP"), line
        columns.add(m.start(3))
        results[name] = (outcome, status, message)
    assert list(results) == NAMES[:len(results)], p.stdout
    assert len(columns) == 1, "status column not aligned:\n" + p.stdout
    return results, lines[-1]


def add_docs(s, collection="default"):
    r = s.post("/collections/%s/documents" % collection, {"documents": [
        {"id": "leave", "text": "Everyone gets 25 vacation days a year."},
        {"id": "office", "text": "The office opens at nine in the morning."},
    ]})
    assert r.status_code in (200, 201), r.text


def documents(s, collection):
    r = s.get("/collections")
    assert r.status_code == 200, r.text
    for c in r.json()["collections"]:
        if c["name"] == collection:
            return c["documents"]
    return 0


@pytest.fixture
def signed(make_server, tmp_path):
    """A server whose form "signed" needs a Tally-Signature, with
    documents in collection "default"."""
    path = tmp_path / "webhooks.json"
    path.write_text(json.dumps({"tally": {"signed": {"secret": SECRET}}}))
    s = make_server("--webhooks", str(path))
    add_docs(s)
    return s


def test_healthy_server_passes(make_server):
    s = make_server()
    add_docs(s)
    p = run_check(s.url)
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert p.stderr == ""
    results, summary = parse(p)
    assert list(results) == NAMES
    for name, (outcome, status, _) in results.items():
        assert (outcome, status) == ("PASS", "200"), (name, p.stdout)
    assert results["health"][2] == "healthy"
    assert re.fullmatch(r"\S+\.gguf, q8_0, dimension 384",
                        results["model"][2]), p.stdout
    assert re.fullmatch(r"rss [\d.]+ MB, system available \d+ MB of \d+ MB",
                        results["memory"][2]), p.stdout
    assert re.fullmatch(r"384 values, unit norm [01]\.\d{4}",
                        results["embed"][2]), p.stdout
    assert re.fullmatch(r'2 results from "default", best score -?[\d.]+',
                        results["search"][2]), p.stdout
    assert re.fullmatch(r'stored in "tally-lode-check" as document \d+',
                        results["webhook"][2]), p.stdout
    assert summary == "OK: 6 passed, 0 failed, 0 skipped (%s)" % s.url
    # the check wrote one submission, a new one each run
    assert documents(s, "tally-lode-check") == 1
    p = run_check(s.url + "/", "--form", "other.form_1")
    assert p.returncode == 0, p.stdout
    assert documents(s, "tally-other.form_1") == 1
    assert documents(s, "tally-lode-check") == 1
    p = run_check(s.url)
    assert p.returncode == 0, p.stdout
    assert documents(s, "tally-lode-check") == 2


def test_collections_empty_missing_and_skip(make_server):
    s = make_server()
    r = s.post("/collections", {"name": "empty"})
    assert r.status_code == 201, r.text
    p = run_check(s.url, "--collection", "empty", "--no-webhook")
    assert p.returncode == 0, (p.stdout, p.stderr)
    results, summary = parse(p)
    assert results["search"] == ("PASS", "200",
                                 '0 results: collection "empty" is empty')
    assert results["webhook"] == ("SKIP", "---", "not run (--no-webhook)")
    assert summary == "OK: 5 passed, 0 failed, 1 skipped (%s)" % s.url
    assert documents(s, "tally-lode-check") == 0
    # the default collection does not exist on a fresh server: a failure
    # with the server's message; $LODE_COLLECTION names another one
    for args, env in ((["--collection=nope"], None), ([], None),
                      ([], {"LODE_COLLECTION": "nope"})):
        p = run_check(s.url, "--no-webhook", *args, env=env)
        assert p.returncode == 1, p.stdout
        results, summary = parse(p)
        want = "nope" if args or env else "default"
        assert results["search"] == (
            "FAIL", "404", 'there is no collection named "%s"' % want)
        assert results["embed"][0] == "PASS"
        assert summary.startswith("FAILED: 4 passed, 1 failed, 1 skipped")


def test_webhook_right_secret_passes(signed):
    p = run_check(signed.url, "--form", "signed", "--secret", SECRET)
    assert p.returncode == 0, (p.stdout, p.stderr)
    results, summary = parse(p)
    assert results["webhook"][:2] == ("PASS", "200")
    assert results["webhook"][2].startswith('stored in "tally-signed"')
    assert summary.startswith("OK: 6 passed")
    # from the environment too
    p = run_check(signed.url, "--form", "signed",
                  env={"LODE_WEBHOOK_SECRET": SECRET})
    assert p.returncode == 0, p.stdout
    assert documents(signed, "tally-signed") == 2


def test_webhook_wrong_or_missing_secret_fails(signed):
    p = run_check(signed.url, "--form", "signed", "--secret", "wrong",
                  env={"LODE_WEBHOOK_SECRET": SECRET})  # the flag wins
    assert p.returncode == 1, p.stdout
    assert p.stderr == ""
    results, summary = parse(p)
    for name in NAMES[:-1]:
        assert results[name][0] == "PASS", p.stdout
    outcome, status, message = results["webhook"]
    assert (outcome, status) == ("FAIL", "401")
    assert message.startswith("the Tally-Signature header does not match "
                              "the body and the form's secret"), message
    assert summary == "FAILED: 5 passed, 1 failed, 0 skipped (%s)" % \
        signed.url
    p = run_check(signed.url, "--form", "signed")
    assert p.returncode == 1
    outcome, status, message = parse(p)[0]["webhook"]
    assert (outcome, status) == ("FAIL", "401")
    assert message.startswith("this form needs a Tally-Signature header")
    assert "--secret" in message
    assert documents(signed, "tally-signed") == 0
    # --no-webhook: nothing written, nothing failed
    p = run_check(signed.url, "--form", "signed", "--no-webhook")
    assert p.returncode == 0, p.stdout


def test_keys(make_server):
    s = make_server(env={"LODE_API_KEY": "wkey", "LODE_READ_KEY": "rkey"})
    r = s.post("/collections", {"name": "default"},
               headers={"Authorization": "Bearer wkey"})
    assert r.status_code == 201, r.text
    p = run_check(s.url)
    assert p.returncode == 1
    results, _ = parse(p)
    assert results["health"][0] == "PASS"  # /health is always open
    for name in ("model", "memory", "embed", "search"):
        assert results[name][:2] == ("FAIL", "401"), p.stdout
    outcome, status, message = results["webhook"]
    assert (outcome, status) == ("FAIL", "401")
    assert "--api-key" in message, message
    # the read key opens the reads, not the webhook (a write)
    p = run_check(s.url, env={"LODE_READ_KEY": "rkey"})
    results, summary = parse(p)
    assert [results[n][0] for n in NAMES] == ["PASS"] * 5 + ["FAIL"]
    assert p.returncode == 1
    # the API key opens everything
    for args, env in ((["--api-key", "wkey"], None),
                      ([], {"LODE_API_KEY": "wkey"})):
        p = run_check(s.url, *args, env=env)
        assert p.returncode == 0, p.stdout
        assert parse(p)[1].startswith("OK: 6 passed")


def test_memory_pressure(make_server):
    """Degraded health still passes; the heavy routes answer 503 and the
    lines say what the server said."""
    s = make_server("--debug-memory-percent", "95")
    p = run_check(s.url)
    assert p.returncode == 1
    results, summary = parse(p)
    assert results["health"] == ("PASS", "200",
                                 "degraded (memory_manager: pressure)")
    assert results["model"][0] == "PASS"
    assert results["memory"][2].endswith(", memory pressure (95.0% used)")
    for name in ("embed", "search", "webhook"):
        outcome, status, message = results[name]
        assert (outcome, status) == ("FAIL", "503"), p.stdout
        assert message.startswith("memory use is at 95.0%"), message
    assert summary.startswith("FAILED: 3 passed, 3 failed, 0 skipped")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_nothing_listens():
    url = "http://127.0.0.1:%d" % free_port()
    p = run_check(url)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert p.stderr == ""
    results, summary = parse(p)
    outcome, status, message = results["health"]
    assert (outcome, status) == ("FAIL", "---")
    assert message.startswith("no answer: "), message
    assert summary == "FAILED: no answer from %s; 5 checks not run" % url


def test_nothing_answers():
    """A socket that accepts connections but never answers: --timeout."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = "http://127.0.0.1:%d" % listener.getsockname()[1]
        start = time.time()
        p = run_check(url, "--timeout", "0.5")
        took = time.time() - start
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert p.stderr == ""
    assert took < 0.5 + (10 if "-san" in LODE else 3), took
    results, summary = parse(p)
    outcome, status, message = results["health"]
    assert (outcome, status) == ("FAIL", "---")
    assert "timed out" in message.lower(), message
    assert summary.endswith("5 checks not run")


@pytest.mark.parametrize("args", [
    [],
    ["localhost:8080"],
    ["ftp://127.0.0.1:8080"],
    ["http://"],
    ["http://127.0.0.1:99999"],
    ["http://127.0.0.1:8080/?x=1"],
    ["http://a", "http://b"],
    ["http://127.0.0.1:1", "--bogus"],
    ["http://127.0.0.1:1", "--timeout"],
    ["http://127.0.0.1:1", "--timeout", "0"],
    ["http://127.0.0.1:1", "--timeout", "ten"],
    ["http://127.0.0.1:1", "--form", "a b"],
    ["http://127.0.0.1:1", "--form", "x" * 101],
    ["http://127.0.0.1:1", "--collection", ""],
])
def test_usage_errors(args):
    p = run_check(*args)
    assert p.returncode == 2, (args, p.stdout, p.stderr)
    assert p.stdout == ""
    assert p.stderr.startswith("lode check: "), p.stderr
    assert p.stderr.count("\n") == 1, p.stderr


def test_help():
    p = run_check("--help")
    assert p.returncode == 0 and p.stderr == ""
    assert p.stdout.startswith("usage: lode check URL")
    assert '"tally-<formId>"' in p.stdout and "--no-webhook" in p.stdout
    for flag in ("--collection", "--api-key", "--secret", "--form",
                 "--timeout", "$LODE_API_KEY", "$LODE_WEBHOOK_SECRET"):
        assert flag in p.stdout, flag
    p = subprocess.run([LODE, "help"], capture_output=True, text=True)
    assert "check URL" in p.stdout
