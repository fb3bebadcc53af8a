"""Early answers reach clients that send their whole body before reading.

lode refuses some requests from their headers alone (413 by Content-Length,
401 without the key, 415 for a non-JSON body, 404, 405).  Closing a socket
that still holds unread body makes the kernel reset the connection, and a
client that writes its whole body first (Python's urllib, a raw socket,
most scripts) then loses the answer.  lode reads and drops the body first
(src/http.c, drain_limit), so each of these clients reads the JSON error.
"""
import json
import socket
import urllib.error
import urllib.request

import pytest
import requests

from conftest import TIMEOUT

KEY = "drain-key"
MAX_BODY = 2 << 20


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from conftest import Server
    s = Server(tmp_path_factory.mktemp("drain"),
               env={"LODE_API_KEY": KEY, "LODE_MAX_BODY": str(MAX_BODY)})
    yield s
    assert s.stop() == 0, s.stderr


def body(n):
    """A JSON body of exactly n bytes."""
    head = b'{"input": "'
    return head + b"x" * (n - len(head) - 2) + b'"}'


# (name, method, path, headers, body size, status, code)
CASES = [
    ("413 slightly over", "POST", "/v1/embeddings", {}, MAX_BODY + 1000, 413,
     "request_too_large"),
    ("413 eight times over", "POST", "/v1/embeddings", {}, 8 * MAX_BODY, 413,
     "request_too_large"),
    ("401 without the key", "POST", "/collections", {}, MAX_BODY - 100, 401, None),
    ("415 not JSON", "POST", "/search", {"Content-Type": "text/plain"}, MAX_BODY - 100, 415,
     "unsupported_media_type"),
    ("404 unknown path", "POST", "/no/such/route", {}, MAX_BODY - 100, 404, None),
    ("405 wrong method", "DELETE", "/search", {}, MAX_BODY - 100, 405, None),
]
IDS = [c[0] for c in CASES]


def check(status, ctype, text, want_status, code):
    assert status == want_status, (status, text[:200])
    assert ctype.startswith("application/json"), ctype
    err = json.loads(text)["error"]
    assert err["message"] and err["type"] and err["code"], err
    if code:
        assert err["code"] == code, err


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_urllib(srv, case):
    _, method, path, headers, n, want, code = case
    h = {"Content-Type": "application/json"}
    h.update(headers)
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (srv.port, path),
                                 data=body(n), headers=h, method=method)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            status, ctype, text = r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as e:
        status, ctype, text = e.code, e.headers["Content-Type"], e.read().decode()
    check(status, ctype, text, want, code)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_requests(srv, case):
    _, method, path, headers, n, want, code = case
    h = {"Content-Type": "application/json"}
    h.update(headers)
    r = requests.request(method, "http://127.0.0.1:%d%s" % (srv.port, path),
                         data=body(n), headers=h, timeout=TIMEOUT)
    check(r.status_code, r.headers["Content-Type"], r.text, want, code)


def raw_exchange(port, head, payload):
    """Send the whole request, then read the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(head + payload)
        s.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    hdr = {k.lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    return status, hdr, rest[:int(hdr["content-length"])].decode()


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_raw_socket(srv, case):
    _, method, path, headers, n, want, code = case
    h = {"Content-Type": "application/json", "Content-Length": str(n),
         "Connection": "close"}
    h.update(headers)
    head = ("%s %s HTTP/1.1\r\nHost: x\r\n" % (method, path) +
            "".join("%s: %s\r\n" % kv for kv in h.items()) + "\r\n").encode()
    status, hdr, text = raw_exchange(srv.port, head, body(n))
    check(status, hdr["content-type"], text, want, code)


def test_chunked_body_over_the_limit(srv):
    """No Content-Length: the limit is found while reading, the answer
    still arrives after the whole body was sent."""
    payload = body(3 * MAX_BODY)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(payload[i:i + 8192]), payload[i:i + 8192])
                      for i in range(0, len(payload), 8192)) + b"0\r\n\r\n"
    head = (b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
    status, hdr, text = raw_exchange(srv.port, head, chunks)
    check(status, hdr["content-type"], text, 413, "request_too_large")


def test_connection_kept_after_an_early_answer(srv):
    """The drained body does not spill into the next request."""
    with requests.Session() as s:
        url = "http://127.0.0.1:%d" % srv.port
        r = s.post(url + "/collections", data=body(40000),
                   headers={"Content-Type": "application/json"}, timeout=TIMEOUT)
        assert r.status_code == 401, r.text
        r = s.get(url + "/health", timeout=TIMEOUT)
        assert r.status_code == 200 and r.json()["status"] == "healthy", r.text
