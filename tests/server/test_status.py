"""Status routes: /health, /model-status, /memory-status, /metrics,
/v1/models, routing errors, model unload/load; and the loading window."""
import re
import time

import requests

from conftest import SLOW, TIMEOUT, assert_error, wait_for

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def test_health_fields(server):
    r = server.get("/health")
    assert r.status_code == 200
    h = r.json()
    assert h["status"] == "healthy"
    assert h["model_loaded"] is True and h["model_loading"] is False
    assert h["model_error"] is None
    assert ISO.match(h["timestamp"]), h["timestamp"]
    c = h["components"]
    assert c["vector_store"] == "operational"
    assert c["embedding_service"] == "operational"
    assert "llm_service" in c
    p = h["performance"]
    for k in ("memory_usage_mb", "response_time_avg_ms", "uptime_hours"):
        assert isinstance(p[k], (int, float)) and p[k] >= 0, k
    assert 1 < p["memory_usage_mb"] < 2000


def test_model_status(server):
    m = server.get("/model-status").json()
    assert m["model_loaded"] is True and m["model_loading"] is False
    assert m["model_error"] is None
    assert isinstance(m["load_time"], float) and m["load_time"] >= 0
    assert ISO.match(m["timestamp"])
    model = m["model"]
    assert model["name"] == "all-MiniLM-L6-v2-q8_0.gguf"
    assert model["type"] == "q8_0"
    assert model["dimension"] == 384
    assert model["max_seq_length"] == 256
    assert 20 < model["file_size_mb"] < 30
    assert model["file_size_bytes"] > 20e6


def test_memory_status(server):
    m = server.get("/memory-status").json()
    s = m["system_memory"]
    assert s["total_mb"] > 0 and 0 <= s["available_mb"] <= s["total_mb"]
    assert abs(s["used_mb"] + s["available_mb"] - s["total_mb"]) < 1
    assert 0 <= s["percent_used"] <= 100
    p = m["process"]
    assert 0 < p["rss_mb"] <= p["peak_rss_mb"] + 1
    assert 20 < p["model_mb"] < 30
    assert p["index_mb"] >= 0
    assert m["vector_db_size_mb"] >= 0
    assert ISO.match(m["timestamp"])


def test_metrics(server):
    server.post("/v1/embeddings", {"input": "metrics please"})
    server.get("/nope")
    counted = (r'^lode_http_requests_total\{method="POST",'
               r'route="/v1/embeddings",status="200"\} [1-9]',
               r'^lode_http_requests_total\{route="unmatched",'
               r'status="404"\} [1-9]',
               r'^lode_http_request_duration_seconds_bucket\{method='
               r'"POST",route="/v1/embeddings",le="\+Inf"\} [1-9]')

    def counted_all():
        # a request is counted when it completes, which is after its
        # answer reached the client: wait for it
        r = server.get("/metrics")
        assert r.status_code == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        return r.text if all(re.search(c, r.text, re.M)
                             for c in counted) else None
    t = wait_for(counted_all, what="the requests counted")
    assert re.search(r"^lode_http_requests_in_flight [1-9]", t, re.M)
    assert re.search(r"^lode_embeddings_total [1-9]", t, re.M)
    assert re.search(r"^lode_tokens_total [1-9]", t, re.M)
    assert re.search(r"^lode_process_resident_memory_bytes [1-9]", t, re.M)
    assert re.search(r'^lode_model_state\{state="loaded"\} 1', t, re.M)
    assert re.search(r"^lode_store_chunks \d+", t, re.M)
    # every sample line is "name{labels} value"
    for line in t.splitlines():
        if line and not line.startswith("#"):
            assert re.match(r'^[a-z_]+(\{[^}]*\})? [-+0-9.e]+$', line), line


def test_models(server):
    m = server.get("/v1/models").json()
    assert m["object"] == "list"
    assert m["data"][0]["id"] == "all-MiniLM-L6-v2-q8_0.gguf"
    assert m["data"][0]["object"] == "model"


def test_routing_errors(server):
    assert_error(server.get("/does/not/exist"), 404, "not_found")
    r = server.post("/health", {})
    assert_error(r, 405, "method_not_allowed")
    assert "GET" in r.headers["Allow"]
    r = requests.put(server.url + "/collections", timeout=TIMEOUT)
    assert_error(r, 405)
    assert set(r.headers["Allow"].replace(" ", "").split(",")) >= {"GET",
                                                                 "POST"}
    r = server.get("/v1/embeddings")
    assert_error(r, 405)
    assert r.headers["Allow"] == "POST"
    # HEAD works where GET does
    assert requests.head(server.url + "/health").status_code == 200


