"""Per-client rate limits (--rate-limit, --rate-burst): a burst of N, then
429 with Retry-After and the JSON error, then a request that succeeds
again once a token is back; one bucket per client across the limited
routes, the other routes never limited; loopback clients exempt unless
--rate-limit-loopback; X-Forwarded-For read only with --trusted-proxies.

No test depends on timing luck: the rates are low enough (one token per
5 s or per 100 s) that the requests of a burst cannot earn a token back
while they run, even on a loaded machine under the sanitizer; recovery is
polled with a deadline.  Limited requests here carry a body the handler
refuses at once (400): the limit is taken before the body is read, so
they count without running the model."""
import json
import re
import subprocess

import pytest
import requests

from conftest import LODE, ROOT, TIMEOUT, assert_error, wait_for

CHEAP = {"input": 3}                 # /v1/embeddings answers 400 at once


def embed(s, headers=None):
    return requests.post(s.url + "/v1/embeddings", json=CHEAP,
                         headers=headers or {}, timeout=TIMEOUT)


def test_burst_then_429_then_recovers(make_server):
    s = make_server("--rate-limit", "0.2", "--rate-burst", "3",
                    "--rate-limit-loopback")
    assert "rate limit: 0.2 requests a second per client (bursts of 3)" in \
        s.stderr and "loopback clients included" in s.stderr, s.stderr
    first = [embed(s) for _ in range(3)]
    assert [r.status_code for r in first] == [400] * 3, [r.text for r in first]
    r = embed(s)
    e = assert_error(r, 429, "rate_limit_exceeded")
    assert e["type"] == "rate_limit_error", e
    assert "127.0.0.1" in e["message"], e
    retry = r.headers["Retry-After"]
    assert re.fullmatch(r"[0-9]+", retry) and 1 <= int(retry) <= 5, retry
    assert re.fullmatch(r"[0-9a-f]{16}", r.headers["X-Request-Id"])

    # one bucket for the client, whatever the limited route
    assert_error(s.post("/search", {"query": "x"}), 429, "rate_limit_exceeded")
    assert_error(s.post("/collections/kb/documents", {"documents": []}), 429)
    # status, health, metrics, the page, reads: never limited
    for path in ("/health", "/model-status", "/memory-status", "/metrics",
                 "/", "/app.js", "/openapi.json", "/collections",
                 "/v1/models"):
        assert s.get(path).status_code == 200, path

    # a token comes back within Retry-After (polled: no fixed sleep)
    # (a status code: a 400 Response object is false)
    got = wait_for(lambda: (lambda c: c if c != 429 else None)(
        embed(s).status_code), timeout=TIMEOUT, what="a token back")
    assert got == 400, got
    # 429s are counted per route like any status
    m = s.get("/metrics").text
    assert re.search(r'lode_http_requests_total\{method="POST",'
                     r'route="/v1/embeddings",status="429"\} [1-9]', m), m


def test_loopback_is_exempt_by_default(make_server):
    # one token per 100 s: anything limited would be refused at once
    s = make_server("--rate-limit", "0.01", "--rate-burst", "1")
    assert "loopback clients exempt" in s.stderr, s.stderr
    codes = [embed(s).status_code for _ in range(10)]
    assert codes == [400] * 10, codes
    r = s.post("/v1/embeddings", {"input": "hello"})
    assert r.status_code == 200, r.text


def test_off_by_default(make_server):
    s = make_server("--rate-limit-loopback")
    assert "rate limit" not in s.stderr
    assert [embed(s).status_code for _ in range(10)] == [400] * 10


def test_forwarded_for_only_behind_trusted_proxies(make_server):
    # without --trusted-proxies a client's X-Forwarded-For is ignored: the
    # peer (loopback, exempt) is the client, so forging it gains nothing
    # and costs no one else their tokens
    s = make_server("--rate-limit", "0.01", "--rate-burst", "1")
    codes = [embed(s, {"X-Forwarded-For": "203.0.113.5"}).status_code
             for _ in range(3)]
    assert codes == [400] * 3, codes

    # behind one proxy the last entry is the client: each has its bucket
    p = make_server("--rate-limit", "0.01", "--rate-burst", "1",
                    "--trusted-proxies", "1")
    a = {"X-Forwarded-For": "198.51.100.1, 203.0.113.5"}
    b = {"X-Forwarded-For": "203.0.113.6"}
    assert embed(p, a).status_code == 400
    e = assert_error(embed(p, a), 429, "rate_limit_exceeded")
    assert "203.0.113.5" in e["message"], e
    # the forged left entry is not the key: a new one does not help
    assert embed(p, {"X-Forwarded-For": "192.0.2.99, 203.0.113.5"}
                 ).status_code == 429
    assert embed(p, b).status_code == 400, "another client, another bucket"
    # IPv6 clients by /64: another address of the same /64 is throttled
    assert embed(p, {"X-Forwarded-For": "2001:db8:1:2::1"}).status_code == 400
    assert embed(p, {"X-Forwarded-For": "2001:db8:1:2::ffff"}
                 ).status_code == 429
    # no header: the peer, loopback, exempt
    assert [embed(p).status_code for _ in range(3)] == [400] * 3


@pytest.mark.parametrize("args,message", [
    (["--rate-limit", "-1"], "--rate-limit must be a number from 0"),
    (["--rate-limit", "fast"], "--rate-limit must be a number"),
    (["--rate-burst", "1.5"], "--rate-burst must be a whole number"),
    (["--rate-limit-loopback=1"], "--rate-limit-loopback takes no value"),
    (["--trusted-proxies", "17"], "--trusted-proxies must be a whole number"),
])
def test_bad_flags_refused(args, message):
    out = subprocess.run([LODE, "serve", "--port", "0"] + args, cwd=ROOT,
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert out.returncode == 2 and message in out.stderr, out.stderr


def test_env_vars(make_server):
    s = make_server(env={"LODE_RATE_LIMIT": "0.01", "LODE_RATE_BURST": "2",
                         "LODE_RATE_LIMIT_LOOPBACK": "1"})
    assert "(bursts of 2)" in s.stderr, s.stderr
    codes = [embed(s).status_code for _ in range(3)]
    assert codes == [400, 400, 429], codes
    body = json.loads(embed(s).text)
    assert body["error"]["code"] == "rate_limit_exceeded"
