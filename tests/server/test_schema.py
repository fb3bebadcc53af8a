"""The API against its OpenAPI document: GET /openapi.json serves
docs/openapi.json, and schemathesis (property-based, from PyPI) sends
generated requests to every operation of a live server and checks every
answer: no 5xx, a documented status code and content type, documented
headers, and a body (or each Server-Sent Event) valid against the schema.

The server is fresh (a copy of data/sample's database), has an API key
(sent with every request, so write routes are reached; schemathesis also
checks that they refuse a request without it), a generic webhook, and the
test LLM for chat.  The run is bounded and reproducible: a fixed seed and
a fixed number of examples per operation, one worker.

/model/unload and /model/load run last, on their own: with the model
unloaded every heavy route answers a (documented) 503 after waiting
--load-wait-ms, which would make the rest slow and say little.  The
server must still be answering afterwards and stop cleanly (exit 0, and
leak-free under the sanitizer build: make_server checks)."""
import json
import os
import subprocess
import sys

from conftest import ROOT, SLOW, TIMEOUT

KEY = "schema-key"
SCHEMATHESIS = os.path.join(os.path.dirname(sys.executable), "schemathesis")
CHECKS = ("not_a_server_error,status_code_conformance,"
          "content_type_conformance,response_headers_conformance,"
          "response_schema_conformance,ignored_auth")
# examples per operation and phases: bounded so the run stays short; the
# sanitizer build (several times slower) skips the coverage phase (its
# ~1,400 boundary cases do not depend on EXAMPLES)
EXAMPLES = 3 if SLOW else 8
PHASES = "examples,fuzzing" if SLOW else "examples,coverage,fuzzing"
WEBHOOKS = {"generic": {"notes": {
    "text": ["/message"], "id": "/delivery",
    "metadata": {"author": "/author"}}}}


def schemathesis(server, tmp_path, *args):
    cmd = [SCHEMATHESIS, "--no-color", "run", server.url + "/openapi.json",
           "-H", "Authorization: Bearer " + KEY, "--seed", "1",
           "-n", str(EXAMPLES), "--phases", PHASES,
           "-c", CHECKS, "-w", "1", "--request-timeout", str(TIMEOUT * 2),
           "--suppress-health-check", "all", "--output-truncate", "false"]
    out = subprocess.run(cmd + list(args), cwd=str(tmp_path),
                         capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, SCHEMATHESIS_TELEMETRY="false"))
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-20000:] + "\nserver:\n" + \
        server.stderr[-5000:]
    assert " passed" in text and "generated" in text, text[-5000:]
    return text


def test_openapi_json_is_the_document(server):
    r = server.get("/openapi.json")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    with open(os.path.join(ROOT, "docs", "openapi.json"), "rb") as f:
        assert r.content == f.read()
    doc = r.json()
    assert doc["openapi"] == "3.1.0" and "/openapi.json" in doc["paths"]
    etag = r.headers["ETag"]
    r2 = server.get("/openapi.json", headers={"If-None-Match": etag})
    assert r2.status_code == 304 and r2.content == b""


def test_schemathesis(make_server, sample_db, llm, tmp_path):
    hooks = tmp_path / "webhooks.json"
    hooks.write_text(json.dumps(WEBHOOKS))
    s = make_server("--api-key", KEY, "--webhooks", str(hooks),
                    "--llm-base-url", llm.url, "--load-wait-ms", "2000",
                    db=sample_db)
    schemathesis(s, tmp_path, "--exclude-path-regex", "^/model/")
    assert s.get("/health").status_code == 200
    schemathesis(s, tmp_path, "--include-path-regex", "^/model/")
    # whatever state the model was left in, the server answers
    h = s.get("/health")
    assert h.status_code in (200, 503), h.text
    assert h.json()["status"] in ("healthy", "degraded", "loading"), h.text
