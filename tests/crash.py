#!/usr/bin/env python3
"""crash.py - crash consistency of `lode serve`: SIGKILL the server at
random moments while concurrent clients add documents, delete them and
deliver signed generic webhooks; after every kill restart it on the same
database and check that nothing it acknowledged was lost.

Run by tests/crash.sh (python from .venv-test, LODE set to the binary).

Model of the expected state (Jepsen-style): each document id is written
by one client thread only, one request at a time, so for every id the
driver knows the state the last acknowledged (2xx) request left, plus the
states an unanswered request may have left (the one in flight at the
kill).  Each document of a POST is its own transaction, so each is
resolved on its own.  After a restart the stored state of every id must
be one of those, and becomes the known state for the next round.  A
document's "state" is absent or one exact text (unique per write, known
by its SHA-256), with, when acknowledged, the chunk count the answer gave.
Webhook events have unique ids; every acknowledged one must be stored and
still answered as a duplicate when delivered again; an unanswered one may
be stored or not, but a stored one is a duplicate from then on.

After each restart, read straight from the database (Python's sqlite3):
PRAGMA integrity_check and foreign_key_check, FTS5's integrity-check of
chunks_fts, every document whole (chunks 0..n-1, each with a vector of
the collection's size, each chunk's text the slice of the document's text
it claims), then the model above; over HTTP, redeliveries of acknowledged
events and a few documents read back through the API.

Every fifth round the restarted server is also killed once while it
opens the database and loads the model (not counted in the kills).
The kill moments come from a seeded RNG (LODE_CRASH_SEED, printed);
LODE_CRASH_KILLS sets the number of kills (default 50).  Documents are a
few short sections so each write is quick; the point is atomicity.
Prints "N passed, N failed"; exits 1 on any failure.
"""
import hashlib
import hmac
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

import requests

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
LODE = os.path.abspath(os.environ.get("LODE", os.path.join(ROOT, "lode")))
MODEL = os.path.join(ROOT, "models", "all-MiniLM-L6-v2-q8_0.gguf")
SLOW = "-san" in LODE  # sanitizer builds run several times slower
TIMEOUT = 60 if SLOW else 20
KILLS = int(os.environ.get("LODE_CRASH_KILLS", "50"))
SEED = int(os.environ.get("LODE_CRASH_SEED", str(random.SystemRandom()
                                                 .randrange(1 << 31))))
# How long the clients run before the kill, at most (uniform from 0).
MAX_RUN = 3.0 if SLOW else 1.2
DOC_THREADS = 3
IDS_PER_THREAD = 6
COLLECTION = "crash"
EVENTS = "events"
SECRET = "crash-s3cret"
SIG_HEADER = "X-Crash-Signature"
WORDS = ("leave annual policy employee salary office remote manager travel "
         "expense receipt laptop security password holiday pension budget "
         "review contract notice overtime parking visitor badge printer "
         "backup incident customer invoice").split()

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import Checks  # noqa: E402  (tests/checks.py)

CHECKS = Checks("crash.py")
check = CHECKS.check


def sha(text):
    return hashlib.sha256(text.encode()).hexdigest()


def wait_for(predicate, timeout):
    """predicate() until it returns a true value (returned) or timeout."""
    end = time.monotonic() + timeout
    while True:
        v = predicate()
        if v or time.monotonic() > end:
            return v
        time.sleep(0.02)


class Server:
    """`lode serve` on a free port over the shared database."""

    def __init__(self, db, webhooks):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("LODE_") and k not in ("PORT", "HOST")}
        self.proc = subprocess.Popen(
            [LODE, "serve", "--host", "127.0.0.1", "--port", "0", "--db", db,
             "-m", MODEL, "-t", "2", "--webhooks", webhooks],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.port = None
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.url = None

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line)
            m = re.search(r"listening on http://\S+:(\d+)", line)
            if m and not self.port:
                self.port = int(m.group(1))

    def healthy(self):
        """Waits for /health to say 200; True if it did in time."""
        if not wait_for(lambda: self.port or self.proc.poll() is not None,
                        TIMEOUT) or not self.port:
            return False
        self.url = "http://127.0.0.1:%d" % self.port

        def ready():
            if self.proc.poll() is not None:
                return "exited"
            try:
                r = requests.get(self.url + "/health", timeout=5)
                return "ok" if r.status_code == 200 else None
            except requests.RequestException:
                return None
        return wait_for(ready, TIMEOUT) == "ok"

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.reader.join(TIMEOUT)
        return self.proc.returncode

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.reader.join(TIMEOUT)
        return rc

    def tail(self):
        return "".join(self.lines[-15:])


