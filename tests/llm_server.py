"""A test LLM: an OpenAI-compatible chat-completions server that records
every request and can be told how to answer the next ones.

Used in-process by the pytest suite (LLMServer) and as a program by the
browser tests and benchmarks:

    python tests/llm_server.py --port 8081 [--delay-ms 20]

Behaviours (a queue: each request takes the next one, then `default`):
  answer        a good answer built from the prompt: the first sentence of
                the source sharing most words with the question, cited as
                [n] (or "The documents do not cover this." without one);
                a rewrite prompt gets "previous question + question"
  text          answer with the given "text"
  bad_citations cite sources that do not exist, beside a real one
  status        answer HTTP "status" with an error body (and "retry_after")
  malformed     200 with a body that is not JSON (a broken SSE line when
                streamed)
  broken_sse    stream "pieces" words (3), then close without finishing
  stall         never answer; note when the client goes away
  stall_stream  stream "pieces" words (3), then stall
Each behaviour may carry "delay_ms" (before answering, or between streamed
pieces) and "text" (the answer, instead of the one built from the prompt).

HTTP control (for out-of-process use): POST /_control {"queue": [...],
"default": {...}}; GET /_requests (what was received); POST /_reset.
"""
import argparse
import json
import re
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STOP = {"the", "and", "for", "are", "you", "your", "can", "how", "what",
        "does", "with", "this", "that", "when", "who", "many", "much", "get",
        "have", "from", "our", "any", "not", "may", "will", "there"}


def words(text):
    return {w for w in re.findall(r"[a-z0-9]+", text.lower())
            if len(w) > 2 and w not in STOP}


def parse_sources(user_text):
    """(n, title, text) of each <source> block of lode's prompt."""
    out = []
    for m in re.finditer(r'<source id="(\d+)"((?: \w+="[^"]*")*)>\n(.*?)'
                         r'\n</source>', user_text, re.S):
        title = re.search(r'title="([^"]*)"', m.group(2))
        out.append((int(m.group(1)), title.group(1) if title else "",
                    m.group(3)))
    return out


def sentences(text):
    """Sentences of a source, without headings and table rows."""
    out = []
    for line in text.split("\n"):
        line = line.strip()
        if not line or line[0] in "#|":
            continue
        line = line.lstrip("-* ").strip()
        out += [m.group(1) for m in re.finditer(r"(.+?[.!?])(?=\s|$)", line)]
    return [x for x in out if len(x.split()) >= 4]


def good_answer(messages):
    system = messages[0]["content"] if messages else ""
    user = messages[-1]["content"] if messages else ""
    if "standalone search query" in system:
        last = re.search(r"Last question: (.*)\n", user)
        prev = re.findall(r"^User: (.*)$", user, re.M)
        q = last.group(1) if last else user
        return (prev[-1] + " " + q) if prev else q
    question = user.rsplit("Question:", 1)[-1]
    q = words(question)
    best = None
    for n, _, text in parse_sources(user):
        for i, sent in enumerate(sentences(text)):
            key = (len(q & words(sent)), -n, -i)
            if best is None or key > best[0]:
                best = (key, sent, n)
    if best is None:
        return "The documents do not cover this."
    return "%s [%d]" % (best[1], best[2])


