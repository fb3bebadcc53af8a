"""/chat when the LLM misbehaves (tests/llm_server.py told to fail): every
failure gives 200 with degraded: true and an extractive answer with valid
citations; 429 and 5xx are retried (honouring Retry-After); the circuit
breaker opens after N failures, stops calling, lets one probe through
after the cool-down and closes on its success; a client that goes away
cancels the upstream request."""
import re
import socket
import time

import pytest

from conftest import TIMEOUT
from test_chat import VACATION, chat, check_citations


def server_for(make_server, sample_db, llm, *args):
    return make_server("--llm-base-url", llm.url, *args, db=sample_db)


def check_degraded(a, reason):
    assert a["degraded"] is True, a
    assert a["degraded_reason"] == reason, (a["degraded_reason"], a.get("llm_error"))
    assert a["answer_kind"] == "extractive"
    assert "25 days" in a["answer"], a["answer"]
    check_citations(a)
    assert a["citations"]


@pytest.mark.parametrize("behaviour,reason", [
    ({"mode": "status", "status": 500}, "llm_error"),
    ({"mode": "status", "status": 401}, "llm_error"),
    ({"mode": "malformed"}, "llm_malformed"),
    ({"mode": "text", "text": ""}, "llm_empty_answer"),
])
def test_failure_answers_from_the_documents(make_server, sample_db, llm,
                                            behaviour, reason):
    s = server_for(make_server, sample_db, llm, "--llm-retries", "0")
    llm.push(behaviour)
    check_degraded(chat(s, {"message": VACATION}), reason)


def test_timeout_answers_from_the_documents(make_server, sample_db, llm):
    s = server_for(make_server, sample_db, llm, "--llm-timeout", "1",
                   "--llm-retries", "0")
    llm.push({"mode": "stall"})
    a = chat(s, {"message": VACATION})
    check_degraded(a, "llm_timeout")
    llm.wait_disconnects(1)   # the stalled upstream request was closed


def test_unreachable_llm(make_server, sample_db):
    # a port nobody listens on
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    s = make_server("--llm-base-url", "http://127.0.0.1:%d/v1" % port,
                    "--llm-retries", "0", db=sample_db)
    check_degraded(chat(s, {"message": VACATION}), "llm_unreachable")


def test_retries_then_succeeds(make_server, sample_db, llm):
    s = server_for(make_server, sample_db, llm, "--llm-retries", "2")
    llm.push({"mode": "status", "status": 503}, {"mode": "status", "status": 502})
    a = chat(s, {"message": VACATION})
    assert a["degraded"] is False and a["answer_kind"] == "llm", a
    assert len(llm.wait_requests(3)) == 3


def test_retry_after_is_honoured(make_server, sample_db, llm):
    s = server_for(make_server, sample_db, llm, "--llm-retries", "1")
    llm.push({"mode": "status", "status": 429, "retry_after": 1})
    a = chat(s, {"message": VACATION})
    assert a["degraded"] is False, a
    first, second = llm.wait_requests(2)
    assert second["time"] - first["time"] >= 0.95


def test_4xx_is_not_retried(make_server, sample_db, llm):
    s = server_for(make_server, sample_db, llm, "--llm-retries", "3")
    llm.push({"mode": "status", "status": 400})
    check_degraded(chat(s, {"message": VACATION}), "llm_error")
    assert len(llm.requests) == 1


def breaker(s):
    return s.get("/health").json()["llm"]["breaker"]


def still_cooling(sent, cooldown):
    """The breaker opened after `sent` (when the request that opened it
    was sent), so until `cooldown` seconds after that it must still be
    open; later it may already be half open, and a loaded machine can get
    there between two requests of a test."""
    return time.time() - sent < cooldown


