"""Streamed chat (Server-Sent Events) and the OpenAI-compatible
/v1/chat/completions: sources first, answer deltas, one final event;
well-formed when the LLM breaks off mid-stream; a client leaving cancels
the upstream call; the official OpenAI SDK gets valid answers and streams
with lode's sources; 32 streams against a slow LLM hold no HTTP thread."""
import json
import socket
import threading
import time

import openai
import requests

from conftest import TIMEOUT
from test_chat import VACATION, check_citations


def server_for(make_server, sample_db, llm, *args):
    return make_server("--llm-base-url", llm.url, *args, db=sample_db)


def read_events(resp):
    """(event, data) pairs of an SSE response, checking the framing."""
    events, event, data = [], None, []
    for raw in resp.iter_lines(decode_unicode=True):
        if raw == "":
            if data:
                events.append((event, "\n".join(data)))
            event, data = None, []
            continue
        assert raw.startswith(("event: ", "data: ")), raw
        if raw.startswith("event: "):
            event = raw[7:]
        else:
            data.append(raw[6:])
    assert not data, "an event was not terminated"
    return events


def stream_chat(s, body):
    r = requests.post(s.url + "/chat", json=dict(body, stream=True),
                      stream=True, timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/event-stream")
    return [(e, json.loads(d)) for e, d in read_events(r)]


def check_stream(events):
    names = [e for e, _ in events]
    assert names[0] == "sources" and names[-1] == "done", names
    assert set(names[1:-1]) <= {"delta", "replace"}, names
    done = events[-1][1]
    sources = events[0][1]["sources"]
    assert done["sources"] == sources
    check_citations(done)
    return done, "".join(d["text"] for e, d in events if e == "delta")


def test_stream_answer(make_server, sample_db, llm):
    s = server_for(make_server, sample_db, llm)
    llm.push({"mode": "bad_citations"})
    events = stream_chat(s, {"message": VACATION, "k": 3})
    done, text = check_stream(events)
    assert done["degraded"] is False and done["answer_kind"] == "llm"
    assert text == done["answer"], (text, done["answer"])
    assert "[7]" not in text and "[12]" not in text
    assert sum(1 for e, _ in events if e == "delta") > 3, "streamed in pieces"
    assert done["usage"]["completion_tokens"] > 0


def test_stream_redacts_before_sending(make_server, sample_db, llm):
    s = server_for(make_server, sample_db, llm)
    llm.push({"mode": "text", "text": "Write to anna.smith@fernhill.example."
              "com or call +44 20 7946 0958 about your 25 days of paid "
              "annual leave per year [1]."})
    events = stream_chat(s, {"message": VACATION})
    done, text = check_stream(events)
    raw = json.dumps(events)
    assert "anna.smith" not in raw and "7946" not in raw
    assert "[EMAIL]" in text and "[PHONE]" in text and text == done["answer"]


def test_stream_degraded_without_llm(make_server, sample_db):
    s = make_server(db=sample_db)
    done, text = check_stream(stream_chat(s, {"message": VACATION}))
    assert done["degraded"] and text == done["answer"] and "25 days" in text


def test_stream_breaks_midway(make_server, sample_db, llm):
    s = server_for(make_server, sample_db, llm, "--llm-retries", "2")
    long_text = ("Every full-time employee gets 25 days of paid annual leave "
                 "per year, in addition to the public holidays of the "
                 "country [1]. More words follow here.")
    for behaviour, replaced in (
            ({"mode": "broken_sse"}, False),             # nothing shown yet
            ({"mode": "broken_sse", "text": long_text, "pieces": 20}, True),
            ({"mode": "malformed", "text": long_text}, False)):
        llm.push(dict(behaviour, delay_ms=2))
        events = stream_chat(s, {"message": VACATION})
        done, deltas = check_stream(events)
        assert done["degraded"] is True, done
        assert done["degraded_reason"] == "llm_malformed", done
        names = [e for e, _ in events]
        if replaced:   # what was streamed is replaced by the final answer
            assert names[-2] == "replace", names
            assert events[-2][1]["text"] == done["answer"]
            assert deltas and deltas != done["answer"]
            assert long_text.startswith(deltas)
        else:
            assert "replace" not in names and deltas == done["answer"]
        assert "25 days" in done["answer"]
    # a stream is not retried once it has started
    assert len(llm.requests) == 3


def test_stream_not_covered(make_server, sample_db, llm):
    s = server_for(make_server, sample_db, llm)
    done, text = check_stream(stream_chat(
        s, {"message": "What is the boiling point of mercury in kelvin?"}))
    assert done["covered"] is False and text == done["answer"]
    assert llm.requests == []


def test_stream_client_gone_cancels_upstream(make_server, sample_db, llm):
    s = server_for(make_server, sample_db, llm, "--llm-timeout", "60")
    llm.push({"mode": "stall_stream", "delay_ms": 1})
    r = requests.post(s.url + "/chat", json={"message": VACATION,
                                             "stream": True},
                      stream=True, timeout=TIMEOUT)
    lines = r.iter_lines(decode_unicode=True)
    assert next(lines) == "event: sources"
    llm.wait_requests(1)
    r.close()
    llm.wait_disconnects(1)
    end = time.time() + TIMEOUT
    while 'lode_llm_requests_total{result="cancelled"} 1' not in \
            s.get("/metrics").text:
        assert time.time() < end
        time.sleep(0.05)


def test_openai_sdk(make_server, sample_db, llm):
    s = server_for(make_server, sample_db, llm)
    client = openai.OpenAI(base_url=s.url + "/v1", api_key="unused",
                           timeout=TIMEOUT, max_retries=0)
    models = [m.id for m in client.models.list().data]
    assert "lode" in models and "default" in models
    r = client.chat.completions.create(
        model="lode", messages=[
            {"role": "system", "content": "You are a pirate."},
            {"role": "user", "content": VACATION}])
    answer = r.choices[0].message.content
    assert r.choices[0].finish_reason == "stop" and "25 days" in answer
    extra = r.model_dump()
    sources = extra["sources"]
    assert sources and sources[0]["n"] == 1
    lode = extra["lode"]
    assert lode["degraded"] is False
    for c in lode["citations"]:
        assert 1 <= c["n"] <= len(sources)
    assert r.usage.prompt_tokens == 100
    # the client's system message is not passed on
    (req,) = llm.wait_requests(1)
    assert "pirate" not in json.dumps(req["body"])

    # streamed, with history, naming the collection by model
    chunks = list(client.chat.completions.create(
        model="default", stream=True, messages=[
            {"role": "user", "content": "How many vacation days do I get?"},
            {"role": "assistant", "content": "25 days [1]."},
            {"role": "user", "content": "and can I carry some over?"}]))
    text = "".join(c.choices[0].delta.content or "" for c in chunks
                   if c.choices)
    last = chunks[-1].model_dump()
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert last["sources"] and last["lode"]["answer"] == text
    assert chunks[0].model_dump()["sources"] == last["sources"]
    assert last["lode"]["query_source"] == "rewritten"
    for c in last["lode"]["citations"]:
        assert 1 <= c["n"] <= len(last["sources"])


def test_openai_degraded_and_errors(make_server, sample_db):
    s = make_server(db=sample_db)
    client = openai.OpenAI(base_url=s.url + "/v1", api_key="unused",
                           timeout=TIMEOUT, max_retries=0)
    r = client.chat.completions.create(
        model="lode", messages=[{"role": "user", "content": VACATION}])
    assert "25 days" in r.choices[0].message.content
    assert r.model_dump()["lode"]["degraded"] is True
    text = "".join(c.choices[0].delta.content or "" for c in
                   client.chat.completions.create(
                       model="lode", stream=True,
                       messages=[{"role": "user", "content": VACATION}])
                   if c.choices)
    assert "25 days" in text
    for bad in ([], [{"role": "assistant", "content": "hi"}],
                [{"role": "user", "content": 5}]):
        try:
            client.chat.completions.create(model="lode", messages=bad)
            assert False, bad
        except openai.BadRequestError as e:
            assert e.status_code == 400
    try:
        client.chat.completions.create(
            model="no-such-collection",
            messages=[{"role": "user", "content": "hi"}])
        assert False
    except openai.NotFoundError as e:
        assert e.status_code == 404


def test_many_streams_hold_no_http_thread(make_server, sample_db, llm):
    s = server_for(make_server, sample_db, llm, "--http-threads", "2")
    llm.default = {"mode": "answer", "delay_ms": 60}
    results, errors = [], []

    def one():
        try:
            results.append(check_stream(stream_chat(s, {"message": VACATION})))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=one) for _ in range(32)]
    for t in threads:
        t.start()
    llm.wait_requests(32)
    # 32 streams are in flight on 2 HTTP threads, and /health still answers
    with llm.lock:
        assert llm.active > 2, llm.active
    t0 = time.time()
    assert s.get("/health").status_code == 200
    health_s = time.time() - t0
    for t in threads:
        t.join(TIMEOUT * 2)
    assert not errors, errors[:3]
    assert len(results) == 32
    assert all(done["degraded"] is False for done, _ in results)
    assert health_s < 5, health_s
