"""Hostile and broken clients: malformed JSON, wrong types, oversized
bodies, deep nesting, invalid UTF-8, wrong content types, slow clients.
After each the server must still answer correctly."""
import socket
import time

import pytest
import requests

from conftest import TIMEOUT, assert_error

EMB = "/v1/embeddings"
JSON = {"Content-Type": "application/json"}


def raw_post(server, path, data, headers=None):
    h = dict(JSON)
    h.update(headers or {})
    return requests.post(server.url + path, data=data, headers=h,
                         timeout=TIMEOUT)


@pytest.mark.parametrize("path", [EMB, "/search", "/collections",
                                  "/collections/c/documents"])
@pytest.mark.parametrize("data", [b"", b"{", b"nul", b"[1,2]", b'"str"',
                                  b"{\"input\": tru}", b"\xff\xfe{}",
                                  b'{"input": "\xc3\x28"}',
                                  b'{"input": "a"} trailing'])
def test_malformed_json(server, path, data):
    e = assert_error(raw_post(server, path, data), 400)
    assert e["type"] == "invalid_request_error"


def test_deep_nesting(server):
    deep = b"[" * 100000 + b"]" * 100000
    assert_error(raw_post(server, EMB, deep), 400, "invalid_json")
    body = b'{"input": ' + b"[" * 40 + b"1" + b"]" * 40 + b"}"
    e = assert_error(raw_post(server, EMB, body), 400, "invalid_json")
    assert "nested" in e["message"]
    # brackets inside strings do not count
    ok = raw_post(server, EMB, b'{"input": "' + b"[" * 100 + b'"}')
    assert ok.status_code == 200


def test_oversized_bodies(server):
    big = b'{"input": "' + b"a " * 600000 + b'"}'
    assert_error(raw_post(server, EMB, big), 413, "request_too_large")

    def chunks():
        for _ in range(120):
            yield b"x" * 10000

    # chunked, so the size is only known while reading
    r = requests.post(server.url + EMB, data=chunks(), headers=JSON,
                      timeout=TIMEOUT)
    assert_error(r, 413, "request_too_large")
    assert server.post(EMB, {"input": "still fine"}).status_code == 200


def test_huge_arrays(server):
    e = assert_error(server.post(EMB, {"input": ["a"] * 5000}), 400,
                     "limit_exceeded")
    assert "2048" in e["message"]
    e = assert_error(server.post(EMB, {"input": [7] * 300001}), 400,
                     "limit_exceeded")


def test_wrong_content_type(server):
    for ct in ("text/plain", "application/x-www-form-urlencoded",
               "multipart/form-data; boundary=x"):
        r = requests.post(server.url + EMB, data=b'{"input": "x"}',
                          headers={"Content-Type": ct}, timeout=TIMEOUT)
        assert_error(r, 415, "unsupported_media_type")
    r = requests.post(server.url + EMB, data=b'{"input": "x"}',
                      headers={"Content-Type": "application/json; "
                                               "charset=utf-8"},
                      timeout=TIMEOUT)
    assert r.status_code == 200


@pytest.mark.parametrize("body", [
    {"query": 5}, {"query": ""}, {"query": "x", "k": 0},
    {"query": "x", "k": "3"}, {"query": "x", "k": 100000},
    {"query": "x", "where": "dept = hr"}, {"query": "x", "where": [1]},
    {"query": "x", "min_score": "high"}, {"query": "x", "collection": 7},
    {"query": "x", "collection": "../etc"},
    {"query": "x", "where": {"dept": {"$regex": "h.*"}}},
])
def test_search_bad_inputs(server, body):
    assert_error(server.post("/search", body), 400)


def slow_socket(server):
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\n")
    return s


def test_slow_clients_do_not_block_others(make_server):
    s = make_server("--timeout", "2")
    slow = [slow_socket(s) for _ in range(60)]
    t0 = time.time()
    for _ in range(5):
        assert s.get("/health").status_code == 200
        assert s.post(EMB, {"input": "busy?"}).status_code == 200
    assert time.time() - t0 < 5
    # an idle half-sent request is closed after the timeout (each recv
    # waits for that, up to a bound far above the 2 s)
    for c in slow:
        c.settimeout(TIMEOUT)
        try:
            data = c.recv(100)
        except ConnectionResetError:
            data = b""
        assert data == b"" or data.startswith(b"HTTP/1.1 4"), data
        c.close()


def test_slow_body_is_cut_off(make_server):
    s = make_server("--timeout", "3", "--body-timeout", "2")
    c = socket.create_connection(("127.0.0.1", s.port), timeout=10)
    c.sendall(b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n")
    t0 = time.time()
    closed = False
    while time.time() - t0 < 8:   # one byte every 0.5 s: never idle
        try:
            c.sendall(b" ")
            c.settimeout(0.5)
            data = c.recv(100)
            if data == b"" or data.startswith(b"HTTP/1.1 4"):
                closed = True
                break
        except socket.timeout:
            continue
        except OSError:
            closed = True
            break
    assert closed
    assert time.time() - t0 < 6
    c.close()
    assert s.get("/health").status_code == 200


def test_garbage_http(make_server):
    server = make_server("--timeout", "2")
    for junk in (b"\x00\x01\x02\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n",
                 b"GET /health HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 70000 +
                 b"\r\n\r\n"):
        c = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        try:
            c.sendall(junk)
            c.recv(1000)
        except (ConnectionResetError, BrokenPipeError):
            pass
        c.close()
    assert server.get("/health").status_code == 200


def test_error_shape_everywhere(server):
    for r in (server.get("/nope"), server.post("/health"),
              server.post(EMB, {"input": 1}),
              server.get("/collections/missing/documents/x")):
        assert set(r.json()["error"]) == {"message", "type", "code"}


def _alive(sock, wait=1.0):
    """Is this connection still open on the server's side after `wait`
    seconds?  (A refused one is closed at once; the wait only has to cover
    a loaded machine's delay in delivering that close.)"""
    sock.settimeout(wait)
    try:
        return sock.recv(1) != b""
    except socket.timeout:
        return True
    except OSError:
        return False


def test_connection_cap(make_server):
    """With the cap's worth of connections open, another is refused (closed
    at once), and once they close the server serves again.  The cap may
    hold a connection of the start-up health poll for a moment, so held
    connections are opened until the cap is full of them."""
    s = make_server("--max-connections", "4", "--timeout", "30")
    held, refused_early = [], 0
    while len(held) < 4 and refused_early < 20:
        c = slow_socket(s)
        if _alive(c):
            held.append(c)
        else:
            refused_early += 1
            c.close()
            time.sleep(0.05)
    assert len(held) == 4
    for _ in range(3):
        c = slow_socket(s)
        assert not _alive(c, wait=5), "a connection over the cap was served"
        c.close()
        with pytest.raises(requests.RequestException):
            requests.get(s.url + "/health", timeout=2)
    for c in held:
        assert _alive(c, wait=0.3), "a connection under the cap was dropped"
        c.close()
    deadline = time.monotonic() + 10    # until the server sees the closes
    while True:
        try:
            if requests.get(s.url + "/health", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        assert time.monotonic() < deadline, "not serving after the closes"
        time.sleep(0.05)
