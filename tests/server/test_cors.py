"""CORS (--cors-origins), off by default: without it no answer carries a
CORS header and OPTIONS is a 405 as before; with it a preflight from an
allowed origin is answered 204 (methods of the path, headers, max-age)
without a key, answers to allowed origins carry Access-Control-Allow-Origin
(errors and 429s too, so a page can read them), refused origins get
nothing but Vary: Origin, and a bad origin list stops the server at
start."""
import subprocess

import pytest
import requests

from conftest import LODE, ROOT, TIMEOUT, assert_error

APP = "https://app.example.com"
PREFLIGHT = {"Origin": APP, "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization, content-type"}


def options(s, path, headers):
    return requests.options(s.url + path, headers=headers, timeout=TIMEOUT)


def cors_headers(r):
    return {k: v for k, v in r.headers.items()
            if k.lower().startswith("access-control-")}


def test_off_by_default(server):
    r = options(server, "/search", PREFLIGHT)
    assert_error(r, 405, "method_not_allowed")
    assert r.headers["Allow"] == "POST"
    assert cors_headers(r) == {} and "Vary" not in r.headers, r.headers
    r = server.post("/v1/embeddings", {"input": "leave"}, headers={"Origin": APP})
    assert r.status_code == 200, r.text
    assert cors_headers(r) == {} and "Vary" not in r.headers, r.headers


def test_allowed_origin(make_server):
    s = make_server("--cors-origins", APP + "/, http://localhost:3000",
                    "--read-key", "rk")
    r = options(s, "/search", PREFLIGHT)
    assert r.status_code == 204 and r.content == b"", (r.status_code, r.text)
    h = r.headers
    assert h["Access-Control-Allow-Origin"] == APP
    assert h["Access-Control-Allow-Methods"] == "POST"
    allow = [x.strip().lower() for x in h["Access-Control-Allow-Headers"].split(",")]
    assert "authorization" in allow and "content-type" in allow, allow
    assert int(h["Access-Control-Max-Age"]) > 0
    assert h["Vary"] == "Origin"
    assert "Access-Control-Allow-Credentials" not in h
    assert h["X-Request-Id"]
    # a path with several methods lists them
    r = options(s, "/collections/kb/documents", PREFLIGHT)
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Methods"] == "POST, GET, HEAD"

    # the answer itself, even an error, carries the origin
    r = s.post("/v1/embeddings", {"input": "leave"}, headers={"Origin": APP})
    assert_error(r, 401, "invalid_api_key")    # the read key is missing
    assert r.headers["Access-Control-Allow-Origin"] == APP
    assert "Retry-After" in r.headers["Access-Control-Expose-Headers"]
    r = s.post("/v1/embeddings", {"input": "leave"},
               headers={"Origin": "http://localhost:3000",
                        "Authorization": "Bearer rk"})
    assert r.status_code == 200, r.text
    assert r.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert r.headers["Vary"] == "Origin"


def test_refused_origin(make_server):
    s = make_server("--cors-origins", APP)
    for origin in ("https://evil.example.com", "https://app.example.com.evil",
                   "null", "http://app.example.com"):
        r = options(s, "/search", dict(PREFLIGHT, Origin=origin))
        assert_error(r, 405, "method_not_allowed")
        assert cors_headers(r) == {}, (origin, r.headers)
        assert r.headers["Vary"] == "Origin"
        r = s.get("/health", headers={"Origin": origin})
        assert r.status_code == 200 and cors_headers(r) == {}, r.headers
    # an OPTIONS without Access-Control-Request-Method is no preflight
    r = options(s, "/search", {"Origin": APP})
    assert r.status_code == 405
    # an unknown path is not found, preflight or not
    r = options(s, "/no/such/path", PREFLIGHT)
    assert_error(r, 404, "not_found")
    # a request without Origin (curl, a server) gets no CORS header
    r = s.get("/health")
    assert "Access-Control-Allow-Origin" not in r.headers


def test_any_origin_and_429(make_server):
    s = make_server("--cors-origins", "*", "--rate-limit", "0.01",
                    "--rate-burst", "1", "--rate-limit-loopback")
    r = options(s, "/v1/embeddings", dict(PREFLIGHT, Origin="https://x.test"))
    assert r.status_code == 204
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    # a preflight takes no token
    for _ in range(3):
        assert options(s, "/v1/embeddings", PREFLIGHT).status_code == 204
    h = {"Origin": "https://x.test"}
    assert s.post("/v1/embeddings", {"input": "hi"}, headers=h).status_code == 200
    r = s.post("/v1/embeddings", {"input": "hi"}, headers=h)
    assert_error(r, 429, "rate_limit_exceeded")
    assert r.headers["Access-Control-Allow-Origin"] == "*"
    assert "Retry-After" in r.headers["Access-Control-Expose-Headers"]


@pytest.mark.parametrize("value", ["example.com", "https://a.com/path",
                                   "https://a.com,,https://b.com"])
def test_bad_origin_list_stops_the_server(value):
    out = subprocess.run([LODE, "serve", "--port", "0", "--cors-origins", value],
                         cwd=ROOT, capture_output=True, text=True,
                         timeout=TIMEOUT)
    assert out.returncode == 2, out.stderr
    assert "--cors-origins" in out.stderr and "is not an origin" in out.stderr
