"""Fixtures for the `lode serve` end-to-end tests.

Each server is the real binary ($LODE) started on port 0 (the kernel picks
a free port, which the server prints on stderr: "listening on
http://HOST:PORT") with a database in a temporary directory.  Stopping a
server sends SIGTERM and requires exit status 0, so every test also checks
a clean shutdown, and under the sanitizer build a leak-free one.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LODE = os.path.abspath(os.environ.get("LODE", os.path.join(ROOT, "lode")))
MODEL = os.path.join(ROOT, "models", "all-MiniLM-L6-v2-q8_0.gguf")
# Sanitizer builds run several times slower.
SLOW = "-san" in LODE
TIMEOUT = 60 if SLOW else 20
# Settings of the host that must not leak into a test's server.
HOST_ENV = ("LLM_", "OPENROUTER_", "MAX_TOKENS", "GUARDRAILS_LEVEL")
sys.path.insert(0, os.path.join(ROOT, "tests"))


class Server:
    def __init__(self, tmp_path, args=(), env=None, host="127.0.0.1",
                 wait_loaded=True, db=None):
        self.db = str(tmp_path / "lode.db")
        if db:
            shutil.copy(db, self.db)
        cmd = [LODE, "serve", "--host", host, "--port", "0", "--db", self.db,
               "-m", MODEL, "-t", "2"] + list(args)
        full_env = {k: v for k, v in os.environ.items()
                    if not k.startswith("LODE_") and k not in ("PORT", "HOST")
                    and not k.startswith(HOST_ENV)}
        full_env.update(env or {})
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env,
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.stderr_lines = []
        port_seen = threading.Event()
        self.port = None

        def reader():
            for line in self.proc.stderr:
                self.stderr_lines.append(line)
                m = re.search(r"listening on http://\S+:(\d+)", line)
                if m and not self.port:
                    self.port = int(m.group(1))
                    port_seen.set()
            port_seen.set()

        self.reader = threading.Thread(target=reader, daemon=True)
        self.reader.start()
        if not port_seen.wait(TIMEOUT) or not self.port:
            self.proc.kill()
            raise RuntimeError("server did not start: " +
                               "".join(self.stderr_lines))
        connect_host = "127.0.0.1" if host in ("0.0.0.0", "localhost") else host
        self.url = "http://%s:%d" % (connect_host, self.port)
        if wait_loaded:
            self.wait_healthy()

    @property
    def stderr(self):
        return "".join(self.stderr_lines)

    def wait_healthy(self, timeout=TIMEOUT):
        end = time.time() + timeout
        last = None
        while time.time() < end:
            try:
                last = requests.get(self.url + "/health", timeout=5)
                if last.status_code == 200:
                    return last.json()
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise AssertionError("server not healthy: %r %s" %
                             (last and last.text, self.stderr))

    def get(self, path, **kw):
        kw.setdefault("timeout", TIMEOUT)
        return requests.get(self.url + path, **kw)

    def post(self, path, body=None, **kw):
        kw.setdefault("timeout", TIMEOUT)
        if body is not None:
            kw["json"] = body
        return requests.post(self.url + path, **kw)

    def delete(self, path, **kw):
        kw.setdefault("timeout", TIMEOUT)
        return requests.delete(self.url + path, **kw)

    def stop(self, sig=signal.SIGTERM, timeout=TIMEOUT):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("server did not stop on SIGTERM: " +
                                 self.stderr)
        self.reader.join(timeout)  # the whole of stderr is read
        return rc


@pytest.fixture
def make_server(tmp_path):
    """make_server(args=..., env=..., host=...) starts a server; all are
    stopped (and must exit 0) at the end of the test."""
    servers = []

    def make(*args, env=None, host="127.0.0.1", wait_loaded=True, sub=None,
             db=None):
        path = tmp_path / (sub or ("s%d" % len(servers)))
        path.mkdir(exist_ok=True)
        s = Server(path, args, env, host, wait_loaded, db)
        servers.append(s)
        return s

    yield make
    for s in servers:
        rc = s.stop()
        assert rc == 0, "exit %d: %s" % (rc, s.stderr)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One loaded server shared by a module's read-mostly tests."""
    s = Server(tmp_path_factory.mktemp("srv"))
    yield s
    rc = s.stop()
    assert rc == 0, "exit %d: %s" % (rc, s.stderr)


@pytest.fixture(scope="session")
def sample_db(tmp_path_factory):
    """data/sample indexed once (lode ingest); servers get a copy."""
    path = str(tmp_path_factory.mktemp("sample") / "sample.db")
    subprocess.run([LODE, "ingest", "--db", path, "-m", MODEL, "data/sample"],
                   cwd=ROOT, check=True, capture_output=True,
                   timeout=TIMEOUT * 6)
    return path


@pytest.fixture
def llm():
    """A test LLM server (tests/llm_server.py), fresh for each test."""
    from llm_server import LLMServer
    s = LLMServer()
    yield s
    s.close()


def wait_for(predicate, timeout=TIMEOUT, what=None):
    """Polls predicate() until it returns a true value, which is returned;
    after `timeout` seconds fails the test naming `what` (or the last
    value).  Tests wait for the condition they assert with this, never for
    a fixed time: a loaded machine only makes them slower."""
    end = time.monotonic() + timeout
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > end:
            raise AssertionError("timed out after %gs waiting for %s (last: "
                                 "%r)" % (timeout, what or "the condition",
                                          last))
        time.sleep(0.02)


def lode_embed(texts):
    """Vectors from the CLI (`lode embed --json`), one per text."""
    out = subprocess.run([LODE, "embed", "-m", MODEL, "--json"],
                         input="".join(json.dumps(t) + "\n" for t in texts),
                         capture_output=True, text=True, cwd=ROOT,
                         check=True, timeout=TIMEOUT * 3)
    return [json.loads(line) for line in out.stdout.splitlines()]


def assert_error(r, status, code=None):
    """r is a JSON error {"error": {"message", "type", "code"}}."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"].startswith("application/json"), r.headers
    e = r.json()["error"]
    assert isinstance(e["message"], str) and e["message"]
    assert isinstance(e["type"], str) and e["type"]
    assert isinstance(e["code"], str) and e["code"]
    if code:
        assert e["code"] == code, e
    return e