class LLMServer:
    """Runs in a thread; `requests` holds every request received."""

    def __init__(self, port=0, default=None):
        self.lock = threading.Condition()
        self.queue = []
        self.default = default or {"mode": "answer"}
        self.requests = []
        self.disconnects = 0
        self.active = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, *a):
                pass

            def do_GET(self):
                if self.path == "/_requests":
                    with server.lock:
                        body = json.dumps(server.requests).encode()
                    return self.reply(200, body)
                if self.path in ("/v1/models", "/models"):
                    return self.reply(200, json.dumps(
                        {"object": "list", "data": [
                            {"id": "test-llm", "object": "model"}]}).encode())
                self.reply(404, b'{"error":{"message":"no route"}}')

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                if self.path == "/_control":
                    c = json.loads(raw or b"{}")
                    with server.lock:
                        if "queue" in c:
                            server.queue = list(c["queue"])
                        if "default" in c:
                            server.default = c["default"]
                    return self.reply(200, b"{}")
                if self.path == "/_reset":
                    server.reset()
                    return self.reply(200, b"{}")
                if not self.path.endswith("/chat/completions"):
                    return self.reply(404, b'{"error":{"message":"no route"}}')
                body = json.loads(raw)
                with server.lock:
                    b = server.queue.pop(0) if server.queue else server.default
                    server.requests.append({
                        "body": body, "headers": dict(self.headers),
                        "mode": b.get("mode", "answer"), "time": time.time()})
                    server.active += 1
                    server.lock.notify_all()
                try:
                    server.respond(self, body, b)
                finally:
                    with server.lock:
                        server.active -= 1
                        server.lock.notify_all()

            def reply(self, status, body, ctype="application/json",
                      headers=()):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d/v1" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       daemon=True)
        self.thread.start()

    # ---- control -------------------------------------------------------

    def reset(self):
        with self.lock:
            self.queue = []
            self.default = {"mode": "answer"}
            self.requests = []
            self.disconnects = 0

    def push(self, *behaviours):
        with self.lock:
            self.queue.extend(behaviours)

    def wait_requests(self, n, timeout=30):
        with self.lock:
            ok = self.lock.wait_for(lambda: len(self.requests) >= n, timeout)
            assert ok, "%d requests, want %d" % (len(self.requests), n)
            return list(self.requests)

    def wait_disconnects(self, n, timeout=30):
        with self.lock:
            ok = self.lock.wait_for(lambda: self.disconnects >= n, timeout)
            assert ok, "%d disconnects, want %d" % (self.disconnects, n)

    def wait_idle(self, timeout=30):
        with self.lock:
            assert self.lock.wait_for(lambda: self.active == 0, timeout)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    # ---- answering -----------------------------------------------------

    def _stall(self, handler, sent_headers):
        """Hold the connection until the client closes it."""
        sock = handler.connection
        while True:
            r, _, _ = select.select([sock], [], [], 0.05)
            if r:
                try:
                    if not sock.recv(1, socket.MSG_PEEK):
                        break
                except OSError:
                    break
        with self.lock:
            self.disconnects += 1
            self.lock.notify_all()

    def respond(self, h, body, b):
        mode = b.get("mode", "answer")
        delay = b.get("delay_ms", 0) / 1000.0
        stream = bool(body.get("stream"))
        messages = body.get("messages", [])
        if mode == "stall":
            return self._stall(h, False)
        if mode == "status":
            status = b.get("status", 500)
            headers = []
            if "retry_after" in b:
                headers.append(("Retry-After", str(b["retry_after"])))
            if delay:
                time.sleep(delay)
            return h.reply(status, json.dumps({"error": {
                "message": "test LLM says %d" % status, "code": status}}
            ).encode(), headers=headers)
        if mode == "malformed" and not stream:
            return h.reply(200, b'{"choices": [{"message": {"content": "cut')
        if "text" in b:
            text = b["text"]
        elif mode == "bad_citations":
            text = "Everyone gets 100 days [7]. " + good_answer(messages) + \
                " See also [0] and [3, 12]."
        else:
            text = good_answer(messages)
        model = body.get("model", "test-llm")
        if not stream:
            if delay:
                time.sleep(delay)
            return h.reply(200, json.dumps({
                "id": "test-1", "object": "chat.completion",
                "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "message": {
                    "role": "assistant", "content": text},
                    "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 100, "completion_tokens": 20,
                          "total_tokens": 120}}).encode())
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Cache-Control", "no-cache")
        h.end_headers()

        def send(obj):
            data = obj if isinstance(obj, str) else json.dumps(obj)
            h.wfile.write(("data: %s\n\n" % data).encode())
            h.wfile.flush()

        def chunk(delta, finish=None):
            return {"id": "test-1", "object": "chat.completion.chunk",
                    "created": int(time.time()), "model": model,
                    "choices": [{"index": 0, "delta": delta,
                                 "finish_reason": finish}]}
        try:
            send(chunk({"role": "assistant"}))
            pieces = re.findall(r"\S+\s*", text) or [text]
            for i, p in enumerate(pieces):
                if delay:
                    time.sleep(delay)
                if mode in ("broken_sse", "stall_stream") and \
                        i == b.get("pieces", 3):
                    break
                if mode == "malformed" and i == 2:
                    h.wfile.write(b"data: {\"choices\": [\n\n")
                    h.wfile.flush()
                    return
                send(chunk({"content": p}))
            if mode == "broken_sse":
                return
            if mode == "stall_stream":
                return self._stall(h, True)
            send(chunk({}, "stop"))
            send({"id": "test-1", "object": "chat.completion.chunk",
                  "choices": [], "usage": {"prompt_tokens": 100,
                                           "completion_tokens": len(pieces),
                                           "total_tokens": 100 + len(pieces)}})
            send("[DONE]")
        except (BrokenPipeError, ConnectionResetError):
            with self.lock:
                self.disconnects += 1
                self.lock.notify_all()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument("--delay-ms", type=int, default=0,
                    help="between streamed pieces")
    a = ap.parse_args()
    s = LLMServer(a.port, {"mode": "answer", "delay_ms": a.delay_ms})
    print("test LLM listening on %s" % s.url, flush=True)
    try:
        s.thread.join()
    except KeyboardInterrupt:
        s.close()


if __name__ == "__main__":
    main()