def test_breaker_opens_probes_and_closes(make_server, sample_db, llm):
    cooldown = 4
    s = server_for(make_server, sample_db, llm, "--llm-retries", "0",
                   "--breaker-failures", "3", "--breaker-cooldown",
                   str(cooldown))
    llm.default = {"mode": "status", "status": 500}
    for i in range(3):
        sent = time.time()
        a = chat(s, {"message": VACATION})
        check_degraded(a, "llm_error")
    assert len(llm.requests) == 3
    b = breaker(s)
    assert b["consecutive_failures"] == 3, b
    if still_cooling(sent, cooldown):
        assert b["state"] == "open", b
    h = s.get("/health").json()
    assert h["status"] == "healthy"
    assert h["components"]["llm_service"] == "unavailable"
    m = s.get("/metrics").text
    if still_cooling(sent, cooldown):
        assert "lode_llm_breaker_state 2" in m
    # open: answered at once, the LLM is not called
    a = chat(s, {"message": VACATION})
    probes = 0
    if a.get("degraded_reason") == "breaker_open":
        check_degraded(a, "breaker_open")
        assert a["breaker"]["state"] == "open"
        assert len(llm.requests) == 3
    else:  # it went as the probe (and failed): the cool-down had run out
        assert not still_cooling(sent, cooldown), a
        check_degraded(a, "llm_error")
        probes = 1
    # after the cool-down one probe goes; it succeeds and closes the breaker
    llm.default = {"mode": "answer"}
    end = time.time() + TIMEOUT
    while breaker(s)["state"] != "half_open":
        assert time.time() < end, breaker(s)
        time.sleep(0.05)
    a = chat(s, {"message": VACATION})
    assert a["degraded"] is False and a["breaker"]["state"] == "closed", a
    assert len(llm.requests) == 4 + probes
    assert s.get("/health").json()["components"]["llm_service"] == "operational"


def test_failed_probe_reopens(make_server, sample_db, llm):
    cooldown = 2
    s = server_for(make_server, sample_db, llm, "--llm-retries", "0",
                   "--breaker-failures", "1", "--breaker-cooldown",
                   str(cooldown))
    llm.default = {"mode": "status", "status": 503}
    check_degraded(chat(s, {"message": VACATION}), "llm_error")
    end = time.time() + TIMEOUT
    while breaker(s)["state"] != "half_open":
        assert time.time() < end
        time.sleep(0.05)
    sent = time.time()
    check_degraded(chat(s, {"message": VACATION}), "llm_error")  # the probe
    b = breaker(s)
    assert len(llm.requests) == 2
    if still_cooling(sent, cooldown):
        assert b["state"] == "open", b
    else:
        assert b["state"] in ("open", "half_open"), b
    assert 'lode_llm_breaker_opens_total 2' in s.get("/metrics").text


def test_client_gone_cancels_upstream(make_server, sample_db, llm):
    s = server_for(make_server, sample_db, llm, "--llm-timeout", "60")
    llm.push({"mode": "stall"})
    body = b'{"message": "How many vacation days do I get?"}'
    sock = socket.create_connection(("127.0.0.1", s.port), timeout=TIMEOUT)
    sock.sendall(b"POST /chat HTTP/1.1\r\nHost: x\r\nContent-Type: "
                 b"application/json\r\nContent-Length: %d\r\n\r\n%s" %
                 (len(body), body))
    llm.wait_requests(1)
    sock.close()
    llm.wait_disconnects(1)
    m = s.get("/metrics").text
    end = time.time() + TIMEOUT
    while 'lode_llm_requests_total{result="cancelled"} 1' not in m:
        assert time.time() < end, m
        time.sleep(0.05)
        m = s.get("/metrics").text
    # the breaker does not count a client's departure
    assert breaker(s)["consecutive_failures"] == 0


@pytest.mark.parametrize("stream", [False, True])
def test_shutdown_answers_chats_in_flight(make_server, sample_db, llm, stream):
    import signal
    import threading
    import requests
    s = server_for(make_server, sample_db, llm, "--grace", "1",
                   "--llm-timeout", "60")
    llm.push({"mode": "stall"})
    got = {}

    def ask():
        r = requests.post(s.url + "/chat", json={"message": VACATION,
                                                  "stream": stream},
                          timeout=TIMEOUT)
        got["status"] = r.status_code
        got["body"] = r.text

    t = threading.Thread(target=ask)
    t.start()
    llm.wait_requests(1)
    s.proc.send_signal(signal.SIGTERM)
    t.join(TIMEOUT)
    assert got.get("status") == 200, got
    text = got["body"]
    if stream:
        text = [l[6:] for l in text.split("\n") if l.startswith("data: ")][-1]
    a = __import__("json").loads(text)
    check_degraded(a, "shutting_down")
    assert s.proc.wait(TIMEOUT) == 0