def test_unload_and_load(make_server):
    s = make_server()
    r = s.post("/model/unload")
    assert r.status_code == 200 and r.json()["model_loaded"] is False
    h = s.get("/health")
    assert h.status_code == 200 and h.json()["status"] == "degraded"
    assert h.json()["components"]["embedding_service"] == "unloaded"
    r = s.post("/v1/embeddings", {"input": "x"})
    assert_error(r, 503, "model_unavailable")
    assert r.headers["Retry-After"]
    r = s.post("/model/load")
    assert r.status_code in (200, 202)
    s.wait_healthy()
    assert s.post("/v1/embeddings", {"input": "x"}).status_code == 200
    # loading again when loaded changes nothing
    assert s.post("/model/load").status_code == 200


def test_loading_window(make_server):
    """The socket answers while the model loads; model routes get 503 with
    Retry-After (no waiting), then work once it is loaded."""
    # The answers below are all given within the delay, the socket being
    # up before loading ends (a sanitizer build starts slower).
    delay = 5.0 if SLOW else 2.5
    s = make_server("--debug-load-delay-ms", str(int(delay * 1000)),
                    "--load-wait-ms", "0", wait_loaded=False)
    r = s.get("/health")
    assert r.status_code == 503, "the socket was not up before loading"
    h = r.json()
    assert h["status"] == "loading"
    assert h["model_loading"] is True and h["model_loaded"] is False
    assert h["components"]["embedding_service"] == "loading"
    assert r.headers["Retry-After"]
    m = s.get("/model-status").json()
    assert m["model_loading"] is True and m["load_time"] is None
    r = s.post("/v1/embeddings", {"input": "too early"})
    assert_error(r, 503, "model_loading")
    assert int(r.headers["Retry-After"]) > 0
    r = s.post("/search", {"query": "too early"})
    assert r.status_code == 503 and r.headers["Retry-After"]
    s.wait_healthy()
    assert s.post("/v1/embeddings", {"input": "now"}).status_code == 200
    assert s.get("/model-status").json()["load_time"] >= delay - 0.5


def test_loading_wait(make_server):
    """With the default wait a request made while loading waits and then
    succeeds; with a short wait it gets 503 after that wait."""
    # Asserted on states, not times: the model was still loading when the
    # request was sent (so a 200 means it waited), and a 503
    # "model_loading" means it stopped waiting before the load ended.
    s = make_server("--debug-load-delay-ms", "3000", wait_loaded=False)
    assert s.get("/health").json()["status"] == "loading"
    r = s.post("/v1/embeddings", {"input": "patient"})
    assert r.status_code == 200, r.text
    s2 = make_server("--debug-load-delay-ms", "4000", "--load-wait-ms", "300",
                     wait_loaded=False)
    assert s2.get("/health").json()["status"] == "loading"
    t0 = time.time()
    r = s2.post("/v1/embeddings", {"input": "impatient"})
    assert_error(r, 503, "model_loading")
    assert time.time() - t0 >= 0.25   # it did wait (up to 300 ms) first


def test_load_failure_is_reported_not_fatal(make_server, tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 60)
    s = make_server("-m", str(bad), wait_loaded=False)
    deadline = time.time() + TIMEOUT
    while time.time() < deadline:
        h = s.get("/health")
        if h.json()["status"] != "loading":
            break
        time.sleep(0.05)
    assert h.status_code == 503
    assert h.json()["status"] == "unhealthy"
    assert h.json()["model_error"]
    assert s.get("/model-status").json()["model_error"]
    r = s.post("/v1/embeddings", {"input": "x"})
    assert_error(r, 503)
    assert "load" in r.json()["error"]["message"]
    # still serving
    assert s.get("/memory-status").status_code == 200


def test_env_configuration(make_server):
    """PORT, HOST and LODE_* environment variables configure the server;
    flags win over them."""
    s = make_server(env={"LODE_MAX_BODY": "100", "PORT": "1"})
    # PORT=1 was overridden by --port 0 (flag wins), the body cap by env
    r = s.post("/v1/embeddings", {"input": "x" * 200})
    assert_error(r, 413, "request_too_large")
