"""Forwarding a webhook's answer ("forward_url"): a Python HTTP server in
the test is the target.  The webhook answers at once while the forwarder
retries in the background (503 and 429 with Retry-After are retried with
backoff, other 4xx are not), a redelivery is not forwarded again, a full
queue drops with a warning, shutdown abandons what is left, and
lode_webhook_forwards_total counts it all."""
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from conftest import SLOW, TIMEOUT, wait_for



class Target:
    """Answers the n-th POST with statuses[n] (then `default`), optionally
    after waiting for `release`; records (time, path, headers, body)."""

    def __init__(self, statuses=(), default=200, retry_after=None,
                 block=False):
        self.statuses = list(statuses)
        self.default = default
        self.retry_after = retry_after
        self.release = threading.Event()
        if not block:
            self.release.set()
        self.requests = []
        self.cond = threading.Condition()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with target.cond:
                    n = len(target.requests)
                    target.requests.append((time.monotonic(), self.path,
                                            dict(self.headers), body))
                    target.cond.notify_all()
                target.release.wait(TIMEOUT)
                status = (target.statuses[n] if n < len(target.statuses)
                          else target.default)
                self.send_response(status)
                if status in (429, 503) and target.retry_after is not None:
                    self.send_header("Retry-After", str(target.retry_after))
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    def wait(self, n, timeout=TIMEOUT):
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.requests) >= n,
                                      timeout), self.requests
        return self.requests

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def target():
    made = []

    def make(*args, **kw):
        t = Target(*args, **kw)
        made.append(t)
        return t

    yield make
    for t in made:
        t.close()


def serve(make_server, tmp_path, cfg, *args):
    path = tmp_path / ("w%d.json" % len(list(tmp_path.glob("w*.json"))))
    path.write_text(json.dumps(cfg))
    return make_server("--webhooks", str(path), *args)


def tally(event_id, problem="I cannot log in", form_id="f"):
    return {"eventId": event_id, "eventType": "FORM_RESPONSE",
            "data": {"formId": form_id, "responseId": "r-" + event_id,
                     "fields": [{"key": "q", "label": "Problem",
                                 "value": problem}]}}


def forwards(s):
    text = s.get("/metrics").text
    return {m.group(1): int(m.group(2)) for m in re.finditer(
        r'^lode_webhook_forwards_total\{result="(\w+)"\} (\d+)$', text,
        re.M)}


def test_retries_until_accepted_without_delaying_the_answer(
        make_server, tmp_path, target):
    # The target holds every delivery until released, so an answer that
    # arrives first did not wait for the forwarder.
    t = target(statuses=[503, 503, 503], block=True)
    s = serve(make_server, tmp_path, {"tally": {"f": {
        "forward_url": t.url + "/hook",
        "forward_headers": {"Authorization": "Bearer tok"}}}})
    r = s.post("/webhook/tally", tally("e1"))
    assert r.status_code == 200, r.text
    t.wait(1)
    t.release.set()
    answer = r.json()
    assert answer["duplicate"] is False
    reqs = t.wait(4)
    # counted as delivered: the item is gone, nothing more will be sent
    wait_for(lambda: forwards(s) == {"ok": 1, "retry": 3, "failed": 0,
                                     "dropped": 0})
    assert len(t.requests) == 4  # delivered once, then no more
    times = [x[0] for x in reqs]
    gaps = [b - a for a, b in zip(times, times[1:])]
    # backoff 0.5 s, 1 s, 2 s (a little slack below for clock rounding)
    assert gaps[0] >= 0.45 and gaps[1] >= 0.95 and gaps[2] >= 1.95, gaps
    assert gaps[2] < 6, gaps
    for _, path, headers, body in reqs:
        assert path == "/hook"
        assert headers["Content-Type"] == "application/json"
        assert headers["Authorization"] == "Bearer tok"
        assert headers["Idempotency-Key"] == "tally:e1"
        assert headers["X-Lode-Webhook"] == "tally"
        assert json.loads(body) == answer
    assert answer["webhook"] == "tally" and answer["form_id"] == "f"
    assert answer["event_id"] == "e1"


def test_other_4xx_is_not_retried(make_server, tmp_path, target):
    t = target(default=400)
    s = serve(make_server, tmp_path, {"tally": {"f": {
        "forward_url": t.url}}})
    assert s.post("/webhook/tally", tally("e1")).status_code == 200
    t.wait(1)
    wait_for(lambda: forwards(s)["failed"] == 1)  # given up: no retry
    assert len(t.requests) == 1
    assert forwards(s) == {"ok": 0, "retry": 0, "failed": 1, "dropped": 0}
    wait_for(lambda: "failed after 1 attempt: HTTP 400 (not retried)"
             in s.stderr)
    assert "tally form f event e1" in s.stderr


def test_retries_give_up(make_server, tmp_path, target):
    t = target(default=500)
    s = serve(make_server, tmp_path, {"tally": {"f": {
        "forward_url": t.url, "forward_retries": 1,
        "forward_timeout_ms": 2000}}})
    assert s.post("/webhook/tally", tally("e1")).status_code == 200
    t.wait(2)
    wait_for(lambda: forwards(s)["failed"] == 1)  # given up: no retry
    assert len(t.requests) == 2
    assert forwards(s) == {"ok": 0, "retry": 1, "failed": 1, "dropped": 0}
    # the log line may come after the counter, and stderr is read by a
    # thread of the test: wait for it too
    wait_for(lambda: "failed after 2 attempts: HTTP 500" in s.stderr,
             what="the log line")


