"""Headers on every answer: X-Request-Id (the client's when it is a plain
token, else a fresh one), X-Content-Type-Options: nosniff, and on every file
of the web page (and its 304) a CSP without inline scripts that allows
nothing but this server and forbids framing."""
import re

import requests

from conftest import TIMEOUT


def test_every_answer_has_a_fresh_request_id(server):
    url = "http://127.0.0.1:%d" % server.port
    answers = [requests.get(url + "/health", timeout=TIMEOUT),
               requests.get(url + "/no/such/path", timeout=TIMEOUT),
               requests.post(url + "/search", json={"query": 3}, timeout=TIMEOUT),
               requests.delete(url + "/search", timeout=TIMEOUT),
               requests.get(url + "/", timeout=TIMEOUT)]
    ids = [r.headers.get("X-Request-Id") for r in answers]
    assert [r.status_code for r in answers] == [200, 404, 400, 405, 200]
    assert all(i and re.fullmatch(r"[0-9a-f]{16}", i) for i in ids), ids
    assert len(set(ids)) == len(ids), ids
    assert all(r.headers["X-Content-Type-Options"] == "nosniff" for r in answers)


def test_a_plain_client_id_is_echoed_and_others_replaced(server):
    url = "http://127.0.0.1:%d/health" % server.port
    good = "req-2026.12_07-" + "a" * 40
    r = requests.get(url, headers={"X-Request-Id": good}, timeout=TIMEOUT)
    assert r.headers["X-Request-Id"] == good
    for bad in ("x" * 65, "has space", "semi;colon", "\u00e9t\u00e9".encode().decode("latin-1")):
        r = requests.get(url, headers={"X-Request-Id": bad}, timeout=TIMEOUT)
        got = r.headers["X-Request-Id"]
        assert got != bad and re.fullmatch(r"[0-9a-f]{16}", got), (bad, got)


def test_web_page_cannot_be_framed_and_runs_no_inline_script(server):
    r = requests.get("http://127.0.0.1:%d/" % server.port, timeout=TIMEOUT)
    csp = r.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, csp
    assert "unsafe-inline" not in csp, csp
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", r.text, re.S | re.I)
    assert scripts and all(not s.strip() for s in scripts), scripts
    assert not re.search(r"\son[a-z]+\s*=", r.text, re.I), "inline event handler"


def test_every_page_file_has_the_security_headers(server):
    """Each file of the page (and its 304), not only the HTML: a script or
    style sheet served without nosniff or with a looser CSP is the gap a
    reviewer looks for.  The CSP allows nothing but this server."""
    url = "http://127.0.0.1:%d" % server.port
    types = {"/": "text/html", "/index.html": "text/html",
             "/app.js": "text/javascript", "/app.css": "text/css",
             "/favicon.svg": "image/svg+xml"}
    for path, ctype in types.items():
        r = requests.get(url + path, timeout=TIMEOUT)
        again = requests.get(url + path, headers={"If-None-Match": r.headers["ETag"]},
                             timeout=TIMEOUT)
        assert (r.status_code, again.status_code) == (200, 304), path
        for a in (r, again):
            h = a.headers
            assert h["X-Content-Type-Options"] == "nosniff", path
            assert h["X-Frame-Options"] == "DENY", path
            csp = [d.strip() for d in h["Content-Security-Policy"].split(";")]
            assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
            assert "script-src 'self'" in csp and "connect-src 'self'" in csp
            assert not any(x in h["Content-Security-Policy"]
                           for x in ("unsafe-inline", "unsafe-eval", "*", "http:",
                                     "https:")), h["Content-Security-Policy"]
        assert r.headers["Content-Type"].split(";")[0] in (ctype, "application/javascript"), \
            (path, r.headers["Content-Type"])
    page = requests.get(url + "/", timeout=TIMEOUT).text
    srcs = re.findall(r'<(?:script|link)\b[^>]*(?:src|href)="([^"]+)"', page, re.I)
    assert srcs and all(s.startswith("/") and not s.startswith("//") for s in srcs), srcs