class Model:
    """What the server acknowledged, and what it may have done besides."""

    def __init__(self):
        self.lock = threading.Lock()
        self.docs = {}      # id -> None or sha (known state)
        self.maybe = {}     # id -> set of None/sha an unanswered request left
        self.texts = {}     # sha -> text
        self.chunks = {}    # sha -> chunk count from an answer
        self.events = {}    # event id -> body (raw bytes), acknowledged
        self.unsure = {}    # event id -> body, unanswered
        self.acked = {"add": 0, "delete": 0, "webhook": 0, "redelivery": 0}
        self.unknown = 0


def document_text(rng, doc_id, version):
    parts = []
    for s in range(rng.randint(1, 3)):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 30)))
        parts.append("## Part %d of %s v%s\n\n%s." % (s, doc_id, version,
                                                      words.capitalize()))
    return "\n\n".join(parts) + "\n"


def sign(raw):
    return "sha256=" + hmac.new(SECRET.encode(), raw,
                                hashlib.sha256).hexdigest()


def deliver(session, url, raw):
    return session.post(url + "/webhook/hook", data=raw, timeout=TIMEOUT,
                        headers={"Content-Type": "application/json",
                                 SIG_HEADER: sign(raw)})


def doc_client(model, url, thread, rng, stop, errors):
    """Adds (1-2 documents a request) and deletes its own ids until the
    server dies or `stop` is set."""
    session = requests.Session()
    ids = ["t%d-d%d" % (thread, j) for j in range(IDS_PER_THREAD)]
    while not stop.is_set():
        present = [i for i in ids if model.docs.get(i)]
        if present and rng.random() < 0.35:
            doc_id = rng.choice(present)
            try:
                r = session.delete("%s/collections/%s/documents/%s" %
                                   (url, COLLECTION, doc_id), timeout=TIMEOUT)
            except requests.RequestException:
                with model.lock:
                    model.maybe.setdefault(doc_id, set()).add(None)
                    model.unknown += 1
                return
            if r.status_code // 100 != 2:
                errors.append("DELETE %s: %d %s" % (doc_id, r.status_code,
                                                    r.text[:200]))
                return
            with model.lock:
                model.docs[doc_id] = None
                model.acked["delete"] += 1
            continue
        batch = rng.sample(ids, rng.randint(1, 2))
        docs = []
        for doc_id in batch:
            text = document_text(rng, doc_id, "%08x" % rng.getrandbits(32))
            with model.lock:
                model.texts[sha(text)] = text
            docs.append({"id": doc_id, "text": text,
                         "title": "Document " + doc_id,
                         "metadata": {"thread": thread}})
        try:
            r = session.post("%s/collections/%s/documents" % (url, COLLECTION),
                             json={"documents": docs}, timeout=TIMEOUT)
        except requests.RequestException:
            with model.lock:
                for d in docs:
                    model.maybe.setdefault(d["id"], set()).add(sha(d["text"]))
                model.unknown += 1
            return
        if r.status_code // 100 != 2:
            errors.append("POST %s: %d %s" % (batch, r.status_code,
                                              r.text[:200]))
            return
        answer = {d["id"]: d["chunks"] for d in r.json()["documents"]}
        with model.lock:
            for d in docs:
                h = sha(d["text"])
                model.docs[d["id"]] = h
                model.chunks[h] = answer.get(d["id"])
            model.acked["add"] += 1


def webhook_client(model, url, rng, stop, errors):
    """New events, and now and then an acknowledged one again (which must
    be a duplicate)."""
    session = requests.Session()
    while not stop.is_set():
        again = bool(model.events) and rng.random() < 0.25
        if again:
            event = rng.choice(sorted(model.events))
            raw = model.events[event]
        else:
            event = "ev-%d-%08x" % (SEED, rng.getrandbits(32))
            words = " ".join(rng.choice(WORDS) for _ in range(12))
            raw = json.dumps({"id": event, "message": words}).encode()
        try:
            r = deliver(session, url, raw)
        except requests.RequestException:
            if not again:
                with model.lock:
                    model.unsure[event] = raw
                    model.unknown += 1
            return
        if r.status_code != 200:
            errors.append("webhook %s: %d %s" % (event, r.status_code,
                                                 r.text[:200]))
            return
        if r.json().get("duplicate") is not again:
            errors.append("webhook %s: duplicate %r, expected %r" %
                          (event, r.json().get("duplicate"), again))
            return
        with model.lock:
            if again:
                model.acked["redelivery"] += 1
            else:
                model.events[event] = raw
                model.acked["webhook"] += 1