def test_retry_after_is_honoured(make_server, tmp_path, target):
    t = target(statuses=[429], retry_after=2)
    s = serve(make_server, tmp_path, {"tally": {"f": {
        "forward_url": t.url}}})
    assert s.post("/webhook/tally", tally("e1")).status_code == 200
    reqs = t.wait(2)
    assert reqs[1][0] - reqs[0][0] >= 1.9  # not the default 0.5 s
    wait_for(lambda: forwards(s)["ok"] == 1)


def test_redelivery_is_not_forwarded_again(make_server, tmp_path, target):
    t = target()
    s = serve(make_server, tmp_path, {
        "tally": {"f": {"forward_url": t.url}},
        "generic": {"g": {"text": ["/msg"], "forward_url": t.url + "/g"}}})
    first = s.post("/webhook/tally", tally("e1"))
    assert first.status_code == 200
    t.wait(1)
    again = s.post("/webhook/tally", tally("e1"))
    assert again.status_code == 200 and again.json()["duplicate"] is True
    # a generic delivery, its id the body's hash, twice
    raw = json.dumps({"msg": "hello there"}).encode()
    headers = {"Content-Type": "application/json"}
    g1 = requests.post(s.url + "/webhook/g", data=raw, headers=headers,
                       timeout=TIMEOUT)
    assert g1.status_code == 200 and g1.json()["duplicate"] is False
    t.wait(2)
    g2 = requests.post(s.url + "/webhook/g", data=raw, headers=headers,
                       timeout=TIMEOUT)
    assert g2.json()["duplicate"] is True
    # A redelivery would be queued when it is answered, so before this
    # later event; once that one is delivered, nothing else is pending.
    assert s.post("/webhook/tally", tally("e3")).status_code == 200
    wait_for(lambda: forwards(s)["ok"] == 3)
    assert len(t.requests) == 3, [x[3] for x in t.requests]
    assert json.loads(t.requests[2][3])["event_id"] == "e3"
    _, path, headers, body = t.requests[1]
    assert path == "/g" and json.loads(body) == g1.json()
    assert json.loads(body)["webhook"] == "g"
    assert headers["Idempotency-Key"] == "g:" + g1.json()["event_id"]
    assert forwards(s)["ok"] == 3


def test_full_queue_drops_with_a_warning(make_server, tmp_path, target):
    t = target(block=True)  # holds the first delivery until released
    s = serve(make_server, tmp_path, {
        "forward_queue": 1, "tally": {"f": {"forward_url": t.url}}})
    r1 = s.post("/webhook/tally", tally("e1", "first problem"))
    t.wait(1)
    r2 = s.post("/webhook/tally", tally("e2", "second problem"))
    # neither waits for the stuck target: both answered while it holds e1
    for r in (r1, r2):
        assert r.status_code == 200, r.text
    wait_for(lambda: forwards(s)["dropped"] == 1)
    # the warning is written after the counter is bumped, and stderr is
    # read by a thread of the test: wait for it rather than expect it
    wait_for(lambda: "tally form f event e2 dropped: the queue is full"
             in s.stderr, what="the warning")
    t.release.set()
    wait_for(lambda: forwards(s)["ok"] == 1)  # e1 delivered: queue empty
    assert len(t.requests) == 1
    assert json.loads(t.requests[0][3])["event_id"] == "e1"


def test_shutdown_abandons_what_is_left(make_server, tmp_path, target):
    t = target(default=503)
    s = serve(make_server, tmp_path, {"tally": {"f": {
        "forward_url": t.url, "forward_retries": 10}}}, "--grace", "1")
    assert s.post("/webhook/tally", tally("e1")).status_code == 200
    t.wait(2)
    start = time.monotonic()
    assert s.stop() == 0
    assert time.monotonic() - start < (15 if SLOW else 5)
    assert "tally form f event e1 abandoned at shutdown" in s.stderr


def test_generic_webhook_forwards(make_server, tmp_path, target):
    t = target(statuses=[502], block=True)   # held: the answer is first
    s = serve(make_server, tmp_path, {"generic": {"orders": {
        "text": ["/item"], "id": "/order/id", "forward_url": t.url,
        "forward_headers": {"X-Token": "abc"}}}})
    r = s.post("/webhook/orders", {"order": {"id": 1234}, "item": "A red "
                                                               "bicycle"})
    assert r.status_code == 200, r.text
    t.release.set()
    reqs = t.wait(2)
    for _, _, headers, body in reqs:
        assert json.loads(body) == r.json()
        assert headers["X-Token"] == "abc"
        assert headers["Idempotency-Key"] == "orders:1234"
    assert r.json()["event_id"] == "1234"
    wait_for(lambda: forwards(s) == {"ok": 1, "retry": 1, "failed": 0,
                                     "dropped": 0})


def test_metrics_without_forwarding(make_server):
    s = make_server()
    assert forwards(s) == {"ok": 0, "retry": 0, "failed": 0, "dropped": 0}
