"""The access log (--access-log FILE or -): one JSON line per request with
time, request id, client, method, path, route, status, bytes and ms; never
a key (Authorization, an X-Api-Key header, a key in the query string) nor
a body; lines of concurrent requests whole and one per request; a path
with a newline cannot split a line.

A line is written when libmicrohttpd reports the request finished, which
may be just after the client has read the answer, so the tests poll the
file for the request ids they sent (with a deadline)."""
import concurrent.futures
import json
import subprocess

import requests

from conftest import LODE, ROOT, TIMEOUT, assert_error, wait_for
from test_drain import raw_exchange

KEY = "sk-key-6f1d2c-never-logged"
OTHER_KEY = "xapi-7a9e-never-logged"
QUERY_KEY = "qkey-33b1-never-logged"
MARKER = "body-marker-5c2e-never-logged"
FIELDS = {"time", "id", "client", "method", "path", "route", "status",
          "bytes", "ms"}


def read_lines(path):
    with open(path, "rb") as f:
        text = f.read().decode("ascii")       # the log is ASCII, always
    assert text == "" or text.endswith("\n"), text[-200:]
    return [json.loads(line) for line in text.splitlines()]


def wait_ids(path, ids):
    """The log lines of these request ids, once all are there."""
    def found():
        by_id = {e["id"]: e for e in read_lines(path)}
        return by_id if all(i in by_id for i in ids) else None
    return wait_for(found, what="log lines of %s" % sorted(ids)[:3])


def test_lines_and_no_secrets(make_server, tmp_path):
    log = tmp_path / "access.log"
    s = make_server("--api-key", KEY, "--access-log", str(log))
    auth = {"Authorization": "Bearer " + KEY, "X-Api-Key": OTHER_KEY}
    sent = {}

    r = requests.post(s.url + "/collections/kb/documents?api_key=%s&token=%s"
                      % (QUERY_KEY, QUERY_KEY),
                      json={"documents": [{"id": "d1", "text": "The " + MARKER
                                           + " is in the body."}]},
                      headers=dict(auth, **{"X-Request-Id": "log-write-1"}),
                      timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    sent["log-write-1"] = r
    r = requests.post(s.url + "/search?key=" + QUERY_KEY,
                      json={"query": MARKER, "collection": "kb"},
                      headers={"Authorization": "Bearer wrong-" + KEY,
                               "X-Request-Id": "log-search-2"},
                      timeout=TIMEOUT)
    assert r.status_code == 200, r.text      # reads are open: no read key
    sent["log-search-2"] = r
    r = requests.delete(s.url + "/collections/kb/documents/d1",
                        headers={"Authorization": "Bearer not-" + KEY,
                                 "X-Request-Id": "log-delete-3"},
                        timeout=TIMEOUT)
    assert_error(r, 401, "invalid_api_key")
    sent["log-delete-3"] = r
    r = requests.head(s.url + "/health", headers={"X-Request-Id": "log-head-4"},
                      timeout=TIMEOUT)
    sent["log-head-4"] = r
    r = requests.get(s.url + "/no/such?secret=" + QUERY_KEY,
                     headers={"X-Request-Id": "log-404-5"}, timeout=TIMEOUT)
    sent["log-404-5"] = r

    lines = wait_ids(log, sent)
    for rid, resp in sent.items():
        e = lines[rid]
        assert set(e) == FIELDS, e
        assert e["status"] == resp.status_code, (e, resp.status_code)
        assert e["client"] == "127.0.0.1"
        assert e["time"].endswith("Z") and e["ms"] >= 0
        if resp.request.method != "HEAD":
            assert e["bytes"] == len(resp.content), (e, len(resp.content))
    w = lines["log-write-1"]
    assert (w["method"], w["path"], w["route"]) == \
        ("POST", "/collections/kb/documents", "/collections/{name}/documents")
    assert lines["log-search-2"]["path"] == "/search"
    assert lines["log-head-4"]["method"] == "HEAD"
    assert lines["log-head-4"]["bytes"] == 0
    assert lines["log-404-5"]["route"] is None
    assert lines["log-404-5"]["path"] == "/no/such"

    text = log.read_text()
    for secret in (KEY, OTHER_KEY, QUERY_KEY, MARKER, "Bearer", "api_key",
                   "token="):
        assert secret not in text, secret


def test_concurrent_lines_are_whole(make_server, tmp_path):
    log = tmp_path / "access.log"
    s = make_server("--access-log", str(log), "--http-threads", "4")

    def one(i):
        rid = "conc-%04d" % i
        path = "/health" if i % 3 else "/v1/models"
        r = requests.get(s.url + path + "/" * (i % 2),
                         headers={"X-Request-Id": rid}, timeout=TIMEOUT)
        return rid, r.status_code, len(r.content)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(400)))
    lines = wait_ids(log, [rid for rid, _, _ in results])
    for rid, status, size in results:
        assert lines[rid]["status"] == status and lines[rid]["bytes"] == size
    mine = [e for e in read_lines(log) if e["id"].startswith("conc-")]
    assert len(mine) == 400, len(mine)      # one line per request, no more


def test_hostile_path_cannot_split_a_line(make_server, tmp_path):
    log = tmp_path / "access.log"
    s = make_server("--access-log", str(log))
    status, _, text = raw_exchange(
        s.port, b"GET /a%0A%7B%22id%22:%22forged%22%7D%22%5C%C3%A9 HTTP/1.1\r\n"
        b"Host: x\r\nX-Request-Id: hostile-1\r\nConnection: close\r\n\r\n", b"")
    assert status == 404, text
    e = wait_ids(log, ["hostile-1"])["hostile-1"]
    assert e["path"] == "/a%0A{%22id%22:%22forged%22}%22%5C%C3%A9", e
    assert all(x["id"] != "forged" for x in read_lines(log))


def test_streamed_answer_bytes(make_server, sample_db, tmp_path):
    log = tmp_path / "access.log"
    s = make_server("--access-log", str(log), db=sample_db)
    r = requests.post(s.url + "/chat", json={"message": "How many vacation "
                      "days do I get?", "stream": True},
                      headers={"X-Request-Id": "stream-1"}, stream=True,
                      timeout=TIMEOUT)
    body = b"".join(r.iter_content(None))
    assert r.status_code == 200 and b"event: done" in body, body[-300:]
    e = wait_ids(log, ["stream-1"])["stream-1"]
    assert e["status"] == 200 and e["bytes"] == len(body), (e, len(body))


def test_stderr(make_server):
    s = make_server("--access-log", "-")
    s.get("/health", headers={"X-Request-Id": "on-stderr-1"})

    def line():
        for text in s.stderr_lines:
            if text.startswith("{") and '"on-stderr-1"' in text:
                return json.loads(text)
        return None
    e = wait_for(line, what="the access line on stderr")
    assert e["path"] == "/health" and e["status"] == 200


def test_unopenable_log_stops_the_server(tmp_path):
    out = subprocess.run([LODE, "serve", "--port", "0", "--db",
                          str(tmp_path / "x.db"), "--access-log",
                          str(tmp_path / "no" / "such" / "access.log")],
                         cwd=ROOT, capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert out.returncode == 1, out.stderr
    assert "cannot open the access log" in out.stderr, out.stderr