def read_db(path):
    """The database's checks, then {collection: {external id: (sha,
    chunk count)}}."""
    db = sqlite3.connect(path, timeout=TIMEOUT)
    try:
        check("integrity_check", db.execute("PRAGMA integrity_check")
              .fetchall() == [("ok",)])
        check("foreign_key_check",
              db.execute("PRAGMA foreign_key_check").fetchall() == [])
        try:
            db.execute("INSERT INTO chunks_fts (chunks_fts) "
                       "VALUES ('integrity-check')")
            db.commit()
            check("fts integrity-check", True)
        except sqlite3.DatabaseError as e:
            check("fts integrity-check", False, str(e))
        fts, chunks = db.execute(
            "SELECT (SELECT count(*) FROM chunks_fts), "
            "(SELECT count(*) FROM chunks)").fetchone()
        check("fts rows", fts == chunks, (fts, chunks))
        dims = dict(db.execute("SELECT id, dimension FROM collections"))
        state = {}
        for doc, coll, ext, digest in db.execute(
                "SELECT d.id, c.name, d.external_id, d.content_sha256 "
                "FROM documents d JOIN collections c "
                "ON c.id = d.collection_id"):
            rows = db.execute(
                "SELECT c.ordinal, c.text, c.char_start, c.char_end, "
                "length(v.vector), v.collection_id, v.document_id "
                "FROM chunks c LEFT JOIN vectors v ON v.chunk_id = c.id "
                "WHERE c.document_id = ? ORDER BY c.ordinal", (doc,)).fetchall()
            whole = (rows and [r[0] for r in rows] == list(range(len(rows)))
                     and all(r[4] == 4 * dims[r[5]] and r[6] == doc
                             for r in rows if r[5] in dims)
                     and all(r[4] is not None for r in rows))
            check("document whole", whole, (coll, ext, rows[:3]))
            state.setdefault(coll, {})[ext] = (digest, len(rows),
                                               [r[1:4] for r in rows])
        orphans = db.execute(
            "SELECT count(*) FROM vectors v LEFT JOIN chunks c "
            "ON c.id = v.chunk_id WHERE c.id IS NULL").fetchone()[0]
        check("no orphan vectors", orphans == 0, orphans)
        return state
    finally:
        db.close()


def chunks_match(text, chunks):
    """Each chunk is the slice of the text it claims (ASCII: characters
    are bytes) and together they cover every word."""
    covered = [False] * len(text)
    for chunk_text, start, end in chunks:
        if text[start:end] != chunk_text:
            return False
        covered[start:end] = [True] * (end - start)
    return all(c or text[i].isspace() for i, c in enumerate(covered))


def verify(model, path, server, rng):
    """After a restart: the database against the model, then resolve the
    model to what is stored."""
    state = read_db(path)
    docs = state.get(COLLECTION, {})
    for doc_id in sorted(set(model.docs) | set(model.maybe) | set(docs)):
        stored = docs.get(doc_id)
        allowed = {model.docs.get(doc_id)} | model.maybe.get(doc_id, set())
        have = stored[0] if stored else None
        if not check("document state", have in allowed,
                     "%s: stored %s, allowed %s" % (doc_id, have, allowed)):
            continue
        model.docs[doc_id] = have
        if have:
            text = model.texts[have]
            known = model.chunks.get(have)
            check("chunk count", known is None or known == stored[1],
                  (doc_id, known, stored[1]))
            check("chunk text", chunks_match(text, stored[2]), doc_id)
            if known is None:
                model.chunks[have] = stored[1]
    model.maybe.clear()

    events = state.get(EVENTS, {})
    lost = [e for e in model.events if e not in events]
    check("acknowledged events stored", not lost, lost[:5])
    extra = [e for e in events if e not in model.events
             and e not in model.unsure]
    check("no unknown events", not extra, extra[:5])
    for event, raw in model.unsure.items():
        if event in events:
            model.events[event] = raw
    model.unsure.clear()

    # Over HTTP: redeliveries are duplicates, documents read back whole.
    session = requests.Session()
    for event in rng.sample(sorted(model.events), min(3, len(model.events))):
        r = deliver(session, server.url, model.events[event])
        check("redelivery is a duplicate", r.status_code == 200 and
              r.json().get("duplicate") is True, (event, r.status_code,
                                                  r.text[:200]))
    present = sorted(i for i, h in model.docs.items() if h)
    for doc_id in rng.sample(present, min(2, len(present))):
        r = session.get("%s/collections/%s/documents/%s" %
                        (server.url, COLLECTION, doc_id), timeout=TIMEOUT)
        ok = r.status_code == 200
        if ok:
            got = r.json()
            want = model.docs[doc_id]
            ok = (got["content_sha256"] == want and
                  len(got["chunks"]) == model.chunks[want])
        check("GET document", ok, (doc_id, r.status_code, r.text[:200]))


