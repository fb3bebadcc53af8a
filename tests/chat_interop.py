"""lode's /chat and /v1/chat/completions against a real LLM: Gemma 3 270M
(models/gemma-3-270m-q4_k_m.gguf, scripts/fetch_llm.sh) served by
llama.cpp's OpenAI-compatible server from llama-cpp-python.

Checked: /chat and the official OpenAI SDK on /v1/chat/completions,
streamed and not, give well-formed answers from the LLM (not degraded),
and every citation in them names a source that was given.  Gemma 270M is
a weak reader, so what it says is not checked, only how it is carried.
Prints "chat_interop: N passed, N failed"."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import openai

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
LODE = os.path.abspath(os.environ.get("LODE", os.path.join(ROOT, "lode")))
EMBED = os.path.join(ROOT, "models", "all-MiniLM-L6-v2-q8_0.gguf")
GEMMA = os.path.join(ROOT, "models", "gemma-3-270m-q4_k_m.gguf")
SLOW = "-san" in LODE
TIMEOUT = 240 if SLOW else 120
passed = failed = 0


def check(what, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL %s %s" % (what, detail), file=sys.stderr)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_url(url, proc, what):
    end = time.time() + TIMEOUT
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError("%s exited with %s" % (what, proc.returncode))
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("%s did not answer %s" % (what, url))


def post(url, body):
    req = urllib.request.Request(url, json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read().decode()


def citations_valid(answer, n_sources):
    nums = [int(x) for x in re.findall(r"\[(\d+)\]", answer)]
    return all(1 <= n <= n_sources for n in nums), nums


def check_answer(tag, a):
    check(tag + ": answered by the LLM", a["answer_kind"] == "llm" and
          not a["degraded"], "%s %s" % (a["answer_kind"], a.get("llm_error")))
    ok, nums = citations_valid(a["answer"], len(a["sources"]))
    check(tag + ": every citation names a given source", ok,
          "%s of %d" % (nums, len(a["sources"])))
    for c in a["citations"]:
        check(tag + ": citation offsets", a["answer"][c["start"]:c["end"]] ==
              "[%d]" % c["n"])
    check(tag + ": sources numbered 1..n",
          [s["n"] for s in a["sources"]] == list(range(1, len(a["sources"]) + 1)))


def sse_events(text):
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            else:
                raise AssertionError("bad SSE line %r" % line)
        events.append((name, "\n".join(data)))
    return events


def run(tmp):
    db = os.path.join(tmp, "lode.db")
    subprocess.run([LODE, "ingest", "--db", db, "-m", EMBED, "data/sample"],
                   cwd=ROOT, check=True, capture_output=True, timeout=TIMEOUT)
    llm_port = free_port()
    llm = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", GEMMA,
         "--host", "127.0.0.1", "--port", str(llm_port), "--n_ctx", "4096",
         "--chat_format", "gemma"], cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    lode = None
    try:
        wait_url("http://127.0.0.1:%d/v1/models" % llm_port, llm, "llama.cpp")
        port = free_port()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("LODE_", "LLM_", "OPENROUTER_"))}
        env.update({"LLM_BASE_URL": "http://127.0.0.1:%d/v1" % llm_port,
                    "LLM_MODEL": "gemma-3-270m", "MAX_TOKENS": "48",
                    "LLM_TIMEOUT": str(TIMEOUT)})
        lode = subprocess.Popen([LODE, "serve", "--db", db, "-m", EMBED,
                                 "--port", str(port)], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        base = "http://127.0.0.1:%d" % port
        wait_url(base + "/health", lode, "lode")
        q = "How many vacation days do I get per year?"

        status, _, text = post(base + "/chat", {"message": q, "k": 3})
        check("/chat: 200", status == 200)
        check_answer("/chat", json.loads(text))

        status, ctype, text = post(base + "/chat",
                                   {"message": q, "k": 3, "stream": True})
        events = sse_events(text)
        names = [e for e, _ in events]
        check("/chat stream: sources first, done last",
              names[0] == "sources" and names[-1] == "done" and
              set(names[1:-1]) <= {"delta"}, names)
        check("/chat stream: event-stream", ctype.startswith("text/event-stream"))
        done = json.loads(events[-1][1])
        deltas = "".join(json.loads(d)["text"] for e, d in events
                         if e == "delta")
        check("/chat stream: the deltas are the answer",
              deltas == done["answer"], "%r %r" % (deltas, done["answer"]))
        check_answer("/chat stream", done)

        client = openai.OpenAI(base_url=base + "/v1", api_key="none",
                               timeout=TIMEOUT, max_retries=0)
        r = client.chat.completions.create(
            model="lode", messages=[{"role": "user", "content": q}])
        extra = r.model_dump()
        check("SDK: an answer", r.choices[0].finish_reason == "stop" and
              isinstance(r.choices[0].message.content, str))
        ok, nums = citations_valid(r.choices[0].message.content,
                                   len(extra["sources"]))
        check("SDK: citations name given sources", ok, nums)
        check("SDK: not degraded", extra["lode"]["degraded"] is False,
              extra["lode"].get("llm_error"))

        chunks = list(client.chat.completions.create(
            model="lode", stream=True,
            messages=[{"role": "user", "content": q}]))
        text = "".join(c.choices[0].delta.content or "" for c in chunks
                       if c.choices)
        last = chunks[-1].model_dump()
        check("SDK stream: finished", chunks[-1].choices[0].finish_reason == "stop")
        check("SDK stream: the text is the answer", last["lode"]["answer"] == text)
        ok, nums = citations_valid(text, len(last["sources"]))
        check("SDK stream: citations name given sources", ok, nums)
        check("SDK stream: not degraded", last["lode"]["degraded"] is False)
    finally:
        if lode:
            lode.send_signal(signal.SIGTERM)
            try:
                rc = lode.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                lode.kill()
                rc = -1
            check("lode stops cleanly", rc == 0, lode.stderr.read()[-2000:])
        llm.terminate()
        try:
            llm.wait(30)
        except subprocess.TimeoutExpired:
            llm.kill()


def main():
    with tempfile.TemporaryDirectory(prefix="lode-chat-interop-") as tmp:
        try:
            run(tmp)
        except Exception as e:  # noqa: BLE001 - reported as a failure
            check("interop run", False, repr(e))
    print("chat_interop: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
