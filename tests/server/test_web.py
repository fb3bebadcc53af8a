"""The web page: served from the binary at / with its types, ETags and
security headers; conditional GETs; open even when reads need a key."""
import re

import requests

from conftest import assert_error

FILES = {"/": "text/html", "/app.js": "text/javascript",
         "/app.css": "text/css", "/favicon.svg": "image/svg+xml"}


def test_page_files_and_headers(server):
    for path, ctype in FILES.items():
        r = server.get(path)
        assert r.status_code == 200, (path, r.text)
        assert r.headers["Content-Type"].startswith(ctype), r.headers
        assert re.fullmatch(r'"[0-9a-f]{20}"', r.headers["ETag"])
        assert r.headers["Cache-Control"] == "no-cache"
        csp = r.headers["Content-Security-Policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe" not in csp
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert len(r.content) > 0
    page = server.get("/").text
    # no external resource: scripts and styles come from this server
    assert 'src="/app.js"' in page and 'href="/app.css"' in page
    assert "http://" not in page and "https://" not in page
    assert server.get("/index.html").text == page


def test_conditional_get_and_head(server):
    r = server.get("/app.js")
    etag = r.headers["ETag"]
    r2 = server.get("/app.js", headers={"If-None-Match": etag})
    assert r2.status_code == 304 and r2.content == b""
    assert r2.headers["ETag"] == etag
    r3 = server.get("/app.js", headers={"If-None-Match": '"other"'})
    assert r3.status_code == 200 and r3.content == r.content
    # ETags differ between files
    assert server.get("/app.css").headers["ETag"] != etag
    h = requests.head(server.url + "/", timeout=10)
    assert h.status_code == 200 and h.headers["Content-Type"].startswith(
        "text/html") and h.content == b""


def test_unknown_page_file_and_methods(server):
    assert_error(server.get("/nope.js"), 404)
    assert_error(server.post("/", {}), 405)


def test_page_open_with_read_key(make_server):
    s = make_server(env={"LODE_READ_KEY": "rk", "LODE_API_KEY": "wk"})
    assert s.get("/").status_code == 200
    assert s.get("/app.js").status_code == 200
    assert_error(s.get("/collections"), 401)