def main():
    print("crash.py: seed %d (LODE_CRASH_SEED), %d kills (LODE_CRASH_KILLS)"
          % (SEED, KILLS))
    rng = random.Random(SEED)
    tmp = tempfile.TemporaryDirectory(prefix="lode-crash-")
    db = os.path.join(tmp.name, "crash.db")
    webhooks = os.path.join(tmp.name, "webhooks.json")
    with open(webhooks, "w") as f:
        json.dump({"generic": {"hook": {
            "secret": SECRET, "signature_header": SIG_HEADER,
            "text": ["/message"], "id": "/id", "collection": EVENTS,
            "k": 1}}}, f)
    model = Model()
    kills = in_flight = start_kills = 0
    start = time.monotonic()
    server = Server(db, webhooks)
    for round_ in range(KILLS + 1):
        if not check("healthy after restart", server.healthy(),
                     server.tail()):
            server.kill()
            break
        if round_:
            verify(model, db, server, rng)
        if round_ == KILLS:
            break
        stop = threading.Event()
        errors = []
        threads = [threading.Thread(
            target=doc_client, args=(model, server.url, t,
                                     random.Random(rng.getrandbits(64)),
                                     stop, errors))
                   for t in range(DOC_THREADS)]
        threads.append(threading.Thread(
            target=webhook_client, args=(model, server.url,
                                         random.Random(rng.getrandbits(64)),
                                         stop, errors)))
        unknown_before = model.unknown
        added, events = model.acked["add"], model.acked["webhook"]
        for t in threads:
            t.start()
        # The kill moment: a random time after the round's first
        # acknowledged add and event (so every round has some to lose,
        # however slow the machine).
        check("writes acknowledged before the kill", wait_for(
            lambda: errors or (model.acked["add"] > added and
                               model.acked["webhook"] > events), TIMEOUT),
              server.tail())
        time.sleep(rng.uniform(0, MAX_RUN))
        rc = server.kill()
        kills += 1
        check("killed by SIGKILL", rc == -signal.SIGKILL,
              (rc, server.tail()))
        stop.set()
        for t in threads:
            t.join(TIMEOUT)
            check("client finished", not t.is_alive())
        for e in errors:
            check("request answered 2xx", False, e)
        in_flight += model.unknown > unknown_before
        if round_ % 5 == 4:
            # Now and then a kill while the server opens the database
            # (WAL recovery, the vectors loaded into memory) and loads.
            server = Server(db, webhooks)
            time.sleep(rng.uniform(0, MAX_RUN / 4))
            server.kill()
            start_kills += 1
        server = Server(db, webhooks)
    rc = server.stop()
    check("clean stop at the end", rc == 0, (rc, server.tail()))
    check("acknowledged writes", model.acked["add"] >= KILLS and
          model.acked["webhook"] >= KILLS, model.acked)
    check("kills with a request in flight", in_flight >= KILLS // 2,
          in_flight)
    print("crash.py: %d kills (%d with a request in flight, and %d more "
          "while starting) in %.0f s; acknowledged %s; %d unanswered" %
          (kills, in_flight, start_kills, time.monotonic() - start,
           model.acked, model.unknown))
    return CHECKS.summary()


if __name__ == "__main__":
    sys.exit(main())
