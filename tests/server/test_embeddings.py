"""POST /v1/embeddings: OpenAI compatibility (with the OpenAI SDK as the
client), agreement with `lode embed`, token-id inputs, truncation, limits
and input errors."""
import base64
import math
import struct

import httpx
import openai
import pytest

from conftest import TIMEOUT, assert_error, lode_embed

TEXTS = ["hello world", "The cat sat on the mat.",
         "Résumé of naïve café owners", "東京は日本の首都です",
         "a\u0000nul inside", "   leading spaces", "emoji 🎉 party"]


def close(a, b, tol=1e-6):
    assert len(a) == len(b)
    return max(abs(x - y) for x, y in zip(a, b)) <= tol


@pytest.fixture(scope="module")
def reference():
    return lode_embed(TEXTS)


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused",
                         timeout=TIMEOUT, max_retries=0)


def test_openai_sdk_float(client, reference):
    r = client.embeddings.create(model="all-MiniLM-L6-v2", input=TEXTS,
                                 encoding_format="float")
    assert r.object == "list"
    assert r.model == "all-MiniLM-L6-v2-q8_0.gguf"
    assert [d.index for d in r.data] == list(range(len(TEXTS)))
    for d, ref in zip(r.data, reference):
        assert d.object == "embedding"
        assert close(d.embedding, ref), d.index
    assert r.usage.prompt_tokens == r.usage.total_tokens > 2 * len(TEXTS)


def test_openai_sdk_base64_default(client, reference):
    # the SDK asks for base64 by default and decodes it itself
    r = client.embeddings.create(model="text-embedding-3-small", input=TEXTS)
    for d, ref in zip(r.data, reference):
        assert close(d.embedding, ref, 1e-7), d.index


def test_openai_sdk_single_string_and_tokens(client, reference):
    r = client.embeddings.create(model="m", input="hello world")
    assert len(r.data) == 1 and close(r.data[0].embedding, reference[0])
    assert r.usage.prompt_tokens == 4  # [CLS] hello world [SEP]


def test_base64_is_little_endian_float32(server, reference):
    r = server.post("/v1/embeddings", {"input": ["hello world"],
                                       "encoding_format": "base64"})
    raw = base64.b64decode(r.json()["data"][0]["embedding"])
    assert len(raw) == 384 * 4
    v = struct.unpack("<384f", raw)
    assert close(v, reference[0], 1e-7)


def test_token_id_inputs(server, reference):
    tok = server.post("/v1/embeddings", {"input": "hello world"}).json()
    # [CLS]=101 hello=7592 world=2088 [SEP]=102
    one = server.post("/v1/embeddings", {"input": [7592, 2088]}).json()
    assert len(one["data"]) == 1
    assert close(one["data"][0]["embedding"], reference[0])
    assert one["usage"]["prompt_tokens"] == tok["usage"]["prompt_tokens"]
    many = server.post("/v1/embeddings",
                       {"input": [[7592, 2088], [7592]]}).json()
    assert len(many["data"]) == 2
    assert close(many["data"][0]["embedding"], reference[0])


def test_truncation_is_reported(server):
    long_text = "word " * 1000
    r = server.post("/v1/embeddings",
                    {"input": [long_text, "short", long_text]}).json()
    assert r["truncated"] == 2
    assert r["usage"]["prompt_tokens"] == 256 + 3 + 256
    # the truncated text embeds as its first 254 word pieces do
    cut = server.post("/v1/embeddings", {"input": "word " * 254}).json()
    assert close(r["data"][0]["embedding"], cut["data"][0]["embedding"])
    assert cut["truncated"] == 0
    ids = server.post("/v1/embeddings", {"input": [[2773] * 300]}).json()
    assert ids["truncated"] == 1 and ids["usage"]["prompt_tokens"] == 256


def test_dimensions(server):
    r = server.post("/v1/embeddings", {"input": "x", "dimensions": 384})
    assert r.status_code == 200
    e = assert_error(server.post("/v1/embeddings",
                                 {"input": "x", "dimensions": 256}), 400,
                     "invalid_dimensions")
    assert "384" in e["message"]
    assert_error(server.post("/v1/embeddings",
                             {"input": "x", "dimensions": "384"}), 400)


@pytest.mark.parametrize("body", [
    {},
    {"input": None},
    {"input": ""},
    {"input": []},
    {"input": 5},
    {"input": {"text": "x"}},
    {"input": ["ok", ""]},
    {"input": ["ok", 5]},
    {"input": [1, "x"]},
    {"input": [[1, 2], [3, "x"]]},
    {"input": [[1, 2], []]},
    {"input": [-1]},
    {"input": [2 ** 40]},
    {"input": [1.5]},
    {"input": [[True]]},
    {"input": [99999]},          # outside the vocabulary
    {"input": "x", "encoding_format": "hex"},
    {"input": "x", "encoding_format": 3},
    {"input": "x", "model": 5},
])
def test_bad_inputs(server, body):
    e = assert_error(server.post("/v1/embeddings", body), 400)
    assert e["type"] == "invalid_request_error"


def test_limits(make_server):
    s = make_server("--max-inputs", "10", "--max-tokens", "100")
    e = assert_error(s.post("/v1/embeddings", {"input": ["a"] * 11}), 400,
                     "limit_exceeded")
    assert "10" in e["message"]
    assert s.post("/v1/embeddings", {"input": ["a"] * 10}).status_code == 200
    e = assert_error(s.post("/v1/embeddings", {"input": "word " * 200}), 400,
                     "limit_exceeded")
    assert "100" in e["message"]
    assert_error(s.post("/v1/embeddings", {"input": [[5] * 60, [5] * 60]}),
                 400, "limit_exceeded")
    assert_error(s.post("/v1/embeddings", {"input": [5] * 101}), 400,
                 "limit_exceeded")
    # documents count against the same token cap
    assert_error(s.post("/collections/kb/documents", {"text": "word " * 300}),
                 400, "limit_exceeded")
    assert s.post("/collections/kb/documents",
                  {"text": "word " * 50}).status_code == 200


def test_httpx_client(server, reference):
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        r = c.post("/v1/embeddings", json={"input": TEXTS[:2]})
        assert r.status_code == 200
        v = r.json()["data"][1]["embedding"]
        assert close(v, reference[1])
        assert abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-5
